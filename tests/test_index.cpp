// Tests for joining, splitting and per-dim index ops (src/tensor/index.cpp): cat, stack, split,
// chunk, gather, scatter / scatter_add, masked_fill and one_hot, each against float64 references
// computed with plain loops, in contiguous and strided layouts, over several dtypes.
#include <algorithm>
#include <numeric>

#include "test_util.h"

namespace kiln {
namespace {

using testing::close;
using testing::expect_error;
using testing::non_contiguous;
using testing::random_tensor;
using testing::rng;
using testing::to_vector;

using Sizes = std::vector<int64_t>;

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

int64_t numel_of(const Sizes& s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<>());
}

Tensor from_doubles(const std::vector<double>& v, const Sizes& sizes, ScalarType dt = kDouble) {
  Tensor t = kiln::empty(sizes, kiln::dtype(kDouble));
  std::copy(v.begin(), v.end(), static_cast<double*>(t.data_ptr()));
  return t.to(dt);
}

// Expected tensor whose element at coords c is f(c).
template <typename F>
Tensor build(const Sizes& sizes, const F& f) {
  std::vector<double> v(numel_of(sizes));
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) v[i] = f(unravel(i, sizes));
  return from_doubles(v, sizes);
}

Sizes sizes_of(const Tensor& t) { return t.sizes().vec(); }

// ---- cat --------------------------------------------------------------------------------------

// float64 reference of cat along d (inputs with the legacy [0] shape skipped).
Tensor cat_ref(const std::vector<Tensor>& ts, int64_t d) {
  std::vector<Tensor> used;
  for (const Tensor& t : ts)
    if (!(t.dim() == 1 && t.numel() == 0)) used.push_back(t);
  Sizes out = sizes_of(used[0]);
  out[d] = 0;
  std::vector<int64_t> starts;
  for (const Tensor& t : used) {
    starts.push_back(out[d]);
    out[d] += t.size(d);
  }
  std::vector<std::vector<double>> vals;
  for (const Tensor& t : used) vals.push_back(to_vector(t));
  return build(out, [&](std::vector<int64_t> c) {
    size_t k = 0;
    while (k + 1 < used.size() && c[d] >= starts[k + 1]) ++k;
    c[d] -= starts[k];
    return vals[k][ravel(c, sizes_of(used[k]))];
  });
}

TEST(Cat, MatchesReferenceAcrossDimsDtypesAndLayouts) {
  for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16, kInt, kLong, kByte, kChar, kBool}) {
    for (int64_t dim : {0, 1, 2, -1, -3}) {
      int64_t d = dim < 0 ? dim + 3 : dim;
      Sizes a{3, 5, 7}, b{3, 5, 7}, c{3, 5, 7};
      b[d] = 2;
      c[d] = 1;
      std::vector<Tensor> ts{random_tensor(a, dt, -5, 5), random_tensor(b, dt, -5, 5),
                             random_tensor(c, dt, -5, 5)};
      Tensor out = cat(ts, dim);
      EXPECT_EQ(out.dtype(), dt);
      EXPECT_TRUE(close(out, cat_ref(ts, d), 0, 0)) << dtype_name(dt) << " dim " << dim;
      std::vector<Tensor> nc{non_contiguous(ts[0]), ts[1], non_contiguous(ts[2])};
      EXPECT_TRUE(close(cat(nc, dim), cat_ref(ts, d), 0, 0)) << dtype_name(dt) << " dim " << dim;
    }
  }
}

TEST(Cat, LargeOddSizesUseParallelPath) {
  for (int64_t dim : {0, 1}) {
    std::vector<Tensor> ts{random_tensor({1025, 33}), random_tensor({1025, 33}),
                           random_tensor({1025, 33}).to(kDouble)};
    if (dim == 0)
      ts.push_back(random_tensor({7, 33}));
    else
      ts.push_back(random_tensor({1025, 1}));
    Tensor out = cat(ts, dim);
    EXPECT_EQ(out.dtype(), kDouble);
    EXPECT_TRUE(close(out, cat_ref(ts, dim), 0, 0));
  }
  // A transposed (non-contiguous) input among large contiguous ones.
  Tensor big = random_tensor({1, 70001});
  Tensor t = random_tensor({3, 1}).t();
  EXPECT_TRUE(close(cat({big, t, big}, 1), cat_ref({big, t, big}, 1), 0, 0));
}

