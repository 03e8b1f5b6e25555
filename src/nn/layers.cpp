// The feed-forward modules: activations, Linear, Flatten, Identity, Dropout, Embedding, Conv2d,
// the pools, BatchNorm1d/2d and LayerNorm. Each checks its input and names itself in errors,
// then calls the F:: form.
#include <cmath>

#include "kiln/nn/init.h"
#include "kiln/nn/modules/activation.h"
#include "kiln/nn/modules/conv.h"
#include "kiln/nn/modules/linear.h"
#include "kiln/nn/modules/normalization.h"

namespace kiln::nn {

namespace {
std::string bool_str(bool b) { return b ? "true" : "false"; }

void check_defined(const Tensor& t, const char* module) {
  KILN_CHECK(t.defined(), "[{}] got an undefined input tensor, expected a tensor", module);
}
}  // namespace

// ---- activations ---------------------------------------------------------------------------

ReLUImpl::ReLUImpl(const ReLUOptions& options) : options(options) {}
Tensor ReLUImpl::forward(const Tensor& input) { return functional::relu(input, options); }
void ReLUImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::ReLU(" << (options.inplace() ? "inplace=true" : "") << ")";
}

GELUImpl::GELUImpl(GELUOptions options) : options(std::move(options)) {}
Tensor GELUImpl::forward(const Tensor& input) { return functional::gelu(input, options); }
void GELUImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::GELU(" << (options.approximate() == "none" ? "" : "approximate=tanh") << ")";
}

Tensor SiLUImpl::forward(const Tensor& input) { return kiln::silu(input); }
void SiLUImpl::pretty_print(std::ostream& s) const { s << "kiln::nn::SiLU()"; }
Tensor TanhImpl::forward(const Tensor& input) { return kiln::tanh(input); }
void TanhImpl::pretty_print(std::ostream& s) const { s << "kiln::nn::Tanh()"; }
Tensor SigmoidImpl::forward(const Tensor& input) { return kiln::sigmoid(input); }
void SigmoidImpl::pretty_print(std::ostream& s) const { s << "kiln::nn::Sigmoid()"; }

SoftmaxImpl::SoftmaxImpl(const SoftmaxOptions& options) : options(options) {}
Tensor SoftmaxImpl::forward(const Tensor& input) { return kiln::softmax(input, options.dim()); }
void SoftmaxImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::Softmax(dim=" << options.dim() << ")";
}
LogSoftmaxImpl::LogSoftmaxImpl(const LogSoftmaxOptions& options) : options(options) {}
Tensor LogSoftmaxImpl::forward(const Tensor& input) {
  return kiln::log_softmax(input, options.dim());
}
void LogSoftmaxImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::LogSoftmax(dim=" << options.dim() << ")";
}

// ---- Linear, Flatten, Identity, Dropout, Embedding -----------------------------------------

LinearImpl::LinearImpl(const LinearOptions& options) : options(options) { reset(); }

void LinearImpl::reset() {
  KILN_CHECK(options.in_features() >= 0 && options.out_features() >= 0,
             "[Linear] got in_features={} and out_features={}, expected non-negative sizes",
             options.in_features(), options.out_features());
  weight =
      register_parameter("weight", kiln::empty({options.out_features(), options.in_features()}));
  bias = register_parameter(
      "bias", options.bias() ? kiln::empty({options.out_features()}) : Tensor(), options.bias());
  reset_parameters();
}

void LinearImpl::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = options.in_features() > 0
                             ? 1.0 / std::sqrt(static_cast<double>(options.in_features()))
                             : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

void LinearImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::Linear(in_features=" << options.in_features()
    << ", out_features=" << options.out_features() << ", bias=" << bool_str(options.bias()) << ")";
}

Tensor LinearImpl::forward(const Tensor& input) {
  check_defined(input, "Linear");
  KILN_CHECK(input.dim() >= 1 && input.size(-1) == options.in_features(),
             "[Linear] got input sizes {}, expected [*, {}] (in_features={})",
             shape_str(input.sizes()), options.in_features(), options.in_features());
  return kiln::linear(input, weight, bias);
}

