// Activation modules (libtorch's ReLU, GELU, SiLU, Tanh, Sigmoid, Softmax, LogSoftmax): stateless
// wrappers over the F:: forms, so they can sit in a Sequential.
#pragma once

#include "kiln/nn/functional.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

/// max(x, 0).
class ReLUImpl : public Cloneable<ReLUImpl> {
 public:
  explicit ReLUImpl(const ReLUOptions& options = {});
  Tensor forward(const Tensor& input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  ReLUOptions options;
};
KILN_MODULE(ReLU);

/// x * Phi(x) (options.approximate: "none" or "tanh").
class GELUImpl : public Cloneable<GELUImpl> {
 public:
  explicit GELUImpl(GELUOptions options = {});
  Tensor forward(const Tensor& input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  GELUOptions options;
};
KILN_MODULE(GELU);

/// x * sigmoid(x).
class SiLUImpl : public Cloneable<SiLUImpl> {
 public:
  Tensor forward(const Tensor& input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
};
KILN_MODULE(SiLU);

/// tanh(x).
class TanhImpl : public Cloneable<TanhImpl> {
 public:
  Tensor forward(const Tensor& input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
};
KILN_MODULE(Tanh);

/// 1 / (1 + exp(-x)).
class SigmoidImpl : public Cloneable<SigmoidImpl> {
 public:
  Tensor forward(const Tensor& input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
};
KILN_MODULE(Sigmoid);

/// softmax over options.dim.
class SoftmaxImpl : public Cloneable<SoftmaxImpl> {
 public:
  explicit SoftmaxImpl(int64_t dim) : SoftmaxImpl(SoftmaxOptions(dim)) {}
  explicit SoftmaxImpl(const SoftmaxOptions& options);
  Tensor forward(const Tensor& input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  SoftmaxOptions options;
};
KILN_MODULE(Softmax);

/// log_softmax over options.dim.
class LogSoftmaxImpl : public Cloneable<LogSoftmaxImpl> {
 public:
  explicit LogSoftmaxImpl(int64_t dim) : LogSoftmaxImpl(LogSoftmaxOptions(dim)) {}
  explicit LogSoftmaxImpl(const LogSoftmaxOptions& options);
  Tensor forward(const Tensor& input);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  LogSoftmaxOptions options;
};
KILN_MODULE(LogSoftmax);

}  // namespace kiln::nn
