// Autograd semantics: backward/grad, accumulation, retain_graph, create_graph (higher order),
// hooks, retain_grad, detach, grad mode, leaf rules, version checks, in-place rebasing (also
// through views), custom Functions, and the error paths. Formulas per op: test_gradcheck.cpp.
#include <cmath>
#include <functional>

#include "tensor/backward_kernels.h"
#include "tensor/onednn.h"
#include "test_util.h"

namespace kiln::testing {
namespace {

using autograd::variable_list;

Tensor leaf(IntArrayRef sizes, double lo = -2, double hi = 2) {
  return random_tensor(sizes, kDouble, lo, hi).requires_grad_();
}

TEST(Autograd, BackwardOfAScalarFillsLeafGrads) {
  Tensor x = leaf({3}), w = leaf({3});
  Tensor y = (x * w + x).sum();
  EXPECT_FALSE(y.is_leaf());
  EXPECT_TRUE(x.is_leaf());
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_EQ(y.grad_fn()->name(), "SumBackward");
  y.backward();
  EXPECT_TRUE(close(x.grad(), w.detach() + 1, 1e-12, 1e-12));
  EXPECT_TRUE(close(w.grad(), x.detach(), 1e-12, 1e-12));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({2, 2});
  (x * 3).sum().backward();
  (x * 4).sum().backward();
  EXPECT_TRUE(close(x.grad(), full({2, 2}, 7.0, kDouble), 0, 1e-12));
  x.mutable_grad() = Tensor();
  (x * 5).sum().backward();
  EXPECT_TRUE(close(x.grad(), full({2, 2}, 5.0, kDouble), 0, 1e-12));
}

TEST(Autograd, GradsAreNotSharedBetweenLeaves) {
  // y = a + b passes the same incoming gradient to both; their .grad must not alias.
  Tensor a = leaf({3}), b = leaf({3});
  (a + b).sum().backward();
  {
    NoGradGuard ng;
    a.mutable_grad().add_(1);
  }
  EXPECT_TRUE(close(b.grad(), ones({3}, kDouble), 0, 0));
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = leaf({3});
  Tensor y = x * 2;
  EXPECT_KILN_ERROR(y.backward(), {"implicitly created only for scalar outputs", "[3]"});
  y.backward(full({3}, 0.5, kDouble));
  EXPECT_TRUE(close(x.grad(), ones({3}, kDouble), 0, 1e-12));
  Tensor z = x * 2;
  EXPECT_KILN_ERROR(z.backward(ones({4}, kDouble)), {"mismatch in shape"});
}

TEST(Autograd, BackwardTwiceNeedsRetainGraph) {
  Tensor x = leaf({3});
  Tensor y = (x.exp() * x).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  Tensor expected = 2 * (x.detach().exp() * (x.detach() + 1));
  EXPECT_TRUE(close(x.grad(), expected, 1e-12, 1e-12));
  EXPECT_KILN_ERROR(y.backward(), {"second time", "retain_graph"});
}

TEST(Autograd, NoGradGuardStopsRecording) {
  Tensor x = leaf({3});
  {
    NoGradGuard ng;
    EXPECT_FALSE(GradMode::is_enabled());
    Tensor y = x * 2;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      AutoGradMode on(true);
      EXPECT_TRUE((x * 2).requires_grad());
    }
  }
  EXPECT_TRUE(GradMode::is_enabled());
  EXPECT_TRUE((x * 2).requires_grad());
}

TEST(Autograd, DetachSharesMemoryWithoutHistory) {
  Tensor x = leaf({3});
  Tensor y = x * 2;
  Tensor d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.grad_fn(), nullptr);
  EXPECT_EQ(d.data_ptr(), y.data_ptr());
  Tensor z = (d * x).sum();
  z.backward();
  EXPECT_TRUE(close(x.grad(), y.detach(), 0, 0));  // d is a constant
  Tensor y2 = x * 3;
  y2.detach_();
  EXPECT_FALSE(y2.requires_grad());
  EXPECT_TRUE(y2.is_leaf());
}

TEST(Autograd, RequiresGradRules) {
  EXPECT_KILN_ERROR(zeros({2}, kLong).requires_grad_(), {"floating point"});
  Tensor x = leaf({2});
  Tensor y = x * 2;
  EXPECT_KILN_ERROR(y.requires_grad_(false), {"leaf", "MulBackward"});
  Tensor t = full({2}, 1.0, TensorOptions(kDouble).requires_grad(true));
  EXPECT_TRUE(t.requires_grad());
  EXPECT_TRUE(t.is_leaf());
  EXPECT_FALSE((zeros({2}) * 2).requires_grad());
}

TEST(Autograd, GradFunctionReturnsGradientsWithoutAccumulating) {
  Tensor x = leaf({4}), w = leaf({4});
  Tensor y = (x * x * w).sum();
  variable_list g = autograd::grad({y}, {x, w});
  EXPECT_TRUE(close(g[0], 2 * x.detach() * w.detach(), 1e-12, 1e-12));
  EXPECT_TRUE(close(g[1], x.detach() * x.detach(), 1e-12, 1e-12));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, GradOfAnIntermediate) {
  Tensor x = leaf({3});
  Tensor h = x.sin();
  Tensor y = (h * h).sum();
  variable_list g = autograd::grad({y}, {h});
  EXPECT_TRUE(close(g[0], 2 * x.detach().sin(), 1e-12, 1e-12));
}

