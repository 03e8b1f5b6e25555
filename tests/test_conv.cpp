// Tests of conv2d, max_pool2d, avg_pool2d and im2col against float64 references computed here
// with naive loops: strides, padding, dilation, groups, depthwise, ceil_mode, count_include_pad,
// divisor_override, channels-last and strided inputs, unbatched and empty batches, every error.
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

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

// The same values in channels-last memory ([N, H, W, C] storage viewed as [N, C, H, W]).
Tensor channels_last(const Tensor& t) {
  Tensor nhwc = t.permute({0, 2, 3, 1}).contiguous();
  Tensor v = nhwc.permute({0, 3, 1, 2});
  EXPECT_FALSE(v.is_contiguous());
  return v;
}

struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

// ---- conv2d ---------------------------------------------------------------------------------
struct ConvRef {
  Tensor value;          // float64 [N, O, OH, OW]
  double magnitude = 0;  // max over outputs of sum |x w| + |b|
};

ConvRef ref_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Geometry& g,
                   int64_t groups) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), cg = C / groups, og = O / groups;
  const int64_t OH = (H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  const int64_t OW = (W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  std::vector<double> xv = to_vector(x), wv = to_vector(w);
  std::vector<double> bv = b.defined() ? to_vector(b) : std::vector<double>(O, 0.0);
  std::vector<double> out(N * O * OH * OW);
  ConvRef r;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double s = bv[o], mag = std::abs(bv[o]);
          const int64_t group = o / og;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const double p = xv[((n * C + group * cg + c) * H + iy) * W + ix] *
                                 wv[((o * cg + c) * g.kh + i) * g.kw + j];
                s += p;
                mag += std::abs(p);
              }
          out[((n * O + o) * OH + oy) * OW + ox] = s;
          r.magnitude = std::max(r.magnitude, mag);
        }
  r.value = from_vector(out, {N, O, OH, OW});
  return r;
}

double conv_tol(ScalarType t) {
  switch (t) {
    case kDouble:
      return 1e-13;
    case kFloat:
      return 2e-6;
    case kHalf:
      return 2e-3;
    default:
      return 1.6e-2;
  }
}

struct ConvCase {
  int64_t N, C, H, W, O, groups;
  Geometry g;
};

const ConvCase kConvCases[] = {
    {2, 3, 7, 9, 4, 1, {3, 3, 1, 1, 0, 0, 1, 1}},    // plain
    {1, 4, 17, 13, 6, 2, {3, 3, 2, 2, 1, 1, 1, 1}},  // stride 2, padding 1, groups 2
    {2, 3, 9, 9, 5, 1, {3, 3, 1, 1, 1, 1, 2, 2}},    // dilation 2
    {1, 4, 8, 8, 4, 4, {3, 3, 1, 1, 1, 1, 1, 1}},    // depthwise
    {2, 3, 6, 7, 6, 3, {3, 3, 1, 1, 1, 1, 1, 1}},    // depthwise, multiplier 2
    {1, 2, 11, 8, 3, 1, {3, 1, 2, 1, 1, 0, 1, 1}},   // asymmetric kernel/stride/padding
    {3, 5, 5, 5, 7, 1, {1, 1, 1, 1, 0, 0, 1, 1}},    // 1x1
    {1, 1, 1, 1, 1, 1, {1, 1, 1, 1, 0, 0, 1, 1}},    // single element
    {1, 3, 33, 17, 8, 1, {5, 3, 3, 2, 2, 1, 2, 1}},  // mixed everything
};

TEST(Conv2d, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kHalf}) {
    for (const ConvCase& c : kConvCases) {
      const Geometry& g = c.g;
      Tensor x = random_tensor({c.N, c.C, c.H, c.W}, dt);
      Tensor w = random_tensor({c.O, c.C / c.groups, g.kh, g.kw}, dt);
      Tensor b = random_tensor({c.O}, dt);
      for (bool with_bias : {true, false}) {
        const Tensor bias = with_bias ? b : Tensor();
        ConvRef ref = ref_conv2d(x, w, bias, g, c.groups);
        Tensor got = conv2d(x, w, bias, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, c.groups);
        EXPECT_EQ(got.dtype(), dt);
        EXPECT_TRUE(close(got, ref.value, 0, conv_tol(dt) * ref.magnitude))
            << dt << " case C=" << c.C << " H=" << c.H << " groups=" << c.groups
            << " bias=" << with_bias;
      }
    }
  }
}

