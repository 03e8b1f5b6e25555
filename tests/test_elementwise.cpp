// Tests for the elementwise engine (src/tensor/elementwise.cpp, loops.h, scalar_ops.h): every
// unary and binary row of ops.def is swept (through its X-macro) over dtypes, sizes, layouts,
// broadcasting, scalar operands, in-place and out= forms, each against a float64 reference
// computed here with <cmath>. Then promotion, error paths, clamp/where, operators, copies,
// conversions, element access and printing.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace kiln {
namespace {

// expect_error with the statement and its line in the failure trace.
using testing::close;
using testing::expect_error;
using testing::non_contiguous;
using testing::to_vector;

using Sizes = std::vector<int64_t>;

const std::vector<ScalarType> kAllDtypes = {kBool, kUInt8,    kInt8,  kInt32, kInt64,
                                            kHalf, kBFloat16, kFloat, kDouble};
const std::vector<Sizes> kSweepSizes = {{}, {0}, {1}, {7}, {33}, {1025}, {3, 5}, {2, 3, 4}};

int64_t numel_of(const Sizes& s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<>());
}

std::string describe(std::string_view op, ScalarType dt, const Sizes& sizes, std::string_view how) {
  std::ostringstream os;
  os << "op " << op << ", dtype " << dtype_name(dt) << ", sizes " << shape_str(sizes) << ", "
     << how;
  return os.str();
}

// ---- inputs -------------------------------------------------------------------------------------

std::mt19937_64& gen() {
  static std::mt19937_64 g(20240611);
  return g;
}

// How to draw input values: floats uniform in [lo, hi] (|v| >= min_abs when set), integers
// uniform in [lo, hi] (uint8 clamps lo to 0; nonzero replaces 0 by 1), bools half true.
struct Gen {
  double lo = -3, hi = 3;
  double min_abs = 0;
  bool nonzero = false;
};

Tensor from_doubles(const std::vector<double>& v, const Sizes& sizes, ScalarType dt) {
  Tensor d = kiln::empty(sizes, kiln::dtype(kDouble));
  if (!v.empty()) std::copy(v.begin(), v.end(), d.data_ptr<double>());
  return d.to(dt);
}

std::vector<double> draw(int64_t n, ScalarType dt, const Gen& g) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) {
    if (dt == kBool) {
      x = std::uniform_int_distribution<int>(0, 1)(gen());
    } else if (is_integral(dt)) {
      int64_t lo = static_cast<int64_t>(std::ceil(g.lo)),
              hi = static_cast<int64_t>(std::floor(g.hi));
      if (dt == kUInt8) lo = std::max<int64_t>(lo, 0);
      x = static_cast<double>(std::uniform_int_distribution<int64_t>(lo, hi)(gen()));
      if (g.nonzero && x == 0) x = 1;
    } else if (g.min_abs > 0) {
      double m =
          std::uniform_real_distribution<double>(g.min_abs, std::max(std::abs(g.lo), g.hi))(gen());
      x = std::uniform_int_distribution<int>(0, 1)(gen()) ? m : -m;
      if (g.lo >= 0) x = m;
    } else {
      x = std::uniform_real_distribution<double>(g.lo, g.hi)(gen());
    }
  }
  return v;
}

Tensor make_input(const Sizes& sizes, ScalarType dt, const Gen& g) {
  return from_doubles(draw(numel_of(sizes), dt, g), sizes, dt);
}

// ---- expected values ----------------------------------------------------------------------------

// A float64 value as the given dtype stores it: integers wrap like C++ (modulo 2^bits), bool is
// `!= 0`; floating values are returned unrounded (compared with a tolerance).
double as_dtype(double v, ScalarType dt) {
  if (dt == kBool) return v != 0 ? 1.0 : 0.0;
  if (!is_integral(dt) || !std::isfinite(v)) return v;
  int64_t i = static_cast<int64_t>(v);
  switch (dt) {
    case kUInt8:
      return static_cast<uint8_t>(i);
    case kInt8:
      return static_cast<int8_t>(i);
    case kInt32:
      return static_cast<int32_t>(i);
    default:
      return static_cast<double>(i);
  }
}

double rtol_of(ScalarType dt) {
  switch (dt) {
    case kHalf:
      return 2e-3;
    case kBFloat16:
      return 1.6e-2;
    case kFloat:
      return 2e-5;
    default:
      return 1e-12;
  }
}
double atol_of(ScalarType dt) {
  switch (dt) {
    case kHalf:
      return 1e-4;
    case kBFloat16:
      return 1e-3;
    case kFloat:
      return 1e-6;
    default:
      return 1e-14;
  }
}

// Checks dtype, sizes and every element of got against the float64 reference `want`.
::testing::AssertionResult matches(const Tensor& got, const std::vector<double>& want,
                                   ScalarType want_dtype, const Sizes& want_sizes,
                                   const std::string& what) {
  if (!got.defined()) return ::testing::AssertionFailure() << what << ": undefined result";
  if (got.dtype() != want_dtype)
    return ::testing::AssertionFailure()
           << what << ": result dtype " << got.dtype() << ", expected " << want_dtype;
  if (got.sizes().vec() != want_sizes)
    return ::testing::AssertionFailure() << what << ": result sizes " << shape_str(got.sizes())
                                         << ", expected " << shape_str(want_sizes);
  std::vector<double> g = to_vector(got);
  const double rtol = rtol_of(want_dtype), atol = atol_of(want_dtype);
  const bool exact = !is_floating_point(want_dtype);
  for (size_t i = 0; i < g.size(); ++i) {
    double w = as_dtype(want[i], want_dtype);
    bool ok;
    if (exact)
      ok = g[i] == w;
    else if (std::isnan(w))
      ok = std::isnan(g[i]);
    else if (std::isinf(w))
      ok = g[i] == w;
    else
      ok = std::abs(g[i] - w) <= atol + rtol * std::abs(w);
    if (!ok)
      return ::testing::AssertionFailure()
             << what << ": element " << i << " of " << g.size() << " is " << g[i] << ", expected "
             << w << " (rtol " << rtol << ", atol " << atol << ")";
  }
  return ::testing::AssertionSuccess();
}

ScalarType apply_rule(ops::DtypeRule rule, ScalarType common) {
  switch (rule) {
    case ops::DtypeRule::IntToFloat:
      return is_floating_point(common) ? common : get_default_dtype();
    case ops::DtypeRule::Bool:
      return kBool;
    default:
      return common;
  }
}

// libtorch's canCast.
bool can_cast(ScalarType from, ScalarType to) {
  if (is_floating_point(from) && !is_floating_point(to)) return false;
  if (from != kBool && to == kBool) return false;
  return true;
}

// The dtype an op over (tensor of dtype t, wrapped number s) computes in, from libtorch's rules
// written out: a float number lifts integral/bool tensors to the default float dtype, an integer
// lifts a bool tensor to int64, otherwise the tensor's dtype wins.
ScalarType common_with_scalar(ScalarType t, const Scalar& s) {
  if (s.is_floating_point()) return is_floating_point(t) ? t : get_default_dtype();
  if (s.is_integral()) return t == kBool ? kLong : t;
  return t;
}

// Broadcast shape, written independently of the library.
Sizes broadcast(const Sizes& a, const Sizes& b) {
  size_t n = std::max(a.size(), b.size());
  Sizes out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Row-major index into a tensor of `sizes` for output coordinate `c` under broadcasting.
int64_t bcast_index(const std::vector<int64_t>& c, const Sizes& sizes) {
  int64_t f = 0;
  size_t off = c.size() - sizes.size();
  for (size_t d = 0; d < sizes.size(); ++d) f = f * sizes[d] + (sizes[d] == 1 ? 0 : c[d + off]);
  return f;
}

std::vector<int64_t> unravel(int64_t f, const Sizes& sizes) {
  std::vector<int64_t> c(sizes.size());
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    c[d] = f % sizes[d];
    f /= sizes[d];
  }
  return c;
}

// ---- float64 references of every elementwise row ---------------------------------------------

namespace ref {
double neg(double x) { return -x; }
double abs(double x) { return std::abs(x); }
double exp(double x) { return std::exp(x); }
double exp2(double x) { return std::exp2(x); }
double log(double x) { return std::log(x); }
double log2(double x) { return std::log2(x); }
double log1p(double x) { return std::log1p(x); }
double expm1(double x) { return std::expm1(x); }
double sqrt(double x) { return std::sqrt(x); }
double rsqrt(double x) { return 1.0 / std::sqrt(x); }
double sin(double x) { return std::sin(x); }
double cos(double x) { return std::cos(x); }
double tan(double x) { return std::tan(x); }
double tanh(double x) { return std::tanh(x); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double relu(double x) { return std::isnan(x) ? x : (x > 0 ? x : 0.0); }  // clamp_min(x, 0)
double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double silu(double x) { return x / (1.0 + std::exp(-x)); }
double erf(double x) { return std::erf(x); }
double floor(double x) { return std::floor(x); }
double ceil(double x) { return std::ceil(x); }
double round(double x) { return std::nearbyint(x); }  // half to even
double sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }
double reciprocal(double x) { return 1.0 / x; }
double logical_not(double x) { return x == 0 ? 1.0 : 0.0; }

// Binary references; `integral` is true when the op computes in an integral (or bool) dtype.
double add(double a, double b, bool) { return a + b; }
double sub(double a, double b, bool) { return a - b; }
double mul(double a, double b, bool) { return a * b; }
double div(double a, double b, bool) { return a / b; }
double pow(double a, double b, bool integral) {
  if (!integral) return std::pow(a, b);
  if (b < 0) return a == 1 ? 1 : (a == -1 ? (std::fmod(-b, 2) == 0 ? 1 : -1) : 0);
  double r = 1;
  for (int64_t e = 0; e < static_cast<int64_t>(b); ++e) r *= a;
  return r;
}
double remainder(double a, double b, bool) {  // Python's modulo: sign of the divisor
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
double maximum(double a, double b, bool) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  return std::max(a, b);
}
double minimum(double a, double b, bool) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  return std::min(a, b);
}
double atan2(double a, double b, bool) { return std::atan2(a, b); }
double eq(double a, double b, bool) { return a == b; }
double ne(double a, double b, bool) { return a != b; }
double lt(double a, double b, bool) { return a < b; }
double le(double a, double b, bool) { return a <= b; }
double gt(double a, double b, bool) { return a > b; }
double ge(double a, double b, bool) { return a >= b; }
double logical_and(double a, double b, bool) { return a != 0 && b != 0; }
double logical_or(double a, double b, bool) { return a != 0 || b != 0; }
double logical_xor(double a, double b, bool) { return (a != 0) != (b != 0); }
}  // namespace ref

