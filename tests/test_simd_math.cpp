// The eager kernels' vectorisable math (src/ops/simd_math.h) against libm: every function at
// float32 (reference: double libm) and float64 (reference: long double libm) over a dense sweep
// of bit patterns, random bit patterns, random values and the special values, through the eager
// ops on tensors (the vectorised kernel loops, with their odd-sized tails) and called directly
// on one value (scalar code); both must give the same bits, within the asserted max ulp.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "math_test_util.h"
#include "ops/simd_math.h"

namespace {

namespace math = kiln::ops::math;

using kiln::testing::special_values;
using kiln::testing::ulp_error;

// The whole domain (math_test_util.h), an odd count so the kernels' tails run too.
template <class T>
std::vector<T> inputs(double lo, double hi) {
  return kiln::testing::math_inputs<T>(lo, hi, 7, 50, 200000, true);
}

using Ref = long double (*)(long double);

struct Case {
  const char* name;
  kiln::Tensor (*eager)(const kiln::Tensor&);
  float (*scalar32)(float);
  double (*scalar64)(double);
  Ref ref;
  double bound32, bound64;
  double lo, hi;  // the random-value range (the whole domain is swept too)
};

std::vector<Case> cases() {
  return {
      {"exp", kiln::exp, math::exp<float>, math::exp<double>, expl, 1.5, 1.5, -110, 110},
      {"exp2", kiln::exp2, math::exp2<float>, math::exp2<double>, exp2l, 1.5, 1.5, -160, 160},
      {"expm1", kiln::expm1, math::expm1<float>, math::expm1<double>, expm1l, 2, 2.5, -5, 5},
      {"log", kiln::log, math::log<float>, math::log<double>, logl, 1, 1, 0, 4},
      {"log2", kiln::log2, math::log2<float>, math::log2<double>, log2l, 1, 1, 0, 4},
      {"log1p", kiln::log1p, math::log1p<float>, math::log1p<double>, log1pl, 1, 1, -1, 2},
      {"tanh", kiln::tanh, math::tanh<float>, math::tanh<double>, tanhl, 2.5, 2.5, -5, 5},
      {"erf", kiln::erf, math::erf<float>, math::erf<double>, erfl, 2.5, 2, -5, 5},
  };
}

template <class T>
long double reference(const Case& c, T x) {
  // float32's reference is double libm, float64's long double libm.
  if constexpr (sizeof(T) == 4)
    return static_cast<long double>(
        static_cast<double>(c.ref(static_cast<long double>(static_cast<double>(x)))));
  else
    return c.ref(x);
}

template <class T>
void run_case(const Case& c) {
  SCOPED_TRACE(::testing::Message() << c.name << (sizeof(T) == 4 ? " float32" : " float64"));
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const std::vector<T> x = inputs<T>(c.lo, c.hi);
  const auto n = static_cast<int64_t>(x.size());
  kiln::Tensor in = kiln::empty({n}, kiln::dtype(sizeof(T) == 4 ? kiln::kFloat : kiln::kDouble));
  std::copy(x.begin(), x.end(), in.data_ptr<T>());
  // The contiguous kernel loop (vector code and its scalar tail) and a strided one (scalar).
  kiln::Tensor out = c.eager(in);
  kiln::Tensor wide = kiln::zeros({n, 2}, in.options());
  wide.select(1, 0).copy_(in);
  kiln::Tensor strided = c.eager(wide.select(1, 0)).contiguous();
  const T* y = out.data_ptr<T>();
  const T* ys = strided.data_ptr<T>();
  double worst = 0, worst_here = 0;
  size_t at = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const long double want = reference(c, x[i]);
    const double err = ulp_error<T>(y[i], want);
    if (!(err <= worst)) worst = err, at = i;
    if (!(std::isnan(ys[i]) && std::isnan(y[i]))) {
      ASSERT_EQ(std::bit_cast<U>(ys[i]), std::bit_cast<U>(y[i]))
          << "contiguous and strided kernels differ at index " << i << ", x = " << x[i];
    }
    // Called directly from here: compiled for this file's target, which may not fuse
    // multiply-adds like the kernels do; within the same bound.
    T s;
    if constexpr (sizeof(T) == 4)
      s = c.scalar32(x[i]);
    else
      s = c.scalar64(x[i]);
    worst_here = std::max(worst_here, ulp_error<T>(s, want));
  }
  std::printf("[ ulp      ] %-6s %s: max %.3f ulp at x = %.17g (got %.17g); here %.3f ulp\n",
              c.name, sizeof(T) == 4 ? "f32" : "f64", worst, static_cast<double>(x[at]),
              static_cast<double>(y[at]), worst_here);
  const double bound = sizeof(T) == 4 ? c.bound32 : c.bound64;
  EXPECT_LE(worst, bound) << "at x = " << x[at] << ": got " << y[at];
  EXPECT_LE(worst_here, bound);
}

