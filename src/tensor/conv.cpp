// Convolution and pooling of the eager CPU core: conv2d, max_pool2d, avg_pool2d and im2col.
// float32/bfloat16 conv2d and (where semantics match exactly) avg_pool2d run on oneDNN; float64
// conv2d is im2col + the GEMM of linalg.cpp's ops; max_pool2d and im2col are direct kernels.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "kiln/functions.h"
#include "tensor/backward_kernels.h"
#include "tensor/internal.h"
#include "tensor/record.h"
#include "tensor/onednn.h"

namespace kiln {
namespace {

using detail::check_cpu;
using detail::make_empty;

constexpr int64_t kGrain = 32768;
// Multiply-adds per oneDNN convolution thread (see linalg.cpp).
constexpr int64_t kMacGrain = 1 << 17;

// Window geometry of a 2-D sliding op over an [H, W] plane.
struct Window {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t oh = 0, ow = 0;
};

// An int or a pair of ints (libtorch's _pair): {k} means {k, k}.
std::pair<int64_t, int64_t> pair_arg(const char* op, const char* name, IntArrayRef v) {
  KILN_CHECK(v.size() == 1 || v.size() == 2,
             "[{}] {} must be one int or two ints: got {}, expected 1 or 2 values.", op, name, v);
  return {v[0], v.size() == 1 ? v[0] : v[1]};
}

Window make_window(const char* op, IntArrayRef kernel, IntArrayRef stride, IntArrayRef padding,
                   IntArrayRef dilation) {
  Window w;
  std::tie(w.kh, w.kw) = pair_arg(op, "kernel_size", kernel);
  std::tie(w.sh, w.sw) = stride.empty() ? std::pair{w.kh, w.kw} : pair_arg(op, "stride", stride);
  std::tie(w.ph, w.pw) = pair_arg(op, "padding", padding);
  std::tie(w.dh, w.dw) = pair_arg(op, "dilation", dilation);
  KILN_CHECK(w.kh > 0 && w.kw > 0, "[{}] got kernel_size {}, expected positive values.", op,
             kernel);
  KILN_CHECK(w.sh > 0 && w.sw > 0, "[{}] got stride {}, expected positive values.", op, stride);
  KILN_CHECK(w.ph >= 0 && w.pw >= 0, "[{}] got padding {}, expected non-negative values.", op,
             padding);
  KILN_CHECK(w.dh > 0 && w.dw > 0, "[{}] got dilation {}, expected positive values.", op, dilation);
  return w;
}

// Checks the input of a batched-or-not 2-D op: [C, H, W] or [N, C, H, W] with C, H, W > 0.
void check_input_4d(const char* op, const Tensor& input) {
  check_cpu(input, op, "input");
  KILN_CHECK(input.dim() == 3 || input.dim() == 4,
             "[{}] got input sizes {}, expected a 3-D [C, H, W] or 4-D [N, C, H, W] tensor.", op,
             input.sizes());
  bool nonempty = true;
  for (int64_t d = input.dim() - 3; d < input.dim(); ++d) nonempty &= input.size(d) > 0;
  KILN_CHECK(nonempty,
             "[{}] got input sizes {}, expected non-zero C, H and W (only the batch "
             "may be empty).",
             op, input.sizes());
}

// Rows of the sliding-block grid: floor((in + 2p - d(k-1) - 1) / s) + 1 (negative: none fit).
int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

// libtorch's pooling_output_shape: ceil_mode rounds up, but the last window must start inside
// the input or its left padding.
int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// [N, C, H, W] strides of a channels-last tensor ([N, H, W, C] in memory).
bool is_channels_last(const Tensor& t) {
  if (t.dim() != 4 || t.is_contiguous()) return false;
  const int64_t c = t.size(1), h = t.size(2), w = t.size(3);
  const int64_t want[4] = {h * w * c, 1, w * c, c};
  for (int64_t d = 0; d < 4; ++d)
    if (t.size(d) != 1 && t.stride(d) != want[d]) return false;
  return true;
}

Tensor empty_nchw(int64_t n, int64_t c, int64_t h, int64_t w, ScalarType dt, bool channels_last) {
  if (!channels_last) return make_empty({n, c, h, w}, dt);
  return empty_strided({n, c, h, w}, {h * w * c, 1, w * c, c}, dt);
}

// ---- im2col kernel ------------------------------------------------------------------------
// Output columns [lo, hi) whose input column xo*stride + x0 lies in [0, W); the others read
// padding.
inline std::pair<int64_t, int64_t> columns_inside(int64_t x0, int64_t stride, int64_t ow,
                                                  int64_t W) {
  const int64_t lo = x0 >= 0 ? 0 : std::min(ow, (-x0 + stride - 1) / stride);
  const int64_t hi = x0 > W - 1 ? lo : std::max(lo, std::min(ow, (W - 1 - x0) / stride + 1));
  return {lo, hi};
}

// Row r = (c*kh + i)*kw + j of the column matrix, L = oh*ow values.
template <typename T>
void im2col_row(const T* x, T* out, int64_t r, int64_t H, int64_t W, const Window& w) {
  const int64_t j = r % w.kw, i = (r / w.kw) % w.kh, c = r / (w.kw * w.kh);
  const T* plane = x + c * H * W;
  const int64_t x0 = j * w.dw - w.pw;
  const auto [lo, hi] = columns_inside(x0, w.sw, w.ow, W);
  for (int64_t y = 0; y < w.oh; ++y) {
    const int64_t iy = y * w.sh - w.ph + i * w.dh;
    T* orow = out + y * w.ow;
    if (iy < 0 || iy >= H) {
      std::fill(orow, orow + w.ow, T(0));
      continue;
    }
    const T* irow = plane + iy * W;
    std::fill(orow, orow + lo, T(0));
    if (w.sw == 1) {
      std::copy(irow + lo + x0, irow + hi + x0, orow + lo);
    } else {
      for (int64_t xo = lo; xo < hi; ++xo) orow[xo] = irow[xo * w.sw + x0];
    }
    std::fill(orow + hi, orow + w.ow, T(0));
  }
}

// cols[(c*kh + i)*kw + j][y*ow + x] = x[c][y*sh - ph + i*dh][x*sw - pw + j*dw], 0 outside.
// x is a contiguous [planes, H, W] block, cols a contiguous [planes*kh*kw, oh*ow] block.
template <typename T>
void im2col_kernel(const T* x, T* cols, int64_t planes, int64_t H, int64_t W, const Window& w) {
  const int64_t L = w.oh * w.ow, rows = planes * w.kh * w.kw;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, L));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) im2col_row(x, cols + r * L, r, H, W, w);
  });
}

