// Tests of the linear algebra ops (mm, bmm, addmm, matmul, linear, dot) against float64
// references computed here with naive loops, over odd sizes, transposed/strided/expanded
// operands, zero-size dims, several dtypes, the oneDNN primitive cache and every error path.
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include "../src/tensor/onednn.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::close;
using testing::expect_error;
using testing::non_contiguous;
using testing::random_tensor;
using testing::to_vector;

Tensor from_vector(const std::vector<double>& v, IntArrayRef sizes) {
  Tensor t = empty(sizes, dtype(kDouble));
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t;
}

// Reference product with the magnitude sum(|a||b|) of every output, which bounds the rounding
// error of any summation order.
struct Ref {
  std::vector<double> value, magnitude;
};

// [batch, n, k] x [batch, k, m] with row-major vectors.
Ref ref_bmm(const std::vector<double>& a, const std::vector<double>& b, int64_t batch, int64_t n,
            int64_t k, int64_t m) {
  Ref r{std::vector<double>(batch * n * m, 0.0), std::vector<double>(batch * n * m, 0.0)};
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t q = 0; q < k; ++q) {
          const double x = a[(p * n + i) * k + q], y = b[(p * k + q) * m + j];
          r.value[(p * n + i) * m + j] += x * y;
          r.magnitude[(p * n + i) * m + j] += std::abs(x * y);
        }
  return r;
}

// Relative error allowed against the magnitude, per dtype (0: exact, for integers).
double tol_for(ScalarType t) {
  switch (t) {
    case kBFloat16:
      return 1.6e-2;
    case kHalf:
      return 2e-3;
    case kFloat:
      return 2e-6;
    case kDouble:
      return 1e-13;
    default:
      return 0.0;
  }
}

::testing::AssertionResult matches(const Tensor& actual, const Ref& ref, IntArrayRef sizes,
                                   ScalarType dt) {
  if (!actual.sizes().equals(sizes))
    return ::testing::AssertionFailure()
           << "sizes " << shape_str(actual.sizes()) << ", expected " << shape_str(sizes);
  if (actual.dtype() != dt)
    return ::testing::AssertionFailure() << "dtype " << actual.dtype() << ", expected " << dt;
  const std::vector<double> got = to_vector(actual);
  const double tol = tol_for(dt);
  for (size_t i = 0; i < got.size(); ++i) {
    const double allowed = tol * ref.magnitude[i] + (tol > 0 ? 1e-30 : 0.0);
    if (!(std::abs(got[i] - ref.value[i]) <= allowed))
      return ::testing::AssertionFailure()
             << "element " << i << " of " << got.size() << ": got " << got[i] << ", expected "
             << ref.value[i] << " (allowed error " << allowed << ", sizes "
             << shape_str(actual.sizes()) << ", dtype " << dt << ")";
  }
  return ::testing::AssertionSuccess();
}

const ScalarType kMmTypes[] = {kFloat, kDouble, kBFloat16, kHalf, kLong, kInt};
struct Mnk {
  int64_t n, k, m;
};
const Mnk kSizes[] = {{1, 1, 1}, {3, 17, 5}, {17, 33, 65}, {65, 3, 1}, {33, 65, 17}, {1, 65, 33}};

// ---- mm -------------------------------------------------------------------------------------
TEST(Mm, MatchesReferenceForEveryDtypeAndOddSizes) {
  for (ScalarType dt : kMmTypes) {
    for (const Mnk& s : kSizes) {
      Tensor a = random_tensor({s.n, s.k}, dt), b = random_tensor({s.k, s.m}, dt);
      Ref ref = ref_bmm(to_vector(a), to_vector(b), 1, s.n, s.k, s.m);
      EXPECT_TRUE(matches(mm(a, b), ref, {s.n, s.m}, dt))
          << dt << " " << s.n << "x" << s.k << "x" << s.m;
      EXPECT_TRUE(matches(a.mm(b), ref, {s.n, s.m}, dt));
    }
  }
}

