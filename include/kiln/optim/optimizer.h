// kiln::optim::Optimizer, the base of every optimizer (libtorch's torch::optim::Optimizer):
// parameter groups with their own options, per-parameter state, zero_grad(), step(closure),
// and save/load of options and state (src/serialize).
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "kiln/tensor.h"

namespace kiln::serialize {
class OutputArchive;
class InputArchive;
}  // namespace kiln::serialize

namespace kiln::optim {

/// Per-parameter state of an optimizer (momentum buffers, moment estimates, step counts).
class OptimizerParamState {
 public:
  OptimizerParamState() = default;
  OptimizerParamState(const OptimizerParamState&) = default;
  OptimizerParamState& operator=(const OptimizerParamState&) = default;
  virtual ~OptimizerParamState() = default;
  virtual std::unique_ptr<OptimizerParamState> clone() const;
  /// Writes/reads the fields by name.
  virtual void serialize(serialize::OutputArchive& archive) const;
  virtual void serialize(serialize::InputArchive& archive);
};

/// CRTP helper giving a state type its clone().
template <typename Derived>
class OptimizerCloneableParamState : public OptimizerParamState {
 public:
  std::unique_ptr<OptimizerParamState> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
};

/// Hyper-parameters of an optimizer (for one parameter group).
class OptimizerOptions {
 public:
  OptimizerOptions() = default;
  OptimizerOptions(const OptimizerOptions&) = default;
  OptimizerOptions& operator=(const OptimizerOptions&) = default;
  virtual ~OptimizerOptions() = default;
  virtual std::unique_ptr<OptimizerOptions> clone() const;
  virtual void serialize(serialize::OutputArchive& archive) const;
  virtual void serialize(serialize::InputArchive& archive);
  /// The learning rate (schedulers read and write it through these).
  virtual double get_lr() const;
  virtual void set_lr(double lr);
};

/// CRTP helper giving an options type its clone().
template <typename Derived>
class OptimizerCloneableOptions : public OptimizerOptions {
 public:
  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
};

/// Parameters optimized with one set of options (the optimizer's defaults when none given).
class OptimizerParamGroup {
 public:
  OptimizerParamGroup(const OptimizerParamGroup& other);
  OptimizerParamGroup& operator=(const OptimizerParamGroup& other);
  OptimizerParamGroup(OptimizerParamGroup&&) noexcept = default;
  OptimizerParamGroup& operator=(OptimizerParamGroup&&) noexcept = default;
  OptimizerParamGroup(std::vector<Tensor> params);  // NOLINT: like libtorch
  OptimizerParamGroup(std::vector<Tensor> params, std::unique_ptr<OptimizerOptions> options);

  bool has_options() const { return options_ != nullptr; }
  OptimizerOptions& options();
  const OptimizerOptions& options() const;
  void set_options(std::unique_ptr<OptimizerOptions> options) { options_ = std::move(options); }
  std::vector<Tensor>& params() { return params_; }
  const std::vector<Tensor>& params() const { return params_; }

 private:
  std::vector<Tensor> params_;
  std::unique_ptr<OptimizerOptions> options_;
};

/// Base of SGD, Adam, AdamW and RMSprop. Subclasses implement step().
class Optimizer {
 public:
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  Optimizer(Optimizer&&) = default;
  /// kind names the optimizer in error messages ("SGD").
  Optimizer(std::vector<OptimizerParamGroup> param_groups,
            std::unique_ptr<OptimizerOptions> defaults, const char* kind = "Optimizer");
  Optimizer(std::vector<Tensor> parameters, std::unique_ptr<OptimizerOptions> defaults,
            const char* kind = "Optimizer");
  virtual ~Optimizer() = default;

  /// Returns the loss, re-evaluated with gradients (for optimizers that need it).
  using LossClosure = std::function<Tensor()>;
  /// One update of every parameter that has a gradient; returns closure()'s loss if given.
  virtual Tensor step(LossClosure closure = nullptr) = 0;

  /// Adds a group; without options it takes a copy of the defaults. A parameter may belong to
  /// one group only.
  virtual void add_param_group(const OptimizerParamGroup& param_group);
  /// Adds parameters to the first group.
  void add_parameters(const std::vector<Tensor>& parameters);
  /// Clears the gradients of every parameter (set_to_none: undefined, else zero-filled).
  void zero_grad(bool set_to_none = true);

  /// The parameters of the first group.
  const std::vector<Tensor>& parameters() const noexcept;
  std::vector<Tensor>& parameters() noexcept;
  /// The number of parameters over all groups.
  size_t size() const noexcept;
  OptimizerOptions& defaults() noexcept { return *defaults_; }
  const OptimizerOptions& defaults() const noexcept { return *defaults_; }
  std::vector<OptimizerParamGroup>& param_groups() noexcept { return param_groups_; }
  const std::vector<OptimizerParamGroup>& param_groups() const noexcept { return param_groups_; }
  /// Per-parameter state, keyed by the parameter's TensorImpl.
  std::unordered_map<const TensorImpl*, std::unique_ptr<OptimizerParamState>>& state() noexcept {
    return state_;
  }
  const std::unordered_map<const TensorImpl*, std::unique_ptr<OptimizerParamState>>& state()
      const noexcept {
    return state_;
  }

  /// Writes every group's options and every parameter's state, by position (src/serialize).
  virtual void save(serialize::OutputArchive& archive) const;
  /// Reads them back; the groups and parameter shapes must match this optimizer's.
  virtual void load(serialize::InputArchive& archive);

 protected:
  /// A fresh state of this optimizer's type (used by load).
  virtual std::unique_ptr<OptimizerParamState> make_state() const = 0;
  /// A fresh options object of this optimizer's type (used by load).
  virtual std::unique_ptr<OptimizerOptions> make_options() const { return defaults_->clone(); }
  /// "SGD", "Adam", ... for error messages.
  const char* kind() const { return kind_; }
  /// Runs closure with gradients enabled (undefined tensor when closure is null).
  static Tensor run_closure(const LossClosure& closure);
  /// Throws unless params are defined floating-point leaves not already optimized.
  void check_new_params(const std::vector<Tensor>& params) const;

  std::vector<OptimizerParamGroup> param_groups_;
  std::unordered_map<const TensorImpl*, std::unique_ptr<OptimizerParamState>> state_;
  std::unique_ptr<OptimizerOptions> defaults_;
  const char* kind_;
};

}  // namespace kiln::optim
