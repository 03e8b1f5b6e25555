// Eager CPU elementwise ops: type promotion (libtorch's rules), broadcasting, in-place and out=
// forms, and the typed kernels. The scalar semantics come from ops/scalar_ops.h; the loops from
// tensor/loops.h. Every check runs before the first element is written.
#include <cmath>
#include <cstring>

#include "kiln/functions.h"
#include "ops/scalar_ops.h"
#include "tensor/backward_kernels.h"
#include "tensor/internal.h"
#include "tensor/loops.h"
#include "tensor/record.h"

namespace kiln {
namespace detail {

std::vector<int64_t> broadcast_byte_strides(const Tensor& t, IntArrayRef shape) {
  const int64_t n = static_cast<int64_t>(shape.size()), td = t.dim();
  const int64_t es = static_cast<int64_t>(element_size(t.dtype()));
  std::vector<int64_t> out(n, 0);
  for (int64_t d = 0; d < td; ++d) {
    int64_t od = d + (n - td);
    out[od] = t.size(d) == 1 && shape[od] != 1 ? 0 : t.stride(d) * es;
  }
  return out;
}

}  // namespace detail

namespace {

using detail::convert;
using ops::OpKind;

// ---- type promotion -----------------------------------------------------------------------
// One operand of an elementwise op: a tensor or a wrapped C++ number.
struct Arg {
  const Tensor* t = nullptr;
  Scalar s;
  bool is_scalar() const { return t == nullptr; }
};

struct PromotionState {
  std::optional<ScalarType> dim, zero, wrapped;
  void add(const Arg& a) {
    auto upd = [](std::optional<ScalarType>& r, ScalarType t) { r = r ? promote_types(*r, t) : t; };
    if (a.is_scalar()) upd(wrapped, a.s.type());
    else if (a.t->dim() > 0) upd(dim, a.t->dtype());
    else upd(zero, a.t->dtype());
  }
  static std::optional<ScalarType> combine(std::optional<ScalarType> higher,
                                           std::optional<ScalarType> lower) {
    if (!higher) return lower;
    if (!lower) return higher;
    if (is_floating_point(*higher)) return higher;
    if (*higher == kBool || is_floating_point(*lower)) return promote_types(*higher, *lower);
    return higher;
  }
  ScalarType result() const { return *combine(dim, combine(zero, wrapped)); }
};

ScalarType result_type_of(std::initializer_list<Arg> args) {
  PromotionState st;
  for (const Arg& a : args) st.add(a);
  return st.result();
}

// libtorch's canCast: no float -> integral, no non-bool -> bool.
bool can_cast(ScalarType from, ScalarType to) {
  if (is_floating_point(from) && !is_floating_point(to)) return false;
  if (from != kBool && to == kBool) return false;
  return true;
}

// ---- shared checks --------------------------------------------------------------------------
const ops::OpInfo& info(OpKind k) { return ops::op_info(k); }

void check_operand(const Tensor& t, const char* op, const char* arg) {
  detail::check_cpu(t, op, arg);
}

// Compute dtype and result dtype of an elementwise op from its promoted input dtype.
struct Dtypes {
  ScalarType compute, result;
};
Dtypes op_dtypes(const ops::OpInfo& oi, ScalarType common) {
  const char* op = oi.name.data();
  if (oi.has(ops::kNoBool))
    KILN_CHECK(common != kBool, "[{}] got dtype bool, expected a numeric dtype (for bool tensors "
               "use logical_not / logical_xor or convert with .to(kInt))", op);
  if (oi.has(ops::kFloatOnly))
    KILN_CHECK(is_floating_point(common), "[{}] got dtype {}, expected a floating-point dtype", op,
               dtype_name(common));
  switch (oi.dtype_rule) {
    case ops::DtypeRule::IntToFloat: {
      ScalarType f = is_floating_point(common) ? common : get_default_dtype();
      return {f, f};
    }
    case ops::DtypeRule::Bool:
      return {common, kBool};
    default:
      return {common, common};
  }
}

// True when some element of t is reachable through two different indices (an expanded or
// otherwise self-overlapping view); writing through such a tensor is ambiguous.
bool has_internal_overlap(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.strides()[d] == 0 && t.sizes()[d] > 1) return true;
  return false;
}

// An input that shares memory with the output but is not exactly the same view would be read
// after it was partly overwritten; such inputs are copied first (exact aliasing is safe).
Tensor unalias(const Tensor& in, const Tensor& out) {
  if (in.impl()->storage() != out.impl()->storage()) return in;
  if (in.storage_offset() == out.storage_offset() && in.strides().equals(out.strides()) &&
      in.sizes().equals(out.sizes()))
    return in;
  return in.clone();
}

// Resolves where the result goes: a fresh tensor, self (in-place) or a user out= tensor.
// Returns the tensor the kernel writes (of dtype `result`); *finish copies it into out when out's
// dtype differs.
Tensor prepare_output(const char* op, Tensor* out, IntArrayRef shape, ScalarType result,
                      bool inplace) {
  if (out == nullptr) return detail::make_empty(shape, result);
  KILN_CHECK(!has_internal_overlap(*out),
             "[{}] unsupported operation: more than one element of the written-to tensor (sizes "
             "{}, strides {}) refers to a single memory location; clone() it first", op,
             shape_str(out->sizes()), shape_str(out->strides()));
  if (inplace) {
    KILN_CHECK(out->sizes().equals(shape),
               "[{}_] output with shape {} doesn't match the broadcast shape {}", op,
               shape_str(out->sizes()), shape_str(shape));
  } else if (!out->sizes().equals(shape)) {
    KILN_CHECK(out->numel() == 0,
               "[{}_out] got out= tensor of shape {}, expected shape {} (or an empty tensor to "
               "resize)", op, shape_str(out->sizes()), shape_str(shape));
    Tensor fresh = detail::make_empty(shape, out->dtype());
    out->unsafeGetTensorImpl()->set_storage(fresh.impl()->storage());
    out->unsafeGetTensorImpl()->set_sizes_and_strides(shape.vec(), detail::contiguous_strides(shape), 0);
  }
  KILN_CHECK(can_cast(result, out->dtype()),
             "[{}] result type {} can't be cast to the desired output type {}", op,
             dtype_name(result), dtype_name(out->dtype()));
  if (out->dtype() == result) return *out;
  return detail::make_empty(shape, result);
}

// ---- unary kernels --------------------------------------------------------------------------
template <typename F, typename in_t>
void unary_kernel(const Tensor& out, const Tensor& in, F f) {
  using M = opmath_t<in_t>;
  using R = decltype(f(M{}));
  using out_t = std::conditional_t<std::is_same_v<R, bool>, bool, in_t>;
  detail::for_each_row<2>(
      out.sizes(), {static_cast<char*>(out.data_ptr()), static_cast<char*>(in.data_ptr())},
      {detail::broadcast_byte_strides(out, out.sizes()), detail::broadcast_byte_strides(in, out.sizes())},
      [&](char** p, const int64_t* s, int64_t n) KILN_KERNEL_ROW {
        auto* o = reinterpret_cast<out_t*>(p[0]);
        auto* x = reinterpret_cast<const in_t*>(p[1]);
        if (s[0] == sizeof(out_t) && s[1] == sizeof(in_t)) {
          for (int64_t i = 0; i < n; ++i) o[i] = convert<out_t>(f(static_cast<M>(x[i])));
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<out_t*>(p[0] + i * s[0]) =
                convert<out_t>(f(static_cast<M>(*reinterpret_cast<const in_t*>(p[1] + i * s[1]))));
        }
      });
}

// The dtype rule is a template argument so ops that always compute in floating point are only
// instantiated for floating types.
template <ops::DtypeRule Rule, typename F>
void dispatch_unary(const ops::OpInfo& oi, ScalarType compute, const Tensor& out,
                    const Tensor& in, F f) {
  if constexpr (Rule == ops::DtypeRule::IntToFloat) {
    KILN_DISPATCH_FLOATING_TYPES(compute, oi.name, [&] { unary_kernel<F, scalar_t>(out, in, f); });
  } else {
    KILN_DISPATCH_ALL_TYPES(compute, oi.name, [&] { unary_kernel<F, scalar_t>(out, in, f); });
  }
}

void run_unary(OpKind kind, const Tensor& out, const Tensor& in, ScalarType compute) {
  const auto& oi = info(kind);
  switch (kind) {
#define KILN_UNARY_OP(Name, fn, r, t)                                               \
  case OpKind::Name:                                                                \
    dispatch_unary<ops::DtypeRule::r>(oi, compute, out, in, ops::scalar::Name{});   \
    break;
#include "kiln/ops/ops.def"
    default:
      KILN_ASSERT(false, "{} is not a unary op", oi.name);
  }
}

Tensor unary_op(OpKind kind, const Tensor& self, Tensor* out, bool inplace) {
  const auto& oi = info(kind);
  const char* op = oi.name.data();
  check_operand(self, op, "self");
  Dtypes dt = op_dtypes(oi, self.dtype());
  Tensor dst = prepare_output(op, out, self.sizes(), dt.result, inplace);
  Tensor src = self.dtype() == dt.compute ? unalias(self, dst) : self.to(dt.compute);
  run_unary(kind, dst, src, dt.compute);
  if (out == nullptr) return dst;
  if (!dst.is_same(*out)) out->copy_(dst);
  out->unsafeGetTensorImpl()->bump_version();
  return *out;
}

// ---- binary kernels -------------------------------------------------------------------------
template <typename F, typename in_t>
void binary_kernel(const Tensor& out, char* a, std::vector<int64_t> sa, char* b,
                   std::vector<int64_t> sb, F f) {
  using M = opmath_t<in_t>;
  using R = decltype(f(M{}, M{}));
  using out_t = std::conditional_t<std::is_same_v<R, bool>, bool, in_t>;
  auto op = [&](in_t x, in_t y) { return convert<out_t>(f(static_cast<M>(x), static_cast<M>(y))); };
  detail::for_each_row<3>(
      out.sizes(), {static_cast<char*>(out.data_ptr()), a, b},
      {detail::broadcast_byte_strides(out, out.sizes()), std::move(sa), std::move(sb)},
      [&](char** p, const int64_t* s, int64_t n) KILN_KERNEL_ROW {
        auto* o = reinterpret_cast<out_t*>(p[0]);
        auto* x = reinterpret_cast<const in_t*>(p[1]);
        auto* y = reinterpret_cast<const in_t*>(p[2]);
        constexpr int64_t so = sizeof(out_t), si = sizeof(in_t);
        if (s[0] == so && s[1] == si && s[2] == si) {
          for (int64_t i = 0; i < n; ++i) o[i] = op(x[i], y[i]);
        } else if (s[0] == so && s[1] == si && s[2] == 0) {
          const in_t yv = *y;
          for (int64_t i = 0; i < n; ++i) o[i] = op(x[i], yv);
        } else if (s[0] == so && s[1] == 0 && s[2] == si) {
          const in_t xv = *x;
          for (int64_t i = 0; i < n; ++i) o[i] = op(xv, y[i]);
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<out_t*>(p[0] + i * s[0]) =
                op(*reinterpret_cast<const in_t*>(p[1] + i * s[1]),
                   *reinterpret_cast<const in_t*>(p[2] + i * s[2]));
        }
      });
}

// All operands contiguous with the output's shape: one flat loop, no stride bookkeeping.
template <typename F, typename in_t>
void flat_binary_kernel(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  using M = opmath_t<in_t>;
  using R = decltype(f(M{}, M{}));
  using out_t = std::conditional_t<std::is_same_v<R, bool>, bool, in_t>;
  auto* o = static_cast<out_t*>(out.data_ptr());
  auto* x = static_cast<const in_t*>(a.data_ptr());
  auto* y = static_cast<const in_t*>(b.data_ptr());
  parallel_for(0, out.numel(), detail::kElementwiseGrain,
               [&](int64_t lo, int64_t hi) KILN_KERNEL_ROW {
                 for (int64_t i = lo; i < hi; ++i)
                   o[i] = convert<out_t>(f(static_cast<M>(x[i]), static_cast<M>(y[i])));
               });
}

template <ops::DtypeRule Rule, typename F>
void dispatch_flat_binary(const ops::OpInfo& oi, ScalarType compute, const Tensor& out,
                          const Tensor& a, const Tensor& b, F f) {
  if constexpr (Rule == ops::DtypeRule::IntToFloat) {
    KILN_DISPATCH_FLOATING_TYPES(compute, oi.name,
                                 [&] { flat_binary_kernel<F, scalar_t>(out, a, b, f); });
  } else {
    KILN_DISPATCH_ALL_TYPES(compute, oi.name, [&] { flat_binary_kernel<F, scalar_t>(out, a, b, f); });
  }
}

void run_flat_binary(OpKind kind, const Tensor& out, const Tensor& a, const Tensor& b,
                     ScalarType compute) {
  const auto& oi = info(kind);
  switch (kind) {
#define KILN_BINARY_OP(Name, fn, r, t)                                  \
  case OpKind::Name:                                                    \
    dispatch_flat_binary<ops::DtypeRule::r>(oi, compute, out, a, b, ops::scalar::Name{});  \
    break;
#include "kiln/ops/ops.def"
    default:
      KILN_ASSERT(false, "{} is not a binary op", oi.name);
  }
}

// A binary operand after promotion: a tensor converted to the compute dtype, or a scalar held in
// a small buffer of that dtype (stride 0).
struct Operand {
  Tensor t;
  alignas(8) char scalar[8] = {};
  bool is_scalar = false;
  char* data() { return is_scalar ? scalar : static_cast<char*>(t.data_ptr()); }
  std::vector<int64_t> strides(IntArrayRef shape) const {
    return is_scalar ? std::vector<int64_t>(shape.size(), 0)
                     : detail::broadcast_byte_strides(t, shape);
  }
};

Operand make_operand(const Arg& a, ScalarType compute, const Tensor* dst = nullptr) {
  Operand o;
  if (a.is_scalar()) {
    o.is_scalar = true;
    KILN_DISPATCH_ALL_TYPES(compute, "scalar", [&] {
      scalar_t v = a.s.to<scalar_t>();
      std::memcpy(o.scalar, &v, sizeof(v));
    });
  } else {
    o.t = a.t->dtype() != compute ? a.t->to(compute) : dst ? unalias(*a.t, *dst) : *a.t;
  }
  return o;
}

template <ops::DtypeRule Rule, typename F>
void dispatch_binary(const ops::OpInfo& oi, ScalarType compute, const Tensor& out, Operand& a,
                     Operand& b, F f) {
  auto run = [&](auto tag) {
    using scalar_t = decltype(tag);
    binary_kernel<F, scalar_t>(out, a.data(), a.strides(out.sizes()), b.data(),
                               b.strides(out.sizes()), f);
  };
  if constexpr (Rule == ops::DtypeRule::IntToFloat) {
    KILN_DISPATCH_FLOATING_TYPES(compute, oi.name, [&] { run(scalar_t{}); });
  } else {
    KILN_DISPATCH_ALL_TYPES(compute, oi.name, [&] { run(scalar_t{}); });
  }
}

void run_binary(OpKind kind, const Tensor& out, Operand& a, Operand& b, ScalarType compute) {
  const auto& oi = info(kind);
  switch (kind) {
#define KILN_BINARY_OP(Name, fn, r, t)                               \
  case OpKind::Name:                                                 \
    dispatch_binary<ops::DtypeRule::r>(oi, compute, out, a, b, ops::scalar::Name{});    \
    break;
#include "kiln/ops/ops.def"
    default:
      KILN_ASSERT(false, "{} is not a binary op", oi.name);
  }
}

// Integer division-like ops must not trap: find zero divisors before any write.
void check_integer_divisor(const ops::OpInfo& oi, ScalarType compute, const Arg& b) {
  if (oi.kind != OpKind::Remainder || !is_integral(compute, true)) return;
  bool has_zero = b.is_scalar() ? b.s.toDouble() == 0.0 : kiln::eq(*b.t, 0).any().item<bool>();
  KILN_CHECK(!has_zero, "[remainder] integer division by zero: got a zero divisor for dtype {}",
             dtype_name(compute));
}

Tensor binary_op(OpKind kind, const Arg& a, const Arg& b, Tensor* out, bool inplace) {
  const auto& oi = info(kind);
  const char* op = oi.name.data();
  if (!a.is_scalar()) check_operand(*a.t, op, "self");
  if (!b.is_scalar()) check_operand(*b.t, op, "other");
  // Fast path: same dtype, same shape, both contiguous, fresh output (the eager hot path).
  if (out == nullptr && !a.is_scalar() && !b.is_scalar() && a.t->dtype() == b.t->dtype() &&
      a.t->is_contiguous() && b.t->is_contiguous() && a.t->sizes().equals(b.t->sizes())) {
    Dtypes dt = op_dtypes(oi, a.t->dtype());
    if (dt.compute == a.t->dtype()) {
      check_integer_divisor(oi, dt.compute, b);
      Tensor dst = detail::make_empty(a.t->sizes(), dt.result);
      run_flat_binary(kind, dst, *a.t, *b.t, dt.compute);
      return dst;
    }
  }
  // libtorch rejects a bool operand of sub even when the other operand is numeric.
  if (kind == OpKind::Sub)
    for (const Arg* x : {&a, &b})
      KILN_CHECK(x->is_scalar() ? !x->s.is_boolean() : x->t->dtype() != kBool,
                 "[sub] subtraction with a bool operand is not supported: got dtype bool, "
                 "expected numeric operands (use logical_xor, or convert with .to(kInt))");
  ScalarType common = result_type_of({a, b});
  Dtypes dt = op_dtypes(oi, common);
  std::vector<int64_t> shape;
  if (!a.is_scalar()) shape = a.t->sizes().vec();
  if (!b.is_scalar()) shape = infer_broadcast_size(shape, b.t->sizes(), op);
  if (kind == OpKind::Pow && is_integral(dt.compute) && b.is_scalar())
    KILN_CHECK(b.s.toLong() >= 0 || b.s.is_floating_point(),
               "[pow] integers to negative integer powers are not allowed (got exponent {})",
               b.s.toLong());
  check_integer_divisor(oi, dt.compute, b);
  Tensor dst = prepare_output(op, out, shape, dt.result, inplace);
  Operand oa = make_operand(a, dt.compute, &dst), ob = make_operand(b, dt.compute, &dst);
  run_binary(kind, dst, oa, ob, dt.compute);
  if (out == nullptr) return dst;
  if (!dst.is_same(*out)) out->copy_(dst);
  out->unsafeGetTensorImpl()->bump_version();
  return *out;
}

Arg targ(const Tensor& t) { return Arg{&t, Scalar()}; }
Arg sarg(const Scalar& s) { return Arg{nullptr, s}; }

// ---- copy / cast ----------------------------------------------------------------------------
// A transposing copy of a matrix (src's rows are dst's columns): 8x8 tiles, so that a tile's
// reads and writes stay in a few cache lines and its loops have constant strides (the row
// loop below would step src by its full column stride for every element).
template <typename out_t, typename in_t>
bool transpose_copy(const Tensor& dst, const Tensor& src) {
  if (dst.dim() != 2 || !src.sizes().equals(dst.sizes()) || dst.stride(1) != 1 ||
      src.stride(0) != 1 || src.stride(1) == 1 || dst.size(0) < 8 || dst.size(1) < 8)
    return false;
  const int64_t rows = dst.size(0), cols = dst.size(1);
  const int64_t ds = dst.stride(0), ss = src.stride(1);
  auto* o = static_cast<out_t*>(dst.data_ptr());
  const auto* x = static_cast<const in_t*>(src.data_ptr());
  constexpr int64_t T = 8;
  parallel_for(0, (rows + T - 1) / T, std::max<int64_t>(1, detail::kElementwiseGrain / (T * cols)),
               [&](int64_t b0, int64_t b1) {
                 for (int64_t i0 = b0 * T; i0 < std::min(rows, b1 * T); i0 += T) {
                   const int64_t i1 = std::min(rows, i0 + T);
                   int64_t j0 = 0;
                   for (; j0 + T <= cols && i1 - i0 == T; j0 += T)
                     for (int64_t i = 0; i < T; ++i)
                       for (int64_t j = 0; j < T; ++j)
                         o[(i0 + i) * ds + j0 + j] = convert<out_t>(x[(j0 + j) * ss + i0 + i]);
                   for (int64_t i = i0; i < i1; ++i)  // the rest: short tiles, last columns
                     for (int64_t j = j0; j < cols; ++j)
                       o[i * ds + j] = convert<out_t>(x[j * ss + i]);
                 }
               });
  return true;
}

template <typename out_t, typename in_t>
void cast_kernel(const Tensor& dst, const Tensor& src) {
  if (transpose_copy<out_t, in_t>(dst, src)) return;
  detail::for_each_row<2>(
      dst.sizes(), {static_cast<char*>(dst.data_ptr()), static_cast<char*>(src.data_ptr())},
      {detail::broadcast_byte_strides(dst, dst.sizes()), detail::broadcast_byte_strides(src, dst.sizes())},
      [&](char** p, const int64_t* s, int64_t n) {
        if constexpr (std::is_same_v<out_t, in_t>) {
          if (s[0] == sizeof(out_t) && s[1] == sizeof(in_t)) {
            std::memcpy(p[0], p[1], n * sizeof(out_t));
            return;
          }
        }
        auto* o = reinterpret_cast<out_t*>(p[0]);
        auto* x = reinterpret_cast<const in_t*>(p[1]);
        if (s[0] == sizeof(out_t) && s[1] == sizeof(in_t)) {
          for (int64_t i = 0; i < n; ++i) o[i] = convert<out_t>(x[i]);
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<out_t*>(p[0] + i * s[0]) =
                convert<out_t>(*reinterpret_cast<const in_t*>(p[1] + i * s[1]));
        }
      });
}

}  // namespace

