// optim::Optimizer: parameter groups, zero_grad, the checks every optimizer shares, and the
// LR schedulers. The update rules are in optimizers.cpp; save/load in src/serialize.
#include "kiln/optim/optimizer.h"

#include <cmath>
#include <unordered_set>

#include "kiln/autograd/grad_mode.h"
#include "kiln/optim/schedulers.h"

namespace kiln::optim {

// ---- options and state bases ---------------------------------------------------------------

std::unique_ptr<OptimizerParamState> OptimizerParamState::clone() const {
  KILN_FAIL(
      "[optim] clone() is not implemented for this OptimizerParamState; derive it from "
      "OptimizerCloneableParamState<T>");
}
void OptimizerParamState::serialize(serialize::OutputArchive&) const {}
void OptimizerParamState::serialize(serialize::InputArchive&) {}

std::unique_ptr<OptimizerOptions> OptimizerOptions::clone() const {
  KILN_FAIL(
      "[optim] clone() is not implemented for this OptimizerOptions; derive it from "
      "OptimizerCloneableOptions<T>");
}
void OptimizerOptions::serialize(serialize::OutputArchive&) const {}
void OptimizerOptions::serialize(serialize::InputArchive&) {}
double OptimizerOptions::get_lr() const {
  KILN_FAIL("[optim] get_lr() is not implemented for this OptimizerOptions");
}
void OptimizerOptions::set_lr(double) {
  KILN_FAIL("[optim] set_lr() is not implemented for this OptimizerOptions");
}

// ---- OptimizerParamGroup ---------------------------------------------------------------------

OptimizerParamGroup::OptimizerParamGroup(const OptimizerParamGroup& other)
    : params_(other.params_), options_(other.has_options() ? other.options_->clone() : nullptr) {}

OptimizerParamGroup& OptimizerParamGroup::operator=(const OptimizerParamGroup& other) {
  if (this != &other) {
    params_ = other.params_;
    options_ = other.has_options() ? other.options_->clone() : nullptr;
  }
  return *this;
}

OptimizerParamGroup::OptimizerParamGroup(std::vector<Tensor> params) : params_(std::move(params)) {}

OptimizerParamGroup::OptimizerParamGroup(std::vector<Tensor> params,
                                         std::unique_ptr<OptimizerOptions> options)
    : params_(std::move(params)), options_(std::move(options)) {}

OptimizerOptions& OptimizerParamGroup::options() {
  KILN_CHECK(options_ != nullptr, "[optim] this parameter group has no options yet");
  return *options_;
}
const OptimizerOptions& OptimizerParamGroup::options() const {
  KILN_CHECK(options_ != nullptr, "[optim] this parameter group has no options yet");
  return *options_;
}

// ---- Optimizer -------------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<OptimizerParamGroup> param_groups,
                     std::unique_ptr<OptimizerOptions> defaults, const char* kind)
    : defaults_(std::move(defaults)), kind_(kind) {
  for (const OptimizerParamGroup& g : param_groups) add_param_group(g);
}

Optimizer::Optimizer(std::vector<Tensor> parameters, std::unique_ptr<OptimizerOptions> defaults,
                     const char* kind)
    : Optimizer(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(parameters))},
                std::move(defaults), kind) {}

void Optimizer::check_new_params(const std::vector<Tensor>& params) const {
  std::unordered_set<const TensorImpl*> seen;
  for (const OptimizerParamGroup& g : param_groups_)
    for (const Tensor& p : g.params()) seen.insert(p.unsafeGetTensorImpl());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    KILN_CHECK(p.defined(), "[{}] new parameter {} is undefined", kind(), i);
    KILN_CHECK(p.is_leaf(),
               "[{}] can't optimize a non-leaf tensor (new parameter {}, sizes {}); optimize "
               "the leaves it was computed from",
               kind(), i, shape_str(p.sizes()));
    KILN_CHECK(p.is_floating_point(),
               "[{}] can only optimize floating-point tensors: new parameter {} has dtype {}",
               kind(), i, dtype_name(p.dtype()));
    KILN_CHECK(seen.insert(p.unsafeGetTensorImpl()).second,
               "[{}] some parameters appear more than once or in more than one parameter group "
               "(new parameter {}, sizes {})",
               kind(), i, shape_str(p.sizes()));
  }
}