FlattenImpl::FlattenImpl(const FlattenOptions& options) : options(options) {}
void FlattenImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::Flatten(start_dim=" << options.start_dim() << ", end_dim=" << options.end_dim()
    << ")";
}
Tensor FlattenImpl::forward(const Tensor& input) {
  check_defined(input, "Flatten");
  return input.flatten(options.start_dim(), options.end_dim());
}

void IdentityImpl::pretty_print(std::ostream& s) const { s << "kiln::nn::Identity()"; }
Tensor IdentityImpl::forward(const Tensor& input) { return input; }

DropoutImpl::DropoutImpl(const DropoutOptions& options) : options(options) { reset(); }
void DropoutImpl::reset() {
  KILN_CHECK(options.p() >= 0.0 && options.p() <= 1.0,
             "[Dropout] got probability p={}, expected 0 <= p <= 1", options.p());
}
void DropoutImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::Dropout(p=" << options.p() << ", inplace=" << bool_str(options.inplace()) << ")";
}
Tensor DropoutImpl::forward(const Tensor& input) {
  check_defined(input, "Dropout");
  return functional::dropout(input, functional::DropoutFuncOptions()
                                        .p(options.p())
                                        .inplace(options.inplace())
                                        .training(is_training()));
}

EmbeddingImpl::EmbeddingImpl(const EmbeddingOptions& options) : options(options) { reset(); }

void EmbeddingImpl::reset() {
  const int64_t n = options.num_embeddings();
  KILN_CHECK(n >= 0 && options.embedding_dim() >= 0,
             "[Embedding] got num_embeddings={} and embedding_dim={}, expected non-negative "
             "sizes",
             n, options.embedding_dim());
  if (options.padding_idx()) {
    int64_t& pad = *options.padding_idx();
    KILN_CHECK(pad >= -n && pad < n,
               "[Embedding] padding_idx {} is out of range, expected it in [{}, {})", pad, -n, n);
    if (pad < 0) pad += n;
  }
  weight = register_parameter("weight", kiln::empty({n, options.embedding_dim()}));
  reset_parameters();
}

void EmbeddingImpl::reset_parameters() {
  init::normal_(weight);
  if (options.padding_idx()) {
    NoGradGuard no_grad;
    weight[*options.padding_idx()].fill_(0);
  }
}

void EmbeddingImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::Embedding(num_embeddings=" << options.num_embeddings()
    << ", embedding_dim=" << options.embedding_dim();
  if (options.padding_idx()) s << ", padding_idx=" << *options.padding_idx();
  s << ")";
}

Tensor EmbeddingImpl::forward(const Tensor& indices) {
  check_defined(indices, "Embedding");
  KILN_CHECK(is_integral(indices.dtype()) && indices.dtype() != kBool,
             "[Embedding] got indices of dtype {}, expected an integer dtype (int64)",
             dtype_name(indices.dtype()));
  return functional::embedding(
      indices, weight, functional::EmbeddingFuncOptions().padding_idx(options.padding_idx()));
}

// ---- Conv2d and pools ------------------------------------------------------------------------

Conv2dImpl::Conv2dImpl(Conv2dOptions options) : options(std::move(options)) { reset(); }

void Conv2dImpl::reset() {
  const int64_t in = options.in_channels(), out = options.out_channels(), g = options.groups();
  KILN_CHECK(g > 0, "[Conv2d] got groups={}, expected a positive number", g);
  KILN_CHECK(in > 0 && out > 0 && in % g == 0 && out % g == 0,
             "[Conv2d] got in_channels={}, out_channels={} and groups={}, expected positive "
             "channel counts divisible by groups",
             in, out, g);
  const auto& k = options.kernel_size();
  KILN_CHECK(k[0] > 0 && k[1] > 0, "[Conv2d] got kernel_size [{}, {}], expected positive sizes",
             k[0], k[1]);
  weight = register_parameter("weight", kiln::empty({out, in / g, k[0], k[1]}));
  bias = register_parameter("bias", options.bias() ? kiln::empty({out}) : Tensor(), options.bias());
  reset_parameters();
}

void Conv2dImpl::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::_calculate_fan_in_and_fan_out(weight);
    init::uniform_(bias, -1.0 / std::sqrt(static_cast<double>(fan_in)),
                   1.0 / std::sqrt(static_cast<double>(fan_in)));
  }
}

