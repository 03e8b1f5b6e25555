// Tests for the view ops (src/tensor/views.cpp): view/reshape/permute/transpose/t/squeeze/
// unsqueeze/expand/narrow/select/slice/flatten/unfold/as_strided/contiguous. Each result is
// checked element by element against index arithmetic done in the test, storage sharing is
// checked by writing through the view, and in-place ops on views must respect strides.
#include <algorithm>
#include <numeric>
#include <vector>

#include "test_util.h"

namespace kiln {
namespace {

// expect_error with the statement and its line in the failure trace.
using testing::close;
using testing::expect_error;
using testing::to_vector;

using Sizes = std::vector<int64_t>;

int64_t numel_of(const Sizes& s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<>());
}

// 0, 1, 2, ... as float64 of the given shape (element value == row-major index).
Tensor iota(const Sizes& sizes, ScalarType dt = kDouble) {
  return kiln::arange(numel_of(sizes), kDouble).reshape(sizes).to(dt);
}

std::vector<int64_t> unravel(int64_t f, const Sizes& sizes) {
  std::vector<int64_t> c(sizes.size());
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    c[d] = f % sizes[d];
    f /= sizes[d];
  }
  return c;
}
int64_t ravel(const std::vector<int64_t>& c, const Sizes& sizes) {
  int64_t f = 0;
  for (size_t d = 0; d < sizes.size(); ++d) f = f * sizes[d] + c[d];
  return f;
}

// Checks that view has `sizes` and element at coordinate c equals base_flat[index_of(c)].
template <typename F>
void expect_view(const Tensor& view, const Sizes& sizes, const std::vector<double>& base_flat,
                 const F& index_of, const char* what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(view.sizes().vec(), sizes) << what;
  std::vector<double> v = to_vector(view);
  for (int64_t i = 0; i < numel_of(sizes); ++i) {
    int64_t src = index_of(unravel(i, sizes));
    ASSERT_EQ(v[i], base_flat[src]) << what << ": element " << shape_str(unravel(i, sizes));
  }
}

bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.impl()->storage() == b.impl()->storage();
}

// ---- view / reshape -----------------------------------------------------------------------------

TEST(View, ViewAndReshapeOfContiguous) {
  Tensor x = iota({2, 3, 4});
  auto flat = to_vector(x);
  for (Sizes s : std::vector<Sizes>{{24}, {4, 6}, {2, 12}, {2, 3, 2, 2}, {1, 24, 1}, {24, 1}}) {
    SCOPED_TRACE(shape_str(s));
    Tensor v = x.view(s);
    EXPECT_TRUE(shares_storage(v, x));
    EXPECT_TRUE(v.is_contiguous());
    expect_view(
        v, s, flat, [&](const std::vector<int64_t>& c) { return ravel(c, s); }, "view");
    Tensor r = x.reshape(s);
    EXPECT_TRUE(shares_storage(r, x));
    EXPECT_EQ(r.data_ptr(), x.data_ptr());
  }
  // -1 is inferred.
  EXPECT_EQ(x.view({-1}).sizes().vec(), (Sizes{24}));
  EXPECT_EQ(x.view({4, -1}).sizes().vec(), (Sizes{4, 6}));
  EXPECT_EQ(x.reshape({-1, 2, 3}).sizes().vec(), (Sizes{4, 2, 3}));
  EXPECT_EQ(x.view_as(kiln::zeros({6, 4})).sizes().vec(), (Sizes{6, 4}));
  EXPECT_EQ(x.reshape_as(kiln::zeros({3, 8})).sizes().vec(), (Sizes{3, 8}));
  // Zero-size and zero-dim.
  Tensor e = kiln::zeros({0, 3});
  EXPECT_EQ(e.view({3, 0}).sizes().vec(), (Sizes{3, 0}));
  EXPECT_EQ(e.reshape({-1, 5}).sizes().vec(), (Sizes{0, 5}));
  Tensor s = kiln::full({}, 4.0);
  EXPECT_EQ(s.view({1, 1}).sizes().vec(), (Sizes{1, 1}));
  EXPECT_EQ(s.reshape({-1}).sizes().vec(), (Sizes{1}));
  EXPECT_EQ(kiln::zeros({1}).view({}).dim(), 0);
}

