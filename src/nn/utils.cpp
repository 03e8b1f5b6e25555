// nn::utils: gradient clipping and parameter flattening, run outside autograd.
#include "kiln/nn/utils.h"

#include <cmath>
#include <limits>

#include "kiln/autograd/grad_mode.h"
#include "kiln/functions.h"

namespace kiln::nn::utils {

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  KILN_CHECK(norm_type > 0, "[clip_grad_norm_] got norm_type={}, expected a positive norm",
             norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const bool inf_norm = std::isinf(norm_type);
  // Accumulate in float64 so that many parameters' contributions do not lose precision.
  double total = 0.0;
  for (const Tensor& g : grads) {
    Tensor gd = g.to(kDouble);
    if (inf_norm)
      total = std::max(total, kiln::abs(gd).max().item<double>());
    else
      total += std::pow(gd.norm(norm_type).item<double>(), norm_type);
  }
  if (!inf_norm) total = std::pow(total, 1.0 / norm_type);
  KILN_CHECK(!error_if_nonfinite || std::isfinite(total),
             "[clip_grad_norm_] the total norm of order {} of the gradients is {}, so they "
             "cannot be clipped (set error_if_nonfinite=false to clip anyway)",
             norm_type, total);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const Tensor& p : parameters)
      if (p.defined() && p.grad().defined()) {
        Tensor g = p.grad();
        g.mul_(coef);
      }
  }
  return total;
}

double clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip_grad_norm_(std::vector<Tensor>{parameter}, max_norm, norm_type, error_if_nonfinite);
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  NoGradGuard no_grad;
  for (const Tensor& p : parameters)
    if (p.defined() && p.grad().defined()) {
      Tensor g = p.grad();
      g.clamp_(-clip_value, clip_value);
    }
}

Tensor parameters_to_vector(const std::vector<Tensor>& parameters) {
  std::vector<Tensor> flat;
  for (const Tensor& p : parameters) flat.push_back(p.reshape({-1}));
  KILN_CHECK(!flat.empty(), "[parameters_to_vector] got no parameters");
  return kiln::cat(flat, 0);
}

void vector_to_parameters(const Tensor& vec, const std::vector<Tensor>& parameters) {
  int64_t total = 0;
  for (const Tensor& p : parameters) total += p.numel();
  KILN_CHECK(vec.dim() == 1 && vec.numel() == total,
             "[vector_to_parameters] got vec sizes {}, expected [{}] (the parameters' total "
             "number of elements)",
             shape_str(vec.sizes()), total);
  NoGradGuard no_grad;
  int64_t offset = 0;
  for (const Tensor& p : parameters) {
    Tensor dst = p;
    dst.copy_(vec.narrow(0, offset, p.numel()).view(p.sizes()));
    offset += p.numel();
  }
}

}  // namespace kiln::nn::utils
