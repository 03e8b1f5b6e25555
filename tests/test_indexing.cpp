// Tests for index-tensor selection (src/tensor/indexing.cpp): index_select, embedding and the
// Python-style Tensor::index / index_put_ with integers, slices, None, "...", booleans, integer
// index tensors and boolean masks, each against a float64 reference written as plain loops.
#include <algorithm>
#include <numeric>

#include "test_util.h"

namespace kiln {
namespace {

using indexing::Ellipsis;
using indexing::None;
using indexing::Slice;
using indexing::TensorIndex;
using testing::close;
using testing::expect_error;
using testing::non_contiguous;
using testing::random_tensor;
using testing::to_vector;

using Sizes = std::vector<int64_t>;
using Coords = std::vector<int64_t>;

std::vector<int64_t> unravel(int64_t f, const Sizes& sizes) {
  std::vector<int64_t> c(sizes.size());
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    c[d] = f % sizes[d];
    f /= sizes[d];
  }
  return c;
}

int64_t ravel(const Coords& c, const Sizes& sizes) {
  int64_t f = 0;
  for (size_t d = 0; d < sizes.size(); ++d) f = f * sizes[d] + c[d];
  return f;
}

int64_t numel_of(const Sizes& s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<>());
}

Tensor from_doubles(const std::vector<double>& v, const Sizes& sizes, ScalarType dt = kDouble) {
  Tensor t = kiln::empty(sizes, kiln::dtype(kDouble));
  std::copy(v.begin(), v.end(), static_cast<double*>(t.data_ptr()));
  return t.to(dt);
}

Tensor longs(const std::vector<double>& v, const Sizes& sizes) {
  return from_doubles(v, sizes, kLong);
}

template <typename F>
Tensor build(const Sizes& sizes, const F& f) {
  std::vector<double> v(numel_of(sizes));
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) v[i] = f(unravel(i, sizes));
  return from_doubles(v, sizes);
}

Sizes sizes_of(const Tensor& t) { return t.sizes().vec(); }

// Row-major values of a tensor with an element lookup by coordinates.
struct Ref {
  explicit Ref(const Tensor& t) : v(to_vector(t)), sizes(sizes_of(t)) {}
  double operator()(const Coords& c) const { return v[ravel(c, sizes)]; }
  std::vector<double> v;
  Sizes sizes;
};

int64_t wrap(double i, int64_t n) {
  int64_t k = static_cast<int64_t>(i);
  return k < 0 ? k + n : k;
}

bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.impl()->storage() == b.impl()->storage();
}

// ---- index_select / embedding -------------------------------------------------------------

Tensor index_select_ref(const Tensor& self, int64_t d, const Tensor& index) {
  Ref x(self);
  std::vector<double> iv = to_vector(index);
  Sizes out = sizes_of(self);
  out[d] = static_cast<int64_t>(iv.size());
  return build(out, [&](Coords c) {
    c[d] = static_cast<int64_t>(iv[c[d]]);
    return x(c);
  });
}

TEST(IndexSelect, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16, kInt, kLong, kByte, kBool}) {
    Tensor self = random_tensor({4, 5, 7}, dt, -9, 9);
    for (int64_t dim : {0, 1, 2, -1, -3}) {
      int64_t d = dim < 0 ? dim + 3 : dim;
      for (ScalarType it : {kLong, kInt}) {
        Tensor idx = random_tensor({9}, it, 0, self.size(d));  // repeats included
        Tensor ref = index_select_ref(self, d, idx);
        Tensor out = index_select(self, dim, idx);
        EXPECT_EQ(out.dtype(), dt);
        EXPECT_TRUE(close(out, ref, 0, 0)) << dtype_name(dt) << " dim " << dim;
        EXPECT_TRUE(close(self.index_select(dim, non_contiguous(idx)), ref, 0, 0));
        EXPECT_TRUE(close(index_select(non_contiguous(self), dim, idx), ref, 0, 0))
            << dtype_name(dt) << " dim " << dim;
        EXPECT_TRUE(
            close(index_select(self.permute({2, 0, 1}).contiguous().permute({1, 2, 0}), dim, idx),
                  ref, 0, 0));
      }
    }
  }
}