// ---- unary table --------------------------------------------------------------------------------

struct UnaryCase {
  const char* name;
  ops::OpKind kind;
  Tensor (*fn)(const Tensor&);
  Tensor (*method)(const Tensor&);
  Tensor& (*fn_)(Tensor&);
  Tensor& (*method_)(Tensor&);
  Tensor& (*out)(Tensor&, const Tensor&);
  double (*ref)(double);
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
#define KILN_UNARY_OP(Name, fn, r, t)                                          \
  {#fn,                                                                        \
   ops::OpKind::Name,                                                          \
   [](const Tensor& x) { return kiln::fn(x); },                                \
   [](const Tensor& x) { return x.fn(); },                                     \
   [](Tensor& x) -> Tensor& { return kiln::fn##_(x); },                        \
   [](Tensor& x) -> Tensor& { return x.fn##_(); },                             \
   [](Tensor& o, const Tensor& x) -> Tensor& { return kiln::fn##_out(o, x); }, \
   &ref::fn},
#include "kiln/ops/ops.def"
  };
  return cases;
}

Gen unary_gen(std::string_view name) {
  if (name == "log" || name == "log2" || name == "sqrt" || name == "rsqrt") return {0.05, 4};
  if (name == "log1p") return {-0.9, 4};
  if (name == "reciprocal") return {-2, 2, 0.05};
  return {-3, 3};
}

// What an op does with a dtype: compute, or reject (bool for kNoBool, non-float for kFloatOnly).
bool unary_rejects(const ops::OpInfo& info, ScalarType dt) {
  if (dt == kBool && info.has(ops::kNoBool)) return true;
  if (!is_floating_point(dt) && info.has(ops::kFloatOnly)) return true;
  return false;
}

std::vector<double> unary_ref(const UnaryCase& c, const Tensor& x) {
  std::vector<double> v = to_vector(x);
  for (double& e : v) e = c.ref(e);
  return v;
}

// All forms of one unary op on one input.
void check_unary(const UnaryCase& c, const Tensor& x, const std::string& layout) {
  const ops::OpInfo& info = ops::op_info(c.kind);
  const ScalarType dt = x.dtype();
  const Sizes sizes = x.sizes().vec();
  const std::string what = describe(c.name, dt, sizes, layout);
  SCOPED_TRACE(what);
  if (unary_rejects(info, dt)) {
    EXPECT_KILN_ERROR(c.fn(x), {std::string("[") + c.name, std::string(dtype_name(dt))});
    Tensor y = x.clone();
    EXPECT_KILN_ERROR(c.method_(y), {c.name});
    return;
  }
  const ScalarType rdt = apply_rule(info.dtype_rule, dt);
  const std::vector<double> want = unary_ref(c, x);
  EXPECT_TRUE(matches(c.fn(x), want, rdt, sizes, what + ", function"));
  EXPECT_TRUE(matches(c.method(x), want, rdt, sizes, what + ", method"));

  // out=: an empty tensor is resized; a right-shaped one is written in place.
  Tensor out = kiln::empty({0}, rdt);
  Tensor& r = c.out(out, x);
  EXPECT_TRUE(r.is_same(out));
  EXPECT_TRUE(matches(out, want, rdt, sizes, what + ", out= resized"));
  Tensor out2 = kiln::zeros(sizes, rdt);
  c.out(out2, x);
  EXPECT_TRUE(matches(out2, want, rdt, sizes, what + ", out= same shape"));

  // In-place (on a strided copy of x): allowed when the result dtype casts back to x's dtype.
  auto fresh = [&] { return x.dim() > 0 && x.numel() > 1 ? non_contiguous(x) : x.clone(); };
  Tensor y = fresh();
  std::vector<double> before = to_vector(y);
  if (can_cast(rdt, dt)) {
    Tensor& ry = c.fn_(y);
    EXPECT_TRUE(ry.is_same(y));
    EXPECT_TRUE(matches(y, want, dt, sizes, what + ", in-place function"));
    Tensor z = x.clone();
    Tensor& rz = c.method_(z);
    EXPECT_TRUE(rz.is_same(z));
    EXPECT_TRUE(matches(z, want, dt, sizes, what + ", in-place method"));
  } else {
    EXPECT_KILN_ERROR(c.fn_(y), {c.name, "can't be cast"});
    EXPECT_TRUE(matches(y, before, dt, sizes, what + ", unchanged after failed in-place"));
  }
}

TEST(Unary, TableCoversEveryUnaryRow) {
  int rows = 0;
  for (int k = 0; k < ops::num_ops(); ++k)
    rows += ops::op_info(static_cast<ops::OpKind>(k)).family == ops::OpFamily::Unary;
  EXPECT_EQ(static_cast<int>(unary_cases().size()), rows);
}

// One test per unary row of ops.def (named after the op), so a failure isolates the op.
class UnarySweep : public ::testing::TestWithParam<size_t> {};

TEST_P(UnarySweep, MatchesReferenceOverDtypesSizesAndLayouts) {
  const UnaryCase& c = unary_cases()[GetParam()];
  for (ScalarType dt : kAllDtypes) {
    Gen g = unary_gen(c.name);
    if (is_integral(dt)) g = Gen{-5, 5};
    for (const Sizes& sizes : kSweepSizes) {
      Tensor x = make_input(sizes, dt, g);
      check_unary(c, x, "contiguous");
      if (x.dim() > 0 && x.numel() > 1) check_unary(c, non_contiguous(x), "non-contiguous");
      if (x.dim() == 2) check_unary(c, x.t(), "transposed");
    }
    // Broadcast (stride-0) input.
    check_unary(c, make_input({3, 1}, dt, g).expand({3, 4}), "expanded");
    if (HasFatalFailure()) return;
  }
  // Big enough to run on the thread pool, contiguous and transposed.
  Tensor big = make_input({300, 257}, kFloat, unary_gen(c.name));
  check_unary(c, big, "large");
  check_unary(c, big.t(), "large transposed");
}

INSTANTIATE_TEST_SUITE_P(EveryOp, UnarySweep, ::testing::Range<size_t>(0, unary_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(unary_cases()[info.param].name);
                         });

TEST(Unary, InPlaceOnANonContiguousViewLeavesTheGapsAlone) {
  for (const UnaryCase& c : unary_cases()) {
    const ops::OpInfo& info = ops::op_info(c.kind);
    if (!can_cast(apply_rule(info.dtype_rule, kFloat), kFloat)) continue;
    SCOPED_TRACE(c.name);
    Tensor x = make_input({4, 6}, kFloat, unary_gen(c.name));
    Tensor buf = kiln::full({4, 12}, 123.0f);
    Tensor view = buf.slice(1, 1, std::nullopt, 2);
    view.copy_(x);
    c.method_(view);
    EXPECT_TRUE(matches(view, unary_ref(c, x), kFloat, {4, 6}, std::string(c.name) + " on view"));
    std::vector<double> b = to_vector(buf);
    for (int64_t i = 0; i < 48; i += 2) ASSERT_EQ(b[i], 123.0) << "gap element " << i;
  }
}

TEST(Unary, SpecialValues) {
  // NaN, infinities and signed zeros go through every op like IEEE float64 math does.
  const std::vector<double> special = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0};
  for (const UnaryCase& c : unary_cases())
    for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16}) {
      Tensor x = from_doubles(special, {7}, dt);
      const ScalarType rdt = apply_rule(ops::op_info(c.kind).dtype_rule, dt);
      EXPECT_TRUE(
          matches(c.fn(x), unary_ref(c, x), rdt, {7}, describe(c.name, dt, {7}, "special")));
    }
}

TEST(Unary, ResultDtypesPerRule) {
  Tensor i = kiln::arange(1, 5, kInt);
  EXPECT_EQ(kiln::exp(i).dtype(), kFloat);
  EXPECT_EQ(kiln::sqrt(i).dtype(), kFloat);
  EXPECT_EQ(kiln::sigmoid(kiln::ones({2}, kBool)).dtype(), kFloat);
  EXPECT_EQ(kiln::exp(kiln::ones({2}, kHalf)).dtype(), kHalf);
  EXPECT_EQ(kiln::exp(kiln::ones({2}, kDouble)).dtype(), kDouble);
  EXPECT_EQ(kiln::abs(i).dtype(), kInt);
  EXPECT_EQ(kiln::neg(kiln::ones({2}, kInt8)).dtype(), kInt8);
  EXPECT_EQ(kiln::floor(i).dtype(), kInt);
  EXPECT_EQ(kiln::logical_not(i).dtype(), kBool);
  EXPECT_EQ(kiln::logical_not(kiln::ones({2}, kHalf)).dtype(), kBool);
  set_default_dtype(kDouble);
  EXPECT_EQ(kiln::exp(i).dtype(), kDouble);
  set_default_dtype(kFloat);
}

TEST(Unary, Errors) {
  EXPECT_KILN_ERROR(kiln::neg(kiln::ones({3}, kBool)), {"[neg]", "bool"});
  EXPECT_KILN_ERROR(-kiln::ones({3}, kBool), {"[neg]", "bool"});
  EXPECT_KILN_ERROR(kiln::gelu(kiln::ones({3}, kInt)), {"[gelu]", "int32"});
  EXPECT_KILN_ERROR(kiln::gelu(kiln::ones({3}, kLong)), {"[gelu]", "int64"});
  EXPECT_KILN_ERROR(kiln::silu(kiln::ones({3}, kBool)), {"[silu]", "bool"});
  Tensor i = kiln::arange(3, kInt);
  EXPECT_KILN_ERROR(i.exp_(), {"[exp", "float32", "int32"});
  EXPECT_EQ(to_vector(i), (std::vector<double>{0, 1, 2}));
  Tensor out = kiln::zeros({2}, kFloat);
  EXPECT_KILN_ERROR(kiln::exp_out(out, kiln::ones({3})), {"exp", "[2]", "[3]"});
  Tensor iout = kiln::zeros({3}, kInt);
  EXPECT_KILN_ERROR(kiln::exp_out(iout, kiln::ones({3})), {"exp", "float32", "int32"});
  EXPECT_KILN_ERROR(kiln::exp(Tensor()), {"[exp]", "undefined"});
}

