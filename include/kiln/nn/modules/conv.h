// Conv2d, MaxPool2d and AvgPool2d modules with libtorch's options and initialisation; the
// convolution runs through kiln::conv2d (oneDNN on the CPU).
#pragma once

#include "kiln/nn/functional.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

/// 2-D convolution: weight [out_channels, in_channels / groups, kH, kW], bias [out_channels];
/// initialised like libtorch (kaiming_uniform_(weight, sqrt(5)), bias +-1/sqrt(fan_in)).
class Conv2dImpl : public Cloneable<Conv2dImpl> {
 public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size)
      : Conv2dImpl(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  explicit Conv2dImpl(Conv2dOptions options);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  /// [N, in_channels, H, W] (or unbatched [in_channels, H, W]) -> [N, out_channels, H', W'].
  Tensor forward(const Tensor& input);
  Conv2dOptions options;
  Tensor weight;
  Tensor bias;
};
KILN_MODULE(Conv2d);

/// Max over kernel_size windows.
class MaxPool2dImpl : public Cloneable<MaxPool2dImpl> {
 public:
  explicit MaxPool2dImpl(ExpandingArray<2> kernel_size)
      : MaxPool2dImpl(MaxPool2dOptions(kernel_size)) {}
  explicit MaxPool2dImpl(const MaxPool2dOptions& options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);
  MaxPool2dOptions options;
};
KILN_MODULE(MaxPool2d);

/// Mean over kernel_size windows.
class AvgPool2dImpl : public Cloneable<AvgPool2dImpl> {
 public:
  explicit AvgPool2dImpl(ExpandingArray<2> kernel_size)
      : AvgPool2dImpl(AvgPool2dOptions(kernel_size)) {}
  explicit AvgPool2dImpl(const AvgPool2dOptions& options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);
  AvgPool2dOptions options;
};
KILN_MODULE(AvgPool2d);

}  // namespace kiln::nn
