// Shared by the math accuracy tests (test_vector_math.cpp: the JIT's IR polynomials;
// test_simd_math.cpp: the same algorithms as eager C++): the ulp error measure, the special
// values and the whole-domain input sweep.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

namespace kiln::testing {

// ulp error of y against the reference r: |y - r| in units of the ulp of r in T's format
// (denormal ulp below the normal range). NaN must match NaN, inf must match exactly, and a zero
// result must have the reference's sign: any mismatch of special values counts as infinite.
template <class T>
double ulp_error(T y, long double r) {
  constexpr int kMant = std::numeric_limits<T>::digits - 1;
  constexpr int kMinExp = std::numeric_limits<T>::min_exponent - 1;
  if (std::isnan(r)) return std::isnan(y) ? 0 : INFINITY;
  if (std::isnan(y)) return INFINITY;
  const T rt = static_cast<T>(r);  // the correctly rounded result (overflow -> inf)
  if (std::isinf(rt) || std::isinf(y)) {
    if (y == rt) return 0;
    // inf while the reference rounds to max finite (or below): measure against max
    const long double m = std::numeric_limits<T>::max();
    if (std::isinf(y) && std::fabs(r) > m)
      return static_cast<double>(
          (std::fabs(r) - m) / std::ldexp(1.0L, std::numeric_limits<T>::max_exponent - 1 - kMant));
    return INFINITY;
  }
  if (r == 0 && y == 0) return std::signbit(y) == std::signbit(r) ? 0 : INFINITY;
  const int e = r == 0 ? kMinExp : std::max(std::ilogb(r), kMinExp);
  return static_cast<double>(std::fabs(static_cast<long double>(y) - r) /
                             std::ldexp(1.0L, e - kMant));
}

// Values where approximations break: zeros, ones, the range limits of exp/log, denormals,
// infinities, NaN, the quadrant points of sin/cos; each with both signs.
template <class T>
std::vector<T> special_values() {
  using L = std::numeric_limits<T>;
  std::vector<T> v = {T(0),       T(1),        T(0.5),          T(2),          T(3),
                      T(10),      T(100),      L::min(),        L::denorm_min(), L::max(),
                      L::infinity(), L::quiet_NaN(), L::epsilon(), T(0.70710678118654752),
                      T(1.5707963267948966), T(3.141592653589793), T(88.7), T(89), T(104),
                      T(709.7),   T(745),      T(1e-30),        T(1e30),       T(1e8),
                      T(1e20),    T(0x1p-25),  T(0x1p-24),      std::nextafter(L::min(), T(0))};
  const size_t n = v.size();
  for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  return v;
}

// The whole domain: a dense sweep over bit patterns (float32) or every binade of both signs
// (float64, per_binade values each), `count` random bit patterns, `count` random values in
// [lo, hi], and the special values. `odd`: an odd total, so vector kernels' tails run too.
template <class T>
std::vector<T> math_inputs(double lo, double hi, uint64_t seed, int per_binade, int count,
                           bool odd) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  std::mt19937_64 g(seed);
  std::vector<T> v = special_values<T>();
  if constexpr (sizeof(T) == 4) {
    for (uint64_t b = 0; b < (1ull << 32); b += 4099) v.push_back(std::bit_cast<T>(U(b)));
  } else {
    std::uniform_real_distribution<double> m(1, 2);
    for (int e = -1074; e <= 1023; ++e)
      for (int k = 0; k < per_binade; ++k) {
        const double x = std::ldexp(m(g), e);
        v.push_back(x);
        v.push_back(-x);
      }
  }
  for (int i = 0; i < count; ++i) v.push_back(std::bit_cast<T>(static_cast<U>(g())));
  std::uniform_real_distribution<double> u(lo, hi);
  for (int i = 0; i < count; ++i) v.push_back(static_cast<T>(u(g)));
  if (odd && v.size() % 2 == 0) v.pop_back();
  return v;
}

}  // namespace kiln::testing