TEST(Autograd, UnusedInputsNeedAllowUnused) {
  Tensor x = leaf({3}), u = leaf({3});
  Tensor y = (x * 2).sum();
  EXPECT_KILN_ERROR(autograd::grad({y}, {x, u}, {}, true), {"not have been used", "allow_unused"});
  variable_list g = autograd::grad({y}, {x, u}, {}, true, false, true);
  EXPECT_TRUE(g[0].defined());
  EXPECT_FALSE(g[1].defined());
  Tensor c = zeros({3}, kDouble);
  EXPECT_KILN_ERROR(autograd::grad({y}, {c}), {"does not require grad"});
  EXPECT_KILN_ERROR(autograd::grad({c.sum()}, {x}), {"does not require grad"});
}

TEST(Autograd, SecondAndThirdDerivatives) {
  Tensor x = leaf({5});
  Tensor y = (x * x * x).sum();  // y' = 3x^2, y'' = 6x, y''' = 6
  variable_list g1 = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true);
  EXPECT_TRUE(g1[0].requires_grad());
  EXPECT_TRUE(close(g1[0], 3 * x.detach() * x.detach(), 1e-12, 1e-12));
  variable_list g2 = autograd::grad({g1[0].sum()}, {x}, {}, std::nullopt, true);
  EXPECT_TRUE(close(g2[0], 6 * x.detach(), 1e-12, 1e-12));
  variable_list g3 = autograd::grad({g2[0].sum()}, {x});
  EXPECT_TRUE(close(g3[0], full({5}, 6.0, kDouble), 1e-12, 1e-12));
}

TEST(Autograd, CreateGraphThroughSavedOutputs) {
  // tanh saves its result; the second derivative must flow through it.
  Tensor x = leaf({4});
  Tensor y = x.tanh().sum();
  variable_list g1 = autograd::grad({y}, {x}, {}, std::nullopt, true);
  variable_list g2 = autograd::grad({g1[0].sum()}, {x});
  Tensor t = x.detach().tanh();
  EXPECT_TRUE(close(g2[0], -2 * t * (1 - t * t), 1e-12, 1e-12));
}

TEST(Autograd, BackwardWithCreateGraphAccumulatesDifferentiableGrads) {
  Tensor x = leaf({3});
  (x * x).sum().backward(Tensor(), std::nullopt, /*create_graph=*/true);
  ASSERT_TRUE(x.grad().requires_grad());
  Tensor gg = autograd::grad({x.grad().sum()}, {x})[0];
  EXPECT_TRUE(close(gg, full({3}, 2.0, kDouble), 0, 1e-12));
}

TEST(Autograd, BackwardWithInputsAccumulatesOnlyThere) {
  Tensor x = leaf({3}), w = leaf({3});
  (x * w).sum().backward();
  x.mutable_grad() = Tensor();
  w.mutable_grad() = Tensor();
  autograd::backward({(x * w).sum()}, {}, std::nullopt, false, {w});
  EXPECT_FALSE(x.grad().defined());
  EXPECT_TRUE(close(w.grad(), x.detach(), 0, 0));
}

TEST(Autograd, TensorHooksSeeAndReplaceGradients) {
  Tensor x = leaf({3});
  Tensor h = x * 2;
  Tensor seen;
  h.register_hook([&](const Tensor& g) { seen = g.clone(); });
  unsigned id = h.register_hook([](const Tensor& g) { return g * 10; });
  (h * 3).sum().backward(Tensor(), true);
  EXPECT_TRUE(close(seen, full({3}, 3.0, kDouble), 0, 0));
  EXPECT_TRUE(close(x.grad(), full({3}, 60.0, kDouble), 0, 0));
  h.remove_hook(id);
  x.mutable_grad() = Tensor();
  (h * 3).sum().backward();
  EXPECT_TRUE(close(x.grad(), full({3}, 6.0, kDouble), 0, 0));
  // leaf hooks run before accumulation
  Tensor l = leaf({2});
  l.register_hook([](const Tensor& g) { return g + 1; });
  (l * 1).sum().backward();
  EXPECT_TRUE(close(l.grad(), full({2}, 2.0, kDouble), 0, 0));
  EXPECT_KILN_ERROR(zeros({2}).register_hook([](const Tensor& g) { return g; }),
                    {"doesn't require gradient"});
}

TEST(Autograd, RetainGradKeepsNonLeafGradients) {
  Tensor x = leaf({3});
  Tensor h = x.exp();
  h.retain_grad();
  EXPECT_TRUE(h.retains_grad());
  Tensor u = x * 2;
  (h * u).sum().backward();
  EXPECT_TRUE(close(h.grad(), u.detach(), 0, 0));
  EXPECT_FALSE(u.grad().defined());
}