void Conv2dImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::Conv2d(" << options.in_channels() << ", " << options.out_channels()
    << ", kernel_size=" << shape_str(options.kernel_size())
    << ", stride=" << shape_str(options.stride());
  if (options.padding() != ExpandingArray<2>(0)) s << ", padding=" << shape_str(options.padding());
  if (options.dilation() != ExpandingArray<2>(1))
    s << ", dilation=" << shape_str(options.dilation());
  if (options.groups() != 1) s << ", groups=" << options.groups();
  if (!options.bias()) s << ", bias=false";
  s << ")";
}

Tensor Conv2dImpl::forward(const Tensor& input) {
  check_defined(input, "Conv2d");
  const int64_t c = options.in_channels();
  KILN_CHECK((input.dim() == 4 && input.size(1) == c) || (input.dim() == 3 && input.size(0) == c),
             "[Conv2d] got input sizes {}, expected [N, {}, H, W] or [{}, H, W] "
             "(in_channels={})",
             shape_str(input.sizes()), c, c, c);
  return kiln::conv2d(input, weight, bias, options.stride(), options.padding(), options.dilation(),
                      options.groups());
}

namespace {
void check_pool_input(const Tensor& input, const char* module) {
  check_defined(input, module);
  KILN_CHECK(input.dim() == 3 || input.dim() == 4,
             "[{}] got input sizes {}, expected [N, C, H, W] or [C, H, W]", module,
             shape_str(input.sizes()));
}
}  // namespace

MaxPool2dImpl::MaxPool2dImpl(const MaxPool2dOptions& options) : options(options) {}
void MaxPool2dImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::MaxPool2d(kernel_size=" << shape_str(options.kernel_size())
    << ", stride=" << shape_str(options.stride()) << ", padding=" << shape_str(options.padding())
    << ", dilation=" << shape_str(options.dilation())
    << ", ceil_mode=" << bool_str(options.ceil_mode()) << ")";
}
Tensor MaxPool2dImpl::forward(const Tensor& input) {
  check_pool_input(input, "MaxPool2d");
  return functional::max_pool2d(input, options);
}

AvgPool2dImpl::AvgPool2dImpl(const AvgPool2dOptions& options) : options(options) {}
void AvgPool2dImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::AvgPool2d(kernel_size=" << shape_str(options.kernel_size())
    << ", stride=" << shape_str(options.stride()) << ", padding=" << shape_str(options.padding())
    << ")";
}
Tensor AvgPool2dImpl::forward(const Tensor& input) {
  check_pool_input(input, "AvgPool2d");
  return functional::avg_pool2d(input, options);
}

// ---- BatchNorm, LayerNorm --------------------------------------------------------------------

template <typename Derived>
BatchNormImplBase<Derived>::BatchNormImplBase(const BatchNormOptions& options) : options(options) {
  // reset() here, not in Derived: it registers only state, and Derived adds nothing.
  BatchNormImplBase::reset();
}

template <typename Derived>
void BatchNormImplBase<Derived>::reset() {
  const int64_t c = options.num_features();
  KILN_CHECK(c > 0, "[BatchNorm] got num_features={}, expected a positive number", c);
  if (options.affine()) {
    weight = this->register_parameter("weight", kiln::empty({c}));
    bias = this->register_parameter("bias", kiln::empty({c}));
  } else {
    weight = this->register_parameter("weight", Tensor(), false);
    bias = this->register_parameter("bias", Tensor(), false);
  }
  if (options.track_running_stats()) {
    running_mean = this->register_buffer("running_mean", kiln::zeros({c}));
    running_var = this->register_buffer("running_var", kiln::ones({c}));
    num_batches_tracked =
        this->register_buffer("num_batches_tracked", kiln::zeros({}, kiln::dtype(kLong)));
  } else {
    running_mean = this->register_buffer("running_mean", Tensor());
    running_var = this->register_buffer("running_var", Tensor());
    num_batches_tracked = this->register_buffer("num_batches_tracked", Tensor());
  }
  reset_parameters();
}