// ---- conv2d -------------------------------------------------------------------------------
// Returns false when oneDNN has no implementation for this signature. x is contiguous in NCHW
// or NHWC (channels_last), out allocated in the same layout, w and bias contiguous.
bool conv2d_onednn(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
                   const Window& win, int64_t groups, bool channels_last) {
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::data_type dt = *onednn::to_dnnl(x.dtype());
  const int64_t O = w.size(0);
  const dnnl::memory::dims src = {x.size(0), x.size(1), x.size(2), x.size(3)};
  const dnnl::memory::dims dst = {out.size(0), O, out.size(2), out.size(3)};
  const dnnl::memory::dims wd =
      groups == 1 ? dnnl::memory::dims{O, w.size(1), win.kh, win.kw}
                  : dnnl::memory::dims{groups, O / groups, w.size(1), win.kh, win.kw};
  const tag act = channels_last ? tag::nhwc : tag::nchw;
  const bool has_bias = bias.defined();
  onednn::KeyBuilder key("conv2d");
  key.add(static_cast<int64_t>(dt)).add(src).add(dst).add(wd).add(channels_last).add(has_bias);
  key.add(IntArrayRef({win.sh, win.sw, win.ph, win.pw, win.dh, win.dw}));
  const int64_t macs = out.numel() * w.size(1) * win.kh * win.kw;
  const int threads = onednn::threads_for(macs, kMacGrain);
  auto prim = onednn::get_or_create("conv2d", key, threads, [&] {
    dnnl::memory::desc smd(src, dt, act), dmd(dst, dt, act);
    dnnl::memory::desc user_wmd(wd, dt, groups == 1 ? tag::oihw : tag::goihw);
    // Every operand in the layout the implementation wants: plain weights force slow kernels
    // (NHWC with plain OIHW weights falls back to oneDNN's reference convolution), and a plain
    // NCHW destination makes oneDNN pick its im2col GEMM, which on AVX2 is 1.7x slower than the
    // direct kernel on a blocked (nChw8c) destination plus one reorder back (measured on the
    // 1x3x512x512 -> 16 channel 3x3 benchmark: 6.5 ms against 3.8 ms).
    const tag choose = channels_last ? act : tag::any;
    dnnl::memory::desc wmd(wd, dt, tag::any);
    dnnl::memory::desc bmd = has_bias ? dnnl::memory::desc({O}, dt, tag::a) : dnnl::memory::desc();
    // oneDNN's dilation counts the gaps (libtorch's minus one).
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        dnnl::memory::desc(src, dt, choose), wmd, bmd, dnnl::memory::desc(dst, dt, choose),
        {win.sh, win.sw}, {win.dh - 1, win.dw - 1}, {win.ph, win.pw}, {win.ph, win.pw});
    dnnl::convolution_forward::primitive_desc pd(d, onednn::attr(), onednn::engine());
    onednn::Primitive p;
    p.primitive = dnnl::convolution_forward(pd);
    p.scratchpad = pd.scratchpad_desc();
    // mds: user src, user weights, weights, bias, user dst, src, dst; reorders: weights, src, dst
    // (null where the layouts agree).
    p.mds = {smd, user_wmd, pd.weights_desc(), bmd, dmd, pd.src_desc(), pd.dst_desc()};
    auto reorder = [&](const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
      return from == to ? nullptr : onednn::make_reorder(from, to, threads);
    };
    p.reorders = {reorder(user_wmd, pd.weights_desc()), reorder(smd, pd.src_desc()),
                  reorder(pd.dst_desc(), dmd)};
    return p;
  });
  if (!prim) return false;
  // Operand `user` in the primitive's layout `mine`: the user's memory itself, or (with
  // copy_in) a reordered copy in a byte buffer kept alive by `keep`.
  auto operand = [&](size_t user, size_t mine, const onednn::Primitive* reorder, void* data,
                     Tensor& keep, bool copy_in) {
    dnnl::memory um = onednn::memory("conv2d", prim->mds[user], data);
    if (!reorder) return std::pair{um, um};
    keep = make_empty({static_cast<int64_t>(prim->mds[mine].get_size())}, kByte);
    dnnl::memory m = onednn::memory("conv2d", prim->mds[mine], keep.data_ptr());
    if (copy_in) onednn::execute("conv2d", *reorder, {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, m}});
    return std::pair{um, m};
  };
  Tensor wbuf, sbuf, dbuf;
  const auto wmem = operand(1, 2, prim->reorders[0].get(), w.data_ptr(), wbuf, true).second;
  const auto smem = operand(0, 5, prim->reorders[1].get(), x.data_ptr(), sbuf, true).second;
  const auto [user_dst, dmem] =
      operand(4, 6, prim->reorders[2].get(), out.data_ptr(), dbuf, false);
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, dmem}};
  if (has_bias)
    args.emplace(DNNL_ARG_BIAS, onednn::memory("conv2d", prim->mds[3], bias.data_ptr()));
  onednn::execute("conv2d", *prim, std::move(args));
  if (prim->reorders[2])
    onednn::execute("conv2d", *prim->reorders[2], {{DNNL_ARG_FROM, dmem}, {DNNL_ARG_TO, user_dst}});
  return true;
}

// Writes bias[o] (or zero) into every element of channel o of a contiguous [N, O, L] output.
template <typename T>
void fill_channels(T* out, const T* bias, int64_t N, int64_t O, int64_t L) {
  parallel_for(0, N * O, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, L)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r)
                   std::fill(out + r * L, out + (r + 1) * L, bias ? bias[r % O] : T(0));
               });
}

// im2col + GEMM for dtypes oneDNN lacks: per image, out[g] = W[g] @ cols[g] + bias.
void conv2d_im2col(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
                   const Window& win, int64_t groups) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = w.size(0);
  const int64_t L = win.oh * win.ow, ckk = C / groups * win.kh * win.kw;
  Tensor cols = make_empty({C * win.kh * win.kw, L}, x.dtype());
  const Tensor wg = w.reshape({groups, O / groups, ckk});
  KILN_DISPATCH_FLOATING_TYPES(x.dtype(), "conv2d", [&] {
    const scalar_t* bp = bias.defined() ? bias.data_ptr<scalar_t>() : nullptr;
    fill_channels<scalar_t>(out.data_ptr<scalar_t>(), bp, N, O, L);
    for (int64_t n = 0; n < N; ++n) {
      im2col_kernel<scalar_t>(x.data_ptr<scalar_t>() + n * C * H * W, cols.data_ptr<scalar_t>(), C,
                              H, W, win);
      // out[n] += W @ cols, on top of the bias already written.
      Tensor res = out.select(0, n).view({groups, O / groups, L});
      Tensor prod = bmm(wg, cols.view({groups, ckk, L}));
      res.add_(prod);
    }
  });
}

// ---- conv2d backward on oneDNN ------------------------------------------------------------
// The shapes and attributes a oneDNN float32 NCHW convolution is described by: shared by the
// backward-data and backward-weights primitives and the forward primitive they take as a hint.
struct ConvDims {
  dnnl::memory::dims src, dst, wd, strides, dilates, padding;
  int64_t macs = 0;