TEST(Conv2d, LayoutsUnbatchedAndEmpty) {
  for (ScalarType dt : {kFloat, kDouble}) {
    const Geometry g{3, 3, 2, 2, 1, 1, 1, 1};
    Tensor x = random_tensor({2, 4, 9, 10}, dt), w = random_tensor({6, 2, 3, 3}, dt);
    Tensor b = random_tensor({6}, dt);
    ConvRef ref = ref_conv2d(x, w, b, g, 2);
    const double atol = conv_tol(dt) * ref.magnitude;
    EXPECT_TRUE(
        close(conv2d(non_contiguous(x), non_contiguous(w), b, 2, 1, 1, 2), ref.value, 0, atol))
        << dt;
    Tensor cl = conv2d(channels_last(x), w, b, 2, 1, 1, 2);
    EXPECT_TRUE(close(cl, ref.value, 0, atol)) << dt;
    // Unbatched [C, H, W].
    Tensor one = conv2d(x.select(0, 1), w, b, 2, 1, 1, 2);
    EXPECT_TRUE(close(one, ref.value.select(0, 1), 0, atol)) << dt;
    // Empty batch.
    Tensor e = conv2d(random_tensor({0, 4, 9, 10}, dt), w, b, 2, 1, 1, 2);
    EXPECT_EQ(e.sizes().vec(), (std::vector<int64_t>{0, 6, 5, 5}));
  }
  // The kernel exactly as large as the padded input gives a 1x1 output.
  Tensor x = random_tensor({1, 2, 3, 3}), w = random_tensor({1, 2, 5, 5});
  ConvRef ref = ref_conv2d(x, w, Tensor(), {5, 5, 1, 1, 1, 1, 1, 1}, 1);
  EXPECT_TRUE(close(conv2d(x, w, {}, 1, 1), ref.value, 0, 2e-6 * ref.magnitude));
}

TEST(Conv2d, Errors) {
  Tensor x = random_tensor({1, 4, 8, 8}), w = random_tensor({6, 4, 3, 3});
  expect_error([&] { conv2d(random_tensor({8, 8}), w); }, {"[conv2d]", "[8, 8]", "4-D"});
  expect_error([&] { conv2d(x, random_tensor({6, 4, 3})); }, {"[conv2d]", "weight", "[6, 4, 3]"});
  expect_error(
      [&] {
        conv2d(x, random_tensor({6, 3, 3, 3}));
      },
      {"[conv2d]", "channels", "groups 1", "(4)", "(3)"});
  expect_error(
      [&] {
        conv2d(x, random_tensor({6, 2, 3, 3}), {}, 1, 0, 1, 3);
      },
      {"[conv2d]", "groups 3"});
  expect_error(
      [&] {
        conv2d(x, random_tensor({5, 2, 3, 3}), {}, 1, 0, 1, 2);
      },
      {"[conv2d]", "divisible by groups"});
  expect_error([&] { conv2d(x, w, {}, 1, 0, 1, 0); }, {"[conv2d]", "groups 0"});
  expect_error([&] { conv2d(x, w, random_tensor({5})); }, {"[conv2d]", "bias", "[5]", "[6]"});
  expect_error([&] { conv2d(x, w.to(kDouble)); }, {"[conv2d]", "float32", "float64"});
  expect_error([&] { conv2d(x, w, random_tensor({6}, kDouble)); }, {"[conv2d]", "bias", "float64"});
  expect_error([&] { conv2d(x.to(kLong), w.to(kLong)); }, {"[conv2d]", "int64", "floating-point"});
  expect_error(
      [&] {
        conv2d(x, random_tensor({6, 4, 9, 3}));
      },
      {"[conv2d]", "kernel is larger than the padded input", "[8, 8]"});
  expect_error([&] { conv2d(x, w, {}, 1, 0, 4); },
               {"[conv2d]", "larger than the padded input", "[9, 9]"});
  expect_error([&] { conv2d(x, w, {}, 1, -1); }, {"[conv2d]", "padding", "non-negative"});
  expect_error([&] { conv2d(x, w, {}, 0); }, {"[conv2d]", "stride", "positive"});
  expect_error([&] { conv2d(x, w, {}, {1, 0}); }, {"[conv2d]", "stride [1, 0]"});
  expect_error([&] { conv2d(x, w, {}, 1, 0, 0); }, {"[conv2d]", "dilation", "positive"});
  expect_error([&] { conv2d(x, w, {}, {1, 1, 1}); }, {"[conv2d]", "stride", "1 or 2 values"});
}

