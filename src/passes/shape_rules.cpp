// Shape and dtype rules of every op of the op table, in one place (see shape_rules.h): a rule per
// family (unary, binary, reduce, ...) and per op where the family says nothing of shapes (views,
// matmuls, convolutions, pools, indexing, sorting, creation). Shape propagation, constant folding
// and fusion all read types through these; nothing else computes op output types.
#include "kiln/passes/shape_rules.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/ir/printer.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Dim;
using ir::Node;
using ir::TensorType;
using ir::Type;
using ir::Value;
using ops::OpFamily;
using ops::OpKind;
using Sizes = std::optional<std::vector<Dim>>;
using detail::constant_bool;
using detail::constant_int;
using detail::constant_int_list;

// ---- dims -------------------------------------------------------------------------------------
Dim unknown() { return Dim::unknown(); }

bool is_one(const Dim& d) { return d.is_static() && d.size() == 1; }

// Broadcasting of one dim (numpy rules): 1 gives way to anything; a static n > 1 wins over a
// symbol or ? (which must then be 1 or n); equal dims stay; anything else is unknown.
Dim broadcast_dim(const Dim& a, const Dim& b) {
  if (is_one(a)) return b;
  if (is_one(b)) return a;
  if (a == b) return a;
  if (a.is_static() && b.is_static()) return unknown();  // the op fails at run time
  if (a.is_static()) return a;
  if (b.is_static()) return b;
  return unknown();
}

Sizes broadcast(const Sizes& a, const Sizes& b) {
  if (!a || !b) return std::nullopt;
  const size_t n = std::max(a->size(), b->size());
  std::vector<Dim> out(n, Dim(1));
  for (size_t i = 0; i < n; ++i) {
    const Dim da = i < n - a->size() ? Dim(1) : (*a)[i - (n - a->size())];
    const Dim db = i < n - b->size() ? Dim(1) : (*b)[i - (n - b->size())];
    out[i] = broadcast_dim(da, db);
  }
  return out;
}

Sizes static_sizes(const std::vector<int64_t>& v) {
  std::vector<Dim> out;
  for (int64_t s : v) out.emplace_back(s);
  return out;
}

// A dim index of a rank-`rank` tensor, wrapped like the eager ops (0-dim tensors accept 0 and
// -1); nullopt when out of range.
std::optional<int64_t> wrap(int64_t d, int64_t rank) {
  const int64_t n = std::max<int64_t>(rank, 1);
  if (d < -n || d >= n) return std::nullopt;
  return d < 0 ? d + n : d;
}

// ---- one node's arguments ---------------------------------------------------------------------
class Args {
 public:
  explicit Args(const Node* n) : n_(n), info_(ops::op_info(n->kind().op())) {}

  const Node* node() const { return n_; }
  const ops::OpInfo& info() const { return info_; }
  const Value* value(size_t i) const { return n_->input(i); }
  const TensorType* tensor(size_t i) const {
    const Type& t = n_->input(i)->type();
    return t.is_tensor() ? &t.tensor() : nullptr;
  }
  Sizes sizes(size_t i) const {
    const TensorType* t = tensor(i);
    return t != nullptr ? t->sizes : std::nullopt;
  }
  std::optional<int64_t> rank(size_t i) const {
    Sizes s = sizes(i);
    if (!s) return std::nullopt;
    return static_cast<int64_t>(s->size());
  }
  std::optional<ScalarType> dtype(size_t i) const {
    const TensorType* t = tensor(i);
    return t != nullptr ? t->dtype : std::nullopt;
  }
  std::optional<int64_t> i(size_t k) const { return constant_int(value(k)); }
  std::optional<std::vector<int64_t>> ints(size_t k) const { return constant_int_list(value(k)); }
  std::optional<bool> b(size_t k) const { return constant_bool(value(k)); }
  const IValue* constant(size_t k) const { return detail::constant_of(value(k)); }
  std::optional<ScalarType> dtype_arg(size_t k) const {
    const IValue* c = constant(k);
    if (c == nullptr || !c->is_scalar_type()) return std::nullopt;
    return c->toScalarType();
  }
  std::optional<Device> device_arg(size_t k) const {
    const IValue* c = constant(k);
    if (c == nullptr || !c->is_device()) return std::nullopt;
    return c->toDevice();
  }
  // The device of the first tensor input whose device is known.
  std::optional<Device> device() const {
    for (size_t k = 0; k < n_->num_inputs(); ++k)
      if (const TensorType* t = tensor(k); t != nullptr && t->device) return t->device;
    return std::nullopt;
  }