// ---- binary table -------------------------------------------------------------------------------

struct BinaryCase {
  const char* name;
  ops::OpKind kind;
  Tensor (*tt)(const Tensor&, const Tensor&);
  Tensor (*ts)(const Tensor&, const Scalar&);
  Tensor (*st)(const Scalar&, const Tensor&);
  Tensor (*method)(const Tensor&, const Tensor&);
  Tensor (*method_s)(const Tensor&, const Scalar&);
  Tensor& (*inplace)(Tensor&, const Tensor&);
  Tensor& (*inplace_s)(Tensor&, const Scalar&);
  Tensor& (*out)(Tensor&, const Tensor&, const Tensor&);
  double (*ref)(double, double, bool);
};

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> cases = {
#define KILN_BINARY_OP(Name, fn, r, t)                                                             \
  {#fn,                                                                                            \
   ops::OpKind::Name,                                                                              \
   [](const Tensor& a, const Tensor& b) { return kiln::fn(a, b); },                                \
   [](const Tensor& a, const Scalar& b) { return kiln::fn(a, b); },                                \
   [](const Scalar& a, const Tensor& b) { return kiln::fn(a, b); },                                \
   [](const Tensor& a, const Tensor& b) { return a.fn(b); },                                       \
   [](const Tensor& a, const Scalar& b) { return a.fn(b); },                                       \
   [](Tensor& a, const Tensor& b) -> Tensor& { return a.fn##_(b); },                               \
   [](Tensor& a, const Scalar& b) -> Tensor& { return a.fn##_(b); },                               \
   [](Tensor& o, const Tensor& a, const Tensor& b) -> Tensor& { return kiln::fn##_out(o, a, b); }, \
   &ref::fn},
#include "kiln/ops/ops.def"
  };
  return cases;
}

bool is_comparison(std::string_view n) {
  return n == "eq" || n == "ne" || n == "lt" || n == "le" || n == "gt" || n == "ge";
}

// Inputs per op: divisors kept away from zero, integer pow exponents non-negative.
Gen binary_gen_a(std::string_view name, ScalarType dt) {
  if (name == "pow") return is_integral(dt) ? Gen{-5, 5} : Gen{0.1, 2.5};
  return is_integral(dt) ? Gen{-5, 5} : Gen{-3, 3};
}
Gen binary_gen_b(std::string_view name, ScalarType dt) {
  if (name == "pow") return is_integral(dt) ? Gen{0, 3} : Gen{-2, 2};
  if (name == "remainder") return is_integral(dt) ? Gen{-5, 5, 0, true} : Gen{-3, 3, 0.25};
  if (name == "div") return is_integral(dt) ? Gen{-5, 5} : Gen{-3, 3, 0.25};
  return binary_gen_a(name, dt);
}

// Whether libtorch rejects these operand dtypes: sub with any bool operand, remainder computing in
// bool, and (not covered by the sweep) pow on bool.
bool binary_rejects(const BinaryCase& c, ScalarType a, ScalarType b, ScalarType common) {
  std::string_view n = c.name;
  if (n == "sub") return a == kBool || b == kBool;
  if (ops::op_info(c.kind).has(ops::kNoBool)) return common == kBool;
  return false;
}

std::vector<double> binary_ref(const BinaryCase& c, const std::vector<double>& a, const Sizes& as,
                               const std::vector<double>& b, const Sizes& bs, ScalarType common) {
  Sizes os = broadcast(as, bs);
  std::vector<double> out(static_cast<size_t>(numel_of(os)));
  bool integral = !is_floating_point(common);
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    auto coord = unravel(i, os);
    out[i] = c.ref(a[bcast_index(coord, as)], b[bcast_index(coord, bs)], integral);
  }
  return out;
}

// Every tensor-tensor form of one binary op on one pair of same-dtype inputs.
void check_binary(const BinaryCase& c, const Tensor& a, const Tensor& b,
                  const std::string& layout) {
  const ops::OpInfo& info = ops::op_info(c.kind);
  const ScalarType dt = a.dtype();
  const Sizes as = a.sizes().vec(), bs = b.sizes().vec(), os = broadcast(as, bs);
  const std::string what = describe(c.name, dt, os, layout);
  SCOPED_TRACE(what);
  const ScalarType common = promote_types(a.dtype(), b.dtype());
  if (binary_rejects(c, a.dtype(), b.dtype(), common)) {
    EXPECT_KILN_ERROR(c.tt(a, b), {std::string("[") + c.name, "bool"});
    return;
  }
  const ScalarType rdt = apply_rule(info.dtype_rule, common);
  const std::vector<double> want = binary_ref(c, to_vector(a), as, to_vector(b), bs, common);
  EXPECT_TRUE(matches(c.tt(a, b), want, rdt, os, what + ", function"));
  EXPECT_TRUE(matches(c.method(a, b), want, rdt, os, what + ", method"));

  Tensor out = kiln::empty({0}, rdt);
  Tensor& r = c.out(out, a, b);
  EXPECT_TRUE(r.is_same(out));
  EXPECT_TRUE(matches(out, want, rdt, os, what + ", out= resized"));

  Tensor y = a.dim() > 0 && a.numel() > 1 ? non_contiguous(a) : a.clone();
  std::vector<double> before = to_vector(y);
  if (os == as && can_cast(rdt, dt)) {
    Tensor& ry = c.inplace(y, b);
    EXPECT_TRUE(ry.is_same(y));
    EXPECT_TRUE(matches(y, want, dt, as, what + ", in-place"));
  } else {
    EXPECT_THROW(c.inplace(y, b), Error) << what << ", in-place";
    EXPECT_TRUE(matches(y, before, dt, as, what + ", unchanged after failed in-place"));
  }
}

// Tensor-scalar and scalar-tensor forms.
void check_binary_scalar(const BinaryCase& c, const Tensor& x, const Scalar& s,
                         const std::string& layout) {
  const ops::OpInfo& info = ops::op_info(c.kind);
  const ScalarType dt = x.dtype();
  const Sizes xs = x.sizes().vec();
  std::ostringstream sname;
  sname << layout << ", scalar " << s;
  const std::string what = describe(c.name, dt, xs, sname.str());
  SCOPED_TRACE(what);
  const ScalarType common = common_with_scalar(dt, s);
  const ScalarType rdt = apply_rule(info.dtype_rule, common);
  const std::vector<double> xv = to_vector(x);
  const std::vector<double> sv = {s.toDouble()};
  std::string_view n = c.name;
  const bool integral = !is_floating_point(common);

  // tensor op scalar
  if (binary_rejects(c, dt, s.type(), common)) {
    EXPECT_THROW(c.ts(x, s), Error) << what << ", tensor-scalar";
  } else if (n == "pow" && integral && s.toDouble() < 0) {
    EXPECT_KILN_ERROR(c.ts(x, s), {"[pow]", "negative"});
  } else if (n == "remainder" && integral && s.toDouble() == 0) {
    EXPECT_KILN_ERROR(c.ts(x, s), {"[remainder]", "zero"});
  } else {
    const std::vector<double> want = binary_ref(c, xv, xs, sv, {}, common);
    EXPECT_TRUE(matches(c.ts(x, s), want, rdt, xs, what + ", tensor-scalar"));
    EXPECT_TRUE(matches(c.method_s(x, s), want, rdt, xs, what + ", tensor-scalar method"));
    Tensor y = x.clone();
    std::vector<double> before = to_vector(y);
    if (can_cast(rdt, dt)) {
      c.inplace_s(y, s);
      EXPECT_TRUE(matches(y, want, dt, xs, what + ", in-place scalar"));
    } else {
      EXPECT_THROW(c.inplace_s(y, s), Error) << what << ", in-place scalar";
      EXPECT_TRUE(matches(y, before, dt, xs, what + ", unchanged after failed in-place"));
    }
  }

  // scalar op tensor
  bool zero_divisor = std::any_of(xv.begin(), xv.end(), [](double v) { return v == 0; });
  if (binary_rejects(c, s.type(), dt, common)) {
    EXPECT_THROW(c.st(s, x), Error) << what << ", scalar-tensor";
  } else if (n == "remainder" && integral && zero_divisor) {
    EXPECT_KILN_ERROR(c.st(s, x), {"[remainder]", "zero"});
  } else if (n == "pow" && integral &&
             std::any_of(xv.begin(), xv.end(), [](double v) { return v < 0; })) {
    // Integer powers with negative tensor exponents: libtorch gives 0 (or +-1); not swept here.
  } else {
    const std::vector<double> want = binary_ref(c, sv, {}, xv, xs, common);
    EXPECT_TRUE(matches(c.st(s, x), want, rdt, xs, what + ", scalar-tensor"));
  }
}

TEST(Binary, TableCoversEveryBinaryRow) {
  int rows = 0;
  for (int k = 0; k < ops::num_ops(); ++k)
    rows += ops::op_info(static_cast<ops::OpKind>(k)).family == ops::OpFamily::Binary;
  EXPECT_EQ(static_cast<int>(binary_cases().size()), rows);
}

// One test per binary row of ops.def (named after the op).
class BinarySweep : public ::testing::TestWithParam<size_t> {};

TEST_P(BinarySweep, MatchesReferenceOverDtypesSizesLayoutsAndScalars) {
  const BinaryCase& c = binary_cases()[GetParam()];
  for (ScalarType dt : kAllDtypes) {
    if (std::string_view(c.name) == "pow" && dt == kBool) continue;
    Gen ga = binary_gen_a(c.name, dt), gb = binary_gen_b(c.name, dt);
    for (const Sizes& sizes : kSweepSizes) {
      Tensor a = make_input(sizes, dt, ga), b = make_input(sizes, dt, gb);
      if (is_comparison(c.name) && a.numel() > 0) {
        // Make about a third of the pairs equal so ==, <= and >= see ties.
        std::vector<double> av = to_vector(a), bv = to_vector(b);
        for (size_t i = 0; i < av.size(); i += 3) bv[i] = av[i];
        b = from_doubles(bv, sizes, dt);
      }
      check_binary(c, a, b, "contiguous");
      if (a.dim() > 0 && a.numel() > 1) {
        check_binary(c, non_contiguous(a), b, "lhs non-contiguous");
        check_binary(c, a, non_contiguous(b), "rhs non-contiguous");
      }
      if (a.dim() == 2) check_binary(c, a.t(), b.t(), "both transposed");
    }
    // Broadcasting: [3,1] with [1,4], [5] with [2,3,5], and a 0-dim operand.
    check_binary(c, make_input({3, 1}, dt, ga), make_input({1, 4}, dt, gb), "[3,1] with [1,4]");
    check_binary(c, make_input({2, 3, 5}, dt, ga), make_input({5}, dt, gb), "[2,3,5] with [5]");
    check_binary(c, make_input({5}, dt, ga), make_input({2, 3, 5}, dt, gb), "[5] with [2,3,5]");
    check_binary(c, make_input({4, 3}, dt, ga), make_input({}, dt, gb), "[4,3] with 0-dim");
    check_binary(c, make_input({3, 1}, dt, ga).expand({3, 6}), make_input({6}, dt, gb),
                 "expanded lhs");
    // Tensor-scalar forms with integer, negative and floating numbers.
    Tensor x = make_input({2, 7}, dt, gb);
    std::vector<Scalar> scalars = {Scalar(3), Scalar(1.5), Scalar(0)};
    if (dt != kUInt8) scalars.push_back(Scalar(-2));
    for (const Scalar& s : scalars) {
      check_binary_scalar(c, x, s, "contiguous");
      check_binary_scalar(c, non_contiguous(x), s, "non-contiguous");
    }
    check_binary_scalar(c, make_input({}, dt, gb), Scalar(2), "0-dim");
    if (HasFatalFailure()) return;
  }
  Tensor a = make_input({300, 257}, kFloat, binary_gen_a(c.name, kFloat));
  Tensor b = make_input({300, 257}, kFloat, binary_gen_b(c.name, kFloat));
  check_binary(c, a, b, "large");
  check_binary(c, a.t(), b.t(), "large transposed");
  check_binary(c, a, b.select(0, 0), "large broadcast row");
}

INSTANTIATE_TEST_SUITE_P(EveryOp, BinarySweep, ::testing::Range<size_t>(0, binary_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(binary_cases()[info.param].name);
                         });

TEST(Binary, MixedDtypePromotion) {
  // Small integers (and multiples of 0.25) are exact in every dtype, so the reference is exact.
  auto values = [](ScalarType dt, const Sizes& s) {
    std::vector<double> v(static_cast<size_t>(numel_of(s)));
    for (size_t i = 0; i < v.size(); ++i) {
      double x = static_cast<double>(static_cast<int64_t>(i * 7 % 9)) - (dt == kUInt8 ? 0 : 4);
      if (is_floating_point(dt)) x += 0.25 * static_cast<double>(i % 4);
      if (dt == kBool) x = i % 3 == 0;
      v[i] = x;
    }
    return from_doubles(v, s, dt);
  };
  for (const BinaryCase& c : binary_cases()) {
    std::string_view n = c.name;
    if (n == "sub" || n == "pow" || n == "remainder") continue;
    const ops::OpInfo& info = ops::op_info(c.kind);
    for (ScalarType da : kAllDtypes)
      for (ScalarType db : kAllDtypes) {
        Tensor a = values(da, {2, 3, 4}), b = values(db, {3, 4});
        ScalarType common = promote_types(da, db);
        std::string what =
            describe(c.name, da, {2, 3, 4}, std::string("with ") + std::string(dtype_name(db)));
        std::vector<double> want =
            binary_ref(c, to_vector(a), {2, 3, 4}, to_vector(b), {3, 4}, common);
        EXPECT_TRUE(
            matches(c.tt(a, b), want, apply_rule(info.dtype_rule, common), {2, 3, 4}, what));
        // A zero-dim operand only counts when it is of a higher category.
        Tensor z = from_doubles({db == kBool ? 1.0 : 3.0}, {}, db);
        auto cat = [](ScalarType t) { return t == kBool ? 0 : (is_floating_point(t) ? 2 : 1); };
        ScalarType zcommon = cat(db) > cat(da) ? promote_types(da, db) : da;
        std::vector<double> zwant =
            binary_ref(c, to_vector(a), {2, 3, 4}, to_vector(z), {}, zcommon);
        EXPECT_TRUE(matches(c.tt(a, z), zwant, apply_rule(info.dtype_rule, zcommon), {2, 3, 4},
                            what + " (0-dim)"));
      }
  }
}

TEST(Binary, MixedDtypeInPlaceAndOut) {
  // float32 += float64 tensor: computed in float64, written as float32.
  Tensor x = kiln::full({4}, 1.5f);
  x.add_(kiln::full({4}, 0.25, kDouble));
  EXPECT_TRUE(matches(x, {1.75, 1.75, 1.75, 1.75}, kFloat, {4}, "float += double"));
  // int32 *= int64 zero-dim stays int32.
  Tensor i = kiln::arange(4, kInt);
  i.mul_(kiln::full({}, 3));
  EXPECT_TRUE(matches(i, {0, 3, 6, 9}, kInt, {4}, "int32 *= int64 0-dim"));
  // float tensor compared in place stores 0/1.
  Tensor f = kiln::tensor({1.0, 2.0, 3.0});
  f.lt_(2.5);
  EXPECT_TRUE(matches(f, {1, 1, 0}, kFloat, {3}, "lt_"));
  // out= of a wider dtype than the result.
  Tensor o = kiln::empty({0}, kDouble);
  kiln::add_out(o, kiln::arange(3, kInt), kiln::arange(3, kInt));
  EXPECT_TRUE(matches(o, {0, 2, 4}, kDouble, {3}, "int + int into double out"));
  // A non-contiguous out= of the right shape is written through its strides.
  Tensor nc = kiln::zeros({3, 2}, kDouble).t();
  kiln::mul_out(nc, kiln::tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}), kiln::full({}, 2.0));
  EXPECT_TRUE(matches(nc, {2, 4, 6, 8, 10, 12}, kDouble, {2, 3}, "mul_out into a transpose"));
  // out= aliasing an input exactly acts in place.
  Tensor al = kiln::tensor({1.0, 2.0});
  kiln::add_out(al, al, al);
  EXPECT_TRUE(matches(al, {2, 4}, kFloat, {2}, "add_out(a, a, a)"));
  // out= that can't hold the result.
  Tensor oi = kiln::zeros({3}, kInt);
  EXPECT_KILN_ERROR(kiln::div_out(oi, kiln::arange(3, kInt), kiln::ones({3}, kInt)),
                    {"div", "float32", "int32"});
  Tensor wrong = kiln::zeros({2, 2});
  EXPECT_KILN_ERROR(kiln::add_out(wrong, kiln::ones({3}), kiln::ones({3})),
                    {"add", "[2, 2]", "[3]"});
  // In-place needs the result shape to be self's shape.
  Tensor col = kiln::zeros({3, 1});
  EXPECT_KILN_ERROR(col.add_(kiln::ones({1, 4})), {"add", "[3, 1]", "[3, 4]"});
  EXPECT_TRUE(matches(col, {0, 0, 0}, kFloat, {3, 1}, "unchanged"));
}

