// Tests for sort, argsort and topk of the eager CPU core (src/tensor/sort.cpp) against a
// std::stable_sort reference over float64 copies of every line, including ties (stability),
// NaN placement, strided inputs, zero-size and 0-dim tensors, and the error paths.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "test_util.h"

namespace kiln::testing {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

using Values = std::vector<double>;

Tensor from_values(const std::vector<int64_t>& sizes, const Values& v) {
  Tensor t = kiln::empty(sizes, kiln::dtype(kDouble));
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t;
}

// Positions of a line in stable sorted order; NaN is larger than every number.
std::vector<int64_t> ref_order(const Values& v, bool descending) {
  std::vector<int64_t> pos(v.size());
  std::iota(pos.begin(), pos.end(), 0);
  auto key_less = [](double a, double b) {
    if (std::isnan(a)) return false;
    return std::isnan(b) || a < b;
  };
  std::stable_sort(pos.begin(), pos.end(), [&](int64_t a, int64_t b) {
    return descending ? key_less(v[b], v[a]) : key_less(v[a], v[b]);
  });
  return pos;
}

// For every line of x along dim: the first k entries of the stable order, as (values, indices)
// float64 tensors shaped like x with size k along dim.
std::pair<Tensor, Tensor> reference(const Tensor& x, int64_t dim, int64_t k, bool descending) {
  const int64_t nd = x.dim();
  const int64_t d = nd == 0 ? 0 : (dim < 0 ? dim + nd : dim);
  int64_t A = 1, R = 1, B = 1;
  for (int64_t i = 0; i < nd; ++i) (i < d ? A : (i == d ? R : B)) *= x.size(i);
  Values v = to_vector(x), vals(A * k * B), idx(A * k * B);
  for (int64_t a = 0; a < A; ++a) {
    for (int64_t b = 0; b < B; ++b) {
      Values line(R);
      for (int64_t r = 0; r < R; ++r) line[r] = v[(a * R + r) * B + b];
      std::vector<int64_t> order = ref_order(line, descending);
      for (int64_t r = 0; r < k; ++r) {
        vals[(a * k + r) * B + b] = line[order[r]];
        idx[(a * k + r) * B + b] = static_cast<double>(order[r]);
      }
    }
  }
  std::vector<int64_t> sizes = x.sizes().vec();
  if (nd > 0) sizes[d] = k;
  return {from_values(sizes, vals), from_values(sizes, idx)};
}

const std::vector<std::vector<int64_t>> kShapes = {
    {}, {1}, {7}, {33}, {1025}, {3, 5}, {4, 1, 6}, {2, 3, 40}, {0, 3}, {3, 0, 2}};

// Every dim (positive and negative) of every shape, contiguous and strided.
void for_each_case(ScalarType dt, double lo, double hi,
                   const std::function<void(const Tensor&, int64_t)>& fn) {
  for (const auto& shape : kShapes) {
    Tensor base = random_tensor(shape, dt, lo, hi);
    for (const Tensor& x : {base, non_contiguous(base)}) {
      const int64_t nd = x.dim();
      for (int64_t d = std::min<int64_t>(-1, -nd); d < std::max<int64_t>(nd, 1); ++d) {
        SCOPED_TRACE(::testing::Message()
                     << "dtype " << dt << " shape " << shape_str(x.sizes())
                     << (x.is_contiguous() ? " contiguous" : " strided") << " dim " << d);
        fn(x, d);
      }
    }
  }
}

TEST(Sort, MatchesStableReference) {
  // Integer ranges are narrow so lines are full of ties, which checks stability.
  for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kChar, kByte, kBool, kHalf, kBFloat16}) {
    for_each_case(dt, -3, 3, [dt](const Tensor& x, int64_t d) {
      for (bool descending : {false, true}) {
        auto [values, indices] = kiln::sort(x, d, descending);
        const int64_t n = x.dim() == 0 ? 1 : x.size(d);
        auto [want_v, want_i] = reference(x, d, n, descending);
        EXPECT_EQ(values.dtype(), dt);
        EXPECT_EQ(indices.dtype(), kLong);
        EXPECT_TRUE(close(values, want_v, 0, 0)) << "descending " << descending;
        EXPECT_TRUE(close(indices, want_i, 0, 0)) << "descending " << descending;
        EXPECT_TRUE(close(kiln::argsort(x, d, descending), want_i, 0, 0));
      }
    });
  }
}