 private:
  const Node* n_;
  const ops::OpInfo& info_;
};

// ---- dtypes: libtorch's result_type over tensors and wrapped numbers ---------------------------
enum class Group : uint8_t { Dim, Zero, Wrapped };
struct Operand {
  std::optional<ScalarType> dtype;
  std::optional<Group> group;  // nullopt: a tensor of unknown rank (dim or zero-dim)
};

Operand operand_of(const Value* v) {
  const Type& t = v->type();
  if (t.is_tensor()) {
    Operand o{t.tensor().dtype, std::nullopt};
    if (t.tensor().sizes) o.group = t.tensor().sizes->empty() ? Group::Zero : Group::Dim;
    return o;
  }
  switch (t.kind()) {
    case ir::TypeKind::Int:
      return {kLong, Group::Wrapped};
    case ir::TypeKind::Float:
      return {get_default_dtype(), Group::Wrapped};
    case ir::TypeKind::Bool:
      return {kBool, Group::Wrapped};
    default:
      return {};
  }
}

std::optional<ScalarType> combine(std::optional<ScalarType> higher,
                                  std::optional<ScalarType> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (is_floating_point(*higher)) return higher;
  if (*higher == kBool || is_floating_point(*lower)) return promote_types(*higher, *lower);
  return higher;
}

std::optional<ScalarType> result_type(const std::vector<Operand>& operands) {
  std::vector<size_t> open;
  for (size_t k = 0; k < operands.size(); ++k) {
    if (!operands[k].dtype) return std::nullopt;
    if (!operands[k].group) open.push_back(k);
  }
  if (open.size() > 4) return std::nullopt;
  std::optional<ScalarType> agreed;
  // Each tensor of unknown rank may be a dim tensor or a zero-dim one: the result is known when
  // every combination gives the same dtype.
  for (unsigned mask = 0; mask < (1u << open.size()); ++mask) {
    std::optional<ScalarType> groups[3];
    for (size_t k = 0; k < operands.size(); ++k) {
      Group g;
      if (operands[k].group) {
        g = *operands[k].group;
      } else {
        const size_t bit = std::find(open.begin(), open.end(), k) - open.begin();
        g = (mask >> bit) & 1 ? Group::Zero : Group::Dim;
      }
      auto& slot = groups[static_cast<int>(g)];
      slot = slot ? promote_types(*slot, *operands[k].dtype) : *operands[k].dtype;
    }
    const auto r = combine(groups[0], combine(groups[1], groups[2]));
    if (!r || (agreed && *agreed != *r)) return std::nullopt;
    agreed = r;
  }
  return agreed;
}

// The promoted dtype of tensors (promote_types, no wrapped-number rule): cat, matmuls, convs.
std::optional<ScalarType> promote_all(const std::vector<std::optional<ScalarType>>& dtypes) {
  std::optional<ScalarType> r;
  for (const auto& d : dtypes) {
    if (!d) return std::nullopt;
    r = r ? promote_types(*r, *d) : *d;
  }
  return r;
}

// Applies an op's dtype rule to the promoted dtype of its operands (`common`), its first
// input's dtype (`first`) and an explicit dtype argument.
std::optional<ScalarType> apply_rule(ops::DtypeRule rule, std::optional<ScalarType> common,
                                     std::optional<ScalarType> first,
                                     std::optional<ScalarType> explicit_dtype = std::nullopt) {
  switch (rule) {
    case ops::DtypeRule::Promote:
      return common;
    case ops::DtypeRule::IntToFloat:
      if (!common) return std::nullopt;
      return is_floating_point(*common) ? *common : get_default_dtype();
    case ops::DtypeRule::Bool:
      return kBool;
    case ops::DtypeRule::Same:
      return first;
    case ops::DtypeRule::Long:
      return kLong;
    case ops::DtypeRule::SumLike:
      if (!first) return std::nullopt;
      return is_integral(*first, true) ? kLong : *first;
    case ops::DtypeRule::Explicit:
      return explicit_dtype;
  }
  return std::nullopt;
}

// ---- results ----------------------------------------------------------------------------------
struct Out {
  std::optional<ScalarType> dtype;
  Sizes sizes;
  bool contiguous = false;  // the kernel always returns a fresh contiguous tensor
};