TEST(View, ViewOfNonContiguousWhereStridesAllow) {
  // Slicing rows keeps rows contiguous: splitting/merging the last dim is still a view.
  Tensor base = iota({6, 8});
  auto flat = to_vector(base);
  Tensor rows = base.slice(0, 1, 5);  // [4, 8], offset 8
  Tensor v = rows.view({4, 2, 4});
  EXPECT_TRUE(shares_storage(v, base));
  expect_view(
      v, {4, 2, 4}, flat,
      [](const std::vector<int64_t>& c) { return (c[0] + 1) * 8 + c[1] * 4 + c[2]; },
      "view of row slice");
  // A transposed tensor can add/remove size-1 dims by view.
  Tensor t = base.t();
  Tensor u = t.view({8, 1, 6});
  expect_view(
      u, {8, 1, 6}, flat, [](const std::vector<int64_t>& c) { return c[2] * 8 + c[0]; },
      "view of transpose with a unit dim");
  // Merging dims of a column slice that are still chunk-contiguous.
  Tensor cols = iota({3, 4, 5}).slice(2, 0, 5);  // still contiguous
  EXPECT_TRUE(cols.view({12, 5}).is_contiguous());
}

TEST(View, ReshapeOfTransposeCopiesAndViewThrows) {
  Tensor x = iota({3, 4});
  auto flat = to_vector(x);
  Tensor t = x.t();
  Tensor r = t.reshape({12});
  EXPECT_FALSE(shares_storage(r, x)) << "reshape of a transposed tensor must copy";
  expect_view(
      r, {12}, flat, [](const std::vector<int64_t>& c) { return (c[0] % 3) * 4 + c[0] / 3; },
      "reshape of transpose");
  EXPECT_KILN_ERROR(t.view({12}), {"[view]", "view size", "[4, 3]"});
  EXPECT_KILN_ERROR(t.view({-1}), {"view size"});
  // reshape that only needs a view on a transposed tensor still shares.
  Tensor r2 = t.reshape({4, 1, 3});
  EXPECT_TRUE(shares_storage(r2, x));
}

TEST(View, ShapeErrors) {
  Tensor x = iota({2, 3});
  EXPECT_KILN_ERROR(x.view({4}), {"[view]", "[4]", "6"});
  EXPECT_KILN_ERROR(x.view({-1, -1}), {"[view]", "-1"});
  EXPECT_KILN_ERROR(x.view({-1, 4}), {"[view]", "6"});
  EXPECT_KILN_ERROR(x.reshape({5}), {"[reshape]", "[5]", "6"});
  EXPECT_KILN_ERROR(x.reshape({-2, 3}), {"[reshape]"});
  EXPECT_KILN_ERROR(kiln::zeros({0, 3}).reshape({-1, 0}), {"[reshape]"});
}

// ---- permute / transpose / t --------------------------------------------------------------------

TEST(View, PermuteTransposeT) {
  Sizes s = {2, 3, 4};
  Tensor x = iota(s);
  auto flat = to_vector(x);
  Tensor p = x.permute({2, 0, 1});
  EXPECT_TRUE(shares_storage(p, x));
  EXPECT_FALSE(p.is_contiguous());
  expect_view(
      p, {4, 2, 3}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[1], c[2], c[0]}, s);
      },
      "permute(2,0,1)");
  expect_view(
      x.permute({-1, -2, -3}), {4, 3, 2}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[2], c[1], c[0]}, s);
      },
      "permute(-1,-2,-3)");
  expect_view(
      kiln::permute(x, {0, 2, 1}), {2, 4, 3}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], c[2], c[1]}, s);
      },
      "free permute");
  expect_view(
      x.transpose(0, 2), {4, 3, 2}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[2], c[1], c[0]}, s);
      },
      "transpose(0,2)");
  expect_view(
      kiln::transpose(x, -1, 1), {2, 4, 3}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], c[2], c[1]}, s);
      },
      "transpose(-1,1)");
  EXPECT_EQ(x.transpose(1, 1).sizes().vec(), s);
  Tensor m = iota({3, 5});
  auto mflat = to_vector(m);
  expect_view(
      m.t(), {5, 3}, mflat, [](const std::vector<int64_t>& c) { return c[1] * 5 + c[0]; }, "t()");
  EXPECT_EQ(iota({4}).t().sizes().vec(), (Sizes{4}));
  EXPECT_EQ(kiln::full({}, 1.0).t().dim(), 0);
  EXPECT_EQ(kiln::full({}, 1.0).transpose(0, -1).dim(), 0);
  EXPECT_KILN_ERROR(x.t(), {"[t]", "3"});
  EXPECT_KILN_ERROR(x.permute({0, 1}), {"[permute]"});
  EXPECT_KILN_ERROR(x.permute({0, 1, 1}), {"[permute]"});
  EXPECT_KILN_ERROR(x.permute({0, 1, 3}), {"[permute]", "3"});
  EXPECT_KILN_ERROR(x.transpose(0, 3), {"[transpose]", "3"});
}