// Writes src (broadcast, converted) into dst's memory. dst and src may overlap only exactly.
void copy_kernel(const Tensor& dst, const Tensor& src) {
  KILN_DISPATCH_ALL_TYPES(dst.dtype(), "copy_", [&] {
    using out_t = scalar_t;
    KILN_DISPATCH_ALL_TYPES(src.dtype(), "copy_", [&] { cast_kernel<out_t, scalar_t>(dst, src); });
  });
}

Tensor& Tensor::copy_(const Tensor& src, bool non_blocking) {
  if (detail::should_record(*this, src)) [[unlikely]] {
    detail::record_inplace(OpKind::Assign, *this, {*this, src}, [&] { copy_(src, non_blocking); });
    return *this;
  }
  detail::check_cpu(*this, "copy_", "self");
  detail::check_cpu(src, "copy_", "src");
  auto shape = infer_broadcast_size(sizes(), src.sizes(), "copy_");
  KILN_CHECK(shape == sizes().vec(),
             "[copy_] source of shape {} cannot be broadcast to the destination shape {}",
             shape_str(src.sizes()), shape_str(sizes()));
  if (numel() == 0) return *this;
  // A source that overlaps the destination in memory (other than exactly) is copied first.
  Tensor s = src;
  if (src.impl()->storage() == impl()->storage() &&
      !(src.strides().equals(strides()) && src.storage_offset() == storage_offset() &&
        src.sizes().equals(sizes())))
    s = src.clone();
  copy_kernel(*this, s);
  impl_->bump_version();
  return *this;
}

