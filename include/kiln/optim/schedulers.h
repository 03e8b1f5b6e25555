// Learning-rate schedulers: the LRScheduler base (libtorch's), StepLR with libtorch's counting,
// and CosineAnnealingLR (PyTorch's closed form; libtorch has none). Call step() once per epoch.
#pragma once

#include <vector>

#include "kiln/optim/optimizer.h"

namespace kiln::optim {

/// Sets the learning rate of every parameter group from get_lrs() on each step().
class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler() = default;
  /// Computes the new learning rates, sets them, then counts the step.
  void step();
  /// The current learning rate of each group.
  std::vector<double> get_last_lr() const { return get_current_lrs(); }

 protected:
  /// The learning rates for the step being taken (step_count_ steps were taken before).
  virtual std::vector<double> get_lrs() = 0;
  std::vector<double> get_current_lrs() const;
  unsigned step_count_ = 0;

 private:
  void set_optimizer_lrs(const std::vector<double>& learning_rates);
  Optimizer& optimizer_;
};

/// Multiplies the learning rates by gamma every step_size steps. Like libtorch's StepLR, the
/// k-th call of step() (k = 1, 2, ...) leaves lr = initial * gamma^floor((k - 1) / step_size)
/// (PyTorch's Python StepLR decays one call earlier).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, unsigned step_size, double gamma = 0.1);

 private:
  std::vector<double> get_lrs() override;
  unsigned step_size_;
  double gamma_;
};

/// Cosine annealing from each group's initial learning rate to eta_min over T_max steps: the
/// k-th call of step() leaves lr = eta_min + (initial - eta_min) (1 + cos(pi k / T_max)) / 2,
/// PyTorch's closed form (it keeps following the cosine past T_max).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, unsigned T_max, double eta_min = 0.0);

 private:
  std::vector<double> get_lrs() override;
  std::vector<double> base_lrs_;
  unsigned t_max_;
  double eta_min_;
};

}  // namespace kiln::optim