TEST(Mm, TransposedStridedAndExpandedOperands) {
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kLong}) {
    const int64_t n = 17, k = 33, m = 9;
    Tensor a = random_tensor({n, k}, dt), b = random_tensor({k, m}, dt);
    Ref ref = ref_bmm(to_vector(a), to_vector(b), 1, n, k, m);
    Tensor at = a.t().contiguous().t();  // column-major storage
    Tensor bt = b.t().contiguous().t();
    EXPECT_FALSE(at.is_contiguous());
    EXPECT_TRUE(matches(mm(at, b), ref, {n, m}, dt)) << dt;
    EXPECT_TRUE(matches(mm(a, bt), ref, {n, m}, dt)) << dt;
    EXPECT_TRUE(matches(mm(at, bt), ref, {n, m}, dt)) << dt;
    EXPECT_TRUE(matches(mm(non_contiguous(a), non_contiguous(b)), ref, {n, m}, dt)) << dt;
    EXPECT_TRUE(matches(mm(non_contiguous(at.t()).t(), b), ref, {n, m}, dt)) << dt;
    // Stride-0 rows: every row of b is the same.
    Tensor row = random_tensor({1, m}, dt);
    Tensor bx = row.expand({k, m});
    std::vector<double> rv = to_vector(row), bv;
    for (int64_t q = 0; q < k; ++q) bv.insert(bv.end(), rv.begin(), rv.end());
    EXPECT_TRUE(matches(mm(a, bx), ref_bmm(to_vector(a), bv, 1, n, k, m), {n, m}, dt)) << dt;
  }
}

TEST(Mm, ZeroSizeDims) {
  for (ScalarType dt : {kFloat, kDouble, kInt}) {
    Tensor z = mm(random_tensor({3, 0}, dt), random_tensor({0, 4}, dt));
    EXPECT_TRUE(close(z, zeros({3, 4}, dtype(kDouble)), 0, 0));
    EXPECT_EQ(z.dtype(), dt);
    EXPECT_EQ(mm(random_tensor({0, 5}, dt), random_tensor({5, 4}, dt)).sizes().vec(),
              (std::vector<int64_t>{0, 4}));
    EXPECT_EQ(mm(random_tensor({3, 5}, dt), random_tensor({5, 0}, dt)).sizes().vec(),
              (std::vector<int64_t>{3, 0}));
  }
}

TEST(Mm, IntegerOverflowWraps) {
  Tensor a = full({1, 2}, 100, dtype(kChar)), b = full({2, 1}, 2, dtype(kChar));
  // 100*2 + 100*2 = 400 wraps to 400 - 512 = -112 in int8.
  EXPECT_EQ(mm(a, b).item<int64_t>(), -112);
}

TEST(Mm, LargerThanOneTileAndParallel) {
  // Exercises the blocked kernel's row/col/depth tiles (32 x 256 x 128) and partial tiles.
  const int64_t n = 70, k = 300, m = 270;
  for (ScalarType dt : {kDouble, kLong, kFloat}) {
    Tensor a = random_tensor({n, k}, dt), b = random_tensor({k, m}, dt);
    Ref ref = ref_bmm(to_vector(a), to_vector(b), 1, n, k, m);
    EXPECT_TRUE(matches(mm(a, b), ref, {n, m}, dt)) << dt;
  }
}

TEST(Mm, InsideParallelRegionAndSingleThread) {
  Tensor a = random_tensor({33, 17}), b = random_tensor({17, 65});
  Ref ref = ref_bmm(to_vector(a), to_vector(b), 1, 33, 17, 65);
  std::vector<Tensor> outs(8);
  parallel_for(0, 8, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) outs[i] = mm(a, b);
  });
  for (const Tensor& o : outs) EXPECT_TRUE(matches(o, ref, {33, 65}, kFloat));
  const int threads = get_num_threads();
  set_num_threads(1);
  EXPECT_TRUE(matches(mm(a, b), ref, {33, 65}, kFloat));
  set_num_threads(threads);
}

TEST(Mm, PrimitiveIsCreatedOncePerSignature) {
  // Above dnnl_sgemm's size limit (2^23 multiply-adds), float32 products run the cached matmul
  // primitive; bfloat16 ones always do.
  Tensor a = random_tensor({129, 256}), b = random_tensor({256, 256});
  mm(a, b);
  const size_t before = onednn::cache_size();
  for (int i = 0; i < 3; ++i) mm(random_tensor({129, 256}), random_tensor({256, 256}));
  EXPECT_EQ(onednn::cache_size(), before);
  mm(random_tensor({130, 256}), random_tensor({256, 256}));
  EXPECT_EQ(onednn::cache_size(), before + 1);
  mm(random_tensor({7, 11}, kBFloat16), random_tensor({11, 13}, kBFloat16));
  EXPECT_EQ(onednn::cache_size(), before + 2);
}

TEST(Mm, SmallFloatProductsTakeSgemmWithoutAPrimitive) {
  const size_t before = onednn::cache_size();
  Tensor a = random_tensor({7, 11}), b = random_tensor({13, 11}).t();  // b column-major
  Ref ref = ref_bmm(to_vector(a), to_vector(b), 1, 7, 11, 13);
  // An out full of NaN: beta = 0 must not read it.
  Tensor out = full({7, 13}, std::nan(""));
  mm_out(out, a, b);
  EXPECT_TRUE(matches(out, ref, {7, 13}, kFloat));
  EXPECT_TRUE(matches(mm(a.t().contiguous().t(), b), ref, {7, 13}, kFloat));
  EXPECT_EQ(onednn::cache_size(), before);
}

