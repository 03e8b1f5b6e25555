// Tests for the reductions, the cumsum scan and softmax of the eager CPU core
// (src/tensor/reduce.cpp): every op against a float64 reference computed here with plain loops,
// over dtypes, layouts (contiguous, strided, transposed, expanded), dim lists, keepdim, zero-size
// and 0-dim inputs, plus the error paths.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "test_util.h"

namespace kiln::testing {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

using Values = std::vector<double>;
using Dims = std::vector<int64_t>;

std::string str(IntArrayRef a) { return shape_str(a); }

Tensor from_values(const std::vector<int64_t>& sizes, const Values& v) {
  Tensor t = kiln::empty(sizes, kiln::dtype(kDouble));
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t;
}

// Wrapped dims; an empty list means every dim; a 0-dim tensor reduces nothing.
Dims wrap(const Dims& dims, int64_t nd) {
  Dims out;
  if (nd == 0) return out;
  if (dims.empty()) {
    for (int64_t d = 0; d < nd; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(d < 0 ? d + nd : d);
  return out;
}

// The elements of x that land in each output, in row-major order of the reduced dims.
struct Grouped {
  std::vector<int64_t> out_sizes;
  std::vector<Values> groups;
};

Grouped group_by(const Tensor& x, const Dims& dims_in, bool keepdim) {
  const int64_t nd = x.dim();
  std::vector<bool> red(nd, false);
  for (int64_t d : wrap(dims_in, nd)) red[d] = true;
  Grouped g;
  int64_t nout = 1;
  for (int64_t d = 0; d < nd; ++d) {
    if (red[d]) {
      if (keepdim) g.out_sizes.push_back(1);
    } else {
      g.out_sizes.push_back(x.size(d));
      nout *= x.size(d);
    }
  }
  g.groups.resize(nout);
  Values v = to_vector(x);
  std::vector<int64_t> idx(nd, 0);
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t o = 0;
    for (int64_t d = 0; d < nd; ++d)
      if (!red[d]) o = o * x.size(d) + idx[d];
    g.groups[o].push_back(v[i]);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < x.size(d)) break;
      idx[d] = 0;
    }
  }
  return g;
}

using RefFn = std::function<double(const Values&)>;

Tensor reference(const Tensor& x, const Dims& dims, bool keepdim, const RefFn& fn) {
  Grouped g = group_by(x, dims, keepdim);
  Values out;
  for (const Values& grp : g.groups) out.push_back(fn(grp));
  return from_values(g.out_sizes, out);
}

// ---- reference reductions ------------------------------------------------------------------