  ConvDims(const Tensor& x, const Tensor& w, const Tensor& g, const Window& win, int64_t groups) {
    const int64_t O = w.size(0);
    src = {x.size(0), x.size(1), x.size(2), x.size(3)};
    dst = {g.size(0), O, g.size(2), g.size(3)};
    wd = groups == 1 ? dnnl::memory::dims{O, w.size(1), win.kh, win.kw}
                     : dnnl::memory::dims{groups, O / groups, w.size(1), win.kh, win.kw};
    strides = {win.sh, win.sw};
    dilates = {win.dh - 1, win.dw - 1};  // oneDNN counts the gaps (libtorch's minus one)
    padding = {win.ph, win.pw};
    macs = g.numel() * w.size(1) * win.kh * win.kw;
  }
  void add_to(onednn::KeyBuilder& key) const {
    key.add(src).add(dst).add(wd).add(strides).add(dilates).add(padding);
  }
  dnnl::memory::desc md(const dnnl::memory::dims& d, dnnl::memory::format_tag t) const {
    return dnnl::memory::desc(d, dnnl::memory::data_type::f32, t);
  }
  dnnl::memory::format_tag weights_tag() const {
    return wd.size() == 4 ? dnnl::memory::format_tag::oihw : dnnl::memory::format_tag::goihw;
  }
  // The forward primitive a backward one is created against.
  dnnl::convolution_forward::primitive_desc forward_hint(bool bias) const {
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::desc bmd = bias ? md({dst[1]}, tag::a) : dnnl::memory::desc();
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, md(src, tag::nchw),
        md(wd, tag::any), bmd, md(dst, tag::nchw), strides, dilates, padding, padding);
    return dnnl::convolution_forward::primitive_desc(d, onednn::attr(), onednn::engine());
  }
};

// grad_input = conv2d's adjoint in x, into gx (contiguous NCHW). mds: diff_src, user weights,
// the primitive's weights, diff_dst; reorders[0] takes user weights to the primitive's layout.
bool conv2d_backward_data_onednn(const Tensor& g, const Tensor& w, const Tensor& gx,
                                 const ConvDims& cd) {
  using tag = dnnl::memory::format_tag;
  onednn::KeyBuilder key("conv2d_backward_data");
  cd.add_to(key);
  const int threads = onednn::threads_for(cd.macs, kMacGrain);
  auto prim = onednn::get_or_create("conv2d_backward", key, threads, [&] {
    const dnnl::memory::desc dsrc = cd.md(cd.src, tag::nchw), ddst = cd.md(cd.dst, tag::nchw);
    const dnnl::memory::desc user_wmd = cd.md(cd.wd, cd.weights_tag());
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, dsrc,
                                            cd.md(cd.wd, tag::any), ddst, cd.strides, cd.dilates,
                                            cd.padding, cd.padding);
    dnnl::convolution_backward_data::primitive_desc pd(d, onednn::attr(), onednn::engine(),
                                                       cd.forward_hint(false));
    onednn::Primitive p;
    p.primitive = dnnl::convolution_backward_data(pd);
    p.scratchpad = pd.scratchpad_desc();
    p.mds = {dsrc, user_wmd, pd.weights_desc(), ddst};
    p.reorders.push_back(pd.weights_desc() != user_wmd
                             ? onednn::make_reorder(user_wmd, pd.weights_desc(), threads)
                             : nullptr);
    return p;
  });
  if (!prim) return false;
  const char* op = "conv2d_backward";
  dnnl::memory wmem = onednn::memory(op, prim->mds[1], w.data_ptr());
  Tensor wbuf;
  if (prim->reorders[0]) {
    wbuf = make_empty({static_cast<int64_t>(prim->mds[2].get_size())}, kByte);
    dnnl::memory reordered = onednn::memory(op, prim->mds[2], wbuf.data_ptr());
    onednn::execute(op, *prim->reorders[0], {{DNNL_ARG_FROM, wmem}, {DNNL_ARG_TO, reordered}});
    wmem = reordered;
  }
  onednn::execute(op, *prim,
                  {{DNNL_ARG_DIFF_DST, onednn::memory(op, prim->mds[3], g.data_ptr())},
                   {DNNL_ARG_WEIGHTS, wmem},
                   {DNNL_ARG_DIFF_SRC, onednn::memory(op, prim->mds[0], gx.data_ptr())}});
  return true;
}

// grad_weight (and grad_bias when gb is defined) into gw (contiguous OIHW) and gb. mds: src,
// user weights, the primitive's diff_weights, diff_bias, diff_dst; reorders[0] takes the
// primitive's weights layout back to the user's.
bool conv2d_backward_weights_onednn(const Tensor& g, const Tensor& x, const Tensor& gw,
                                    const Tensor& gb, const ConvDims& cd) {
  using tag = dnnl::memory::format_tag;
  const bool bias = gb.defined();
  onednn::KeyBuilder key("conv2d_backward_weights");
  cd.add_to(key);
  key.add(bias);
  const int threads = onednn::threads_for(cd.macs, kMacGrain);
  auto prim = onednn::get_or_create("conv2d_backward", key, threads, [&] {
    const dnnl::memory::desc src = cd.md(cd.src, tag::nchw), ddst = cd.md(cd.dst, tag::nchw);
    const dnnl::memory::desc user_wmd = cd.md(cd.wd, cd.weights_tag());
    const dnnl::memory::desc bmd = bias ? cd.md({cd.dst[1]}, tag::a) : dnnl::memory::desc();
    dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, src,
                                               cd.md(cd.wd, tag::any), bmd, ddst, cd.strides,
                                               cd.dilates, cd.padding, cd.padding);
    dnnl::convolution_backward_weights::primitive_desc pd(d, onednn::attr(), onednn::engine(),
                                                          cd.forward_hint(bias));
    onednn::Primitive p;
    p.primitive = dnnl::convolution_backward_weights(pd);
    p.scratchpad = pd.scratchpad_desc();
    p.mds = {src, user_wmd, pd.diff_weights_desc(), bmd, ddst};
    p.reorders.push_back(pd.diff_weights_desc() != user_wmd
                             ? onednn::make_reorder(pd.diff_weights_desc(), user_wmd, threads)
                             : nullptr);
    return p;
  });
  if (!prim) return false;
  const char* op = "conv2d_backward";
  const dnnl::memory user_w = onednn::memory(op, prim->mds[1], gw.data_ptr());
  Tensor wbuf;
  dnnl::memory wmem = user_w;
  if (prim->reorders[0]) {
    wbuf = make_empty({static_cast<int64_t>(prim->mds[2].get_size())}, kByte);
    wmem = onednn::memory(op, prim->mds[2], wbuf.data_ptr());
  }
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, onednn::memory(op, prim->mds[0], x.data_ptr())},
      {DNNL_ARG_DIFF_DST, onednn::memory(op, prim->mds[4], g.data_ptr())},
      {DNNL_ARG_DIFF_WEIGHTS, wmem}};
  if (bias) args.emplace(DNNL_ARG_DIFF_BIAS, onednn::memory(op, prim->mds[3], gb.data_ptr()));
  onednn::execute(op, *prim, std::move(args));
  if (prim->reorders[0])
    onednn::execute(op, *prim->reorders[0], {{DNNL_ARG_FROM, wmem}, {DNNL_ARG_TO, user_w}});
  return true;
}