Type make(const Out& o, std::optional<Device> device) {
  TensorType t;
  t.dtype = o.dtype;
  t.sizes = o.sizes;
  t.device = device;
  if (o.contiguous) t.contiguity = ir::Contiguity::Contiguous;
  return ir::tensor_type(std::move(t));
}

using Types = std::vector<Type>;

Types one(const Args& a, const Out& o) { return {make(o, a.device())}; }

// ---- elementwise --------------------------------------------------------------------------------
Types elementwise(const Args& a, std::vector<size_t> operands, std::vector<size_t> shaped) {
  std::vector<Operand> ops;
  for (size_t k : operands) ops.push_back(operand_of(a.value(k)));
  Sizes sizes = std::vector<Dim>{};
  for (size_t k : shaped)
    if (a.value(k)->type().is_tensor()) sizes = broadcast(sizes, a.sizes(k));
  const auto common = result_type(ops);
  return one(a, {apply_rule(a.info().dtype_rule, common, a.dtype(0)), sizes, true});
}

Types unary(const Args& a) { return elementwise(a, {0}, {0}); }
Types binary(const Args& a) { return elementwise(a, {0, 1}, {0, 1}); }
Types where(const Args& a) { return elementwise(a, {1, 2}, {0, 1, 2}); }

Types copy_family(const Args& a) {
  switch (a.node()->kind().op()) {
    case OpKind::Copy:
      return one(a, {a.dtype(0), a.sizes(0), true});
    case OpKind::Cast: {
      const auto to = a.dtype_arg(1);
      Out o{to, a.sizes(0), false};
      // Casting to the same dtype returns the input itself.
      const TensorType* in = a.tensor(0);
      Type t = make(o, a.device());
      if (to && in->dtype) {
        TensorType tt = t.tensor();
        tt.contiguity = *to == *in->dtype ? in->contiguity : ir::Contiguity::Contiguous;
        t = ir::tensor_type(std::move(tt));
      }
      return {t};
    }
    case OpKind::Assign:
      return one(a, {a.dtype(0), a.sizes(0), true});
    default:
      return {};
  }
}

// ---- reductions ---------------------------------------------------------------------------------
// Sizes after reducing `dims` (empty: every dim) of `in`, keeping them as 1s with keepdim.
Sizes reduce_sizes(const Sizes& in, const std::optional<std::vector<int64_t>>& dims,
                   std::optional<bool> keepdim) {
  if (!in || !dims || !keepdim) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(in->size());
  std::vector<bool> reduced(in->size(), dims->empty());
  std::vector<int64_t> seen;
  for (int64_t d : *dims) {
    auto w = wrap(d, rank);
    // Out of range, or listed twice: the op fails.
    if (!w || std::find(seen.begin(), seen.end(), *w) != seen.end()) return std::nullopt;
    seen.push_back(*w);
    if (rank > 0) reduced[*w] = true;
  }
  std::vector<Dim> out;
  for (int64_t d = 0; d < rank; ++d) {
    if (!reduced[d])
      out.push_back((*in)[d]);
    else if (*keepdim)
      out.emplace_back(1);
  }
  return out;
}

Types reduce(const Args& a) {
  const OpKind k = a.node()->kind().op();
  if (k == OpKind::Argmax || k == OpKind::Argmin) {
    const IValue* dim = a.constant(1);
    std::optional<std::vector<int64_t>> dims;
    if (dim != nullptr && dim->is_none()) dims = std::vector<int64_t>{};
    if (dim != nullptr && dim->is_int()) dims = std::vector<int64_t>{dim->toInt()};
    return one(a, {kLong, reduce_sizes(a.sizes(0), dims, a.b(2)), true});
  }
  return one(a, {apply_rule(a.info().dtype_rule, a.dtype(0), a.dtype(0)),
                 reduce_sizes(a.sizes(0), a.ints(1), a.b(2)), true});
}

// Same sizes, dtype by the row's rule (scans, softmax).
Types along_dim(const Args& a) {
  return one(a, {apply_rule(a.info().dtype_rule, a.dtype(0), a.dtype(0)), a.sizes(0), true});
}

