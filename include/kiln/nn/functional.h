// kiln::nn::functional (F::): libtorch's functional spellings of the layers and losses, each a
// composite of tensor-core ops (so autograd, and later the tracer, see only primitives).
// Modules (kiln/nn/modules/*.h) call these; options structs are in kiln/nn/options.h.
#pragma once

#include "kiln/functions.h"
#include "kiln/nn/options.h"

namespace kiln::nn::functional {

// ---- activations ---------------------------------------------------------------------------
/// max(x, 0); with inplace, overwrites x and returns it.
Tensor relu(const Tensor& input, const ReLUFuncOptions& options = {});
/// x * Phi(x); approximate "tanh" uses the tanh formula.
Tensor gelu(const Tensor& input, const GELUFuncOptions& options = {});
inline Tensor silu(const Tensor& x) { return kiln::silu(x); }
inline Tensor sigmoid(const Tensor& x) { return kiln::sigmoid(x); }
inline Tensor tanh(const Tensor& x) { return kiln::tanh(x); }
inline Tensor softmax(const Tensor& x, int64_t dim) { return kiln::softmax(x, dim); }
inline Tensor softmax(const Tensor& x, const SoftmaxFuncOptions& options) {
  return kiln::softmax(x, options.dim(), options.dtype());
}
inline Tensor log_softmax(const Tensor& x, int64_t dim) { return kiln::log_softmax(x, dim); }
inline Tensor log_softmax(const Tensor& x, const LogSoftmaxFuncOptions& options) {
  return kiln::log_softmax(x, options.dim(), options.dtype());
}

// ---- linear, convolution, pooling ----------------------------------------------------------
inline Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {}) {
  return kiln::linear(x, w, b);
}
/// input [N, C, H, W], weight [O, C / groups, kH, kW].
Tensor conv2d(const Tensor& input, const Tensor& weight, const Conv2dFuncOptions& options = {});
/// Positional form: conv2d(x, w, bias, stride, padding, dilation, groups).
inline Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                     IntArrayRef stride = 1, IntArrayRef padding = 0, IntArrayRef dilation = 1,
                     int64_t groups = 1) {
  return kiln::conv2d(input, weight, bias, stride, padding, dilation, groups);
}
Tensor max_pool2d(const Tensor& input, const MaxPool2dFuncOptions& options);
inline Tensor max_pool2d(const Tensor& x, IntArrayRef kernel_size, IntArrayRef stride = {},
                         IntArrayRef padding = 0) {
  return kiln::max_pool2d(x, kernel_size, stride, padding);
}
Tensor avg_pool2d(const Tensor& input, const AvgPool2dFuncOptions& options);
inline Tensor avg_pool2d(const Tensor& x, IntArrayRef kernel_size, IntArrayRef stride = {},
                         IntArrayRef padding = 0) {
  return kiln::avg_pool2d(x, kernel_size, stride, padding);
}
/// im2col like torch::nn::functional::unfold: [N, C, H, W] -> [N, C*kH*kW, L].
inline Tensor unfold(const Tensor& input, IntArrayRef kernel_size, IntArrayRef dilation = 1,
                     IntArrayRef padding = 0, IntArrayRef stride = 1) {
  return im2col(input, kernel_size, dilation, padding, stride);
}
inline Tensor unfold(const Tensor& input, const UnfoldFuncOptions& o) {
  return im2col(input, o.kernel_size(), o.dilation(), o.padding(), o.stride());
}
/// col2im like torch::nn::functional::fold: [N, C*kH*kW, L] -> [N, C, H, W].
inline Tensor fold(const Tensor& input, IntArrayRef output_size, IntArrayRef kernel_size,
                   IntArrayRef dilation = 1, IntArrayRef padding = 0, IntArrayRef stride = 1) {
  return col2im(input, output_size, kernel_size, dilation, padding, stride);
}
inline Tensor fold(const Tensor& input, const FoldFuncOptions& o) {
  return col2im(input, o.output_size(), o.kernel_size(), o.dilation(), o.padding(), o.stride());
}

// ---- dropout, normalization, embedding -----------------------------------------------------
/// Zeroes elements with probability p and scales the rest by 1 / (1 - p) when training.
Tensor dropout(const Tensor& input, const DropoutFuncOptions& options = {});
/// Normalizes over every dim but dim 1 (channels): batch statistics when training (updating
/// running_mean/running_var if defined), the running ones otherwise.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const BatchNormFuncOptions& options = {});
/// Normalizes over the trailing normalized_shape dims.
Tensor layer_norm(const Tensor& input, const LayerNormFuncOptions& options);
/// Rows of weight picked by integer indices; the padding_idx row gets no gradient.
Tensor embedding(const Tensor& input, const Tensor& weight,
                 const EmbeddingFuncOptions& options = {});
inline Tensor one_hot(const Tensor& x, int64_t num_classes = -1) {
  return kiln::one_hot(x, num_classes);
}

// ---- losses --------------------------------------------------------------------------------
/// (input - target)^2, reduced. input and target must have the same sizes.
Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossFuncOptions& options = {});
/// |input - target|, reduced.
Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options = {});
/// 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target), reduced.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target,
                      const SmoothL1LossFuncOptions& options = {});
/// -input[n, target[n]] (log-probabilities input [N, C] or [N, C, d...], or [C]), weighted;
/// the mean divides by the summed weights of the counted targets.
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossFuncOptions& options = {});
/// nll_loss(log_softmax(input, 1), target) for class-index targets (int64/int32, with label
/// smoothing); for floating targets of input's sizes, class probabilities.
Tensor cross_entropy(const Tensor& input, const Tensor& target,
                     const CrossEntropyFuncOptions& options = {});
/// -(t log(x) + (1 - t) log(1 - x)) with the logs clamped at -100, like libtorch.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target,
                            const BinaryCrossEntropyFuncOptions& options = {});
/// binary_cross_entropy(sigmoid(input), target), computed stably from the logits.
Tensor binary_cross_entropy_with_logits(
    const Tensor& input, const Tensor& target,
    const BinaryCrossEntropyWithLogitsFuncOptions& options = {});

}  // namespace kiln::nn::functional

namespace kiln {
namespace F = nn::functional;
}