class SimdMath : public ::testing::TestWithParam<int> {};

TEST_P(SimdMath, Float32) { run_case<float>(cases()[GetParam()]); }
TEST_P(SimdMath, Float64) { run_case<double>(cases()[GetParam()]); }

INSTANTIATE_TEST_SUITE_P(Functions, SimdMath, ::testing::Range(0, static_cast<int>(cases().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(cases()[info.param].name);
                         });

// The eager functions built on these (sigmoid, silu, gelu through exp/erf; sqrt and rsqrt
// inlined as instructions) agree with their formulas over libm, special values included.
TEST(SimdMath, CompositesMatchTheirFormulasOverLibm) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::vector<float> v = {0.0f,  -0.0f,  inf,  -inf,  nan,  100.0f, -100.0f, 1e-40f, -1e-40f,
                          30.0f, -30.0f, 0.5f, -0.5f, 2.0f, 88.0f,  -88.0f,  1e-20f, 4.0f};
  std::mt19937 g(3);
  std::uniform_real_distribution<float> u(-12, 12);
  for (int i = 0; i < 1001; ++i) v.push_back(u(g));
  kiln::Tensor x = kiln::empty({static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), x.data_ptr<float>());
  struct Composite {
    const char* name;
    kiln::Tensor (*eager)(const kiln::Tensor&);
    double (*formula)(double);
    double rtol;
    bool scale_by_x;  // error relative to max(|result|, |x|): formulas that cancel (1 + erf)
  };
  const Composite composites[] = {
      {"sigmoid", kiln::sigmoid, [](double a) { return 1 / (1 + std::exp(-a)); }, 1e-6, false},
      {"silu", kiln::silu, [](double a) { return a / (1 + std::exp(-a)); }, 1e-6, false},
      {"gelu", kiln::gelu,
       [](double a) { return 0.5 * a * (1 + std::erf(a * 0.70710678118654752440)); }, 1e-6, true},
      {"sqrt", kiln::sqrt, [](double a) { return std::sqrt(a); }, 0, false},
      {"rsqrt", kiln::rsqrt, [](double a) { return 1 / std::sqrt(a); }, 2.5e-7, false},
  };
  for (const Composite& c : composites) {
    SCOPED_TRACE(c.name);
    kiln::Tensor y = c.eager(x);
    for (size_t i = 0; i < v.size(); ++i) {
      const float got = y.data_ptr<float>()[i];
      const auto want = static_cast<float>(c.formula(v[i]));
      if (std::isnan(want) || std::isinf(want) || want == 0) {
        // special values exactly (NaN as NaN, signed zeros and infinities bit for bit)
        EXPECT_EQ(std::isnan(got), std::isnan(want)) << "x = " << v[i];
        if (!std::isnan(want)) {
          EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << "x = " << v[i];
        }
      } else {
        const double scale = std::max<double>(std::fabs(want), c.scale_by_x ? std::fabs(v[i]) : 0);
        EXPECT_NEAR(got, want, c.rtol * scale + 1e-37) << "x = " << v[i];
      }
    }
  }
}

}  // namespace