TEST(Binary, InPlaceDtypeErrorsLeaveSelfUnchanged) {
  Tensor i = kiln::arange(1, 5, kInt);
  std::vector<double> before = to_vector(i);
  EXPECT_KILN_ERROR(i.div_(kiln::full({4}, 2, kInt)), {"div", "float32", "int32"});
  EXPECT_KILN_ERROR(i.add_(2.5), {"add", "float32", "int32"});
  EXPECT_KILN_ERROR(i.mul_(kiln::ones({4}, kHalf)), {"mul", "float16", "int32"});
  EXPECT_KILN_ERROR(i /= 2, {"div"});
  EXPECT_EQ(to_vector(i), before);
  Tensor b = kiln::ones({3}, kBool);
  EXPECT_KILN_ERROR(b.add_(2), {"add", "int64", "bool"});
  EXPECT_EQ(to_vector(b), (std::vector<double>{1, 1, 1}));
}

TEST(Binary, InPlaceWithPartiallyOverlappingOperand) {
  // libtorch refuses ("unsupported operation: some elements of the input tensor and the
  // written-to tensor refer to a single memory location"); silently reading elements that the
  // same op already overwrote would be wrong either way.
  Tensor x = kiln::arange(1, 9, kDouble);
  std::vector<double> old = to_vector(x);
  Tensor dst = x.slice(0, 1), src = x.slice(0, 0, 7);
  bool threw = false;
  try {
    dst.add_(src);
  } catch (const Error&) {
    threw = true;
  }
  if (!threw) {
    std::vector<double> want(old.begin(), old.end());
    for (size_t i = 1; i < 8; ++i) want[i] = old[i] + old[i - 1];
    EXPECT_TRUE(matches(x, want, kDouble, {8}, "x[1:] += x[:-1]"));
  }
  Tensor y = kiln::arange(1, 9, kDouble);
  Tensor ydst = y.slice(0, 1);
  threw = false;
  try {
    kiln::neg_out(ydst, y.slice(0, 0, 7));
  } catch (const Error&) {
    threw = true;
  }
  if (!threw) {
    std::vector<double> want = old;
    for (size_t i = 1; i < 8; ++i) want[i] = -old[i - 1];
    EXPECT_TRUE(matches(y, want, kDouble, {8}, "neg_out(y[1:], y[:-1])"));
  }
}

