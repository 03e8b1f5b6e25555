// nn::init: the initialisers fill tensors in place from Kiln's generator (kiln::manual_seed
// makes them reproducible), outside autograd.
#include "kiln/nn/init.h"

#include <cmath>

#include "kiln/autograd/grad_mode.h"
#include "kiln/functions.h"

namespace kiln::nn::init {

namespace {
void check_defined(const Tensor& t, const char* op) {
  KILN_CHECK(t.defined(), "[init::{}] got an undefined tensor, expected a tensor to fill", op);
}
void check_float(const Tensor& t, const char* op) {
  check_defined(t, op);
  KILN_CHECK(t.is_floating_point(), "[init::{}] got dtype {}, expected a floating-point tensor", op,
             dtype_name(t.dtype()));
}
int64_t fan(const Tensor& t, const FanModeType& mode) {
  auto [in, out] = _calculate_fan_in_and_fan_out(t);
  return mode.index() == 0 ? in : out;
}
}  // namespace

double calculate_gain(NonlinearityType nonlinearity, double param) {
  if (std::holds_alternative<enumtype::kTanh>(nonlinearity)) return 5.0 / 3.0;
  if (std::holds_alternative<enumtype::kReLU>(nonlinearity)) return std::sqrt(2.0);
  if (std::holds_alternative<enumtype::kLeakyReLU>(nonlinearity))
    return std::sqrt(2.0 / (1.0 + param * param));
  return 1.0;  // linear, conv, sigmoid
}

std::tuple<int64_t, int64_t> _calculate_fan_in_and_fan_out(const Tensor& tensor) {
  check_defined(tensor, "calculate_fan_in_and_fan_out");
  KILN_CHECK(tensor.dim() >= 2,
             "[init] fan in and fan out can not be computed for a tensor with fewer than 2 "
             "dimensions: got sizes {}",
             shape_str(tensor.sizes()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive *= tensor.size(d);
  return {tensor.size(1) * receptive, tensor.size(0) * receptive};
}

Tensor constant_(Tensor tensor, Scalar value) {
  check_defined(tensor, "constant_");
  NoGradGuard no_grad;
  tensor.fill_(value);
  return tensor;
}
Tensor zeros_(Tensor tensor) { return constant_(std::move(tensor), 0); }
Tensor ones_(Tensor tensor) { return constant_(std::move(tensor), 1); }

Tensor eye_(Tensor tensor) {
  check_defined(tensor, "eye_");
  KILN_CHECK(tensor.dim() == 2, "[init::eye_] got sizes {}, expected a 2-D tensor",
             shape_str(tensor.sizes()));
  NoGradGuard no_grad;
  tensor.copy_(kiln::eye(tensor.size(0), tensor.size(1), tensor.options()));
  return tensor;
}

Tensor uniform_(Tensor tensor, double low, double high) {
  check_float(tensor, "uniform_");
  KILN_CHECK(low <= high, "[init::uniform_] got low={} > high={}, expected low <= high", low, high);
  NoGradGuard no_grad;
  Tensor r = kiln::rand(tensor.sizes(), kiln::dtype(kDouble).device(tensor.device()));
  tensor.copy_(r.mul_(high - low).add_(low));
  return tensor;
}

Tensor normal_(Tensor tensor, double mean, double std) {
  check_float(tensor, "normal_");
  KILN_CHECK(std >= 0, "[init::normal_] got std={}, expected std >= 0", std);
  NoGradGuard no_grad;
  Tensor r = kiln::randn(tensor.sizes(), kiln::dtype(kDouble).device(tensor.device()));
  tensor.copy_(r.mul_(std).add_(mean));
  return tensor;
}

Tensor xavier_uniform_(Tensor tensor, double gain) {
  check_float(tensor, "xavier_uniform_");
  auto [in, out] = _calculate_fan_in_and_fan_out(tensor);
  if (tensor.numel() == 0) return tensor;
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  return uniform_(std::move(tensor), -bound, bound);
}

Tensor xavier_normal_(Tensor tensor, double gain) {
  check_float(tensor, "xavier_normal_");
  auto [in, out] = _calculate_fan_in_and_fan_out(tensor);
  if (tensor.numel() == 0) return tensor;
  return normal_(std::move(tensor), 0.0, gain * std::sqrt(2.0 / static_cast<double>(in + out)));
}

Tensor kaiming_uniform_(Tensor tensor, double a, FanModeType mode, NonlinearityType nonlinearity) {
  check_float(tensor, "kaiming_uniform_");
  const int64_t f = fan(tensor, mode);
  if (tensor.numel() == 0) return tensor;
  const double bound =
      std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(f));
  return uniform_(std::move(tensor), -bound, bound);
}

Tensor kaiming_normal_(Tensor tensor, double a, FanModeType mode, NonlinearityType nonlinearity) {
  check_float(tensor, "kaiming_normal_");
  const int64_t f = fan(tensor, mode);
  if (tensor.numel() == 0) return tensor;
  return normal_(std::move(tensor), 0.0,
                 calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(f)));
}

}  // namespace kiln::nn::init