TEST(Autograd, InPlaceOnLeafRequiringGradIsRejected) {
  Tensor x = leaf({3});
  EXPECT_KILN_ERROR(x.add_(1), {"leaf tensor that requires grad", "add_", "NoGradGuard"});
  EXPECT_KILN_ERROR(x[0].mul_(2), {"view of a leaf tensor that requires grad"});
  {
    NoGradGuard ng;
    x.add_(1);  // allowed: an optimizer-style update
  }
}

TEST(Autograd, InPlaceOnNonLeafRebasesHistory) {
  Tensor x = leaf({4});
  Tensor y = x * 2;
  y.add_(1);  // y = 2x + 1
  y.mul_(x);  // y = (2x + 1) x: mul_ keeps the old y for x's gradient
  EXPECT_EQ(y.grad_fn()->name(), "MulBackward");
  y.sum().backward();
  EXPECT_TRUE(close(x.grad(), 4 * x.detach() + 1, 1e-12, 1e-12));
  // exp_ saves its result, so a later in-place write to it must be caught (as in libtorch).
  Tensor z = x * 2;
  z.exp_();
  z.mul_(x);
  EXPECT_KILN_ERROR(z.sum().backward(), {"result 0 of ExpBackward", "in-place"});
}

TEST(Autograd, ModifyingASavedTensorIsDetected) {
  Tensor x = leaf({3});
  Tensor h = x * 1;
  Tensor y = (h * h).sum();  // mul saves h
  h.add_(1);
  EXPECT_KILN_ERROR(y.backward(), {"modified by an in-place operation", "version"});
  // An op that saves nothing tolerates the change, as in libtorch.
  Tensor h2 = x * 1;
  Tensor z = (h2 + 3).sum();
  h2.add_(1);
  z.backward();
  EXPECT_TRUE(close(x.grad(), ones({3}, kDouble), 0, 0));
}

TEST(Autograd, InPlaceThroughAViewUpdatesTheBase) {
  Tensor w = leaf({2, 3});
  Tensor base = w * 1;           // a non-leaf base
  Tensor row = base.select(0, 1);  // a view of it
  row.mul_(w.select(0, 0));      // base[1] *= w[0]
  Tensor loss = (base * base).sum();
  loss.backward();
  // base = [w0, w1 * w0] -> loss = sum w0^2 + sum (w1 w0)^2
  Tensor w0 = w.detach()[0], w1 = w.detach()[1];
  Tensor g0 = 2 * w0 + 2 * w1 * w1 * w0, g1 = 2 * w1 * w0 * w0;
  EXPECT_TRUE(close(w.grad(), stack({g0, g1}), 1e-12, 1e-12));
  EXPECT_EQ(base.grad_fn()->name(), "CopySlices");
}

TEST(Autograd, CopyIntoAViewOfANonLeaf) {
  Tensor a = leaf({4}), b = leaf({2});
  Tensor t = a * 1;
  t.slice(0, 1, 3).copy_(b * 3);
  t.sum().backward();
  EXPECT_TRUE(close(a.grad(), tensor({1.0, 0.0, 0.0, 1.0}, kDouble), 0, 0));
  EXPECT_TRUE(close(b.grad(), full({2}, 3.0, kDouble), 0, 0));
}

TEST(Autograd, OutVariantsRejectTensorsRequiringGrad) {
  Tensor x = leaf({3});
  Tensor out = empty({3}, kDouble);
  EXPECT_KILN_ERROR(exp_out(out, x), {"exp_out", "out= arguments don't support"});
  NoGradGuard ng;
  exp_out(out, x);
  EXPECT_TRUE(close(out, x.detach().exp(), 0, 0));
}

TEST(Autograd, IntegerResultsCarryNoGradient) {
  Tensor x = leaf({5});
  auto [values, indices] = x.sort();
  EXPECT_TRUE(values.requires_grad());
  EXPECT_FALSE(indices.requires_grad());
  EXPECT_FALSE(x.argmax().requires_grad());
  EXPECT_FALSE((x > 0).requires_grad());
  values.sum().backward();
  EXPECT_TRUE(close(x.grad(), ones({5}, kDouble), 0, 0));
}

TEST(Autograd, MixedDtypesGetGradientsOfTheirOwnDtype) {
  Tensor f = random_tensor({3}, kFloat).requires_grad_();
  Tensor d = random_tensor({3}, kDouble).requires_grad_();
  (f * d).sum().backward();
  EXPECT_EQ(f.grad().dtype(), kFloat);
  EXPECT_EQ(d.grad().dtype(), kDouble);
  EXPECT_TRUE(close(f.grad(), d.detach().to(kFloat), 1e-6, 1e-6));
}

TEST(Autograd, BroadcastGradientsAreSummed) {
  Tensor a = leaf({3, 1}), b = leaf({4});
  (a * b).sum().backward();
  EXPECT_EQ(a.grad().sizes().vec(), (std::vector<int64_t>{3, 1}));
  EXPECT_TRUE(close(a.grad(), full({3, 1}, 1.0, kDouble) * b.detach().sum(), 1e-12, 1e-12));
  EXPECT_TRUE(close(b.grad(), full({4}, 1.0, kDouble) * a.detach().sum(), 1e-12, 1e-12));
}