TEST(IndexSelect, ScalarIndexZeroSizeAndLarge) {
  Tensor self = random_tensor({3, 4});
  Tensor i0 = kiln::full({}, 2, kiln::dtype(kLong));
  Tensor r = index_select(self, 1, i0);  // a 0-dim index keeps the dim, with size 1
  EXPECT_EQ(sizes_of(r), (Sizes{3, 1}));
  EXPECT_TRUE(close(r, index_select_ref(self, 1, longs({2}, {1})), 0, 0));
  Tensor s = kiln::full({}, 4.5);
  Tensor rs = index_select(s, 0, longs({0}, {1}));
  EXPECT_EQ(rs.dim(), 0);
  EXPECT_EQ(rs.item<double>(), 4.5);
  EXPECT_EQ(index_select(s, -1, kiln::zeros({}, kiln::dtype(kLong))).item<double>(), 4.5);
  Tensor e = index_select(self, 0, kiln::zeros({0}, kiln::dtype(kLong)));
  EXPECT_EQ(sizes_of(e), (Sizes{0, 4}));
  Tensor ez = index_select(kiln::zeros({0, 3}), 1, longs({2, 0}, {2}));
  EXPECT_EQ(sizes_of(ez), (Sizes{0, 2}));
  Tensor big = random_tensor({1025, 67});
  Tensor bi = random_tensor({2049}, kLong, 0, 1025);
  EXPECT_TRUE(close(index_select(big, 0, bi), index_select_ref(big, 0, bi), 0, 0));
  Tensor bj = random_tensor({1031}, kInt, 0, 67);
  EXPECT_TRUE(close(index_select(big, 1, bj), index_select_ref(big, 1, bj), 0, 0));
}

TEST(IndexSelect, Errors) {
  Tensor self = random_tensor({5, 3});
  expect_error(
      [&] {
        index_select(self, 0, longs({1, 7}, {2}));
      },
      {"[index_select] index 7 is out of bounds for dim 0 with size 5"});
  expect_error([&] { index_select(self, 1, longs({-1}, {1})); },
               {"[index_select] index -1 is out of bounds for dim 1 with size 3"});
  expect_error([&] { index_select(self, 0, kiln::zeros({2})); },
               {"[index_select]", "float32", "int32 or int64"});
  expect_error(
      [&] {
        index_select(self, 0, kiln::zeros({2, 2}, kiln::dtype(kLong)));
      },
      {"[index_select]", "vector", "[2, 2]"});
  expect_error(
      [&] {
        index_select(kiln::full({}, 1.0), 0, longs({0, 0}, {2}));
      },
      {"[index_select]", "0-dim", "2 value(s)"});
  expect_error([&] { index_select(kiln::full({}, 1.0), 0, longs({1}, {1})); },
               {"[index_select]", "index 1 is out of bounds"});
  expect_error([&] { index_select(self, 2, longs({0}, {1})); }, {"[index_select]", "dim 2"});
}

TEST(Embedding, MatchesReference) {
  for (ScalarType dt : {kFloat, kHalf, kDouble}) {
    Tensor weight = random_tensor({10, 7}, dt);
    for (ScalarType it : {kLong, kInt}) {
      Tensor idx = random_tensor({3, 4}, it, 0, 10);
      Ref w(weight);
      std::vector<double> iv = to_vector(idx);
      Tensor ref = build({3, 4, 7}, [&](const Coords& c) {
        return w({static_cast<int64_t>(iv[c[0] * 4 + c[1]]), c[2]});
      });
      Tensor out = embedding(weight, idx);
      EXPECT_EQ(out.dtype(), dt);
      EXPECT_TRUE(close(out, ref, 0, 0)) << dtype_name(dt);
      EXPECT_TRUE(close(embedding(non_contiguous(weight), non_contiguous(idx)), ref, 0, 0));
    }
  }
  Tensor weight = random_tensor({4, 3});
  Tensor one = embedding(weight, kiln::full({}, 2, kiln::dtype(kLong)));
  EXPECT_TRUE(close(one, weight.select(0, 2), 0, 0));
  EXPECT_EQ(sizes_of(embedding(weight, kiln::zeros({2, 0}, kiln::dtype(kLong)))), (Sizes{2, 0, 3}));
}