Tensor& Tensor::fill_(const Scalar& value) {
  if (detail::should_record(*this)) [[unlikely]] {
    detail::record_inplace(OpKind::Assign, *this, {*this, IValue(value)}, [&] { fill_(value); });
    return *this;
  }
  detail::check_cpu(*this, "fill_", "self");
  KILN_DISPATCH_ALL_TYPES(dtype(), "fill_", [&] {
    const scalar_t v = value.to<scalar_t>();
    detail::for_each_row<1>(sizes(), {static_cast<char*>(data_ptr())},
                            {detail::broadcast_byte_strides(*this, sizes())},
                            [&](char** p, const int64_t* s, int64_t n) {
                              if (s[0] == sizeof(scalar_t)) {
                                auto* o = reinterpret_cast<scalar_t*>(p[0]);
                                for (int64_t i = 0; i < n; ++i) o[i] = v;
                              } else {
                                for (int64_t i = 0; i < n; ++i)
                                  *reinterpret_cast<scalar_t*>(p[0] + i * s[0]) = v;
                              }
                            });
  });
  impl_->bump_version();
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0); }

namespace detail {
Tensor assign(const Tensor& self, const IValue& src) {
  Tensor out = make_empty(self.sizes(), self.dtype(), self.device());
  if (src.is_tensor()) out.copy_(src.toTensor());
  else out.fill_(src.toScalar());
  return out;
}
}  // namespace detail