TEST(Mm, Errors) {
  Tensor a = random_tensor({2, 3}), b = random_tensor({4, 5});
  expect_error([&] { mm(a, b); },
               {"[mm]", "[2, 3]", "[4, 5]", "expected mat1.size(1) == mat2.size(0)"});
  expect_error([&] { mm(random_tensor({2, 3, 4}), b); }, {"[mm]", "2-D", "[2, 3, 4]"});
  expect_error(
      [&] {
        mm(a, random_tensor({3, 5}, kDouble));
      },
      {"[mm]", "float32", "float64", "same dtype"});
  expect_error(
      [&] {
        mm(random_tensor({2, 3}, kBool), random_tensor({3, 2}, kBool));
      },
      {"[mm]", "bool"});
  expect_error([&] { mm(Tensor(), b); }, {"mm"});
}

// ---- bmm ------------------------------------------------------------------------------------
TEST(Bmm, MatchesReferenceWithStridedBatches) {
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kInt}) {
    for (int64_t batch : {1, 3}) {
      const int64_t n = 17, k = 5, m = 33;
      Tensor a = random_tensor({batch, n, k}, dt), b = random_tensor({batch, k, m}, dt);
      Ref ref = ref_bmm(to_vector(a), to_vector(b), batch, n, k, m);
      EXPECT_TRUE(matches(bmm(a, b), ref, {batch, n, m}, dt)) << dt;
      EXPECT_TRUE(matches(a.bmm(b), ref, {batch, n, m}, dt)) << dt;
      // Per-batch transposed storage, and batches interleaved in memory ([n, batch, k] permuted).
      Tensor at = a.transpose(1, 2).contiguous().transpose(1, 2);
      Tensor ai = a.permute({1, 0, 2}).contiguous().permute({1, 0, 2});
      EXPECT_TRUE(matches(bmm(at, non_contiguous(b)), ref, {batch, n, m}, dt)) << dt;
      EXPECT_TRUE(matches(bmm(ai, b), ref, {batch, n, m}, dt)) << dt;
      // A batch broadcast with stride 0.
      Tensor a0 = a.narrow(0, 0, 1).expand({batch, n, k});
      std::vector<double> av = to_vector(a0);
      EXPECT_TRUE(
          matches(bmm(a0, b), ref_bmm(av, to_vector(b), batch, n, k, m), {batch, n, m}, dt));
    }
  }
  EXPECT_EQ(bmm(random_tensor({0, 2, 3}), random_tensor({0, 3, 4})).sizes().vec(),
            (std::vector<int64_t>{0, 2, 4}));
  EXPECT_TRUE(close(bmm(random_tensor({2, 2, 0}), random_tensor({2, 0, 4})),
                    zeros({2, 2, 4}, dtype(kDouble)), 0, 0));
}

TEST(Bmm, Errors) {
  expect_error(
      [&] {
        bmm(random_tensor({2, 3}), random_tensor({2, 3, 4}));
      },
      {"[bmm]", "3-D", "[2, 3]"});
  expect_error(
      [&] {
        bmm(random_tensor({2, 3, 4}), random_tensor({3, 4, 5}));
      },
      {"[bmm]", "[2, 3, 4]", "[3, 4, 5]", "batch1.size(0) == batch2.size(0)"});
  expect_error(
      [&] {
        bmm(random_tensor({2, 3, 4}), random_tensor({2, 5, 5}));
      },
      {"[bmm]", "batch1.size(2) == batch2.size(1)"});
  expect_error(
      [&] {
        bmm(random_tensor({2, 3, 4}), random_tensor({2, 4, 5}, kDouble));
      },
      {"[bmm]", "float32", "float64"});
}

// ---- addmm ----------------------------------------------------------------------------------
// beta * self (broadcast from self_sizes to [n, m]) + alpha * a @ b.
std::vector<double> ref_addmm(const Tensor& self, const Ref& prod, int64_t n, int64_t m,
                              double beta, double alpha) {
  std::vector<double> s = to_vector(self.expand({n, m}));
  std::vector<double> out(n * m);
  for (int64_t i = 0; i < n * m; ++i)
    out[i] = (beta == 0 ? 0.0 : beta * s[i]) + alpha * prod.value[i];
  return out;
}

