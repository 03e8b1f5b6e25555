// kiln::nn::functional (F::): libtorch's functional spellings over the tensor core.
// The nn layer (modules, losses) adds to this namespace; these are the core-issue forms.
#pragma once

#include "kiln/functions.h"

namespace kiln::nn::functional {

/// im2col like torch::nn::functional::unfold: [N, C, H, W] -> [N, C*kH*kW, L].
inline Tensor unfold(const Tensor& input, IntArrayRef kernel_size, IntArrayRef dilation = 1,
                     IntArrayRef padding = 0, IntArrayRef stride = 1) {
  return im2col(input, kernel_size, dilation, padding, stride);
}
/// col2im like torch::nn::functional::fold: [N, C*kH*kW, L] -> [N, C, H, W].
inline Tensor fold(const Tensor& input, IntArrayRef output_size, IntArrayRef kernel_size,
                   IntArrayRef dilation = 1, IntArrayRef padding = 0, IntArrayRef stride = 1) {
  return col2im(input, output_size, kernel_size, dilation, padding, stride);
}
inline Tensor relu(const Tensor& x) { return kiln::relu(x); }
inline Tensor gelu(const Tensor& x) { return kiln::gelu(x); }
inline Tensor silu(const Tensor& x) { return kiln::silu(x); }
inline Tensor sigmoid(const Tensor& x) { return kiln::sigmoid(x); }
inline Tensor tanh(const Tensor& x) { return kiln::tanh(x); }
inline Tensor softmax(const Tensor& x, int64_t dim) { return kiln::softmax(x, dim); }
inline Tensor log_softmax(const Tensor& x, int64_t dim) { return kiln::log_softmax(x, dim); }
inline Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {}) {
  return kiln::linear(x, w, b);
}
inline Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                     IntArrayRef stride = 1, IntArrayRef padding = 0, IntArrayRef dilation = 1,
                     int64_t groups = 1) {
  return kiln::conv2d(input, weight, bias, stride, padding, dilation, groups);
}
inline Tensor max_pool2d(const Tensor& x, IntArrayRef kernel_size, IntArrayRef stride = {},
                         IntArrayRef padding = 0) {
  return kiln::max_pool2d(x, kernel_size, stride, padding);
}
inline Tensor avg_pool2d(const Tensor& x, IntArrayRef kernel_size, IntArrayRef stride = {},
                         IntArrayRef padding = 0) {
  return kiln::avg_pool2d(x, kernel_size, stride, padding);
}
inline Tensor embedding(const Tensor& indices, const Tensor& weight) {
  return kiln::embedding(weight, indices);
}
inline Tensor one_hot(const Tensor& x, int64_t num_classes = -1) {
  return kiln::one_hot(x, num_classes);
}

}  // namespace kiln::nn::functional

namespace kiln {
namespace F = nn::functional;
}