// ---- generated entry points -----------------------------------------------------------------
// Each checks should_record() first: when autograd or the tracer watches, the call is boxed and
// recorded (record.h); otherwise it goes straight to the kernel.
namespace {
Tensor unary_entry(OpKind kind, const Tensor& self) {
  if (detail::should_record(self)) [[unlikely]]
    return detail::record1(kind, {self});
  return unary_op(kind, self, nullptr, false);
}
void unary_inplace_entry(OpKind kind, Tensor& self) {
  if (detail::should_record(self)) [[unlikely]] {
    detail::record_inplace(kind, self, {self}, [&] { unary_op(kind, self, &self, true); });
    return;
  }
  unary_op(kind, self, &self, true);
}
void unary_out_entry(OpKind kind, Tensor& out, const Tensor& self) {
  if (detail::should_record(self, out)) [[unlikely]] {
    detail::record_out(kind, out, {self}, [&] { unary_op(kind, self, &out, false); });
    return;
  }
  unary_op(kind, self, &out, false);
}
IValue boxed(const Arg& a) { return a.is_scalar() ? IValue(a.s) : IValue(*a.t); }
bool records(const Arg& a, const Arg& b) {
  const Tensor none;
  return detail::should_record(a.is_scalar() ? none : *a.t, b.is_scalar() ? none : *b.t);
}
Tensor binary_entry(OpKind kind, const Arg& a, const Arg& b) {
  if (records(a, b)) [[unlikely]]
    return detail::record1(kind, {boxed(a), boxed(b)});
  return binary_op(kind, a, b, nullptr, false);
}
void binary_inplace_entry(OpKind kind, Tensor& self, const Arg& b) {
  const Arg a{&self, Scalar()};
  if (records(a, b)) [[unlikely]] {
    detail::record_inplace(kind, self, {self, boxed(b)},
                           [&] { binary_op(kind, a, b, &self, true); });
    return;
  }
  binary_op(kind, a, b, &self, true);
}
void binary_out_entry(OpKind kind, Tensor& out, const Tensor& self, const Tensor& other) {
  if (detail::should_record(self, other, out)) [[unlikely]] {
    detail::record_out(kind, out, {self, other},
                       [&] { binary_op(kind, targ(self), targ(other), &out, false); });
    return;
  }
  binary_op(kind, targ(self), targ(other), &out, false);
}
}  // namespace