TEST(Binary, InPlaceIntoAnExpandedTensorThrows) {
  // libtorch: "unsupported operation: more than one element of the written-to tensor refers to a
  // single memory location". Writing each aliased element once per alias would add 1 three times.
  Tensor base = kiln::zeros({1});
  Tensor e = base.expand({3});
  bool threw = false;
  try {
    e.add_(1);
  } catch (const Error&) {
    threw = true;
  }
  EXPECT_TRUE(threw) << "add_ on an expanded tensor did not throw; base is now "
                     << base.item<float>();
  Tensor o = kiln::zeros({1}).expand({3});
  threw = false;
  try {
    kiln::add_out(o, kiln::ones({3}), kiln::ones({3}));
  } catch (const Error&) {
    threw = true;
  }
  EXPECT_TRUE(threw) << "add_out into an expanded tensor did not throw";
}

TEST(Binary, IntegerRemainderOfMinByMinusOneDoesNotTrap) {
  // INT_MIN % -1 overflows the hardware division (SIGFPE on x86); the answer is 0. Run in a child
  // so a trap fails this test instead of killing the binary.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Tensor a = kiln::tensor({int64_t{INT32_MIN}, int64_t{-7}}, kInt);
        Tensor r = kiln::remainder(a, -1);
        std::exit(r.select(0, 0).item<int>() == 0 && r.select(0, 1).item<int>() == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "")
      << "remainder(int32 [INT32_MIN, -7], -1)";
  EXPECT_EXIT(
      {
        Tensor a = kiln::tensor({std::numeric_limits<int64_t>::min(), int64_t{5}});
        Tensor r = kiln::remainder(a, kiln::tensor({-1, -1}));
        std::exit(r.select(0, 0).item<int64_t>() == 0 && r.select(0, 1).item<int64_t>() == 0 ? 0
                                                                                             : 1);
      },
      ::testing::ExitedWithCode(0), "")
      << "remainder(int64 [INT64_MIN, 5], [-1, -1])";
}

TEST(Binary, Int64StaysExact) {
  const int64_t big = (int64_t{1} << 60) + 1;
  Tensor a = kiln::full({3}, big);
  Tensor s = a + 1, m = a * kiln::full({3}, 1), d = a - kiln::full({}, big);
  EXPECT_EQ(s.data_ptr<int64_t>()[2], big + 1);
  EXPECT_EQ(m.data_ptr<int64_t>()[1], big);
  EXPECT_EQ(d.data_ptr<int64_t>()[0], 0);
  EXPECT_EQ(kiln::eq(a, kiln::full({3}, big - 1)).data_ptr<bool>()[0], false);
  EXPECT_EQ(kiln::maximum(a, kiln::full({}, big - 1)).data_ptr<int64_t>()[0], big);
}

TEST(Binary, SpecialValues) {
  const std::vector<double> vals = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 2.0, -2.0};
  std::vector<double> av, bv;
  for (double a : vals)
    for (double b : vals) av.push_back(a), bv.push_back(b);
  const Sizes s = {static_cast<int64_t>(av.size())};
  for (const BinaryCase& c : binary_cases()) {
    std::string_view n = c.name;
    if (n == "remainder" || n == "pow") continue;  // libtorch's formulas differ at inf/nan
    for (ScalarType dt : {kFloat, kDouble, kHalf}) {
      Tensor a = from_doubles(av, s, dt), b = from_doubles(bv, s, dt);
      const ScalarType rdt = apply_rule(ops::op_info(c.kind).dtype_rule, dt);
      EXPECT_TRUE(matches(c.tt(a, b), binary_ref(c, av, s, bv, s, dt), rdt, s,
                          describe(c.name, dt, s, "special")));
    }
  }
}

TEST(Binary, ResultDtypesPerRule) {
  Tensor i = kiln::arange(1, 4, kInt), f = kiln::ones({3});
  EXPECT_EQ(kiln::eq(f, f).dtype(), kBool);
  EXPECT_EQ(kiln::lt(i, 2).dtype(), kBool);
  EXPECT_EQ(kiln::logical_and(i, f).dtype(), kBool);
  EXPECT_EQ(kiln::div(i, i).dtype(), kFloat);
  EXPECT_EQ(kiln::div(i, 2).dtype(), kFloat);
  EXPECT_EQ(kiln::atan2(i, i).dtype(), kFloat);
  EXPECT_EQ(kiln::add(i, i).dtype(), kInt);
  EXPECT_EQ(kiln::add(i, 2.5).dtype(), kFloat);
  EXPECT_EQ(kiln::pow(i, 2).dtype(), kInt);
  EXPECT_EQ(kiln::pow(i, 0.5).dtype(), kFloat);
  EXPECT_EQ(kiln::pow(2, i).dtype(), kInt);
  EXPECT_EQ(kiln::remainder(i, 2).dtype(), kInt);
  EXPECT_EQ(kiln::maximum(i, f).dtype(), kFloat);
  EXPECT_EQ(kiln::add(kiln::ones({2}, kHalf), 2.5).dtype(), kHalf);
  EXPECT_EQ(kiln::add(kiln::ones({2}, kBool), 2).dtype(), kLong);
  EXPECT_TRUE(matches(kiln::div(kiln::tensor({7, -7}), 2), {3.5, -3.5}, kFloat, {2}, "true div"));
}

TEST(Binary, ErrorPaths) {
  Tensor i = kiln::tensor({5, -7, 9});
  EXPECT_KILN_ERROR(kiln::remainder(i, kiln::tensor({2, 0, 1})), {"[remainder]", "zero"});
  EXPECT_KILN_ERROR(kiln::remainder(i, 0), {"[remainder]", "zero"});
  EXPECT_KILN_ERROR((void)(i % 0), {"[remainder]", "zero"});
  EXPECT_KILN_ERROR(kiln::remainder(3, kiln::tensor({1, 0})), {"[remainder]", "zero"});
  EXPECT_TRUE(matches(kiln::remainder(kiln::tensor({1.0, -2.0}), 0), {NAN, NAN}, kFloat, {2},
                      "float remainder by zero is nan"));
  EXPECT_KILN_ERROR(kiln::pow(i, -2), {"[pow]", "negative"});
  EXPECT_KILN_ERROR(i.pow_(-1), {"[pow]", "negative"});
  EXPECT_TRUE(matches(kiln::pow(kiln::tensor({2, 4}), -1.0), {0.5, 0.25}, kFloat, {2},
                      "int tensor to a negative float power"));
  Tensor b = kiln::tensor({true, false});
  EXPECT_KILN_ERROR(kiln::sub(b, b), {"[sub]", "bool"});
  EXPECT_KILN_ERROR((void)(b - b), {"[sub]", "bool"});
  EXPECT_KILN_ERROR(kiln::sub(b, 1), {"[sub]", "bool"});
  EXPECT_KILN_ERROR(kiln::sub(1, b), {"[sub]", "bool"});
  EXPECT_KILN_ERROR(kiln::sub(b, kiln::ones({2})), {"[sub]", "bool"});
  EXPECT_KILN_ERROR(kiln::sub(b, b, 1), {"[sub]", "bool"});
  EXPECT_KILN_ERROR(kiln::remainder(b, b), {"[remainder]", "bool"});
  EXPECT_KILN_ERROR(kiln::add(kiln::ones({2, 3}), kiln::ones({3, 2})),
                    {"[add]", "[2, 3]", "[3, 2]"});
  EXPECT_KILN_ERROR(kiln::add(kiln::ones({2}), Tensor()), {"[add]", "undefined"});
}

TEST(Binary, AddSubWithAlpha) {
  Tensor a = kiln::tensor({1.0, 2.0, 3.0}), b = kiln::tensor({10.0, 20.0, 30.0});
  EXPECT_TRUE(matches(kiln::add(a, b, 2), {21, 42, 63}, kFloat, {3}, "add alpha 2"));
  EXPECT_TRUE(matches(a.add(b, 0.5), {6, 12, 18}, kFloat, {3}, "add alpha 0.5"));
  EXPECT_TRUE(matches(kiln::sub(a, b, 2), {-19, -38, -57}, kFloat, {3}, "sub alpha 2"));
  EXPECT_TRUE(matches(a.sub(b, -1), {11, 22, 33}, kFloat, {3}, "sub alpha -1"));
  Tensor i = kiln::tensor({1, 2}), j = kiln::tensor({3, 4});
  EXPECT_TRUE(matches(kiln::add(i, j, 3), {10, 14}, kLong, {2}, "int add alpha"));
  EXPECT_TRUE(matches(kiln::add(i, kiln::tensor({0.5, 1.0}), 2), {2, 4}, kFloat, {2},
                      "int + float * alpha"));
  Tensor c = a.clone();
  c.add_(b, -1);
  EXPECT_TRUE(matches(c, {-9, -18, -27}, kFloat, {3}, "add_ alpha"));
  c.sub_(b, 0.1);
  EXPECT_TRUE(matches(c, {-10, -20, -30}, kFloat, {3}, "sub_ alpha"));
  // Broadcast other with alpha.
  EXPECT_TRUE(matches(kiln::add(kiln::zeros({2, 2}), kiln::tensor({1.0, 2.0}), 3), {3, 6, 3, 6},
                      kFloat, {2, 2}, "broadcast alpha"));
  // libtorch: "For integral input tensors, argument alpha must not be a floating point number."
  EXPECT_KILN_ERROR(kiln::add(i, j, 0.5), {"alpha"});
  EXPECT_KILN_ERROR(kiln::sub(i, j, 1.5), {"alpha"});
}

// ---- clamp / where
// --------------------------------------------------------------------------------

