// Tests of the optimizers and schedulers: SGD (momentum, dampening, nesterov, weight decay),
// Adam (amsgrad), AdamW and RMSprop (centered, momentum) against update sequences computed here
// by float64 loops of the published formulas, over several steps of a quadratic; parameter
// groups, zero_grad, closures, StepLR and CosineAnnealingLR sequences, and errors.
#include <cmath>
#include <functional>

#include "nn_test_util.h"

namespace kiln {
namespace {

using testing::close;
using testing::from_values;
using testing::random_tensor;
using testing::to_vector;
using Vec = std::vector<double>;

// loss(p) = sum(a * p^2 + b * p): gradient 2 a p + b, so the reference knows it exactly.
struct Quadratic {
  Vec a, b;
  explicit Quadratic(int64_t n) {
    a = to_vector(random_tensor({n}, kDouble, 0.5, 2));
    b = to_vector(random_tensor({n}, kDouble, -1, 1));
  }
  Tensor loss(const Tensor& p) const {
    return (from_values(a, {static_cast<int64_t>(a.size())}) * p * p +
            from_values(b, {static_cast<int64_t>(b.size())}) * p)
        .sum();
  }
  Vec grad(const Vec& p) const {
    Vec g(p.size());
    for (size_t i = 0; i < p.size(); ++i) g[i] = 2 * a[i] * p[i] + b[i];
    return g;
  }
};

// Runs steps of optimizer on p (autograd gradients) and of ref_step on a copy; compares after
// every step.
void run_against_reference(optim::Optimizer& opt, Tensor& p, const Quadratic& q, int steps,
                           const std::function<void(Vec&, const Vec&, int)>& ref_step) {
  Vec ref = to_vector(p);
  for (int k = 1; k <= steps; ++k) {
    opt.zero_grad();
    q.loss(p).backward();
    opt.step();
    ref_step(ref, q.grad(ref), k);
    ASSERT_TRUE(close(p, from_values(ref, {static_cast<int64_t>(ref.size())}), 1e-12, 1e-12))
        << "after step " << k;
  }
}

TEST(SGD, PlainMomentumDampeningNesterovWeightDecay) {
  struct Case {
    double momentum, dampening, wd;
    bool nesterov;
  };
  for (Case c : {Case{0, 0, 0, false}, Case{0.9, 0, 0, false}, Case{0.8, 0.3, 0.01, false},
                 Case{0.9, 0, 0.05, true}}) {
    SCOPED_TRACE(::testing::Message() << "momentum " << c.momentum << " dampening " << c.dampening
                                      << " wd " << c.wd << " nesterov " << c.nesterov);
    const double lr = 0.05;
    Quadratic q(6);
    Tensor p = random_tensor({6}, kDouble).requires_grad_();
    optim::SGD opt({p}, optim::SGDOptions(lr)
                            .momentum(c.momentum)
                            .dampening(c.dampening)
                            .weight_decay(c.wd)
                            .nesterov(c.nesterov));
    Vec buf;
    run_against_reference(opt, p, q, 6, [&](Vec& x, const Vec& g, int k) {
      for (size_t i = 0; i < x.size(); ++i) {
        double d = g[i] + c.wd * x[i];
        if (c.momentum != 0) {
          if (k == 1)
            buf.push_back(d);
          else
            buf[i] = c.momentum * buf[i] + (1 - c.dampening) * d;
          d = c.nesterov ? d + c.momentum * buf[i] : buf[i];
        }
        x[i] -= lr * d;
      }
    });
  }
}

void adam_reference(Vec& x, const Vec& g, int k, Vec& m, Vec& v, Vec& vmax, double lr, double b1,
                    double b2, double eps, double wd, bool amsgrad, bool decoupled) {
  if (m.empty()) m.assign(x.size(), 0), v.assign(x.size(), 0), vmax.assign(x.size(), 0);
  for (size_t i = 0; i < x.size(); ++i) {
    double gi = g[i];
    if (decoupled)
      x[i] *= 1 - lr * wd;
    else
      gi += wd * x[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    vmax[i] = std::max(vmax[i], v[i]);
    const double bc1 = 1 - std::pow(b1, k), bc2 = 1 - std::pow(b2, k);
    const double denom = std::sqrt(amsgrad ? vmax[i] : v[i]) / std::sqrt(bc2) + eps;
    x[i] -= lr / bc1 * m[i] / denom;
  }
}

TEST(Adam, MatchesReferenceWithAndWithoutAmsgradAndWeightDecay) {
  for (bool amsgrad : {false, true}) {
    for (double wd : {0.0, 0.1}) {
      SCOPED_TRACE(::testing::Message() << "amsgrad " << amsgrad << " wd " << wd);
      Quadratic q(5);
      Tensor p = random_tensor({5}, kDouble).requires_grad_();
      optim::Adam opt({p}, optim::AdamOptions(0.1)
                               .betas(std::make_tuple(0.8, 0.95))
                               .eps(1e-6)
                               .weight_decay(wd)
                               .amsgrad(amsgrad));
      Vec m, v, vmax;
      run_against_reference(opt, p, q, 8, [&](Vec& x, const Vec& g, int k) {
        adam_reference(x, g, k, m, v, vmax, 0.1, 0.8, 0.95, 1e-6, wd, amsgrad, false);
      });
      auto& st = static_cast<optim::AdamParamState&>(*opt.state().at(p.unsafeGetTensorImpl()));
      EXPECT_EQ(st.step(), 8);
      EXPECT_TRUE(close(st.exp_avg(), from_values(m, {5}), 1e-12, 1e-12));
    }
  }
}

TEST(AdamW, DecouplesWeightDecay) {
  Quadratic q(5);
  Tensor p = random_tensor({5}, kDouble).requires_grad_();
  optim::AdamW opt({p}, optim::AdamWOptions(0.05).weight_decay(0.2));
  EXPECT_DOUBLE_EQ(optim::AdamWOptions().weight_decay(), 1e-2);  // libtorch's default
  Vec m, v, vmax;
  run_against_reference(opt, p, q, 8, [&](Vec& x, const Vec& g, int k) {
    adam_reference(x, g, k, m, v, vmax, 0.05, 0.9, 0.999, 1e-8, 0.2, false, true);
  });
}

TEST(RMSprop, PlainCenteredMomentum) {
  struct Case {
    bool centered;
    double momentum, wd;
  };
  for (Case c :
       {Case{false, 0, 0}, Case{true, 0, 0}, Case{false, 0.9, 0.01}, Case{true, 0.5, 0.1}}) {
    SCOPED_TRACE(::testing::Message() << "centered " << c.centered << " momentum " << c.momentum);
    const double lr = 0.01, alpha = 0.9, eps = 1e-7;
    Quadratic q(4);
    Tensor p = random_tensor({4}, kDouble).requires_grad_();
    optim::RMSprop opt({p}, optim::RMSpropOptions(lr)
                                .alpha(alpha)
                                .eps(eps)
                                .centered(c.centered)
                                .momentum(c.momentum)
                                .weight_decay(c.wd));
    Vec sq(4, 0), ga(4, 0), buf(4, 0);
    run_against_reference(opt, p, q, 7, [&](Vec& x, const Vec& g, int) {
      for (size_t i = 0; i < x.size(); ++i) {
        const double gi = g[i] + c.wd * x[i];
        sq[i] = alpha * sq[i] + (1 - alpha) * gi * gi;
        double avg;
        if (c.centered) {
          ga[i] = alpha * ga[i] + (1 - alpha) * gi;
          avg = std::sqrt(sq[i] - ga[i] * ga[i]) + eps;
        } else {
          avg = std::sqrt(sq[i]) + eps;
        }
        if (c.momentum > 0) {
          buf[i] = c.momentum * buf[i] + gi / avg;
          x[i] -= lr * buf[i];
        } else {
          x[i] -= lr * gi / avg;
        }
      }
    });
  }
}

TEST(Optimizer, ParamGroupsClosureAndZeroGrad) {
  Tensor a = random_tensor({3}, kDouble).requires_grad_();
  Tensor b = random_tensor({2}, kDouble).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<Tensor>{a});
  groups.emplace_back(std::vector<Tensor>{b}, std::make_unique<optim::SGDOptions>(0.5));
  optim::SGD opt(groups, optim::SGDOptions(0.1));
  EXPECT_EQ(opt.size(), 2u);
  EXPECT_DOUBLE_EQ(opt.param_groups()[0].options().get_lr(), 0.1);
  EXPECT_DOUBLE_EQ(opt.param_groups()[1].options().get_lr(), 0.5);
  Vec av = to_vector(a), bv = to_vector(b);
  Tensor loss = opt.step([&] {
    opt.zero_grad();
    Tensor l = (a * a).sum() + (b * b * b).sum();
    l.backward();
    return l;
  });
  EXPECT_TRUE(loss.defined());
  for (size_t i = 0; i < 3; ++i) av[i] -= 0.1 * 2 * av[i];
  for (size_t i = 0; i < 2; ++i) bv[i] -= 0.5 * 3 * bv[i] * bv[i];
  EXPECT_TRUE(close(a, from_values(av, {3}), 1e-12, 1e-12));
  EXPECT_TRUE(close(b, from_values(bv, {2}), 1e-12, 1e-12));
  // A parameter without a gradient is left alone.
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  opt.step();
  EXPECT_TRUE(close(a, from_values(av, {3}), 1e-12, 1e-12));
  (a.sum() * 2).backward();
  opt.zero_grad(/*set_to_none=*/false);
  EXPECT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().abs().sum().item<double>(), 0.0);
  Tensor c = random_tensor({2}, kDouble).requires_grad_();
  opt.add_parameters({c});
  EXPECT_EQ(opt.param_groups()[0].params().size(), 2u);
}

TEST(Optimizer, Errors) {
  Tensor a = random_tensor({3}, kDouble).requires_grad_();
  EXPECT_KILN_ERROR(optim::SGD({a * 2.0}, optim::SGDOptions(0.1)), {"[SGD]", "non-leaf"});
  EXPECT_KILN_ERROR(optim::Adam({a, a}), {"[Adam]", "more than once"});
  EXPECT_KILN_ERROR(optim::SGD({a}, optim::SGDOptions(-1)), {"[SGD]", "lr=-1"});
  EXPECT_KILN_ERROR(optim::SGD({a}, optim::SGDOptions(0.1).nesterov(true)),
                    {"[SGD]", "nesterov", "momentum=0"});
  EXPECT_KILN_ERROR(optim::Adam({a}, optim::AdamOptions().betas(std::make_tuple(0.9, 1.0))),
                    {"[Adam]", "betas=(0.9, 1)"});
  EXPECT_KILN_ERROR(optim::RMSprop({kiln::ones({2}, kiln::dtype(kLong))}),
                    {"[RMSprop]", "floating-point", "int64"});
  optim::SGD opt({a}, optim::SGDOptions(0.1));
  EXPECT_KILN_ERROR(opt.add_parameters({a}), {"more than once"});
}

TEST(Optimizer, TrainsAModule) {
  manual_seed(0);
  nn::Linear fc(3, 1);
  Tensor x = random_tensor({64, 3});
  Tensor y = x.matmul(kiln::tensor({{1.0f}, {-2.0f}, {0.5f}})) + 0.3;
  optim::Adam opt(fc->parameters(), optim::AdamOptions(0.1));
  double first = 0, last = 0;
  for (int i = 0; i < 150; ++i) {
    opt.zero_grad();
    Tensor loss = nn::functional::mse_loss(fc(x), y);
    loss.backward();
    opt.step();
    if (i == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, 1e-3 * first);
  EXPECT_NEAR(fc->weight[0][1].item<double>(), -2.0, 1e-2);
  EXPECT_NEAR(fc->bias[0].item<double>(), 0.3, 1e-2);
}

// ---- schedulers ------------------------------------------------------------------------------

TEST(Schedulers, StepLRCountsLikeLibtorch) {
  Tensor a = random_tensor({2}).requires_grad_();
  optim::SGD opt({a}, optim::SGDOptions(1.0));
  optim::StepLR sched(opt, /*step_size=*/3, /*gamma=*/0.5);
  for (int k = 1; k <= 10; ++k) {
    sched.step();
    // libtorch: decays when the count of previous steps is a positive multiple of step_size.
    const double expected = std::pow(0.5, (k - 1) / 3);
    EXPECT_DOUBLE_EQ(opt.param_groups()[0].options().get_lr(), expected) << "after step " << k;
    EXPECT_DOUBLE_EQ(sched.get_last_lr()[0], expected);
  }
  EXPECT_KILN_ERROR(optim::StepLR(opt, 0), {"[StepLR]", "step_size=0"});
}

TEST(Schedulers, CosineAnnealingFollowsClosedForm) {
  Tensor a = random_tensor({2}).requires_grad_();
  Tensor b = random_tensor({2}).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<Tensor>{a});
  groups.emplace_back(std::vector<Tensor>{b}, std::make_unique<optim::AdamOptions>(0.02));
  optim::Adam opt(groups, optim::AdamOptions(0.1));
  optim::CosineAnnealingLR sched(opt, /*T_max=*/8, /*eta_min=*/0.001);
  for (int k = 1; k <= 12; ++k) {
    sched.step();
    for (int g = 0; g < 2; ++g) {
      const double base = g == 0 ? 0.1 : 0.02;
      const double expected = 0.001 + (base - 0.001) * (1 + std::cos(M_PI * k / 8)) / 2;
      EXPECT_NEAR(opt.param_groups()[g].options().get_lr(), expected, 1e-15)
          << "group " << g << " after step " << k;
    }
  }
  EXPECT_NEAR(optim::AdamOptions(0.1).get_lr(), 0.1, 0);
}

}  // namespace
}  // namespace kiln
