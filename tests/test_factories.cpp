// Tests for the tensor factories (src/tensor/factories.cpp): empty/zeros/ones/full and *_like
// dtype inference, arange/linspace/eye against float64 references, the seeded random factories
// (range, moments, reproducibility), from_blob memory sharing, tensor({...}) and option checks.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <set>
#include <vector>

#include "test_util.h"

namespace kiln {
namespace {

// expect_error with the statement and its line in the failure trace.
using testing::close;
using testing::expect_error;
using testing::to_vector;

const std::vector<ScalarType> kAllDtypes = {kBool, kUInt8,    kInt8,  kInt32, kInt64,
                                            kHalf, kBFloat16, kFloat, kDouble};

// ---- empty / zeros / ones / full --------------------------------------------------------------

TEST(Factories, ZerosOnesEmptyShapesAndDtypes) {
  for (ScalarType dt : kAllDtypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (std::vector<int64_t> sizes :
         std::vector<std::vector<int64_t>>{{}, {0}, {1}, {7}, {3, 5}, {2, 0, 4}}) {
      SCOPED_TRACE(shape_str(sizes));
      Tensor z = kiln::zeros(sizes, dt), o = kiln::ones(sizes, dt), e = kiln::empty(sizes, dt);
      for (const Tensor& t : {z, o, e}) {
        EXPECT_EQ(t.dtype(), dt);
        EXPECT_TRUE(t.sizes().equals(sizes));
        EXPECT_TRUE(t.is_contiguous());
        EXPECT_TRUE(t.is_cpu());
        EXPECT_FALSE(t.requires_grad());
        EXPECT_EQ(t.storage_offset(), 0);
      }
      for (double v : to_vector(z)) ASSERT_EQ(v, 0.0);
      for (double v : to_vector(o)) ASSERT_EQ(v, 1.0);
      EXPECT_EQ(z.numel(),
                std::accumulate(sizes.begin(), sizes.end(), int64_t{1}, std::multiplies<>()));
    }
  }
  EXPECT_EQ(kiln::zeros({2}).dtype(), kFloat);
  EXPECT_EQ(kiln::ones({2}).dtype(), kFloat);
  EXPECT_EQ(kiln::empty({2}).dtype(), kFloat);
  EXPECT_EQ(kiln::zeros({}).dim(), 0);
  EXPECT_EQ(kiln::zeros({}).numel(), 1);
  EXPECT_EQ(kiln::zeros({2, 3}).strides().vec(), (std::vector<int64_t>{3, 1}));
  EXPECT_KILN_ERROR(kiln::zeros({2, -1}), {"[", "-1"});
}

TEST(Factories, FullInfersDtypeFromValue) {
  Tensor i = kiln::full({2, 2}, 7);
  EXPECT_EQ(i.dtype(), kLong);
  for (double v : to_vector(i)) EXPECT_EQ(v, 7.0);
  Tensor f = kiln::full({3}, 2.5);
  EXPECT_EQ(f.dtype(), kFloat);
  for (double v : to_vector(f)) EXPECT_EQ(v, 2.5);
  Tensor b = kiln::full({3}, true);
  EXPECT_EQ(b.dtype(), kBool);
  for (double v : to_vector(b)) EXPECT_EQ(v, 1.0);
  Tensor explicit_dt = kiln::full({2}, 7, kDouble);
  EXPECT_EQ(explicit_dt.dtype(), kDouble);
  Tensor trunc = kiln::full({2}, 2.75, kInt);
  EXPECT_EQ(trunc.dtype(), kInt);
  for (double v : to_vector(trunc)) EXPECT_EQ(v, 2.0);
  Tensor h = kiln::full({4}, -1.5, kHalf);
  for (double v : to_vector(h)) EXPECT_EQ(v, -1.5);
  Tensor big = kiln::full({1}, int64_t{1} << 60);
  EXPECT_EQ(big.data_ptr<int64_t>()[0], int64_t{1} << 60);
  EXPECT_EQ(kiln::full({}, 3.0).dim(), 0);
  set_default_dtype(kDouble);
  EXPECT_EQ(kiln::full({2}, 0.5).dtype(), kDouble);
  EXPECT_EQ(kiln::zeros({2}).dtype(), kDouble);
  set_default_dtype(kFloat);
}

TEST(Factories, LikeFactoriesFollowTheSource) {
  Tensor src = testing::random_tensor({3, 4}, kInt, -5, 5).t();  // non-contiguous int32
  for (const Tensor& t : {kiln::empty_like(src), kiln::zeros_like(src), kiln::ones_like(src),
                          kiln::full_like(src, 3)}) {
    EXPECT_EQ(t.dtype(), kInt);
    EXPECT_TRUE(t.sizes().equals(src.sizes()));
    EXPECT_TRUE(t.is_cpu());
  }
  for (double v : to_vector(kiln::zeros_like(src))) EXPECT_EQ(v, 0.0);
  for (double v : to_vector(kiln::ones_like(src))) EXPECT_EQ(v, 1.0);
  for (double v : to_vector(kiln::full_like(src, 3))) EXPECT_EQ(v, 3.0);
  // full_like keeps the source dtype even for a floating value (truncating), like libtorch.
  for (double v : to_vector(kiln::full_like(src, 3.75))) EXPECT_EQ(v, 3.0);
  EXPECT_EQ(kiln::full_like(src, 3.75).dtype(), kInt);
  // An explicit dtype wins.
  Tensor d = kiln::zeros_like(src, kDouble);
  EXPECT_EQ(d.dtype(), kDouble);
  EXPECT_TRUE(d.sizes().equals(src.sizes()));
  Tensor r = kiln::rand_like(kiln::zeros({50}, kDouble));
  EXPECT_EQ(r.dtype(), kDouble);
  for (double v : to_vector(r)) EXPECT_TRUE(v >= 0.0 && v < 1.0);
  EXPECT_EQ(kiln::randn_like(kiln::zeros({2, 2}, kHalf)).dtype(), kHalf);
  EXPECT_KILN_ERROR(kiln::rand_like(src), {"[rand]", "int32"});
  // The new tensor does not share memory with the source.
  Tensor f = kiln::ones({4});
  Tensor z = kiln::zeros_like(f);
  z.fill_(5);
  for (double v : to_vector(f)) EXPECT_EQ(v, 1.0);
}

TEST(Factories, EmptyStrided) {
  Tensor t = kiln::empty_strided({2, 3}, {1, 2}, kFloat);
  EXPECT_EQ(t.strides().vec(), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(t.is_contiguous());
  t.fill_(2);
  for (double v : to_vector(t)) EXPECT_EQ(v, 2.0);
  EXPECT_EQ(kiln::empty_strided({0, 3}, {3, 1}).numel(), 0);
  EXPECT_KILN_ERROR(kiln::empty_strided({2, 3}, {1}), {"[empty_strided]", "[2, 3]", "[1]"});
}

// ---- arange / linspace / eye --------------------------------------------------------------------

void expect_values(const Tensor& t, const std::vector<double>& want, double tol = 0) {
  ASSERT_EQ(t.dim(), 1);
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size())) << "got " << t;
  std::vector<double> got = to_vector(t);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol) << "element " << i << " of " << t;
}