TEST(Cat, PromotesLikeLibtorch) {
  struct Case {
    ScalarType a, b, want;
  };
  // uint8 + int8 is int16 in libtorch; Kiln has no int16, so int32.
  for (Case cs :
       {Case{kInt, kFloat, kFloat}, Case{kLong, kDouble, kDouble}, Case{kBool, kByte, kByte},
        Case{kHalf, kFloat, kFloat}, Case{kByte, kChar, kInt}, Case{kBool, kHalf, kHalf},
        Case{kHalf, kBFloat16, kFloat}, Case{kInt, kLong, kLong}}) {
    std::vector<Tensor> ts{random_tensor({2, 3}, cs.a, 0, 3), random_tensor({4, 3}, cs.b, 0, 3)};
    Tensor out = cat(ts, 0);
    EXPECT_EQ(out.dtype(), cs.want) << dtype_name(cs.a) << " + " << dtype_name(cs.b);
    EXPECT_TRUE(close(out, cat_ref(ts, 0), 0, 0));
  }
}

TEST(Cat, SkipsLegacyEmptyTensorsButPromotesWithThem) {
  Tensor e = kiln::empty({0}, kiln::dtype(kDouble));
  Tensor a = random_tensor({2, 3}, kFloat), b = random_tensor({1, 3}, kFloat);
  Tensor out = cat({e, a, e, b}, 1 - 1);
  EXPECT_EQ(out.dtype(), kDouble);
  EXPECT_TRUE(close(out, cat_ref({a, b}, 0), 0, 0));
  // Dim 1 wraps against the first non-skipped tensor, whose rank is 2.
  Tensor c = random_tensor({2, 4}, kFloat);
  EXPECT_TRUE(close(cat({a, e, c}, -1), cat_ref({a, c}, 1), 0, 0));
  Tensor all_empty = cat({e, kiln::empty({0}, kiln::dtype(kInt))});
  EXPECT_EQ(sizes_of(all_empty), Sizes{0});
  EXPECT_EQ(all_empty.dtype(), kDouble);
}

TEST(Cat, ZeroSizeInputsAndOutputs) {
  Tensor a = random_tensor({2, 0, 3}), b = random_tensor({2, 4, 3});
  EXPECT_TRUE(close(cat({a, b, a}, 1), cat_ref({b}, 1), 0, 0));
  Tensor z = cat({random_tensor({0, 3}), random_tensor({0, 5})}, 1);
  EXPECT_EQ(sizes_of(z), (Sizes{0, 8}));
  Tensor single = random_tensor({1});
  EXPECT_TRUE(close(cat({single}, 0), single, 0, 0));
}

TEST(Cat, Errors) {
  expect_error([] { cat({}, 0); }, {"[cat]", "empty list"});
  Tensor s = kiln::zeros({});
  expect_error([&] { cat({kiln::zeros({2}), s}, 0); }, {"[cat]", "zero-dimensional", "position 1"});
  expect_error(
      [] {
        cat({kiln::zeros({2, 3}), kiln::zeros({2, 3, 1})}, 0);
      },
      {"[cat]", "same number of dimensions", "[2, 3, 1]"});
  expect_error(
      [] {
        cat({kiln::zeros({2, 3}), kiln::zeros({2, 4})}, 0);
      },
      {"[cat]", "must match except in dimension 0", "expected size 3", "got size 4",
       "tensor number 1"});
  expect_error([] { cat({kiln::zeros({2, 3}), kiln::zeros({2, 3})}, 2); }, {"[cat]", "dim 2"});
}

// ---- stack ------------------------------------------------------------------------------------

TEST(Stack, MatchesReference) {
  for (ScalarType dt : {kFloat, kHalf, kLong, kBool}) {
    std::vector<Tensor> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(random_tensor({4, 7}, dt, -3, 3));
    for (int64_t dim : {0, 1, 2, -1, -3}) {
      int64_t d = dim < 0 ? dim + 3 : dim;
      Sizes out_sizes{4, 7};
      out_sizes.insert(out_sizes.begin() + d, 3);
      std::vector<std::vector<double>> v;
      for (const Tensor& t : ts) v.push_back(to_vector(t));
      Tensor ref = build(out_sizes, [&](std::vector<int64_t> c) {
        int64_t k = c[d];
        c.erase(c.begin() + d);
        return v[k][ravel(c, {4, 7})];
      });
      EXPECT_TRUE(close(stack(ts, dim), ref, 0, 0)) << dtype_name(dt) << " dim " << dim;
      std::vector<Tensor> nc{non_contiguous(ts[0]), ts[1].t().contiguous().t(), ts[2]};
      EXPECT_TRUE(close(stack(nc, dim), ref, 0, 0)) << dtype_name(dt) << " dim " << dim;
    }
  }
}