TEST(Sort, NanSortsAsTheLargestValue) {
  Tensor x = from_values({2, 6}, {3, kNan, -1, kInf, kNan, -kInf, 0, 2, kNan, 2, -5, 1});
  for (ScalarType dt : {kFloat, kDouble, kHalf}) {
    Tensor xt = x.to(dt);
    for (bool descending : {false, true}) {
      auto [values, indices] = kiln::sort(xt, 1, descending);
      auto [want_v, want_i] = reference(xt, 1, 6, descending);
      EXPECT_TRUE(close(values, want_v, 0, 0));
      EXPECT_TRUE(close(indices, want_i, 0, 0));
    }
    // topk(largest) puts NaN first, like libtorch.
    auto [tv, ti] = kiln::topk(xt, 2, 1);
    EXPECT_TRUE(std::isnan(tv[0][0].item<double>()));
    EXPECT_TRUE(std::isnan(tv[0][1].item<double>()));
    EXPECT_TRUE(std::isnan(tv[1][0].item<double>()));
    EXPECT_EQ(tv[1][1].item<double>(), 2.0);
  }
}

TEST(Sort, LongLinesAndInnerDims) {
  Tensor x = random_tensor({3, 20000}, kFloat);
  auto [v, i] = kiln::sort(x, 1, true);
  auto [wv, wi] = reference(x, 1, 20000, true);
  EXPECT_TRUE(close(v, wv, 0, 0));
  EXPECT_TRUE(close(i, wi, 0, 0));
  Tensor y = random_tensor({50, 300}, kInt, -20, 20);
  auto [yv, yi] = kiln::sort(y, 0);
  auto [ywv, ywi] = reference(y, 0, 50, false);
  EXPECT_TRUE(close(yv, ywv, 0, 0));
  EXPECT_TRUE(close(yi, ywi, 0, 0));
}

// topk returns the first k of the stable order: the k largest (or smallest) values, ties to the
// lower index.
TEST(Topk, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kByte, kHalf}) {
    for_each_case(dt, -3, 3, [dt](const Tensor& x, int64_t d) {
      const int64_t n = x.dim() == 0 ? 1 : x.size(d);
      for (int64_t k : {int64_t{0}, int64_t{1}, n / 2, n}) {
        if (k > n || (x.dim() == 0 && k == 0)) continue;
        for (bool largest : {true, false}) {
          auto [values, indices] = kiln::topk(x, k, d, largest);
          auto [want_v, want_i] = reference(x, d, k, largest);
          EXPECT_EQ(values.dtype(), dt);
          EXPECT_EQ(indices.dtype(), kLong);
          EXPECT_TRUE(close(values, want_v, 0, 0)) << "k " << k << " largest " << largest;
          EXPECT_TRUE(close(indices, want_i, 0, 0)) << "k " << k << " largest " << largest;
        }
      }
    });
  }
  Tensor x = random_tensor({4, 10});
  auto [a, ai] = kiln::topk(x, 3, 1, true, false);
  auto [wa, wai] = reference(x, 1, 3, true);
  EXPECT_TRUE(close(a, wa, 0, 0));
}

TEST(Sort, ErrorsNameTheOpAndTheProblem) {
  Tensor x = random_tensor({2, 3});
  expect_error([&] { kiln::sort(x, 2); }, {"[sort]", "out of range", "got dim 2"});
  expect_error([&] { kiln::argsort(x, -3); }, {"[sort]", "out of range"});
  expect_error([&] { kiln::topk(x, 4, 1); }, {"[topk]", "k out of range", "got k = 4", "<= 3"});
  expect_error([&] { kiln::topk(x, -1); }, {"[topk]", "k out of range", "got k = -1"});
  expect_error([&] { kiln::topk(x, 1, 2); }, {"[topk]", "out of range", "got dim 2"});
  expect_error([&] { kiln::topk(random_tensor({4}, kBool), 1); }, {"[topk]", "bool"});
  expect_error([&] { kiln::topk(kiln::empty({0}, kiln::dtype(kFloat)), 1); },
               {"[topk]", "got k = 1", "<= 0"});
}

}  // namespace
}  // namespace kiln::testing
