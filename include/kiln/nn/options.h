// Options structs of the nn modules and of their functional (F::) forms, with libtorch's names,
// fields and defaults: nn::LinearOptions(3, 4).bias(false), F::CrossEntropyFuncOptions()
// .label_smoothing(0.1), nn::Conv2dOptions(1, 8, 3).padding(1), ...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kiln/nn/arg.h"
#include "kiln/tensor.h"

namespace kiln::nn {

/// kNone, kMean or kSum: how a loss reduces over elements.
using reduction_t = std::variant<enumtype::kNone, enumtype::kMean, enumtype::kSum>;

// ---- activations ---------------------------------------------------------------------------

/// ReLU(inplace=false).
struct ReLUOptions {
  ReLUOptions(bool inplace = false) : inplace_(inplace) {}  // NOLINT
  KILN_ARG(bool, inplace);
};

/// GELU: approximate is "none" (erf) or "tanh".
struct GELUOptions {
  KILN_ARG(std::string, approximate) = "none";
};

/// Softmax/LogSoftmax over dim.
struct SoftmaxOptions {
  SoftmaxOptions(int64_t dim) : dim_(dim) {}  // NOLINT
  KILN_ARG(int64_t, dim);
};
using LogSoftmaxOptions = SoftmaxOptions;

// ---- linear, flatten -----------------------------------------------------------------------

/// y = x W^T + b with W [out_features, in_features].
struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  KILN_ARG(int64_t, in_features);
  KILN_ARG(int64_t, out_features);
  KILN_ARG(bool, bias) = true;
};

/// Flattens dims start_dim..end_dim (the batch dim stays by default).
struct FlattenOptions {
  KILN_ARG(int64_t, start_dim) = 1;
  KILN_ARG(int64_t, end_dim) = -1;
};

// ---- convolution and pooling ---------------------------------------------------------------

/// 2-D convolution: weight [out_channels, in_channels / groups, kH, kW].
struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  KILN_ARG(int64_t, in_channels);
  KILN_ARG(int64_t, out_channels);
  KILN_ARG(ExpandingArray<2>, kernel_size);
  KILN_ARG(ExpandingArray<2>, stride) = 1;
  KILN_ARG(ExpandingArray<2>, padding) = 0;
  KILN_ARG(ExpandingArray<2>, dilation) = 1;
  KILN_ARG(int64_t, groups) = 1;
  KILN_ARG(bool, bias) = true;
};

/// Max pooling; stride defaults to kernel_size.
struct MaxPool2dOptions {
  MaxPool2dOptions(ExpandingArray<2> kernel_size)  // NOLINT
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  KILN_ARG(ExpandingArray<2>, kernel_size);
  KILN_ARG(ExpandingArray<2>, stride);
  KILN_ARG(ExpandingArray<2>, padding) = 0;
  KILN_ARG(ExpandingArray<2>, dilation) = 1;
  KILN_ARG(bool, ceil_mode) = false;
};

/// Average pooling; stride defaults to kernel_size.
struct AvgPool2dOptions {
  AvgPool2dOptions(ExpandingArray<2> kernel_size)  // NOLINT
      : kernel_size_(kernel_size), stride_(kernel_size) {}
  KILN_ARG(ExpandingArray<2>, kernel_size);
  KILN_ARG(ExpandingArray<2>, stride);
  KILN_ARG(ExpandingArray<2>, padding) = 0;
  KILN_ARG(bool, ceil_mode) = false;
  KILN_ARG(bool, count_include_pad) = true;
  KILN_ARG(std::optional<int64_t>, divisor_override) = std::nullopt;
};

// ---- normalization, dropout, embedding -----------------------------------------------------

/// BatchNorm1d/2d. momentum nullopt means a cumulative moving average.
struct BatchNormOptions {
  BatchNormOptions(int64_t num_features) : num_features_(num_features) {}  // NOLINT
  KILN_ARG(int64_t, num_features);
  KILN_ARG(double, eps) = 1e-5;
  KILN_ARG(std::optional<double>, momentum) = 0.1;
  KILN_ARG(bool, affine) = true;
  KILN_ARG(bool, track_running_stats) = true;
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;

/// LayerNorm over the trailing normalized_shape dims.
struct LayerNormOptions {
  LayerNormOptions(std::vector<int64_t> normalized_shape)  // NOLINT
      : normalized_shape_(std::move(normalized_shape)) {}
  KILN_ARG(std::vector<int64_t>, normalized_shape);
  KILN_ARG(double, eps) = 1e-5;
  KILN_ARG(bool, elementwise_affine) = true;
};

/// Dropout with drop probability p.
struct DropoutOptions {
  DropoutOptions(double p = 0.5) : p_(p) {}  // NOLINT
  KILN_ARG(double, p);
  KILN_ARG(bool, inplace) = false;
};

/// A lookup table of num_embeddings vectors of size embedding_dim; the row padding_idx gets no
/// gradient.
struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  KILN_ARG(int64_t, num_embeddings);
  KILN_ARG(int64_t, embedding_dim);
  KILN_ARG(std::optional<int64_t>, padding_idx) = std::nullopt;
};