TEST(Stack, ScalarsPromotionAndZeroSize) {
  Tensor a = kiln::full({}, 1.5, kiln::dtype(kFloat)), b = kiln::full({}, 3, kiln::dtype(kLong));
  Tensor s = stack({a, b});
  EXPECT_EQ(sizes_of(s), Sizes{2});
  EXPECT_EQ(s.dtype(), kFloat);
  EXPECT_TRUE(close(s, from_doubles({1.5, 3.0}, {2}), 0, 0));
  Tensor z = stack({kiln::zeros({0}), kiln::zeros({0})}, 1);
  EXPECT_EQ(sizes_of(z), (Sizes{0, 2}));
}

TEST(Stack, Errors) {
  expect_error([] { stack({}, 0); }, {"[stack]", "empty list"});
  expect_error(
      [] {
        stack({kiln::zeros({2, 3}), kiln::zeros({3, 2})}, 0);
      },
      {"[stack]", "equal size", "[2, 3] at entry 0", "[3, 2] at entry 1"});
  expect_error([] { stack({kiln::zeros({2, 3})}, 3); }, {"[stack]", "dim 3"});
  expect_error([] { stack({kiln::zeros({2, 3})}, -4); }, {"[stack]", "dim -4"});
}

// ---- split / chunk ----------------------------------------------------------------------------

// Checks that pieces are views of x along d with the given lengths and the right values.
void expect_pieces(const Tensor& x, const std::vector<Tensor>& pieces, int64_t d,
                   const Sizes& lengths) {
  ASSERT_EQ(pieces.size(), lengths.size());
  std::vector<double> xv = to_vector(x);
  int64_t start = 0;
  for (size_t k = 0; k < pieces.size(); ++k) {
    Sizes want = sizes_of(x);
    want[d] = lengths[k];
    EXPECT_EQ(sizes_of(pieces[k]), want) << "piece " << k;
    Tensor ref = build(want, [&](std::vector<int64_t> c) {
      c[d] += start;
      return xv[ravel(c, sizes_of(x))];
    });
    EXPECT_TRUE(close(pieces[k], ref, 0, 0)) << "piece " << k;
    if (pieces[k].numel() > 0) {
      EXPECT_EQ(pieces[k].impl()->storage(), x.impl()->storage()) << "piece " << k;
    }
    start += lengths[k];
  }
}

TEST(Split, BySizeMatchesLibtorch) {
  Tensor x = random_tensor({7, 5});
  expect_pieces(x, split(x, 3), 0, {3, 3, 1});
  expect_pieces(x, split(x, 7), 0, {7});
  expect_pieces(x, split(x, 10), 0, {7});  // larger than the dim: one short split
  expect_pieces(x, split(x, 2, -1), 1, {2, 2, 1});
  expect_pieces(x, x.split(1, 1), 1, {1, 1, 1, 1, 1});
  Tensor nc = non_contiguous(random_tensor({4, 9}, kHalf));
  expect_pieces(nc, split(nc, 4, 1), 1, {4, 4, 1});
  Tensor e = kiln::zeros({0, 3});
  expect_pieces(e, split(e, 0), 0, {0});
  expect_pieces(e, split(e, 2), 0, {0});
}

TEST(Split, BySizesList) {
  Tensor x = random_tensor({3, 10}, kInt, -9, 9);
  expect_pieces(x, split(x, IntArrayRef{2, 0, 5, 3}, 1), 1, {2, 0, 5, 3});
  expect_pieces(x, split(x, IntArrayRef{3}, 0), 0, {3});
  expect_pieces(x, x.split(IntArrayRef{1, 2}, -2), 0, {1, 2});
}

TEST(Split, PiecesShareMemoryWithBase) {
  Tensor x = kiln::zeros({6, 4});
  auto parts = split(x, 4);
  parts[1].fill_(3.0);
  auto sized = split(x, IntArrayRef{1, 5}, 0);
  sized[0].select(1, 2).fill_(-1.0);
  Tensor ref = build({6, 4}, [](const std::vector<int64_t>& c) {
    if (c[0] >= 4) return 3.0;
    if (c[0] == 0 && c[1] == 2) return -1.0;
    return 0.0;
  });
  EXPECT_TRUE(close(x, ref, 0, 0));
}

