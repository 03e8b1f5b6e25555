// The update rules of SGD, Adam, AdamW and RMSprop, as in-place tensor ops under NoGradGuard
// (device-neutral: the same code will run on CUDA tensors), following libtorch's formulas.
#include "kiln/optim/optimizers.h"

#include <cmath>

#include "kiln/autograd/grad_mode.h"
#include "kiln/functions.h"

namespace kiln::optim {

namespace {

void check_non_negative(const char* op, const char* what, double v) {
  KILN_CHECK(v >= 0.0, "[{}] got {}={}, expected a value >= 0", op, what, v);
}

void check_betas(const char* op, const std::tuple<double, double>& betas, double eps) {
  auto [b1, b2] = betas;
  KILN_CHECK(b1 >= 0.0 && b1 < 1.0 && b2 >= 0.0 && b2 < 1.0,
             "[{}] got betas=({}, {}), expected both in [0, 1)", op, b1, b2);
  check_non_negative(op, "eps", eps);
}

template <typename State, typename Map>
State& state_of(Map& state, const Tensor& p, bool& created) {
  auto it = state.find(p.unsafeGetTensorImpl());
  created = it == state.end();
  if (created) it = state.emplace(p.unsafeGetTensorImpl(), std::make_unique<State>()).first;
  return static_cast<State&>(*it->second);
}

// The shared Adam/AdamW update (weight decay handled by the caller).
template <typename Options, typename Map>
void adam_update(Map& state, Tensor& p, const Tensor& grad, const Options& o) {
  bool created = false;
  auto& st = state_of<AdamParamState>(state, p, created);
  if (created) {
    st.exp_avg(kiln::zeros_like(p));
    st.exp_avg_sq(kiln::zeros_like(p));
    if (o.amsgrad()) st.max_exp_avg_sq(kiln::zeros_like(p));
  }
  st.step(st.step() + 1);
  auto [beta1, beta2] = o.betas();
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(st.step()));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(st.step()));
  Tensor& exp_avg = st.exp_avg();
  Tensor& exp_avg_sq = st.exp_avg_sq();
  exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
  exp_avg_sq.mul_(beta2).add_(grad * grad, 1.0 - beta2);
  Tensor second = exp_avg_sq;
  if (o.amsgrad()) {
    KILN_CHECK(st.max_exp_avg_sq().defined(),
               "[Adam] amsgrad was turned on after the first step of this parameter");
    kiln::maximum_out(st.max_exp_avg_sq(), st.max_exp_avg_sq(), exp_avg_sq);
    second = st.max_exp_avg_sq();
  }
  Tensor denom = (kiln::sqrt(second) / std::sqrt(bias_correction2)).add_(o.eps());
  p.add_(exp_avg / denom, -o.lr() / bias_correction1);
}

}  // namespace

// ---- SGD -------------------------------------------------------------------------------------

SGDOptions::SGDOptions(double lr) : lr_(lr) {}

SGD::SGD(std::vector<OptimizerParamGroup> param_groups, SGDOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<SGDOptions>(defaults), "SGD") {
  check_non_negative("SGD", "lr", defaults.lr());
  check_non_negative("SGD", "momentum", defaults.momentum());
  check_non_negative("SGD", "weight_decay", defaults.weight_decay());
  KILN_CHECK(!defaults.nesterov() || (defaults.momentum() > 0 && defaults.dampening() == 0),
             "[SGD] nesterov momentum requires a momentum > 0 and zero dampening, got "
             "momentum={} and dampening={}",
             defaults.momentum(), defaults.dampening());
}