TEST(Arange, IntegerArguments) {
  Tensor a = kiln::arange(5);
  EXPECT_EQ(a.dtype(), kLong);
  expect_values(a, {0, 1, 2, 3, 4});
  expect_values(kiln::arange(2, 6), {2, 3, 4, 5});
  expect_values(kiln::arange(-3, 4, 2), {-3, -1, 1, 3});
  expect_values(kiln::arange(0, 10, 3), {0, 3, 6, 9});
  expect_values(kiln::arange(1, 10, 3), {1, 4, 7});
  EXPECT_EQ(kiln::arange(0).numel(), 0);
  EXPECT_EQ(kiln::arange(3, 3).numel(), 0);
  Tensor ai = kiln::arange(4, kInt);
  EXPECT_EQ(ai.dtype(), kInt);
  expect_values(ai, {0, 1, 2, 3});
  Tensor af = kiln::arange(3, kFloat);
  EXPECT_EQ(af.dtype(), kFloat);
  expect_values(af, {0, 1, 2});
}

TEST(Arange, NegativeStep) {
  expect_values(kiln::arange(10, 0, -3), {10, 7, 4, 1});
  expect_values(kiln::arange(5, -1, -1), {5, 4, 3, 2, 1, 0});
  expect_values(kiln::arange(1.0, -1.0, -0.5), {1.0, 0.5, 0.0, -0.5});
  EXPECT_EQ(kiln::arange(10, 0, -3).dtype(), kLong);
}