TEST(Split, Errors) {
  Tensor s = kiln::zeros({});
  expect_error([&] { split(s, 1); }, {"[split]", "1-dimensional"});
  expect_error([] { split(kiln::zeros({4}), -1); }, {"[split]", "non-negative", "-1"});
  expect_error([] { split(kiln::zeros({4}), 0); }, {"[split]", "can only be 0", "size of 4"});
  expect_error(
      [] {
        split(kiln::zeros({4}), IntArrayRef{1, 2});
      },
      {"[split]", "sum exactly to 4", "[1, 2]"});
  expect_error(
      [] {
        split(kiln::zeros({4}), IntArrayRef{5, -1});
      },
      {"[split]", "non-negative entries", "[5, -1]"});
  expect_error([] { split(kiln::zeros({4}), 2, 1); }, {"[split]", "dim 1"});
}

TEST(Chunk, UnevenChunksMatchLibtorch) {
  // libtorch: split_size = ceil(n / chunks), so fewer than `chunks` pieces can come back.
  Tensor x = random_tensor({5, 6}, kDouble);
  expect_pieces(x, chunk(x, 3), 0, {2, 2, 1});
  expect_pieces(x, chunk(x, 4, 1), 1, {2, 2, 2});
  expect_pieces(x, chunk(x, 5, -1), 1, {2, 2, 2});
  expect_pieces(x, chunk(x, 1), 0, {5});
  expect_pieces(x, chunk(x, 9), 0, {1, 1, 1, 1, 1});
  Tensor e = kiln::zeros({0, 2});
  expect_pieces(e, chunk(e, 3), 0, {0, 0, 0});
  Tensor nc = non_contiguous(random_tensor({3, 7}, kBool));
  expect_pieces(nc, nc.chunk(2, 1), 1, {4, 3});
}

TEST(Chunk, ChunksShareMemoryAndErrors) {
  Tensor x = kiln::zeros({2, 5}, kiln::dtype(kLong));
  auto parts = chunk(x, 2, 1);
  parts[1].fill_(7);
  EXPECT_TRUE(close(
      x, build({2, 5}, [](const std::vector<int64_t>& c) { return c[1] >= 3 ? 7.0 : 0.0; }), 0, 0));
  expect_error([&] { chunk(x, 0); }, {"[chunk]", "greater than 0", "0"});
  expect_error([] { chunk(kiln::zeros({}), 2); }, {"[chunk]", "1-dimensional"});
  expect_error([&] { chunk(x, 2, 2); }, {"[chunk]", "dim 2"});
}

// ---- gather -----------------------------------------------------------------------------------

// Random int64 index of shape isz with values in [0, n).
Tensor random_index(const Sizes& isz, int64_t n) { return random_tensor(isz, kLong, 0, n); }

Tensor gather_ref(const Tensor& self, int64_t d, const Tensor& index) {
  std::vector<double> sv = to_vector(self), iv = to_vector(index);
  Sizes ssz = sizes_of(self), isz = sizes_of(index);
  return build(isz, [&](std::vector<int64_t> c) {
    int64_t f = ravel(c, isz);
    c[d] = static_cast<int64_t>(iv[f]);
    return sv[ravel(c, ssz)];
  });
}

TEST(Gather, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kHalf, kInt, kChar, kBool}) {
    Tensor self = random_tensor({4, 5, 6}, dt, -9, 9);
    for (int64_t dim : {0, 1, 2, -1, -2}) {
      int64_t d = dim < 0 ? dim + 3 : dim;
      Sizes isz{3, 4, 5};
      isz[d] = 7;  // the gathered dim may be longer than self's
      Tensor idx = random_index(isz, self.size(d));
      Tensor ref = gather_ref(self, d, idx);
      Tensor out = gather(self, dim, idx);
      EXPECT_EQ(out.dtype(), dt);
      EXPECT_TRUE(close(out, ref, 0, 0)) << dtype_name(dt) << " dim " << dim;
      EXPECT_TRUE(close(gather(non_contiguous(self), dim, non_contiguous(idx)), ref, 0, 0))
          << dtype_name(dt) << " dim " << dim;
      EXPECT_TRUE(
          close(self.transpose(0, 2).contiguous().transpose(0, 2).gather(dim, idx), ref, 0, 0));
    }
  }
}

