// F:: layers as composites of tensor-core ops: activations with options, conv/pool with options
// structs, dropout, batch_norm, layer_norm and embedding. Losses are in loss.cpp.
#include "kiln/nn/functional.h"

#include <cmath>

#include "kiln/autograd/grad_mode.h"

namespace kiln::nn::functional {

Tensor relu(const Tensor& input, const ReLUFuncOptions& options) {
  if (!options.inplace()) return kiln::relu(input);
  Tensor x = input;
  return x.relu_();
}

Tensor gelu(const Tensor& input, const GELUFuncOptions& options) {
  const std::string& a = options.approximate();
  if (a == "none") return kiln::gelu(input);
  KILN_CHECK(a == "tanh", "[gelu] got approximate='{}', expected 'none' or 'tanh'", a);
  KILN_CHECK(input.is_floating_point(), "[gelu] got dtype {}, expected a floating-point input",
             dtype_name(input.dtype()));
  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
  const double k = std::sqrt(2.0 / M_PI);
  Tensor inner = (input + input * input * input * 0.044715) * k;
  return input * 0.5 * (kiln::tanh(inner) + 1.0);
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Conv2dFuncOptions& o) {
  return kiln::conv2d(input, weight, o.bias(), o.stride(), o.padding(), o.dilation(), o.groups());
}

Tensor max_pool2d(const Tensor& input, const MaxPool2dFuncOptions& o) {
  return kiln::max_pool2d(input, o.kernel_size(), o.stride(), o.padding(), o.dilation(),
                          o.ceil_mode());
}

Tensor avg_pool2d(const Tensor& input, const AvgPool2dFuncOptions& o) {
  return kiln::avg_pool2d(input, o.kernel_size(), o.stride(), o.padding(), o.ceil_mode(),
                          o.count_include_pad(), o.divisor_override());
}

Tensor dropout(const Tensor& input, const DropoutFuncOptions& options) {
  const double p = options.p();
  KILN_CHECK(p >= 0.0 && p <= 1.0, "[dropout] got probability p={}, expected 0 <= p <= 1", p);
  if (!options.training() || p == 0.0) return input;
  KILN_CHECK(input.is_floating_point(), "[dropout] got dtype {}, expected a floating-point input",
             dtype_name(input.dtype()));
  // Keep with probability 1 - p, scaled so the expectation is unchanged; p == 1 keeps nothing.
  Tensor mask;
  {
    NoGradGuard no_grad;
    Tensor keep = kiln::rand(input.sizes(), input.options()) >= p;
    mask = keep.to(input.dtype());
    if (p < 1.0) mask.mul_(1.0 / (1.0 - p));
  }
  if (options.inplace()) {
    Tensor x = input;
    return x.mul_(mask);
  }
  return input * mask;
}

namespace {
// [1, C, 1, ...] for broadcasting a per-channel vector over an [N, C, ...] input.
std::vector<int64_t> channel_shape(const Tensor& input) {
  std::vector<int64_t> shape(static_cast<size_t>(input.dim()), 1);
  shape[1] = input.size(1);
  return shape;
}
void check_channel_vector(const Tensor& t, int64_t channels, const char* what) {
  if (!t.defined()) return;
  KILN_CHECK(t.dim() == 1 && t.size(0) == channels,
             "[batch_norm] got {} of sizes {}, expected [{}] (one per channel)", what,
             shape_str(t.sizes()), channels);
}
}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const BatchNormFuncOptions& o) {
  KILN_CHECK(input.dim() >= 2,
             "[batch_norm] got input sizes {}, expected [N, C] or [N, C, ...] (at least 2 dims)",
             shape_str(input.sizes()));
  KILN_CHECK(input.is_floating_point(),
             "[batch_norm] got dtype {}, expected a floating-point input",
             dtype_name(input.dtype()));
  const int64_t channels = input.size(1);
  check_channel_vector(running_mean, channels, "running_mean");
  check_channel_vector(running_var, channels, "running_var");
  check_channel_vector(o.weight(), channels, "weight");
  check_channel_vector(o.bias(), channels, "bias");
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < input.dim(); ++d)
    if (d != 1) dims.push_back(d);
  const std::vector<int64_t> shape = channel_shape(input);
  if (!o.training()) {
    KILN_CHECK(running_mean.defined() && running_var.defined(),
               "[batch_norm] evaluation (training=false) needs running_mean and running_var");
    // y = x * scale + shift with scale = w / sqrt(var + eps), shift = b - mean * scale: two
    // full-size passes over x, the rest on [C] vectors.
    Tensor scale = kiln::rsqrt(running_var.to(input.dtype()) + o.eps());
    if (o.weight().defined()) scale = scale * o.weight();
    Tensor shift = -running_mean.to(input.dtype()) * scale;
    if (o.bias().defined()) shift = shift + o.bias();
    return input * scale.view(shape) + shift.view(shape);
  }
  const int64_t count = input.numel() / std::max<int64_t>(channels, 1);
  KILN_CHECK(count > 1,
             "[batch_norm] expected more than 1 value per channel when training, got input "
             "sizes {}",
             shape_str(input.sizes()));
  // Training: centre once and reuse it for the variance and the output, which keeps the
  // recorded graph (and so the backward pass) to a few full-size ops.
  Tensor mean = input.mean(dims, /*keepdim=*/true);
  Tensor centered = input - mean;
  Tensor var = (centered * centered).mean(dims, /*keepdim=*/true);
  if (running_mean.defined() || running_var.defined()) {
    KILN_CHECK(o.momentum().has_value(),
               "[batch_norm] momentum is nullopt; pass a momentum to update the running "
               "statistics (BatchNorm computes the cumulative factor itself)");
    const double m = *o.momentum();
    NoGradGuard no_grad;
    if (running_mean.defined()) {
      Tensor rm = running_mean;
      rm.mul_(1.0 - m).add_(mean.detach().view({channels}).to(rm.dtype()), m);
    }
    if (running_var.defined()) {
      Tensor rv = running_var;
      const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
      rv.mul_(1.0 - m).add_(var.detach().view({channels}).to(rv.dtype()), m * unbias);
    }
  }
  Tensor scale = kiln::rsqrt(var + o.eps());
  if (o.weight().defined()) scale = scale * o.weight().view(shape);
  Tensor out = centered * scale;
  return o.bias().defined() ? out + o.bias().view(shape) : out;
}