// ---- pooling --------------------------------------------------------------------------------
// Output rows of a pooling window (libtorch's rule, including the ceil_mode correction).
int64_t ref_pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const double span = static_cast<double>(in + 2 * p - d * (k - 1) - 1) / s;
  int64_t out = static_cast<int64_t>(ceil_mode ? std::ceil(span) : std::floor(span)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

Tensor ref_max_pool(const Tensor& x4, const Geometry& g, bool ceil_mode) {
  const int64_t P = x4.size(0) * x4.size(1), H = x4.size(2), W = x4.size(3);
  const int64_t OH = ref_pool_out(H, g.kh, g.sh, g.ph, g.dh, ceil_mode);
  const int64_t OW = ref_pool_out(W, g.kw, g.sw, g.pw, g.dw, ceil_mode);
  std::vector<double> xv = to_vector(x4), out(P * OH * OW);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        double best = -std::numeric_limits<double>::infinity();
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const double v = xv[(p * H + iy) * W + ix];
            if (std::isnan(v) || std::isnan(best))
              best = std::numeric_limits<double>::quiet_NaN();
            else
              best = std::max(best, v);
          }
        out[(p * OH + oy) * OW + ox] = best;
      }
  return from_vector(out, {x4.size(0), x4.size(1), OH, OW});
}

struct PoolCase {
  std::vector<int64_t> sizes;
  Geometry g;
  bool ceil_mode;
};

const PoolCase kPoolCases[] = {
    {{2, 3, 8, 8}, {2, 2, 2, 2, 0, 0, 1, 1}, false},
    {{1, 2, 17, 13}, {3, 3, 2, 2, 1, 1, 1, 1}, false},
    {{1, 2, 17, 13}, {3, 3, 2, 2, 1, 1, 1, 1}, true},
    {{2, 1, 7, 9}, {2, 2, 2, 2, 0, 0, 1, 1}, true},
    {{1, 3, 10, 11}, {3, 2, 3, 2, 1, 1, 1, 1}, true},
    {{1, 1, 9, 9}, {3, 3, 1, 1, 1, 1, 2, 2}, false},
    {{1, 2, 33, 5}, {5, 1, 4, 1, 2, 0, 1, 1}, true},
    {{1, 1, 1, 1}, {1, 1, 1, 1, 0, 0, 1, 1}, false},
};

// Windows wholly inside the input with 2x2 and 3x3 kernels (the pools' unrolled kernels), at
// odd sizes, overlapping and dilated.
const PoolCase kFullWindowCases[] = {
    {{2, 3, 7, 9}, {2, 2, 2, 2, 0, 0, 1, 1}, false},
    {{3, 2, 8, 8}, {2, 2, 1, 1, 0, 0, 1, 1}, false},
    {{1, 2, 9, 10}, {3, 3, 2, 2, 0, 0, 1, 1}, false},
    {{1, 2, 9, 9}, {3, 3, 1, 1, 0, 0, 1, 1}, true},
    {{1, 2, 8, 9}, {2, 2, 1, 2, 0, 0, 2, 3}, false},
    {{5, 1, 2, 2}, {2, 2, 2, 2, 0, 0, 1, 1}, false},
};

std::vector<PoolCase> max_pool_cases() {
  std::vector<PoolCase> v(std::begin(kPoolCases), std::end(kPoolCases));
  v.insert(v.end(), std::begin(kFullWindowCases), std::end(kFullWindowCases));
  return v;
}

TEST(MaxPool2d, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kLong, kInt, kChar}) {
    for (const PoolCase& c : max_pool_cases()) {
      const Geometry& g = c.g;
      Tensor x = random_tensor(c.sizes, dt, -50, 50);
      Tensor want = ref_max_pool(x, g, c.ceil_mode);
      Tensor got =
          max_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, c.ceil_mode);
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_TRUE(close(got, want, 0, 0))
          << dt << " " << shape_str(c.sizes) << " ceil " << c.ceil_mode;
      EXPECT_TRUE(close(max_pool2d(non_contiguous(x), {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw},
                                   {g.dh, g.dw}, c.ceil_mode),
                        want, 0, 0));
    }
  }
}