#define KILN_UNARY_OP(Name, fn, r, t)                                               \
  Tensor fn(const Tensor& self) { return unary_entry(OpKind::Name, self); }         \
  Tensor& fn##_(Tensor& self) {                                                     \
    unary_inplace_entry(OpKind::Name, self);                                        \
    return self;                                                                    \
  }                                                                                 \
  Tensor& fn##_out(Tensor& out, const Tensor& self) {                               \
    unary_out_entry(OpKind::Name, out, self);                                       \
    return out;                                                                     \
  }                                                                                 \
  Tensor Tensor::fn() const { return unary_entry(OpKind::Name, *this); }            \
  Tensor& Tensor::fn##_() {                                                         \
    unary_inplace_entry(OpKind::Name, *this);                                       \
    return *this;                                                                   \
  }
#define KILN_BINARY_OP(Name, fn, r, t)                                                        \
  Tensor fn(const Tensor& self, const Tensor& other) {                                        \
    return binary_entry(OpKind::Name, targ(self), targ(other));                               \
  }                                                                                           \
  Tensor fn(const Tensor& self, const Scalar& other) {                                        \
    return binary_entry(OpKind::Name, targ(self), sarg(other));                               \
  }                                                                                           \
  Tensor fn(const Scalar& self, const Tensor& other) {                                        \
    return binary_entry(OpKind::Name, sarg(self), targ(other));                               \
  }                                                                                           \
  Tensor& fn##_out(Tensor& out, const Tensor& self, const Tensor& other) {                    \
    binary_out_entry(OpKind::Name, out, self, other);                                         \
    return out;                                                                               \
  }                                                                                           \
  Tensor Tensor::fn(const Tensor& other) const {                                              \
    return binary_entry(OpKind::Name, targ(*this), targ(other));                              \
  }                                                                                           \
  Tensor Tensor::fn(const Scalar& other) const {                                              \
    return binary_entry(OpKind::Name, targ(*this), sarg(other));                              \
  }                                                                                           \
  Tensor& Tensor::fn##_(const Tensor& other) {                                                \
    binary_inplace_entry(OpKind::Name, *this, targ(other));                                   \
    return *this;                                                                             \
  }                                                                                           \
  Tensor& Tensor::fn##_(const Scalar& other) {                                                \
    binary_inplace_entry(OpKind::Name, *this, sarg(other));                                   \
    return *this;                                                                             \
  }