Tensor layer_norm(const Tensor& input, const LayerNormFuncOptions& o) {
  const std::vector<int64_t>& ns = o.normalized_shape();
  const int64_t k = static_cast<int64_t>(ns.size());
  bool ok = k >= 1 && input.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = input.size(input.dim() - k + i) == ns[i];
  KILN_CHECK(ok,
             "[layer_norm] normalized_shape {} does not match the trailing dims of input sizes "
             "{}, expected input sizes [*, {}]",
             shape_str(ns), shape_str(input.sizes()), fmt::join(ns, ", "));
  KILN_CHECK(input.is_floating_point(),
             "[layer_norm] got dtype {}, expected a floating-point input",
             dtype_name(input.dtype()));
  for (const Tensor* t : {&o.weight(), &o.bias()})
    KILN_CHECK(!t->defined() || t->sizes().equals(ns),
               "[layer_norm] got {} of sizes {}, expected normalized_shape {}",
               t == &o.weight() ? "weight" : "bias", shape_str(t->sizes()), shape_str(ns));
  std::vector<int64_t> dims;
  for (int64_t i = input.dim() - k; i < input.dim(); ++i) dims.push_back(i);
  Tensor centered = input - input.mean(dims, /*keepdim=*/true);
  Tensor var = (centered * centered).mean(dims, /*keepdim=*/true);
  Tensor out = centered * kiln::rsqrt(var + o.eps());
  if (o.weight().defined()) out = out * o.weight();
  if (o.bias().defined()) out = out + o.bias();
  return out;
}

Tensor embedding(const Tensor& input, const Tensor& weight, const EmbeddingFuncOptions& o) {
  KILN_CHECK(weight.dim() == 2,
             "[embedding] got weight sizes {}, expected [num_embeddings, embedding_dim]",
             shape_str(weight.sizes()));
  Tensor out = kiln::embedding(weight, input);
  if (!o.padding_idx()) return out;
  int64_t pad = *o.padding_idx();
  const int64_t n = weight.size(0);
  KILN_CHECK(pad >= -n && pad < n, "[embedding] padding_idx {} is out of range for {} embeddings",
             pad, n);
  if (pad < 0) pad += n;
  if (!out.requires_grad()) return out;
  // The same values, but positions looking up padding_idx pass no gradient to weight.
  Tensor is_pad = (input == pad).unsqueeze(-1);
  return kiln::where(is_pad, out.detach(), out);
}

}  // namespace kiln::nn::functional