TEST(MaxPool2d, DefaultsNaNUnbatchedAndEmpty) {
  Tensor x = random_tensor({2, 3, 6, 7}, kFloat);
  // Stride defaults to the kernel size.
  EXPECT_TRUE(close(max_pool2d(x, 3), ref_max_pool(x, {3, 3, 3, 3, 0, 0, 1, 1}, false), 0, 0));
  EXPECT_TRUE(close(max_pool2d(x, {2, 3}), ref_max_pool(x, {2, 3, 2, 3, 0, 0, 1, 1}, false), 0, 0));
  // NaN wins its windows.
  Tensor xn = x.clone();
  xn.index_put_({0, 0, 1, 1}, std::numeric_limits<double>::quiet_NaN());
  Tensor got = max_pool2d(xn, 2);
  EXPECT_TRUE(std::isnan(got.index({0, 0, 0, 0}).item<double>()));
  EXPECT_TRUE(close(got, ref_max_pool(xn, {2, 2, 2, 2, 0, 0, 1, 1}, false), 0, 0));
  // Unbatched [C, H, W] and an empty batch.
  EXPECT_TRUE(close(max_pool2d(x.select(0, 0), 2, 1, 1),
                    ref_max_pool(x, {2, 2, 1, 1, 1, 1, 1, 1}, false).select(0, 0), 0, 0));
  EXPECT_EQ(max_pool2d(random_tensor({0, 3, 6, 7}), 2).sizes().vec(),
            (std::vector<int64_t>{0, 3, 3, 3}));
  // Channels-last input.
  EXPECT_TRUE(close(max_pool2d(channels_last(x), 3, 2, 1),
                    ref_max_pool(x, {3, 3, 2, 2, 1, 1, 1, 1}, false), 0, 0));
}

// The gradient of max_pool2d: each window's grad_output added at the position of the window's
// maximum as the forward picks it (the first largest value; a NaN takes the window, a later NaN
// taking it over).
Tensor ref_max_pool_backward(const Tensor& g4, const Tensor& x4, const Geometry& g,
                             bool ceil_mode) {
  const int64_t P = x4.size(0) * x4.size(1), H = x4.size(2), W = x4.size(3);
  const int64_t OH = ref_pool_out(H, g.kh, g.sh, g.ph, g.dh, ceil_mode);
  const int64_t OW = ref_pool_out(W, g.kw, g.sw, g.pw, g.dw, ceil_mode);
  std::vector<double> xv = to_vector(x4), gv = to_vector(g4), out(P * H * W, 0.0);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        int64_t best = -1;
        double bv = 0;
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const double v = xv[(p * H + iy) * W + ix];
            if (best < 0 || v > bv || std::isnan(v)) best = (p * H + iy) * W + ix, bv = v;
          }
        if (best >= 0) out[best] += gv[(p * OH + oy) * OW + ox];
      }
  return from_vector(out, x4.sizes());
}

TEST(MaxPool2dBackward, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kHalf, kLong, kInt}) {
    for (const PoolCase& c : max_pool_cases()) {
      const Geometry& g = c.g;
      // Integers in a small range, so windows hold ties (the first maximum takes the gradient).
      Tensor x = is_floating_point(dt) ? random_tensor(c.sizes, dt, -50, 50)
                                       : random_tensor(c.sizes, dt, -3, 3);
      Tensor y = max_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, c.ceil_mode);
      Tensor go = random_tensor(y.sizes(), dt, -4, 4);
      Tensor want = ref_max_pool_backward(go, x, g, c.ceil_mode);
      // Overlapping windows sum gradients in the dtype (float for half/bfloat16).
      const double tol = dt == kBFloat16 ? 1e-2 : dt == kHalf ? 2e-3 : dt == kFloat ? 1e-5 : 0;
      auto run = [&](const Tensor& gg, const Tensor& xx) {
        return max_pool2d_backward(gg, xx, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw},
                                   c.ceil_mode);
      };
      Tensor got = run(go, x);
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_TRUE(close(got, want, tol, tol))
          << dt << " " << shape_str(c.sizes) << " ceil " << c.ceil_mode;
      EXPECT_TRUE(close(run(non_contiguous(go), non_contiguous(x)), want, tol, tol));
    }
  }
}