TEST(Gather, LargeScalarAndEmpty) {
  Tensor self = random_tensor({1025, 67});
  Tensor idx = random_index({1025, 40}, 67);
  EXPECT_TRUE(close(gather(self, 1, idx), gather_ref(self, 1, idx), 0, 0));
  Tensor s = kiln::full({}, 2.5);
  Tensor i0 = kiln::zeros({}, kiln::dtype(kLong));
  Tensor g = gather(s, 0, i0);
  EXPECT_EQ(g.dim(), 0);
  EXPECT_EQ(g.item<double>(), 2.5);
  Tensor e = gather(self, 0, kiln::zeros({0, 3}, kiln::dtype(kLong)));
  EXPECT_EQ(sizes_of(e), (Sizes{0, 3}));
  // libtorch accepts an empty index of any dtype and skips the shape checks.
  EXPECT_EQ(gather(self, 0, kiln::zeros({0})).numel(), 0);
}

TEST(Gather, Errors) {
  Tensor self = random_tensor({4, 5});
  expect_error(
      [&] {
        gather(self, 0, kiln::zeros({2, 2}, kiln::dtype(kInt)));
      },
      {"[gather]", "int32", "int64"});
  expect_error([&] { gather(self, 0, kiln::zeros({2}, kiln::dtype(kLong))); },
               {"[gather]", "same number of dimensions", "[2]", "[4, 5]"});
  expect_error(
      [&] {
        gather(self, 0, kiln::zeros({2, 6}, kiln::dtype(kLong)));
      },
      {"[gather]", "dimension 1", "[2, 6]", "[4, 5]"});
  Tensor bad = kiln::zeros({2, 3}, kiln::dtype(kLong));
  bad.select(0, 1).select(0, 2).fill_(4);
  expect_error([&] { gather(self, 0, bad); },
               {"[gather]", "index 4 is out of bounds for dimension 0 with size 4"});
  bad.select(0, 1).select(0, 2).fill_(-1);
  expect_error([&] { gather(self, 1, bad); }, {"[gather]", "index -1", "dimension 1", "size 5"});
  expect_error([&] { gather(self, 2, bad); }, {"[gather]", "dim 2"});
}

// ---- scatter ----------------------------------------------------------------------------------

// An index of shape isz whose values along d are distinct within each line (no write races to
// reason about), drawn from [0, n).
Tensor distinct_index(const Sizes& isz, int64_t d, int64_t n) {
  std::vector<double> v(numel_of(isz));
  Sizes outer = isz;
  outer[d] = 1;
  for (int64_t o = 0; o < numel_of(outer); ++o) {
    std::vector<int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng());
    std::vector<int64_t> c = unravel(o, outer);
    for (int64_t j = 0; j < isz[d]; ++j) {
      c[d] = j;
      v[ravel(c, isz)] = static_cast<double>(perm[j]);
    }
  }
  return from_doubles(v, isz, kLong);
}

// Reference scatter: src (a tensor, or the value when src_v is null), add or overwrite.
Tensor scatter_ref(const Tensor& self, int64_t d, const Tensor& index, const Tensor* src,
                   double value, bool add) {
  std::vector<double> out = to_vector(self), iv = to_vector(index);
  std::vector<double> rv = src ? to_vector(*src) : std::vector<double>();
  Sizes ssz = sizes_of(self), isz = sizes_of(index), rsz = src ? sizes_of(*src) : Sizes();
  for (int64_t f = 0; f < numel_of(isz); ++f) {
    std::vector<int64_t> c = unravel(f, isz);
    double v = src ? rv[ravel(c, rsz)] : value;
    c[d] = static_cast<int64_t>(iv[f]);
    double& o = out[ravel(c, ssz)];
    o = add ? o + v : v;
  }
  return from_doubles(out, ssz);
}

TEST(Scatter, TensorSourceMatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kHalf, kLong, kByte, kBool}) {
    Tensor self = random_tensor({5, 6, 7}, dt, -9, 9);
    for (int64_t dim : {0, 1, 2, -1}) {
      int64_t d = dim < 0 ? dim + 3 : dim;
      Sizes isz{4, 5, 6};
      isz[d] = 3;
      Tensor idx = distinct_index(isz, d, self.size(d));
      Tensor src = random_tensor({5, 6, 7}, dt, -9, 9);
      Tensor ref = scatter_ref(self, d, idx, &src, 0, false);
      Tensor out = scatter(self, dim, idx, src);
      EXPECT_EQ(out.dtype(), dt);
      EXPECT_TRUE(close(out, ref, 0, 0)) << dtype_name(dt) << " dim " << dim;
      EXPECT_TRUE(close(
          scatter(non_contiguous(self), dim, non_contiguous(idx), non_contiguous(src)), ref, 0, 0))
          << dtype_name(dt) << " dim " << dim;
      // Out-of-place leaves self alone.
      EXPECT_TRUE(close(self, from_doubles(to_vector(self), sizes_of(self)), 0, 0));
    }
  }
}