#include "kiln/ops/ops.def"

namespace {
void check_alpha(const char* op, const Tensor& self, const Tensor& other, const Scalar& alpha) {
  ScalarType t = result_type(self, other);
  KILN_CHECK(!(is_integral(t, true) && alpha.is_floating_point()),
             "[{}] for integral input tensors (here {}), argument alpha must not be a floating "
             "point number (got {})", op, dtype_name(t), alpha.toDouble());
  KILN_CHECK(t == kBool || !alpha.is_boolean(),
             "[{}] boolean alpha only supported for bool tensors, got dtype {}", op, dtype_name(t));
}
}  // namespace

Tensor add(const Tensor& self, const Tensor& other, const Scalar& alpha) {
  check_alpha("add", self, other, alpha);
  if (alpha.to<double>() == 1.0 && !alpha.is_floating_point()) return add(self, other);
  return add(self, mul(other, alpha));
}
Tensor sub(const Tensor& self, const Tensor& other, const Scalar& alpha) {
  check_alpha("sub", self, other, alpha);
  return sub(self, mul(other, alpha));
}
Tensor Tensor::add(const Tensor& other, const Scalar& alpha) const {
  return kiln::add(*this, other, alpha);
}
Tensor Tensor::sub(const Tensor& other, const Scalar& alpha) const {
  return kiln::sub(*this, other, alpha);
}
Tensor& Tensor::add_(const Tensor& other, const Scalar& alpha) {
  check_alpha("add_", *this, other, alpha);
  return add_(kiln::mul(other, alpha));
}
Tensor& Tensor::sub_(const Tensor& other, const Scalar& alpha) {
  check_alpha("sub_", *this, other, alpha);
  return sub_(kiln::mul(other, alpha));
}
Tensor square(const Tensor& self) { return mul(self, self); }

