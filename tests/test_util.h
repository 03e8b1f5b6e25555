// Shared test helpers: random inputs in every layout (contiguous, transposed, strided, expanded,
// zero-size) and comparison against float64 references with readable failure messages.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <kiln/kiln.h>

namespace kiln::testing {

/// Deterministic RNG for building reference data in tests.
inline std::mt19937_64& rng() {
  static std::mt19937_64 g(1234);
  return g;
}

/// Random values of dtype (floats in [lo, hi), integers in [lo, hi], bools half true).
inline Tensor random_tensor(IntArrayRef sizes, ScalarType dtype = kFloat, double lo = -2.0,
                            double hi = 2.0) {
  Tensor d = kiln::empty(sizes, kiln::dtype(kDouble));
  double* p = d.data_ptr<double>();
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < d.numel(); ++i) {
    double v = u(rng());
    if (dtype == kBool) v = v > (lo + hi) / 2 ? 1.0 : 0.0;
    else if (is_integral(dtype)) v = std::floor(v);
    p[i] = v;
  }
  return d.to(dtype);
}

/// The same values as t in a non-contiguous layout: a transposed copy viewed back, or a slice
/// of a wider buffer, so kernels see strides != contiguous.
inline Tensor non_contiguous(const Tensor& t) {
  if (t.dim() == 0) return t;
  std::vector<int64_t> wide = t.sizes().vec();
  wide.back() *= 2;
  Tensor buf = kiln::zeros(wide, t.options());
  Tensor view = buf.slice(-1, 0, std::nullopt, 2);
  view.copy_(t);
  EXPECT_FALSE(view.is_contiguous() && t.numel() > 1);
  return view;
}

/// Converts any tensor to float64 values in row-major order.
inline std::vector<double> to_vector(const Tensor& t) {
  Tensor d = t.to(kDouble).contiguous();
  const double* p = d.data_ptr<double>();
  return std::vector<double>(p, p + d.numel());
}

/// Checks sizes and |a - b| <= atol + rtol*|b| elementwise (NaN == NaN, inf == inf).
inline ::testing::AssertionResult close(const Tensor& actual, const Tensor& expected,
                                        double rtol = 1e-5, double atol = 1e-6) {
  if (!actual.sizes().equals(expected.sizes()))
    return ::testing::AssertionFailure() << "sizes differ: got " << shape_str(actual.sizes())
                                         << ", expected " << shape_str(expected.sizes());
  std::vector<double> a = to_vector(actual), b = to_vector(expected);
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::isinf(b[i]) && a[i] == b[i]) continue;
    if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i])))
      return ::testing::AssertionFailure()
             << "element " << i << " of " << a.size() << ": got " << a[i] << ", expected " << b[i]
             << " (rtol " << rtol << ", atol " << atol << ", sizes " << shape_str(actual.sizes())
             << ")";
  }
  return ::testing::AssertionSuccess();
}

/// Tolerances suited to a dtype's precision.
inline double rtol_for(ScalarType t) {
  switch (t) {
    case kHalf: return 2e-3;
    case kBFloat16: return 1.6e-2;
    case kFloat: return 2e-5;
    default: return 1e-12;
  }
}

/// Expects fn to throw kiln::Error whose message contains every fragment.
inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected kiln::Error, nothing was thrown";
  } catch (const kiln::Error& e) {
    std::string msg = e.what();
    for (const auto& f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "message '" << msg << "' lacks '" << f << "'";
  }
}

}  // namespace kiln::testing

/// Expects stmt to throw kiln::Error mentioning every fragment; the statement is in the trace.
#define EXPECT_KILN_ERROR(stmt, ...)                           \
  do {                                                         \
    SCOPED_TRACE(#stmt);                                       \
    ::kiln::testing::expect_error([&] { stmt; }, __VA_ARGS__); \
  } while (0)