SGD::SGD(std::vector<Tensor> params, SGDOptions defaults)
    : SGD(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Tensor SGD::step(LossClosure closure) {
  Tensor loss = run_closure(closure);
  NoGradGuard no_grad;
  for (OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const SGDOptions&>(group.options());
    for (Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      Tensor d_p = p.grad();
      if (o.weight_decay() != 0) d_p = d_p.add(p, o.weight_decay());
      if (o.momentum() != 0) {
        bool created = false;
        auto& st = state_of<SGDParamState>(state_, p, created);
        if (created || !st.momentum_buffer().defined()) {
          st.momentum_buffer(d_p.clone());
        } else {
          st.momentum_buffer().mul_(o.momentum()).add_(d_p, 1.0 - o.dampening());
        }
        const Tensor& buf = st.momentum_buffer();
        d_p = o.nesterov() ? d_p.add(buf, o.momentum()) : buf;
      }
      p.add_(d_p, -o.lr());
    }
  }
  return loss;
}

// ---- Adam, AdamW -----------------------------------------------------------------------------

AdamOptions::AdamOptions(double lr) : lr_(lr) {}
AdamWOptions::AdamWOptions(double lr) : lr_(lr) {}

Adam::Adam(std::vector<OptimizerParamGroup> param_groups, AdamOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdamOptions>(defaults), "Adam") {
  check_non_negative("Adam", "lr", defaults.lr());
  check_non_negative("Adam", "weight_decay", defaults.weight_decay());
  check_betas("Adam", defaults.betas(), defaults.eps());
}

Adam::Adam(std::vector<Tensor> params, AdamOptions defaults)
    : Adam(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Tensor Adam::step(LossClosure closure) {
  Tensor loss = run_closure(closure);
  NoGradGuard no_grad;
  for (OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const AdamOptions&>(group.options());
    for (Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      Tensor grad = p.grad();
      if (o.weight_decay() != 0) grad = grad.add(p, o.weight_decay());
      adam_update(state_, p, grad, o);
    }
  }
  return loss;
}

AdamW::AdamW(std::vector<OptimizerParamGroup> param_groups, AdamWOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdamWOptions>(defaults), "AdamW") {
  check_non_negative("AdamW", "lr", defaults.lr());
  check_non_negative("AdamW", "weight_decay", defaults.weight_decay());
  check_betas("AdamW", defaults.betas(), defaults.eps());
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions defaults)
    : AdamW(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Tensor AdamW::step(LossClosure closure) {
  Tensor loss = run_closure(closure);
  NoGradGuard no_grad;
  for (OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const AdamWOptions&>(group.options());
    for (Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      // Decoupled weight decay: shrink the parameter itself, not the gradient.
      if (o.weight_decay() != 0) p.mul_(1.0 - o.lr() * o.weight_decay());
      adam_update(state_, p, p.grad(), o);
    }
  }
  return loss;
}

// ---- RMSprop ---------------------------------------------------------------------------------

RMSpropOptions::RMSpropOptions(double lr) : lr_(lr) {}

RMSprop::RMSprop(std::vector<OptimizerParamGroup> param_groups, RMSpropOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<RMSpropOptions>(defaults), "RMSprop") {
  check_non_negative("RMSprop", "lr", defaults.lr());
  check_non_negative("RMSprop", "alpha", defaults.alpha());
  check_non_negative("RMSprop", "eps", defaults.eps());
  check_non_negative("RMSprop", "weight_decay", defaults.weight_decay());
  check_non_negative("RMSprop", "momentum", defaults.momentum());
}

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions defaults)
    : RMSprop(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Tensor RMSprop::step(LossClosure closure) {
  Tensor loss = run_closure(closure);
  NoGradGuard no_grad;
  for (OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const RMSpropOptions&>(group.options());
    for (Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      bool created = false;
      auto& st = state_of<RMSpropParamState>(state_, p, created);
      if (created) {
        st.square_avg(kiln::zeros_like(p));
        if (o.momentum() > 0) st.momentum_buffer(kiln::zeros_like(p));
        if (o.centered()) st.grad_avg(kiln::zeros_like(p));
      }
      st.step(st.step() + 1);
      Tensor grad = p.grad();
      if (o.weight_decay() != 0) grad = grad.add(p, o.weight_decay());
      Tensor& square_avg = st.square_avg();
      square_avg.mul_(o.alpha()).add_(grad * grad, 1.0 - o.alpha());
      Tensor avg;
      if (o.centered()) {
        KILN_CHECK(st.grad_avg().defined(),
                   "[RMSprop] centered was turned on after the first step of this parameter");
        Tensor& grad_avg = st.grad_avg();
        grad_avg.mul_(o.alpha()).add_(grad, 1.0 - o.alpha());
        avg = kiln::sqrt(square_avg - grad_avg * grad_avg).add_(o.eps());
      } else {
        avg = kiln::sqrt(square_avg).add_(o.eps());
      }
      if (o.momentum() > 0) {
        KILN_CHECK(st.momentum_buffer().defined(),
                   "[RMSprop] momentum was turned on after the first step of this parameter");
        Tensor& buf = st.momentum_buffer();
        buf.mul_(o.momentum()).add_(grad / avg);
        p.add_(buf, -o.lr());
      } else {
        p.add_(grad / avg, -o.lr());
      }
    }
  }
  return loss;
}

}  // namespace kiln::optim