double ref_sum(const Values& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
double ref_prod(const Values& v) {
  double s = 1;
  for (double x : v) s *= x;
  return s;
}
double ref_mean(const Values& v) { return ref_sum(v) / static_cast<double>(v.size()); }
// Index of the first extreme element; NaN beats everything.
double ref_arg(const Values& v, bool largest) {
  size_t best = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) return static_cast<double>(i);
    if (largest ? v[i] > v[best] : v[i] < v[best]) best = i;
  }
  return static_cast<double>(best);
}
double ref_max(const Values& v) { return v[static_cast<size_t>(ref_arg(v, true))]; }
double ref_min(const Values& v) { return v[static_cast<size_t>(ref_arg(v, false))]; }
double ref_var(const Values& v, bool unbiased) {
  const double m = ref_mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / std::max(0.0, static_cast<double>(v.size()) - (unbiased ? 1 : 0));
}
double ref_norm(const Values& v, double p) {
  if (std::isinf(p)) {
    double m = p > 0 ? 0 : kInf;
    for (double x : v) m = p > 0 ? std::max(m, std::abs(x)) : std::min(m, std::abs(x));
    return m;
  }
  if (p == 0) {
    double c = 0;
    for (double x : v) c += x != 0;
    return c;
  }
  double s = 0;
  for (double x : v) s += std::pow(std::abs(x), p);
  return std::pow(s, 1 / p);
}
double ref_logsumexp(const Values& v) {
  double m = -kInf;
  for (double x : v) m = std::max(m, x);
  if (std::isinf(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// ---- inputs --------------------------------------------------------------------------------

const std::vector<std::vector<int64_t>> kShapes = {
    {}, {1}, {7}, {33}, {1025}, {3, 5}, {4, 1, 6}, {3, 4, 300}, {2, 3, 4, 5}, {0, 3}, {3, 0, 2}};

// The same random values in several layouts: contiguous, strided, dense but transposed, and
// expanded along dim 0 (stride 0).
std::vector<std::pair<std::string, Tensor>> layouts(const std::vector<int64_t>& sizes,
                                                    ScalarType dt, double lo, double hi) {
  std::vector<std::pair<std::string, Tensor>> out;
  Tensor x = random_tensor(sizes, dt, lo, hi);
  out.emplace_back("contiguous", x);
  if (x.dim() == 0) return out;
  out.emplace_back("strided", non_contiguous(x));
  if (x.dim() >= 2) {
    std::vector<int64_t> rev(sizes.rbegin(), sizes.rend()), perm;
    for (int64_t d = x.dim() - 1; d >= 0; --d) perm.push_back(d);
    out.emplace_back("transposed", random_tensor(rev, dt, lo, hi).permute(perm));
  }
  if (sizes[0] > 1) {
    std::vector<int64_t> one = sizes;
    one[0] = 1;
    out.emplace_back("expanded", random_tensor(one, dt, lo, hi).expand(sizes));
  }
  return out;
}

// Dim lists: all dims, every single dim (alternately positive and negative), and several
// multi-dim lists including out-of-order and non-adjacent ones.
std::vector<Dims> dim_cases(int64_t nd) {
  std::vector<Dims> c = {{}};
  if (nd == 0) return {{}, {0}, {-1}};
  for (int64_t d = 0; d < nd; ++d) c.push_back({d % 2 ? d - nd : d});
  if (nd >= 2) {
    c.push_back({0, nd - 1});
    c.push_back({-1, 0});
  }
  if (nd >= 3) {
    c.push_back({0, 2});
    c.push_back({1, 2});
  }
  if (nd >= 4) c.push_back({0, 1, 3});
  return c;
}

enum class DimMode { kList, kSingle };
using OpFn = std::function<Tensor(const Tensor&, const Dims&, bool)>;

struct SweepSpec {
  std::string name;
  OpFn op;
  RefFn ref;
  std::function<ScalarType(ScalarType)> out_dtype;
  double lo = -2, hi = 2;
  DimMode mode = DimMode::kList;
  bool skip_empty_groups = false;  // ops without an identity
  double atol = 1e-6;
};

// Runs spec over every shape x layout x dim list x keepdim for dtype dt.
void sweep(const SweepSpec& s, ScalarType dt) {
  for (const auto& shape : kShapes) {
    for (const auto& [layout, x] : layouts(shape, dt, s.lo, s.hi)) {
      for (const Dims& dims : dim_cases(x.dim())) {
        if (s.mode == DimMode::kSingle && dims.size() > 1) continue;
        for (bool keepdim : {false, true}) {
          if (s.mode == DimMode::kSingle && dims.empty() && keepdim) continue;
          Grouped g = group_by(x, dims, keepdim);
          if (s.skip_empty_groups &&
              std::any_of(g.groups.begin(), g.groups.end(), [](auto& v) { return v.empty(); }))
            continue;
          std::ostringstream ctx;
          ctx << s.name << " dtype " << dt << " shape " << str(x.sizes()) << " " << layout
              << " dims " << str(dims) << " keepdim " << keepdim;
          SCOPED_TRACE(ctx.str());
          Tensor got = s.op(x, dims, keepdim);
          Tensor want = reference(x, dims, keepdim, s.ref);
          const ScalarType out_dt = s.out_dtype(dt);
          EXPECT_EQ(got.dtype(), out_dt);
          const double atol = is_floating_point(out_dt) ? s.atol : 0.0;
          EXPECT_TRUE(close(got, want, rtol_for(out_dt), atol));
        }
      }
    }
  }
}

ScalarType same(ScalarType t) { return t; }
ScalarType sum_like(ScalarType t) { return is_integral(t, true) ? kLong : t; }

// ---- sum / mean / prod ---------------------------------------------------------------------

TEST(Reduce, SumMatchesReference) {
  SweepSpec s{"sum", [](const Tensor& x, const Dims& d, bool k) { return kiln::sum(x, d, k); },
              ref_sum, sum_like};
  for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kChar, kByte, kBool}) sweep(s, dt);
  s.atol = 2e-2;
  for (ScalarType dt : {kHalf, kBFloat16}) sweep(s, dt);
}

TEST(Reduce, SumWholeTensorAndDtype) {
  for (ScalarType dt : {kFloat, kInt, kBool, kHalf}) {
    Tensor x = non_contiguous(random_tensor({5, 9}, dt));
    Tensor got = kiln::sum(x);
    EXPECT_EQ(got.dim(), 0);
    EXPECT_EQ(got.dtype(), sum_like(dt));
    EXPECT_TRUE(close(got, from_values({}, {ref_sum(to_vector(x))}), rtol_for(sum_like(dt))));
  }
  // The dtype argument converts the input first: float -> int32 truncates every element.
  Tensor f = random_tensor({4, 7}, kFloat, -5, 5);
  Values tv = to_vector(f);
  for (double& v : tv) v = std::trunc(v);
  Tensor as_int = kiln::sum(f, {1}, false, kInt);
  EXPECT_EQ(as_int.dtype(), kInt);
  EXPECT_TRUE(close(as_int, reference(from_values({4, 7}, tv), {1}, false, ref_sum), 0, 0));
  Tensor i = random_tensor({3, 8}, kInt, -100, 100);
  Tensor as_float = kiln::sum(i, {-1}, true, kFloat);
  EXPECT_EQ(as_float.dtype(), kFloat);
  EXPECT_TRUE(close(as_float, reference(i, {-1}, true, ref_sum)));
  Tensor as_double = kiln::sum(random_tensor({6}, kHalf), kDouble);
  EXPECT_EQ(as_double.dtype(), kDouble);
}

// 1e6 float32 elements must stay within 1e-5 relative of the float64 sum, through the whole-
// tensor path, the split-row path and the split-column path.
TEST(Reduce, SumFloat32IsAccurateOnLargeInputs) {
  Tensor x = random_tensor({1000000}, kFloat, 0, 1);
  EXPECT_TRUE(close(kiln::sum(x), from_values({}, {ref_sum(to_vector(x))}), 1e-5, 0));
  EXPECT_TRUE(close(kiln::mean(x), from_values({}, {ref_mean(to_vector(x))}), 1e-5, 0));
  Tensor rows = random_tensor({3, 300000}, kFloat, -1, 3);
  EXPECT_TRUE(close(kiln::sum(rows, {1}), reference(rows, {1}, false, ref_sum), 1e-5, 0));
  Tensor cols = random_tensor({200000, 3}, kFloat, -1, 3);
  EXPECT_TRUE(close(kiln::sum(cols, {0}), reference(cols, {0}, false, ref_sum), 1e-5, 0));
  Tensor wide = random_tensor({600, 1000}, kFloat, -1, 3);
  EXPECT_TRUE(close(kiln::sum(wide, {0}, true), reference(wide, {0}, true, ref_sum), 1e-5, 0));
}

TEST(Reduce, MeanMatchesReference) {
  SweepSpec s{"mean", [](const Tensor& x, const Dims& d, bool k) { return kiln::mean(x, d, k); },
              ref_mean, same};
  for (ScalarType dt : {kFloat, kDouble}) sweep(s, dt);
  s.atol = 1e-3;
  for (ScalarType dt : {kHalf, kBFloat16}) sweep(s, dt);
  // Integer input with a floating dtype argument.
  s.op = [](const Tensor& x, const Dims& d, bool k) { return kiln::mean(x, d, k, kDouble); };
  s.out_dtype = [](ScalarType) { return kDouble; };
  s.atol = 1e-12;
  sweep(s, kInt);
  // Empty input: NaN.
  Tensor e = kiln::mean(kiln::empty({0, 4}, kiln::dtype(kFloat)), {0});
  EXPECT_EQ(e.sizes().vec(), std::vector<int64_t>{4});
  for (double v : to_vector(e)) EXPECT_TRUE(std::isnan(v));
  EXPECT_TRUE(std::isnan(kiln::mean(kiln::empty({0}, kiln::dtype(kFloat))).item<double>()));
}

TEST(Reduce, ProdMatchesReference) {
  SweepSpec s{"prod",
              [](const Tensor& x, const Dims& d, bool k) {
                return d.empty() ? kiln::prod(x) : kiln::prod(x, d[0], k);
              },
              ref_prod,
              sum_like,
              0.7,
              1.3,
              DimMode::kSingle};
  for (ScalarType dt : {kFloat, kDouble}) sweep(s, dt);
  s.lo = -1;  // integers in {-1, 0, 1} keep products exact
  s.hi = 1.999;
  for (ScalarType dt : {kInt, kLong, kBool}) sweep(s, dt);
  s.lo = 0.995;  // expanded inputs multiply 1025 copies of one value: stay inside float16
  s.hi = 1.005;
  s.atol = 1e-3;
  sweep(s, kHalf);
  Tensor d = kiln::prod(random_tensor({3, 4}, kInt, 1, 3), 1, false, kDouble);
  EXPECT_EQ(d.dtype(), kDouble);
  EXPECT_EQ(kiln::prod(kiln::empty({0}, kiln::dtype(kFloat))).item<double>(), 1.0);
  EXPECT_EQ(kiln::sum(kiln::empty({2, 0}, kiln::dtype(kInt))).item<int64_t>(), 0);
}

// ---- max / min / argmax ------------------------------------------------------------------------

TEST(Reduce, AmaxAminMatchReference) {
  for (bool largest : {true, false}) {
    SweepSpec s{largest ? "amax" : "amin",
                [largest](const Tensor& x, const Dims& d, bool k) {
                  return largest ? kiln::amax(x, d, k) : kiln::amin(x, d, k);
                },
                largest ? RefFn(ref_max) : RefFn(ref_min), same};
    s.skip_empty_groups = true;
    for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kByte, kBool, kHalf, kBFloat16})
      sweep(s, dt);
  }
}

