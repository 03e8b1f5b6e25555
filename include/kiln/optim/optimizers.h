// The optimizers SGD (momentum, dampening, nesterov, weight decay), Adam, AdamW and RMSprop with
// libtorch's options (optim::SGDOptions(0.1).momentum(0.9)), state and update rules.
#pragma once

#include <tuple>

#include "kiln/nn/arg.h"
#include "kiln/optim/optimizer.h"

namespace kiln::optim {

// ---- SGD -------------------------------------------------------------------------------------

/// lr, momentum, dampening, weight_decay, nesterov.
struct SGDOptions : public OptimizerCloneableOptions<SGDOptions> {
  SGDOptions(double lr);  // NOLINT: like libtorch
  KILN_ARG(double, lr);
  KILN_ARG(double, momentum) = 0;
  KILN_ARG(double, dampening) = 0;
  KILN_ARG(double, weight_decay) = 0;
  KILN_ARG(bool, nesterov) = false;

 public:
  void serialize(serialize::OutputArchive& archive) const override;
  void serialize(serialize::InputArchive& archive) override;
  double get_lr() const override { return lr(); }
  void set_lr(double lr) override { this->lr(lr); }
};

struct SGDParamState : public OptimizerCloneableParamState<SGDParamState> {
  KILN_ARG(Tensor, momentum_buffer);

 public:
  void serialize(serialize::OutputArchive& archive) const override;
  void serialize(serialize::InputArchive& archive) override;
};

/// p -= lr * d with d = g + weight_decay * p, through a momentum buffer b = momentum * b +
/// (1 - dampening) * d when momentum > 0 (d = b, or d + momentum * b with nesterov).
class SGD : public Optimizer {
 public:
  SGD(std::vector<OptimizerParamGroup> param_groups, SGDOptions defaults);
  SGD(std::vector<Tensor> params, SGDOptions defaults);
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  std::unique_ptr<OptimizerParamState> make_state() const override {
    return std::make_unique<SGDParamState>();
  }
};

// ---- Adam, AdamW -----------------------------------------------------------------------------

/// lr, betas, eps, weight_decay, amsgrad (weight_decay 0 for Adam, 1e-2 for AdamW).
struct AdamOptions : public OptimizerCloneableOptions<AdamOptions> {
  AdamOptions(double lr = 1e-3);  // NOLINT
  KILN_ARG(double, lr);
  using betas_t = std::tuple<double, double>;
  KILN_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  KILN_ARG(double, eps) = 1e-8;
  KILN_ARG(double, weight_decay) = 0;
  KILN_ARG(bool, amsgrad) = false;

 public:
  void serialize(serialize::OutputArchive& archive) const override;
  void serialize(serialize::InputArchive& archive) override;
  double get_lr() const override { return lr(); }
  void set_lr(double lr) override { this->lr(lr); }
};

struct AdamWOptions : public OptimizerCloneableOptions<AdamWOptions> {
  AdamWOptions(double lr = 1e-3);  // NOLINT
  KILN_ARG(double, lr);
  using betas_t = std::tuple<double, double>;
  KILN_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  KILN_ARG(double, eps) = 1e-8;
  KILN_ARG(double, weight_decay) = 1e-2;
  KILN_ARG(bool, amsgrad) = false;

 public:
  void serialize(serialize::OutputArchive& archive) const override;
  void serialize(serialize::InputArchive& archive) override;
  double get_lr() const override { return lr(); }
  void set_lr(double lr) override { this->lr(lr); }
};

/// step, exp_avg (first moment), exp_avg_sq (second moment), max_exp_avg_sq (amsgrad).
struct AdamParamState : public OptimizerCloneableParamState<AdamParamState> {
  KILN_ARG(int64_t, step) = 0;
  KILN_ARG(Tensor, exp_avg);
  KILN_ARG(Tensor, exp_avg_sq);
  KILN_ARG(Tensor, max_exp_avg_sq) = {};

 public:
  void serialize(serialize::OutputArchive& archive) const override;
  void serialize(serialize::InputArchive& archive) override;
};
using AdamWParamState = AdamParamState;

/// Adam: bias-corrected moment estimates; weight decay added to the gradient (L2).
class Adam : public Optimizer {
 public:
  Adam(std::vector<OptimizerParamGroup> param_groups, AdamOptions defaults = {});
  Adam(std::vector<Tensor> params, AdamOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  std::unique_ptr<OptimizerParamState> make_state() const override {
    return std::make_unique<AdamParamState>();
  }
};

/// AdamW: Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the update).
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<OptimizerParamGroup> param_groups, AdamWOptions defaults = {});
  AdamW(std::vector<Tensor> params, AdamWOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  std::unique_ptr<OptimizerParamState> make_state() const override {
    return std::make_unique<AdamParamState>();
  }
};

// ---- RMSprop ---------------------------------------------------------------------------------

/// lr, alpha (smoothing), eps, weight_decay, momentum, centered.
struct RMSpropOptions : public OptimizerCloneableOptions<RMSpropOptions> {
  RMSpropOptions(double lr = 1e-2);  // NOLINT
  KILN_ARG(double, lr);
  KILN_ARG(double, alpha) = 0.99;
  KILN_ARG(double, eps) = 1e-8;
  KILN_ARG(double, weight_decay) = 0;
  KILN_ARG(double, momentum) = 0;
  KILN_ARG(bool, centered) = false;

 public:
  void serialize(serialize::OutputArchive& archive) const override;
  void serialize(serialize::InputArchive& archive) override;
  double get_lr() const override { return lr(); }
  void set_lr(double lr) override { this->lr(lr); }
};

/// step, square_avg, momentum_buffer (momentum > 0), grad_avg (centered).
struct RMSpropParamState : public OptimizerCloneableParamState<RMSpropParamState> {
  KILN_ARG(int64_t, step) = 0;
  KILN_ARG(Tensor, square_avg);
  KILN_ARG(Tensor, momentum_buffer) = {};
  KILN_ARG(Tensor, grad_avg) = {};

 public:
  void serialize(serialize::OutputArchive& archive) const override;
  void serialize(serialize::InputArchive& archive) override;
};

/// RMSprop: divides the gradient by a running root mean square (centered: minus the squared
/// running mean), optionally through a momentum buffer.
class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<OptimizerParamGroup> param_groups, RMSpropOptions defaults = {});
  RMSprop(std::vector<Tensor> params, RMSpropOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  std::unique_ptr<OptimizerParamState> make_state() const override {
    return std::make_unique<RMSpropParamState>();
  }
};

}  // namespace kiln::optim