TEST(Scatter, ScalarValueAndInPlaceOnStridedView) {
  Tensor self = random_tensor({6, 9}, kFloat);
  Tensor idx = distinct_index({6, 4}, 1, 9);
  EXPECT_TRUE(
      close(scatter(self, 1, idx, 2.5), scatter_ref(self, 1, idx, nullptr, 2.5, false), 0, 0));
  Tensor ints = random_tensor({6, 9}, kInt, -5, 5);
  // The value converts to self's dtype (2.75 -> 2 for int32).
  EXPECT_TRUE(
      close(scatter(ints, 1, idx, 2.75), scatter_ref(ints, 1, idx, nullptr, 2, false), 0, 0));

  Tensor base = random_tensor({6, 18}, kDouble);
  Tensor view = base.slice(1, 0, std::nullopt, 2);  // every other column: non-contiguous
  Tensor base_before = base.clone();
  Tensor src = random_tensor({6, 4}, kDouble);
  Tensor want_view = scatter_ref(view, 1, idx, &src, 0, false);
  Tensor& r = view.scatter_(1, idx, src);
  EXPECT_TRUE(r.is_same(view));
  EXPECT_TRUE(close(view, want_view, 0, 0));
  // The odd columns of the base are untouched, the even ones are the scattered view.
  std::vector<double> bv = to_vector(base_before), wv = to_vector(want_view);
  EXPECT_TRUE(close(base,
                    build({6, 18},
                          [&](const std::vector<int64_t>& c) {
                            return c[1] % 2 ? bv[c[0] * 18 + c[1]] : wv[c[0] * 9 + c[1] / 2];
                          }),
                    0, 0));
  view.scatter_(0, distinct_index({2, 9}, 0, 6), -1.0);
  EXPECT_EQ(to_vector(base.slice(1, 0, std::nullopt, 2).eq(-1.0).sum()).at(0), 18.0);
}

TEST(Scatter, AddAccumulatesDuplicates) {
  for (ScalarType dt : {kFloat, kDouble, kInt, kLong, kHalf}) {
    Tensor self = random_tensor({4, 33}, dt, -3, 3);
    for (int64_t d : {0, 1}) {
      Sizes isz{4, 33};
      isz[d] = d == 0 ? 9 : 70;  // longer than self along d: duplicates everywhere
      Tensor idx = random_index(isz, self.size(d));
      Tensor src = random_tensor(isz, dt, -3, 3);
      Tensor ref = scatter_ref(self, d, idx, &src, 0, true);
      double tol = dt == kHalf ? 1e-2 : 1e-6;
      EXPECT_TRUE(close(scatter_add(self, d, idx, src), ref, tol, tol)) << dtype_name(dt);
      Tensor inplace = non_contiguous(self);
      inplace.scatter_add_(d, non_contiguous(idx), src);
      EXPECT_TRUE(close(inplace, ref, tol, tol)) << dtype_name(dt);
    }
  }
  // Bool adds as logical or.
  Tensor b = kiln::zeros({3}, kiln::dtype(kBool));
  Tensor idx = from_doubles({2, 2, 0}, {3}, kLong);
  Tensor src = from_doubles({0, 1, 0}, {3}, kBool);
  EXPECT_TRUE(close(scatter_add(b, 0, idx, src), from_doubles({0, 0, 1}, {3}), 0, 0));
}

TEST(Scatter, ScalarTensorsAndEmptyIndex) {
  Tensor s = kiln::full({}, 1.0);
  Tensor i0 = kiln::zeros({}, kiln::dtype(kLong));
  Tensor out = scatter(s, 0, i0, kiln::full({}, 4.0));
  EXPECT_EQ(out.dim(), 0);
  EXPECT_EQ(out.item<double>(), 4.0);
  Tensor self = random_tensor({3, 4});
  Tensor same = scatter(self, 0, kiln::zeros({0, 4}, kiln::dtype(kLong)), random_tensor({3, 4}));
  EXPECT_TRUE(close(same, self, 0, 0));
}