TEST(Addmm, BetaAlphaAndBroadcastSelf) {
  const int64_t n = 17, k = 33, m = 5;
  struct Case {
    double beta, alpha;
  };
  for (ScalarType dt : {kFloat, kDouble, kBFloat16}) {
    Tensor a = random_tensor({n, k}, dt), b = random_tensor({k, m}, dt);
    Ref prod = ref_bmm(to_vector(a), to_vector(b), 1, n, k, m);
    for (Case c : {Case{1, 1}, Case{0.5, 2}, Case{0, 1}, Case{-1, 0.25}}) {
      for (std::vector<int64_t> ss : {std::vector<int64_t>{n, m}, {m}, {1, m}, {n, 1}, {}}) {
        Tensor self = random_tensor(ss, dt);
        Tensor got = addmm(self, a, b, c.beta, c.alpha);
        Ref want{ref_addmm(self, prod, n, m, c.beta, c.alpha), prod.magnitude};
        std::vector<double> sv = to_vector(self.expand({n, m}));
        for (int64_t i = 0; i < n * m; ++i)
          want.magnitude[i] = std::abs(c.alpha) * prod.magnitude[i] + std::abs(c.beta * sv[i]);
        EXPECT_TRUE(matches(got, want, {n, m}, dt))
            << dt << " beta " << c.beta << " alpha " << c.alpha << " self " << shape_str(ss);
      }
    }
  }
}

// A 1-D self with beta = alpha = 1 goes to the GEMM as its bias: strided, integral and k = 0
// cases of that path.
TEST(Addmm, OneDimSelfAsGemmBias) {
  for (ScalarType dt : {kFloat, kDouble, kLong}) {
    Tensor a = random_tensor({6, 4}, dt, -3, 3), b = random_tensor({4, 5}, dt, -3, 3);
    Tensor self = random_tensor({10}, dt, -3, 3).slice(0, 0, 10, 2);  // strided
    Ref prod = ref_bmm(to_vector(a), to_vector(b), 1, 6, 4, 5);
    Tensor got = addmm(self, a, b, 1, 1);
    Ref want{ref_addmm(self, prod, 6, 5, 1, 1), prod.magnitude};
    for (double& v : want.magnitude) v += 3;
    EXPECT_TRUE(matches(got, want, {6, 5}, dt)) << dt;
    Tensor empty_k = addmm(self, random_tensor({6, 0}, dt), random_tensor({0, 5}, dt), 1, 1);
    EXPECT_TRUE(close(empty_k, self.expand({6, 5}).to(kDouble), 0, 0)) << dt;
  }
}

TEST(Addmm, SgemmBlocksOverThreads) {
  // Products on the dnnl_sgemm path split over kiln's pool: by rows when there are many, by
  // columns when few (an LSTM's [8, 256] x [256, 1024]); or, right after a primitive's
  // OpenMP team ran (`warm`), handed to that team; either operand transposed, the 1-D bias
  // written per block, beta and alpha; against float64, on 1-3 threads.
  const int threads = get_num_threads();
  const Tensor big = random_tensor({256, 256});  // 2^24 multiply-adds: the matmul primitive
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    for (auto [n, k, m] :
         std::vector<std::array<int64_t, 3>>{{8, 256, 1024}, {200, 64, 96}, {5, 300, 130}}) {
      for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
          for (bool warm : {false, true}) {
            SCOPED_TRACE(fmt::format("{} threads, [{}, {}] x [{}, {}]{}{}{}", t, n, k, k, m,
                                     ta ? ", a transposed" : "", tb ? ", b transposed" : "",
                                     warm ? ", OpenMP team warm" : ""));
            // (Whether the team still counts as spinning is a matter of time, not asserted: a
            // loaded machine may stall the test past the window.)
            if (warm) mm(big, big);
            Tensor a = ta ? random_tensor({k, n}).t() : random_tensor({n, k});
            Tensor b = tb ? random_tensor({m, k}).t() : random_tensor({k, m});
            Ref prod = ref_bmm(to_vector(a), to_vector(b), 1, n, k, m);
            Tensor bias = random_tensor({m});
            Ref want{ref_addmm(bias, prod, n, m, 1, 1), prod.magnitude};
            for (double& v : want.magnitude) v += 1;
            EXPECT_TRUE(matches(addmm(bias, a, b, 1, 1), want, {n, m}, kFloat));
            Tensor self = random_tensor({n, m});
            Ref scaled{ref_addmm(self, prod, n, m, 0.5, 2), prod.magnitude};
            for (double& v : scaled.magnitude) v = 2 * v + 0.5;
            EXPECT_TRUE(matches(addmm(self, a, b, 0.5, 2), scaled, {n, m}, kFloat));
          }
        }
      }
    }
  }
  set_num_threads(threads);
}