TEST(Embedding, Errors) {
  Tensor weight = random_tensor({5, 3});
  expect_error(
      [&] {
        embedding(weight, longs({0, 5}, {2}));
      },
      {"[embedding]", "index 5", "5 rows"});
  expect_error([&] { embedding(weight, longs({-1}, {1})); }, {"[embedding]", "index -1"});
  expect_error([&] { embedding(weight, kiln::zeros({2})); }, {"[embedding]", "float32", "int64"});
  expect_error([&] { embedding(random_tensor({5}), longs({0}, {1})); },
               {"[embedding]", "2-D", "[5]"});
}

// ---- Tensor::index: basic ---------------------------------------------------------------------

class IndexBasic : public ::testing::TestWithParam<ScalarType> {};

TEST_P(IndexBasic, IntegersSlicesNoneEllipsisBooleans) {
  const ScalarType dt = GetParam();
  for (bool strided : {false, true}) {
    Tensor x0 = random_tensor({4, 5, 6}, dt, -9, 9);
    Tensor x = strided ? non_contiguous(x0) : x0;
    Ref r(x0);
    auto check = [&](const Tensor& got, const Sizes& want, auto f, const char* what) {
      EXPECT_TRUE(close(got, build(want, f), 0, 0)) << what << " " << dtype_name(dt);
      EXPECT_EQ(got.dtype(), dt);
      if (got.numel() > 0) {
        EXPECT_TRUE(shares_storage(got, x)) << what << ": expected a view";
      }
    };
    check(
        x.index({1}), {5, 6},
        [&](const Coords& c) {
          return r({1, c[0], c[1]});
        },
        "int");
    check(
        x.index({-1, 2}), {6},
        [&](const Coords& c) {
          return r({3, 2, c[0]});
        },
        "ints");
    check(
        x.index({Slice(1, None, 2), -1}), {2, 6},
        [&](const Coords& c) {
          return r({1 + 2 * c[0], 4, c[1]});
        },
        "step slice");
    check(
        x.index({"...", Slice(-3, -1)}), {4, 5, 2},
        [&](const Coords& c) {
          return r({c[0], c[1], 3 + c[2]});
        },
        "negative bounds");
    check(
        x.index({Slice(-100, 100), Slice(3, 1)}), {4, 0, 6}, [&](const Coords&) { return 0.0; },
        "clamped / empty");
    check(
        x.index({Slice(None, None, 3), Slice(1, 5, 2), Slice(0, 6, 4)}), {2, 2, 2},
        [&](const Coords& c) {
          return r({3 * c[0], 1 + 2 * c[1], 4 * c[2]});
        },
        "steps");
    check(
        x.index({Slice(2, 77)}), {2, 5, 6},
        [&](const Coords& c) {
          return r({2 + c[0], c[1], c[2]});
        },
        "stop past end");
    check(
        x.index({None, 0, None}), {1, 1, 5, 6},
        [&](const Coords& c) {
          return r({0, c[2], c[3]});
        },
        "none");
    check(
        x.index({0, Ellipsis, 2}), {5},
        [&](const Coords& c) {
          return r({0, c[0], 2});
        },
        "ellipsis middle");
    check(
        x.index({"...", None}), {4, 5, 6, 1},
        [&](const Coords& c) {
          return r({c[0], c[1], c[2]});
        },
        "trailing none");
    check(
        x.index({Slice(), None, "...", None, 1}), {4, 1, 5, 1},
        [&](const Coords& c) {
          return r({c[0], c[2], 1});
        },
        "mixed none ellipsis");
    check(
        x.index({true}), {1, 4, 5, 6},
        [&](const Coords& c) {
          return r({c[1], c[2], c[3]});
        },
        "true");
    check(
        x.index({Slice(), true, 2}), {4, 1, 6},
        [&](const Coords& c) {
          return r({c[0], 2, c[2]});
        },
        "inner true");
    EXPECT_EQ(sizes_of(x.index({false})), (Sizes{0, 4, 5, 6}));
    EXPECT_EQ(sizes_of(x.index({1, false, "..."})), (Sizes{0, 5, 6}));
    check(
        x.index({kiln::full({}, 2, kiln::dtype(kLong))}), {5, 6},
        [&](const Coords& c) {
          return r({2, c[0], c[1]});
        },
        "0-dim int tensor");
    check(
        x.index({Slice(), kiln::full({}, -1, kiln::dtype(kInt))}), {4, 6},
        [&](const Coords& c) {
          return r({c[0], 4, c[1]});
        },
        "0-dim int32 tensor");
    check(
        x.index({kiln::full({}, true, kiln::dtype(kBool))}), {1, 4, 5, 6},
        [&](const Coords& c) {
          return r({c[1], c[2], c[3]});
        },
        "0-dim bool tensor");
    Tensor alias = x.index({});
    EXPECT_FALSE(alias.is_same(x));
    check(
        alias, {4, 5, 6}, [&](const Coords& c) { return r(c); }, "empty index list");
    check(
        x.index(ArrayRef<TensorIndex>(std::vector<TensorIndex>{Ellipsis})), {4, 5, 6},
        [&](const Coords& c) { return r(c); }, "ArrayRef overload");
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, IndexBasic,
                         ::testing::Values(kFloat, kDouble, kHalf, kInt, kLong, kBool, kByte),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Index, BasicResultsAreViewsThatWriteThrough) {
  Tensor x = kiln::zeros({4, 5, 6});
  x.index({1, Slice(0, 2)}).fill_(100.0);
  x.index({Slice(), Slice(None, None, 2), None, -1}).fill_(-1.0);
  x.index({true, 3, "...", 0}).fill_(7.0);
  Tensor ref = build({4, 5, 6}, [](const Coords& c) {
    if (c[0] == 3 && c[2] == 0) return 7.0;
    if (c[1] % 2 == 0 && c[2] == 5) return -1.0;
    if (c[0] == 1 && c[1] < 2) return 100.0;
    return 0.0;
  });
  EXPECT_TRUE(close(x, ref, 0, 0));
  Tensor s = kiln::full({}, 3.0);
  Tensor ns = s.index({None});
  EXPECT_EQ(sizes_of(ns), Sizes{1});
  ns.fill_(4.0);
  EXPECT_EQ(s.item<double>(), 4.0);
}

TEST(Index, BasicErrors) {
  Tensor x = random_tensor({4, 5, 6});
  expect_error(
      [&] {
        x.index({0, 0, 0, 0});
      },
      {"[index]", "too many indices for tensor of dimension 3"});
  expect_error(
      [&] {
        x.index({Slice(), "...", Slice(), Slice(), 0});
      },
      {"[index]", "too many indices"});
  expect_error([&] { kiln::full({}, 1.0).index({0}); },
               {"[index]", "too many indices for tensor of dimension 0"});
  expect_error([&] { x.index({"...", 0, Ellipsis}); }, {"[index]", "single ellipsis"});
  expect_error([&] { x.index({Slice(None, None, 0)}); }, {"[index]", "step 0"});
  expect_error([&] { x.index({Slice(3, 1, -1)}); }, {"[index]", "step -1"});
  expect_error([&] { x.index({4}); },
               {"[index]", "index 4 is out of bounds for dimension 0 with size 4"});
  expect_error(
      [&] {
        x.index({Slice(), -6});
      },
      {"[index]", "index -6 is out of bounds for dimension 1 with size 5"});
  expect_error(
      [&] {
        x.index({None, 1, 2, 6});
      },
      {"[index]", "index 6 is out of bounds for dimension 2 with size 6"});
  expect_error([] { TensorIndex bad("..x"); }, {"[index]", "\"..x\"", "\"...\""});
  expect_error([] { TensorIndex bad(static_cast<const char*>(nullptr)); }, {"[index]"});
  TensorIndex ok("...");
  EXPECT_EQ(ok.kind(), TensorIndex::Kind::Ellipsis);
}

// ---- Tensor::index: advanced ------------------------------------------------------------------

TEST(Index, IntegerTensorIndices) {
  for (ScalarType dt : {kFloat, kHalf, kDouble, kInt, kBool, kByte}) {
    Tensor x = random_tensor({4, 5, 6}, dt, -9, 9);
    Ref r(x);
    Tensor i = longs({0, 3, -1, 2, 2, -4}, {2, 3});
    std::vector<double> iv = to_vector(i);
    Tensor want = build({2, 3, 5, 6}, [&](const Coords& c) {
      return r({wrap(iv[c[0] * 3 + c[1]], 4), c[2], c[3]});
    });
    for (Tensor idx : {i, i.to(kInt), non_contiguous(i), i.t().contiguous().t()}) {
      Tensor got = x.index({idx});
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_TRUE(close(got, want, 0, 0)) << dtype_name(dt);
      EXPECT_TRUE(close(non_contiguous(x).index({idx}), want, 0, 0)) << dtype_name(dt);
    }
    // One index on dim 1.
    Tensor j = longs({4, 0, -5}, {3});
    EXPECT_TRUE(close(x.index({Slice(), j}),
                      build({4, 3, 6},
                            [&](const Coords& c) {
                              return r({c[0], wrap(to_vector(j)[c[1]], 5), c[2]});
                            }),
                      0, 0));
  }
}

TEST(Index, BroadcastIndicesAndResultPlacement) {
  Tensor x = random_tensor({4, 5, 6}, kDouble);
  Ref r(x);
  Tensor a = longs({0, 3, 1}, {3});   // for dim 0
  Tensor b = longs({4, 0}, {2, 1});   // for dim 1, broadcast with a -> [2, 3]
  Tensor k = longs({5, -6, 2}, {3});  // for dim 2
  std::vector<double> av = to_vector(a), bv = to_vector(b), kv = to_vector(k);
  // Adjacent at the front: B replaces dims 0 and 1.
  EXPECT_TRUE(close(x.index({a, b}),
                    build({2, 3, 6},
                          [&](const Coords& c) {
                            return r({wrap(av[c[1]], 4), wrap(bv[c[0]], 5), c[2]});
                          }),
                    0, 0));
  // Adjacent in the middle: B sits at dim 1.
  Tensor j = longs({1, 4, 2}, {3});
  std::vector<double> jv = to_vector(j);
  EXPECT_TRUE(close(x.index({Slice(), j, k}),
                    build({4, 3},
                          [&](const Coords& c) {
                            return r({c[0], wrap(jv[c[1]], 5), wrap(kv[c[1]], 6)});
                          }),
                    0, 0));
  EXPECT_TRUE(close(x.index({"...", j, k}), x.index({Slice(), j, k}), 0, 0));
  // Separated by a slice: B goes in front.
  EXPECT_TRUE(close(x.index({a, Slice(), k}),
                    build({3, 5},
                          [&](const Coords& c) {
                            return r({wrap(av[c[0]], 4), c[1], wrap(kv[c[0]], 6)});
                          }),
                    0, 0));
  // Separated by None: B in front, then the new axis, then the last dim.
  EXPECT_TRUE(close(x.index({a, None, j}),
                    build({3, 1, 6},
                          [&](const Coords& c) {
                            return r({wrap(av[c[0]], 4), wrap(jv[c[0]], 5), c[2]});
                          }),
                    0, 0));
  // An integer is a select first (libtorch), so the one tensor index left stays in place.
  EXPECT_TRUE(close(x.index({0, Slice(), k}),
                    build({5, 3},
                          [&](const Coords& c) {
                            return r({0, c[0], wrap(kv[c[1]], 6)});
                          }),
                    0, 0));
  // A boolean becomes an index tensor ([0] or []) that broadcasts with the others.
  EXPECT_TRUE(close(x.index({true, a}),
                    build({3, 5, 6},
                          [&](const Coords& c) {
                            return r({wrap(av[c[0]], 4), c[1], c[2]});
                          }),
                    0, 0));
  EXPECT_EQ(sizes_of(x.index({false, Slice(), longs({1}, {1})})), (Sizes{0, 4, 6}));
  // The result is a copy.
  Tensor got = x.index({a});
  EXPECT_FALSE(shares_storage(got, x));
  got.fill_(0.0);
  EXPECT_TRUE(close(x, from_doubles(r.v, r.sizes), 0, 0));
}

TEST(Index, ZeroSizeAndLargeIndices) {
  Tensor x = random_tensor({4, 5, 6});
  EXPECT_EQ(sizes_of(x.index({kiln::zeros({0}, kiln::dtype(kLong))})), (Sizes{0, 5, 6}));
  EXPECT_EQ(sizes_of(x.index({Slice(), kiln::zeros({2, 0}, kiln::dtype(kInt))})),
            (Sizes{4, 2, 0, 6}));
  Tensor e = kiln::zeros({0, 3});
  EXPECT_EQ(sizes_of(e.index({Slice(), longs({2, 2}, {2})})), (Sizes{0, 2}));
  Tensor big = random_tensor({1025, 65});
  Tensor bi = random_tensor({3001}, kLong, -1025, 1025);
  Ref r(big);
  std::vector<double> biv = to_vector(bi);
  EXPECT_TRUE(close(big.index({bi}),
                    build({3001, 65},
                          [&](const Coords& c) {
                            return r({wrap(biv[c[0]], 1025), c[1]});
                          }),
                    0, 0));
  Tensor bj = random_tensor({700}, kInt, 0, 65);
  std::vector<double> bjv = to_vector(bj);
  EXPECT_TRUE(close(big.index({Slice(), bj}),
                    build({1025, 700},
                          [&](const Coords& c) {
                            return r({c[0], static_cast<int64_t>(bjv[c[1]])});
                          }),
                    0, 0));
}

// Row-major coordinates of the true elements of a mask.
std::vector<Coords> true_coords(const Tensor& mask) {
  std::vector<double> mv = to_vector(mask);
  std::vector<Coords> out;
  for (int64_t f = 0; f < static_cast<int64_t>(mv.size()); ++f)
    if (mv[f] != 0) out.push_back(unravel(f, sizes_of(mask)));
  return out;
}

TEST(Index, BooleanMasks) {
  for (ScalarType dt : {kFloat, kHalf, kLong, kBool}) {
    Tensor x = random_tensor({4, 5, 6}, dt, -9, 9);
    Ref r(x);
    Tensor m = random_tensor({4, 5}, kBool);
    auto nz = true_coords(m);
    const int64_t n = static_cast<int64_t>(nz.size());
    Tensor want = build({n, 6}, [&](const Coords& c) {
      return r({nz[c[0]][0], nz[c[0]][1], c[1]});
    });
    EXPECT_TRUE(close(x.index({m}), want, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(x.index({non_contiguous(m)}), want, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(x.index({m.to(kByte)}), want, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(non_contiguous(x).index({m, "..."}), want, 0, 0)) << dtype_name(dt);

    Tensor m1 = random_tensor({5}, kBool);
    auto nz1 = true_coords(m1);
    const int64_t n1 = static_cast<int64_t>(nz1.size());
    EXPECT_TRUE(close(x.index({Slice(), m1}),
                      build({4, n1, 6},
                            [&](const Coords& c) {
                              return r({c[0], nz1[c[1]][0], c[2]});
                            }),
                      0, 0));
    // A mask next to an integer tensor: they broadcast together.
    EXPECT_TRUE(close(x.index({longs({2}, {1}), m1}),
                      build({n1, 6},
                            [&](const Coords& c) {
                              return r({2, nz1[c[0]][0], c[1]});
                            }),
                      0, 0));
    Tensor m2 = random_tensor({5, 6}, kBool);
    auto nz2 = true_coords(m2);
    const int64_t n2 = static_cast<int64_t>(nz2.size());
    EXPECT_TRUE(close(x.index({"...", m2}),
                      build({4, n2},
                            [&](const Coords& c) {
                              return r({c[0], nz2[c[1]][0], nz2[c[1]][1]});
                            }),
                      0, 0));
    Tensor none = kiln::zeros({4}, kiln::dtype(kBool));
    EXPECT_EQ(sizes_of(x.index({none})), (Sizes{0, 5, 6}));
    Tensor full_mask = kiln::ones({4, 5, 6}, kiln::dtype(kBool));
    EXPECT_TRUE(close(x.index({full_mask}), x.reshape({120}), 0, 0));
  }
}

TEST(Index, AdvancedErrors) {
  Tensor x = random_tensor({4, 5, 6});
  expect_error(
      [&] {
        x.index({longs({1, 4}, {2})});
      },
      {"[index]", "index 4 is out of bounds for dimension 0 with size 4"});
  expect_error(
      [&] {
        x.index({Slice(), longs({-6}, {1})});
      },
      {"[index]", "index -6 is out of bounds for dimension 1 with size 5"});
  expect_error([&] { x.index({kiln::zeros({2})}); }, {"[index]", "float32"});
  expect_error([&] { x.index({kiln::zeros({2}, kiln::dtype(kChar))}); }, {"[index]", "int8"});
  expect_error([&] { x.index({kiln::zeros({}, kiln::dtype(kFloat))}); }, {"[index]", "float32"});
  expect_error(
      [&] {
        x.index({kiln::ones({4, 4}, kiln::dtype(kBool))});
      },
      {"[index]", "shape of the mask [4, 4]", "[4, 5]"});
  expect_error(
      [&] {
        x.index({Slice(), kiln::ones({4}, kiln::dtype(kBool))});
      },
      {"[index]", "mask [4]", "[5]"});
  expect_error(
      [&] {
        x.index({kiln::ones({4, 5, 6, 1}, kiln::dtype(kBool))});
      },
      {"[index]", "too many indices"});
  expect_error(
      [&] {
        x.index({longs({0, 1}, {2}), longs({0, 1, 2}, {3})});
      },
      {"[index]", "[2]", "[3]", "broadcast"});
  expect_error([&] { x.index({Tensor()}); }, {"[index]", "undefined"});
}

// ---- index_put_ -------------------------------------------------------------------------------

TEST(IndexPut, BasicIndicesCopyIntoTheView) {
  for (bool strided : {false, true}) {
    Tensor base = random_tensor({4, 5, 6});
    // Strided: x views every other column of a wider buffer, which must see the writes.
    Tensor buf = kiln::zeros({4, 5, 12});
    Tensor x = base;
    if (strided) {
      x = buf.slice(2, 0, std::nullopt, 2);
      x.copy_(base);
    }
    Ref r(base);
    Tensor v = random_tensor({6});
    std::vector<double> vv = to_vector(v);
    Tensor& ret = x.index_put_({1, Slice(0, 3)}, v);
    EXPECT_TRUE(ret.is_same(x));
    x.index_put_({"...", 2}, 7.5);
    x.index_put_({Slice(2), -1}, v.to(kDouble).reshape({1, 1, 6}));  // leading 1s dropped
    x.index_put_({false}, 100.0);
    Tensor want = build({4, 5, 6}, [&](const Coords& c) {
      if (c[0] >= 2 && c[1] == 4) return vv[c[2]];
      if (c[2] == 2) return 7.5;
      if (c[0] == 1 && c[1] < 3) return vv[c[2]];
      return r(c);
    });
    EXPECT_TRUE(close(x, want, 0, 0));
    if (strided) {
      EXPECT_TRUE(close(buf.slice(2, 0, std::nullopt, 2), want, 0, 0));
      EXPECT_TRUE(close(buf.slice(2, 1, std::nullopt, 2), kiln::zeros({4, 5, 6}), 0, 0));
    }
  }
  Tensor s = kiln::zeros({});
  s.index_put_({}, 3.0);
  EXPECT_EQ(s.item<double>(), 3.0);
  Tensor y = kiln::zeros({2, 3}, kiln::dtype(kInt));
  y.index_put_({None}, kiln::full({3}, 2.9, kiln::dtype(kDouble)));  // copy_ converts
  EXPECT_TRUE(close(y, kiln::full({2, 3}, 2.0), 0, 0));
}

TEST(IndexPut, TensorIndicesWriteGatheredPositions) {
  for (ScalarType dt : {kFloat, kHalf, kDouble, kInt, kBool}) {
    Tensor base = random_tensor({4, 5, 6}, dt, -9, 9);
    Tensor buf = kiln::zeros({4, 5, 12}, kiln::dtype(dt));
    Tensor x = buf.slice(2, 0, std::nullopt, 2);  // strided view: writes go to buf
    x.copy_(base);
    Ref r(base);
    // Distinct rows [3, 0] get a [2, 5, 6] value.
    Tensor rows = longs({3, -4}, {2});
    Tensor v = random_tensor({2, 5, 6}, dt, -9, 9);
    Ref rv(v);
    x.index_put_({rows}, v);
    // Middle-adjacent indices with a broadcast [3] value: B = [3] at dim 1 of [4, 3].
    Tensor j = longs({1, 4, 2}, {3}), k = longs({5, 0, 2}, {3});
    Tensor w = random_tensor({3}, dt, -9, 9);
    Ref rw(w);
    x.index_put_({Slice(1, 3), j, k}, w);
    Tensor want = build({4, 5, 6}, [&](const Coords& c) {
      const int64_t jj[3] = {1, 4, 2}, kk[3] = {5, 0, 2};
      if (c[0] >= 1 && c[0] < 3)
        for (int64_t b = 0; b < 3; ++b)
          if (c[1] == jj[b] && c[2] == kk[b]) return rw({b});
      if (c[0] == 3) return rv({0, c[1], c[2]});
      if (c[0] == 0) return rv({1, c[1], c[2]});
      return r(c);
    });
    EXPECT_TRUE(close(x, want, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(buf.slice(2, 0, std::nullopt, 2), want, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(buf.slice(2, 1, std::nullopt, 2), kiln::zeros({4, 5, 6}), 0, 0));
  }
}

TEST(IndexPut, MasksScalarsAndNonAdjacent) {
  Tensor x = random_tensor({4, 5, 6}, kDouble);
  Ref r(x);
  Tensor m = random_tensor({4, 5}, kBool);
  std::vector<double> mv = to_vector(m);
  x.index_put_({m}, -1.0);
  // Non-adjacent tensor indices: B = [2] in front, then dim 1; value [2, 5].
  Tensor a = longs({0, 2}, {2}), k = longs({1, -1}, {2});
  Tensor v = random_tensor({2, 5}, kDouble);
  Ref rv(v);
  x.index_put_({a, Slice(), k}, v);
  Tensor want = build({4, 5, 6}, [&](const Coords& c) {
    if (c[0] == 0 && c[2] == 1) return rv({0, c[1]});
    if (c[0] == 2 && c[2] == 5) return rv({1, c[1]});
    if (mv[c[0] * 5 + c[1]] != 0) return -1.0;
    return r(c);
  });
  EXPECT_TRUE(close(x, want, 0, 0));
  // A value that aliases self is read before anything is written.
  Tensor y = random_tensor({5, 3});
  Ref ry(y);
  y.index_put_({longs({1, 2, 3}, {3})}, y.index({Slice(0, 3)}));
  EXPECT_TRUE(close(y,
                    build({5, 3},
                          [&](const Coords& c) {
                            return c[0] >= 1 && c[0] <= 3 ? ry({c[0] - 1, c[1]}) : ry(c);
                          }),
                    0, 0));
  // Empty index: nothing changes.
  Tensor before = x.clone();
  x.index_put_({kiln::zeros({0}, kiln::dtype(kLong))}, 5.0);
  EXPECT_TRUE(close(x, before, 0, 0));
  // Large put through the parallel path.
  Tensor big = kiln::zeros({2049, 33});
  Tensor perm = randperm(2049).slice(0, 0, 1500);
  big.index_put_({perm}, 1.0);
  EXPECT_EQ(to_vector(big.sum()).at(0), 1500.0 * 33);
}

TEST(IndexPut, FailingPutLeavesTargetUnchanged) {
  Tensor x = random_tensor({4, 5, 6});
  Tensor before = x.clone();
  expect_error(
      [&] {
        x.index_put_({longs({0, 1, 2, 9}, {4})}, random_tensor({4, 5, 6}));
      },
      {"[index_put_]", "index 9 is out of bounds for dimension 0 with size 4"});
  EXPECT_TRUE(close(x, before, 0, 0));
  expect_error(
      [&] {
        x.index_put_({Slice(), longs({0, -6}, {2})}, 1.0);
      },
      {"[index_put_]", "index -6"});
  EXPECT_TRUE(close(x, before, 0, 0));
  expect_error(
      [&] {
        x.index_put_({longs({0, 1}, {2})}, random_tensor({3, 5, 6}));
      },
      {"[index_put_]", "shape mismatch", "[3, 5, 6]", "[2, 5, 6]"});
  EXPECT_TRUE(close(x, before, 0, 0));
}

TEST(IndexPut, Errors) {
  Tensor x = random_tensor({4, 5, 6});
  expect_error([&] { x.index_put_({longs({0}, {1})}, random_tensor({6}, kDouble)); },
               {"[index_put_]", "dtypes match", "float32", "float64"});
  expect_error([&] { x.index_put_({0}, random_tensor({4})); },
               {"[index_put_]", "shape mismatch", "[4]", "[5, 6]"});
  expect_error(
      [&] {
        x.index_put_({0}, random_tensor({2, 5, 6}));
      },
      {"[index_put_]", "shape mismatch", "[2, 5, 6]"});
  expect_error([&] { x.index_put_({0, 0, 0, 0}, 1.0); }, {"[index_put_]", "too many indices"});
  expect_error([&] { x.index_put_({7}, 1.0); }, {"[index_put_]", "index 7", "size 4"});
  expect_error(
      [&] {
        x.index_put_({kiln::ones({4, 4}, kiln::dtype(kBool))}, 1.0);
      },
      {"[index_put_]", "mask"});
}

}  // namespace
}  // namespace kiln
