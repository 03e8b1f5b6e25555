// Vectorisable float32/float64 math for the eager elementwise kernels (through the ops::scalar
// functors of scalar_ops.h) and the reductions: exp, exp2, expm1, log, log2, log1p, tanh, erf.
// The algorithms and polynomial coefficients are those of the JIT's vector math library
// (src/codegen/llvm/vector_math.cpp, docs/design.md "Vector math"), written as branch-free C++
// over one value (selects, bit casts, integer ops AVX2 has) so that GCC and Clang vectorise the
// kernel loops that call them; multiply-adds fuse exactly where the JIT's llvm.fmuladd does (on
// FMA hosts), so eager and compiled kernels agree. Accuracy: tests/test_simd_math.cpp.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#if defined(__GNUC__)
#define KILN_MATH_INLINE inline __attribute__((always_inline))
#else
#define KILN_MATH_INLINE inline
#endif

namespace kiln::ops::math {

/// float or double: the types these functions are defined for (a codegen value type such as
/// codegen::llvm::Val gets its own through ADL).
template <class T>
concept Real = std::is_same_v<T, float> || std::is_same_v<T, double>;

namespace coeffs {
// Generated data shared with the JIT's library (scripts/fit_polynomials.py); no LLVM in it.
#include "codegen/llvm/poly_coeffs.inc"
}  // namespace coeffs

namespace impl {

template <class T>
struct Traits;
template <>
struct Traits<float> {
  using Int = int32_t;
  using UInt = uint32_t;
  static constexpr int kMant = 23;
  static constexpr int kBias = 127;
};
template <>
struct Traits<double> {
  using Int = int64_t;
  using UInt = uint64_t;
  static constexpr int kMant = 52;
  static constexpr int kBias = 1023;
};

template <class T>
using UInt = typename Traits<T>::UInt;

// A constant of T: c32 for float, c64 for double (the JIT's k(x, c32, c64)).
template <class T>
constexpr T k(double c32, double c64) {
  return std::is_same_v<T, float> ? static_cast<T>(c32) : static_cast<T>(c64);
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLog2e = 0x1.71547652b82fep+0;

// a * b + c, fused where the host has FMA (what llvm.fmuladd lowers to there).
template <class T>
KILN_MATH_INLINE T mul_add(T a, T b, T c) {
#if defined(__FMA__) || defined(__aarch64__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// Horner's scheme, c[0] x^(N-1) + ... + c[N-1], unrolled at compile time (a loop here would
// be control flow that keeps the caller's loop from vectorising).
template <class C, int N, class T, size_t... I>
KILN_MATH_INLINE T horner(T x, const C (&c)[N], std::index_sequence<I...>) {
  T acc = static_cast<T>(c[0]);
  ((acc = mul_add(acc, x, static_cast<T>(c[I + 1]))), ...);
  return acc;
}
template <class C, int N, class T>
KILN_MATH_INLINE T polynomial(T x, const C (&c)[N]) {
  return horner(x, c, std::make_index_sequence<N - 1>());
}

// The polynomial with coefficients a where mask holds and b elsewhere (one degree).
template <class C, int N, class T, size_t... I>
KILN_MATH_INLINE T horner_select(T x, bool mask, const C (&a)[N], const C (&b)[N],
                                 std::index_sequence<I...>) {
  T acc = mask ? static_cast<T>(a[0]) : static_cast<T>(b[0]);
  ((acc = mul_add(acc, x, mask ? static_cast<T>(a[I + 1]) : static_cast<T>(b[I + 1]))), ...);
  return acc;
}
template <class C, int N, class T>
KILN_MATH_INLINE T polynomial_select(T x, bool mask, const C (&a)[N], const C (&b)[N]) {
  return horner_select(x, mask, a, b, std::make_index_sequence<N - 1>());
}

template <class T>
KILN_MATH_INLINE bool is_nan(T x) {
  return x != x;
}
// x > hi ? hi : x and x < lo ? lo : x, keeping NaN.
template <class T>
KILN_MATH_INLINE T clamp_hi(T x, T hi) {
  return x > hi ? hi : x;
}
template <class T>
KILN_MATH_INLINE T clamp_lo(T x, T lo) {
  return x < lo ? lo : x;
}

template <class T>
KILN_MATH_INLINE UInt<T> bits_of(T x) {
  return std::bit_cast<UInt<T>>(x);
}
template <class T>
KILN_MATH_INLINE T from_bits(UInt<T> b) {
  return std::bit_cast<T>(b);
}

// Round to nearest even for |x| < 2^22 (float) / 2^51 (double): adding and removing 1.5 * 2^p
// rounds in the FPU (the JIT's rint, without a call or SSE4.1 rounding). The integer comes out
// of the low mantissa bits of the sum (no float-to-int64 conversion, which AVX2 lacks).
template <class T>
struct Rounded {
  T n;                         // the integer, as T
  typename Traits<T>::Int ni;  // the integer
};
template <class T>
KILN_MATH_INLINE Rounded<T> round_even(T x) {
  using I = typename Traits<T>::Int;
  constexpr T kShift = k<T>(0x1.8p23, 0x1.8p52);
  const T s = x + kShift;
  return {s - kShift, static_cast<I>(bits_of(s) - bits_of(kShift))};
}

// 2^n for n inside the normal exponent range of T.
template <class T>
KILN_MATH_INLINE T pow2i(typename Traits<T>::Int n) {
  using U = UInt<T>;
  return from_bits<T>(static_cast<U>(n + Traits<T>::kBias) << Traits<T>::kMant);
}

// ---- exp family --------------------------------------------------------------------------
// x = n ln2 + r, |r| <= ln2/2 (Cody-Waite, n * ln2_hi exact): expm1(r) = r + r^2 P(r), and n.
template <class T>
struct ExpReduced {
  T u;
  typename Traits<T>::Int n;
};
template <class T>
KILN_MATH_INLINE ExpReduced<T> exp_reduce(T x) {
  const Rounded<T> n = round_even(x * static_cast<T>(kLog2e));
  T r = mul_add(n.n, k<T>(-0x1.62e4p-1, -0x1.62e42fee00000p-1), x);
  r = mul_add(n.n, k<T>(-0x1.7f7d1cp-20, -0x1.a39ef35793c76p-33), r);
  T p;
  if constexpr (std::is_same_v<T, float>)
    p = polynomial(r, coeffs::kPolyExpP32);
  else
    p = polynomial(r, coeffs::kPolyExpP64);
  return {mul_add(r * r, p, r), n.ni};
}

// (1 + u) 2^n as two factors, so results near overflow and in the denormal range round once.
// n1 = floor(n / 2) by a logical shift of n + 2048 > 0 (AVX2 has no 64-bit arithmetic shift).
template <class T>
KILN_MATH_INLINE T scale_by_pow2(T u, typename Traits<T>::Int n) {
  using I = typename Traits<T>::Int;
  const I n1 = static_cast<I>(static_cast<UInt<T>>(n + 2048) >> 1) - 1024, n2 = n - n1;
  return (T(1) + u) * pow2i<T>(n1) * pow2i<T>(n2);
}

// A NaN lane replaced by 0 before it reaches an integer conversion (undefined behaviour in C++);
// its result is fixed up afterwards.
template <class T>
KILN_MATH_INLINE T nan_to_zero(T x) {
  return is_nan(x) ? T(0) : x;
}

}  // namespace impl

template <Real T>
KILN_MATH_INLINE T exp(T x) {
  using namespace impl;
  const T xc = clamp_lo(clamp_hi(nan_to_zero(x), k<T>(89, 710)), k<T>(-104, -746));
  const ExpReduced<T> e = exp_reduce(xc);
  const T res = scale_by_pow2(e.u, e.n);
  return is_nan(x) ? x : res;
}

template <Real T>
KILN_MATH_INLINE T exp2(T x) {
  using namespace impl;
  const T xc = clamp_lo(clamp_hi(nan_to_zero(x), k<T>(129, 1025)), k<T>(-151, -1076));
  const Rounded<T> n = round_even(xc);
  const T r = xc - n.n;  // exact, |r| <= 1/2
  // rl = r ln2, |rl| <= ln2/2: the exp polynomial applies directly.
  const T rl = mul_add(r, k<T>(0x1.62e43p-1, 0x1.62e42fefa39efp-1),
                       r * k<T>(-0x1.05c610p-29, 0x1.abc9e3b39803fp-56));
  T p;
  if constexpr (std::is_same_v<T, float>)
    p = polynomial(rl, coeffs::kPolyExpP32);
  else
    p = polynomial(rl, coeffs::kPolyExpP64);
  const T u = mul_add(rl * rl, p, rl);
  const T res = scale_by_pow2(u, n.ni);
  return is_nan(x) ? x : res;
}

template <Real T>
KILN_MATH_INLINE T expm1(T x) {
  using namespace impl;
  // Below -30 (float) / -60 (double) expm1 rounds to -1; above the overflow bound it is inf.
  const T xc = clamp_lo(clamp_hi(nan_to_zero(x), k<T>(89, 710)), k<T>(-30, -60));
  const ExpReduced<T> e = exp_reduce(xc);
  // expm1 = 2 (t u + (t - 1/2)) with t = 2^(n-1): finite for n = 128 / 1024.
  const T t = pow2i<T>(e.n - 1);
  T res = T(2) * mul_add(t, e.u, t - T(0.5));
  // |x| tiny: expm1(x) rounds to x (keeping -0 and denormals exact).
  res = std::abs(x) < k<T>(0x1p-25, 0x1p-54) ? x : res;
  return is_nan(x) ? x : res;
}

namespace impl {

// x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1 (x > 0 normal): log1p(f) = f - hfsq +
// s (hfsq + R), s = f / (2 + f), hfsq = f^2 / 2, R = z Q(z), z = s^2.
template <class T>
struct LogReduced {
  T k, f, hfsq, tail;
};
template <class T>
KILN_MATH_INLINE LogReduced<T> log_reduce(T x) {
  using U = UInt<T>;
  constexpr bool d = std::is_same_v<T, double>;
  constexpr U sq = d ? U(0x3fe6a09e667f3bcdULL) : U(0x3f3504f3U);
  constexpr U one = d ? U(0x3ff0000000000000ULL) : U(0x3f800000U);
  constexpr U mmask = d ? U(0x000fffffffffffffULL) : U(0x007fffffU);
  constexpr int mb = Traits<T>::kMant;
  // For x > 0 the biased sum is below 2^63 / 2^31, so logical shifts act as arithmetic ones.
  const U ix = bits_of(x) + (one - sq);
  // The exponent as T without an int-to-float conversion AVX2 lacks for int64: OR it into the
  // mantissa of 2^mb and subtract (2^mb + bias) exactly.
  constexpr U kTwoMb = d ? U(0x4330000000000000ULL) : U(0x4b000000U);  // 2^mb
  const T kk =
      from_bits<T>((ix >> mb) | kTwoMb) - static_cast<T>((d ? 0x1p52 : 0x1p23) + Traits<T>::kBias);
  const T m = from_bits<T>((ix & mmask) + sq);
  const T f = m - T(1);
  const T s = f / (T(2) + f);
  const T z = s * s;
  T q;
  if constexpr (d)
    q = polynomial(z, coeffs::kPolyLogQ64);
  else
    q = polynomial(z, coeffs::kPolyLogQ32);
  const T hfsq = T(0.5) * f * f;
  return {kk, f, hfsq, s * mul_add(z, q, hfsq)};
}

// Denormal inputs scaled into the normal range; off is the exponent offset to add back.
template <class T>
struct Normalized {
  T x, off;
};
template <class T>
KILN_MATH_INLINE Normalized<T> normalize_denormal(T x) {
  const bool tiny = x < k<T>(0x1p-126, 0x1p-1022);
  return {tiny ? x * k<T>(0x1p24, 0x1p54) : x, tiny ? k<T>(-24, -54) : T(0)};
}

// log's special values: +inf and NaN return x, 0 gives -inf, x < 0 gives NaN.
template <class T>
KILN_MATH_INLINE T log_specials(T x, T res) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  T r = x < inf ? res : x;
  r = x == T(0) ? -inf : r;
  return x < T(0) ? std::numeric_limits<T>::quiet_NaN() : r;
}

}  // namespace impl

template <Real T>
KILN_MATH_INLINE T log(T x) {
  using namespace impl;
  const Normalized<T> n = normalize_denormal(x);
  const LogReduced<T> l = log_reduce(n.x);
  const T dk = l.k + n.off;
  const T ln2hi = k<T>(0x1.62e3p-1, 0x1.62e42fee00000p-1);
  const T ln2lo = k<T>(0x1.2fefa2p-17, 0x1.a39ef35793c76p-33);
  const T res = l.tail + dk * ln2lo - l.hfsq + l.f + dk * ln2hi;
  return log_specials(x, res);
}

template <Real T>
KILN_MATH_INLINE T log2(T x) {
  using namespace impl;
  using U = UInt<T>;
  const Normalized<T> n = normalize_denormal(x);
  const LogReduced<T> l = log_reduce(n.x);
  const T dk = l.k + n.off;
  constexpr bool d = std::is_same_v<T, double>;
  // hi = f - hfsq with its low bits cut, so hi * ivln2hi is exact; lo carries the rest.
  T hi = l.f - l.hfsq;
  hi = from_bits<T>(bits_of(hi) & (d ? U(0xffffffff00000000ULL) : U(0xfffff000U)));
  const T lo = l.f - hi - l.hfsq + l.tail;
  const T ivhi = k<T>(0x1.716p+0, 0x1.7154765200000p+0);
  const T ivlo = k<T>(-0x1.7135a8p-13, 0x1.705fc2eefa200p-33);
  const T res = (lo + hi) * ivlo + lo * ivhi + hi * ivhi + dk;
  return log_specials(x, res);
}

template <Real T>
KILN_MATH_INLINE T log1p(T x) {
  using namespace impl;
  constexpr T inf = std::numeric_limits<T>::infinity();
  const T u = T(1) + x;
  // u > 0 is never denormal here; other lanes take 1 so the reduction stays finite.
  const T us = u > T(0) ? u : T(1);
  const LogReduced<T> l = log_reduce(us);
  // c / u corrects for the rounding of 1 + x (c is exact while u - 1 is).
  const T c = (x - (us - T(1))) / us;
  const T ln2hi = k<T>(0x1.62e3p-1, 0x1.62e42fee00000p-1);
  const T ln2lo = k<T>(0x1.2fefa2p-17, 0x1.a39ef35793c76p-33);
  T res = l.tail + (l.k * ln2lo + c) - l.hfsq + l.f + l.k * ln2hi;
  res = x < inf ? res : x;  // +inf, NaN
  res = x == T(-1) ? -inf : res;
  res = x < T(-1) ? std::numeric_limits<T>::quiet_NaN() : res;
  return std::abs(x) < k<T>(0x1p-24, 0x1p-54) ? x : res;
}

template <Real T>
KILN_MATH_INLINE T tanh(T x) {
  using namespace impl;
  // tanh |x| = e / (e + 2), e = expm1(2|x|): accurate down to denormals; |x| beyond 10 (float)
  // / 22 (double) rounds to 1.
  const T a = clamp_hi(std::abs(x), k<T>(10, 22));
  const T e = math::expm1(a + a);
  return std::copysign(e / (e + T(2)), x);
}

template <Real T>
KILN_MATH_INLINE T erf(T x) {
  using namespace impl;
  constexpr bool d = std::is_same_v<T, double>;
  const T a = std::abs(x);
  const T z = x * x;
  T small, g;
  if constexpr (d)
    small = x * polynomial(z, coeffs::kPolyErfE64);
  else
    small = x * polynomial(z, coeffs::kPolyErfE32);
  // |x| >= 1: erf = 1 - exp(-x^2) G(|x|); G's fit ends where erf rounds to 1.
  const T ac = clamp_hi(a, k<T>(4, 6));
  if constexpr (d)
    g = polynomial_select(ac, ac < T(2.5), coeffs::kPolyErfcGLo64, coeffs::kPolyErfcGHi64);
  else
    g = polynomial(ac, coeffs::kPolyErfcG32);
  const T large = std::copysign(T(1) - math::exp(-z) * g, x);
  return a < T(1) ? small : large;
}

}  // namespace kiln::ops::math