void Optimizer::add_param_group(const OptimizerParamGroup& param_group) {
  check_new_params(param_group.params());
  OptimizerParamGroup group(param_group.params());
  group.set_options(param_group.has_options() ? param_group.options().clone() : defaults_->clone());
  param_groups_.push_back(std::move(group));
}

void Optimizer::add_parameters(const std::vector<Tensor>& parameters) {
  if (param_groups_.empty()) {
    add_param_group(OptimizerParamGroup(parameters));
    return;
  }
  check_new_params(parameters);
  auto& first = param_groups_[0].params();
  first.insert(first.end(), parameters.begin(), parameters.end());
}

void Optimizer::zero_grad(bool set_to_none) {
  for (OptimizerParamGroup& g : param_groups_) {
    for (Tensor& p : g.params()) {
      Tensor& grad = p.mutable_grad();
      if (!grad.defined()) continue;
      if (set_to_none) {
        grad = Tensor();
      } else {
        NoGradGuard no_grad;
        grad = grad.detach();
        grad.zero_();
      }
    }
  }
}

const std::vector<Tensor>& Optimizer::parameters() const noexcept {
  static const std::vector<Tensor> empty;
  return param_groups_.empty() ? empty : param_groups_[0].params();
}

std::vector<Tensor>& Optimizer::parameters() noexcept {
  static std::vector<Tensor> empty;
  return param_groups_.empty() ? empty : param_groups_[0].params();
}

size_t Optimizer::size() const noexcept {
  size_t n = 0;
  for (const OptimizerParamGroup& g : param_groups_) n += g.params().size();
  return n;
}

Tensor Optimizer::run_closure(const LossClosure& closure) {
  if (!closure) return Tensor();
  AutoGradMode enable_grad(true);
  return closure();
}

// ---- schedulers ------------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {}

void LRScheduler::step() {
  set_optimizer_lrs(get_lrs());
  ++step_count_;
}

std::vector<double> LRScheduler::get_current_lrs() const {
  std::vector<double> lrs;
  for (const OptimizerParamGroup& g : optimizer_.param_groups())
    lrs.push_back(g.options().get_lr());
  return lrs;
}

void LRScheduler::set_optimizer_lrs(const std::vector<double>& learning_rates) {
  auto& groups = optimizer_.param_groups();
  KILN_CHECK(learning_rates.size() == groups.size(),
             "[LRScheduler] got {} learning rates for {} parameter groups", learning_rates.size(),
             groups.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(learning_rates[i]);
}

StepLR::StepLR(Optimizer& optimizer, unsigned step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  KILN_CHECK(step_size > 0, "[StepLR] got step_size=0, expected a positive number of steps");
}

std::vector<double> StepLR::get_lrs() {
  std::vector<double> lrs = get_current_lrs();
  if (step_count_ != 0 && step_count_ % step_size_ == 0)
    for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, unsigned T_max, double eta_min)
    : LRScheduler(optimizer), base_lrs_(get_current_lrs()), t_max_(T_max), eta_min_(eta_min) {
  KILN_CHECK(T_max > 0, "[CosineAnnealingLR] got T_max=0, expected a positive number of steps");
}

std::vector<double> CosineAnnealingLR::get_lrs() {
  const double t = static_cast<double>(step_count_ + 1);
  std::vector<double> lrs;
  for (double base : base_lrs_)
    lrs.push_back(eta_min_ + (base - eta_min_) * (1.0 + std::cos(M_PI * t / t_max_)) / 2.0);
  return lrs;
}

}  // namespace kiln::optim