TEST(Autograd, DeepChainsDoNotRecurse) {
  // The engine is iterative: a 20k-node chain must not overflow the stack.
  Tensor x = leaf({1});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0001;
  y.sum().backward();
  EXPECT_NEAR(x.grad().item<double>(), std::pow(1.0001, 20000), 1e-6);
}

struct MulConst : autograd::Function<MulConst> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x, double c) {
    ctx->saved_data["c"] = c;
    ctx->save_for_backward({x});
    return x * c;
  }
  static variable_list backward(autograd::AutogradContext* ctx, variable_list grads) {
    double c = ctx->saved_data["c"].toDouble();
    Tensor x = ctx->get_saved_variables()[0];
    (void)x;
    return {grads[0] * c, Tensor()};
  }
};

struct SplitSign : autograd::Function<SplitSign> {
  // Two outputs: |x| and the sign (non-differentiable).
  static variable_list forward(autograd::AutogradContext* ctx, const Tensor& x) {
    Tensor s = x.sign();
    ctx->save_for_backward({s});
    ctx->mark_non_differentiable({s});
    return {x.abs(), s};
  }
  static variable_list backward(autograd::AutogradContext* ctx, variable_list grads) {
    EXPECT_TRUE(ctx->needs_input_grad(0));
    return {grads[0] * ctx->get_saved_variables()[0]};
  }
};

TEST(Autograd, CustomFunctions) {
  Tensor x = leaf({3});
  Tensor y = MulConst::apply(x, 2.5);
  EXPECT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(close(x.grad(), full({3}, 2.5, kDouble), 0, 0));

  Tensor z = leaf({4});
  variable_list outs = SplitSign::apply(z);
  EXPECT_TRUE(outs[0].requires_grad());
  EXPECT_FALSE(outs[1].requires_grad());
  outs[0].sum().backward();
  EXPECT_TRUE(close(z.grad(), z.detach().sign(), 0, 0));

  // No input requires grad: plain forward, no history.
  Tensor c = random_tensor({2}, kDouble);
  EXPECT_FALSE(MulConst::apply(c, 2.0).requires_grad());
}

TEST(Autograd, CustomFunctionSavedTensorsAreVersionChecked) {
  Tensor x = leaf({3});
  Tensor h = x * 1;
  Tensor y = MulConst::apply(h, 2.0);
  h.add_(1);
  EXPECT_KILN_ERROR(y.sum().backward(), {"modified by an in-place operation"});
}

TEST(Autograd, GradcheckCatchesAWrongBackward) {
  struct Wrong : autograd::Function<Wrong> {
    static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x * x; }
    static variable_list backward(autograd::AutogradContext*, variable_list g) {
      return {g[0] * 3};  // should be 2x
    }
  };
  Tensor x = leaf({3});
  auto fn = [](const variable_list& v) { return variable_list{Wrong::apply(v[0])}; };
  EXPECT_FALSE(autograd::gradcheck(fn, {x}, {.raise_exception = false}));
  EXPECT_KILN_ERROR(autograd::gradcheck(fn, {x}), {"Jacobian mismatch", "numerical", "analytical"});
  auto good = [](const variable_list& v) { return variable_list{v[0] * v[0]}; };
  EXPECT_TRUE(autograd::gradcheck(good, {x}, {.check_grad_grad = true}));
}

TEST(Autograd, TrainsALinearModel) {
  // Gradient descent on least squares recovers known weights: the loss must fall steadily.
  manual_seed(3);
  Tensor X = randn({64, 3}, kDouble);
  Tensor w_true = tensor({1.5, -2.0, 0.5}, kDouble);
  Tensor Y = X.matmul(w_true) + 0.25;
  Tensor w = zeros({3}, kDouble).requires_grad_(), b = zeros({1}, kDouble).requires_grad_();
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    Tensor loss = ((X.matmul(w) + b - Y).square()).mean();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    w.mutable_grad() = Tensor();
    b.mutable_grad() = Tensor();
    loss.backward();
    NoGradGuard ng;
    w.sub_(w.grad() * 0.1);
    b.sub_(b.grad() * 0.1);
  }
  EXPECT_LT(last, first * 1e-6);
  EXPECT_TRUE(close(w.detach(), w_true, 1e-4, 1e-4));
  EXPECT_NEAR(b.item<double>(), 0.25, 1e-4);
}

// ---- fused backward kernels (src/tensor/backward_kernels.h) -----------------------------------
// Each must give what its primitive spelling gives (the spelling is what create_graph records).