TEST(Reduce, MaxMinWholeTensor) {
  for (ScalarType dt : {kFloat, kInt, kHalf, kBool}) {
    Tensor x = non_contiguous(random_tensor({6, 11}, dt));
    Values v = to_vector(x);
    EXPECT_EQ(kiln::max(x).item<double>(), ref_max(v));
    EXPECT_EQ(kiln::min(x).item<double>(), ref_min(v));
    EXPECT_EQ(kiln::max(x).dtype(), dt);
    EXPECT_EQ(kiln::max(x).dim(), 0);
  }
}

// max/min(dim) return the values and the index of the first extreme (ints make many ties).
TEST(Reduce, MaxMinDimValuesAndIndices) {
  for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kHalf, kBool}) {
    for (const auto& shape : kShapes) {
      for (const auto& [layout, x] : layouts(shape, dt, -3, 3)) {
        for (const Dims& dims : dim_cases(x.dim())) {
          if (dims.size() != 1) continue;
          for (bool keepdim : {false, true}) {
            Grouped g = group_by(x, dims, keepdim);
            if (std::any_of(g.groups.begin(), g.groups.end(), [](auto& v) { return v.empty(); }))
              continue;
            SCOPED_TRACE(::testing::Message()
                         << "dtype " << dt << " shape " << str(x.sizes()) << " " << layout
                         << " dim " << dims[0] << " keepdim " << keepdim);
            for (bool largest : {true, false}) {
              auto [values, indices] =
                  largest ? kiln::max(x, dims[0], keepdim) : kiln::min(x, dims[0], keepdim);
              EXPECT_EQ(values.dtype(), dt);
              EXPECT_EQ(indices.dtype(), kLong);
              EXPECT_TRUE(
                  close(values, reference(x, dims, keepdim, largest ? ref_max : ref_min), 0, 0));
              auto arg = [largest](const Values& v) { return ref_arg(v, largest); };
              EXPECT_TRUE(close(indices, reference(x, dims, keepdim, arg), 0, 0));
            }
          }
        }
      }
    }
  }
}