// Products handed to a primitive's spinning OpenMP team do not renew its window: one primitive
// must not send every later product to the team.
TEST(Addmm, HandedProductsDoNotRenewTheTeamWindow) {
  const int threads = get_num_threads();
  set_num_threads(2);
  const Tensor big = random_tensor({256, 256});  // 2^24 multiply-adds: the matmul primitive
  const Tensor a = random_tensor({200, 64}), b = random_tensor({64, 96});  // sgemm, 2 threads
  mm(big, big);
  if (!onednn::team_recently_used()) {
    set_num_threads(threads);
    GTEST_SKIP() << "no OpenMP team (or the machine stalled past the window)";
  }
  const auto start = std::chrono::steady_clock::now();
  const auto window = std::chrono::nanoseconds(onednn::kTeamSpinNs);
  while (std::chrono::steady_clock::now() - start < 2 * window) mm(a, b);
  EXPECT_FALSE(onednn::team_recently_used());
  set_num_threads(threads);
}

TEST(Addmm, BetaZeroIgnoresNaNInSelf) {
  for (ScalarType dt : {kFloat, kDouble}) {
    Tensor self = full({3, 4}, std::numeric_limits<double>::quiet_NaN(), dtype(dt));
    Tensor a = random_tensor({3, 5}, dt), b = random_tensor({5, 4}, dt);
    Ref prod = ref_bmm(to_vector(a), to_vector(b), 1, 3, 5, 4);
    EXPECT_TRUE(matches(addmm(self, a, b, 0, 1), prod, {3, 4}, dt));
    // k = 0 with beta = 0: zeros, not NaN.
    Tensor z = addmm(self, random_tensor({3, 0}, dt), random_tensor({0, 4}, dt), 0, 1);
    EXPECT_TRUE(close(z, zeros({3, 4}, dtype(kDouble)), 0, 0));
  }
}

TEST(Addmm, IntegersAndEmptyDepth) {
  Tensor self = random_tensor({4, 3}, kLong, -5, 5);
  Tensor a = random_tensor({4, 7}, kLong, -5, 5), b = random_tensor({7, 3}, kLong, -5, 5);
  Ref prod = ref_bmm(to_vector(a), to_vector(b), 1, 4, 7, 3);
  Tensor got = addmm(self, a, b, 2, 3);
  EXPECT_TRUE(close(got, from_vector(ref_addmm(self, prod, 4, 3, 2, 3), {4, 3}), 0, 0));
  // k = 0: beta * self.
  Tensor fself = random_tensor({4, 3}, kDouble);
  Tensor e = addmm(fself, random_tensor({4, 0}, kDouble), random_tensor({0, 3}, kDouble), 0.5, 2);
  std::vector<double> sv = to_vector(fself);
  for (double& v : sv) v *= 0.5;
  EXPECT_TRUE(close(e, from_vector(sv, {4, 3}), 1e-15, 0));
}

TEST(Addmm, Errors) {
  Tensor a = random_tensor({2, 3}), b = random_tensor({3, 4});
  expect_error(
      [&] {
        addmm(random_tensor({3, 4}), a, b);
      },
      {"[addmm]", "[3, 4]", "broadcasts to [2, 4]"});
  expect_error(
      [&] {
        addmm(random_tensor({2, 4}), a, random_tensor({2, 4}));
      },
      {"[addmm]", "[2, 3]", "[2, 4]", "mat1.size(1) == mat2.size(0)"});
  expect_error(
      [&] {
        addmm(random_tensor({2, 4}, kDouble), a, b);
      },
      {"[addmm]", "self", "float64", "float32"});
  expect_error([&] { addmm(random_tensor({2, 4}), a, b.unsqueeze(0)); }, {"[addmm]", "2-D"});
  expect_error(
      [&] {
        addmm(random_tensor({2, 4}, kLong), random_tensor({2, 3}, kLong),
              random_tensor({3, 4}, kLong), 0.5);
      },
      {"[addmm]", "beta 0.5", "int64", "integer beta and alpha"});
}

