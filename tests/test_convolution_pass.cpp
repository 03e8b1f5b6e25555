// Tests of the conv pass (convolution.h) on traced layers written the way users write a
// convolution by hand: F::unfold, then one matmul per output channel (the seed article's
// layer) or one matmul by the flattened weights, plus a per-channel bias. Random sizes, windows
// (kernel, stride, padding, dilation), batch sizes 0-3, float32 and float64, non-contiguous
// inputs; the interpreter before and after the pipeline, eager, and a float64 conv2d reference
// must agree, and the pass must rewrite exactly what it may. Golden test: tests/ir/conv.ir.
// ctest-label: ir
#include <kiln/jit/compile.h>
#include <kiln/nn/functional.h>
#include <kiln/passes/convolution.h>

#include <random>

#include "pipeline_test_util.h"

namespace kiln {
namespace {

namespace F = nn::functional;
using ops::OpKind;
using testing::close;
using testing::count_nodes;
using testing::optimise_and_compare;
using testing::random_tensor;

struct Window {
  int64_t kh, kw, stride, padding, dilation;
  int64_t out(int64_t in, int64_t k) const {
    return (in + 2 * padding - dilation * (k - 1) - 1) / stride + 1;
  }
};

// The layer in one of three spellings: 0 one matmul per channel plus bias[o] (the seed
// article's), 1 one matmul by weight.view(O, -1) plus bias.view(1, O, 1), 2 as 1 with the bias
// added after the final view, broadcast as [O, 1, 1].
Tensor hand_conv(const Tensor& x, const Tensor& w, const Tensor& b, const Window& win,
                 int spelling) {
  const int64_t n = x.size(0), o = w.size(0);
  const int64_t oh = win.out(x.size(2), win.kh), ow = win.out(x.size(3), win.kw);
  Tensor cols = F::unfold(x, {win.kh, win.kw}, win.dilation, win.padding, win.stride);
  if (spelling == 0) {
    std::vector<Tensor> outs;
    for (int64_t c = 0; c < o; ++c) outs.push_back(matmul(w[c].view({1, -1}), cols) + b[c]);
    return cat(outs, 1).view({n, o, oh, ow});
  }
  Tensor y = matmul(w.view({o, -1}), cols);
  if (spelling == 1) return (y + b.view({1, o, 1})).view({n, o, oh, ow});
  return y.view({n, o, oh, ow}) + b.view({o, 1, 1});
}

TEST(ConvPass, HandWrittenConvolutionsBecomeConv2dWithBias) {
  std::mt19937 rng(3);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 24; ++trial) {
    const Window win{pick(1, 3), pick(1, 3), pick(1, 2), pick(0, 1), pick(1, 2)};
    const int64_t n = trial == 5 ? 0 : pick(1, 3), c = pick(1, 4), o = pick(1, 5);
    const int64_t h = win.dilation * (win.kh - 1) + 1 + pick(0, 7) - 2 * win.padding;
    const int64_t w = win.dilation * (win.kw - 1) + 1 + pick(0, 7) - 2 * win.padding;
    const ScalarType dt = trial % 4 == 3 ? kDouble : kFloat;
    const int spelling = trial % 3;
    const bool strided = trial % 5 == 1;
    SCOPED_TRACE(fmt::format("n {} c {} o {} h {} w {} k {}x{} s {} p {} d {} {} spelling {}{}",
                             n, c, o, h, w, win.kh, win.kw, win.stride, win.padding, win.dilation,
                             dtype_name(dt), spelling, strided ? " strided" : ""));
    Tensor x = random_tensor({n, c, std::max<int64_t>(h, 1), std::max<int64_t>(w, 1)}, dt);
    if (strided) x = testing::non_contiguous(x);
    const Tensor weight = random_tensor({o, c, win.kh, win.kw}, dt), bias = random_tensor({o}, dt);
    const double tol = dt == kDouble ? 1e-10 : 1e-5;
    auto g = optimise_and_compare(
        [&](const std::vector<Tensor>& in) {
          return hand_conv(in[0], in[1], in[2], win, spelling);
        },
        {x, weight, bias}, tol, tol);
    EXPECT_EQ(count_nodes(g->block(), OpKind::Conv2d), 1) << *g;
    EXPECT_EQ(count_nodes(g->block(), OpKind::Im2col), 0) << *g;
    EXPECT_EQ(count_nodes(g->block(), OpKind::Bmm), 0) << *g;
    // The per-channel bias went into the convolution.
    EXPECT_EQ(count_nodes(g->block(), OpKind::Add), 0) << *g;
    // Against a float64 convolution.
    const Tensor expect = conv2d(x.to(kDouble), weight.to(kDouble), bias.to(kDouble),
                                 win.stride, win.padding, win.dilation);
    const Tensor got = hand_conv(x, weight, bias, win, spelling);
    EXPECT_TRUE(close(got, expect, dt == kDouble ? 1e-10 : 1e-4, dt == kDouble ? 1e-10 : 1e-4));
  }
}

TEST(ConvPass, LeavesWhatIsNotAConvolution) {
  const Tensor x = random_tensor({2, 3, 6, 5}), w = random_tensor({4, 3, 2, 2}),
               b = random_tensor({4});
  // Per-image weights: each image has its own matrix, so no one convolution computes them.
  const Tensor per_image = random_tensor({2, 4, 12});
  auto g = optimise_and_compare(
      [](const std::vector<Tensor>& in) { return bmm(in[1], F::unfold(in[0], {2, 2})); },
      {x, per_image});
  EXPECT_EQ(count_nodes(g->block(), OpKind::Conv2d), 0) << *g;
  EXPECT_EQ(count_nodes(g->block(), OpKind::Bmm), 1) << *g;
  // A bias varying along the columns, and one of another dtype, are not per-channel biases.
  auto g2 = optimise_and_compare(
      [](const std::vector<Tensor>& in) {
        Tensor y = matmul(in[1].view({4, -1}), F::unfold(in[0], {2, 2}));
        return y + in[2];
      },
      {x, w, random_tensor({1, 1, 20})});
  EXPECT_EQ(count_nodes(g2->block(), OpKind::Conv2d), 1) << *g2;
  EXPECT_EQ(count_nodes(g2->block(), OpKind::Add), 1) << *g2;
  auto g3 = optimise_and_compare(
      [](const std::vector<Tensor>& in) {
        Tensor y = matmul(in[1].view({4, -1}), F::unfold(in[0], {2, 2}));
        return y + in[2].view({1, 4, 1});
      },
      {x, w, b.to(kDouble)});
  EXPECT_EQ(count_nodes(g3->block(), OpKind::Add), 1) << *g3;
  // The unbiased product is also an output: the add stays, and the convolution is shared.
  auto traced = jit::trace(
      [](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
        Tensor y = matmul(wi.view({4, -1}), F::unfold(xi, {2, 2}));
        return std::vector<Tensor>{y, y + bi.view({1, 4, 1})};
      },
      {x, w, b});
  auto g4 = traced.graph().copy();
  passes::run_default_pipeline(*g4);
  EXPECT_EQ(count_nodes(g4->block(), OpKind::Conv2d), 1) << *g4;
  EXPECT_EQ(count_nodes(g4->block(), OpKind::Add), 1) << *g4;
  // Integer columns: conv2d has no integer kernels, so the product stays.
  const Tensor xi = random_tensor({1, 2, 4, 4}, kLong), wi = random_tensor({3, 2, 2, 2}, kLong);
  auto g5 = optimise_and_compare(
      [](const std::vector<Tensor>& in) {
        return matmul(in[1].view({3, -1}), F::unfold(in[0], {2, 2}));
      },
      {xi, wi}, 0, 0);
  EXPECT_EQ(count_nodes(g5->block(), OpKind::Conv2d), 0) << *g5;
}

TEST(ConvPass, CompiledLayerMatchesEager) {
  // Through jit::compile: the library call runs the convolution (with the bias), and the
  // answers match the eager layer for each signature, strided input included.
  const Window win{3, 3, 1, 0, 1};
  auto f = jit::compile([&](const Tensor& x, const Tensor& w, const Tensor& b) {
    return hand_conv(x, w, b, win, 0);
  });
  for (const auto& sizes : {std::vector<int64_t>{1, 3, 17, 20}, std::vector<int64_t>{2, 3, 9, 9}}) {
    NoGradGuard no_grad;
    const Tensor x = random_tensor(sizes), w = random_tensor({5, 3, 3, 3}), b = random_tensor({5});
    EXPECT_TRUE(close(f(x, w, b), hand_conv(x, w, b, win, 0), 1e-5, 1e-5));
    const Tensor xs = testing::non_contiguous(x);
    EXPECT_TRUE(close(f(xs, w, b), hand_conv(xs, w, b, win, 0), 1e-5, 1e-5));
  }
}

}  // namespace
}  // namespace kiln