// ---- pooling kernels ----------------------------------------------------------------------
// The kernel taps [first, last) of one dim whose input index start + t*dilation is in [0, n).
inline std::pair<int64_t, int64_t> taps_inside(int64_t start, int64_t k, int64_t dilation,
                                               int64_t n) {
  const int64_t first = start < 0 ? (-start + dilation - 1) / dilation : 0;
  const int64_t last = n - start <= 0 ? 0 : std::min(k, (n - start + dilation - 1) / dilation);
  return {first, std::max(first, last)};
}

// Where the window of each output row (or column) lands: its first input index (possibly in
// the padding) and the taps [first, last) that fall inside the input. Computed once per call,
// so the per-plane loops below do no index arithmetic beyond a multiply-add per tap.
struct Span {
  int64_t start, first, last;
};
struct WindowTaps {
  std::vector<Span> rows, cols;
  bool full = true;  // every window lies wholly inside the input (no padding or overhang)
};
WindowTaps window_taps(int64_t H, int64_t W, const Window& w) {
  WindowTaps t;
  t.rows.resize(static_cast<size_t>(w.oh));
  t.cols.resize(static_cast<size_t>(w.ow));
  for (int64_t oy = 0; oy < w.oh; ++oy) {
    const int64_t y0 = oy * w.sh - w.ph;
    const auto [i0, i1] = taps_inside(y0, w.kh, w.dh, H);
    t.rows[oy] = {y0, i0, i1};
    t.full &= i0 == 0 && i1 == w.kh;
  }
  for (int64_t ox = 0; ox < w.ow; ++ox) {
    const int64_t x0 = ox * w.sw - w.pw;
    const auto [j0, j1] = taps_inside(x0, w.kw, w.dw, W);
    t.cols[ox] = {x0, j0, j1};
    t.full &= j0 == 0 && j1 == w.kw;
  }
  return t;
}

// v replaces the running maximum a: larger, or NaN (NaN wins and then stays, as in libtorch).
// Bitwise or, so a loop of these vectorises as compare + blend.
template <typename A>
inline bool max_takes(A v, A a) {
  if constexpr (std::is_floating_point_v<A>)
    return (v > a) | (v != v);
  else
    return v > a;
}

template <typename A>
constexpr A max_identity() {
  return std::is_floating_point_v<A> ? -std::numeric_limits<A>::infinity()
                                     : std::numeric_limits<A>::lowest();
}

// Windows wholly inside the plane, kernel KH x KW known at compile time (the common 2x2 and
// 3x3 pools): fully unrolled taps, no bounds.
template <int KH, int KW, typename T>
void max_pool_plane_full(const T* plane, T* out, int64_t W, const Window& w) {
  using A = opmath_t<T>;
  for (int64_t oy = 0; oy < w.oh; ++oy) {
    const T* base = plane + oy * w.sh * W;
    T* o = out + oy * w.ow;
    for (int64_t ox = 0; ox < w.ow; ++ox) {
      const T* p = base + ox * w.sw;
      A a = static_cast<A>(p[0]);
      for (int i = 0; i < KH; ++i)
        for (int j = (i == 0 ? 1 : 0); j < KW; ++j) {
          const A v = static_cast<A>(p[i * w.dh * W + j * w.dw]);
          a = max_takes(v, a) ? v : a;
        }
      o[ox] = static_cast<T>(a);
    }
  }
}

// Any geometry: the taps of each window that lie inside the input (from the per-call tables).
template <typename T>
void max_pool_plane(const T* plane, T* out, int64_t W, const Window& w, const WindowTaps& t) {
  using A = opmath_t<T>;
  for (int64_t oy = 0; oy < w.oh; ++oy) {
    const Span ry = t.rows[oy];
    T* o = out + oy * w.ow;
    for (int64_t ox = 0; ox < w.ow; ++ox) {
      const Span cx = t.cols[ox];
      A a = max_identity<A>();
      for (int64_t i = ry.first; i < ry.last; ++i) {
        const T* row = plane + (ry.start + i * w.dh) * W + cx.start;
        for (int64_t j = cx.first; j < cx.last; ++j) {
          const A v = static_cast<A>(row[j * w.dw]);
          a = max_takes(v, a) ? v : a;
        }
      }
      o[ox] = static_cast<T>(a);
    }
  }
}

// libtorch's divisor: divisor_override, else the window clipped to the padded input
// (count_include_pad) or to the input.
template <typename T>
void avg_pool_plane(const T* plane, T* out, int64_t H, int64_t W, const Window& w,
                    bool count_include_pad, std::optional<int64_t> divisor_override) {
  using A = opmath_t<T>;
  for (int64_t oy = 0; oy < w.oh; ++oy) {
    const int64_t ys = oy * w.sh - w.ph, ye = std::min(ys + w.kh, H + w.ph);
    const int64_t y0 = std::max<int64_t>(ys, 0), y1 = std::min(ye, H);
    for (int64_t ox = 0; ox < w.ow; ++ox) {
      const int64_t xs = ox * w.sw - w.pw, xe = std::min(xs + w.kw, W + w.pw);
      const int64_t x0 = std::max<int64_t>(xs, 0), x1 = std::min(xe, W);
      if (y0 >= y1 || x0 >= x1) {
        out[oy * w.ow + ox] = T(0);
        continue;
      }
      A sum = 0;
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) sum += static_cast<A>(plane[iy * W + ix]);
      const int64_t div = divisor_override    ? *divisor_override
                          : count_include_pad ? (ye - ys) * (xe - xs)
                                              : (y1 - y0) * (x1 - x0);
      out[oy * w.ow + ox] = static_cast<T>(sum / static_cast<A>(div));
    }
  }
}

// Runs plane_fn(plane_in, plane_out) over the contiguous [planes, H, W] -> [planes, oh, ow]
// planes, split across the pool.
template <typename T, typename F>
void for_each_plane(const T* x, T* y, int64_t planes, int64_t H, int64_t W, const Window& w,
                    const F& plane_fn) {
  const int64_t work = std::max<int64_t>(1, w.oh * w.ow * w.kh * w.kw);
  parallel_for(0, planes, std::max<int64_t>(1, kGrain / work), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) plane_fn(x + p * H * W, y + p * w.oh * w.ow);
  });
}