TEST(MaxPool2dBackward, NaNUnbatchedChannelsLastAndEmpty) {
  Tensor x = random_tensor({2, 3, 6, 8}, kFloat);
  x.index_put_({0, 0, 1, 1}, std::numeric_limits<double>::quiet_NaN());
  x.index_put_({1, 2, 4, 5}, std::numeric_limits<double>::quiet_NaN());
  for (const PoolCase& c : {PoolCase{{}, {2, 2, 2, 2, 0, 0, 1, 1}, false},
                            PoolCase{{}, {3, 3, 2, 2, 1, 1, 1, 1}, true}}) {
    const Geometry& g = c.g;
    auto run = [&](const Tensor& gg, const Tensor& xx) {
      return max_pool2d_backward(gg, xx, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw},
                                 c.ceil_mode);
    };
    Tensor y = max_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, c.ceil_mode);
    Tensor go = random_tensor(y.sizes(), kFloat);
    Tensor want = ref_max_pool_backward(go, x, g, c.ceil_mode);
    const double tol = 1e-6;  // overlapping windows sum in float32
    EXPECT_TRUE(close(run(go, x), want, tol, tol));
    EXPECT_TRUE(close(run(go, channels_last(x)), want, tol, tol));
    EXPECT_TRUE(close(run(go.select(0, 1), x.select(0, 1)), want.select(0, 1), tol, tol));
    // An expanded gradient (a sum's backward).
    Tensor ones_g = full({}, 1.0).expand(y.sizes());
    EXPECT_TRUE(
        close(run(ones_g, x), ref_max_pool_backward(ones_like(y), x, g, c.ceil_mode), 0, 0));
  }
  Tensor empty_x = random_tensor({0, 3, 6, 8}, kFloat);
  Tensor gx = max_pool2d_backward(random_tensor({0, 3, 3, 4}, kFloat), empty_x, {2, 2}, {2, 2},
                                  {0, 0}, {1, 1}, false);
  EXPECT_EQ(gx.sizes().vec(), (std::vector<int64_t>{0, 3, 6, 8}));
}

// Every max-pool kernel path (the unrolled 2x2 and 3x3 kernels for windows wholly inside the
// input, and the generic one for padding, ceil_mode overhang and other kernel sizes) in every
// floating dtype, forward and backward, against the float64 references, with NaN and -inf
// placed on a window's first tap, on a later tap and twice in one window, ties (bfloat16 and
// half round many values together) and enough planes that parallel_for splits them.
TEST(MaxPool2d, EveryKernelPathAgainstFloat64Reference) {
  struct PathCase {
    const char* path;
    std::vector<int64_t> sizes;
    Geometry g;
    bool ceil_mode;
  };
  const PathCase cases[] = {
      {"2x2 full", {4, 16, 8, 8}, {2, 2, 2, 2, 0, 0, 1, 1}, false},
      {"2x2 full, overlapping", {2, 3, 7, 6}, {2, 2, 1, 1, 0, 0, 1, 1}, false},
      {"2x2 full, dilated", {2, 3, 9, 7}, {2, 2, 2, 1, 0, 0, 3, 2}, false},
      {"3x3 full", {3, 5, 9, 11}, {3, 3, 2, 2, 0, 0, 1, 1}, false},
      {"3x3 full, overlapping", {2, 3, 6, 6}, {3, 3, 1, 1, 0, 0, 1, 1}, false},
      {"3x3 full, dilated", {2, 3, 11, 10}, {3, 3, 2, 3, 0, 0, 2, 2}, false},
      {"2x2 padded", {2, 3, 7, 6}, {2, 2, 2, 2, 1, 1, 1, 1}, false},
      {"2x2 ceil overhang", {2, 3, 7, 9}, {2, 2, 2, 2, 0, 0, 1, 1}, true},
      {"3x3 padded", {2, 3, 8, 8}, {3, 3, 2, 2, 1, 1, 1, 1}, false},
      {"3x3 padded ceil", {2, 3, 8, 9}, {3, 3, 2, 2, 1, 0, 1, 1}, true},
      {"3x3 padded dilated", {2, 3, 10, 9}, {3, 3, 1, 2, 1, 1, 2, 2}, false},
      {"2x3 generic", {2, 3, 8, 9}, {2, 3, 2, 3, 0, 0, 1, 1}, false},
      {"4x4 generic", {2, 3, 12, 12}, {4, 4, 4, 4, 0, 0, 1, 1}, false},
      {"1x1 generic", {2, 3, 3, 4}, {1, 1, 1, 1, 0, 0, 1, 1}, false},
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16}) {
    for (const PathCase& c : cases) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << c.path << " "
                                        << shape_str(c.sizes) << " ceil " << c.ceil_mode);
      const Geometry& g = c.g;
      Tensor x = random_tensor(c.sizes, dt, -50, 50);
      // Plane 0: NaN on the first tap of window (0, 0); plane 1: -inf there, and a NaN on a
      // later tap of window (0, 0) and of the last window; plane 2: two NaNs in window (0, 0).
      const int64_t H = c.sizes[2], W = c.sizes[3];
      x.index_put_({0, 0, 0, 0}, nan);
      x.index_put_({0, 1, 0, 0}, -inf);
      x.index_put_({0, 1, std::min<int64_t>(g.dh, H - 1), 0}, nan);
      x.index_put_({0, 1, H - 1, W - 1}, nan);
      x.index_put_({0, 2, 0, std::min<int64_t>(g.dw, W - 1)}, nan);
      x.index_put_({0, 2, std::min<int64_t>(g.dh, H - 1), std::min<int64_t>(g.dw, W - 1)}, nan);
      auto fwd = [&](const Tensor& in) {
        return max_pool2d(in, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, c.ceil_mode);
      };
      auto bwd = [&](const Tensor& go, const Tensor& in) {
        return max_pool2d_backward(go, in, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw},
                                   c.ceil_mode);
      };
      const Tensor want = ref_max_pool(x, g, c.ceil_mode);
      for (const Tensor& in : {x, non_contiguous(x), channels_last(x)}) {
        Tensor got = fwd(in);
        ASSERT_EQ(got.dtype(), dt);
        EXPECT_TRUE(close(got, want, 0, 0)) << "forward, contiguous " << in.is_contiguous();
      }
      Tensor go = random_tensor(want.sizes(), dt, -4, 4);
      const Tensor want_gx = ref_max_pool_backward(go, x, g, c.ceil_mode);
      // Gradients sum in float32 (half/bfloat16 too), then round once to the dtype.
      const double rtol = dt == kDouble ? 1e-15 : dt == kFloat ? 1e-6 : testing::rtol_for(dt);
      const double atol = dt == kDouble ? 1e-14 : dt == kFloat ? 1e-5 : 1e-6;
      for (const Tensor& in : {x, non_contiguous(x), channels_last(x)})
        for (const Tensor& gg : {go, non_contiguous(go)}) {
          Tensor got = bwd(gg, in);
          ASSERT_EQ(got.dtype(), dt);
          EXPECT_TRUE(close(got, want_gx, rtol, atol)) << "backward";
        }
      // Unbatched [C, H, W].
      EXPECT_TRUE(close(bwd(go.select(0, 1), x.select(0, 1)), want_gx.select(0, 1), rtol, atol));
      EXPECT_TRUE(close(fwd(x.select(0, 1)), want.select(0, 1), 0, 0));
    }
  }
}