TEST(Reduce, ArgmaxArgminMatchReference) {
  for (bool largest : {true, false}) {
    auto arg = [largest](const Values& v) { return ref_arg(v, largest); };
    SweepSpec s{largest ? "argmax" : "argmin",
                [largest](const Tensor& x, const Dims& d, bool k) {
                  std::optional<int64_t> dim;
                  if (!d.empty()) dim = d[0];
                  return largest ? kiln::argmax(x, dim, k) : kiln::argmin(x, dim, k);
                },
                arg, [](ScalarType) { return kLong; }};
    s.mode = DimMode::kSingle;
    s.skip_empty_groups = true;
    s.lo = -3;
    s.hi = 3;
    for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kByte, kHalf}) sweep(s, dt);
  }
  // keepdim without a dim keeps every dim as size 1.
  Tensor x = random_tensor({3, 4, 5});
  Tensor k = kiln::argmax(x, std::nullopt, true);
  EXPECT_EQ(k.sizes().vec(), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(k.item<int64_t>(), static_cast<int64_t>(ref_arg(to_vector(x), true)));
}

TEST(Reduce, NanPropagatesThroughMaxMin) {
  Values v(4 * 9);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<double>(i));
  v[1 * 9 + 3] = kNan;
  v[2 * 9 + 0] = kNan;
  v[2 * 9 + 5] = kNan;
  for (ScalarType dt : {kFloat, kDouble, kHalf}) {
    Tensor x = from_values({4, 9}, v).to(dt);
    for (int64_t dim : {0, 1}) {
      for (bool largest : {true, false}) {
        auto arg = [largest](const Values& g) { return ref_arg(g, largest); };
        auto [values, indices] = largest ? kiln::max(x, dim) : kiln::min(x, dim);
        EXPECT_TRUE(close(values, reference(x, {dim}, false, largest ? ref_max : ref_min), 0, 0));
        EXPECT_TRUE(close(indices, reference(x, {dim}, false, arg), 0, 0));
        Tensor a = largest ? kiln::argmax(x, dim) : kiln::argmin(x, dim);
        EXPECT_TRUE(close(a, reference(x, {dim}, false, arg), 0, 0));
        Tensor am = largest ? kiln::amax(x, {dim}) : kiln::amin(x, {dim});
        EXPECT_TRUE(close(am, reference(x, {dim}, false, largest ? ref_max : ref_min), 0, 0));
      }
    }
    EXPECT_TRUE(std::isnan(kiln::max(x).item<double>()));
    EXPECT_TRUE(std::isnan(kiln::min(x).item<double>()));
    EXPECT_EQ(kiln::argmax(x).item<int64_t>(), 1 * 9 + 3);
    EXPECT_EQ(kiln::argmin(x).item<int64_t>(), 1 * 9 + 3);
  }
}