// ---- views --------------------------------------------------------------------------------------
// view(self, size): the requested sizes, with one -1 resolved from the element count.
Sizes view_sizes(const Sizes& in, const std::optional<std::vector<int64_t>>& req) {
  if (!req) return std::nullopt;
  std::vector<Dim> out;
  std::optional<size_t> infer;
  int64_t known = 1;
  for (size_t k = 0; k < req->size(); ++k) {
    const int64_t s = (*req)[k];
    if (s == -1) {
      if (infer) return std::nullopt;
      infer = k;
      out.push_back(unknown());
    } else {
      if (s < 0) return std::nullopt;
      known *= s;
      out.emplace_back(s);
    }
  }
  if (!infer) return out;
  if (!in) return out;
  int64_t numel = 1;
  std::vector<Dim> symbolic;
  for (const Dim& d : *in) {
    if (d.is_static())
      numel *= d.size();
    else
      symbolic.push_back(d);
  }
  if (symbolic.empty()) {
    if (known != 0 && numel % known == 0) out[*infer] = Dim(numel / known);
  } else if (symbolic.size() == 1 && symbolic[0].is_symbol() && known == numel) {
    out[*infer] = symbolic[0];  // [N, 4] viewed as [-1, 4] is [N, 4]
  }
  return out;
}

Sizes expand_sizes(const Sizes& in, const std::optional<std::vector<int64_t>>& req) {
  if (!req) return std::nullopt;
  const size_t n = req->size();
  std::vector<Dim> out;
  for (size_t k = 0; k < n; ++k) {
    const int64_t want = (*req)[k];
    if (want != -1) {
      out.emplace_back(want);
      continue;
    }
    if (!in || in->size() > n || k < n - in->size()) return std::nullopt;
    out.push_back((*in)[k - (n - in->size())]);
  }
  return out;
}

Types movement(const Args& a) {
  const OpKind k = a.node()->kind().op();
  const Sizes in = a.sizes(0);
  const auto rank = a.rank(0);
  Sizes out;
  bool contiguous = false;
  switch (k) {
    case OpKind::View:
      out = view_sizes(in, a.ints(1));
      // Viewing a contiguous tensor always gives contiguous strides.
      contiguous = a.tensor(0)->contiguity == ir::Contiguity::Contiguous;
      break;
    case OpKind::Permute: {
      const auto dims = a.ints(1);
      if (!dims || !in || dims->size() != in->size()) break;
      std::vector<Dim> o;
      for (int64_t d : *dims) {
        auto w = wrap(d, *rank);
        if (!w || *rank == 0) return one(a, {a.dtype(0), std::nullopt});
        o.push_back((*in)[*w]);
      }
      out = o;
      break;
    }
    case OpKind::Expand:
      out = expand_sizes(in, a.ints(1));
      break;
    case OpKind::Slice: {
      const auto dim = a.i(1), start = a.i(2), end = a.i(3), step = a.i(4);
      if (!in || !dim || in->empty()) break;
      const auto w = wrap(*dim, *rank);
      if (!w) break;
      std::vector<Dim> o = *in;
      const Dim& d = (*in)[*w];
      if (d.is_static() && start && end && step && *step > 0) {
        const int64_t n = d.size();
        int64_t lo = *start, hi = *end;
        if (lo < 0) lo += n;
        if (hi < 0) hi += n;
        lo = std::clamp<int64_t>(lo, 0, n);
        hi = std::clamp<int64_t>(hi, lo, n);
        o[*w] = Dim((hi - lo + *step - 1) / *step);
      } else if (start == 0 && end && *end >= (int64_t{1} << 62) && step == 1) {
        o[*w] = d;  // the whole dim, whatever its size
      } else {
        o[*w] = unknown();
      }
      out = o;
      break;
    }
    case OpKind::Select: {
      const auto dim = a.i(1);
      if (!in || !dim || in->empty()) break;
      const auto w = wrap(*dim, *rank);
      if (!w) break;
      std::vector<Dim> o = *in;
      o.erase(o.begin() + *w);
      out = o;
      break;
    }
    case OpKind::UnfoldView: {
      const auto dim = a.i(1), size = a.i(2), step = a.i(3);
      if (!in || !dim || !size) break;
      if (in->empty()) {
        out = std::vector<Dim>{Dim(*size)};
        break;
      }
      const auto w = wrap(*dim, *rank);
      if (!w) break;
      std::vector<Dim> o = *in;
      const Dim& d = (*in)[*w];
      o[*w] = d.is_static() && step && *step > 0 && *size <= d.size()
                  ? Dim((d.size() - *size) / *step + 1)
                  : unknown();
      o.emplace_back(*size);
      out = o;
      break;
    }
    case OpKind::AsStrided:
      if (auto s = a.ints(1)) out = static_sizes(*s);
      break;
    default:
      break;
  }
  return one(a, {a.dtype(0), out, contiguous});
}