TEST(FusedBackward, ReluBackwardEqualsItsWhereSpelling) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (ScalarType dt : {kFloat, kDouble, kHalf, kBFloat16}) {
    for (std::vector<int64_t> sizes :
         {std::vector<int64_t>{}, {0}, {1}, {7}, {33}, {1025}, {3, 5}, {2, 3, 17}}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << shape_str(sizes));
      Tensor r = relu(random_tensor(sizes, dt, -2, 2));
      if (r.numel() > 2) {
        r.view({-1}).index_put_({0}, nan);
        r.view({-1}).index_put_({1}, -0.0);
      }
      for (Tensor g : {random_tensor(sizes, dt), non_contiguous(random_tensor(sizes, dt)),
                       full({}, 3.0, TensorOptions(dt)).expand(sizes)}) {
        Tensor want = where(gt(r, 0), g, 0.0);
        Tensor got = detail::relu_backward(g, r);
        ASSERT_TRUE(got.defined());
        EXPECT_EQ(got.dtype(), want.dtype());
        EXPECT_TRUE(close(got, want, 0, 0));
        EXPECT_TRUE(close(detail::relu_backward(g, non_contiguous(r)), want, 0, 0));
      }
    }
  }
  // Mixed dtypes are left to the spelling.
  EXPECT_FALSE(detail::relu_backward(zeros({3}), zeros({3}, kDouble)).defined());
}

TEST(FusedBackward, ReluGradientsWithAndWithoutCreateGraph) {
  Tensor x = random_tensor({4, 9}, kFloat).requires_grad_();
  Tensor g = random_tensor({4, 9}, kFloat);
  Tensor y = relu(x);
  Tensor fast = autograd::grad({y}, {x}, {g}, true)[0];
  EXPECT_TRUE(close(fast, where(gt(x.detach(), 0), g, 0.0), 0, 0));
  EXPECT_FALSE(fast.requires_grad());
  // create_graph with a gradient that requires grad: the recorded where(), differentiable in g.
  Tensor gr = g.clone().requires_grad_();
  Tensor recorded = autograd::grad({y}, {x}, {gr}, true, true)[0];
  EXPECT_TRUE(close(recorded, fast, 0, 0));
  ASSERT_TRUE(recorded.requires_grad());
  EXPECT_TRUE(close(autograd::grad({recorded.sum()}, {gr})[0], gt(x.detach(), 0).to(kFloat), 0, 0));
}