template <typename Derived>
void BatchNormImplBase<Derived>::reset_running_stats() {
  if (!options.track_running_stats()) return;
  init::zeros_(running_mean);
  init::ones_(running_var);
  init::zeros_(num_batches_tracked);
}

template <typename Derived>
void BatchNormImplBase<Derived>::reset_parameters() {
  reset_running_stats();
  if (options.affine()) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

template <typename Derived>
void BatchNormImplBase<Derived>::pretty_print(std::ostream& s) const {
  s << "kiln::nn::BatchNorm" << (std::is_same_v<Derived, BatchNorm1dImpl> ? "1d(" : "2d(")
    << options.num_features() << ", eps=" << options.eps() << ", momentum=";
  if (options.momentum())
    s << *options.momentum();
  else
    s << "None";
  s << ", affine=" << bool_str(options.affine())
    << ", track_running_stats=" << bool_str(options.track_running_stats()) << ")";
}

template <typename Derived>
Tensor BatchNormImplBase<Derived>::forward(const Tensor& input) {
  check_input_dim(input);
  const bool training = this->is_training();
  double factor = options.momentum().value_or(0.0);
  if (training && options.track_running_stats()) {
    NoGradGuard no_grad;
    num_batches_tracked.add_(1);
    // momentum nullopt: a cumulative moving average over all batches seen.
    if (!options.momentum()) factor = 1.0 / num_batches_tracked.item<double>();
  }
  const bool use_batch_stats = training || !options.track_running_stats();
  const bool pass_running = !training || options.track_running_stats();
  return functional::batch_norm(input, pass_running ? running_mean : Tensor(),
                                pass_running ? running_var : Tensor(),
                                functional::BatchNormFuncOptions()
                                    .weight(weight)
                                    .bias(bias)
                                    .training(use_batch_stats)
                                    .momentum(factor)
                                    .eps(options.eps()));
}

template class BatchNormImplBase<BatchNorm1dImpl>;
template class BatchNormImplBase<BatchNorm2dImpl>;

void BatchNorm1dImpl::check_input_dim(const Tensor& input) const {
  check_defined(input, "BatchNorm1d");
  KILN_CHECK(input.dim() == 2 || input.dim() == 3,
             "[BatchNorm1d] got input sizes {}, expected [N, {}] or [N, {}, L]",
             shape_str(input.sizes()), options.num_features(), options.num_features());
  KILN_CHECK(input.size(1) == options.num_features(),
             "[BatchNorm1d] got input sizes {}, expected {} channels in dim 1 (num_features)",
             shape_str(input.sizes()), options.num_features());
}

void BatchNorm2dImpl::check_input_dim(const Tensor& input) const {
  check_defined(input, "BatchNorm2d");
  KILN_CHECK(input.dim() == 4 && input.size(1) == options.num_features(),
             "[BatchNorm2d] got input sizes {}, expected [N, {}, H, W] (num_features={})",
             shape_str(input.sizes()), options.num_features(), options.num_features());
}

LayerNormImpl::LayerNormImpl(LayerNormOptions options) : options(std::move(options)) { reset(); }

void LayerNormImpl::reset() {
  const auto& shape = options.normalized_shape();
  KILN_CHECK(!shape.empty(), "[LayerNorm] got an empty normalized_shape, expected at least 1 dim");
  if (options.elementwise_affine()) {
    weight = register_parameter("weight", kiln::empty(shape));
    bias = register_parameter("bias", kiln::empty(shape));
  } else {
    weight = register_parameter("weight", Tensor(), false);
    bias = register_parameter("bias", Tensor(), false);
  }
  reset_parameters();
}

void LayerNormImpl::reset_parameters() {
  if (!options.elementwise_affine()) return;
  init::ones_(weight);
  init::zeros_(bias);
}

void LayerNormImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::LayerNorm(" << shape_str(options.normalized_shape()) << ", eps=" << options.eps()
    << ", elementwise_affine=" << bool_str(options.elementwise_affine()) << ")";
}

Tensor LayerNormImpl::forward(const Tensor& input) {
  check_defined(input, "LayerNorm");
  return functional::layer_norm(input, functional::LayerNormFuncOptions(options.normalized_shape())
                                           .weight(weight)
                                           .bias(bias)
                                           .eps(options.eps()));
}

}  // namespace kiln::nn