// ---- library calls
// --------------------------------------------------------------------------------
Dim same_dim(const Dim& a, const Dim& b) {
  if (a.is_static()) return a;
  if (b.is_static()) return b;
  return a == b ? a : (a.is_symbol() ? a : b);
}

Types linalg(const Args& a) {
  const OpKind k = a.node()->kind().op();
  Sizes out;
  std::optional<ScalarType> dtype;
  if (k == OpKind::Mm || k == OpKind::Bmm) {
    dtype = promote_all({a.dtype(0), a.dtype(1)});
    const Sizes x = a.sizes(0), y = a.sizes(1);
    const size_t want = k == OpKind::Mm ? 2 : 3;
    if (x && y && x->size() == want && y->size() == want) {
      if (k == OpKind::Mm)
        out = std::vector<Dim>{(*x)[0], (*y)[1]};
      else
        out = std::vector<Dim>{same_dim((*x)[0], (*y)[0]), (*x)[1], (*y)[2]};
    }
  } else {  // addmm(self, mat1, mat2, beta, alpha)
    dtype = promote_all({a.dtype(0), a.dtype(1), a.dtype(2)});
    const Sizes x = a.sizes(1), y = a.sizes(2);
    if (x && y && x->size() == 2 && y->size() == 2) out = std::vector<Dim>{(*x)[0], (*y)[1]};
  }
  return one(a, {dtype, out, true});
}

// A window geometry argument: one int or two (libtorch's _pair).
std::optional<std::pair<int64_t, int64_t>> pair(const std::optional<std::vector<int64_t>>& v) {
  if (!v || v->empty() || v->size() > 2) return std::nullopt;
  return std::pair{(*v)[0], v->size() == 1 ? (*v)[0] : (*v)[1]};
}

struct Window {
  std::pair<int64_t, int64_t> k, s, p, d;
};

// Kernel, stride (empty: the kernel), padding and dilation as the eager ops read them.
std::optional<Window> window(const std::optional<std::vector<int64_t>>& kernel,
                             const std::optional<std::vector<int64_t>>& stride,
                             const std::optional<std::vector<int64_t>>& padding,
                             const std::optional<std::vector<int64_t>>& dilation) {
  auto k = pair(kernel), p = pair(padding), d = pair(dilation);
  if (!k || !p || !d || !stride) return std::nullopt;
  auto s = stride->empty() ? k : pair(stride);
  if (!s) return std::nullopt;
  return Window{*k, *s, *p, *d};
}

Dim conv_out(const Dim& in, int64_t k, int64_t s, int64_t p, int64_t d) {
  if (!in.is_static() || s <= 0) return unknown();
  const int64_t span = in.size() + 2 * p - d * (k - 1) - 1;
  return Dim(span < 0 ? 0 : span / s + 1);
}

Dim pool_out(const Dim& in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  if (!in.is_static() || s <= 0) return unknown();
  const int64_t num = in.size() + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in.size() + p) --out;
  return Dim(out);
}

Types conv(const Args& a) {  // conv2d(input, weight, bias, stride, padding, dilation, groups)
  std::vector<std::optional<ScalarType>> dtypes = {a.dtype(0), a.dtype(1)};
  const Sizes x = a.sizes(0), w = a.sizes(1);
  Sizes out;
  if (x && w && (x->size() == 3 || x->size() == 4) && w->size() == 4 && (*w)[2].is_static() &&
      (*w)[3].is_static()) {
    auto win = window(std::vector<int64_t>{(*w)[2].size(), (*w)[3].size()}, a.ints(3), a.ints(4),
                      a.ints(5));
    if (win) {
      const size_t nd = x->size();
      std::vector<Dim> o(x->begin(), x->end() - 3);
      o.push_back((*w)[0]);
      o.push_back(conv_out((*x)[nd - 2], win->k.first, win->s.first, win->p.first, win->d.first));
      o.push_back(
          conv_out((*x)[nd - 1], win->k.second, win->s.second, win->p.second, win->d.second));
      out = o;
    }
  }
  // A contiguous (NCHW) input gives a contiguous result; a strided one may come back
  // channels-last, so no claim then.
  const bool contiguous = a.tensor(0) && a.tensor(0)->contiguity == ir::Contiguity::Contiguous;
  return one(a, {promote_all(dtypes), out, contiguous});
}

