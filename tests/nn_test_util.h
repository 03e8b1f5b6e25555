// Helpers for the nn/optim tests: float64 tensors from vectors, a finite-difference check of a
// module's parameter gradients, and small matrix helpers for hand-written references.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "test_util.h"

namespace kiln::testing {

/// A float64 tensor with the given values and sizes.
inline Tensor from_values(const std::vector<double>& v, IntArrayRef sizes) {
  Tensor t = kiln::empty(sizes, kiln::dtype(kDouble));
  EXPECT_EQ(static_cast<int64_t>(v.size()), t.numel());
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t;
}

/// Checks every parameter's .grad() after one backward of loss() against central finite
/// differences of loss() (at most max_elems elements per parameter, spread over it). The module
/// should be float64.
inline void check_param_grads(nn::Module& module, const std::function<Tensor()>& loss,
                              double atol = 1e-6, double rtol = 1e-4, int64_t max_elems = 12) {
  module.zero_grad();
  loss().backward();
  const double eps = 1e-6;
  for (const auto& item : module.named_parameters()) {
    Tensor p = item.value();
    ASSERT_TRUE(p.grad().defined()) << "no gradient for " << item.key();
    std::vector<double> g = to_vector(p.grad());
    const int64_t n = p.numel();
    const int64_t stride = std::max<int64_t>(1, n / max_elems);
    for (int64_t k = 0; k < n; k += stride) {
      double plus = 0, minus = 0;
      {
        NoGradGuard no_grad;
        Tensor e = p.view({-1})[k];
        const double orig = e.item<double>();
        e.fill_(orig + eps);
        plus = loss().item<double>();
        e.fill_(orig - eps);
        minus = loss().item<double>();
        e.fill_(orig);
      }
      const double num = (plus - minus) / (2 * eps);
      EXPECT_NEAR(g[k], num, atol + rtol * std::abs(num))
          << "parameter " << item.key() << " element " << k;
    }
  }
}

/// Row-major [rows, cols] matrix-vector product y = W x + b (b may be empty).
inline std::vector<double> matvec(const std::vector<double>& w, int64_t rows, int64_t cols,
                                  const double* x, const std::vector<double>& b = {}) {
  std::vector<double> y(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double s = b.empty() ? 0.0 : b[r];
    for (int64_t c = 0; c < cols; ++c) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

inline double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace kiln::testing