// ---- matmul ---------------------------------------------------------------------------------
// numpy matmul on row-major vectors, written independently of the library's folding.
Ref ref_matmul(const Tensor& x, const Tensor& y, std::vector<int64_t>& out_sizes) {
  std::vector<int64_t> xs = x.sizes().vec(), ys = y.sizes().vec();
  const bool xv = xs.size() == 1, yv = ys.size() == 1;
  if (xv) xs.insert(xs.begin(), 1);
  if (yv) ys.push_back(1);
  const int64_t n = xs[xs.size() - 2], k = xs.back(), m = ys.back();
  std::vector<int64_t> xb(xs.begin(), xs.end() - 2), yb(ys.begin(), ys.end() - 2);
  const size_t nb = std::max(xb.size(), yb.size());
  xb.insert(xb.begin(), nb - xb.size(), 1);
  yb.insert(yb.begin(), nb - yb.size(), 1);
  std::vector<int64_t> batch(nb);
  int64_t B = 1;
  for (size_t i = 0; i < nb; ++i) B *= (batch[i] = xb[i] == 1 ? yb[i] : xb[i]);
  std::vector<double> xvv = to_vector(x), yvv = to_vector(y);
  Ref r{std::vector<double>(B * n * m, 0.0), std::vector<double>(B * n * m, 0.0)};
  for (int64_t p = 0; p < B; ++p) {
    // Unravel p over batch, then ravel into x's and y's (size-1 dims broadcast).
    int64_t rem = p, xo = 0, yo = 0, xstride = 1, ystride = 1;
    for (int64_t d = static_cast<int64_t>(nb) - 1; d >= 0; --d) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      xo += (xb[d] == 1 ? 0 : idx) * xstride;
      yo += (yb[d] == 1 ? 0 : idx) * ystride;
      xstride *= xb[d];
      ystride *= yb[d];
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t q = 0; q < k; ++q) {
          const double v = xvv[(xo * n + i) * k + q] * yvv[(yo * k + q) * m + j];
          r.value[(p * n + i) * m + j] += v;
          r.magnitude[(p * n + i) * m + j] += std::abs(v);
        }
  }
  out_sizes = batch;
  if (!xv) out_sizes.push_back(n);
  if (!yv) out_sizes.push_back(m);
  return r;
}

// ---- out= variants ---------------------------------------------------------------------------
// mm_out, bmm_out and addmm_out write the same values as the functional ops into out: a fresh
// contiguous out, an empty one (resized), a strided one (written through a copy) and one that
// shares memory with an operand (computed aside first); wrong shapes and dtypes, and operands
// that require grad, are errors.
TEST(OutVariants, WriteTheProductIntoOut) {
  for (ScalarType dt : {kFloat, kDouble, kLong}) {
    const int64_t n = 7, k = 13, m = 5;
    Tensor a = random_tensor({n, k}, dt, -3, 3), b = random_tensor({k, m}, dt, -3, 3);
    Tensor self = random_tensor({m}, dt, -3, 3);
    Ref prod = ref_bmm(to_vector(a), to_vector(b), 1, n, k, m);
    Tensor out = empty({n, m}, dtype(dt));
    const void* where = out.data_ptr();
    Tensor& r = mm_out(out, a, b);
    EXPECT_TRUE(r.is_same(out));
    EXPECT_EQ(out.data_ptr(), where);  // written in place, no new buffer
    EXPECT_TRUE(matches(out, prod, {n, m}, dt)) << dt;
    Tensor resized = empty({0}, dtype(dt));
    mm_out(resized, a, b);
    EXPECT_TRUE(matches(resized, prod, {n, m}, dt)) << dt;
    Tensor wide = zeros({n, 2 * m}, dtype(dt));
    Tensor strided = wide.slice(1, 0, 2 * m, 2);
    mm_out(strided, a, b);
    EXPECT_TRUE(matches(strided, prod, {n, m}, dt)) << dt;
    EXPECT_TRUE(close(wide.slice(1, 1, 2 * m, 2), zeros({n, m}, dtype(kDouble)), 0, 0));
    Tensor biased = empty({n, m}, dtype(dt));
    addmm_out(biased, self, a, b);
    EXPECT_TRUE(close(biased, addmm(self, a, b), 0, 0)) << dt;
    // out shares memory with self: the product is computed aside, then copied.
    Tensor square = random_tensor({n, n}, dt, -3, 3), sq_b = random_tensor({n, n}, dt, -3, 3);
    const Tensor expect = addmm(square, square, sq_b, 2, 1);
    addmm_out(square, square, square.clone(), sq_b, 2, 1);
    EXPECT_TRUE(close(square, expect, 1e-12, 1e-12)) << dt;
    Tensor ba = random_tensor({3, n, k}, dt, -3, 3), bb = random_tensor({3, k, m}, dt, -3, 3);
    Tensor bout = empty({3, n, m}, dtype(dt));
    bmm_out(bout, ba, bb);
    EXPECT_TRUE(matches(bout, ref_bmm(to_vector(ba), to_vector(bb), 3, n, k, m), {3, n, m}, dt));
  }
}