Types pool(const Args& a) {
  const OpKind k = a.node()->kind().op();
  const Sizes x = a.sizes(0);
  Sizes out;
  switch (k) {
    case OpKind::MaxPool2d:    // (self, kernel, stride, padding, dilation, ceil_mode)
    case OpKind::AvgPool2d: {  // (self, kernel, stride, padding, ceil_mode, include_pad, div)
      const bool max = k == OpKind::MaxPool2d;
      auto win = window(a.ints(1), a.ints(2), a.ints(3), max ? a.ints(4) : std::vector<int64_t>{1});
      const auto ceil_mode = a.b(max ? 5 : 4);
      if (x && (x->size() == 3 || x->size() == 4) && win && ceil_mode) {
        std::vector<Dim> o = *x;
        const size_t nd = o.size();
        o[nd - 2] = pool_out((*x)[nd - 2], win->k.first, win->s.first, win->p.first, win->d.first,
                             *ceil_mode);
        o[nd - 1] = pool_out((*x)[nd - 1], win->k.second, win->s.second, win->p.second,
                             win->d.second, *ceil_mode);
        out = o;
      }
      break;
    }
    case OpKind::Im2col: {  // (self, kernel, dilation, padding, stride)
      auto win = window(a.ints(1), a.ints(4), a.ints(3), a.ints(2));
      if (x && (x->size() == 3 || x->size() == 4) && win) {
        const size_t nd = x->size();
        const Dim& c = (*x)[nd - 3];
        const Dim oh =
            conv_out((*x)[nd - 2], win->k.first, win->s.first, win->p.first, win->d.first);
        const Dim ow =
            conv_out((*x)[nd - 1], win->k.second, win->s.second, win->p.second, win->d.second);
        std::vector<Dim> o(x->begin(), x->end() - 3);
        o.push_back(c.is_static() ? Dim(c.size() * win->k.first * win->k.second) : unknown());
        o.push_back(oh.is_static() && ow.is_static() ? Dim(oh.size() * ow.size()) : unknown());
        out = o;
      }
      break;
    }
    case OpKind::Col2im: {  // (self, output_size, kernel, dilation, padding, stride)
      auto hw = pair(a.ints(1));
      auto kk = pair(a.ints(2));
      if (x && (x->size() == 2 || x->size() == 3) && hw && kk) {
        const size_t nd = x->size();
        const Dim& rows = (*x)[nd - 2];
        const int64_t kprod = kk->first * kk->second;
        std::vector<Dim> o(x->begin(), x->end() - 2);
        o.push_back(rows.is_static() && kprod > 0 ? Dim(rows.size() / kprod) : unknown());
        o.emplace_back(hw->first);
        o.emplace_back(hw->second);
        out = o;
      }
      break;
    }
    case OpKind::MaxPool2dBackward:
    case OpKind::AvgPool2dBackward:
      out = a.sizes(1);
      break;
    default:
      break;
  }
  return one(a, {apply_rule(a.info().dtype_rule, a.dtype(0), a.dtype(0)), out, true});
}

