// BatchNorm1d/2d (running statistics as buffers, num_batches_tracked, momentum or cumulative
// average) and LayerNorm, over F::batch_norm and F::layer_norm.
#pragma once

#include "kiln/nn/functional.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

/// Shared by BatchNorm1d and BatchNorm2d: weight/bias [C] (affine), buffers running_mean,
/// running_var [C] and num_batches_tracked (int64 scalar) when track_running_stats.
template <typename Derived>
class BatchNormImplBase : public Cloneable<Derived> {
 public:
  explicit BatchNormImplBase(const BatchNormOptions& options);
  void reset() override;
  /// Running mean 0, running variance 1, no batches seen.
  void reset_running_stats();
  /// reset_running_stats(), weight 1, bias 0.
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);

  BatchNormOptions options;
  Tensor weight;
  Tensor bias;
  Tensor running_mean;
  Tensor running_var;
  Tensor num_batches_tracked;

 protected:
  /// Throws unless input has the dims this variant normalises.
  virtual void check_input_dim(const Tensor& input) const = 0;
};

/// Batch normalisation of [N, C] or [N, C, L] inputs.
class BatchNorm1dImpl : public BatchNormImplBase<BatchNorm1dImpl> {
 public:
  explicit BatchNorm1dImpl(int64_t num_features)
      : BatchNorm1dImpl(BatchNorm1dOptions(num_features)) {}
  explicit BatchNorm1dImpl(const BatchNorm1dOptions& options) : BatchNormImplBase(options) {}

 protected:
  void check_input_dim(const Tensor& input) const override;
};
KILN_MODULE(BatchNorm1d);

/// Batch normalisation of [N, C, H, W] inputs.
class BatchNorm2dImpl : public BatchNormImplBase<BatchNorm2dImpl> {
 public:
  explicit BatchNorm2dImpl(int64_t num_features)
      : BatchNorm2dImpl(BatchNorm2dOptions(num_features)) {}
  explicit BatchNorm2dImpl(const BatchNorm2dOptions& options) : BatchNormImplBase(options) {}

 protected:
  void check_input_dim(const Tensor& input) const override;
};
KILN_MODULE(BatchNorm2d);

/// Layer normalisation over the trailing normalized_shape dims; weight 1 and bias 0 of that
/// shape when elementwise_affine.
class LayerNormImpl : public Cloneable<LayerNormImpl> {
 public:
  explicit LayerNormImpl(std::vector<int64_t> normalized_shape)
      : LayerNormImpl(LayerNormOptions(std::move(normalized_shape))) {}
  explicit LayerNormImpl(LayerNormOptions options);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);
  LayerNormOptions options;
  Tensor weight;
  Tensor bias;
};
KILN_MODULE(LayerNorm);

}  // namespace kiln::nn