TEST(MaxPool2dBackward, Errors) {
  Tensor x = random_tensor({1, 2, 6, 6});
  auto bwd = [&](const Tensor& go, const Tensor& in) {
    return max_pool2d_backward(go, in, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false);
  };
  expect_error(
      [&] {
        bwd(random_tensor({1, 2, 3, 4}), x);
      },
      {"[max_pool2d_backward]", "grad_output sizes [1, 2, 3, 4]", "expected [1, 2, 3, 3]"});
  expect_error(
      [&] {
        bwd(random_tensor({1, 2, 3, 3}, kDouble), x);
      },
      {"[max_pool2d_backward]", "float64", "float32"});
  expect_error(
      [&] {
        max_pool2d_backward(random_tensor({1, 2, 3, 3}), x, {2, 2}, {2, 2}, {2, 2}, {1, 1}, false);
      },
      {"[max_pool2d_backward]", "padding", "half of the kernel"});
}

// libtorch's avg_pool2d: the divisor is divisor_override, else the window clipped to the padded
// input (count_include_pad) or to the input.
Tensor ref_avg_pool(const Tensor& x4, const Geometry& g, bool ceil_mode, bool include_pad,
                    std::optional<int64_t> divisor, bool integer) {
  const int64_t P = x4.size(0) * x4.size(1), H = x4.size(2), W = x4.size(3);
  const int64_t OH = ref_pool_out(H, g.kh, g.sh, g.ph, 1, ceil_mode);
  const int64_t OW = ref_pool_out(W, g.kw, g.sw, g.pw, 1, ceil_mode);
  std::vector<double> xv = to_vector(x4), out(P * OH * OW);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        double sum = 0;
        int64_t inside = 0, padded = 0;
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iy = oy * g.sh - g.ph + i, ix = ox * g.sw - g.pw + j;
            if (iy < H + g.ph && ix < W + g.pw) ++padded;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            sum += xv[(p * H + iy) * W + ix];
            ++inside;
          }
        const double d = static_cast<double>(divisor ? *divisor : include_pad ? padded : inside);
        out[(p * OH + oy) * OW + ox] = integer ? std::trunc(sum / d) : sum / d;
      }
  return from_vector(out, {x4.size(0), x4.size(1), OH, OW});
}