TEST(OutVariants, Errors) {
  Tensor a = random_tensor({4, 3}), b = random_tensor({3, 2});
  Tensor wrong_shape = empty({2, 4});
  EXPECT_KILN_ERROR(mm_out(wrong_shape, a, b),
                    {"[mm_out]", "shape [2, 4]", "expected shape [4, 2]"});
  Tensor wrong_dtype = empty({4, 2}, dtype(kDouble));
  EXPECT_KILN_ERROR(mm_out(wrong_dtype, a, b), {"[mm_out]", "float64", "expected float32"});
  Tensor undefined;
  EXPECT_KILN_ERROR(bmm_out(undefined, a.unsqueeze(0), b.unsqueeze(0)), {"[bmm_out]", "undefined"});
  Tensor out = empty({4, 2});
  EXPECT_KILN_ERROR(addmm_out(out, random_tensor({2}), a, b.t()),
                    {"[addmm]", "cannot be multiplied"});
  Tensor g = a.clone().requires_grad_(true);
  EXPECT_KILN_ERROR(mm_out(out, g, b), {"[mm_out]", "autograd", "call mm instead"});
}

TEST(Matmul, AllNumpyCases) {
  using Shapes = std::pair<std::vector<int64_t>, std::vector<int64_t>>;
  const Shapes cases[] = {{{17}, {17}},
                          {{5}, {5, 3}},
                          {{3, 5}, {5}},
                          {{3, 5}, {5, 7}},
                          {{2, 3, 5}, {5, 7}},
                          {{3, 5}, {2, 5, 7}},
                          {{2, 3, 5}, {5}},
                          {{5}, {2, 5, 7}},
                          {{2, 1, 3, 4}, {5, 4, 2}},
                          {{4, 3, 2, 5}, {3, 5, 1}},
                          {{1, 3, 4}, {2, 4, 3}},
                          {{0, 3, 4}, {4, 2}},
                          {{2, 3, 0}, {2, 0, 4}},
                          {{1}, {1}},
                          {{0}, {0}}};
  for (ScalarType dt : {kFloat, kDouble, kLong}) {
    for (const auto& [xs, ys] : cases) {
      Tensor x = random_tensor(xs, dt), y = random_tensor(ys, dt);
      std::vector<int64_t> out_sizes;
      Ref ref = ref_matmul(x, y, out_sizes);
      EXPECT_TRUE(matches(matmul(x, y), ref, out_sizes, dt))
          << dt << " " << shape_str(xs) << " @ " << shape_str(ys);
      EXPECT_TRUE(matches(x.matmul(non_contiguous(y)), ref, out_sizes, dt))
          << dt << " " << shape_str(xs) << " @ " << shape_str(ys);
    }
  }
}

TEST(Matmul, Errors) {
  expect_error(
      [&] {
        matmul(random_tensor({}), random_tensor({2, 3}));
      },
      {"[matmul]", "0-D", "2-D"});
  expect_error(
      [&] {
        matmul(random_tensor({2, 3}), random_tensor({4, 5}));
      },
      {"[matmul]", "[2, 3]", "[4, 5]", "self.size(-1) == other.size(-2)"});
  expect_error(
      [&] {
        matmul(random_tensor({2, 3}), random_tensor({4}));
      },
      {"[matmul]", "other.size(0)"});
  expect_error(
      [&] {
        matmul(random_tensor({2, 2, 3}), random_tensor({3, 3, 4}));
      },
      {"[matmul]", "batch dims do not broadcast", "[2]", "[3]"});
  expect_error([&] { matmul(random_tensor({3}), random_tensor({4})); }, {"[dot]", "[3]", "[4]"});
  expect_error(
      [&] {
        matmul(random_tensor({2, 3}), random_tensor({3, 2}, kInt));
      },
      {"[matmul]", "float32", "int32"});
}

// ---- linear ---------------------------------------------------------------------------------
TEST(Linear, MatchesReferenceWithAndWithoutBias) {
  const int64_t in = 33, out = 17;
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kLong}) {
    for (std::vector<int64_t> lead : {std::vector<int64_t>{5}, {2, 3}, {}, {0}}) {
      std::vector<int64_t> xs = lead;
      xs.push_back(in);
      Tensor x = random_tensor(xs, dt), w = random_tensor({out, in}, dt);
      Tensor bias = random_tensor({out}, dt);
      int64_t rows = 1;
      for (int64_t d : lead) rows *= d;
      Ref prod = ref_bmm(to_vector(x), to_vector(w.t()), 1, rows, in, out);
      std::vector<int64_t> os = lead;
      os.push_back(out);
      EXPECT_TRUE(matches(linear(x, w), prod, os, dt)) << dt << " " << shape_str(xs);
      Ref with_bias = prod;
      std::vector<double> bv = to_vector(bias);
      for (int64_t i = 0; i < rows * out; ++i) {
        with_bias.value[i] += bv[i % out];
        with_bias.magnitude[i] += std::abs(bv[i % out]);
      }
      EXPECT_TRUE(matches(linear(x, w, bias), with_bias, os, dt)) << dt << " " << shape_str(xs);
      // A weight stored transposed ([in, out] in memory) and a strided input.
      Tensor wt = w.t().contiguous().t();
      EXPECT_TRUE(matches(linear(non_contiguous(x), wt, non_contiguous(bias)), with_bias, os, dt))
          << dt << " " << shape_str(xs);
    }
  }
}