// Returns false when oneDNN has no implementation. Only called where oneDNN's windows equal
// libtorch's: no extra ceil_mode padding and no divisor_override.
bool avg_pool_onednn(const Tensor& x, const Tensor& out, const Window& w, bool count_include_pad,
                     bool channels_last) {
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::data_type dt = *onednn::to_dnnl(x.dtype());
  const dnnl::memory::dims src = {x.size(0), x.size(1), x.size(2), x.size(3)};
  const dnnl::memory::dims dst = {out.size(0), out.size(1), out.size(2), out.size(3)};
  onednn::KeyBuilder key("avg_pool2d");
  key.add(static_cast<int64_t>(dt)).add(src).add(dst).add(channels_last).add(count_include_pad);
  key.add(IntArrayRef({w.kh, w.kw, w.sh, w.sw, w.ph, w.pw}));
  const int threads = onednn::threads_for(out.numel() * w.kh * w.kw, kGrain);
  auto prim = onednn::get_or_create("avg_pool2d", key, threads, [&] {
    const tag t = channels_last ? tag::nhwc : tag::nchw;
    dnnl::memory::desc smd(src, dt, t), dmd(dst, dt, t);
    dnnl::pooling_v2_forward::desc d(
        dnnl::prop_kind::forward_inference,
        count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                          : dnnl::algorithm::pooling_avg_exclude_padding,
        smd, dmd, {w.sh, w.sw}, {w.kh, w.kw}, {0, 0}, {w.ph, w.pw}, {w.ph, w.pw});
    dnnl::pooling_v2_forward::primitive_desc pd(d, onednn::attr(), onednn::engine());
    onednn::Primitive p;
    p.primitive = dnnl::pooling_v2_forward(pd);
    p.scratchpad = pd.scratchpad_desc();
    p.mds = {smd, dmd};
    return p;
  });
  if (!prim) return false;
  onednn::execute("avg_pool2d", *prim,
                  {{DNNL_ARG_SRC, onednn::memory("avg_pool2d", prim->mds[0], x.data_ptr())},
                   {DNNL_ARG_DST, onednn::memory("avg_pool2d", prim->mds[1], out.data_ptr())}});
  return true;
}

// Shared checks and output geometry of max_pool2d/avg_pool2d.
Window pool_window(const char* op, const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                   IntArrayRef padding, IntArrayRef dilation, bool ceil_mode) {
  check_input_4d(op, input);
  Window w = make_window(op, kernel_size, stride, padding, dilation);
  KILN_CHECK(w.ph <= w.kh / 2 && w.pw <= w.kw / 2,
             "[{}] got padding {} and kernel_size {}, expected padding to be at most half of "
             "the kernel size.",
             op, padding, kernel_size);
  const int64_t H = input.size(-2), W = input.size(-1);
  w.oh = pool_out_size(H, w.kh, w.sh, w.ph, w.dh, ceil_mode);
  w.ow = pool_out_size(W, w.kw, w.sw, w.pw, w.dw, ceil_mode);
  KILN_CHECK(w.oh >= 1 && w.ow >= 1,
             "[{}] output size is too small: got input sizes {}, which gives an output of "
             "[{}, {}], expected at least 1 in each spatial dim (the kernel is larger than the "
             "padded input).",
             op, input.sizes(), w.oh, w.ow);
  return w;
}

}  // namespace

// ---- public ops ---------------------------------------------------------------------------
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
              IntArrayRef padding, IntArrayRef dilation, int64_t groups) {
  if (detail::should_record(input, weight, bias)) [[unlikely]]
    return detail::record1(ops::OpKind::Conv2d, {input, weight, detail::optional_arg(bias),
                                                 stride.vec(), padding.vec(), dilation.vec(),
                                                 groups});
  check_cpu(input, "conv2d", "input");
  check_cpu(weight, "conv2d", "weight");
  KILN_CHECK(input.dim() == 3 || input.dim() == 4,
             "[conv2d] got input sizes {}, expected a 3-D [C, H, W] or 4-D [N, C, H, W] tensor.",
             input.sizes());
  KILN_CHECK(weight.dim() == 4,
             "[conv2d] got weight sizes {}, expected a 4-D [out_channels, in_channels / groups, "
             "kH, kW] tensor.",
             weight.sizes());
  KILN_CHECK(input.dtype() == weight.dtype(),
             "[conv2d] input and weight have different dtypes: got {} and {}, expected the same "
             "dtype.",
             dtype_name(input.dtype()), dtype_name(weight.dtype()));
  KILN_CHECK(is_floating_point(input.dtype()),
             "[conv2d] got dtype {}, expected a floating-point dtype.", dtype_name(input.dtype()));
  KILN_CHECK(groups > 0, "[conv2d] got groups {}, expected a positive number.", groups);
  Window win =
      make_window("conv2d", IntArrayRef(weight.sizes().begin() + 2, 2), stride, padding, dilation);
  const bool batched = input.dim() == 4;
  const Tensor x4 = batched ? input : input.unsqueeze(0);
  const int64_t N = x4.size(0), C = x4.size(1), H = x4.size(2), W = x4.size(3);
  const int64_t O = weight.size(0);
  KILN_CHECK(weight.size(1) * groups == C,
             "[conv2d] channels do not match: got input sizes {}, weight sizes {} and groups {}, "
             "expected input channels ({}) == weight.size(1) * groups ({}).",
             input.sizes(), weight.sizes(), groups, C, weight.size(1) * groups);
  KILN_CHECK(O % groups == 0,
             "[conv2d] got weight sizes {} and groups {}, expected out_channels ({}) divisible "
             "by groups.",
             weight.sizes(), groups, O);
  if (bias.defined()) {
    check_cpu(bias, "conv2d", "bias");
    KILN_CHECK(bias.dim() == 1 && bias.size(0) == O,
               "[conv2d] got bias sizes {}, expected [{}] (one per output channel).", bias.sizes(),
               O);
    KILN_CHECK(bias.dtype() == input.dtype(),
               "[conv2d] input and bias have different dtypes: got {} and {}, expected the same "
               "dtype.",
               dtype_name(input.dtype()), dtype_name(bias.dtype()));
  }
  const int64_t ekh = win.dh * (win.kh - 1) + 1, ekw = win.dw * (win.kw - 1) + 1;
  KILN_CHECK(H + 2 * win.ph >= ekh && W + 2 * win.pw >= ekw,
             "[conv2d] kernel is larger than the padded input: got padded input size [{}, {}] "
             "and effective kernel size [{}, {}] (kernel {} with dilation {}), expected the "
             "kernel to fit.",
             H + 2 * win.ph, W + 2 * win.pw, ekh, ekw, IntArrayRef(weight.sizes().begin() + 2, 2),
             IntArrayRef(std::vector<int64_t>{win.dh, win.dw}));
  win.oh = conv_out_size(H, win.kh, win.sh, win.ph, win.dh);
  win.ow = conv_out_size(W, win.kw, win.sw, win.pw, win.dw);

  const bool channels_last = is_channels_last(x4);
  const Tensor x = channels_last ? x4 : x4.contiguous();
  Tensor out = empty_nchw(N, O, win.oh, win.ow, input.dtype(), channels_last);
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  if (out.numel() > 0) {
    if (C == 0) {
      // No input channels: every output is the bias.
      out.copy_(b.defined() ? b.view({1, O, 1, 1}) : zeros({1}, input.dtype()));
    } else {
      const Tensor w = weight.contiguous();
      const ScalarType dt = input.dtype();
      bool done = false;
      if (dt != kDouble) done = conv2d_onednn(x, w, b, out, win, groups, channels_last);
      if (!done && dt != kDouble && dt != kFloat) {
        // No 16-bit convolution on this CPU: compute in float32, round once.
        Tensor r = conv2d(x.to(kFloat), w.to(kFloat), b.defined() ? b.to(kFloat) : Tensor(),
                          {win.sh, win.sw}, {win.ph, win.pw}, {win.dh, win.dw}, groups);
        out.copy_(r);
        done = true;
      }
      if (!done) {
        if (channels_last) {
          Tensor tmp = make_empty(out.sizes(), dt);
          conv2d_im2col(x.contiguous(), w, b, tmp, win, groups);
          out.copy_(tmp);
        } else {
          conv2d_im2col(x, w, b, out, win, groups);
        }
      }
    }
  }
  return batched ? out : out.squeeze(0);
}