Tensor map_lines(const Tensor& x, int64_t dim, const std::function<Values(const Values&)>& fn);
Values ref_softmax(const Values& v, bool log);

// Big enough that rows are split across tasks and partial results are combined.
TEST(Reduce, LargeInputsTakeTheParallelPaths) {
  Tensor x = random_tensor({3, 200001}, kFloat);
  Values v = to_vector(x);
  Tensor big = random_tensor({300001}, kDouble);
  Values bv = to_vector(big);
  EXPECT_EQ(kiln::argmax(big).item<int64_t>(), static_cast<int64_t>(ref_arg(bv, true)));
  EXPECT_EQ(kiln::argmin(big).item<int64_t>(), static_cast<int64_t>(ref_arg(bv, false)));
  EXPECT_TRUE(close(kiln::amax(x, {1}), reference(x, {1}, false, ref_max), 0, 0));
  auto [mv, mi] = kiln::min(x, 1);
  EXPECT_TRUE(
      close(mi, reference(x, {1}, false, [](const Values& g) { return ref_arg(g, false); }), 0, 0));
  Tensor cols = random_tensor({150000, 2}, kFloat);
  auto var1 = [](const Values& g) { return ref_var(g, true); };
  EXPECT_TRUE(close(kiln::var(cols, Dims{0}), reference(cols, {0}, false, var1), 1e-5, 1e-7));
  EXPECT_TRUE(close(kiln::norm(x, 2, {1}),
                    reference(x, {1}, false, [](const Values& g) { return ref_norm(g, 2); }), 1e-5,
                    0));
  EXPECT_TRUE(close(kiln::logsumexp(x, {1}), reference(x, {1}, false, ref_logsumexp), 1e-5, 0));
  EXPECT_TRUE(close(kiln::log_softmax(x, 1),
                    map_lines(x, 1, [](const Values& g) { return ref_softmax(g, true); }), 1e-5,
                    1e-5));
  Tensor flags = kiln::ones({400000}, kiln::dtype(kBool));
  EXPECT_TRUE(kiln::all(flags).item<bool>());
  flags.data_ptr<bool>()[399999] = false;
  EXPECT_FALSE(kiln::all(flags).item<bool>());
  EXPECT_TRUE(kiln::any(flags).item<bool>());
}

// ---- var / std / norm / logsumexp ----------------------------------------------------------

TEST(Reduce, VarStdMatchReference) {
  for (bool unbiased : {true, false}) {
    for (bool is_std : {false, true}) {
      SweepSpec s{is_std ? "std" : "var",
                  [unbiased, is_std](const Tensor& x, const Dims& d, bool k) {
                    return is_std ? kiln::std(x, d, unbiased, k) : kiln::var(x, d, unbiased, k);
                  },
                  [unbiased, is_std](const Values& v) {
                    const double r = ref_var(v, unbiased);
                    return is_std ? std::sqrt(r) : r;
                  },
                  same};
      for (ScalarType dt : {kFloat, kDouble}) sweep(s, dt);
      s.atol = 1e-3;
      sweep(s, kBFloat16);
    }
  }
  Tensor x = random_tensor({5, 3}, kDouble);
  EXPECT_NEAR(kiln::var(x).item<double>(), ref_var(to_vector(x), true), 1e-12);
  EXPECT_NEAR(kiln::std(x, false).item<double>(), std::sqrt(ref_var(to_vector(x), false)), 1e-12);
  // One element with the unbiased estimator divides by zero: NaN, like libtorch.
  EXPECT_TRUE(std::isnan(kiln::var(kiln::ones({1}, kiln::dtype(kFloat))).item<double>()));
  EXPECT_EQ(kiln::var(kiln::ones({1}, kiln::dtype(kFloat)), false).item<double>(), 0.0);
}

TEST(Reduce, NormMatchesReference) {
  for (double p : {2.0, 1.0, kInf, -kInf, 0.0, 3.0, 0.5}) {
    SweepSpec s{"norm",
                [p](const Tensor& x, const Dims& d, bool k) { return kiln::norm(x, p, d, k); },
                [p](const Values& v) { return ref_norm(v, p); }, same};
    s.skip_empty_groups = std::isinf(p);
    s.name = "norm p=" + std::to_string(p);
    for (ScalarType dt : {kFloat, kDouble}) sweep(s, dt);
    s.atol = 1e-3;
    s.hi = p > 0 && p < 1 ? 0.003 : 0.03;  // small values keep every norm inside float16's range
    s.lo = -s.hi;
    sweep(s, kHalf);
  }
  Tensor x = random_tensor({4, 6}, kDouble);
  EXPECT_NEAR(kiln::norm(x).item<double>(), ref_norm(to_vector(x), 2), 1e-12);
  EXPECT_NEAR(kiln::norm(x, 1).item<double>(), ref_norm(to_vector(x), 1), 1e-12);
  EXPECT_EQ(kiln::norm(kiln::empty({0}, kiln::dtype(kFloat))).item<double>(), 0.0);
}