// ---- joining and indexing
// -------------------------------------------------------------------------
Types cat(const Args& a) {
  const auto elems = detail::list_elements(a.value(0));
  const auto dim = a.i(1);
  if (!elems || elems->empty()) {
    const Type& lt = a.value(0)->type();
    std::optional<ScalarType> dt;
    if (lt.is_list() && lt.elem().is_tensor()) dt = lt.elem().tensor().dtype;
    return {make({dt, std::nullopt, true}, std::nullopt)};
  }
  std::vector<std::optional<ScalarType>> dtypes;
  std::optional<Device> device;
  for (const Value* e : *elems) {
    const Type& t = e->type();
    dtypes.push_back(t.is_tensor() ? t.tensor().dtype : std::nullopt);
    if (t.is_tensor() && !device) device = t.tensor().device;
  }
  // Legacy rule: 1-D tensors of size 0 take part in promotion but not in the shape.
  Sizes out;
  bool ok = dim.has_value();
  std::vector<Sizes> shapes;
  for (const Value* e : *elems) {
    const Type& t = e->type();
    Sizes s = t.is_tensor() ? t.tensor().sizes : std::nullopt;
    if (!s) {
      ok = false;
      break;
    }
    if (s->size() == 1 && (*s)[0].is_static() && (*s)[0].size() == 0) continue;
    if (s->size() == 1 && !(*s)[0].is_static()) {
      ok = false;  // might be an empty 1-D tensor, which does not count
      break;
    }
    shapes.push_back(s);
  }
  if (ok && shapes.empty()) {
    out = std::vector<Dim>{Dim(0)};
  } else if (ok) {
    const int64_t rank = static_cast<int64_t>(shapes[0]->size());
    const auto w = rank > 0 ? wrap(*dim, rank) : std::nullopt;
    if (w) {
      std::vector<Dim> o = *shapes[0];
      int64_t total = 0;
      bool total_known = true;
      for (const Sizes& s : shapes) {
        if (static_cast<int64_t>(s->size()) != rank) {
          total_known = false;
          o.assign(rank, unknown());
          break;
        }
        for (int64_t d = 0; d < rank; ++d)
          if (d != *w) o[d] = same_dim(o[d], (*s)[d]);
        if ((*s)[*w].is_static())
          total += (*s)[*w].size();
        else
          total_known = false;
      }
      if (shapes.size() == 1)
        o[*w] = (*shapes[0])[*w];
      else
        o[*w] = total_known ? Dim(total) : unknown();
      out = o;
    }
  }
  return {make({promote_all(dtypes), out, true}, device)};
}

// self[indices]: the index tensors broadcast together replace the dims they index, in place when
// those dims are adjacent and in front otherwise (plan_advanced in src/tensor/indexing.cpp).
Sizes index_sizes(const Args& a) {
  const Sizes self = a.sizes(0);
  const auto elems = detail::list_elements(a.value(1));
  if (!self || !elems || elems->size() > self->size()) return std::nullopt;
  Sizes b = std::vector<Dim>{};
  std::vector<int64_t> indexed;
  for (size_t k = 0; k < elems->size(); ++k) {
    const Type& t = (*elems)[k]->type();
    if (t.kind() == ir::TypeKind::None) continue;
    if (!t.is_tensor()) return std::nullopt;
    b = broadcast(b, t.tensor().sizes);
    indexed.push_back(static_cast<int64_t>(k));
  }
  if (indexed.empty() || !b) return std::nullopt;
  const bool adjacent =
      indexed.back() - indexed.front() + 1 == static_cast<int64_t>(indexed.size());
  std::vector<Dim> pre, post;
  for (int64_t d = 0; d < static_cast<int64_t>(self->size()); ++d) {
    if (std::find(indexed.begin(), indexed.end(), d) != indexed.end()) continue;
    (adjacent && d < indexed.front() ? pre : post).push_back((*self)[d]);
  }
  std::vector<Dim> out = pre;
  out.insert(out.end(), b->begin(), b->end());
  out.insert(out.end(), post.begin(), post.end());
  return out;
}

Types index_family(const Args& a) {
  const OpKind k = a.node()->kind().op();
  if (k == OpKind::Cat) return cat(a);
  const std::optional<ScalarType> dtype = a.dtype(0);
  Sizes out;
  switch (k) {
    case OpKind::IndexSelect: {  // (self, dim, index)
      const Sizes self = a.sizes(0), index = a.sizes(2);
      const auto dim = a.i(1);
      if (!self || !dim || !index || index->size() > 1) break;
      if (self->empty()) {
        out = std::vector<Dim>{};
        break;
      }
      const auto w = wrap(*dim, static_cast<int64_t>(self->size()));
      if (!w) break;
      std::vector<Dim> o = *self;
      o[*w] = index->empty() ? Dim(1) : (*index)[0];
      out = o;
      break;
    }
    case OpKind::Gather:
      out = a.sizes(2);
      break;
    case OpKind::Scatter:
    case OpKind::ScatterAdd:
    case OpKind::IndexPut:
      out = a.sizes(0);
      break;
    case OpKind::MaskedFill:
      out = broadcast(a.sizes(0), a.sizes(1));
      break;
    case OpKind::Index:
      out = index_sizes(a);
      break;
    default:
      break;
  }
  return one(a, {dtype, out, true});
}