// ---- squeeze / unsqueeze ------------------------------------------------------------------------

TEST(View, SqueezeUnsqueeze) {
  Tensor x = iota({1, 3, 1, 2});
  auto flat = to_vector(x);
  EXPECT_EQ(x.squeeze().sizes().vec(), (Sizes{3, 2}));
  EXPECT_EQ(x.squeeze(0).sizes().vec(), (Sizes{3, 1, 2}));
  EXPECT_EQ(x.squeeze(2).sizes().vec(), (Sizes{1, 3, 2}));
  EXPECT_EQ(x.squeeze(-2).sizes().vec(), (Sizes{1, 3, 2}));
  EXPECT_EQ(x.squeeze(1).sizes().vec(), (Sizes{1, 3, 1, 2})) << "non-unit dims stay";
  EXPECT_TRUE(shares_storage(x.squeeze(), x));
  expect_view(
      x.squeeze(), {3, 2}, flat, [](const std::vector<int64_t>& c) { return c[0] * 2 + c[1]; },
      "squeeze");
  Tensor y = iota({3, 4});
  auto yflat = to_vector(y);
  EXPECT_EQ(y.unsqueeze(0).sizes().vec(), (Sizes{1, 3, 4}));
  EXPECT_EQ(y.unsqueeze(1).sizes().vec(), (Sizes{3, 1, 4}));
  EXPECT_EQ(y.unsqueeze(2).sizes().vec(), (Sizes{3, 4, 1}));
  EXPECT_EQ(y.unsqueeze(-1).sizes().vec(), (Sizes{3, 4, 1}));
  EXPECT_EQ(y.unsqueeze(-3).sizes().vec(), (Sizes{1, 3, 4}));
  expect_view(
      kiln::unsqueeze(y.t(), 1), {4, 1, 3}, yflat,
      [](const std::vector<int64_t>& c) { return c[2] * 4 + c[0]; }, "unsqueeze of t");
  Tensor s = kiln::full({}, 5.0);
  EXPECT_EQ(s.unsqueeze(0).sizes().vec(), (Sizes{1}));
  EXPECT_EQ(s.squeeze().dim(), 0);
  EXPECT_EQ(s.squeeze(0).dim(), 0);
  EXPECT_EQ(kiln::zeros({1, 1}).squeeze().dim(), 0);
  EXPECT_EQ(kiln::squeeze(kiln::zeros({0, 1})).sizes().vec(), (Sizes{0}));
  EXPECT_KILN_ERROR(y.unsqueeze(3), {"[unsqueeze]", "3"});
  EXPECT_KILN_ERROR(y.unsqueeze(-4), {"[unsqueeze]", "-4"});
  EXPECT_KILN_ERROR(x.squeeze(4), {"[squeeze]", "4"});
}

// ---- expand -------------------------------------------------------------------------------------

