// kiln::nn::utils: gradient clipping (clip_grad_norm_, clip_grad_value_) and flattening
// parameters to one vector and back, with libtorch's names.
#pragma once

#include <vector>

#include "kiln/tensor.h"

namespace kiln::nn::utils {

/// Scales the gradients of parameters in place so that their combined norm_type-norm (the norm
/// of all of them as one vector; infinity for the max) is at most max_norm. Returns the total
/// norm before clipping. Parameters without a gradient are skipped. With error_if_nonfinite, a
/// NaN or infinite total norm throws kiln::Error.
double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm,
                       double norm_type = 2.0, bool error_if_nonfinite = false);
double clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
/// Clamps every gradient element to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value);
/// The parameters flattened and concatenated into one 1-D tensor.
Tensor parameters_to_vector(const std::vector<Tensor>& parameters);
/// Copies consecutive slices of vec into the parameters (the inverse of parameters_to_vector).
void vector_to_parameters(const Tensor& vec, const std::vector<Tensor>& parameters);

}  // namespace kiln::nn::utils
