// Linear, Flatten, Identity, Dropout and Embedding modules with libtorch's options, parameter
// names ("weight", "bias") and default initialisation.
#pragma once

#include "kiln/nn/functional.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

/// y = x W^T + b; weight [out_features, in_features], bias [out_features]. Initialised like
/// libtorch: kaiming_uniform_(weight, sqrt(5)), bias uniform in +-1/sqrt(in_features).
class LinearImpl : public Cloneable<LinearImpl> {
 public:
  LinearImpl(int64_t in_features, int64_t out_features)
      : LinearImpl(LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const LinearOptions& options);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  /// input [*, in_features] -> [*, out_features].
  Tensor forward(const Tensor& input);

  LinearOptions options;
  Tensor weight;
  Tensor bias;
};
KILN_MODULE(Linear);

/// Flattens dims start_dim..end_dim (1..-1 by default).
class FlattenImpl : public Cloneable<FlattenImpl> {
 public:
  explicit FlattenImpl(const FlattenOptions& options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);
  FlattenOptions options;
};
KILN_MODULE(Flatten);

/// Returns its input.
class IdentityImpl : public Cloneable<IdentityImpl> {
 public:
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);
};
KILN_MODULE(Identity);

/// Zeroes elements with probability p in training mode (identity in eval mode).
class DropoutImpl : public Cloneable<DropoutImpl> {
 public:
  explicit DropoutImpl(double p) : DropoutImpl(DropoutOptions(p)) {}
  explicit DropoutImpl(const DropoutOptions& options = {});
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);
  DropoutOptions options;
};
KILN_MODULE(Dropout);

/// A lookup table: weight [num_embeddings, embedding_dim], initialised N(0, 1) with the
/// padding_idx row (if any) zero.
class EmbeddingImpl : public Cloneable<EmbeddingImpl> {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim)
      : EmbeddingImpl(EmbeddingOptions(num_embeddings, embedding_dim)) {}
  explicit EmbeddingImpl(const EmbeddingOptions& options);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  /// Integer indices of any shape -> indices.sizes() + [embedding_dim].
  Tensor forward(const Tensor& indices);
  EmbeddingOptions options;
  Tensor weight;
};
KILN_MODULE(Embedding);

}  // namespace kiln::nn