TEST(View, Expand) {
  Tensor x = iota({3, 1});
  auto flat = to_vector(x);
  Tensor e = x.expand({2, 3, 4});
  EXPECT_TRUE(shares_storage(e, x));
  EXPECT_EQ(e.strides().vec(), (Sizes{0, 1, 0}));
  expect_view(
      e, {2, 3, 4}, flat, [](const std::vector<int64_t>& c) { return c[1]; }, "expand");
  expect_view(
      x.expand({-1, 5}), {3, 5}, flat, [](const std::vector<int64_t>& c) { return c[0]; },
      "expand with -1");
  expect_view(
      x.expand_as(kiln::zeros({3, 2})), {3, 2}, flat,
      [](const std::vector<int64_t>& c) { return c[0]; }, "expand_as");
  Tensor s = kiln::full({}, 2.0);
  EXPECT_EQ(to_vector(s.expand({2, 2})), (std::vector<double>{2, 2, 2, 2}));
  EXPECT_EQ(x.expand({0, 3, 1}).numel(), 0);
  EXPECT_EQ(kiln::zeros({1}).expand({0}).sizes().vec(), (Sizes{0}));
  EXPECT_KILN_ERROR(x.expand({3, 4}).expand({2}), {"[expand]"});
  EXPECT_KILN_ERROR(x.expand({4}), {"[expand]", "2", "1"});
  EXPECT_KILN_ERROR(x.expand({2, 4}), {"[expand]", "3"});
  EXPECT_KILN_ERROR(x.expand({-1, 3, 4}), {"[expand]", "-1"});
}

// ---- narrow / select / slice --------------------------------------------------------------------

TEST(View, NarrowAndSelect) {
  Sizes s = {4, 5, 3};
  Tensor x = iota(s);
  auto flat = to_vector(x);
  expect_view(
      x.narrow(1, 1, 3), {4, 3, 3}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], c[1] + 1, c[2]}, s);
      },
      "narrow(1,1,3)");
  expect_view(
      kiln::narrow(x, -1, -2, 2), {4, 5, 2}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], c[1], c[2] + 1}, s);
      },
      "narrow(-1,-2,2)");
  EXPECT_EQ(x.narrow(0, 4, 0).sizes().vec(), (Sizes{0, 5, 3}));
  expect_view(
      x.select(1, 2), {4, 3}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], 2, c[1]}, s);
      },
      "select(1,2)");
  expect_view(
      kiln::select(x, 0, -1), {5, 3}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({3, c[0], c[1]}, s);
      },
      "select(0,-1)");
  expect_view(
      x[2], {5, 3}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({2, c[0], c[1]}, s);
      },
      "operator[]");
  Tensor one = iota({3}).select(0, 1);
  EXPECT_EQ(one.dim(), 0);
  EXPECT_EQ(one.item<double>(), 1.0);
  EXPECT_TRUE(shares_storage(x.narrow(1, 1, 3), x));
  EXPECT_TRUE(shares_storage(x.select(1, 2), x));
  EXPECT_KILN_ERROR(x.narrow(1, 3, 3), {"[narrow]", "3", "5"});
  EXPECT_KILN_ERROR(x.narrow(1, 6, 0), {"[narrow]", "6"});
  EXPECT_KILN_ERROR(x.narrow(1, 0, -1), {"[narrow]"});
  EXPECT_KILN_ERROR(x.select(1, 5), {"[select]", "5"});
  EXPECT_KILN_ERROR(x.select(1, -6), {"[select]", "-6"});
  EXPECT_KILN_ERROR(x.select(3, 0), {"[select]", "3"});
  EXPECT_KILN_ERROR(kiln::full({}, 1.0).select(0, 0), {"[select]"});
}