// ---- recurrent, attention ------------------------------------------------------------------

/// Options shared by LSTM and GRU.
struct RNNOptionsBase {
  RNNOptionsBase(int64_t input_size, int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  KILN_ARG(int64_t, input_size);
  KILN_ARG(int64_t, hidden_size);
  KILN_ARG(int64_t, num_layers) = 1;
  KILN_ARG(bool, bias) = true;
  /// Input and output are [batch, seq, feature] instead of [seq, batch, feature].
  KILN_ARG(bool, batch_first) = false;
  /// Dropout on the outputs of every layer but the last (in training).
  KILN_ARG(double, dropout) = 0.0;
  KILN_ARG(bool, bidirectional) = false;
};
struct LSTMOptions : RNNOptionsBase {
  using RNNOptionsBase::RNNOptionsBase;
  /// The setters return the base; this converts back.
  LSTMOptions(const RNNOptionsBase& base) : RNNOptionsBase(base) {}  // NOLINT
};
struct GRUOptions : RNNOptionsBase {
  using RNNOptionsBase::RNNOptionsBase;
  /// The setters return the base; this converts back.
  GRUOptions(const RNNOptionsBase& base) : RNNOptionsBase(base) {}  // NOLINT
};

/// Options shared by LSTMCell and GRUCell.
struct RNNCellOptionsBase {
  RNNCellOptionsBase(int64_t input_size, int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  KILN_ARG(int64_t, input_size);
  KILN_ARG(int64_t, hidden_size);
  KILN_ARG(bool, bias) = true;
};
struct LSTMCellOptions : RNNCellOptionsBase {
  using RNNCellOptionsBase::RNNCellOptionsBase;
  /// The setters return the base; this converts back.
  LSTMCellOptions(const RNNCellOptionsBase& base) : RNNCellOptionsBase(base) {}  // NOLINT
};
struct GRUCellOptions : RNNCellOptionsBase {
  using RNNCellOptionsBase::RNNCellOptionsBase;
  /// The setters return the base; this converts back.
  GRUCellOptions(const RNNCellOptionsBase& base) : RNNCellOptionsBase(base) {}  // NOLINT
};

/// Multi-head attention over [seq, batch, embed_dim] inputs; kdim/vdim are the key/value
/// feature sizes (embed_dim by default).
struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads), kdim_(embed_dim), vdim_(embed_dim) {}
  KILN_ARG(int64_t, embed_dim);
  KILN_ARG(int64_t, num_heads);
  KILN_ARG(double, dropout) = 0.0;
  KILN_ARG(bool, bias) = true;
  KILN_ARG(bool, add_bias_kv) = false;
  KILN_ARG(bool, add_zero_attn) = false;
  KILN_ARG(int64_t, kdim);
  KILN_ARG(int64_t, vdim);
};

// ---- losses --------------------------------------------------------------------------------

struct MSELossOptions {
  using reduction_t = nn::reduction_t;
  MSELossOptions(reduction_t reduction = kMean) : reduction_(reduction) {}  // NOLINT
  KILN_ARG(reduction_t, reduction);
};
struct L1LossOptions {
  using reduction_t = nn::reduction_t;
  L1LossOptions(reduction_t reduction = kMean) : reduction_(reduction) {}  // NOLINT
  KILN_ARG(reduction_t, reduction);
};
/// Quadratic below beta, linear above (beta 0 is the L1 loss).
struct SmoothL1LossOptions {
  using reduction_t = nn::reduction_t;
  SmoothL1LossOptions(reduction_t reduction = kMean) : reduction_(reduction) {}  // NOLINT
  KILN_ARG(reduction_t, reduction);
  KILN_ARG(double, beta) = 1.0;
};
/// Negative log likelihood of class indices; weight [C] rescales classes; targets equal to
/// ignore_index count for nothing.
struct NLLLossOptions {
  using reduction_t = nn::reduction_t;
  NLLLossOptions(reduction_t reduction = kMean) : reduction_(reduction) {}  // NOLINT
  KILN_ARG(Tensor, weight) = {};
  KILN_ARG(int64_t, ignore_index) = -100;
  KILN_ARG(reduction_t, reduction);
};
/// log_softmax + nll_loss; targets are class indices or class probabilities.
struct CrossEntropyLossOptions {
  using reduction_t = nn::reduction_t;
  CrossEntropyLossOptions(reduction_t reduction = kMean) : reduction_(reduction) {}  // NOLINT
  KILN_ARG(Tensor, weight) = {};
  KILN_ARG(int64_t, ignore_index) = -100;
  KILN_ARG(reduction_t, reduction);
  KILN_ARG(double, label_smoothing) = 0.0;
};
/// Binary cross entropy of probabilities; weight broadcasts over the elements.
struct BCELossOptions {
  using reduction_t = nn::reduction_t;
  BCELossOptions(reduction_t reduction = kMean) : reduction_(reduction) {}  // NOLINT
  KILN_ARG(Tensor, weight) = {};
  KILN_ARG(reduction_t, reduction);
};
/// Binary cross entropy of logits (sigmoid folded in, numerically stable); pos_weight weighs
/// the positive term per class.
struct BCEWithLogitsLossOptions {
  using reduction_t = nn::reduction_t;
  BCEWithLogitsLossOptions(reduction_t reduction = kMean) : reduction_(reduction) {}  // NOLINT
  KILN_ARG(Tensor, weight) = {};
  KILN_ARG(reduction_t, reduction);
  KILN_ARG(Tensor, pos_weight) = {};
};

}  // namespace kiln::nn