// conv2d's gradients from oneDNN's backward primitives (taken when nothing records) against
// the im2col/col2im formula (taken under create_graph), float32.
TEST(FusedBackward, Conv2dOneDnnBackwardMatchesTheIm2colFormula) {
  struct ConvCase {
    std::vector<int64_t> x, w;
    bool bias;
    std::vector<int64_t> stride, padding, dilation;
    int64_t groups;
  };
  const ConvCase cases[] = {
      {{256, 1, 8, 8}, {16, 1, 3, 3}, true, {1}, {1}, {1}, 1},
      {{32, 16, 4, 4}, {32, 16, 3, 3}, true, {1}, {1}, {1}, 1},
      {{2, 3, 11, 9}, {5, 3, 3, 2}, false, {2, 1}, {1, 0}, {1, 2}, 1},
      {{3, 4, 7, 7}, {6, 2, 3, 3}, true, {1}, {2}, {2}, 2},
      {{2, 6, 5, 6}, {6, 1, 3, 3}, false, {1}, {1}, {1}, 6},
      {{4, 5, 5}, {3, 4, 2, 2}, true, {1}, {0}, {1}, 1},  // unbatched
      {{1, 2, 3, 3}, {4, 2, 3, 3}, true, {2}, {0}, {1}, 1},
  };
  for (const ConvCase& c : cases) {
    for (int layout = 0; layout < 2; ++layout) {
      SCOPED_TRACE(::testing::Message() << "x " << shape_str(c.x) << " w " << shape_str(c.w)
                                        << " groups " << c.groups << " layout " << layout);
      Tensor x0 = random_tensor(c.x, kFloat);
      // layout 1: channels-last input and a non-contiguous gradient
      if (layout == 1 && x0.dim() == 4)
        x0 = x0.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
      Tensor x = x0.requires_grad_();
      Tensor w = random_tensor(c.w, kFloat).requires_grad_();
      Tensor b = c.bias ? random_tensor({c.w[0]}, kFloat).requires_grad_() : Tensor();
      Tensor y = conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
      Tensor g = random_tensor(y.sizes(), kFloat);
      if (layout == 1) g = non_contiguous(g);
      variable_list in = c.bias ? variable_list{x, w, b} : variable_list{x, w};
      const size_t cached = onednn::cache_size();
      variable_list fast = autograd::grad({y}, in, {g}, true);
      // (layout 1 reuses layout 0's primitives: the kernel takes contiguous NCHW copies)
      if (layout == 0) {
        EXPECT_GT(onednn::cache_size(), cached) << "the oneDNN backward primitives were not used";
      }
      variable_list recorded = autograd::grad({y}, in, {g}, true, true);
      for (size_t i = 0; i < in.size(); ++i) {
        ASSERT_TRUE(fast[i].defined());
        EXPECT_EQ(fast[i].sizes().vec(), in[i].sizes().vec());
        EXPECT_TRUE(close(fast[i], recorded[i].detach(), 1e-4, 1e-4)) << "gradient " << i;
      }
    }
  }
  // Only the input's gradient, and only the weight's.
  Tensor x = random_tensor({2, 3, 6, 6}, kFloat).requires_grad_();
  Tensor w = random_tensor({4, 3, 3, 3}, kFloat).requires_grad_();
  Tensor y = conv2d(x, w, Tensor(), 1, 1);
  Tensor g = random_tensor(y.sizes(), kFloat);
  EXPECT_TRUE(close(autograd::grad({y}, {x}, {g}, true)[0],
                    autograd::grad({y}, {x}, {g}, true, true)[0].detach(), 1e-4, 1e-4));
  EXPECT_TRUE(close(autograd::grad({y}, {w}, {g}, true)[0],
                    autograd::grad({y}, {w}, {g}, true, true)[0].detach(), 1e-4, 1e-4));
  // Only the bias's gradient, and the weight's and bias's without the input's.
  Tensor b = random_tensor({4}, kFloat).requires_grad_();
  Tensor xc = random_tensor({2, 3, 6, 6}, kFloat), wc = w.detach();
  Tensor yb = conv2d(xc, wc, b, 1, 1);
  Tensor gb = random_tensor(yb.sizes(), kFloat);
  EXPECT_TRUE(close(autograd::grad({yb}, {b}, {gb}, true)[0], gb.sum({0, 2, 3}), 1e-5, 1e-5));
  Tensor wr = wc.clone().requires_grad_();
  Tensor yw = conv2d(xc, wr, b, 1, 1);
  variable_list fw = autograd::grad({yw}, {wr, b}, {gb}, true);
  variable_list rw = autograd::grad({yw}, {wr, b}, {gb}, true, true);
  EXPECT_TRUE(close(fw[0], rw[0].detach(), 1e-4, 1e-4));
  EXPECT_TRUE(close(fw[1], gb.sum({0, 2, 3}), 1e-5, 1e-5));
  // An empty batch and float64 take the formula.
  Tensor xe = random_tensor({0, 3, 6, 6}, kFloat).requires_grad_();
  Tensor ye = conv2d(xe, w, Tensor(), 1, 1);
  variable_list ge = autograd::grad({ye}, {xe, w}, {zeros(ye.sizes())});
  EXPECT_EQ(ge[0].sizes().vec(), xe.sizes().vec());
  EXPECT_TRUE(close(ge[1], zeros(w.sizes()), 0, 0));
  Tensor xd = random_tensor({2, 3, 5, 5}, kDouble).requires_grad_();
  Tensor wd = random_tensor({2, 3, 3, 3}, kDouble).requires_grad_();
  Tensor yd = conv2d(xd, wd);
  Tensor gd = random_tensor(yd.sizes(), kDouble);
  variable_list fd = autograd::grad({yd}, {xd, wd}, {gd}, true);
  variable_list rd = autograd::grad({yd}, {xd, wd}, {gd}, true, true);
  EXPECT_TRUE(close(fd[0], rd[0].detach(), 0, 0));
  EXPECT_TRUE(close(fd[1], rd[1].detach(), 0, 0));
}

// ---- AccumulateGrad takes a leaf's first gradient without a copy when nothing else sees it ---
TEST(Autograd, FirstGradientIsStolenOnlyWhenUnshared) {
  // A fresh gradient (mul's output) becomes .grad() as is: correct values, and later
  // accumulation adds into it.
  Tensor x = leaf({3}), w = leaf({3});
  (x * w).sum().backward();
  EXPECT_TRUE(close(x.grad(), w.detach(), 0, 0));
  (x * w).sum().backward();
  EXPECT_TRUE(close(x.grad(), w.detach() * 2, 0, 0));

  // The caller's gradient tensor is never taken: it stays the caller's.
  Tensor l = leaf({4});
  Tensor given = random_tensor({4}, kDouble);
  l.backward(given);
  EXPECT_NE(l.grad().data_ptr(), given.data_ptr());
  given.fill_(0);
  EXPECT_FALSE(close(l.grad(), given, 0, 0));

  // A view of the caller's gradient (view's backward reshapes) is not taken either.
  Tensor v = leaf({2, 3});
  Tensor gv = random_tensor({6}, kDouble);
  v.view({6}).backward(gv);
  EXPECT_NE(v.grad().data_ptr(), gv.data_ptr());
  EXPECT_TRUE(close(v.grad(), gv.view({2, 3}), 0, 0));

  // A gradient a hook kept is copied.
  Tensor h = leaf({3});
  Tensor kept;
  h.register_hook([&](const Tensor& g) { kept = g; });
  (h * 2).sum().backward();
  EXPECT_NE(h.grad().data_ptr(), kept.data_ptr());
  kept.fill_(0);
  EXPECT_TRUE(close(h.grad(), full({3}, 2.0, kDouble), 0, 0));

  // The same gradient reaching two leaves (add's backward passes it through): each leaf gets
  // its own memory.
  Tensor a = leaf({3}), b = leaf({3});
  (a + b).backward(ones({3}, kDouble) * 5);
  EXPECT_NE(a.grad().data_ptr(), b.grad().data_ptr());
  a.mutable_grad().fill_(0);
  EXPECT_TRUE(close(b.grad(), full({3}, 5.0, kDouble), 0, 0));

  // A gradient that is an expanded view (sum's backward) is materialised contiguous.
  Tensor e = leaf({2, 3});
  e.sum().backward();
  EXPECT_TRUE(e.grad().is_contiguous());
  EXPECT_TRUE(close(e.grad(), ones({2, 3}, kDouble), 0, 0));
}