TEST(View, SliceStepsNegativeAndClampedBounds) {
  Tensor x = iota({10});
  auto flat = to_vector(x);
  struct Case {
    std::optional<int64_t> start, end;
    int64_t step;
    std::vector<int64_t> want;
  };
  std::vector<Case> cases = {
      {std::nullopt, std::nullopt, 1, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
      {2, 7, 1, {2, 3, 4, 5, 6}},
      {1, std::nullopt, 3, {1, 4, 7}},
      {0, 10, 4, {0, 4, 8}},
      {-3, std::nullopt, 1, {7, 8, 9}},
      {std::nullopt, -7, 1, {0, 1, 2}},
      {-8, -2, 2, {2, 4, 6}},
      {-100, 3, 1, {0, 1, 2}},
      {5, 100, 2, {5, 7, 9}},
      {7, 3, 1, {}},
      {12, 20, 1, {}},
      {-100, -50, 1, {}},
      {9, std::nullopt, 5, {9}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "slice(0, " << (c.start ? std::to_string(*c.start) : "None") << ", "
                 << (c.end ? std::to_string(*c.end) : "None") << ", " << c.step << ")");
    Tensor s = x.slice(0, c.start, c.end, c.step);
    EXPECT_TRUE(shares_storage(s, x));
    ASSERT_EQ(s.numel(), static_cast<int64_t>(c.want.size()));
    std::vector<double> v = to_vector(s);
    for (size_t i = 0; i < c.want.size(); ++i) EXPECT_EQ(v[i], flat[c.want[i]]);
  }
  Sizes s2 = {4, 6};
  Tensor y = iota(s2);
  auto yflat = to_vector(y);
  expect_view(
      y.slice(1, 1, std::nullopt, 2), {4, 3}, yflat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], 1 + 2 * c[1]}, s2);
      },
      "slice(1,1,None,2)");
  expect_view(
      y.slice(-2, 1, 3).slice(1, std::nullopt, std::nullopt, 3), {2, 2}, yflat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0] + 1, 3 * c[1]}, s2);
      },
      "slice of slice");
  expect_view(
      y.t().slice(0, 2, 5, 2), {2, 4}, yflat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[1], 2 + 2 * c[0]}, s2);
      },
      "slice of transpose");
  EXPECT_KILN_ERROR(x.slice(0, 0, 5, 0), {"[slice]", "step"});
  EXPECT_KILN_ERROR(x.slice(0, 0, 5, -1), {"[slice]", "-1"});
  EXPECT_KILN_ERROR(x.slice(1), {"[slice]", "1"});
  EXPECT_KILN_ERROR(kiln::full({}, 1.0).slice(0), {"[slice]"});
}

// ---- flatten / unfold / as_strided / contiguous -------------------------------------------------

TEST(View, Flatten) {
  Sizes s = {2, 3, 4, 5};
  Tensor x = iota(s);
  auto flat = to_vector(x);
  EXPECT_EQ(x.flatten().sizes().vec(), (Sizes{120}));
  EXPECT_EQ(x.flatten(1).sizes().vec(), (Sizes{2, 60}));
  EXPECT_EQ(x.flatten(1, 2).sizes().vec(), (Sizes{2, 12, 5}));
  EXPECT_EQ(x.flatten(-2, -1).sizes().vec(), (Sizes{2, 3, 20}));
  EXPECT_EQ(x.flatten(2, 2).sizes().vec(), s);
  EXPECT_TRUE(shares_storage(x.flatten(), x));
  Tensor p = x.permute({0, 2, 1, 3});
  expect_view(
      kiln::flatten(p, 1, 2), {2, 12, 5}, flat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], c[1] % 3, c[1] / 3, c[2]}, s);
      },
      "flatten of permuted");
  EXPECT_EQ(kiln::full({}, 3.0).flatten().sizes().vec(), (Sizes{1}));
  EXPECT_KILN_ERROR(x.flatten(2, 1), {"[flatten]"});
  EXPECT_KILN_ERROR(x.flatten(0, 4), {"[flatten]", "4"});
}