TEST(Clamp, MinMaxBothAndNaN) {
  Tensor x = kiln::tensor({-3.0, -0.5, 0.0, 0.5, 3.0, NAN});
  EXPECT_TRUE(matches(kiln::clamp(x, -1, 1), {-1, -0.5, 0, 0.5, 1, NAN}, kFloat, {6}, "both"));
  EXPECT_TRUE(matches(kiln::clamp(x, 0.25), {0.25, 0.25, 0.25, 0.5, 3, NAN}, kFloat, {6}, "min"));
  EXPECT_TRUE(
      matches(kiln::clamp(x, std::nullopt, 0.0), {-3, -0.5, 0, 0, 0, NAN}, kFloat, {6}, "max"));
  EXPECT_TRUE(matches(x.clamp_min(0), {0, 0, 0, 0.5, 3, NAN}, kFloat, {6}, "clamp_min"));
  EXPECT_TRUE(matches(kiln::clamp_max(x, -1), {-3, -1, -1, -1, -1, NAN}, kFloat, {6}, "clamp_max"));
  // min > max: everything becomes max, like libtorch.
  EXPECT_TRUE(matches(x.clamp(2, 1), {1, 1, 1, 1, 1, NAN}, kFloat, {6}, "min > max"));
  Tensor y = x.clone();
  y.clamp_(-1, 1);
  EXPECT_TRUE(matches(y, {-1, -0.5, 0, 0.5, 1, NAN}, kFloat, {6}, "clamp_"));
  Tensor v = kiln::zeros({2, 6});
  v.select(0, 1).copy_(x);
  Tensor row = v.select(0, 1);
  kiln::clamp_(row, 0.0, std::nullopt);
  EXPECT_TRUE(matches(v, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 3, NAN}, kFloat, {2, 6}, "clamp_ view"));
  EXPECT_KILN_ERROR(kiln::clamp(x, std::nullopt, std::nullopt), {"[clamp]"});
}

TEST(Clamp, DtypesAndPromotion) {
  Tensor i = kiln::tensor({-5, 0, 5});
  EXPECT_TRUE(matches(kiln::clamp(i, -2, 2), {-2, 0, 2}, kLong, {3}, "int clamp"));
  EXPECT_TRUE(matches(kiln::clamp(i, 0.5), {0.5, 0.5, 5}, kFloat, {3}, "int with float min"));
  EXPECT_TRUE(
      matches(kiln::clamp(i, std::nullopt, 2.5), {-5, 0, 2.5}, kFloat, {3}, "int with float max"));
  Tensor ic = i.clone();
  EXPECT_KILN_ERROR(ic.clamp_(0.5), {"clamp", "float32", "int64"});
  EXPECT_TRUE(matches(ic, {-5, 0, 5}, kLong, {3}, "unchanged"));
  Tensor h = kiln::tensor({-2.0, 2.0}, kHalf);
  EXPECT_TRUE(matches(kiln::clamp(h, -1.5, 1.5), {-1.5, 1.5}, kHalf, {2}, "half"));
  Tensor u = kiln::tensor({0, 100, 200}, kUInt8);
  EXPECT_TRUE(matches(kiln::clamp(u, 50, 150), {50, 100, 150}, kUInt8, {3}, "uint8"));
  for (ScalarType dt : {kInt8, kInt32, kBFloat16, kDouble}) {
    Tensor t = make_input({33}, dt, {-5, 5});
    std::vector<double> want = to_vector(t);
    for (double& e : want) e = std::min(std::max(e, -2.0), 3.0);
    EXPECT_TRUE(matches(kiln::clamp(non_contiguous(t), -2, 3), want, dt, {33},
                        describe("clamp", dt, {33}, "non-contiguous")));
  }
}

TEST(Where, AllOverloadsBroadcastAndPromotion) {
  Tensor cond = kiln::tensor({{true}, {false}, {true}});  // [3, 1]
  Tensor a = kiln::tensor({{1.0, 2.0, 3.0, 4.0}});        // [1, 4]
  Tensor b = kiln::tensor({10, 20, 30, 40});              // [4], int64
  // tensor, tensor
  EXPECT_TRUE(matches(kiln::where(cond, a, b), {1, 2, 3, 4, 10, 20, 30, 40, 1, 2, 3, 4}, kFloat,
                      {3, 4}, "where(t, t)"));
  EXPECT_TRUE(matches(a.where(cond, b), {1, 2, 3, 4, 10, 20, 30, 40, 1, 2, 3, 4}, kFloat, {3, 4},
                      "Tensor::where"));
  // scalar, tensor
  EXPECT_TRUE(matches(kiln::where(cond, Scalar(-1), b),
                      {-1, -1, -1, -1, 10, 20, 30, 40, -1, -1, -1, -1}, kLong, {3, 4},
                      "where(s, t)"));
  // tensor, scalar
  EXPECT_TRUE(matches(kiln::where(cond, b, Scalar(0.5)),
                      {10, 20, 30, 40, 0.5, 0.5, 0.5, 0.5, 10, 20, 30, 40}, kFloat, {3, 4},
                      "where(t, s float)"));
  // scalar, scalar
  EXPECT_TRUE(
      matches(kiln::where(cond, Scalar(1), Scalar(0)), {1, 0, 1}, kLong, {3, 1}, "where(s, s)"));
  EXPECT_TRUE(matches(kiln::where(cond, Scalar(1.5), Scalar(0)), {1.5, 0, 1.5}, kFloat, {3, 1},
                      "where(s float, s)"));
  Tensor h = kiln::full({3, 1}, 2.0, kHalf);
  EXPECT_EQ(kiln::where(cond, h, Scalar(2.5)).dtype(), kHalf);
  EXPECT_EQ(kiln::where(cond, kiln::ones({3}, kInt), kiln::ones({3}, kLong)).dtype(), kLong);
  // Large, non-contiguous, against a reference.
  Tensor c = kiln::rand({64, 33}).lt(0.5);
  Tensor x = make_input({33, 64}, kDouble, {}).t(), y = make_input({33}, kFloat, {});
  std::vector<double> cv = to_vector(c), xv = to_vector(x), yv = to_vector(y), want(cv.size());
  for (size_t k = 0; k < want.size(); ++k) want[k] = cv[k] != 0 ? xv[k] : yv[k % 33];
  EXPECT_TRUE(matches(kiln::where(c, x, y), want, kDouble, {64, 33}, "where large"));
  EXPECT_KILN_ERROR(kiln::where(kiln::ones({3}), a, b), {"[where]", "bool", "float32"});
  EXPECT_KILN_ERROR(kiln::where(kiln::ones({3}, kInt), Scalar(1), Scalar(0)), {"[where]", "int32"});
  EXPECT_KILN_ERROR(kiln::where(kiln::ones({2}, kBool), kiln::ones({3}), kiln::ones({3})),
                    {"[where]", "[2]", "[3]"});
}

// Every dtype and sweep size through where's contiguous loops (tensor or number on either side)
// and its strided fallback (non-contiguous condition or values).
TEST(Where, ContiguousAndStridedLoopsMatchReference) {
  for (ScalarType dt : kAllDtypes) {
    for (const Sizes& sizes : kSweepSizes) {
      const int64_t n = numel_of(sizes);
      Tensor c = make_input(sizes, kBool, {});
      Tensor a = make_input(sizes, dt, {}), b = make_input(sizes, dt, {});
      std::vector<double> cv = to_vector(c), av = to_vector(a), bv = to_vector(b);
      const double as = to_vector(a.numel() > 0 ? a.view({-1}).select(0, 0) : zeros({}, dt))[0];
      const Scalar bs = dt == kBool ? Scalar(true) : Scalar(2);
      const double bsv = dt == kBool ? 1.0 : 2.0;
      std::vector<double> tt(n), ts(n), st(n), ss(n);
      for (int64_t k = 0; k < n; ++k) {
        tt[k] = cv[k] != 0 ? av[k] : bv[k];
        ts[k] = cv[k] != 0 ? av[k] : bsv;
        st[k] = cv[k] != 0 ? bsv : bv[k];
        ss[k] = cv[k] != 0 ? bsv : 0;
      }
      const std::string what = describe("where", dt, sizes, "");
      EXPECT_TRUE(matches(kiln::where(c, a, b), tt, dt, sizes, what + "tensor, tensor"));
      EXPECT_TRUE(matches(kiln::where(c, a, bs), ts, dt, sizes, what + "tensor, number"));
      EXPECT_TRUE(matches(kiln::where(c, bs, b), st, dt, sizes, what + "number, tensor"));
      EXPECT_TRUE(matches(kiln::where(non_contiguous(c), non_contiguous(a), b), tt, dt, sizes,
                          what + "strided"));
      EXPECT_TRUE(matches(kiln::where(c, non_contiguous(a), bs), ts, dt, sizes,
                          what + "strided tensor, number"));
      if (a.numel() > 0) {
        // a one-element tensor broadcast (stride 0)
        Tensor a0 = a.view({-1}).slice(0, 0, 1).view(Sizes(sizes.size(), 1));
        std::vector<double> bt(n);
        for (int64_t k = 0; k < n; ++k) bt[k] = cv[k] != 0 ? as : bv[k];
        EXPECT_TRUE(matches(kiln::where(c, a0, b), bt, dt, sizes, what + "broadcast, tensor"));
      }
      if (dt == kLong) {
        EXPECT_TRUE(matches(kiln::where(c, bs, Scalar(0)), ss, kLong, sizes, what + "numbers"));
      }
    }
  }
}

// ---- operators
// ------------------------------------------------------------------------------------