TEST(AvgPool2d, MatchesReference) {
  for (ScalarType dt : {kFloat, kDouble, kBFloat16, kLong}) {
    for (const PoolCase& c : kPoolCases) {
      if (c.g.dh != 1 || c.g.dw != 1) continue;  // avg_pool2d has no dilation
      const Geometry& g = c.g;
      for (bool include_pad : {true, false}) {
        for (std::optional<int64_t> div : {std::optional<int64_t>(), std::optional<int64_t>(3)}) {
          Tensor x = random_tensor(c.sizes, dt, -50, 50);
          Tensor want = ref_avg_pool(x, g, c.ceil_mode, include_pad, div, dt == kLong);
          Tensor got = avg_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, c.ceil_mode,
                                  include_pad, div);
          EXPECT_EQ(got.dtype(), dt);
          // Values up to 50 cancel: the absolute error scales with them, not with the mean.
          const double rtol = dt == kBFloat16 ? 8e-3 : dt == kFloat ? 2e-6 : 1e-13;
          const double atol = dt == kBFloat16 ? 0.05 : dt == kFloat ? 1e-4 : 1e-10;
          EXPECT_TRUE(close(got, want, rtol, atol))
              << dt << " " << shape_str(c.sizes) << " ceil " << c.ceil_mode << " include_pad "
              << include_pad << " divisor " << div.value_or(0);
          EXPECT_TRUE(close(avg_pool2d(non_contiguous(x), {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw},
                                       c.ceil_mode, include_pad, div),
                            want, rtol, atol));
        }
      }
    }
  }
}

TEST(AvgPool2d, LayoutsUnbatchedAndEmpty) {
  for (ScalarType dt : {kFloat, kDouble}) {
    Tensor x = random_tensor({2, 3, 9, 8}, dt);
    const Geometry g{3, 3, 2, 2, 1, 1, 1, 1};
    for (bool ceil_mode : {false, true}) {
      Tensor want = ref_avg_pool(x, g, ceil_mode, false, std::nullopt, false);
      EXPECT_TRUE(close(avg_pool2d(channels_last(x), 3, 2, 1, ceil_mode, false), want, 1e-6, 1e-7))
          << dt;
      EXPECT_TRUE(close(avg_pool2d(x.select(0, 1), 3, 2, 1, ceil_mode, false), want.select(0, 1),
                        1e-6, 1e-7))
          << dt;
    }
    // Stride defaults to the kernel size.
    EXPECT_TRUE(close(avg_pool2d(x, 2),
                      ref_avg_pool(x, {2, 2, 2, 2, 0, 0, 1, 1}, false, true, std::nullopt, false),
                      1e-6, 1e-7));
    EXPECT_EQ(avg_pool2d(random_tensor({0, 3, 6, 7}, dt), 2).sizes().vec(),
              (std::vector<int64_t>{0, 3, 3, 3}));
  }
}

TEST(Pool2d, Errors) {
  Tensor x = random_tensor({1, 2, 5, 5});
  for (const char* op : {"max_pool2d", "avg_pool2d"}) {
    const bool is_max = std::string(op) == "max_pool2d";
    auto pool = [&](const Tensor& in, IntArrayRef k, IntArrayRef s, IntArrayRef p, bool ceil) {
      return is_max ? max_pool2d(in, k, s, p, 1, ceil) : avg_pool2d(in, k, s, p, ceil);
    };
    const std::string tag = std::string("[") + op + "]";
    expect_error([&] { pool(x, 3, 1, 2, false); }, {tag, "padding [2]", "half of the kernel"});
    expect_error([&] { pool(x, 3, 1, -1, false); }, {tag, "padding", "non-negative"});
    expect_error([&] { pool(x, 3, 0, 0, false); }, {tag, "stride", "positive"});
    expect_error([&] { pool(x, 0, 1, 0, false); }, {tag, "kernel_size", "positive"});
    expect_error([&] { pool(x, 6, 1, 0, false); },
                 {tag, "output size is too small", "[1, 2, 5, 5]"});
    expect_error([&] { pool(random_tensor({5, 5}), 2, {}, 0, false); }, {tag, "[5, 5]", "4-D"});
    expect_error(
        [&] {
          pool(random_tensor({1, 0, 5, 5}), 2, {}, 0, false);
        },
        {tag, "non-zero C, H and W"});
    expect_error([&] { pool(x, {2, 2, 2}, {}, 0, false); }, {tag, "kernel_size", "1 or 2"});
  }
  expect_error([&] { max_pool2d(x, 3, 1, 0, 0); }, {"[max_pool2d]", "dilation", "positive"});
  expect_error([&] { max_pool2d(x.to(kBool), 2); }, {"[max_pool2d]", "bool"});
  expect_error([&] { avg_pool2d(x.to(kInt), 2); }, {"[avg_pool2d]", "int32", "int64"});
  expect_error([&] { avg_pool2d(x, 2, {}, 0, false, true, 0); },
               {"[avg_pool2d]", "divisor_override 0"});
}