Tensor max_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                  IntArrayRef padding, IntArrayRef dilation, bool ceil_mode) {
  if (detail::should_record(input)) [[unlikely]]
    return detail::record1(ops::OpKind::MaxPool2d, {input, kernel_size.vec(), stride.vec(),
                                                    padding.vec(), dilation.vec(), ceil_mode});
  const Window w =
      pool_window("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode);
  KILN_CHECK(input.dtype() != kBool,
             "[max_pool2d] got dtype bool, expected a numeric (non-bool) dtype.");
  const int64_t H = input.size(-2), W = input.size(-1);
  std::vector<int64_t> sizes = input.sizes().vec();
  sizes[sizes.size() - 2] = w.oh;
  sizes[sizes.size() - 1] = w.ow;
  Tensor out = make_empty(sizes, input.dtype());
  if (out.numel() == 0) return out;
  const Tensor x = input.contiguous();
  const int64_t planes = x.numel() / (H * W);
  const WindowTaps taps = window_taps(H, W, w);
  const bool full = taps.full;
  KILN_DISPATCH_NUMERIC_TYPES(input.dtype(), "max_pool2d", [&] {
    using T = scalar_t;
    auto run = [&](const auto& plane_fn) {
      for_each_plane(x.data_ptr<T>(), out.data_ptr<T>(), planes, H, W, w, plane_fn);
    };
    if (full && w.kh == 2 && w.kw == 2)
      run([&](const T* in, T* o) { max_pool_plane_full<2, 2>(in, o, W, w); });
    else if (full && w.kh == 3 && w.kw == 3)
      run([&](const T* in, T* o) { max_pool_plane_full<3, 3>(in, o, W, w); });
    else
      run([&](const T* in, T* o) { max_pool_plane(in, o, W, w, taps); });
  });
  return out;
}

Tensor avg_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                  IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                  std::optional<int64_t> divisor_override) {
  if (detail::should_record(input)) [[unlikely]]
    return detail::record1(ops::OpKind::AvgPool2d,
                           {input, kernel_size.vec(), stride.vec(), padding.vec(), ceil_mode,
                            count_include_pad, IValue(divisor_override)});
  const Window w = pool_window("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode);
  const ScalarType dt = input.dtype();
  KILN_CHECK(is_floating_point(dt) || dt == kLong,
             "[avg_pool2d] got dtype {}, expected a floating-point dtype or int64.",
             dtype_name(dt));
  KILN_CHECK(!divisor_override || *divisor_override != 0,
             "[avg_pool2d] got divisor_override 0, expected a non-zero divisor.");
  const int64_t H = input.size(-2), W = input.size(-1);
  const Tensor x4 = input.dim() == 4 ? input : input.unsqueeze(0);
  const bool channels_last = is_channels_last(x4);
  Tensor out = empty_nchw(x4.size(0), x4.size(1), w.oh, w.ow, dt, channels_last);
  const Tensor result = input.dim() == 4 ? out : out.squeeze(0);
  if (out.numel() == 0) return result;
  // oneDNN's windows equal libtorch's unless ceil_mode adds a window reaching past the padding.
  const bool same_windows = w.oh == pool_out_size(H, w.kh, w.sh, w.ph, 1, false) &&
                            w.ow == pool_out_size(W, w.kw, w.sw, w.pw, 1, false);
  if ((dt == kFloat || dt == kBFloat16 || dt == kHalf) && same_windows && !divisor_override) {
    const Tensor x = channels_last ? x4 : x4.contiguous();
    if (avg_pool_onednn(x, out, w, count_include_pad, channels_last)) return result;
  }
  const Tensor x = x4.contiguous();
  Tensor y = channels_last ? make_empty(out.sizes(), dt) : out;
  const int64_t planes = x.numel() / (H * W);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    for_each_plane(x.data_ptr<T>(), y.data_ptr<T>(), planes, H, W, w, [&](const T* in, T* o) {
      avg_pool_plane(in, o, H, W, w, count_include_pad, divisor_override);
    });
  };
  if (dt == kLong)
    run(int64_t{});
  else
    KILN_DISPATCH_FLOATING_TYPES(dt, "avg_pool2d", [&] { run(scalar_t{}); });
  if (channels_last) out.copy_(y);
  return result;
}

Tensor im2col(const Tensor& input, IntArrayRef kernel_size, IntArrayRef dilation,
              IntArrayRef padding, IntArrayRef stride) {
  if (detail::should_record(input)) [[unlikely]]
    return detail::record1(ops::OpKind::Im2col, {input, kernel_size.vec(), dilation.vec(),
                                                 padding.vec(), stride.vec()});
  check_input_4d("im2col", input);
  Window w = make_window("im2col", kernel_size, stride, padding, dilation);
  const Tensor x = (input.dim() == 4 ? input : input.unsqueeze(0)).contiguous();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  w.oh = conv_out_size(H, w.kh, w.sh, w.ph, w.dh);
  w.ow = conv_out_size(W, w.kw, w.sw, w.pw, w.dw);
  KILN_CHECK(w.oh >= 1 && w.ow >= 1,
             "[im2col] the sliding-block grid is empty: got input sizes {}, kernel_size {}, "
             "dilation {}, padding {} and stride {}, expected the kernel to fit the padded "
             "input.",
             input.sizes(), kernel_size, dilation, padding, stride);
  const int64_t rows = C * w.kh * w.kw, L = w.oh * w.ow;
  Tensor out = make_empty({N, rows, L}, x.dtype());
  KILN_DISPATCH_ALL_TYPES(x.dtype(), "im2col", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    // Images one after another; each is split across the pool by rows.
    for (int64_t n = 0; n < N; ++n)
      im2col_kernel<scalar_t>(xp + n * C * H * W, op + n * rows * L, C, H, W, w);
  });
  return input.dim() == 4 ? out : out.squeeze(0);
}

// ---- col2im and the pooling gradients -------------------------------------------------------