Types sort_family(const Args& a) {
  Sizes out = a.sizes(0);
  if (a.node()->kind().op() == OpKind::Topk) {  // (self, k, dim, largest, sorted)
    const auto k = a.i(1), dim = a.i(2);
    if (out && k && dim) {
      if (out->empty()) {
        out = std::vector<Dim>{};
      } else if (auto w = wrap(*dim, static_cast<int64_t>(out->size()))) {
        (*out)[*w] = Dim(*k);
      } else {
        out = std::nullopt;
      }
    } else {
      out = std::nullopt;
    }
  }
  const std::optional<Device> dev = a.device();
  return {make({a.dtype(0), out, true}, dev), make({kLong, out, true}, dev)};
}

// ---- creation -----------------------------------------------------------------------------------
Types creation(const Args& a) {
  const OpKind k = a.node()->kind().op();
  const ops::Schema& s = ops::op_schema(k);
  const int dt = s.index_of("dtype"), dev = s.index_of("device");
  Sizes out;
  switch (k) {
    case OpKind::Full:
    case OpKind::Rand:
    case OpKind::Randn:
      if (auto v = a.ints(0)) out = static_sizes(*v);
      break;
    case OpKind::Randint:
      if (auto v = a.ints(2)) out = static_sizes(*v);
      break;
    case OpKind::Eye:
      if (auto n = a.i(0), m = a.i(1); n && m) out = static_sizes({*n, *m});
      break;
    case OpKind::Linspace:
      if (auto n = a.i(2)) out = static_sizes({*n});
      break;
    case OpKind::Arange: {
      const IValue *start = a.constant(0), *end = a.constant(1), *step = a.constant(2);
      if (start == nullptr || end == nullptr || step == nullptr) break;
      const Scalar s0 = start->toScalar(), e = end->toScalar(), st = step->toScalar();
      const bool all_int =
          !s0.is_floating_point() && !e.is_floating_point() && !st.is_floating_point();
      if (st.toDouble() == 0) break;
      const int64_t n =
          all_int ? (e.toLong() - s0.toLong() + st.toLong() + (st.toDouble() > 0 ? -1 : 1)) /
                        st.toLong()
                  : static_cast<int64_t>(std::ceil((e.toDouble() - s0.toDouble()) / st.toDouble()));
      out = static_sizes({std::max<int64_t>(n, 0)});
      break;
    }
    default:
      break;
  }
  Out o{a.dtype_arg(static_cast<size_t>(dt)), out, true};
  return {make(o, a.device_arg(static_cast<size_t>(dev)))};
}

// ---- the table --------------------------------------------------------------------------------
using Rule = Types (*)(const Args&);

Rule rule_for(OpKind k) {
  switch (ops::op_info(k).family) {
    case OpFamily::Unary:
      return unary;
    case OpFamily::Binary:
      return binary;
    case OpFamily::Ternary:
      return k == OpKind::Where ? where : nullptr;
    case OpFamily::Copy:
      return copy_family;
    case OpFamily::Reduce:
      return reduce;
    case OpFamily::Movement:
      return movement;
    case OpFamily::Scan:
    case OpFamily::Normalize:
      return along_dim;
    case OpFamily::Linalg:
      return linalg;
    case OpFamily::Conv:
      return conv;
    case OpFamily::Pool:
      return pool;
    case OpFamily::Index:
      return index_family;
    case OpFamily::Sort:
      return sort_family;
    case OpFamily::Creation:
      return creation;
  }
  return nullptr;
}

// A rule's answer for a kind it does not handle is no answer: the family rules above return
// fewer types than outputs for ops they do not know.
bool rule_covers(OpKind k) {
  switch (k) {
    case OpKind::Copy:
    case OpKind::Cast:
    case OpKind::Assign:
    case OpKind::Where:
      return true;
    default:
      return ops::op_info(k).family != OpFamily::Copy &&
             ops::op_info(k).family != OpFamily::Ternary;
  }
}

}  // namespace

bool has_shape_rule(ops::OpKind kind) { return rule_for(kind) != nullptr && rule_covers(kind); }

std::vector<ir::Type> infer_output_types(const ir::Node* n) {
  KILN_ASSERT(n->kind().is_op(), "infer_output_types of a {} node", n->kind().name());
  const OpKind k = n->kind().op();
  Rule r = rule_for(k);
  KILN_ASSERT(r != nullptr && rule_covers(k), "op {} has no shape rule", ops::op_info(k).name);
  Types t = r(Args(n));
  KILN_ASSERT(t.size() == n->num_outputs(), "the shape rule of {} gave {} types for {} outputs",
              ops::op_info(k).name, t.size(), n->num_outputs());
  return t;
}

}  // namespace kiln::passes