TEST(Arange, FloatArguments) {
  Tensor a = kiln::arange(0, 1, 0.25);
  EXPECT_EQ(a.dtype(), kFloat);
  expect_values(a, {0, 0.25, 0.5, 0.75});
  expect_values(kiln::arange(1, 2.5), {1, 2});  // ceil((2.5 - 1) / 1) = 2 elements
  expect_values(kiln::arange(2.5), {0, 1, 2});
  Tensor d = kiln::arange(0.0, 0.35, 0.1, kDouble);
  EXPECT_EQ(d.dtype(), kDouble);
  expect_values(d, {0.0, 0.1, 0.2, 0.3}, 1e-15);
  // 1025 elements against an independent reference.
  Tensor big = kiln::arange(-3.0, 3.0 + 1e-9, 6.0 / 1024, kDouble);
  ASSERT_EQ(big.numel(), 1025);
  std::vector<double> ref(1025);
  for (int i = 0; i < 1025; ++i) ref[i] = -3.0 + i * (6.0 / 1024);
  expect_values(big, ref, 1e-12);
}

TEST(Arange, Errors) {
  EXPECT_KILN_ERROR(kiln::arange(0, 5, 0), {"[arange]", "step"});
  EXPECT_KILN_ERROR(kiln::arange(0, 5, -1), {"[arange]"});
  EXPECT_KILN_ERROR(kiln::arange(5, 0, 1), {"[arange]"});
  EXPECT_KILN_ERROR(kiln::arange(-5), {"[arange]"});
  EXPECT_KILN_ERROR(kiln::arange(0.0, 1.0, 0.0), {"[arange]"});
  EXPECT_KILN_ERROR(kiln::arange(0.0, INFINITY), {"[arange]"});
}

TEST(Linspace, EndpointsAndSpacing) {
  Tensor l = kiln::linspace(0, 1, 5);
  EXPECT_EQ(l.dtype(), kFloat);
  expect_values(l, {0, 0.25, 0.5, 0.75, 1});
  for (int64_t steps : {2, 3, 7, 33, 1025}) {
    SCOPED_TRACE(steps);
    Tensor t = kiln::linspace(-1.3, 2.9, steps, kDouble);
    ASSERT_EQ(t.numel(), steps);
    std::vector<double> v = to_vector(t);
    EXPECT_EQ(v.front(), -1.3);
    EXPECT_EQ(v.back(), 2.9);
    for (int64_t i = 0; i < steps; ++i)
      ASSERT_NEAR(v[i], -1.3 + 4.2 * static_cast<double>(i) / static_cast<double>(steps - 1), 1e-12)
          << "element " << i;
  }
  Tensor desc = kiln::linspace(5, -5, 11, kFloat);
  expect_values(desc, {5, 4, 3, 2, 1, 0, -1, -2, -3, -4, -5}, 1e-6);
  expect_values(kiln::linspace(3, 7, 1), {3});
  EXPECT_EQ(kiln::linspace(0, 1, 0).numel(), 0);
  Tensor li = kiln::linspace(0, 10, 6, kLong);
  EXPECT_EQ(li.dtype(), kLong);
  expect_values(li, {0, 2, 4, 6, 8, 10});
  EXPECT_KILN_ERROR(kiln::linspace(0, 1, -1), {"[linspace]", "-1"});
}

