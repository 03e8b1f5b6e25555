// kiln::nn::init: in-place parameter initialisers with libtorch's names (kaiming_uniform_,
// xavier_normal_, uniform_, zeros_, ...). They run without recording gradients and return the
// tensor they filled.
#pragma once

#include <tuple>
#include <variant>

#include "kiln/nn/arg.h"
#include "kiln/tensor.h"

namespace kiln::nn::init {

/// Which activation follows, for calculate_gain and the kaiming initialisers.
using NonlinearityType =
    std::variant<enumtype::kLinear, enumtype::kConv1D, enumtype::kConv2D, enumtype::kConv3D,
                 enumtype::kSigmoid, enumtype::kTanh, enumtype::kReLU, enumtype::kLeakyReLU>;
/// Whether kaiming preserves the variance of the forward (kFanIn) or backward (kFanOut) pass.
using FanModeType = std::variant<enumtype::kFanIn, enumtype::kFanOut>;

/// The recommended gain for a nonlinearity: 1 (linear, conv, sigmoid), 5/3 (tanh), sqrt(2)
/// (relu), sqrt(2 / (1 + param^2)) (leaky relu with negative slope param).
double calculate_gain(NonlinearityType nonlinearity, double param = 0.01);
/// (fan_in, fan_out) of a weight of at least 2 dims: size(1) and size(0) times the receptive
/// field (the product of the remaining dims).
std::tuple<int64_t, int64_t> _calculate_fan_in_and_fan_out(const Tensor& tensor);

/// Fills with value.
Tensor constant_(Tensor tensor, Scalar value);
Tensor zeros_(Tensor tensor);
Tensor ones_(Tensor tensor);
/// The identity matrix (2-D tensors only).
Tensor eye_(Tensor tensor);
/// Uniform on [low, high).
Tensor uniform_(Tensor tensor, double low = 0, double high = 1);
/// Normal with mean and standard deviation std.
Tensor normal_(Tensor tensor, double mean = 0, double std = 1);
/// Uniform on [-b, b] with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot).
Tensor xavier_uniform_(Tensor tensor, double gain = 1.0);
/// Normal with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(Tensor tensor, double gain = 1.0);
/// Uniform on [-b, b] with b = gain * sqrt(3 / fan) (He); a is the leaky relu slope.
Tensor kaiming_uniform_(Tensor tensor, double a = 0, FanModeType mode = kFanIn,
                        NonlinearityType nonlinearity = kLeakyReLU);
/// Normal with std = gain / sqrt(fan).
Tensor kaiming_normal_(Tensor tensor, double a = 0, FanModeType mode = kFanIn,
                       NonlinearityType nonlinearity = kLeakyReLU);

}  // namespace kiln::nn::init
