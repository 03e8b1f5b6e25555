// Tests of the batch_mm pass (matmul batching and cat push-down) on traced layers written the
// way users write them: a per-channel Conv2d (unfold + one matmul per output channel), an LSTM
// over a sequence, products sharing a left operand. Random sizes (odd, size 1, size 0 rows,
// non-contiguous inputs); the interpreter before and after the pass, and eager, must agree,
// and the pass must merge exactly what it may. The golden test is tests/ir/batch_mm.ir.
// ctest-label: ir
#include <kiln/nn/functional.h>
#include <kiln/passes/batch_mm.h>

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

// The seed article's layer: im2col, then one [1, C*k*k] x [N, C*k*k, L] product per channel.
Tensor per_channel_conv(const Tensor& x, const Tensor& w, const Tensor& b, int64_t k, bool act) {
  const int64_t n = x.size(0), h = x.size(2) - k + 1, wd = x.size(3) - k + 1, o = w.size(0);
  Tensor cols = F::unfold(x, {k, k});
  std::vector<Tensor> outs;
  for (int64_t c = 0; c < o; ++c) {
    Tensor y = matmul(w[c].view({1, -1}), cols) + b[c];
    outs.push_back(act ? y.relu() * 0.5 : y);
  }
  return cat(outs, 1).view({n, o, h, wd});
}

TEST(BatchMm, PerChannelConvBecomesOneProduct) {
  std::mt19937 rng(11);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 16; ++trial) {
    const int64_t n = pick(1, 2), c = pick(1, 3), k = pick(1, 3), o = pick(1, 5);
    const int64_t h = k + pick(0, 6), w = k + pick(0, 6);
    const bool act = trial % 2 == 1, strided = trial % 3 == 0;
    SCOPED_TRACE(fmt::format("n {} c {} k {} o {} h {} w {} act {} strided {}", n, c, k, o, h, w,
                             act, strided));
    Tensor x = strided ? random_tensor({n, c, w, h}).transpose(2, 3) : random_tensor({n, c, h, w});
    const Tensor weight = random_tensor({o, c, k, k}), bias = random_tensor({o});
    auto g = optimise_and_compare(
        [&](const std::vector<Tensor>& in) {
          return per_channel_conv(in[0], in[1], in[2], k, act);
        },
        {x, weight, bias});
    // One product; the conv pass then makes it a convolution where it can (float inputs: all
    // here), which test_convolution_pass.cpp tests.
    EXPECT_EQ(count_nodes(g->block(), OpKind::Bmm) + count_nodes(g->block(), OpKind::Conv2d), 1)
        << *g;
    // The per-channel adds were pushed through the cat: no cat of [N, 1, L] pieces remains.
    if (o > 1) {
      int big_cats = 0;
      for (const ir::Node* node : g->block()->nodes())
        if (node->kind() == ir::NodeKind(OpKind::Cat)) {
          const auto s = node->output()->type().tensor().static_sizes();
          big_cats += s && s->back() == (h - k + 1) * (w - k + 1) && (h - k + 1) * (w - k + 1) > 1;
        }
      EXPECT_EQ(big_cats, 0) << *g;
    }
  }
}

// An LSTM over a sequence, gates by F::linear (addmm) on the input and matmul on the state.
// The suite counts batch_mm's products: the products pass (test_products.cpp) is left out.
Tensor lstm_sequence(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                     const Tensor& w_hh, const Tensor& b_ih) {
  Tensor h = h0, c = c0;
  std::vector<Tensor> hs;
  for (int64_t t = 0; t < x.size(0); ++t) {
    Tensor gates = F::linear(x[t], w_ih, b_ih) + matmul(h, w_hh.t());
    auto g = gates.chunk(4, 1);
    Tensor i = g[0].sigmoid(), f = g[1].sigmoid(), cell = g[2].tanh(), o = g[3].sigmoid();
    c = f * c + i * cell;
    h = o * c.tanh();
    hs.push_back(h);
  }
  return stack(hs, 0);
}