TEST(View, Unfold) {
  Tensor x = iota({7});
  auto flat = to_vector(x);
  Tensor u = x.unfold(0, 3, 2);
  EXPECT_TRUE(shares_storage(u, x));
  expect_view(
      u, {3, 3}, flat, [](const std::vector<int64_t>& c) { return c[0] * 2 + c[1]; },
      "unfold(0,3,2)");
  expect_view(
      x.unfold(0, 2, 1), {6, 2}, flat, [](const std::vector<int64_t>& c) { return c[0] + c[1]; },
      "unfold(0,2,1)");
  expect_view(
      x.unfold(0, 7, 3), {1, 7}, flat, [](const std::vector<int64_t>& c) { return c[1]; },
      "unfold whole");
  Sizes s = {3, 8};
  Tensor y = iota(s);
  auto yflat = to_vector(y);
  expect_view(
      y.unfold(1, 4, 3), {3, 2, 4}, yflat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0], c[1] * 3 + c[2]}, s);
      },
      "unfold(1,4,3)");
  expect_view(
      y.unfold(-2, 2, 1), {2, 8, 2}, yflat,
      [&](const std::vector<int64_t>& c) {
        return ravel({c[0] + c[2], c[1]}, s);
      },
      "unfold(-2,2,1)");
  EXPECT_EQ(x.unfold(0, 0, 1).sizes().vec(), (Sizes{8, 0}));
  EXPECT_KILN_ERROR(x.unfold(0, 8, 1), {"[unfold]", "8"});
  EXPECT_KILN_ERROR(x.unfold(0, 2, 0), {"[unfold]", "step"});
  EXPECT_KILN_ERROR(x.unfold(1, 2, 1), {"[unfold]", "1"});
}

TEST(View, AsStrided) {
  Tensor x = iota({12});
  auto flat = to_vector(x);
  expect_view(
      x.as_strided({3, 3}, {1, 3}), {3, 3}, flat,
      [](const std::vector<int64_t>& c) { return c[0] + 3 * c[1]; }, "as_strided");
  expect_view(
      x.as_strided({2, 2}, {4, 1}, 5), {2, 2}, flat,
      [](const std::vector<int64_t>& c) { return 5 + 4 * c[0] + c[1]; }, "with offset");
  expect_view(
      x.as_strided({4}, {0}, 11), {4}, flat, [](const std::vector<int64_t>&) { return 11; },
      "stride 0");
  // The offset is absolute in the storage, not relative to a view's offset.
  Tensor tail = x.slice(0, 6);
  EXPECT_EQ(tail.as_strided({2}, {1}).data_ptr<double>()[0], 6.0) << "default keeps the offset";
  expect_view(
      tail.as_strided({2}, {1}, 0), {2}, flat, [](const std::vector<int64_t>& c) { return c[0]; },
      "absolute offset");
  EXPECT_EQ(x.as_strided({0, 100}, {100, 1}).numel(), 0);
  EXPECT_KILN_ERROR(x.as_strided({4, 4}, {4, 1}), {"[as_strided]", "12"});
  EXPECT_KILN_ERROR(x.as_strided({2}, {1}, 11), {"[as_strided]"});
  EXPECT_KILN_ERROR(x.as_strided({2, 2}, {1}), {"[as_strided]"});
  EXPECT_KILN_ERROR(x.as_strided({2}, {-1}), {"[as_strided]"});
  EXPECT_KILN_ERROR(x.as_strided({2}, {1}, -1), {"[as_strided]", "-1"});
}

TEST(View, Contiguous) {
  Tensor x = iota({3, 4});
  EXPECT_TRUE(x.contiguous().is_same(x)) << "contiguous() of a contiguous tensor is itself";
  Tensor t = x.t();
  Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_FALSE(shares_storage(c, x));
  EXPECT_EQ(c.strides().vec(), (Sizes{3, 1}));
  EXPECT_TRUE(close(c, t, 0, 0));
  // Size-1 dims with odd strides and empty tensors count as contiguous.
  EXPECT_TRUE(iota({3, 1}).expand({3, 1}).is_contiguous());
  EXPECT_TRUE(x.slice(0, 1, 2).is_contiguous());
  EXPECT_TRUE(kiln::zeros({0, 4}).t().is_contiguous());
  EXPECT_FALSE(iota({3, 1}).expand({3, 2}).is_contiguous());
  Tensor e = iota({3, 1}).expand({3, 2}).contiguous();
  EXPECT_EQ(to_vector(e), (std::vector<double>{0, 0, 1, 1, 2, 2}));
}

// ---- writes through views
// -------------------------------------------------------------------------