namespace kiln::nn::functional {

using ReLUFuncOptions = ReLUOptions;
using GELUFuncOptions = GELUOptions;

/// F::softmax(x, F::SoftmaxFuncOptions(1).dtype(kFloat64)).
struct SoftmaxFuncOptions {
  SoftmaxFuncOptions(int64_t dim) : dim_(dim) {}  // NOLINT
  KILN_ARG(int64_t, dim);
  KILN_ARG(std::optional<ScalarType>, dtype) = std::nullopt;
};
using LogSoftmaxFuncOptions = SoftmaxFuncOptions;

/// F::conv2d(x, w, F::Conv2dFuncOptions().bias(b).stride(2).padding(1)).
struct Conv2dFuncOptions {
  KILN_ARG(Tensor, bias) = {};
  KILN_ARG(ExpandingArray<2>, stride) = 1;
  KILN_ARG(ExpandingArray<2>, padding) = 0;
  KILN_ARG(ExpandingArray<2>, dilation) = 1;
  KILN_ARG(int64_t, groups) = 1;
};

using MaxPool2dFuncOptions = MaxPool2dOptions;
using AvgPool2dFuncOptions = AvgPool2dOptions;

/// F::batch_norm(x, running_mean, running_var, options): training uses batch statistics and
/// updates the running ones (when defined) by momentum.
struct BatchNormFuncOptions {
  KILN_ARG(Tensor, weight) = {};
  KILN_ARG(Tensor, bias) = {};
  KILN_ARG(bool, training) = false;
  KILN_ARG(std::optional<double>, momentum) = 0.1;
  KILN_ARG(double, eps) = 1e-5;
};

/// F::layer_norm(x, F::LayerNormFuncOptions({4}).weight(w).bias(b)).
struct LayerNormFuncOptions {
  LayerNormFuncOptions(std::vector<int64_t> normalized_shape)  // NOLINT
      : normalized_shape_(std::move(normalized_shape)) {}
  KILN_ARG(std::vector<int64_t>, normalized_shape);
  KILN_ARG(Tensor, weight) = {};
  KILN_ARG(Tensor, bias) = {};
  KILN_ARG(double, eps) = 1e-5;
};

/// F::dropout(x, F::DropoutFuncOptions().p(0.2).training(is_training())).
struct DropoutFuncOptions {
  KILN_ARG(double, p) = 0.5;
  KILN_ARG(bool, training) = true;
  KILN_ARG(bool, inplace) = false;
};

/// F::embedding(indices, weight, F::EmbeddingFuncOptions().padding_idx(0)).
struct EmbeddingFuncOptions {
  KILN_ARG(std::optional<int64_t>, padding_idx) = std::nullopt;
};

/// F::unfold (im2col) and F::fold (col2im).
struct UnfoldFuncOptions {
  UnfoldFuncOptions(ExpandingArray<2> kernel_size) : kernel_size_(kernel_size) {}  // NOLINT
  KILN_ARG(ExpandingArray<2>, kernel_size);
  KILN_ARG(ExpandingArray<2>, dilation) = 1;
  KILN_ARG(ExpandingArray<2>, padding) = 0;
  KILN_ARG(ExpandingArray<2>, stride) = 1;
};
struct FoldFuncOptions {
  FoldFuncOptions(ExpandingArray<2> output_size, ExpandingArray<2> kernel_size)
      : output_size_(output_size), kernel_size_(kernel_size) {}
  KILN_ARG(ExpandingArray<2>, output_size);
  KILN_ARG(ExpandingArray<2>, kernel_size);
  KILN_ARG(ExpandingArray<2>, dilation) = 1;
  KILN_ARG(ExpandingArray<2>, padding) = 0;
  KILN_ARG(ExpandingArray<2>, stride) = 1;
};

using MSELossFuncOptions = MSELossOptions;
using L1LossFuncOptions = L1LossOptions;
using SmoothL1LossFuncOptions = SmoothL1LossOptions;
using NLLLossFuncOptions = NLLLossOptions;
using CrossEntropyFuncOptions = CrossEntropyLossOptions;
using BinaryCrossEntropyFuncOptions = BCELossOptions;
using BinaryCrossEntropyWithLogitsFuncOptions = BCEWithLogitsLossOptions;

}  // namespace kiln::nn::functional