TEST(Scatter, FailingScatterLeavesTargetUnchanged) {
  Tensor self = random_tensor({8, 5});
  Tensor before = self.clone();
  // Valid everywhere except the very last element, which is out of range.
  Tensor idx = distinct_index({8, 5}, 0, 8);
  idx.select(0, 7).select(0, 4).fill_(8);
  Tensor src = random_tensor({8, 5});
  expect_error([&] { self.scatter_(0, idx, src); },
               {"[scatter_]", "index 8 is out of bounds for dimension 0 with size 8"});
  EXPECT_TRUE(close(self, before, 0, 0));
  expect_error([&] { self.scatter_(0, idx, 1.0); }, {"[scatter_]", "index 8"});
  EXPECT_TRUE(close(self, before, 0, 0));
  expect_error([&] { self.scatter_add_(0, idx, src); }, {"[scatter_add_]", "index 8"});
  EXPECT_TRUE(close(self, before, 0, 0));
  idx.select(0, 7).select(0, 4).fill_(-1);
  expect_error([&] { self.scatter_(0, idx, src); }, {"[scatter_]", "index -1"});
  EXPECT_TRUE(close(self, before, 0, 0));
}

TEST(Scatter, Errors) {
  Tensor self = random_tensor({4, 5});
  Tensor idx = kiln::zeros({2, 3}, kiln::dtype(kLong));
  expect_error(
      [&] {
        scatter(self, 0, idx, random_tensor({4, 5}, kDouble));
      },
      {"[scatter]", "dtype", "float32", "float64"});
  expect_error(
      [&] {
        scatter(self, 0, idx.to(kInt), random_tensor({4, 5}));
      },
      {"[scatter]", "int32", "int64"});
  expect_error([&] { scatter(self, 0, kiln::zeros({2}, kiln::dtype(kLong)), self); },
               {"[scatter]", "same number of dimensions", "self"});
  expect_error([&] { scatter(self, 0, idx, random_tensor({4})); },
               {"[scatter]", "same number of dimensions", "src"});
  expect_error(
      [&] {
        scatter(self, 0, kiln::zeros({2, 6}, kiln::dtype(kLong)), 1.0);
      },
      {"[scatter]", "dimension 1", "[2, 6]", "[4, 5]"});
  expect_error(
      [&] {
        scatter(self, 0, idx, random_tensor({1, 5}));
      },
      {"[scatter]", "src", "[1, 5]"});
  expect_error(
      [&] {
        scatter_add(self, 1, idx, random_tensor({2, 2}));
      },
      {"[scatter_add]", "src", "[2, 2]"});
  expect_error([&] { self.scatter_(3, idx, 1.0); }, {"[scatter_]", "dim 3"});
  expect_error(
      [&] {
        scatter_add(self, 0, idx, random_tensor({4, 5}, kHalf));
      },
      {"[scatter_add]", "float16"});
}

// ---- masked_fill ------------------------------------------------------------------------------

Tensor masked_fill_ref(const Tensor& self, const Tensor& mask, double value) {
  Sizes out = infer_broadcast_size(self.sizes(), mask.sizes());
  std::vector<double> sv = to_vector(self.expand(out)), mv = to_vector(mask.expand(out));
  for (size_t i = 0; i < sv.size(); ++i)
    if (mv[i] != 0) sv[i] = value;
  return from_doubles(sv, out);
}

TEST(MaskedFill, MatchesReferenceWithBroadcast) {
  for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16, kInt, kByte, kBool}) {
    Tensor self = random_tensor({4, 33}, dt, 0, 9);
    double v = dt == kBool ? 1.0 : 3.0;
    for (Sizes msz : {Sizes{4, 33}, Sizes{1, 33}, Sizes{4, 1}, Sizes{33}, Sizes{}}) {
      Tensor mask = random_tensor(msz, kBool);
      Tensor ref = masked_fill_ref(self, mask, v);
      EXPECT_TRUE(close(masked_fill(self, mask, v), ref, 0, 0)) << dtype_name(dt);
      EXPECT_TRUE(close(self.masked_fill(non_contiguous(mask), v), ref, 0, 0)) << dtype_name(dt);
      Tensor inplace = non_contiguous(self);
      Tensor& r = masked_fill_(inplace, mask, v);
      EXPECT_TRUE(r.is_same(inplace));
      EXPECT_TRUE(close(inplace, ref, 0, 0)) << dtype_name(dt);
    }
  }
}