namespace {

// Adds every column entry back to its input position; one thread per plane (no races).
template <typename T>
void col2im_kernel(const T* cols, T* x, int64_t planes, int64_t H, int64_t W, const Window& w) {
  using A = opmath_t<T>;
  const int64_t L = w.oh * w.ow, kk = w.kh * w.kw;
  parallel_for(0, planes, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, kk * L)),
               [&](int64_t p0, int64_t p1) {
                 std::vector<A> acc(static_cast<size_t>(H * W));
                 for (int64_t p = p0; p < p1; ++p) {
                   std::fill(acc.begin(), acc.end(), A(0));
                   for (int64_t i = 0; i < w.kh; ++i)
                     for (int64_t j = 0; j < w.kw; ++j) {
                       const T* row = cols + ((p * w.kh + i) * w.kw + j) * L;
                       for (int64_t oy = 0; oy < w.oh; ++oy) {
                         const int64_t y = oy * w.sh - w.ph + i * w.dh;
                         if (y < 0 || y >= H) continue;
                         for (int64_t ox = 0; ox < w.ow; ++ox) {
                           const int64_t xx = ox * w.sw - w.pw + j * w.dw;
                           if (xx >= 0 && xx < W)
                             acc[y * W + xx] += static_cast<A>(row[oy * w.ow + ox]);
                         }
                       }
                     }
                   T* out = x + p * H * W;
                   for (int64_t k = 0; k < H * W; ++k) out[k] = static_cast<T>(acc[k]);
                 }
               });
}

// The gradient of one plane: each window's g goes to the position of its maximum as the
// forward kernel picks it (the first largest value, NaN winning), accumulated into acc (the
// plane of gx itself, or a float plane for half/bfloat16), which the caller zeroed.
template <int KH, int KW, typename T, typename A>
void max_pool_backward_plane_full(const T* plane, const T* g, A* acc, int64_t W, const Window& w) {
  for (int64_t oy = 0; oy < w.oh; ++oy)
    for (int64_t ox = 0; ox < w.ow; ++ox) {
      const int64_t base = oy * w.sh * W + ox * w.sw;
      int64_t best = base;
      A bv = static_cast<A>(plane[base]);
      for (int i = 0; i < KH; ++i)
        for (int j = (i == 0 ? 1 : 0); j < KW; ++j) {
          const int64_t pos = base + i * w.dh * W + j * w.dw;
          const A v = static_cast<A>(plane[pos]);
          const bool take = max_takes(v, bv);
          best = take ? pos : best;
          bv = take ? v : bv;
        }
      acc[best] += static_cast<A>(g[oy * w.ow + ox]);
    }
}

template <typename T, typename A>
void max_pool_backward_plane(const T* plane, const T* g, A* acc, int64_t W, const Window& w,
                             const WindowTaps& t) {
  for (int64_t oy = 0; oy < w.oh; ++oy) {
    const Span ry = t.rows[oy];
    for (int64_t ox = 0; ox < w.ow; ++ox) {
      const Span cx = t.cols[ox];
      int64_t best = -1;
      A bv = A(0);
      for (int64_t i = ry.first; i < ry.last; ++i)
        for (int64_t j = cx.first; j < cx.last; ++j) {
          const int64_t pos = (ry.start + i * w.dh) * W + cx.start + j * w.dw;
          const A v = static_cast<A>(plane[pos]);
          if (best < 0 || max_takes(v, bv)) {
            best = pos;
            bv = v;
          }
        }
      if (best >= 0) acc[best] += static_cast<A>(g[oy * w.ow + ox]);
    }
  }
}

template <typename T>
void avg_pool_backward_plane(const T* g, T* gx, int64_t H, int64_t W, const Window& w,
                             bool count_include_pad, std::optional<int64_t> divisor_override) {
  using A = opmath_t<T>;
  thread_local std::vector<A> acc;  // one per thread, not one allocation per plane
  acc.assign(static_cast<size_t>(H * W), A(0));
  for (int64_t oy = 0; oy < w.oh; ++oy) {
    const int64_t ys = oy * w.sh - w.ph, ye = std::min(ys + w.kh, H + w.ph);
    const int64_t y0 = std::max<int64_t>(ys, 0), y1 = std::min(ye, H);
    for (int64_t ox = 0; ox < w.ow; ++ox) {
      const int64_t xs = ox * w.sw - w.pw, xe = std::min(xs + w.kw, W + w.pw);
      const int64_t x0 = std::max<int64_t>(xs, 0), x1 = std::min(xe, W);
      if (y0 >= y1 || x0 >= x1) continue;
      const int64_t div = divisor_override    ? *divisor_override
                          : count_include_pad ? (ye - ys) * (xe - xs)
                                              : (y1 - y0) * (x1 - x0);
      const A v = static_cast<A>(g[oy * w.ow + ox]) / static_cast<A>(div);
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) acc[iy * W + ix] += v;
    }
  }
  for (int64_t k = 0; k < H * W; ++k) gx[k] = static_cast<T>(acc[k]);
}

// Checks a pooling gradient against the forward geometry: grad_output must be what the forward
// pool produced for self.
void check_pool_grad(const char* op, const Tensor& grad, const Tensor& self, const Window& w) {
  check_cpu(grad, op, "grad_output");
  std::vector<int64_t> want = self.sizes().vec();
  want[want.size() - 2] = w.oh;
  want[want.size() - 1] = w.ow;
  KILN_CHECK(grad.sizes().equals(want),
             "[{}] got grad_output sizes {}, expected {} (the pool's output for input {}).", op,
             grad.sizes(), IntArrayRef(want), self.sizes());
  KILN_CHECK(grad.dtype() == self.dtype(),
             "[{}] got grad_output dtype {} and input dtype {}, expected the same dtype.", op,
             dtype_name(grad.dtype()), dtype_name(self.dtype()));
}

}  // namespace

Tensor col2im(const Tensor& input, IntArrayRef output_size, IntArrayRef kernel_size,
              IntArrayRef dilation, IntArrayRef padding, IntArrayRef stride) {
  if (detail::should_record(input)) [[unlikely]]
    return detail::record1(ops::OpKind::Col2im, {input, output_size.vec(), kernel_size.vec(),
                                                 dilation.vec(), padding.vec(), stride.vec()});
  check_cpu(input, "col2im", "input");
  KILN_CHECK(input.dim() == 2 || input.dim() == 3,
             "[col2im] got input sizes {}, expected a 2-D [C*kH*kW, L] or 3-D [N, C*kH*kW, L] "
             "tensor.",
             input.sizes());
  Window w = make_window("col2im", kernel_size, stride, padding, dilation);
  const auto [H, W] = pair_arg("col2im", "output_size", output_size);
  KILN_CHECK(H > 0 && W > 0, "[col2im] got output_size {}, expected positive sizes.", output_size);
  w.oh = conv_out_size(H, w.kh, w.sh, w.ph, w.dh);
  w.ow = conv_out_size(W, w.kw, w.sw, w.pw, w.dw);
  const Tensor x = (input.dim() == 3 ? input : input.unsqueeze(0)).contiguous();
  const int64_t N = x.size(0), rows = x.size(1), L = x.size(2), kk = w.kh * w.kw;
  KILN_CHECK(rows % kk == 0,
             "[col2im] got input sizes {}, expected dim 1 divisible by kernel_size product {}.",
             input.sizes(), kk);
  KILN_CHECK(L == w.oh * w.ow,
             "[col2im] got {} blocks (input sizes {}), expected {} = {} x {} for output_size {}, "
             "kernel_size {}, dilation {}, padding {} and stride {}.",
             L, input.sizes(), w.oh * w.ow, w.oh, w.ow, output_size, kernel_size, dilation,
             padding, stride);
  const int64_t C = rows / kk;
  Tensor out = make_empty({N, C, H, W}, x.dtype());
  if (out.numel() > 0)
    KILN_DISPATCH_NUMERIC_TYPES(x.dtype(), "col2im", [&] {
      const scalar_t* xp = x.data_ptr<scalar_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      for (int64_t n = 0; n < N; ++n)
        col2im_kernel<scalar_t>(xp + n * rows * L, op + n * C * H * W, C, H, W, w);
    });
  return input.dim() == 3 ? out : out.squeeze(0);
}