TEST(Operators, TensorAndScalarOperators) {
  Tensor a = kiln::tensor({6.0, -3.0, 4.5}), b = kiln::tensor({2.0, 4.0, 4.5});
  EXPECT_TRUE(matches(a + b, {8, 1, 9}, kFloat, {3}, "+"));
  EXPECT_TRUE(matches(a - b, {4, -7, 0}, kFloat, {3}, "-"));
  EXPECT_TRUE(matches(a * b, {12, -12, 20.25}, kFloat, {3}, "*"));
  EXPECT_TRUE(matches(a / b, {3, -0.75, 1}, kFloat, {3}, "/"));
  EXPECT_TRUE(matches(a % b, {0, 1, 0}, kFloat, {3}, "%"));
  EXPECT_TRUE(matches(a == b, {0, 0, 1}, kBool, {3}, "=="));
  EXPECT_TRUE(matches(a != b, {1, 1, 0}, kBool, {3}, "!="));
  EXPECT_TRUE(matches(a < b, {0, 1, 0}, kBool, {3}, "<"));
  EXPECT_TRUE(matches(a <= b, {0, 1, 1}, kBool, {3}, "<="));
  EXPECT_TRUE(matches(a > b, {1, 0, 0}, kBool, {3}, ">"));
  EXPECT_TRUE(matches(a >= b, {1, 0, 1}, kBool, {3}, ">="));
  EXPECT_TRUE(matches(a + 1, {7, -2, 5.5}, kFloat, {3}, "+ scalar"));
  EXPECT_TRUE(matches(a - 1.5, {4.5, -4.5, 3}, kFloat, {3}, "- scalar"));
  EXPECT_TRUE(matches(a * 2, {12, -6, 9}, kFloat, {3}, "* scalar"));
  EXPECT_TRUE(matches(a / 2, {3, -1.5, 2.25}, kFloat, {3}, "/ scalar"));
  EXPECT_TRUE(matches(a % 4, {2, 1, 0.5}, kFloat, {3}, "% scalar"));
  EXPECT_TRUE(matches(a > 0, {1, 0, 1}, kBool, {3}, "> scalar"));
  EXPECT_TRUE(matches(a == 4.5, {0, 0, 1}, kBool, {3}, "== scalar"));
  EXPECT_TRUE(matches(1 + a, {7, -2, 5.5}, kFloat, {3}, "scalar +"));
  EXPECT_TRUE(matches(1 - a, {-5, 4, -3.5}, kFloat, {3}, "scalar -"));
  EXPECT_TRUE(matches(2 * a, {12, -6, 9}, kFloat, {3}, "scalar *"));
  EXPECT_TRUE(matches(3 / a, {0.5, -1, 3 / 4.5}, kFloat, {3}, "scalar /"));
  EXPECT_TRUE(matches(-a, {-6, 3, -4.5}, kFloat, {3}, "unary -"));
  Tensor i = kiln::tensor({1, 2, 3});
  EXPECT_TRUE(matches(1 - i, {0, -1, -2}, kLong, {3}, "int scalar -"));
  EXPECT_TRUE(matches(6 / i, {6, 3, 2}, kFloat, {3}, "int scalar /"));
  EXPECT_TRUE(matches(0.5 * i, {0.5, 1, 1.5}, kFloat, {3}, "float scalar * int"));
  EXPECT_TRUE(matches(-i, {-1, -2, -3}, kLong, {3}, "int unary -"));
  Tensor p = kiln::tensor({true, true, false, false}), q = kiln::tensor({true, false, true, false});
  EXPECT_TRUE(matches(p & q, {1, 0, 0, 0}, kBool, {4}, "&"));
  EXPECT_TRUE(matches(p | q, {1, 1, 1, 0}, kBool, {4}, "|"));
  EXPECT_TRUE(matches(p ^ q, {0, 1, 1, 0}, kBool, {4}, "^"));
  EXPECT_TRUE(matches(!p, {0, 0, 1, 1}, kBool, {4}, "!"));
  EXPECT_TRUE(matches(p + q, {1, 1, 1, 0}, kBool, {4}, "bool +"));
  EXPECT_TRUE(matches(p * q, {1, 0, 0, 0}, kBool, {4}, "bool *"));
  Tensor c = a.clone();
  c += b;
  c -= 1;
  c *= 2;
  c /= b;
  EXPECT_TRUE(matches(c, {7, 0, 16.0 / 4.5}, kFloat, {3}, "compound assignment"));
}

// ---- copies and conversions
// -----------------------------------------------------------------------

TEST(Copy, BroadcastConversionAndOverlap) {
  Tensor dst = kiln::zeros({3, 4});
  dst.copy_(kiln::tensor({1.0, 2.0, 3.0, 4.0}));
  EXPECT_TRUE(matches(dst, {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}, kFloat, {3, 4}, "broadcast row"));
  dst.copy_(kiln::tensor({{7}, {8}, {9}}));
  EXPECT_TRUE(matches(dst, {7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9}, kFloat, {3, 4}, "int column"));
  dst.copy_(kiln::full({}, 2.5, kDouble));
  EXPECT_TRUE(matches(dst, std::vector<double>(12, 2.5), kFloat, {3, 4}, "0-dim double"));
  EXPECT_KILN_ERROR(dst.copy_(kiln::ones({5})), {"[copy_]", "[5]", "[3, 4]"});
  EXPECT_KILN_ERROR(dst.copy_(kiln::ones({2, 3, 4})), {"[copy_]"});
  // Every dtype pair, into a non-contiguous destination.
  for (ScalarType from : kAllDtypes)
    for (ScalarType to : kAllDtypes) {
      std::vector<double> v = {0, 1, 3, 2, 1, 0, 1, 1};
      if (from != kBool && from != kUInt8) v[2] = -3;
      if (is_floating_point(from)) v[3] = 2.75, v[6] = -1.5;
      if (from == kBool) v = {0, 1, 1, 0, 1, 0, 0, 1};
      Tensor src = from_doubles(v, {2, 4}, from);
      Tensor d = kiln::zeros({4, 2}, to).t();
      d.copy_(src);
      std::vector<double> want = v;
      for (double& e : want) e = is_integral(to) ? std::trunc(e) : e;
      // Negative values into uint8 wrap like C++ conversions; skip that implementation-defined
      // float -> uint8 case.
      if (to == kUInt8 && is_floating_point(from)) continue;
      EXPECT_TRUE(matches(d, want, to, {2, 4},
                          describe("copy_", from, {2, 4}, "into " + std::string(dtype_name(to)))));
    }
  // A self-copy through a view that overlaps its destination behaves as if the source were
  // read first.
  Tensor x = kiln::arange(6, kDouble);
  x.slice(0, 1).copy_(x.slice(0, 0, 5));
  EXPECT_TRUE(matches(x, {0, 0, 1, 2, 3, 4}, kDouble, {6}, "shift right"));
  Tensor y = kiln::arange(6, kDouble);
  y.slice(0, 0, 5).copy_(y.slice(0, 1));
  EXPECT_TRUE(matches(y, {1, 2, 3, 4, 5, 5}, kDouble, {6}, "shift left"));
  Tensor m = kiln::arange(9, kDouble).view({3, 3});
  m.copy_(m.t());
  EXPECT_TRUE(matches(m, {0, 3, 6, 1, 4, 7, 2, 5, 8}, kDouble, {3, 3}, "m.copy_(m.t())"));
  Tensor r = kiln::arange(4, kDouble);
  r.copy_(r.as_strided({4}, {0}, 3));  // every element from the last
  EXPECT_TRUE(matches(r, {3, 3, 3, 3}, kDouble, {4}, "copy from a stride-0 alias"));
  Tensor s = kiln::arange(4, kDouble);
  s.copy_(s);
  EXPECT_TRUE(matches(s, {0, 1, 2, 3}, kDouble, {4}, "exact self copy"));
  Tensor e = kiln::zeros({0, 3});
  e.copy_(kiln::ones({3}));
  EXPECT_EQ(e.numel(), 0);
}

// Copies whose source is a transposed matrix take 8x8 tiles: every size around the tile edges,
// sources and destinations that are slices of larger matrices, conversions.
TEST(Copy, TransposedMatricesInTiles) {
  for (int64_t rows : {1, 7, 8, 9, 16, 23})
    for (int64_t cols : {5, 8, 17, 40}) {
      SCOPED_TRACE(fmt::format("{}x{}", rows, cols));
      Tensor big = kiln::randn({cols + 3, rows + 2}, kDouble);
      Tensor src = big.slice(0, 1, cols + 1).slice(1, 2, rows + 2).t();  // [rows, cols]
      ASSERT_EQ(src.stride(0), 1);
      Tensor wide = kiln::full({rows, cols + 5}, -7.0);
      Tensor dst = wide.slice(1, 2, cols + 2);  // rows cols + 5 apart
      dst.copy_(src);
      Tensor dd = kiln::zeros({rows, cols}, kDouble);
      dd.copy_(src);
      Tensor di = kiln::zeros({rows, cols}, kLong);
      di.copy_(src * 10);
      const std::vector<double> w = to_vector(wide), d = to_vector(dd), i = to_vector(di);
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_EQ(w[r * (cols + 5)], -7.0);
        EXPECT_EQ(w[r * (cols + 5) + cols + 4], -7.0);
        for (int64_t c = 0; c < cols; ++c) {
          const double want = big[c + 1][r + 2].item<double>();
          ASSERT_EQ(d[r * cols + c], want) << r << ", " << c;
          ASSERT_EQ(w[r * (cols + 5) + c + 2], static_cast<float>(want)) << r << ", " << c;
          ASSERT_EQ(i[r * cols + c], std::trunc(want * 10)) << r << ", " << c;
        }
      }
    }
}

TEST(Copy, FillAndZero) {
  for (ScalarType dt : kAllDtypes) {
    Tensor t = kiln::zeros({3, 5}, dt);
    t.fill_(dt == kBool ? 1 : 2);
    EXPECT_TRUE(matches(t, std::vector<double>(15, dt == kBool ? 1 : 2), dt, {3, 5},
                        describe("fill_", dt, {3, 5}, "")));
    t.t().slice(0, 0, std::nullopt, 2).fill_(0);
    std::vector<double> want(15, dt == kBool ? 1 : 2);
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t c = 0; c < 5; c += 2) want[r * 5 + c] = 0;
    EXPECT_TRUE(matches(t, want, dt, {3, 5}, describe("fill_", dt, {3, 5}, "strided view")));
    t.zero_();
    EXPECT_TRUE(
        matches(t, std::vector<double>(15, 0), dt, {3, 5}, describe("zero_", dt, {3, 5}, "")));
  }
  Tensor f = kiln::zeros({2});
  f.fill_(2.75);
  EXPECT_TRUE(matches(f, {2.75, 2.75}, kFloat, {2}, "float fill"));
  Tensor i = kiln::zeros({2}, kInt);
  i.fill_(2.75);
  EXPECT_TRUE(matches(i, {2, 2}, kInt, {2}, "int fill truncates"));
  Tensor b = kiln::zeros({2}, kBool);
  b.fill_(5);
  EXPECT_TRUE(matches(b, {1, 1}, kBool, {2}, "bool fill"));
  Tensor z = kiln::zeros({});
  z.fill_(-4);
  EXPECT_EQ(z.item<float>(), -4.0f);
  Tensor e = kiln::zeros({0});
  e.fill_(1);
  EXPECT_EQ(e.numel(), 0);
}