TEST(View, EveryViewSharesStorage) {
  auto make = [] { return kiln::zeros({4, 6}, kDouble); };
  struct V {
    const char* name;
    std::function<Tensor(const Tensor&)> fn;
    std::function<bool(int64_t r, int64_t c)> covers;  // base elements the view reaches
  };
  std::vector<V> views = {
      {"view", [](const Tensor& b) { return b.view({24}); }, [](int64_t, int64_t) { return true; }},
      {"reshape",
       [](const Tensor& b) {
         return b.reshape({2, 12});
       },
       [](int64_t, int64_t) { return true; }},
      {"t", [](const Tensor& b) { return b.t(); }, [](int64_t, int64_t) { return true; }},
      {"permute",
       [](const Tensor& b) {
         return b.permute({1, 0});
       },
       [](int64_t, int64_t) { return true; }},
      {"unsqueeze", [](const Tensor& b) { return b.unsqueeze(1); },
       [](int64_t, int64_t) { return true; }},
      {"squeeze", [](const Tensor& b) { return b.unsqueeze(0).squeeze(0); },
       [](int64_t, int64_t) { return true; }},
      {"narrow", [](const Tensor& b) { return b.narrow(1, 2, 3); },
       [](int64_t, int64_t c) { return c >= 2 && c < 5; }},
      {"select", [](const Tensor& b) { return b.select(0, 2); },
       [](int64_t r, int64_t) { return r == 2; }},
      {"slice", [](const Tensor& b) { return b.slice(1, 1, std::nullopt, 2); },
       [](int64_t, int64_t c) { return c % 2 == 1; }},
      {"flatten", [](const Tensor& b) { return b.flatten(); },
       [](int64_t, int64_t) { return true; }},
      {"unfold", [](const Tensor& b) { return b.unfold(1, 2, 4); },
       [](int64_t, int64_t c) { return c % 4 < 2; }},
      {"as_strided", [](const Tensor& b) { return b.as_strided({4}, {7}); },
       [](int64_t r, int64_t c) { return (r * 6 + c) % 7 == 0; }},
      {"operator[]", [](const Tensor& b) { return b[3]; },
       [](int64_t r, int64_t) { return r == 3; }},
  };
  for (const V& v : views) {
    SCOPED_TRACE(v.name);
    for (int how = 0; how < 3; ++how) {
      Tensor base = make();
      Tensor view = v.fn(base);
      EXPECT_TRUE(shares_storage(view, base));
      if (how == 0) view.fill_(3);
      if (how == 1) view.copy_(kiln::full({}, 3.0));
      if (how == 2) view.add_(3);
      std::vector<double> b = to_vector(base);
      for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < 6; ++c)
          ASSERT_EQ(b[r * 6 + c], v.covers(r, c) ? 3.0 : 0.0)
              << "write #" << how << " through " << v.name << " at base (" << r << ", " << c << ")";
    }
  }
}

TEST(View, InPlaceOpsOnViewsRespectStrides) {
  Tensor x = iota({3, 4});
  x.t().add_(1);
  std::vector<double> v = to_vector(x);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(v[i], i + 1.0);

  Tensor y = iota({10});
  y.slice(0, 1, 8, 3).mul_(2);  // elements 1, 4, 7
  v = to_vector(y);
  for (int64_t i = 0; i < 10; ++i)
    EXPECT_EQ(v[i], (i == 1 || i == 4 || i == 7) ? 2.0 * i : 1.0 * i) << i;

  // A tensor-tensor in-place op on a transposed view with a transposed operand.
  Tensor a = iota({4, 5});
  Tensor b = iota({5, 4}, kDouble);
  a.t().sub_(b);
  std::vector<double> av = to_vector(a), bv = to_vector(b);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 5; ++c)
      EXPECT_EQ(av[r * 5 + c], static_cast<double>(r * 5 + c) - bv[c * 4 + r]);

  // An in-place op with a broadcast operand on a column.
  Tensor m = kiln::zeros({3, 3}, kDouble);
  m.select(1, 1).add_(iota({3}));
  EXPECT_EQ(to_vector(m), (std::vector<double>{0, 0, 0, 0, 1, 0, 0, 2, 0}));

  // Unary in-place on a strided view.
  Tensor n = kiln::full({2, 4}, -2.0);
  n.slice(1, 0, std::nullopt, 2).abs_();
  EXPECT_EQ(to_vector(n), (std::vector<double>{2, -2, 2, -2, 2, -2, 2, -2}));
}