TEST(MaskedFill, OutOfPlaceBroadcastsSelfAndConvertsValue) {
  Tensor self = random_tensor({5}, kInt, -5, 5);
  Tensor mask = random_tensor({3, 5}, kBool);
  Tensor out = masked_fill(self, mask, 2.75);  // converted to int32: 2
  EXPECT_EQ(sizes_of(out), (Sizes{3, 5}));
  EXPECT_EQ(out.dtype(), kInt);
  EXPECT_TRUE(close(out, masked_fill_ref(self, mask, 2), 0, 0));
  Tensor big = random_tensor({257, 129});
  Tensor bmask = random_tensor({257, 129}, kBool);
  EXPECT_TRUE(close(masked_fill(big, bmask, -7.0), masked_fill_ref(big, bmask, -7.0), 0, 0));
  Tensor empty = kiln::zeros({0, 3});
  EXPECT_EQ(masked_fill(empty, random_tensor({3}, kBool), 1.0).numel(), 0);
}

TEST(MaskedFill, InPlaceWritesThroughViews) {
  Tensor base = kiln::zeros({4, 6});
  Tensor view = base.slice(1, 1, 4);
  Tensor mask = from_doubles({1, 0, 1}, {3}, kBool);
  view.masked_fill_(mask, 5.0);
  EXPECT_TRUE(
      close(base,
            build({4, 6},
                  [](const std::vector<int64_t>& c) { return c[1] == 1 || c[1] == 3 ? 5.0 : 0.0; }),
            0, 0));
}

TEST(MaskedFill, Errors) {
  Tensor self = random_tensor({4, 5});
  expect_error(
      [&] {
        masked_fill(self, random_tensor({4, 5}), 1.0);
      },
      {"[masked_fill]", "boolean masks", "float32"});
  expect_error(
      [&] {
        masked_fill_(self, kiln::ones({4, 5}, kiln::dtype(kByte)), 1.0);
      },
      {"[masked_fill_]", "boolean masks", "uint8"});
  Tensor row = random_tensor({5});
  expect_error(
      [&] {
        masked_fill_(row, random_tensor({4, 5}, kBool), 1.0);
      },
      {"[masked_fill_]", "[4, 5]", "[5]"});
  expect_error(
      [&] {
        masked_fill(self, random_tensor({3, 5}, kBool), 1.0);
      },
      {"[masked_fill]", "[4, 5]", "[3, 5]"});
}

// ---- one_hot ----------------------------------------------------------------------------------

Tensor one_hot_ref(const Tensor& self, int64_t classes) {
  std::vector<double> iv = to_vector(self);
  Sizes out = sizes_of(self);
  out.push_back(classes);
  return build(out, [&](const std::vector<int64_t>& c) {
    std::vector<int64_t> pre(c.begin(), c.end() - 1);
    return iv[ravel(pre, sizes_of(self))] == static_cast<double>(c.back()) ? 1.0 : 0.0;
  });
}

TEST(OneHot, MatchesReference) {
  Tensor idx = random_tensor({3, 7}, kLong, 0, 6);
  std::vector<double> iv = to_vector(idx);
  double mx = *std::max_element(iv.begin(), iv.end());
  Tensor out = one_hot(idx);
  EXPECT_EQ(out.dtype(), kLong);
  EXPECT_TRUE(close(out, one_hot_ref(idx, static_cast<int64_t>(mx) + 1), 0, 0));
  EXPECT_TRUE(close(one_hot(non_contiguous(idx), 9), one_hot_ref(idx, 9), 0, 0));
  Tensor s = kiln::full({}, 2, kiln::dtype(kLong));
  EXPECT_TRUE(close(one_hot(s, 4), from_doubles({0, 0, 1, 0}, {4}), 0, 0));
  Tensor big = random_tensor({1025, 33}, kLong, 0, 10);
  EXPECT_TRUE(close(one_hot(big, 10), one_hot_ref(big, 10), 0, 0));
  Tensor e = one_hot(kiln::zeros({0, 2}, kiln::dtype(kLong)), 3);
  EXPECT_EQ(sizes_of(e), (Sizes{0, 2, 3}));
}

TEST(OneHot, Errors) {
  expect_error([] { one_hot(kiln::zeros({3}, kiln::dtype(kInt))); },
               {"[one_hot]", "int32", "int64"});
  expect_error(
      [] {
        one_hot(from_doubles({1, -2}, {2}, kLong));
      },
      {"[one_hot]", "non-negative", "-2"});
  expect_error(
      [] {
        one_hot(from_doubles({1, 5}, {2}, kLong), 5);
      },
      {"[one_hot]", "smaller than num_classes", "5"});
  expect_error([] { one_hot(kiln::zeros({0}, kiln::dtype(kLong))); },
               {"[one_hot]", "empty tensor"});
}

}  // namespace
}  // namespace kiln