TEST(Reduce, LogsumexpMatchesReference) {
  SweepSpec s{"logsumexp",
              [](const Tensor& x, const Dims& d, bool k) { return kiln::logsumexp(x, d, k); },
              ref_logsumexp, same};
  s.lo = -20;
  s.hi = 20;
  for (ScalarType dt : {kFloat, kDouble}) sweep(s, dt);
  s.atol = 1e-2;
  sweep(s, kBFloat16);
  // Integers compute in the default float dtype.
  s.out_dtype = [](ScalarType) { return kFloat; };
  s.atol = 1e-5;
  sweep(s, kInt);
  sweep(s, kBool);
  // Rows of -inf give -inf, a +inf gives +inf, large values do not overflow.
  Tensor x =
      from_values({4, 3}, {-kInf, -kInf, -kInf, 1, kInf, 2, 1000, 999, -kInf, -1000, -1001, -kInf});
  for (ScalarType dt : {kFloat, kDouble})
    EXPECT_TRUE(close(kiln::logsumexp(x.to(dt), {1}), reference(x, {1}, false, ref_logsumexp),
                      rtol_for(dt)));
}

// ---- all / any -----------------------------------------------------------------------------

TEST(Reduce, AllAnyMatchReference) {
  for (bool is_all : {true, false}) {
    SweepSpec s{is_all ? "all" : "any",
                [is_all](const Tensor& x, const Dims& d, bool k) {
                  if (d.empty()) return is_all ? kiln::all(x) : kiln::any(x);
                  return is_all ? kiln::all(x, d[0], k) : kiln::any(x, d[0], k);
                },
                [is_all](const Values& v) {
                  bool acc = is_all;
                  for (double x : v) acc = is_all ? (acc && x != 0) : (acc || x != 0);
                  return acc ? 1.0 : 0.0;
                },
                [](ScalarType) { return kBool; }};
    s.mode = DimMode::kSingle;
    s.lo = 0;  // integers in {0, 1}: mostly ones for all, mostly zeros for any
    s.hi = is_all ? 1.98 : 1.02;
    for (ScalarType dt : {kBool, kInt, kByte, kLong, kFloat, kDouble, kHalf, kBFloat16})
      sweep(s, dt);
  }
  Tensor nan = from_values({2}, {kNan, 1});
  EXPECT_TRUE(kiln::all(nan).item<bool>());
  EXPECT_TRUE(kiln::all(kiln::empty({0, 2}, kiln::dtype(kFloat))).item<bool>());
  EXPECT_FALSE(kiln::any(kiln::empty({0, 2}, kiln::dtype(kFloat))).item<bool>());
}

// ---- scans and softmax ---------------------------------------------------------------------

// Applies fn to every line of x along dim, giving a float64 tensor of x's shape.
Tensor map_lines(const Tensor& x, int64_t dim, const std::function<Values(const Values&)>& fn) {
  const int64_t nd = x.dim();
  const int64_t d = nd == 0 ? 0 : (dim < 0 ? dim + nd : dim);
  int64_t A = 1, R = 1, B = 1;
  for (int64_t i = 0; i < nd; ++i) (i < d ? A : (i == d ? R : B)) *= x.size(i);
  Values v = to_vector(x), out(v.size());
  for (int64_t a = 0; a < A; ++a) {
    for (int64_t b = 0; b < B; ++b) {
      Values line(R);
      for (int64_t r = 0; r < R; ++r) line[r] = v[(a * R + r) * B + b];
      Values res = fn(line);
      for (int64_t r = 0; r < R; ++r) out[(a * R + r) * B + b] = res[r];
    }
  }
  return from_values(x.sizes().vec(), out);
}

Values ref_cumsum(const Values& v) {
  Values out(v.size());
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) out[i] = s += v[i];
  return out;
}

Values ref_softmax(const Values& v, bool log) {
  double m = -kInf;
  for (double x : v) m = std::max(m, x);
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  Values out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = log ? v[i] - m - std::log(s) : std::exp(v[i] - m) / s;
  return out;
}

// Every dim of every shape, positive and negative, in every layout.
void for_each_line_case(ScalarType dt, double lo, double hi,
                        const std::function<void(const Tensor&, int64_t)>& fn) {
  for (const auto& shape : kShapes) {
    for (const auto& [layout, x] : layouts(shape, dt, lo, hi)) {
      const int64_t nd = x.dim();
      for (int64_t d = std::min<int64_t>(-1, -nd); d < std::max<int64_t>(nd, 1); ++d) {
        SCOPED_TRACE(::testing::Message() << "dtype " << dt << " shape " << str(x.sizes()) << " "
                                          << layout << " dim " << d);
        fn(x, d);
      }
    }
  }
}