TEST(View, VersionCounterBumpsAndIsShared) {
  Tensor x = kiln::zeros({4, 4});
  Tensor v = x.t();
  Tensor s = x.slice(0, 1, 3);
  uint32_t v0 = x.impl()->version();
  EXPECT_EQ(v.impl()->version(), v0);
  x.add_(1);
  EXPECT_EQ(x.impl()->version(), v0 + 1);
  EXPECT_EQ(v.impl()->version(), v0 + 1) << "views share the version counter";
  EXPECT_EQ(s.impl()->version(), v0 + 1);
  v.mul_(2);
  EXPECT_EQ(x.impl()->version(), v0 + 2);
  s.fill_(0);
  EXPECT_EQ(x.impl()->version(), v0 + 3);
  s.copy_(kiln::ones({2, 4}));
  EXPECT_EQ(x.impl()->version(), v0 + 4);
  x.zero_();
  EXPECT_EQ(v.impl()->version(), v0 + 5);
  x.exp_();
  EXPECT_EQ(v.impl()->version(), v0 + 6);
  x.clamp_(0.5, 0.7);
  EXPECT_GT(v.impl()->version(), v0 + 6);
  uint32_t before = x.impl()->version();
  kiln::add_out(x, kiln::ones({4, 4}), kiln::ones({4, 4}));
  EXPECT_GT(x.impl()->version(), before) << "out= writes bump the version";
  // Out-of-place ops and new views do not.
  before = x.impl()->version();
  Tensor y = x + 1;
  Tensor z = x.view({16});
  Tensor c = x.clone();
  EXPECT_EQ(x.impl()->version(), before);
  EXPECT_FALSE(shares_storage(c, x));
  c.add_(1);
  EXPECT_EQ(x.impl()->version(), before) << "a clone has its own counter";
  // A failed in-place op changes nothing.
  Tensor i = kiln::zeros({3}, kInt);
  uint32_t iv = i.impl()->version();
  EXPECT_THROW(i.add_(2.5), Error);
  EXPECT_EQ(i.impl()->version(), iv);
}

TEST(View, DimOutOfRangeMessagesNameTheOp) {
  Tensor x = kiln::zeros({2, 3});
  EXPECT_KILN_ERROR(x.transpose(2, 0), {"[transpose]", "2"});
  EXPECT_KILN_ERROR(x.permute({0, 5}), {"[permute]", "5"});
  EXPECT_KILN_ERROR(x.squeeze(-3), {"[squeeze]", "-3"});
  EXPECT_KILN_ERROR(x.unsqueeze(4), {"[unsqueeze]", "4"});
  EXPECT_KILN_ERROR(x.narrow(2, 0, 1), {"[narrow]", "2"});
  EXPECT_KILN_ERROR(x.select(-3, 0), {"[select]", "-3"});
  EXPECT_KILN_ERROR(x.slice(2), {"[slice]", "2"});
  EXPECT_KILN_ERROR(x.flatten(3), {"[flatten]", "3"});
  EXPECT_KILN_ERROR(x.unfold(2, 1, 1), {"[unfold]", "2"});
  EXPECT_KILN_ERROR(x.size(2), {"[size]", "2"});
  EXPECT_KILN_ERROR(x.stride(-3), {"[stride]", "-3"});
  EXPECT_EQ(x.size(-1), 3);
  EXPECT_EQ(x.stride(-2), 3);
  // libtorch: size()/stride() of a 0-dim tensor have no dim to wrap ("dimension specified as 0
  // but tensor has no dimensions"), unlike ops such as squeeze/sum that accept 0 and -1.
  Tensor s = kiln::full({}, 1.0);
  EXPECT_KILN_ERROR(s.size(0), {"[size]"});
  EXPECT_KILN_ERROR(s.stride(-1), {"[stride]"});
}

}  // namespace
}  // namespace kiln