TEST(Copy, ToDtypeRoundTripsAndClone) {
  Tensor i = kiln::tensor({-7, 0, 3, 100000});
  EXPECT_TRUE(matches(i.to(kDouble).to(kLong), to_vector(i), kLong, {4}, "int64 -> f64 -> int64"));
  EXPECT_TRUE(matches(i.to(kInt).to(kLong), to_vector(i), kLong, {4}, "int64 -> int32 -> int64"));
  Tensor f = kiln::tensor({-2.75, -0.5, 0.5, 1.25, 2.7});
  EXPECT_TRUE(matches(f.to(kInt), {-2, 0, 0, 1, 2}, kInt, {5}, "float -> int truncates"));
  EXPECT_TRUE(matches(f.to(kBool), {1, 1, 1, 1, 1}, kBool, {5}, "float -> bool"));
  EXPECT_TRUE(matches(kiln::tensor({0.0, 0.1}).to(kBool), {0, 1}, kBool, {2}, "0.1 -> true"));
  Tensor exact = kiln::tensor({-2.75, -0.5, 0.5, 1.25, 2.5});
  EXPECT_TRUE(
      matches(exact.to(kHalf).to(kFloat), to_vector(exact), kFloat, {5}, "float -> half -> float"));
  EXPECT_TRUE(matches(f.to(kBFloat16).to(kDouble), {-2.75, -0.5, 0.5, 1.25, 2.703125}, kDouble, {5},
                      "float -> bfloat16 -> double"));
  Tensor r = testing::random_tensor({33, 7}, kDouble);
  EXPECT_TRUE(close(r.to(kFloat).to(kDouble), r, 1e-7, 0)) << "f64 -> f32 -> f64";
  EXPECT_EQ(r.to(kFloat).to(kDouble).dtype(), kDouble);
  EXPECT_TRUE(matches(r.t().to(kHalf), to_vector(r.t()), kHalf, {7, 33}, "non-contiguous to half"));
  // No-op conversions return the same tensor unless a copy is asked for.
  EXPECT_TRUE(f.to(kFloat).is_same(f));
  Tensor copied = f.to(kFloat, false, true);
  EXPECT_FALSE(copied.is_same(f));
  EXPECT_NE(copied.data_ptr(), f.data_ptr());
  EXPECT_EQ(f.to(kiln::zeros({1}, kDouble)).dtype(), kDouble);
  EXPECT_TRUE(f.cpu().is_same(f));
  EXPECT_KILN_ERROR(f.to(Device(kCUDA)), {"cuda"});
  // clone is independent of its source, and of the source's layout.
  Tensor src = kiln::arange(12, kFloat).view({3, 4}).t();
  Tensor c = src.clone();
  EXPECT_TRUE(close(c, src, 0, 0));
  EXPECT_NE(c.data_ptr(), src.data_ptr());
  c.add_(100);
  EXPECT_EQ(src.select(0, 0).select(0, 1).item<float>(), 4.0f);
  src.mul_(0);
  EXPECT_EQ(c.select(0, 0).select(0, 1).item<float>(), 104.0f);
}

// ---- element access ----------------------------------------------------------------------------

TEST(Access, ItemAndDataPtr) {
  EXPECT_EQ(kiln::full({}, 2.5).item<float>(), 2.5f);
  EXPECT_EQ(kiln::full({1}, 2.5).item<double>(), 2.5);
  EXPECT_EQ(kiln::full({1, 1}, 7).item<int64_t>(), 7);
  EXPECT_EQ(kiln::full({}, 2.7).item<int>(), 2);
  EXPECT_EQ(kiln::full({}, true).item<bool>(), true);
  EXPECT_EQ(static_cast<float>(kiln::full({}, 1.5, kHalf).item<Half>()), 1.5f);
  Scalar s = kiln::full({}, 3, kInt).item();
  EXPECT_TRUE(s.is_integral());
  EXPECT_EQ(s.toLong(), 3);
  EXPECT_TRUE(kiln::full({}, 3.0, kHalf).item().is_floating_point());
  EXPECT_TRUE(kiln::full({}, false).item().is_boolean());
  // A one-element view of a larger tensor.
  EXPECT_EQ(kiln::arange(10, kFloat).slice(0, 4, 5).item<float>(), 4.0f);
  EXPECT_KILN_ERROR(kiln::zeros({2}).item(), {"[item]", "2 elements"});
  EXPECT_KILN_ERROR(kiln::zeros({0}).item<float>(), {"[item]", "0 elements"});
  EXPECT_KILN_ERROR(kiln::zeros({2, 3}).item<float>(), {"[item]", "6"});

  Tensor t = kiln::arange(6, kFloat);
  EXPECT_EQ(t.data_ptr<float>()[5], 5.0f);
  EXPECT_EQ(static_cast<void*>(t.data_ptr<float>()), t.data_ptr());
  EXPECT_EQ(t.slice(0, 2).data_ptr<float>(), t.data_ptr<float>() + 2);
  EXPECT_KILN_ERROR(t.data_ptr<double>(), {"[data_ptr]", "float64", "float32"});
  EXPECT_KILN_ERROR(t.data_ptr<int32_t>(), {"[data_ptr]", "int32", "float32"});
  EXPECT_KILN_ERROR(kiln::zeros({2}, kHalf).data_ptr<BFloat16>(), {"bfloat16", "float16"});
}

TEST(Access, Accessor) {
  Tensor m = kiln::zeros({3, 4});
  auto acc = m.accessor<float, 2>();
  EXPECT_EQ(acc.size(0), 3);
  EXPECT_EQ(acc.size(1), 4);
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 0; c < 4; ++c) acc[r][c] = static_cast<float>(r * 10 + c);
  EXPECT_TRUE(matches(m, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}, kFloat, {3, 4}, "written"));
  // Strided: the accessor of a transpose walks with the transposed strides.
  Tensor t = m.t();
  auto tacc = t.accessor<float, 2>();
  EXPECT_EQ(tacc.size(0), 4);
  EXPECT_EQ(tacc[3][2], 23.0f);
  EXPECT_EQ(tacc[1][0], 1.0f);
  tacc[0][1] = -1;
  EXPECT_EQ(m.select(0, 1).select(0, 0).item<float>(), -1.0f);
  Tensor evens = kiln::arange(5, kLong).slice(0, 0, std::nullopt, 2);
  auto a1 = evens.accessor<int64_t, 1>();
  EXPECT_EQ(a1.size(0), 3);
  EXPECT_EQ(a1[2], 4);
  EXPECT_KILN_ERROR((m.accessor<float, 3>()), {"[accessor]", "2-d", "3"});
  EXPECT_KILN_ERROR((m.accessor<double, 2>()), {"float64", "float32"});
}

// ---- printing -----------------------------------------------------------------------------------

std::string print(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in:\n" << text;
}

TEST(Print, LibtorchLayout) {
  Tensor m = kiln::tensor({{0.5, 1.25, -2.0}, {3.0, 4.5, 6.0}});
  std::string s = print(m);
  expect_contains(s, "[ CPUFloatType{2,3} ]");
  for (const char* v : {"0.5000", "1.2500", "-2.0000", "4.5000", "6.0000"}) expect_contains(s, v);
  EXPECT_LT(s.find("0.5000"), s.find("3.0000")) << "rows print in order:\n" << s;
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 2) << s;
  EXPECT_EQ(fmt::format("{}", m), s);

  std::string z = print(kiln::full({}, 3.5));
  expect_contains(z, "3.5");
  expect_contains(z, "[ CPUFloatType{} ]");

  std::string e = print(kiln::zeros({0, 3}));
  expect_contains(e, "[ CPUFloatType{0,3} ]");

  Tensor c = kiln::arange(12, kLong).view({2, 2, 3});
  std::string cs = print(c);
  expect_contains(cs, "(1,.,.) =");
  expect_contains(cs, "(2,.,.) =");
  expect_contains(cs, "[ CPULongType{2,2,3} ]");
  EXPECT_LT(cs.find("(1,.,.) ="), cs.find("(2,.,.) ="));
  EXPECT_LT(cs.find("5"), cs.find("(2,.,.) =")) << "slice 1 holds 0..5:\n" << cs;
  EXPECT_GT(cs.find("11"), cs.find("(2,.,.) =")) << "slice 2 holds 6..11:\n" << cs;
  expect_contains(print(kiln::zeros({2, 1, 2, 2})), "(2,1,.,.) =");

  std::string b = print(kiln::tensor({true, false}));
  expect_contains(b, "[ CPUBoolType{2} ]");
  std::string bvals = b.substr(0, b.find('['));
  EXPECT_TRUE(bvals.find("true") != std::string::npos || bvals.find('1') != std::string::npos) << b;

  expect_contains(print(kiln::ones({2}, kHalf)), "[ CPUHalfType{2} ]");
  expect_contains(print(kiln::ones({2}, kBFloat16)), "[ CPUBFloat16Type{2} ]");
  expect_contains(print(kiln::ones({2}, kInt8)), "[ CPUCharType{2} ]");
  expect_contains(print(kiln::ones({2}, kUInt8)), "[ CPUByteType{2} ]");
  expect_contains(print(kiln::ones({2}, kDouble)), "[ CPUDoubleType{2} ]");
  expect_contains(print(kiln::ones({2}, kInt)), "[ CPUIntType{2} ]");
  // A non-contiguous tensor prints in logical order.
  std::string t = print(kiln::tensor({{1, 2}, {3, 4}}).t());
  EXPECT_LT(t.find('3'), t.find('2')) << t;
  expect_contains(print(kiln::tensor({NAN, INFINITY, -INFINITY})), "nan");
  expect_contains(print(kiln::tensor({NAN, INFINITY, -INFINITY})), "-inf");
  EXPECT_EQ(print(Tensor()), "[ Tensor (undefined) ]");
  EXPECT_EQ(fmt::format("{}", c), cs);
}

}  // namespace
}  // namespace kiln