Tensor operator+(const Scalar& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Scalar& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Scalar& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Scalar& a, const Tensor& b) { return div(a, b); }

ScalarType result_type(const Tensor& a, const Tensor& b) {
  return result_type_of({targ(a), targ(b)});
}
ScalarType result_type(const Tensor& a, const Scalar& b) {
  return result_type_of({targ(a), sarg(b)});
}

// ---- clamp (a composite of maximum/minimum; NaN in self propagates) --------------------------
Tensor clamp(const Tensor& self, const std::optional<Scalar>& min,
             const std::optional<Scalar>& max) {
  KILN_CHECK(min || max, "[clamp] got neither min nor max, expected at least one of them");
  Tensor r = self;
  if (min) r = maximum(r, *min);
  if (max) r = minimum(r, *max);
  return r;
}
Tensor& clamp_(Tensor& self, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  KILN_CHECK(min || max, "[clamp_] got neither min nor max, expected at least one of them");
  PromotionState st;
  st.add(targ(self));
  if (min) st.add(sarg(*min));
  if (max) st.add(sarg(*max));
  KILN_CHECK(can_cast(st.result(), self.dtype()),
             "[clamp_] result type {} can't be cast to the desired output type {}",
             dtype_name(st.result()), dtype_name(self.dtype()));
  if (min) self.maximum_(*min);
  if (max) self.minimum_(*max);
  return self;
}
Tensor clamp_min(const Tensor& self, const Scalar& min) { return clamp(self, min, std::nullopt); }
Tensor clamp_max(const Tensor& self, const Scalar& max) { return clamp(self, std::nullopt, max); }
Tensor Tensor::clamp(const std::optional<Scalar>& min, const std::optional<Scalar>& max) const {
  return kiln::clamp(*this, min, max);
}
Tensor& Tensor::clamp_(const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  return kiln::clamp_(*this, min, max);
}

// ---- where ----------------------------------------------------------------------------------
namespace {
// One row of where: p = {out, cond, self, other}, byte strides s. Contiguous rows with each
// value operand contiguous or a broadcast number are plain loops the compiler vectorises
// (select on the condition bytes).
template <typename T>
void where_row(char** p, const int64_t* s, int64_t n) {
  constexpr int64_t sz = sizeof(T);
  if (s[0] == sz && s[1] == 1 && (s[2] == sz || s[2] == 0) && (s[3] == sz || s[3] == 0)) {
    auto* o = reinterpret_cast<T*>(p[0]);
    const auto* c = reinterpret_cast<const uint8_t*>(p[1]);  // bool is one byte, 0 or 1
    const auto* a = reinterpret_cast<const T*>(p[2]);
    const auto* b = reinterpret_cast<const T*>(p[3]);
    if (s[2] == sz && s[3] == sz) {
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] != 0 ? a[i] : b[i];
    } else if (s[2] == sz) {
      const T bv = *b;
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] != 0 ? a[i] : bv;
    } else if (s[3] == sz) {
      const T av = *a;
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] != 0 ? av : b[i];
    } else {
      const T av = *a, bv = *b;
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] != 0 ? av : bv;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
    *reinterpret_cast<T*>(p[0] + i * s[0]) =
        *reinterpret_cast<const T*>((c ? p[2] : p[3]) + i * (c ? s[2] : s[3]));
  }
}