TEST(Linear, BroadcastBiasAndVectorWeight) {
  Tensor x = random_tensor({4, 6}, kDouble), w = random_tensor({3, 6}, kDouble);
  Tensor b1 = random_tensor({1}, kDouble);
  Ref prod = ref_bmm(to_vector(x), to_vector(w.t()), 1, 4, 6, 3);
  const double bv = b1.item<double>();
  for (double& v : prod.value) v += bv;
  for (double& v : prod.magnitude) v += std::abs(bv);
  EXPECT_TRUE(matches(linear(x, w, b1), prod, {4, 3}, kDouble));
  // A 1-D weight is a single output feature whose dim is dropped.
  Tensor wv = random_tensor({6}, kDouble);
  Ref pv = ref_bmm(to_vector(x), to_vector(wv), 1, 4, 6, 1);
  EXPECT_TRUE(matches(linear(x, wv), pv, {4}, kDouble));
  // Zero in_features: the result is the bias.
  Tensor b = random_tensor({3}, kDouble);
  Tensor z = linear(random_tensor({4, 0}, kDouble), random_tensor({3, 0}, kDouble), b);
  EXPECT_TRUE(close(z, b.expand({4, 3}), 0, 0));
}

TEST(Linear, Errors) {
  expect_error(
      [&] {
        linear(random_tensor({2, 3}), random_tensor({4, 5}));
      },
      {"[linear]", "[2, 3]", "[4, 5]", "input.size(-1) == weight.size(1)"});
  expect_error([&] { linear(random_tensor({}), random_tensor({4, 5})); }, {"[linear]", "0-dim"});
  expect_error(
      [&] {
        linear(random_tensor({2, 3}), random_tensor({1, 4, 3}));
      },
      {"[linear]", "[1, 4, 3]", "[out_features, in_features]"});
  expect_error(
      [&] {
        linear(random_tensor({2, 3}), random_tensor({4, 3}, kDouble));
      },
      {"[linear]", "float32", "float64"});
  expect_error(
      [&] {
        linear(random_tensor({2, 3}), random_tensor({4, 3}), random_tensor({4}, kDouble));
      },
      {"[linear]", "bias", "float64"});
  expect_error(
      [&] {
        linear(random_tensor({2, 3}), random_tensor({4, 3}), random_tensor({5}));
      },
      {"[linear]", "bias sizes [5]", "[2, 4]"});
}

// ---- dot ------------------------------------------------------------------------------------
TEST(Dot, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kHalf, kLong, kByte}) {
    for (int64_t n : {0, 1, 33, 100003}) {
      const double lo = dt == kByte ? 0 : -2;
      Tensor a = random_tensor({n}, dt, lo, 2), b = random_tensor({n}, dt, lo, 2);
      std::vector<double> av = to_vector(a), bv = to_vector(b);
      Ref ref{{0.0}, {0.0}};
      for (int64_t i = 0; i < n; ++i) {
        ref.value[0] += av[i] * bv[i];
        ref.magnitude[0] += std::abs(av[i] * bv[i]);
      }
      if (dt == kByte) ref.value[0] = std::fmod(ref.value[0], 256.0);
      EXPECT_TRUE(matches(dot(a, b), ref, {}, dt)) << dt << " n=" << n;
      EXPECT_TRUE(matches(dot(non_contiguous(a), non_contiguous(b)), ref, {}, dt)) << dt;
    }
  }
}

TEST(Dot, Errors) {
  expect_error([&] { dot(random_tensor({2, 3}), random_tensor({3})); }, {"[dot]", "1-D", "[2, 3]"});
  expect_error([&] { dot(random_tensor({3}), random_tensor({4})); },
               {"[dot]", "[3]", "[4]", "same number of elements"});
  expect_error([&] { dot(random_tensor({3}), random_tensor({3}, kDouble)); },
               {"[dot]", "float32", "float64"});
  expect_error([&] { dot(random_tensor({3}, kBool), random_tensor({3}, kBool)); },
               {"[dot]", "bool"});
}

}  // namespace
}  // namespace kiln