Tensor max_pool2d_backward(const Tensor& grad_output, const Tensor& self, IntArrayRef kernel_size,
                           IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation,
                           bool ceil_mode) {
  if (detail::should_record(grad_output, self)) [[unlikely]]
    return detail::record1(ops::OpKind::MaxPool2dBackward,
                           {grad_output, self, kernel_size.vec(), stride.vec(), padding.vec(),
                            dilation.vec(), ceil_mode});
  const char* op = "max_pool2d_backward";
  const Window w = pool_window(op, self, kernel_size, stride, padding, dilation, ceil_mode);
  check_pool_grad(op, grad_output, self, w);
  Tensor gx = make_empty(self.sizes(), self.dtype());
  if (gx.numel() == 0) return gx;
  const Tensor x = self.contiguous(), g = grad_output.contiguous();
  const int64_t H = self.size(-2), W = self.size(-1), planes = x.numel() / (H * W);
  const WindowTaps taps = window_taps(H, W, w);
  const int64_t work = std::max<int64_t>(1, w.oh * w.ow * w.kh * w.kw + H * W);
  KILN_DISPATCH_NUMERIC_TYPES(self.dtype(), op, [&] {
    using T = scalar_t;
    using A = opmath_t<T>;
    const T* xp = x.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    T* gxp = gx.data_ptr<T>();
    auto run = [&](const auto& plane_fn) {
      parallel_for(0, planes, std::max<int64_t>(1, kGrain / work), [&](int64_t p0, int64_t p1) {
        if constexpr (std::is_same_v<T, A>) {
          std::fill(gxp + p0 * H * W, gxp + p1 * H * W, T(0));
          for (int64_t p = p0; p < p1; ++p)
            plane_fn(xp + p * H * W, gp + p * w.oh * w.ow, gxp + p * H * W);
        } else {
          std::vector<A> acc(static_cast<size_t>(H * W));
          for (int64_t p = p0; p < p1; ++p) {
            std::fill(acc.begin(), acc.end(), A(0));
            plane_fn(xp + p * H * W, gp + p * w.oh * w.ow, acc.data());
            std::transform(acc.begin(), acc.end(), gxp + p * H * W,
                           [](A v) { return static_cast<T>(v); });
          }
        }
      });
    };
    if (taps.full && w.kh == 2 && w.kw == 2)
      run([&](const T* in, const T* go, A* acc) {
        max_pool_backward_plane_full<2, 2>(in, go, acc, W, w);
      });
    else if (taps.full && w.kh == 3 && w.kw == 3)
      run([&](const T* in, const T* go, A* acc) {
        max_pool_backward_plane_full<3, 3>(in, go, acc, W, w);
      });
    else
      run([&](const T* in, const T* go, A* acc) {
        max_pool_backward_plane(in, go, acc, W, w, taps);
      });
  });
  return gx;
}

Tensor avg_pool2d_backward(const Tensor& grad_output, const Tensor& self, IntArrayRef kernel_size,
                           IntArrayRef stride, IntArrayRef padding, bool ceil_mode,
                           bool count_include_pad, std::optional<int64_t> divisor_override) {
  if (detail::should_record(grad_output, self)) [[unlikely]]
    return detail::record1(ops::OpKind::AvgPool2dBackward,
                           {grad_output, self, kernel_size.vec(), stride.vec(), padding.vec(),
                            ceil_mode, count_include_pad, IValue(divisor_override)});
  const char* op = "avg_pool2d_backward";
  const Window w = pool_window(op, self, kernel_size, stride, padding, 1, ceil_mode);
  check_pool_grad(op, grad_output, self, w);
  KILN_CHECK(!divisor_override || *divisor_override != 0,
             "[{}] got divisor_override 0, expected a non-zero divisor.", op);
  Tensor gx = make_empty(self.sizes(), self.dtype());
  if (gx.numel() == 0) return gx;
  const Tensor g = grad_output.contiguous();
  const int64_t H = self.size(-2), W = self.size(-1), planes = gx.numel() / (H * W);
  KILN_DISPATCH_FLOATING_TYPES(self.dtype(), op, [&] {
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* op_ = gx.data_ptr<scalar_t>();
    parallel_for(0, planes, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        avg_pool_backward_plane(gp + p * w.oh * w.ow, op_ + p * H * W, H, W, w,
                                count_include_pad, divisor_override);
    });
  });
  return gx;
}

namespace detail {

bool conv2d_backward_onednn(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                            IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation,
                            int64_t groups, std::array<bool, 3> need, std::array<Tensor, 3>& out) {
  if (input.dtype() != kFloat || weight.dtype() != kFloat || grad_output.dtype() != kFloat ||
      (input.dim() != 3 && input.dim() != 4) || weight.dim() != 4 ||
      grad_output.dim() != input.dim() || input.numel() == 0 || grad_output.numel() == 0 ||
      weight.numel() == 0 || !input.device().is_cpu() || !weight.device().is_cpu() ||
      !grad_output.device().is_cpu())
    return false;
  const bool batched = input.dim() == 4;
  const Tensor x = (batched ? input : input.unsqueeze(0)).contiguous();
  const Tensor g = (batched ? grad_output : grad_output.unsqueeze(0)).contiguous();
  const Tensor w = weight.contiguous();
  const Window win =
      make_window("conv2d", IntArrayRef(weight.sizes().begin() + 2, 2), stride, padding, dilation);
  const ConvDims cd(x, w, g, win, groups);
  std::array<Tensor, 3> r;
  if (need[0]) {
    r[0] = make_empty(x.sizes(), kFloat);
    if (!conv2d_backward_data_onednn(g, w, r[0], cd)) return false;
    if (!batched) r[0] = r[0].squeeze(0);
  }
  if (need[1]) {
    r[1] = make_empty(w.sizes(), kFloat);
    if (need[2]) r[2] = make_empty({w.size(0)}, kFloat);
    if (!conv2d_backward_weights_onednn(g, x, r[1], r[2], cd)) return false;
  } else if (need[2]) {
    r[2] = g.sum({0, 2, 3});
  }
  out = std::move(r);
  return true;
}

}  // namespace detail

}  // namespace kiln