TEST(Eye, SquareAndRectangular) {
  for (auto [n, m] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 1}, {3, 3}, {2, 4}, {4, 2}, {3, 0}}) {
    SCOPED_TRACE(::testing::Message() << n << "x" << m);
    Tensor e = n == m ? kiln::eye(n) : kiln::eye(n, m);
    EXPECT_EQ(e.dtype(), kFloat);
    ASSERT_EQ(e.sizes().vec(), (std::vector<int64_t>{n, m}));
    std::vector<double> v = to_vector(e);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) EXPECT_EQ(v[i * m + j], i == j ? 1.0 : 0.0) << i << "," << j;
  }
  Tensor b = kiln::eye(3, kBool);
  EXPECT_EQ(b.dtype(), kBool);
  EXPECT_EQ(to_vector(b), (std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(kiln::eye(2, 3, kInt).dtype(), kInt);
  EXPECT_KILN_ERROR(kiln::eye(-1), {"[eye]", "-1"});
  EXPECT_KILN_ERROR(kiln::eye(2, -3), {"[eye]", "-3"});
}

// ---- random -------------------------------------------------------------------------------------

double mean_of(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
double std_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

TEST(Random, RandRangeAndMoments) {
  manual_seed(7);
  for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor r = kiln::rand({100000}, dt);
    EXPECT_EQ(r.dtype(), dt);
    std::vector<double> v = to_vector(r);
    // [0, 1) for every dtype: libtorch draws half/bfloat16 on their own grid, never 1.0.
    int64_t ones = std::count(v.begin(), v.end(), 1.0);
    EXPECT_EQ(ones, 0) << ones << " samples equal 1.0";
    for (double x : v) ASSERT_TRUE(x >= 0.0 && x <= 1.0) << x;
    EXPECT_NEAR(mean_of(v), 0.5, 0.01);
    EXPECT_NEAR(std_of(v), std::sqrt(1.0 / 12.0), 0.01);
    // Each tenth of [0, 1) gets about a tenth of the samples.
    std::vector<int> bins(10, 0);
    for (double x : v) ++bins[std::min(9, static_cast<int>(x * 10))];
    if (dt == kFloat || dt == kDouble) {
      for (int c : bins) EXPECT_NEAR(c, 10000, 600);
    }
  }
  Tensor r2 = kiln::rand({3, 4, 5});
  EXPECT_EQ(r2.sizes().vec(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(r2.dtype(), kFloat);
  EXPECT_EQ(kiln::rand({0}).numel(), 0);
  EXPECT_KILN_ERROR(kiln::rand({3}, kLong), {"[rand]", "int64"});
}

TEST(Random, RandnMoments) {
  manual_seed(11);
  for (ScalarType dt : {kFloat, kDouble}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<double> v = to_vector(kiln::randn({100000}, dt));
    EXPECT_NEAR(mean_of(v), 0.0, 0.02);
    EXPECT_NEAR(std_of(v), 1.0, 0.02);
    int64_t within1 = std::count_if(v.begin(), v.end(), [](double x) { return std::abs(x) < 1; });
    EXPECT_NEAR(static_cast<double>(within1) / 1e5, 0.6827, 0.01);
    for (double x : v) ASSERT_TRUE(std::isfinite(x));
  }
  EXPECT_KILN_ERROR(kiln::randn({3}, kInt), {"[randn]", "int32"});
}

TEST(Random, ManualSeedReproducibility) {
  manual_seed(123);
  Tensor a = kiln::rand({1000});
  Tensor b = kiln::randn({1000});
  Tensor c = kiln::randint(0, 100, {1000});
  Tensor d = kiln::randperm(100);
  Tensor a2 = kiln::rand({1000});
  EXPECT_FALSE(close(a, a2, 0, 0)) << "consecutive draws must differ";
  manual_seed(123);
  EXPECT_TRUE(close(kiln::rand({1000}), a, 0, 0));
  EXPECT_TRUE(close(kiln::randn({1000}), b, 0, 0));
  EXPECT_TRUE(close(kiln::randint(0, 100, {1000}), c, 0, 0));
  EXPECT_TRUE(close(kiln::randperm(100), d, 0, 0));
  EXPECT_TRUE(close(kiln::rand({1000}), a2, 0, 0));
  manual_seed(124);
  EXPECT_FALSE(close(kiln::rand({1000}), a, 0, 0)) << "a different seed must give other numbers";
  // Results do not depend on the thread count.
  int saved = get_num_threads();
  set_num_threads(1);
  manual_seed(5);
  Tensor s1 = kiln::randn({200000});
  set_num_threads(4);
  manual_seed(5);
  Tensor s4 = kiln::randn({200000});
  set_num_threads(saved);
  EXPECT_TRUE(close(s1, s4, 0, 0));
}

TEST(Random, RandintRangeAndDtype) {
  manual_seed(3);
  Tensor r = kiln::randint(10, {20000});
  EXPECT_EQ(r.dtype(), kLong);
  std::vector<int> count(10, 0);
  for (double x : to_vector(r)) {
    ASSERT_TRUE(x >= 0 && x < 10 && x == std::floor(x)) << x;
    ++count[static_cast<int>(x)];
  }
  for (int c : count) EXPECT_NEAR(c, 2000, 250);
  Tensor n = kiln::randint(-5, 5, {2, 500}, kInt);
  EXPECT_EQ(n.dtype(), kInt);
  EXPECT_EQ(n.sizes().vec(), (std::vector<int64_t>{2, 500}));
  std::set<double> seen;
  for (double x : to_vector(n)) {
    ASSERT_TRUE(x >= -5 && x < 5) << x;
    seen.insert(x);
  }
  EXPECT_EQ(seen.size(), 10u);
  Tensor f = kiln::randint(0, 3, {100}, kFloat);
  EXPECT_EQ(f.dtype(), kFloat);
  for (double x : to_vector(f)) ASSERT_TRUE(x == 0 || x == 1 || x == 2) << x;
  Tensor big = kiln::randint(int64_t{1} << 40, (int64_t{1} << 40) + 3, {100});
  for (double x : to_vector(big)) ASSERT_TRUE(x >= std::ldexp(1, 40) && x < std::ldexp(1, 40) + 3);
  EXPECT_KILN_ERROR(kiln::randint(5, 5, {3}), {"[randint]", "5"});
  EXPECT_KILN_ERROR(kiln::randint(0, {3}), {"[randint]"});
}

TEST(Random, RandpermIsAPermutation) {
  manual_seed(9);
  for (int64_t n : {0, 1, 2, 10, 1000}) {
    SCOPED_TRACE(n);
    Tensor p = kiln::randperm(n);
    EXPECT_EQ(p.dtype(), kLong);
    ASSERT_EQ(p.numel(), n);
    std::vector<double> v = to_vector(p);
    std::sort(v.begin(), v.end());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(v[i], static_cast<double>(i));
  }
  std::vector<double> v = to_vector(kiln::randperm(1000));
  int64_t fixed = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed += v[i] == static_cast<double>(i);
  EXPECT_LT(fixed, 10) << "a random permutation of 1000 has ~1 fixed point";
  EXPECT_EQ(kiln::randperm(5, kInt).dtype(), kInt);
  EXPECT_KILN_ERROR(kiln::randperm(-1), {"[randperm]", "-1"});
}

// ---- from_blob ----------------------------------------------------------------------------------

TEST(FromBlob, SharesMemory) {
  float buf[6] = {0, 1, 2, 3, 4, 5};
  Tensor t = kiln::from_blob(buf, {2, 3}, kFloat);
  EXPECT_EQ(t.data_ptr(), static_cast<void*>(buf));
  EXPECT_EQ(t.sizes().vec(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(to_vector(t), (std::vector<double>{0, 1, 2, 3, 4, 5}));
  t.mul_(2);
  EXPECT_EQ(buf[5], 10.0f);
  buf[0] = -7;
  EXPECT_EQ(t.select(0, 0).select(0, 0).item<float>(), -7.0f);
  // Views of a blob tensor see the same memory.
  t.t().select(0, 1).fill_(100);
  EXPECT_EQ(buf[1], 100.0f);
  EXPECT_EQ(buf[4], 100.0f);
}

TEST(FromBlob, Strided) {
  double buf[12];
  for (int i = 0; i < 12; ++i) buf[i] = i;
  // Column-major 3x4 view of the buffer.
  Tensor t = kiln::from_blob(buf, {3, 4}, {1, 3}, kDouble);
  EXPECT_FALSE(t.is_contiguous());
  std::vector<double> v = to_vector(t);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(v[r * 4 + c], buf[r + 3 * c]);
  // Every other element.
  Tensor s = kiln::from_blob(buf, {6}, {2}, kDouble);
  EXPECT_EQ(to_vector(s), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  s.add_(1000);
  EXPECT_EQ(buf[2], 1002.0);
  EXPECT_EQ(buf[3], 3.0);
  EXPECT_KILN_ERROR(kiln::from_blob(buf, {2, 3}, {1}, kDouble), {"[from_blob]"});
}

TEST(FromBlob, DeleterRunsWhenTheLastViewDies) {
  int calls = 0;
  std::vector<int32_t> data = {1, 2, 3, 4};
  {
    Tensor view;
    {
      Tensor t = kiln::from_blob(
          data.data(), {4},
          [&](void* p) {
            EXPECT_EQ(p, static_cast<void*>(data.data()));
            ++calls;
          },
          kInt);
      EXPECT_EQ(t.dtype(), kInt);
      view = t.slice(0, 1, 3);
    }
    EXPECT_EQ(calls, 0) << "a view keeps the blob alive";
    EXPECT_EQ(to_vector(view), (std::vector<double>{2, 3}));
  }
  EXPECT_EQ(calls, 1);
}

// ---- tensor({...})
// --------------------------------------------------------------------------------

TEST(TensorLiteral, NestedListsAndDtypes) {
  Tensor a = kiln::tensor({{1, 2, 3}, {4, 5, 6}});
  EXPECT_EQ(a.dtype(), kLong);
  EXPECT_EQ(a.sizes().vec(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(to_vector(a), (std::vector<double>{1, 2, 3, 4, 5, 6}));

  Tensor f = kiln::tensor({1.5, -2.0});
  EXPECT_EQ(f.dtype(), kFloat);
  EXPECT_EQ(to_vector(f), (std::vector<double>{1.5, -2.0}));

  Tensor mixed = kiln::tensor({1, 2.5, 3});
  EXPECT_EQ(mixed.dtype(), kFloat);
  EXPECT_EQ(to_vector(mixed), (std::vector<double>{1, 2.5, 3}));
  Tensor mixed2 = kiln::tensor({{1, 2}, {3.5, 4}});
  EXPECT_EQ(mixed2.dtype(), kFloat);
  EXPECT_EQ(to_vector(mixed2), (std::vector<double>{1, 2, 3.5, 4}));

  Tensor b = kiln::tensor({true, false, true});
  EXPECT_EQ(b.dtype(), kBool);
  EXPECT_EQ(to_vector(b), (std::vector<double>{1, 0, 1}));

  Tensor s = kiln::tensor(3.5);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<double>(), 3.5);
  EXPECT_EQ(kiln::tensor(4).dtype(), kLong);

  Tensor three = kiln::tensor({{{1}, {2}}, {{3}, {4}}});
  EXPECT_EQ(three.sizes().vec(), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(to_vector(three), (std::vector<double>{1, 2, 3, 4}));

  Tensor d = kiln::tensor({1, 2}, kDouble);
  EXPECT_EQ(d.dtype(), kDouble);
  Tensor h = kiln::tensor({0.5, 0.25}, kHalf);
  EXPECT_EQ(h.dtype(), kHalf);
  EXPECT_EQ(to_vector(h), (std::vector<double>{0.5, 0.25}));

  Tensor v = kiln::tensor(std::vector<float>{1.f, 2.f, 3.f});
  EXPECT_EQ(v.dtype(), kFloat);
  EXPECT_EQ(to_vector(v), (std::vector<double>{1, 2, 3}));
  Tensor vi = kiln::tensor(std::vector<int64_t>{int64_t{1} << 62, -3});
  EXPECT_EQ(vi.dtype(), kLong);
  EXPECT_EQ(vi.data_ptr<int64_t>()[0], int64_t{1} << 62);  // exact, not through double
  EXPECT_EQ(vi.data_ptr<int64_t>()[1], -3);
}

TEST(TensorLiteral, RaggedListsThrow) {
  EXPECT_KILN_ERROR(kiln::tensor({{1, 2}, {3}}), {"[tensor]"});
  EXPECT_KILN_ERROR(kiln::tensor({{1, 2}, {3, 4, 5}}), {"[tensor]"});
  EXPECT_KILN_ERROR(kiln::tensor({{{1}, {2}}, {{3}, {4, 5}}}), {"[tensor]"});
}

// ---- options ------------------------------------------------------------------------------------

TEST(FactoryOptions, RequiresGrad) {
  EXPECT_TRUE(kiln::zeros({2}, kiln::requires_grad()).requires_grad());
  EXPECT_TRUE(kiln::ones({2}, kiln::dtype(kDouble).requires_grad(true)).requires_grad());
  EXPECT_TRUE(kiln::full({2}, 1.5, kiln::requires_grad()).requires_grad());
  EXPECT_TRUE(kiln::rand({2}, kiln::requires_grad()).requires_grad());
  EXPECT_TRUE(kiln::randn({2}, kiln::requires_grad()).requires_grad());
  EXPECT_TRUE(kiln::empty({2}, kiln::requires_grad()).requires_grad());
  EXPECT_TRUE(kiln::eye(2, kiln::requires_grad()).requires_grad());
  EXPECT_TRUE(kiln::linspace(0, 1, 3, kiln::requires_grad()).requires_grad());
  EXPECT_TRUE(kiln::tensor({1.0, 2.0}, kiln::requires_grad()).requires_grad());
  EXPECT_FALSE(kiln::zeros({2}).requires_grad());
  Tensor t = kiln::zeros({2});
  t.set_requires_grad(true);
  EXPECT_TRUE(t.requires_grad());
  EXPECT_KILN_ERROR(kiln::zeros({2}, kiln::dtype(kLong).requires_grad(true)),
                    {"requires_grad", "int64"});
  EXPECT_KILN_ERROR(kiln::ones({2}, kInt).set_requires_grad(true), {"int32"});
}

// Runs fn in a child process and passes only when it throws kiln::Error there; a crash (e.g. a
// write through a null or undersized buffer) fails the test without taking the binary down.
void expect_error_in_child(const std::function<void()>& fn) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        try {
          fn();
        } catch (const Error&) {
          std::exit(0);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(FactoryOptions, SizesWhoseByteCountOverflowsThrow) {
  // libtorch: "Storage size calculation overflowed" (or an allocation error), never a tensor
  // whose numel and storage disagree.
  const int64_t big = int64_t{1} << 62;
  {
    SCOPED_TRACE("empty({2^62}) float");
    expect_error_in_child([&] { kiln::empty({big}, kFloat); });
  }
  {
    SCOPED_TRACE("empty({2^40, 2^40})");
    expect_error_in_child([&] { kiln::empty({int64_t{1} << 40, int64_t{1} << 40}); });
  }
  {
    SCOPED_TRACE("ones({2^61}) double");
    expect_error_in_child([&] { kiln::ones({int64_t{1} << 61}, kDouble); });
  }
  {
    SCOPED_TRACE("arange(2^61)");
    expect_error_in_child([&] { kiln::arange(int64_t{1} << 61); });
  }
  {
    SCOPED_TRACE("linspace(0, 1, 2^62)");
    expect_error_in_child([&] { kiln::linspace(0, 1, big); });
  }
}

TEST(FactoryOptions, CudaDeviceThrows) {
  TensorOptions cuda = kiln::device(Device(kCUDA));
  EXPECT_KILN_ERROR(kiln::empty({2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::zeros({2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::ones({2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::full({2}, 1, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::arange(3, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::linspace(0, 1, 3, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::eye(3, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::rand({2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::randn({2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::randint(3, {2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::randperm(3, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::tensor({1, 2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::zeros_like(kiln::zeros({2}), cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::zeros({2}, kiln::dtype(kFloat).device(Device("cuda:0"))), {"cuda"});
  float buf[2] = {0, 0};
  EXPECT_KILN_ERROR(kiln::from_blob(buf, {2}, cuda), {"cuda"});
  EXPECT_KILN_ERROR(kiln::zeros({2}).to(Device(kCUDA)), {"cuda"});
  // CPU spelled explicitly is fine.
  EXPECT_TRUE(kiln::zeros({2}, kiln::device(Device("cpu"))).is_cpu());
  EXPECT_EQ(kiln::zeros({2}).device(), Device(kCPU));
}

}  // namespace
}  // namespace kiln