// ---- im2col ---------------------------------------------------------------------------------
Tensor ref_im2col(const Tensor& x4, const Geometry& g) {
  const int64_t N = x4.size(0), C = x4.size(1), H = x4.size(2), W = x4.size(3);
  const int64_t OH = (H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  const int64_t OW = (W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  const int64_t rows = C * g.kh * g.kw, L = OH * OW;
  std::vector<double> xv = to_vector(x4), out(N * rows * L, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j)
          for (int64_t oy = 0; oy < OH; ++oy)
            for (int64_t ox = 0; ox < OW; ++ox) {
              const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              const int64_t row = (c * g.kh + i) * g.kw + j;
              out[(n * rows + row) * L + oy * OW + ox] = xv[((n * C + c) * H + iy) * W + ix];
            }
  return from_vector(out, {N, rows, L});
}

TEST(Im2col, MatchesReference) {
  const std::pair<std::vector<int64_t>, Geometry> cases[] = {
      {{2, 3, 7, 9}, {3, 3, 1, 1, 0, 0, 1, 1}}, {{1, 2, 17, 13}, {3, 2, 2, 3, 1, 2, 1, 1}},
      {{1, 3, 9, 9}, {3, 3, 1, 1, 2, 2, 2, 2}}, {{3, 1, 5, 33}, {1, 5, 1, 4, 0, 2, 1, 2}},
      {{1, 1, 1, 1}, {1, 1, 1, 1, 0, 0, 1, 1}}, {{0, 2, 4, 4}, {2, 2, 1, 1, 0, 0, 1, 1}}};
  for (ScalarType dt : {kFloat, kDouble, kLong, kBool, kBFloat16}) {
    for (const auto& [sizes, g] : cases) {
      Tensor x = random_tensor(sizes, dt);
      Tensor want = ref_im2col(x, g);
      Tensor got = im2col(x, {g.kh, g.kw}, {g.dh, g.dw}, {g.ph, g.pw}, {g.sh, g.sw});
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_TRUE(close(got, want, 0, 0)) << dt << " " << shape_str(sizes);
      EXPECT_TRUE(
          close(im2col(non_contiguous(x), {g.kh, g.kw}, {g.dh, g.dw}, {g.ph, g.pw}, {g.sh, g.sw}),
                want, 0, 0));
    }
  }
  // Unbatched [C, H, W] gives [C*kh*kw, L].
  Tensor x = random_tensor({1, 3, 6, 5});
  EXPECT_TRUE(close(im2col(x.select(0, 0), 2, 1, 1, 2),
                    ref_im2col(x, {2, 2, 2, 2, 1, 1, 1, 1}).select(0, 0), 0, 0));
}

TEST(Im2col, Errors) {
  Tensor x = random_tensor({1, 2, 5, 5});
  expect_error([&] { im2col(x, 7); }, {"[im2col]", "sliding-block grid is empty", "[1, 2, 5, 5]"});
  expect_error([&] { im2col(x, 3, 1, 0, 0); }, {"[im2col]", "stride", "positive"});
  expect_error([&] { im2col(x, 3, 1, -1); }, {"[im2col]", "padding", "non-negative"});
  expect_error([&] { im2col(x, 3, 0); }, {"[im2col]", "dilation", "positive"});
  expect_error([&] { im2col(x, {3, 0}); }, {"[im2col]", "kernel_size [3, 0]"});
  expect_error([&] { im2col(random_tensor({5, 5}), 2); }, {"[im2col]", "[5, 5]"});
  expect_error([&] { im2col(random_tensor({1, 2, 0, 5}), 2); }, {"[im2col]", "non-zero"});
}

}  // namespace
}  // namespace kiln