TEST(Reduce, CumsumMatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kByte, kBool, kHalf}) {
    for_each_line_case(dt, -3, 3, [dt](const Tensor& x, int64_t d) {
      Tensor got = kiln::cumsum(x, d);
      EXPECT_EQ(got.dtype(), sum_like(dt));
      EXPECT_TRUE(close(got, map_lines(x, d, ref_cumsum), rtol_for(sum_like(dt)),
                        dt == kHalf ? 1e-2 : 1e-6));
    });
  }
  Tensor i = random_tensor({3, 40}, kInt);
  Tensor f = kiln::cumsum(i, 1, kDouble);
  EXPECT_EQ(f.dtype(), kDouble);
  EXPECT_TRUE(close(f, map_lines(i, 1, ref_cumsum), 0, 0));
  Tensor big = random_tensor({100000}, kFloat, 0, 1);
  EXPECT_TRUE(close(kiln::cumsum(big, 0), map_lines(big, 0, ref_cumsum), 1e-5, 0));
}

TEST(Reduce, SoftmaxLogSoftmaxMatchReference) {
  for (bool log : {false, true}) {
    auto ref = [log](const Values& v) { return ref_softmax(v, log); };
    for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16}) {
      for_each_line_case(dt, -10, 10, [&](const Tensor& x, int64_t d) {
        Tensor got = log ? kiln::log_softmax(x, d) : kiln::softmax(x, d);
        EXPECT_EQ(got.dtype(), dt);
        const double atol = dt == kFloat || dt == kDouble ? 1e-6 : (log ? 5e-2 : 1e-3);
        EXPECT_TRUE(close(got, map_lines(x, d, ref), rtol_for(dt), atol));
      });
    }
    // Integers need a dtype argument; the result has that dtype.
    Tensor i = random_tensor({4, 9}, kLong, -5, 5);
    Tensor got = log ? kiln::log_softmax(i, 1, kFloat) : kiln::softmax(i, 1, kFloat);
    EXPECT_EQ(got.dtype(), kFloat);
    EXPECT_TRUE(close(got, map_lines(i, 1, ref), 2e-5, 1e-6));
    Tensor h = random_tensor({3, 5}, kHalf);
    EXPECT_EQ(kiln::softmax(h, 0, kFloat).dtype(), kFloat);
    // Huge logits stay finite; rows of -inf become NaN like libtorch.
    Tensor x = from_values({3, 3}, {1000, 999, -1000, -kInf, 0, -kInf, -kInf, -kInf, -kInf});
    Tensor s = log ? kiln::log_softmax(x.to(kFloat), 1) : kiln::softmax(x.to(kFloat), 1);
    EXPECT_TRUE(close(s, map_lines(x, 1, ref), 2e-5, 1e-6));
    Tensor cols = log ? kiln::log_softmax(x.t().to(kFloat), 0) : kiln::softmax(x.t().to(kFloat), 0);
    EXPECT_TRUE(close(cols, map_lines(x.t(), 0, ref), 2e-5, 1e-6));
  }
  // Exponentials across float's whole range stay accurate (tiny probabilities included).
  Values ramp(221);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = -100.0 + 0.5 * static_cast<double>(i) - 10;
  Tensor r = from_values({221}, ramp).to(kFloat);
  EXPECT_TRUE(close(kiln::softmax(r, 0),
                    map_lines(r, 0, [](const Values& v) { return ref_softmax(v, false); }), 2e-5,
                    1e-37));
  EXPECT_TRUE(close(kiln::logsumexp(r, {0}), reference(r, {0}, false, ref_logsumexp), 2e-6, 0));
  // Probabilities along the dim sum to one.
  Tensor p = kiln::softmax(random_tensor({5, 300, 2}, kFloat), 1);
  EXPECT_TRUE(close(kiln::sum(p, {1}), kiln::ones({5, 2}, kiln::dtype(kFloat)), 1e-5, 1e-6));
}

// The split of work across threads changes no result: integer reductions are bit-identical and
// float ones agree to rounding, with 1 and with 4 threads.
TEST(Reduce, ResultsDoNotDependOnTheThreadCount) {
  Tensor f = random_tensor({7, 150001}, kFloat);
  Tensor i = random_tensor({150001, 5}, kLong, -1000, 1000);
  const int saved = get_num_threads();
  std::vector<Tensor> runs[2];
  for (int k = 0; k < 2; ++k) {
    set_num_threads(k == 0 ? 1 : 4);
    runs[k] = {kiln::sum(f, {1}),   kiln::sum(i, {0}), kiln::argmax(f, 1),   kiln::amin(i, {0}),
               kiln::softmax(f, 0), kiln::sum(f),      kiln::var(f, Dims{0})};
  }
  set_num_threads(saved);
  for (size_t n = 0; n < runs[0].size(); ++n) {
    SCOPED_TRACE(::testing::Message() << "result " << n);
    EXPECT_TRUE(close(runs[1][n], runs[0][n], is_floating_point(runs[0][n].dtype()) ? 1e-6 : 0, 0));
  }
}