Tensor where_impl(const Tensor& cond, const Arg& a, const Arg& b) {
  const Tensor none;
  if (detail::should_record(cond, a.is_scalar() ? none : *a.t, b.is_scalar() ? none : *b.t))
    [[unlikely]]
    return detail::record1(OpKind::Where, {cond, boxed(a), boxed(b)});
  detail::check_cpu(cond, "where", "condition");
  KILN_CHECK(cond.dtype() == kBool, "[where] got condition of dtype {}, expected bool",
             dtype_name(cond.dtype()));
  if (!a.is_scalar()) detail::check_cpu(*a.t, "where", "self");
  if (!b.is_scalar()) detail::check_cpu(*b.t, "where", "other");
  ScalarType common = result_type_of({a, b});
  std::vector<int64_t> shape = cond.sizes().vec();
  if (!a.is_scalar()) shape = infer_broadcast_size(shape, a.t->sizes(), "where");
  if (!b.is_scalar()) shape = infer_broadcast_size(shape, b.t->sizes(), "where");
  Tensor dst = detail::make_empty(shape, common);
  Operand oa = make_operand(a, common), ob = make_operand(b, common);
  KILN_DISPATCH_ALL_TYPES(common, "where", [&] {
    detail::for_each_row<4>(
        shape,
        {static_cast<char*>(dst.data_ptr()), static_cast<char*>(cond.data_ptr()), oa.data(),
         ob.data()},
        {detail::broadcast_byte_strides(dst, shape), detail::broadcast_byte_strides(cond, shape),
         oa.strides(shape), ob.strides(shape)},
        [&](char** p, const int64_t* s, int64_t n) { where_row<scalar_t>(p, s, n); });
  });
  return dst;
}
}  // namespace

Tensor where(const Tensor& c, const Tensor& a, const Tensor& b) { return where_impl(c, targ(a), targ(b)); }
Tensor where(const Tensor& c, const Scalar& a, const Tensor& b) { return where_impl(c, sarg(a), targ(b)); }
Tensor where(const Tensor& c, const Tensor& a, const Scalar& b) { return where_impl(c, targ(a), sarg(b)); }
Tensor where(const Tensor& c, const Scalar& a, const Scalar& b) { return where_impl(c, sarg(a), sarg(b)); }
Tensor Tensor::where(const Tensor& condition, const Tensor& other) const {
  return kiln::where(condition, *this, other);
}

// ---- fused backward kernels (tensor/backward_kernels.h) -------------------------------------
namespace {
template <typename T>
void relu_backward_row(char** p, const int64_t* s, int64_t n) {
  using M = opmath_t<T>;
  constexpr int64_t sz = sizeof(T);
  auto* o = reinterpret_cast<T*>(p[0]);
  const auto* g = reinterpret_cast<const T*>(p[1]);
  const auto* r = reinterpret_cast<const T*>(p[2]);
  if (s[0] == sz && s[1] == sz && s[2] == sz) {
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<M>(r[i]) > M(0) ? g[i] : T(0);
  } else if (s[0] == sz && s[1] == 0 && s[2] == sz) {
    const T gv = *g;  // the gradient of a sum: one value broadcast
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<M>(r[i]) > M(0) ? gv : T(0);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T rv = *reinterpret_cast<const T*>(p[2] + i * s[2]);
      *reinterpret_cast<T*>(p[0] + i * s[0]) =
          static_cast<M>(rv) > M(0) ? *reinterpret_cast<const T*>(p[1] + i * s[1]) : T(0);
    }
  }
}
}  // namespace

namespace detail {
Tensor relu_backward(const Tensor& grad, const Tensor& result) {
  if (grad.dtype() != result.dtype() || !is_floating_point(grad.dtype()) ||
      !grad.device().is_cpu() || !result.device().is_cpu())
    return Tensor();
  const std::vector<int64_t> shape =
      infer_broadcast_size(result.sizes(), grad.sizes(), "relu_backward");
  Tensor out = make_empty(shape, grad.dtype());
  KILN_DISPATCH_FLOATING_TYPES(grad.dtype(), "relu_backward", [&] {
    for_each_row<3>(
        shape,
        {static_cast<char*>(out.data_ptr()), static_cast<char*>(grad.data_ptr()),
         static_cast<char*>(result.data_ptr())},
        {broadcast_byte_strides(out, shape), broadcast_byte_strides(grad, shape),
         broadcast_byte_strides(result, shape)},
        [&](char** p, const int64_t* s, int64_t n) { relu_backward_row<scalar_t>(p, s, n); });
  });
  return out;
}
}  // namespace detail

// ---- comparisons of whole tensors -----------------------------------------------------------
Tensor isnan(const Tensor& self) { return ne(self, self); }

bool equal(const Tensor& a, const Tensor& b) {
  detail::check_cpu(a, "equal", "self");
  detail::check_cpu(b, "equal", "other");
  if (!a.sizes().equals(b.sizes())) return false;
  if (a.numel() == 0) return true;
  return eq(a, b).all().item<bool>();
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  Tensor x = a.to(kDouble), y = b.to(kDouble);
  Tensor ok = le(abs(sub(x, y)), add(mul(abs(y), rtol), atol));
  ok = logical_or(ok, eq(x, y));  // equal infinities
  if (equal_nan) ok = logical_or(ok, logical_and(isnan(x), isnan(y)));
  return ok.numel() == 0 || ok.all().item<bool>();
}

}  // namespace kiln