// True when a and b are views of one buffer (any offset or strides).
bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.unsafeGetTensorImpl()->storage() == b.unsafeGetTensorImpl()->storage();
}

// The caller's gradient goes through ops whose backward hands it on unchanged (add), as a view
// (view, reshape, t, a leaf root) or scaled (mul): in every case .grad() is the leaf's own memory,
// so writing the caller's tensor afterwards, or accumulating a second backward into .grad(), leaves
// the other alone.
TEST(AccumulateGrad, NeverAliasesTheCallersGradient) {
  struct Case {
    const char* what;
    std::function<Tensor(const Tensor&)> f;
    double scale;
  };
  const Case cases[] = {
      {"x * 2", [](const Tensor& x) { return x * 2; }, 2.0},
      {"x + 1", [](const Tensor& x) { return x + 1; }, 1.0},
      {"x.view",
       [](const Tensor& x) {
         return x.view({6}).view({2, 3});
       },
       1.0},
      {"x.reshape",
       [](const Tensor& x) {
         return x.reshape({3, 2}).reshape({2, 3});
       },
       1.0},
      {"x.t().t()", [](const Tensor& x) { return x.t().t(); }, 1.0},
      {"x itself", [](const Tensor& x) { return x; }, 1.0},
      {"x + x", [](const Tensor& x) { return x + x; }, 2.0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Tensor x = leaf({2, 3});
    Tensor g = random_tensor({2, 3}, kDouble);
    const Tensor g0 = g.clone();
    c.f(x).backward(g);
    ASSERT_TRUE(x.grad().defined());
    EXPECT_FALSE(shares_storage(x.grad(), g));
    EXPECT_TRUE(close(x.grad(), g0 * c.scale, 0, 0));
    g.fill_(100);
    EXPECT_TRUE(close(x.grad(), g0 * c.scale, 0, 0)) << "writing g changed x.grad()";
    // A second backward accumulates into .grad() in place: neither gradient given may change.
    Tensor g2 = random_tensor({2, 3}, kDouble);
    const Tensor g20 = g2.clone();
    c.f(x).backward(g2);
    EXPECT_TRUE(close(x.grad(), (g0 + g20) * c.scale, 1e-15, 1e-15));
    EXPECT_TRUE(close(g, full({2, 3}, 100.0, kDouble), 0, 0));
    EXPECT_TRUE(close(g2, g20, 0, 0));
  }
}

// Nothing else sees a gradient a hook made and handed back: it becomes .grad() without a copy.
TEST(AccumulateGrad, TakesAFreshUnsharedGradientWithoutACopy) {
  Tensor x = leaf({64});
  const void* made = nullptr;
  x.register_hook([&made](const Tensor& g) {
    Tensor r = g * 3;
    made = r.data_ptr();
    return r;
  });
  (x * 2).sum().backward();
  EXPECT_EQ(x.grad().data_ptr(), made) << "the unshared gradient was copied";
  EXPECT_TRUE(close(x.grad(), full({64}, 6.0, kDouble), 0, 0));
  // Later passes add into that same buffer.
  const void* taken = x.grad().data_ptr();
  (x * 2).sum().backward();
  EXPECT_EQ(x.grad().data_ptr(), taken);
  EXPECT_NE(made, taken);
  EXPECT_TRUE(close(x.grad(), full({64}, 12.0, kDouble), 0, 0));
}

// Hooks that keep the gradient they see or the one they return, or a view of either: .grad()
// must be a copy, and accumulating into it must not write what the hook kept.
TEST(AccumulateGrad, GradientsAHookKeepsAreCopied) {
  for (int mode = 0; mode < 4; ++mode) {
    SCOPED_TRACE(mode);
    Tensor x = leaf({2, 4});
    Tensor kept;
    x.register_hook([&kept, mode](const Tensor& g) -> Tensor {
      switch (mode) {
        case 0:
          kept = g;
          return Tensor();  // keeps what it saw
        case 1:
          kept = g * 3;
          return kept;  // keeps what it returns
        case 2:
          kept = g.view({8});
          return Tensor();  // keeps a view of what it saw
        default: {
          Tensor r = g * 3;
          kept = r.t();  // keeps a view of what it returns
          return r;
        }
      }
    });
    (x * 2).sum().backward();
    const double want = mode % 2 == 0 ? 2.0 : 6.0;
    ASSERT_TRUE(kept.defined());
    EXPECT_FALSE(shares_storage(x.grad(), kept));
    EXPECT_TRUE(close(x.grad(), full({2, 4}, want, kDouble), 0, 0));
    const Tensor kept0 = kept.clone();
    Tensor first = kept;
    (x * 2).sum().backward();  // the hook keeps the new gradient; the old one must be unchanged
    EXPECT_TRUE(close(first, kept0, 0, 0)) << "accumulating wrote a tensor the hook kept";
    EXPECT_TRUE(close(x.grad(), full({2, 4}, 2 * want, kDouble), 0, 0));
    kept.fill_(-1);
    EXPECT_TRUE(close(x.grad(), full({2, 4}, 2 * want, kDouble), 0, 0));
  }
}

// f(x) = sum(x * 3), whose backward returns its saved tensor itself (3s, made in forward) when
// the incoming gradient is one, as a user's Function may: with retain_graph the saved tensor
// lives on in the graph, so .grad() must not take it.
struct ReturnsItsSavedTensor : autograd::Function<ReturnsItsSavedTensor> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({full(x.sizes(), 3.0, kDouble)});
    return (x * 3).sum();
  }
  static variable_list backward(autograd::AutogradContext* ctx, variable_list grads) {
    Tensor s = ctx->get_saved_variables()[0];
    return {grads[0].item<double>() == 1.0 ? s : s * grads[0]};
  }
};