// ---- errors --------------------------------------------------------------------------------

TEST(Reduce, ErrorsNameTheOpAndTheProblem) {
  Tensor x = random_tensor({2, 3});
  expect_error([&] { kiln::sum(x, {2}); }, {"[sum]", "out of range", "got dim 2"});
  expect_error([&] { kiln::sum(x, {-3}); }, {"[sum]", "out of range", "got dim -3"});
  expect_error([&] { kiln::sum(x, {1, -1}); }, {"[sum]", "dim 1", "multiple times"});
  expect_error([&] { kiln::amax(x, {0, 0}); }, {"[amax]", "multiple times"});
  expect_error([&] { kiln::prod(x, 5); }, {"[prod]", "out of range"});
  expect_error([&] { kiln::max(x, 2); }, {"[max]", "out of range"});
  expect_error([&] { kiln::argmin(x, -3); }, {"[argmin]", "out of range"});
  expect_error([&] { kiln::cumsum(x, 2); }, {"[cumsum]", "out of range"});
  expect_error([&] { kiln::softmax(x, 3); }, {"[softmax]", "out of range"});
  expect_error([&] { kiln::all(x, 2); }, {"[all]", "out of range"});
  expect_error([&] { kiln::var(x, Dims{4}); }, {"[var]", "out of range"});

  Tensor i = random_tensor({2, 3}, kLong);
  expect_error([&] { kiln::mean(i); }, {"[mean]", "int64", "floating-point"});
  expect_error([&] { kiln::mean(x, {0}, false, kInt); }, {"[mean]", "int32", "dtype argument"});
  expect_error([&] { kiln::var(i); }, {"[var]", "int64", "floating-point"});
  expect_error([&] { kiln::std(i, Dims{0}); }, {"[std]", "int64"});
  expect_error([&] { kiln::norm(i); }, {"[norm]", "int64", "floating-point"});
  expect_error([&] { kiln::softmax(i, 0); }, {"[softmax]", "int64", "floating-point"});
  expect_error([&] { kiln::log_softmax(i, 0); }, {"[log_softmax]", "int64"});
  expect_error([&] { kiln::argmax(random_tensor({3}, kBool)); }, {"[argmax]", "bool"});

  Tensor e = kiln::empty({0, 3}, kiln::dtype(kFloat));
  expect_error([&] { kiln::max(e); }, {"[max]", "empty", "[0, 3]"});
  expect_error([&] { kiln::min(e); }, {"[min]", "empty"});
  expect_error([&] { kiln::argmax(e); }, {"[argmax]", "empty"});
  expect_error([&] { kiln::max(e, 0); }, {"[max]", "dim 0 of size 0"});
  expect_error([&] { kiln::argmin(e, 0); }, {"[argmin]", "dim 0 of size 0"});
  expect_error([&] { kiln::amax(e); }, {"[amax]", "size 0"});
  expect_error([&] { kiln::amin(e, {0}); }, {"[amin]", "dim 0 of size 0"});
  expect_error([&] { kiln::norm(e, kInf, {0}); }, {"[norm]", "size 0"});
  // Reducing the non-empty dim of an empty tensor is fine: the result is empty.
  EXPECT_EQ(kiln::amax(e, {1}).sizes().vec(), std::vector<int64_t>{0});
  EXPECT_EQ(std::get<1>(kiln::max(e, 1, true)).sizes().vec(), (std::vector<int64_t>{0, 1}));
}

}  // namespace
}  // namespace kiln::testing

// var(x, {0}) / x.std({1}) must pick the dim overloads, not convert the braces to `unbiased`.
TEST(Reduce, BracedDimListPicksDimOverload) {
  kiln::Tensor x = kiln::testing::random_tensor({4, 3}, kiln::kDouble);
  EXPECT_EQ(kiln::var(x, {0}).sizes().vec(), (std::vector<int64_t>{3}));
  EXPECT_EQ(x.std({1}).sizes().vec(), (std::vector<int64_t>{4}));
  EXPECT_EQ(kiln::var(x).dim(), 0);
  EXPECT_EQ(x.std(false).dim(), 0);
  std::vector<double> v = kiln::testing::to_vector(x);
  double mean = 0, ss = 0;
  for (double e : v) mean += e / v.size();
  for (double e : v) ss += (e - mean) * (e - mean);
  EXPECT_NEAR(x.var(false).item<double>(), ss / v.size(), 1e-12);
  EXPECT_NEAR(kiln::var(x).item<double>(), ss / (v.size() - 1), 1e-12);
}
