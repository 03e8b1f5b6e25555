// Transcendental functions emitted as straight-line LLVM IR over a Val (float32 or float64,
// scalar or any vector width): range reduction + fitted polynomial + exact special-value
// handling, so fused kernels stay vectorised (LLVM would scalarise llvm.exp & co. into libm
// calls). Found by ADL from the generic functors of src/ops/scalar_ops.h.
#pragma once

#include <cmath>
#include <limits>

#include "codegen/llvm/val.h"

namespace kiln::codegen::llvm {

/// What is known about an argument's values other than NaN (NaN may always occur): bounds
/// proved by value_ranges() (value_range.h). Functions given one drop the clamps and special
/// cases that cannot arise, or switch to a cheaper formula valid on the interval.
struct Interval {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool is_everything() const { return lo == -hi && std::isinf(hi); }
};

/// tanh(x, known) evaluates a polynomial alone when |x| <= this bound is known.
inline constexpr double kTanhPolynomialBound = 0.625;

// Accuracy against libm (measured by tests/test_vector_math.cpp, in docs/design.md): a few
// ulp at float32 and float64 over the whole domain, with libm's results for +-0, +-inf, NaN,
// denormal inputs, overflow to inf and underflow to 0.
Val exp(const Val& x);
Val exp(const Val& x, const Interval& known);  ///< the same accuracy, cheaper when bounded
Val exp2(const Val& x);
Val expm1(const Val& x);
Val log(const Val& x);
Val log2(const Val& x);
Val log1p(const Val& x);
Val tanh(const Val& x);
Val tanh(const Val& x, const Interval& known);  ///< a polynomial alone for |x| <= 0.625
Val sigmoid(const Val& x);  ///< 1 / (1 + exp(-x)), without the underflow for large -x
Val erf(const Val& x);
Val gelu(const Val& x);  ///< 0.5 x (1 + erf(x / sqrt 2)), ops::scalar::Gelu's formula
/// sin, cos, tan: |x| up to 2^28 (float64) / ~4e8 (float32) are reduced in vector code;
/// larger |x|, inf and NaN take a cold branch that calls libm for those lanes only.
Val sin(const Val& x);
Val cos(const Val& x);
Val tan(const Val& x);
Val atan2(const Val& y, const Val& x);
Val pow(const Val& x, const Val& y);  ///< C99 Annex F special cases (pow(x, 0) = 1, ...)

}  // namespace kiln::codegen::llvm
