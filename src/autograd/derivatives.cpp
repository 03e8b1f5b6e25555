// The derivative formula of every differentiable row of ops.def, in table order. Each reads the
// recorded call through GradCtx and sets the gradients of its tensor arguments with tensor ops;
// broadcasting is undone by the engine's check (sum_to) and dtypes cast back there.
#include "autograd/derivatives.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "kiln/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/ops/call.h"
#include "tensor/backward_kernels.h"

namespace kiln::autograd {

using ops::OpKind;

Tensor GradCtx::tensor(size_t i) const {
  const SavedVariable& sv = node_.saved_args[i];
  KILN_ASSERT(sv.defined() || sv.released(), "{}: argument {} was not saved for backward",
              node_.name(), i);
  return sv.unpack(self_, node_.name(), fmt::format("argument {}", i));
}

Tensor GradCtx::operand(size_t i, ScalarType like) const {
  if (is_tensor(i)) return tensor(i);
  return full({}, node_.args[i].toScalar(), TensorOptions(like));
}

Tensor GradCtx::result(size_t k) const {
  return node_.saved_results[k].unpack(self_, node_.name(), fmt::format("result {}", k));
}

namespace {

constexpr uint32_t A(int i) { return 1u << i; }

// g of a reduction over dims (explicit and wrapped; empty = all dims) back to the input sizes.
Tensor expand_reduced(const Tensor& g, IntArrayRef sizes, const std::vector<int64_t>& dims,
                      bool keepdim) {
  Tensor r = g;
  if (!keepdim) {
    std::vector<int64_t> d = dims;
    if (d.empty())
      for (int64_t i = 0; i < static_cast<int64_t>(sizes.size()); ++i) d.push_back(i);
    std::sort(d.begin(), d.end());
    for (int64_t k : d) r = r.unsqueeze(k);
  }
  return r.expand(sizes);
}

// Gradient for a dims/keepdim reduction node: g and the result brought back to input shape.
struct Reduced {
  Tensor g, r;
};
Reduced reduced(GradCtx& c, bool with_result) {
  const auto& dims = c.arg(1).toIntList();
  const bool keepdim = c.arg(2).toBool();
  Reduced out;
  out.g = expand_reduced(c.grad(), c.sizes(0), dims, keepdim);
  if (with_result) out.r = expand_reduced(c.result(), c.sizes(0), dims, keepdim);
  return out;
}

// Gradient of a whole-dim-range selection (slice, select) written into zeros of the input's
// sizes. Outside recording this is zeros + an in-place copy into the view; while recording
// (create_graph) it is the functional index_put, so the result keeps g's history.
Tensor embed_slice(const Tensor& g, const OutputMeta& in, int64_t dim, int64_t start,
                   int64_t end, int64_t step, bool keep_dim) {
  const int64_t n = keep_dim ? (end - start + step - 1) / step : 1;
  if (!GradMode::is_enabled()) {
    Tensor z = zeros(in.sizes, TensorOptions(g.dtype()));
    Tensor v = keep_dim ? z.slice(dim, start, end, step) : z.select(dim, start);
    if (n > 0 && v.numel() > 0) v.copy_(g);
    return z;
  }
  std::vector<Tensor> idx(static_cast<size_t>(dim) + 1);
  idx[dim] = arange(start, start + n * step, step, TensorOptions(kLong));
  Tensor vals = keep_dim ? g : g.unsqueeze(dim);
  return index_put(zeros(in.sizes, TensorOptions(g.dtype())), idx, vals, false);
}

// The gradient of an arbitrary view (unfold, as_strided) through its index map: gather the
// flat positions the view reads, then scatter-add g into them.
Tensor view_backward_by_index(const Tensor& g, const OutputMeta& in,
                              const std::function<Tensor(const Tensor&)>& view) {
  int64_t n = 1;
  for (int64_t s : in.sizes) n *= s;
  Tensor positions = view(arange(n, TensorOptions(kLong)).view(in.sizes)).reshape({-1});
  Tensor flat = index_put(zeros({n}, TensorOptions(g.dtype())), {positions}, g.reshape({-1}), true);
  return flat.view(in.sizes);
}

// d/dx of a binary op on two operands where the other may be a number.
Tensor other_of(GradCtx& c, size_t i, const Tensor& g) { return c.operand(i, g.dtype()); }

// Gradient of max_pool2d_backward with respect to grad_output: for every window, the value of
// gg at the window's maximum of self (a gather through im2col; -inf padding keeps pads out).
Tensor max_pool_gather(const Tensor& gg, const Tensor& self, IntArrayRef kernel,
                       IntArrayRef stride_in, IntArrayRef padding, IntArrayRef dilation,
                       const std::vector<int64_t>& out_hw) {
  const bool batched = self.dim() == 4;
  Tensor x = batched ? self : self.unsqueeze(0);
  Tensor v = batched ? gg : gg.unsqueeze(0);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto pair = [](IntArrayRef a, size_t k) { return a.size() == 1 ? a[0] : a[k]; };
  const int64_t kh = pair(kernel, 0), kw = pair(kernel, 1);
  IntArrayRef stride = stride_in.empty() ? kernel : stride_in;
  const int64_t sh = pair(stride, 0), sw = pair(stride, 1), ph = pair(padding, 0),
                pw = pair(padding, 1), dh = pair(dilation, 0), dw = pair(dilation, 1);
  const int64_t oh = out_hw[0], ow = out_hw[1];
  // Pad to cover every window, ceil_mode ones included: left/top by the padding, right/bottom
  // to the end of the last window.
  const int64_t Hp = std::max(H + ph, (oh - 1) * sh + dh * (kh - 1) + 1 - ph) + ph;
  const int64_t Wp = std::max(W + pw, (ow - 1) * sw + dw * (kw - 1) + 1 - pw) + pw;
  const double ninf = -std::numeric_limits<double>::infinity();
  Tensor xp = full({N, C, Hp, Wp}, ninf, TensorOptions(x.dtype()));
  xp.slice(2, ph, ph + H).slice(3, pw, pw + W).copy_(x);
  Tensor vp = zeros({N, C, Hp, Wp}, TensorOptions(v.dtype()));
  vp.slice(2, ph, ph + H).slice(3, pw, pw + W).copy_(v);
  Tensor cx = im2col(xp, {kh, kw}, {dh, dw}, 0, {sh, sw}).view({N, C, kh * kw, -1});
  Tensor cv = im2col(vp, {kh, kw}, {dh, dw}, 0, {sh, sw}).view({N, C, kh * kw, -1});
  // Windows of the padded grid that the pool produced: its first oh x ow.
  const int64_t gh = (Hp - dh * (kh - 1) - 1) / sh + 1, gw = (Wp - dw * (kw - 1) - 1) / sw + 1;
  Tensor idx = argmax(cx, 2, true);
  Tensor picked = gather(cv, 2, idx).view({N, C, gh, gw}).slice(2, 0, oh).slice(3, 0, ow);
  return batched ? picked : picked.squeeze(0);
}

std::array<Derivative, 128> make_table() {
  std::array<Derivative, 128> t{};
  auto def = [&](OpKind k, uint32_t save, bool save_results, void (*fn)(GradCtx&)) {
    t[static_cast<size_t>(k)] = Derivative{save, save_results, fn};
  };

  // ---- unary --------------------------------------------------------------------------------
  def(OpKind::Neg, 0, false, [](GradCtx& c) { c.set(0, neg(c.grad())); });
  def(OpKind::Abs, A(0), false, [](GradCtx& c) { c.set(0, mul(c.grad(), sign(c.tensor(0)))); });
  def(OpKind::Exp, 0, true, [](GradCtx& c) { c.set(0, mul(c.grad(), c.result())); });
  def(OpKind::Exp2, 0, true, [](GradCtx& c) {
    c.set(0, mul(c.grad(), mul(c.result(), std::numbers::ln2)));
  });
  def(OpKind::Log, A(0), false, [](GradCtx& c) { c.set(0, div(c.grad(), c.tensor(0))); });
  def(OpKind::Log2, A(0), false, [](GradCtx& c) {
    c.set(0, div(c.grad(), mul(c.tensor(0), std::numbers::ln2)));
  });
  def(OpKind::Log1p, A(0), false, [](GradCtx& c) { c.set(0, div(c.grad(), add(c.tensor(0), 1))); });
  def(OpKind::Expm1, 0, true, [](GradCtx& c) { c.set(0, mul(c.grad(), add(c.result(), 1))); });
  def(OpKind::Sqrt, 0, true, [](GradCtx& c) { c.set(0, div(c.grad(), mul(c.result(), 2))); });
  def(OpKind::Rsqrt, 0, true, [](GradCtx& c) {
    Tensor r = c.result();
    c.set(0, mul(c.grad(), mul(mul(r, mul(r, r)), -0.5)));
  });
  def(OpKind::Sin, A(0), false, [](GradCtx& c) { c.set(0, mul(c.grad(), cos(c.tensor(0)))); });
  def(OpKind::Cos, A(0), false, [](GradCtx& c) { c.set(0, mul(c.grad(), neg(sin(c.tensor(0))))); });
  def(OpKind::Tan, 0, true, [](GradCtx& c) {
    Tensor r = c.result();
    c.set(0, mul(c.grad(), add(mul(r, r), 1)));
  });
  def(OpKind::Tanh, 0, true, [](GradCtx& c) {
    Tensor r = c.result();
    c.set(0, mul(c.grad(), sub(1, mul(r, r))));
  });
  def(OpKind::Sigmoid, 0, true, [](GradCtx& c) {
    Tensor r = c.result();
    c.set(0, mul(c.grad(), mul(r, sub(1, r))));
  });
  def(OpKind::Relu, 0, true, [](GradCtx& c) {
    if (detail::nothing_records()) {
      Tensor g = detail::relu_backward(c.grad(), c.result());
      if (g.defined()) return c.set(0, std::move(g));
    }
    c.set(0, where(gt(c.result(), 0), c.grad(), 0.0));
  });
  def(OpKind::Gelu, A(0), false, [](GradCtx& c) {
    Tensor x = c.tensor(0);
    const double inv_sqrt2 = 1.0 / std::numbers::sqrt2;
    const double inv_sqrt_2pi = 1.0 / std::sqrt(2.0 * std::numbers::pi);
    Tensor cdf = mul(add(erf(mul(x, inv_sqrt2)), 1), 0.5);
    Tensor pdf = mul(exp(mul(mul(x, x), -0.5)), inv_sqrt_2pi);
    c.set(0, mul(c.grad(), add(cdf, mul(x, pdf))));
  });
  def(OpKind::Silu, A(0), false, [](GradCtx& c) {
    Tensor x = c.tensor(0);
    Tensor s = sigmoid(x);
    c.set(0, mul(c.grad(), mul(s, add(mul(x, sub(1, s)), 1))));
  });
  def(OpKind::Erf, A(0), false, [](GradCtx& c) {
    Tensor x = c.tensor(0);
    c.set(0, mul(c.grad(), mul(exp(neg(mul(x, x))), 2.0 / std::sqrt(std::numbers::pi))));
  });
  // Piecewise constant: zero gradient (libtorch's convention).
  for (OpKind k : {OpKind::Floor, OpKind::Ceil, OpKind::Round, OpKind::Sign})
    def(k, 0, false, [](GradCtx& c) { c.set(0, zeros_like(c.grad())); });
  def(OpKind::Reciprocal, 0, true, [](GradCtx& c) {
    Tensor r = c.result();
    c.set(0, mul(c.grad(), neg(mul(r, r))));
  });

  // ---- binary (either side may be a number; the engine sums broadcast dims away) -----------
  def(OpKind::Add, 0, false, [](GradCtx& c) {
    if (c.needs(0)) c.set(0, c.grad());
    if (c.needs(1)) c.set(1, c.grad());
  });
  def(OpKind::Sub, 0, false, [](GradCtx& c) {
    if (c.needs(0)) c.set(0, c.grad());
    if (c.needs(1)) c.set(1, neg(c.grad()));
  });
  def(OpKind::Mul, A(0) | A(1), false, [](GradCtx& c) {
    const Tensor& g = c.grad();
    if (c.needs(0)) c.set(0, mul(g, other_of(c, 1, g)));
    if (c.needs(1)) c.set(1, mul(g, other_of(c, 0, g)));
  });
  def(OpKind::Div, A(0) | A(1), false, [](GradCtx& c) {
    const Tensor& g = c.grad();
    Tensor y = other_of(c, 1, g);
    if (c.needs(0)) c.set(0, div(g, y));
    if (c.needs(1)) c.set(1, neg(div(mul(g, other_of(c, 0, g)), mul(y, y))));
  });
  def(OpKind::Pow, A(0) | A(1), true, [](GradCtx& c) {
    const Tensor& g = c.grad();
    Tensor x = other_of(c, 0, g), y = other_of(c, 1, g);
    if (c.needs(0)) {
      // y * x^(y-1), with 0 where y == 0 (even at x == 0)
      Tensor d = mul(y, pow(x, sub(y, 1)));
      c.set(0, mul(g, where(eq(y, 0), 0.0, d)));
    }
    if (c.needs(1)) {
      // x^y * log(x), with 0 where x == 0 and y >= 0
      Tensor d = mul(c.result(), log(x));
      c.set(1, mul(g, where(logical_and(eq(x, 0), ge(y, 0)), 0.0, d)));
    }
  });
  def(OpKind::Remainder, A(0) | A(1), false, [](GradCtx& c) {
    const Tensor& g = c.grad();
    if (c.needs(0)) c.set(0, g);
    if (c.needs(1)) c.set(1, neg(mul(g, floor(div(other_of(c, 0, g), other_of(c, 1, g))))));
  });
  // Ties split the gradient evenly, like libtorch.
  def(OpKind::Maximum, A(0) | A(1), false, [](GradCtx& c) {
    const Tensor& g = c.grad();
    Tensor x = other_of(c, 0, g), y = other_of(c, 1, g);
    Tensor half = mul(g, 0.5), tie = eq(x, y);
    if (c.needs(0)) c.set(0, where(gt(x, y), g, where(tie, half, 0.0)));
    if (c.needs(1)) c.set(1, where(lt(x, y), g, where(tie, half, 0.0)));
  });
  def(OpKind::Minimum, A(0) | A(1), false, [](GradCtx& c) {
    const Tensor& g = c.grad();
    Tensor x = other_of(c, 0, g), y = other_of(c, 1, g);
    Tensor half = mul(g, 0.5), tie = eq(x, y);
    if (c.needs(0)) c.set(0, where(lt(x, y), g, where(tie, half, 0.0)));
    if (c.needs(1)) c.set(1, where(gt(x, y), g, where(tie, half, 0.0)));
  });
  def(OpKind::Atan2, A(0) | A(1), false, [](GradCtx& c) {
    const Tensor& g = c.grad();
    Tensor x = other_of(c, 0, g), y = other_of(c, 1, g);
    Tensor denom = add(mul(x, x), mul(y, y));
    if (c.needs(0)) c.set(0, div(mul(g, y), denom));
    if (c.needs(1)) c.set(1, div(mul(g, neg(x)), denom));
  });

  // ---- reductions ---------------------------------------------------------------------------
  def(OpKind::Sum, 0, false, [](GradCtx& c) { c.set(0, reduced(c, false).g); });
  def(OpKind::Prod, A(0), true, [](GradCtx& c) {
    // Products of the other elements without dividing by zeros: r / x where the slice has no
    // zero, the product of the non-zeros at the single zero of a slice, else 0.
    Tensor x = c.tensor(0);
    const auto& dims = c.arg(1).toIntList();
    Reduced rd = reduced(c, true);
    Tensor is_zero = eq(x, 0);
    Tensor zeros_in = expand_reduced(sum(is_zero, dims, true), c.sizes(0), dims, true);
    Tensor nonzero_prod =
        expand_reduced(ops::call(OpKind::Prod, {where(is_zero, 1.0, x), dims, true})[0].toTensor(),
                       c.sizes(0), dims, true);
    Tensor others = where(eq(zeros_in, 0), div(rd.r, where(is_zero, 1.0, x)),
                          where(logical_and(eq(zeros_in, 1), is_zero), nonzero_prod, 0.0));
    c.set(0, mul(rd.g, others));
  });
  auto amax_like = [](GradCtx& c) {
    Tensor x = c.tensor(0);
    Reduced rd = reduced(c, true);
    Tensor mask = eq(x, rd.r);
    const auto& dims = c.arg(1).toIntList();
    Tensor count = expand_reduced(sum(mask, dims, true), c.sizes(0), dims, true);
    c.set(0, where(mask, div(rd.g, count), 0.0));
  };
  t[static_cast<size_t>(OpKind::Amax)] = Derivative{A(0), true, amax_like};
  t[static_cast<size_t>(OpKind::Amin)] = Derivative{A(0), true, amax_like};

  // ---- elementwise with three inputs, copies ------------------------------------------------
  def(OpKind::Where, A(0), false, [](GradCtx& c) {
    Tensor cond = c.tensor(0);
    const Tensor& g = c.grad();
    if (c.needs(1)) c.set(1, where(cond, g, 0.0));
    if (c.needs(2)) c.set(2, where(cond, 0.0, g));
  });
  def(OpKind::Copy, 0, false, [](GradCtx& c) { c.set(0, c.grad()); });
  def(OpKind::Cast, 0, false, [](GradCtx& c) { c.set(0, c.grad().to(c.dtype(0))); });
  // self's values are overwritten: only src gets a gradient.
  def(OpKind::Assign, 0, false, [](GradCtx& c) {
    if (c.needs(1)) c.set(1, c.grad());
  });

  // ---- views --------------------------------------------------------------------------------
  def(OpKind::View, 0, false, [](GradCtx& c) { c.set(0, c.grad().reshape(c.sizes(0))); });
  def(OpKind::Permute, 0, false, [](GradCtx& c) {
    const auto& dims = c.arg(1).toIntList();
    std::vector<int64_t> inv(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) {
      const int64_t d = dims[i] < 0 ? dims[i] + static_cast<int64_t>(dims.size()) : dims[i];
      inv[d] = static_cast<int64_t>(i);
    }
    c.set(0, c.grad().permute(inv));
  });
  def(OpKind::Expand, 0, false, [](GradCtx& c) { c.set(0, sum_to(c.grad(), c.sizes(0))); });
  def(OpKind::Slice, 0, false, [](GradCtx& c) {
    c.set(0, embed_slice(c.grad(), c.meta(0), c.arg(1).toInt(), c.arg(2).toInt(),
                         c.arg(3).toInt(), c.arg(4).toInt(), true));
  });
  def(OpKind::Select, 0, false, [](GradCtx& c) {
    c.set(0, embed_slice(c.grad(), c.meta(0), c.arg(1).toInt(), c.arg(2).toInt(),
                         c.arg(2).toInt() + 1, 1, false));
  });
  def(OpKind::UnfoldView, 0, false, [](GradCtx& c) {
    const int64_t d = c.arg(1).toInt(), size = c.arg(2).toInt(), step = c.arg(3).toInt();
    c.set(0, view_backward_by_index(c.grad(), c.meta(0),
                                    [&](const Tensor& t) { return t.unfold(d, size, step); }));
  });
  def(OpKind::AsStrided, A(0), false, [](GradCtx& c) {
    // The view's strides/offset are in the input's storage; replay them on an index tensor
    // laid out like the input.
    Tensor x = c.tensor(0);
    const auto& size = c.arg(1).toIntList();
    const auto& stride = c.arg(2).toIntList();
    const int64_t offset = c.arg(3).toInt();
    const int64_t extent = static_cast<int64_t>(x.impl()->storage()->nbytes() / x.element_size());
    c.set(0, view_backward_by_index(c.grad(), c.meta(0), [&](const Tensor& pos) {
      Tensor storage_pos = full({extent}, -1, TensorOptions(kLong));
      storage_pos.as_strided(x.sizes(), x.strides(), x.storage_offset()).copy_(pos);
      Tensor picked = storage_pos.as_strided(size, stride, offset);
      KILN_CHECK(ge(picked, 0).all().item<bool>(),
                 "[as_strided] backward: the view reads memory outside its input, so it has no "
                 "gradient with respect to that input");
      return picked;
    }));
  });

  // ---- scans and normalisations -------------------------------------------------------------
  def(OpKind::Cumsum, 0, false, [](GradCtx& c) {
    // Reverse cumulative sum: total - cumsum + g.
    const Tensor& g = c.grad();
    const int64_t d = c.arg(1).toInt();
    c.set(0, add(sub(sum(g, {d}, true), cumsum(g, d)), g));
  });
  def(OpKind::Softmax, 0, true, [](GradCtx& c) {
    Tensor r = c.result();
    const int64_t d = c.arg(1).toInt();
    c.set(0, mul(r, sub(c.grad(), sum(mul(c.grad(), r), {d}, true))));
  });
  def(OpKind::LogSoftmax, 0, true, [](GradCtx& c) {
    Tensor r = c.result();
    const int64_t d = c.arg(1).toInt();
    c.set(0, sub(c.grad(), mul(exp(r), sum(c.grad(), {d}, true))));
  });

  // ---- library calls ------------------------------------------------------------------------
  def(OpKind::Mm, A(0) | A(1), false, [](GradCtx& c) {
    if (c.needs(0)) c.set(0, mm(c.grad(), c.tensor(1).t()));
    if (c.needs(1)) c.set(1, mm(c.tensor(0).t(), c.grad()));
  });
  def(OpKind::Bmm, A(0) | A(1), false, [](GradCtx& c) {
    if (c.needs(0)) c.set(0, bmm(c.grad(), c.tensor(1).transpose(1, 2)));
    if (c.needs(1)) c.set(1, bmm(c.tensor(0).transpose(1, 2), c.grad()));
  });
  def(OpKind::Addmm, A(1) | A(2), false, [](GradCtx& c) {
    const Tensor& g = c.grad();
    const Scalar beta = c.arg(3).toScalar(), alpha = c.arg(4).toScalar();
    if (c.needs(0)) c.set(0, mul(g, beta));
    if (c.needs(1)) c.set(1, mul(mm(g, c.tensor(2).t()), alpha));
    if (c.needs(2)) c.set(2, mul(mm(c.tensor(1).t(), g), alpha));
  });
  def(OpKind::Conv2d, A(0) | A(1), false, [](GradCtx& c) {
    // conv2d = per image and group, W[g] @ im2col(x)[g]; its adjoints via bmm and col2im.
    const Tensor& g0 = c.grad();
    Tensor x = c.tensor(0), w = c.tensor(1);
    const auto& stride = c.arg(3).toIntList();
    const auto& padding = c.arg(4).toIntList();
    const auto& dilation = c.arg(5).toIntList();
    const int64_t groups = c.arg(6).toInt();
    if (detail::nothing_records()) {
      // Not recorded: oneDNN's backward primitives where they apply (float32).
      std::array<Tensor, 3> grads;
      if (detail::conv2d_backward_onednn(g0, x, w, stride, padding, dilation, groups,
                                         {c.needs(0), c.needs(1), c.needs(2)}, grads)) {
        for (size_t i = 0; i < 3; ++i)
          if (grads[i].defined()) c.set(i, std::move(grads[i]));
        return;
      }
    }
    const bool batched = x.dim() == 4;
    Tensor x4 = batched ? x : x.unsqueeze(0), g = batched ? g0 : g0.unsqueeze(0);
    const int64_t N = x4.size(0), C = x4.size(1), H = x4.size(2), W = x4.size(3);
    const int64_t O = w.size(0), kh = w.size(2), kw = w.size(3);
    const int64_t L = g.size(2) * g.size(3), Cg = C / groups, Og = O / groups;
    const int64_t ckk = Cg * kh * kw;
    Tensor gr = g.reshape({N, groups, Og, L});  // [N, G, Og, L]
    if (c.needs(0)) {
      // cols_grad[n, g] = W[g]^T @ g[n, g]  -> col2im
      Tensor wg = w.reshape({groups, Og, ckk}).transpose(1, 2);  // [G, ckk, Og]
      Tensor cols = matmul(wg.unsqueeze(0), gr);                 // [N, G, ckk, L]
      Tensor gx = col2im(cols.reshape({N, C * kh * kw, L}), {H, W}, {kh, kw}, dilation, padding,
                         stride);
      c.set(0, batched ? gx : gx.squeeze(0));
    }
    if (c.needs(1)) {
      Tensor cols = im2col(x4, {kh, kw}, dilation, padding, stride).reshape({N, groups, ckk, L});
      Tensor gw = matmul(gr, cols.transpose(2, 3)).sum({0});  // [G, Og, ckk]
      c.set(1, gw.reshape(w.sizes()));
    }
    if (c.needs(2)) c.set(2, g.sum({0, 2, 3}));
  });

  // ---- windows ------------------------------------------------------------------------------
  def(OpKind::MaxPool2d, A(0), false, [](GradCtx& c) {
    c.set(0, max_pool2d_backward(c.grad(), c.tensor(0), c.arg(1).toIntList(),
                                 c.arg(2).toIntList(), c.arg(3).toIntList(),
                                 c.arg(4).toIntList(), c.arg(5).toBool()));
  });
  def(OpKind::AvgPool2d, 0, false, [](GradCtx& c) {
    Tensor self_like = zeros(c.sizes(0), TensorOptions(c.dtype(0)));
    c.set(0, avg_pool2d_backward(c.grad(), self_like, c.arg(1).toIntList(), c.arg(2).toIntList(),
                                 c.arg(3).toIntList(), c.arg(4).toBool(), c.arg(5).toBool(),
                                 c.arg(6).toOptionalInt()));
  });
  def(OpKind::Im2col, 0, false, [](GradCtx& c) {
    IntArrayRef s = c.sizes(0);
    c.set(0, col2im(c.grad(), {s[s.size() - 2], s[s.size() - 1]}, c.arg(1).toIntList(),
                    c.arg(2).toIntList(), c.arg(3).toIntList(), c.arg(4).toIntList()));
  });
  def(OpKind::Col2im, 0, false, [](GradCtx& c) {
    c.set(0, im2col(c.grad(), c.arg(2).toIntList(), c.arg(3).toIntList(), c.arg(4).toIntList(),
                    c.arg(5).toIntList()));
  });
  def(OpKind::MaxPool2dBackward, A(1), false, [](GradCtx& c) {
    // Linear in grad_output; piecewise constant in self (zero gradient there).
    if (c.needs(0)) {
      Tensor self = c.tensor(1);
      IntArrayRef gs = c.sizes(0);
      c.set(0, max_pool_gather(c.grad(), self, c.arg(2).toIntList(), c.arg(3).toIntList(),
                               c.arg(4).toIntList(), c.arg(5).toIntList(),
                               {gs[gs.size() - 2], gs[gs.size() - 1]}));
    }
    if (c.needs(1)) c.set(1, zeros(c.sizes(1), TensorOptions(c.dtype(1))));
  });
  def(OpKind::AvgPool2dBackward, 0, false, [](GradCtx& c) {
    // The adjoint of the adjoint: the pool itself.
    if (c.needs(0))
      c.set(0, avg_pool2d(c.grad(), c.arg(2).toIntList(), c.arg(3).toIntList(),
                          c.arg(4).toIntList(), c.arg(5).toBool(), c.arg(6).toBool(),
                          c.arg(7).toOptionalInt()));
    if (c.needs(1)) c.set(1, zeros(c.sizes(1), TensorOptions(c.dtype(1))));
  });

  // ---- joining and indexing -----------------------------------------------------------------
  def(OpKind::Cat, 0, false, [](GradCtx& c) {
    const int64_t d = c.arg(1).toInt();
    int64_t offset = 0;
    for (size_t j = 0; j < c.list_size(0); ++j) {
      const OutputMeta& m = c.elem_meta(0, j);
      // Legacy: 1-D empty tensors take no part in the shape.
      if (m.sizes.size() == 1 && m.sizes[0] == 0 && c.grad().dim() != 1) continue;
      const int64_t n = m.sizes[d];
      if (c.needs_elem(0, j)) c.set_elem(0, j, c.grad().narrow(d, offset, n));
      offset += n;
    }
  });
  def(OpKind::IndexSelect, A(2), false, [](GradCtx& c) {
    const int64_t d = c.arg(1).toInt();
    Tensor index = c.tensor(2);
    if (c.sizes(0).empty()) {
      c.set(0, c.grad().reshape({}));
      return;
    }
    std::vector<Tensor> idx(static_cast<size_t>(d) + 1);
    idx[d] = index.reshape({-1});
    c.set(0, index_put(zeros(c.sizes(0), TensorOptions(c.grad().dtype())), idx, c.grad(), true));
  });
  def(OpKind::Gather, A(2), false, [](GradCtx& c) {
    c.set(0, scatter_add(zeros(c.sizes(0), TensorOptions(c.grad().dtype())), c.arg(1).toInt(),
                         c.tensor(2), c.grad()));
  });
  def(OpKind::Scatter, A(2), false, [](GradCtx& c) {
    const int64_t d = c.arg(1).toInt();
    Tensor index = c.tensor(2);
    if (c.needs(0)) c.set(0, scatter(c.grad(), d, index, 0.0));
    if (c.needs(3)) c.set(3, gather(c.grad(), d, index));
  });
  def(OpKind::ScatterAdd, A(2), false, [](GradCtx& c) {
    if (c.needs(0)) c.set(0, c.grad());
    if (c.needs(3)) c.set(3, gather(c.grad(), c.arg(1).toInt(), c.tensor(2)));
  });
  def(OpKind::MaskedFill, A(1), false, [](GradCtx& c) {
    c.set(0, masked_fill(c.grad(), c.tensor(1), 0.0));
  });
  def(OpKind::Index, A(1), false, [](GradCtx& c) {
    // indices are kept through the list argument (saved with the call)
    std::vector<Tensor> idx = c.arg(1).toTensorList();
    c.set(0, index_put(zeros(c.sizes(0), TensorOptions(c.grad().dtype())), idx, c.grad(), true));
  });
  def(OpKind::IndexPut, A(1), false, [](GradCtx& c) {
    std::vector<Tensor> idx = c.arg(1).toTensorList();
    const bool accumulate = c.arg(3).toBool();
    const Tensor& g = c.grad();
    if (c.needs(0))
      c.set(0, accumulate ? g : index_put(g, idx, zeros({}, TensorOptions(g.dtype())), false));
    if (c.needs(2)) c.set(2, sum_to(ops::call(OpKind::Index, {g, idx})[0].toTensor(), c.sizes(2)));
  });
  def(OpKind::Sort, 0, true, [](GradCtx& c) {
    Tensor indices = c.result(1);
    const int64_t d = c.arg(1).toInt();
    Tensor z = zeros(c.sizes(0), TensorOptions(c.grad().dtype()));
    c.set(0, c.sizes(0).empty() ? c.grad() : scatter(z, d, indices, c.grad()));
  });
  def(OpKind::Topk, 0, true, [](GradCtx& c) {
    Tensor indices = c.result(1);
    const int64_t d = c.arg(2).toInt();
    Tensor z = zeros(c.sizes(0), TensorOptions(c.grad().dtype()));
    c.set(0, c.sizes(0).empty() ? c.grad().reshape({}) : scatter(z, d, indices, c.grad()));
  });
  return t;
}

}  // namespace

const Derivative* derivative_of(OpKind kind) {
  static const std::array<Derivative, 128> table = make_table();
  static_assert(128 >= 1, "table size");
  const size_t k = static_cast<size_t>(kind);
  KILN_ASSERT(k < table.size(), "op table has more rows than the derivative table");
  if (ops::op_info(kind).has(ops::kNonDiff)) return nullptr;
  const Derivative& d = table[k];
  return d.backward != nullptr ? &d : nullptr;
}

}  // namespace kiln::autograd