TEST(BatchMm, LstmInputProjectionsMergeAndTheRecurrenceDoesNot) {
  std::mt19937 rng(5);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 12; ++trial) {
    const int64_t steps = pick(1, 5), batch = trial == 3 ? 0 : pick(1, 3), in = pick(1, 9),
                  hidden = pick(1, 6);
    SCOPED_TRACE(fmt::format("steps {} batch {} in {} hidden {}", steps, batch, in, hidden));
    const Tensor x = random_tensor({steps, batch, in}), h0 = random_tensor({batch, hidden}),
                 c0 = random_tensor({batch, hidden}), w_ih = random_tensor({4 * hidden, in}),
                 w_hh = random_tensor({4 * hidden, hidden}), b_ih = random_tensor({4 * hidden});
    auto g = optimise_and_compare(
        [&](const std::vector<Tensor>& v) {
          return lstm_sequence(v[0], v[1], v[2], v[3], v[4], v[5]);
        },
        {x, h0, c0, w_ih, w_hh, b_ih}, 1e-5, 1e-5, {"products"});
    // The input projections share w_ih^T and do not depend on each other: one addmm when the
    // stacked inputs cost less to copy than the weight reads saved.
    const bool worth = steps > 1 && 2 * steps * batch * in < (steps - 1) * 4 * hidden * in;
    EXPECT_EQ(count_nodes(g->block(), OpKind::Addmm), worth ? 1 : steps) << *g;
    // Each step's state product depends on the previous step's: never merged.
    EXPECT_EQ(count_nodes(g->block(), OpKind::Mm), steps) << *g;
  }
}

TEST(BatchMm, SharedLeftOperandMergesWhenTheStackIsCheap) {
  // x [64, 8] shared by three products with [8, 3] weights: the stack copies 72 elements and
  // saves two reads of 512.
  const Tensor x = random_tensor({64, 8}), a = random_tensor({8, 3}), b = random_tensor({8, 3}),
               c = random_tensor({3, 8}).t();  // non-contiguous piece
  auto g = optimise_and_compare(
      [](const std::vector<Tensor>& v) {
        return (mm(v[0], v[1]).relu() + mm(v[0], v[2]).sigmoid() * mm(v[0], v[3])).sum({1});
      },
      {x, a, b, c}, 1e-5, 1e-5, {"products"});
  EXPECT_EQ(count_nodes(g->block(), OpKind::Mm), 1) << *g;
  // The same products with a tiny x are not worth stacking the weights for.
  const Tensor x1 = random_tensor({1, 8});
  auto g1 = optimise_and_compare(
      [](const std::vector<Tensor>& v) { return mm(v[0], v[1]) + mm(v[0], v[2]); }, {x1, a, b},
      1e-5, 1e-5, {"products"});
  EXPECT_EQ(count_nodes(g1->block(), OpKind::Mm), 2) << *g1;
}

TEST(BatchMm, RandomDrawsAndDependenciesBlockTheMerge) {
  const Tensor x = random_tensor({32, 4}), w = random_tensor({4, 2}), v = random_tensor({4, 2});
  // The second product's operand draws random numbers after the first product: the draw may
  // not move, so the products stay apart (and the results match with the same seed).
  auto traced = jit::trace(
      [](const Tensor& a, const Tensor& b) {
        Tensor p = mm(a, b);
        Tensor q = mm(a * rand_like(a), b);
        return p + q;
      },
      {x, w});
  auto g = traced.graph().copy();
  EXPECT_FALSE(passes::batch_matmuls(*g)) << *g;
  // Products of different dtypes or different other operands do not merge either.
  auto g2 = jit::trace(
                [](const Tensor& a, const Tensor& b, const Tensor& c) {
                  return mm(a, b) + mm(a.to(kFloat64), c.to(kFloat64)).to(kFloat32);
                },
                {x, w, v})
                .graph()
                .copy();
  EXPECT_FALSE(passes::batch_matmuls(*g2)) << *g2;
}

TEST(BatchMm, ProductsCollectedIntoListsKeepTheirTypes) {
  // Three products returned as a list: the list's element type says contiguous, which a slice
  // of the merged product is not known to be, so they stay apart (the golden test shows
  // products returned directly as graph outputs merging).
  const Tensor x = random_tensor({3, 5, 4}), w = random_tensor({4, 64});
  auto traced = jit::trace(
      [](const Tensor& a, const Tensor& b) {
        std::vector<Tensor> outs;
        for (int64_t t = 0; t < a.size(0); ++t) outs.push_back(mm(a[t], b));
        return outs;
      },
      {x, w});
  auto g = traced.graph().copy();
  EXPECT_FALSE(passes::batch_matmuls(*g)) << *g;
  ir::verify(*g);
  // Used by an op instead, they merge.
  auto g2 = jit::trace(
                [](const Tensor& a, const Tensor& b) {
                  Tensor s = mm(a[0], b);
                  for (int64_t t = 1; t < a.size(0); ++t) s = s * mm(a[t], b);
                  return s;
                },
                {x, w})
                .graph()
                .copy();
  EXPECT_TRUE(passes::batch_matmuls(*g2)) << *g2;
  ir::verify(*g2);
  EXPECT_EQ(count_nodes(g2->block(), OpKind::Mm), 1) << *g2;
}

}  // namespace
}  // namespace kiln