TEST(AccumulateGrad, RetainGraphKeepsSavedTensorsApart) {
  Tensor x = leaf({5});
  Tensor y = ReturnsItsSavedTensor::apply(x);
  y.backward({}, true);
  EXPECT_TRUE(close(x.grad(), full({5}, 3.0, kDouble), 0, 0));
  // Zeroing .grad() must not zero the graph's saved tensor (nor bump its version).
  x.mutable_grad().zero_();
  y.backward({}, true);
  EXPECT_TRUE(close(x.grad(), full({5}, 3.0, kDouble), 0, 0));
  y.backward({}, true);
  y.backward();
  EXPECT_TRUE(close(x.grad(), full({5}, 9.0, kDouble), 0, 0));

  // Built-in ops with retain_graph: saved operands and the given gradient stay as they were.
  Tensor a = leaf({4}), b = leaf({4});
  const Tensor a0 = a.detach().clone(), b0 = b.detach().clone();
  Tensor z = a * b;
  Tensor g = random_tensor({4}, kDouble);
  const Tensor g0 = g.clone();
  z.backward(g, true);
  a.mutable_grad().mul_(0);
  z.backward(g, true);
  z.backward(g);
  EXPECT_TRUE(close(a.grad(), g0 * b0 * 2, 1e-15, 1e-15));
  EXPECT_TRUE(close(b.grad(), g0 * a0 * 3, 1e-15, 1e-15));
  EXPECT_TRUE(close(g, g0, 0, 0));
  EXPECT_TRUE(close(a.detach(), a0, 0, 0));
  EXPECT_TRUE(close(b.detach(), b0, 0, 0));
}

// create_graph: .grad() is a recorded clone or an out-of-place sum, never the caller's tensor,
// and a .grad() held from before is not written.
TEST(AccumulateGrad, CreateGraphPaths) {
  Tensor x = leaf({3});
  Tensor g = random_tensor({3}, kDouble);
  const Tensor g0 = g.clone();
  x.backward(g, true, true);
  EXPECT_FALSE(shares_storage(x.grad(), g));
  g.fill_(0);
  EXPECT_TRUE(close(x.grad(), g0, 0, 0));

  // A gradient with history: d/dx of (x*x) . v is 2 x v; then d/dx of sum(x.grad) is 2 v.
  Tensor w = leaf({3});
  Tensor v = random_tensor({3}, kDouble);
  (w * w).backward(v, true, true);
  Tensor first = w.grad();
  ASSERT_TRUE(first.requires_grad());
  EXPECT_TRUE(close(first, w.detach() * v * 2, 1e-15, 1e-15));
  const Tensor first0 = first.detach().clone();
  EXPECT_TRUE(close(autograd::grad({first.sum()}, {w})[0], v * 2, 1e-15, 1e-15));
  // Accumulating with create_graph is out of place: the handle taken before keeps its values.
  (w * w).backward(v, false, true);
  EXPECT_TRUE(close(first, first0, 0, 0));
  EXPECT_TRUE(close(w.grad(), first0 * 2, 1e-15, 1e-15));
  EXPECT_FALSE(shares_storage(w.grad(), first));

  // A stolen first gradient followed by a create_graph pass: the sum is a new tensor.
  Tensor u = leaf({3});
  (u * 2).sum().backward();
  Tensor before = u.grad();
  (u * u).sum().backward({}, false, true);
  EXPECT_TRUE(close(before, full({3}, 2.0, kDouble), 0, 0));
  EXPECT_TRUE(close(u.grad(), u.detach() * 2 + 2, 1e-15, 1e-15));
  EXPECT_TRUE(u.grad().requires_grad());
}

}  // namespace
}  // namespace kiln::testing
