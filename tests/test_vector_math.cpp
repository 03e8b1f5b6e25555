// ctest-label: codegen
// The LLVM vector math library against libm: every function at float32 (reference: double libm)
// and float64 (reference: long double libm), vector and scalar code, over dense and random bit
// patterns of the whole domain plus the special values; the max ulp error is asserted.
#include <gtest/gtest.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "codegen/llvm/jit.h"
#include "math_test_util.h"
#include "codegen/llvm/vector_math.h"

namespace {

using kiln::codegen::llvm::Jit;
using kiln::codegen::llvm::KernelLibrary;
using kiln::codegen::llvm::Val;
namespace ll = ::llvm;

using Emit = std::function<Val(const Val&, const Val&)>;
template <class T>
using MathFn = void (*)(const T* a, const T* b, T* out, int64_t n);

// Emits f(a[i], b[i]) over n elements: `lanes`-wide vectors, then a scalar loop for the rest.
template <class T>
std::shared_ptr<KernelLibrary> build(const Emit& f, int lanes) {
  ll::LLVMContext ctx;
  auto m = std::make_unique<ll::Module>("math", ctx);
  ll::IRBuilder<> b(ctx);
  ll::Type* et = sizeof(T) == 4 ? b.getFloatTy() : b.getDoubleTy();
  ll::Type* i64 = b.getInt64Ty();
  auto* fn = ll::Function::Create(
      ll::FunctionType::get(b.getVoidTy(), {b.getPtrTy(), b.getPtrTy(), b.getPtrTy(), i64}, false),
      ll::Function::ExternalLinkage, "f", *m);
  auto* entry = ll::BasicBlock::Create(ctx, "entry", fn);
  auto* vbody = ll::BasicBlock::Create(ctx, "vbody", fn);
  auto* scheck = ll::BasicBlock::Create(ctx, "scheck", fn);
  auto* sbody = ll::BasicBlock::Create(ctx, "sbody", fn);
  auto* exit = ll::BasicBlock::Create(ctx, "exit", fn);
  ll::Value *pa = fn->getArg(0), *pb = fn->getArg(1), *po = fn->getArg(2), *n = fn->getArg(3);
  b.SetInsertPoint(entry);
  ll::Value* nvec = b.CreateAnd(n, b.getInt64(~int64_t(lanes - 1)));
  b.CreateCondBr(b.CreateICmpSGT(nvec, b.getInt64(0)), vbody, scheck);
  auto body = [&](ll::BasicBlock* self, ll::Value* start, ll::BasicBlock* pred, int w,
                  ll::Value* end, ll::BasicBlock* next) {
    b.SetInsertPoint(self);
    ll::PHINode* i = b.CreatePHI(i64, 2);
    i->addIncoming(start, pred);
    ll::Type* t = w == 1 ? et : static_cast<ll::Type*>(ll::FixedVectorType::get(et, w));
    const ll::Align align(sizeof(T));  // element alignment: vectors start anywhere
    Val x(b.CreateAlignedLoad(t, b.CreateGEP(et, pa, i), align), b);
    Val y(b.CreateAlignedLoad(t, b.CreateGEP(et, pb, i), align), b);
    Val r = f(x, y);
    b.CreateAlignedStore(r.value(), b.CreateGEP(et, po, i), align);
    ll::Value* inext = b.CreateAdd(i, b.getInt64(w));
    i->addIncoming(inext, b.GetInsertBlock());
    b.CreateCondBr(b.CreateICmpSLT(inext, end), self, next);
    return b.GetInsertBlock();  // the body may have grown blocks (libm fallbacks)
  };
  ll::BasicBlock* vlast = body(vbody, b.getInt64(0), entry, lanes, nvec, scheck);
  b.SetInsertPoint(scheck);
  ll::PHINode* start = b.CreatePHI(i64, 2);
  start->addIncoming(b.getInt64(0), entry);
  start->addIncoming(nvec, vlast);
  b.CreateCondBr(b.CreateICmpSLT(start, n), sbody, exit);
  body(sbody, start, scheck, 1, n, exit);
  b.SetInsertPoint(exit);
  b.CreateRetVoid();
  return Jit::get().add(*m);
}

using kiln::testing::special_values;
using kiln::testing::ulp_error;

// Inputs covering the whole domain (math_test_util.h).
template <class T>
std::vector<T> inputs(double lo, double hi, uint64_t seed) {
  return kiln::testing::math_inputs<T>(lo, hi, seed, 200, 300000, false);
}

struct Result {
  double max_ulp = 0;
  long double worst_x = 0, worst_y = 0, worst_ref = 0;
  double worst_got = 0;
};

template <class T>
Result measure(MathFn<T> f, const std::vector<T>& a, const std::vector<T>& b,
               const std::function<long double(long double, long double)>& ref,
               const std::function<long double(long double, long double)>& scale = nullptr) {
  std::vector<T> out(a.size());
  f(a.data(), b.data(), out.data(), static_cast<int64_t>(a.size()));
  Result r;
  for (size_t i = 0; i < a.size(); ++i) {
    long double want = ref(a[i], b[i]);
    double err = ulp_error<T>(out[i], want);
    if (scale && std::isfinite(out[i]) && std::isfinite(static_cast<double>(want))) {
      // in ulps of max(|ref|, scale(x)): for formulas that cancel (gelu's 1 + erf)
      long double s = std::max(std::fabs(want), scale(a[i], b[i]));
      int e = std::max(s > 0 ? std::ilogb(s) : 0, std::numeric_limits<T>::min_exponent - 1);
      err = std::min(err,
                     static_cast<double>(std::fabs(out[i] - want) /
                                         std::ldexp(1.0L, e - std::numeric_limits<T>::digits + 1)));
    }
    if (!(err <= r.max_ulp)) {
      r = {err, a[i], b[i], want, static_cast<double>(out[i])};
    }
  }
  return r;
}

struct Case {
  const char* name;
  Emit emit;
  std::function<long double(long double, long double)> ref;
  double bound32, bound64;
  double lo = -20, hi = 20;  // the random-value range (the whole domain is swept too)
  bool binary = false;
  std::function<long double(long double, long double)> scale = nullptr;
  // The forms for bounded arguments (vector_math.h's Interval overloads) are only defined on
  // their interval: inputs outside [dom_lo, dom_hi] (but not NaN) are dropped.
  double dom_lo = -INFINITY, dom_hi = INFINITY;
};

template <class T>
std::vector<T> domain_inputs(const Case& c, uint64_t seed) {
  std::vector<T> a = inputs<T>(c.lo, c.hi, seed), in;
  for (T x : a)
    if (std::isnan(x) || (x >= c.dom_lo && x <= c.dom_hi)) in.push_back(x);
  return in;
}

std::vector<Case> cases() {
  using LD = long double;
  auto u = [](Val (*f)(const Val&)) { return [f](const Val& x, const Val&) { return f(x); }; };
  auto r1 = [](LD (*f)(LD)) { return [f](LD x, LD) { return f(x); }; };
  using kiln::codegen::llvm::atan2;
  using kiln::codegen::llvm::Interval;
  using kiln::codegen::llvm::pow;
  auto bounded = [](Val (*f)(const Val&, const Interval&), Interval known) {
    return [f, known](const Val& x, const Val&) { return f(x, known); };
  };
  const double pb = kiln::codegen::llvm::kTanhPolynomialBound;
  return {
      {"exp", u(kiln::codegen::llvm::exp), r1(expl), 1.5, 1.5, -110, 110},
      {"exp_nonpositive", bounded(kiln::codegen::llvm::exp, {-INFINITY, 0}), r1(expl), 1.5, 1.5,
       -110, 0, false, nullptr, -INFINITY, 0},
      {"exp_normal_range", bounded(kiln::codegen::llvm::exp, {-87, 88}), r1(expl), 1.5, 1.5, -87,
       88, false, nullptr, -87, 88},
      {"exp2", u(kiln::codegen::llvm::exp2), r1(exp2l), 1.5, 1.5, -160, 160},
      {"expm1", u(kiln::codegen::llvm::expm1), r1(expm1l), 2, 2.5, -5, 5},
      {"log", u(kiln::codegen::llvm::log), r1(logl), 1, 1, 0, 4},
      {"log2", u(kiln::codegen::llvm::log2), r1(log2l), 1, 1, 0, 4},
      {"log1p", u(kiln::codegen::llvm::log1p), r1(log1pl), 1, 1, -1, 2},
      {"tanh", u(kiln::codegen::llvm::tanh), r1(tanhl), 3, 3, -5, 5},
      {"tanh_small", bounded(kiln::codegen::llvm::tanh, {-pb, pb}), r1(tanhl), 1.5, 1.5, -pb, pb,
       false, nullptr, -pb, pb},
      {"sigmoid", u(kiln::codegen::llvm::sigmoid), [](LD x, LD) { return 1 / (1 + expl(-x)); }, 3,
       3, -30, 30},
      {"erf", u(kiln::codegen::llvm::erf), r1(erfl), 3, 2, -5, 5},
      {"gelu", u(kiln::codegen::llvm::gelu),
       [](LD x, LD) { return 0.5L * x * (1 + erfl(x * 0.70710678118654752440084436L)); }, 2, 2, -6,
       6, false, [](LD x, LD) { return std::fabs(x); }},
      {"sin", u(kiln::codegen::llvm::sin), r1(sinl), 1, 2, -10, 10},
      {"cos", u(kiln::codegen::llvm::cos), r1(cosl), 1, 2, -10, 10},
      {"tan", u(kiln::codegen::llvm::tan), r1(tanl), 1.5, 3.5, -10, 10},
      {"sqrt", u(kiln::codegen::llvm::sqrt), r1(sqrtl), 0.5, 0.5, 0, 100},
      {"rsqrt", u(kiln::codegen::llvm::rsqrt), [](LD x, LD) { return 1 / sqrtl(x); }, 1.5, 1.5, 0,
       100},
      {"atan2", [](const Val& y, const Val& x) { return atan2(y, x); },
       [](LD y, LD x) { return atan2l(y, x); }, 1, 3, -5, 5, true},
      {"pow", [](const Val& x, const Val& y) { return pow(x, y); },
       [](LD x, LD y) { return powl(x, y); }, 1, 60, 0, 4, true},
  };
}

template <class T>
void run_case(const Case& c, int lanes) {
  SCOPED_TRACE(testing::Message() << c.name << (sizeof(T) == 4 ? " float32" : " float64")
                                  << " lanes " << lanes);
  auto lib = build<T>(c.emit, lanes);
  auto f = lib->template lookup<MathFn<T>>("f");
  std::vector<T> a = domain_inputs<T>(c, 1), b;
  if (!c.binary) {
    b.assign(a.size(), T(0));
  } else {
    // pairs: shuffled whole-domain values, plus every pair of special values, plus for pow
    // negative bases with integer exponents
    std::vector<T> a2 = a;
    std::mt19937_64 g(2);
    std::shuffle(a2.begin(), a2.end(), g);
    b = a2;
    std::vector<T> s = special_values<T>();
    for (T x : s)
      for (T y : s) a.push_back(x), b.push_back(y);
    std::uniform_real_distribution<double> ux(-4, 4), uy(-40, 40);
    for (int i = 0; i < 100000; ++i) {
      a.push_back(static_cast<T>(ux(g)));
      b.push_back(static_cast<T>(std::round(uy(g))));
    }
    std::uniform_real_distribution<double> pos(0, 4), any(-30, 30);
    for (int i = 0; i < 200000; ++i) {
      a.push_back(static_cast<T>(pos(g)));
      b.push_back(static_cast<T>(any(g)));
    }
  }
  // float32's reference is double libm; float64's is long double libm.
  auto ref = [&](long double x, long double y) -> long double {
    if constexpr (sizeof(T) == 4) {
      return static_cast<long double>(
          static_cast<double>(c.ref(static_cast<double>(x), static_cast<double>(y))));
    } else {
      return c.ref(x, y);
    }
  };
  Result r = measure<T>(f, a, b, ref, c.scale);
  double bound = sizeof(T) == 4 ? c.bound32 : c.bound64;
  std::printf(
      "[ ulp      ] %-8s %s lanes %2d: max %.3f ulp (at x=%.17Lg y=%.17Lg: got %.17g, "
      "want %.17Lg)\n",
      c.name, sizeof(T) == 4 ? "f32" : "f64", lanes, r.max_ulp, r.worst_x, r.worst_y, r.worst_got,
      r.worst_ref);
  EXPECT_LE(r.max_ulp, bound) << "at x=" << r.worst_x << " y=" << r.worst_y << ": got "
                              << r.worst_got << ", want " << r.worst_ref;
}

class VectorMath : public ::testing::TestWithParam<int> {};

TEST_P(VectorMath, Float32Vector) {
  run_case<float>(cases()[GetParam()], Jit::get().target().lanes(4));
}
TEST_P(VectorMath, Float32Scalar) { run_case<float>(cases()[GetParam()], 1); }
TEST_P(VectorMath, Float64Vector) {
  run_case<double>(cases()[GetParam()], Jit::get().target().lanes(8));
}
TEST_P(VectorMath, Float64Scalar) { run_case<double>(cases()[GetParam()], 1); }

INSTANTIATE_TEST_SUITE_P(Functions, VectorMath,
                         ::testing::Range(0, static_cast<int>(cases().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(cases()[info.param].name);
                         });

// Vector and scalar code give bit-identical results (the kernels' tails use the scalar form).
TEST(VectorMathConsistency, VectorEqualsScalarBitwise) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    auto vec = build<float>(c.emit, Jit::get().target().lanes(4));
    auto sca = build<float>(c.emit, 1);
    std::vector<float> a = domain_inputs<float>(c, 3);
    std::vector<float> b(a.rbegin(), a.rend());
    std::vector<float> o1(a.size()), o2(a.size());
    vec->lookup<MathFn<float>>("f")(a.data(), b.data(), o1.data(), int64_t(a.size()));
    sca->lookup<MathFn<float>>("f")(a.data(), b.data(), o2.data(), int64_t(a.size()));
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::isnan(o1[i]) && std::isnan(o2[i])) continue;
      ASSERT_EQ(std::bit_cast<uint32_t>(o1[i]), std::bit_cast<uint32_t>(o2[i]))
          << "index " << i << " x=" << a[i] << " y=" << b[i];
    }
  }
}

}  // namespace
