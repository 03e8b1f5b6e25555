// Val: an LLVM IR value (scalar or vector) with C++ operators, so that the generic scalar functors
// of src/ops/scalar_ops.h, instantiated with Val, emit IR instead of computing. Math functions
// (exp, erf, ...) are found by argument-dependent lookup; see vector_math.h.
#pragma once

#include <cstdint>
#include <type_traits>

namespace llvm {
class IRBuilderBase;
class Type;
class Value;
}  // namespace llvm

namespace kiln::codegen::llvm {

/// A value being emitted: an llvm::Value* of float, integer or i1 (mask) elements, scalar or
/// vector, together with the IRBuilder that made it. A Val built from a C++ number is a literal
/// with no type yet; it takes the type of the other operand the first time it meets one (so
/// `T(0.5) * x` emits a float or double splat as x is), and literals combined with each other fold
/// in double precision.
class Val {
 public:
  Val() = default;  // the literal 0
  Val(::llvm::Value* v, ::llvm::IRBuilderBase& b) : v_(v), b_(&b) {}
  template <class N>
  requires std::is_arithmetic_v<N> Val(
      N literal)  // NOLINT: implicit, as `x * 2` and the functors' `T(1)` need
      : lit_(static_cast<double>(literal)),
        lit_int_(static_cast<int64_t>(literal)),
        lit_is_int_(std::is_integral_v<N>) {}

  bool is_literal() const { return v_ == nullptr; }
  double literal() const { return lit_; }
  ::llvm::Value* value() const;  ///< the IR value; a literal must be materialised first
  ::llvm::IRBuilderBase& builder() const;
  ::llvm::Type* type() const;
  ::llvm::Type* element_type() const;
  bool is_float() const;
  bool is_mask() const;  ///< i1 elements: the result of a comparison
  int lanes() const;     ///< 1 for a scalar
  int element_bits() const;

  /// A constant of this value's type (a splat for vectors) equal to c.
  Val constant(double c) const;
  /// An integer constant of this value's type, or of the same-width integer type for floats.
  Val int_constant(int64_t c) const;
  /// This literal as a value of like's type (like must not be a literal); a non-literal is
  /// returned as is.
  Val like(const Val& like) const;

  /// For a mask: the type of the values compared to make it (so where(mask, 1, 0) can type its
  /// literals); null otherwise.
  ::llvm::Type* origin() const { return origin_; }
  Val with_origin(::llvm::Type* t) const {
    Val r = *this;
    r.origin_ = t;
    return r;
  }

 private:
  ::llvm::Value* v_ = nullptr;
  ::llvm::Type* origin_ = nullptr;
  ::llvm::IRBuilderBase* b_ = nullptr;
  double lit_ = 0;
  int64_t lit_int_ = 0;
  bool lit_is_int_ = false;
};

// ---- arithmetic: float, integer (signed) and, for & | ^ ! && ||, masks --------------------------
Val operator+(const Val& a, const Val& b);
Val operator-(const Val& a, const Val& b);
Val operator*(const Val& a, const Val& b);
Val operator/(const Val& a, const Val& b);
Val operator%(const Val& a, const Val& b);  ///< frem (C fmod) for floats, srem for integers
Val operator-(const Val& a);
inline Val& operator+=(Val& a, const Val& b) { return a = a + b; }
inline Val& operator-=(Val& a, const Val& b) { return a = a - b; }
inline Val& operator*=(Val& a, const Val& b) { return a = a * b; }
inline Val& operator/=(Val& a, const Val& b) { return a = a / b; }

// Comparisons follow C++ on floats: ordered, except != which is true for NaN.
Val operator==(const Val& a, const Val& b);
Val operator!=(const Val& a, const Val& b);
Val operator<(const Val& a, const Val& b);
Val operator<=(const Val& a, const Val& b);
Val operator>(const Val& a, const Val& b);
Val operator>=(const Val& a, const Val& b);

// Masks and integers. && and || evaluate both sides (this emits straight-line vector code).
Val operator!(const Val& a);
Val operator&&(const Val& a, const Val& b);
Val operator||(const Val& a, const Val& b);
Val operator&(const Val& a, const Val& b);
Val operator|(const Val& a, const Val& b);
Val operator^(const Val& a, const Val& b);
Val operator<<(const Val& a, int bits);
Val operator>>(const Val& a, int bits);  ///< arithmetic shift
Val lshr(const Val& a, int bits);        ///< logical shift

/// Lane-wise cond ? a : b (scalar_ops.h's where for native types).
Val where(const Val& cond, const Val& a, const Val& b);

// ---- conversions -----------------------------------------------------------------------------
Val bits_of(const Val& x);                           ///< float -> same-width integer, bit for bit
Val float_from_bits(const Val& i, const Val& like);  ///< integer -> float of like's type
Val to_int(const Val& x);                            ///< fptosi to the same-width integer
Val to_float(const Val& i, const Val& like);         ///< sitofp to like's float type
Val mask_to(const Val& mask, const Val& like);       ///< true -> 1, false -> 0 in like's type
Val convert(const Val& x, ::llvm::Type* to);         ///< fpext/fptrunc/sitofp/fptosi/zext as fits

// ---- exact IEEE operations (llvm intrinsics, vectorised by every backend) ---------------------
Val abs(const Val& x);
Val floor(const Val& x);
Val ceil(const Val& x);
Val trunc(const Val& x);
Val nearbyint(const Val& x);  ///< round half to even
Val rint(const Val& x);
Val sqrt(const Val& x);
Val rsqrt(const Val& x);  ///< 1 / sqrt(x), correctly rounded division
Val copysign(const Val& mag, const Val& sign);
Val fmod(const Val& a, const Val& b);
Val fma(const Val& a, const Val& b, const Val& c);      ///< llvm.fma: always fused
Val mul_add(const Val& a, const Val& b, const Val& c);  ///< llvm.fmuladd: fused where fast
Val isnan(const Val& x);
Val isinf(const Val& x);
Val signbit(const Val& x);
Val min(const Val& a, const Val& b);  ///< a < b ? a : b
Val max(const Val& a, const Val& b);  ///< a > b ? a : b

/// Horner's scheme with mul_add: c[0] x^(n-1) + ... + c[n-1].
template <class C, int N>
Val polynomial(const Val& x, const C (&c)[N]) {
  Val acc = Val(c[0]).like(x);
  for (int i = 1; i < N; ++i) acc = mul_add(acc, x, Val(c[i]));
  return acc;
}

}  // namespace kiln::codegen::llvm
