// F:: losses as composites of tensor-core ops: mse, l1, smooth_l1, nll, cross_entropy (class
// indices or probabilities, label smoothing, weights, ignore_index), binary cross entropy.
#include <string>

#include "kiln/nn/functional.h"

namespace kiln::nn::functional {

namespace {

Tensor reduce(const Tensor& loss, const reduction_t& reduction) {
  switch (reduction.index()) {
    case 0:
      return loss;
    case 1:
      return loss.mean();
    default:
      return loss.sum();
  }
}

void check_float(const char* op, const Tensor& t, const char* what) {
  KILN_CHECK(t.defined(), "[{}] got an undefined {}, expected a tensor", op, what);
  KILN_CHECK(t.is_floating_point(), "[{}] got {} of dtype {}, expected a floating-point dtype", op,
             what, dtype_name(t.dtype()));
}

void check_same_sizes(const char* op, const Tensor& input, const Tensor& target) {
  check_float(op, input, "input");
  KILN_CHECK(target.defined(), "[{}] got an undefined target, expected a tensor", op);
  KILN_CHECK(input.sizes().equals(target.sizes()),
             "[{}] got input sizes {} and target sizes {}, expected the same sizes", op,
             shape_str(input.sizes()), shape_str(target.sizes()));
}

// Validated class-index targets: int64 values, which entries are ignored.
struct ClassTargets {
  Tensor index;  // int64, ignored entries replaced by 0 (safe to gather with)
  Tensor keep;   // undefined when nothing is ignored, else input-dtype 1/0
  bool any_ignored = false;
};

ClassTargets check_class_targets(const char* op, const Tensor& input, const Tensor& target,
                                 int64_t ignore_index) {
  KILN_CHECK(target.defined(), "[{}] got an undefined target, expected a tensor", op);
  KILN_CHECK(is_integral(target.dtype()) && target.dtype() != kBool,
             "[{}] got target dtype {}, expected class indices of an integer dtype (int64); "
             "for class probabilities pass a floating target of the input's sizes",
             op, dtype_name(target.dtype()));
  const int64_t class_dim = input.dim() == 1 ? 0 : 1;
  std::vector<int64_t> expected = input.sizes().vec();
  expected.erase(expected.begin() + class_dim);
  KILN_CHECK(target.sizes().equals(expected),
             "[{}] got input sizes {} and target sizes {}, expected target sizes {} (the "
             "input's without the class dim {})",
             op, shape_str(input.sizes()), shape_str(target.sizes()), shape_str(expected),
             class_dim);
  const int64_t classes = input.size(class_dim);
  ClassTargets r;
  r.index = target.to(kLong);
  if (r.index.numel() == 0) return r;
  const int64_t lo = r.index.min().item<int64_t>(), hi = r.index.max().item<int64_t>();
  if (ignore_index >= lo && ignore_index <= hi) {
    Tensor ignored = r.index == ignore_index;
    r.any_ignored = ignored.any().item<bool>();
    if (r.any_ignored) {
      r.index = r.index.masked_fill(ignored, 0);
      r.keep = kiln::logical_not(ignored).to(input.dtype());
    }
  }
  if (lo < 0 || hi >= classes) {
    const int64_t bad = r.index.min().item<int64_t>() < 0 ? r.index.min().item<int64_t>()
                                                          : r.index.max().item<int64_t>();
    KILN_CHECK(bad >= 0 && bad < classes,
               "[{}] target {} is out of bounds: got {} classes (input sizes {}), expected "
               "targets in [0, {}) or ignore_index ({})",
               op, bad, classes, shape_str(input.sizes()), classes, ignore_index);
  }
  return r;
}

void check_class_weight(const char* op, const Tensor& weight, int64_t classes) {
  if (!weight.defined()) return;
  KILN_CHECK(weight.dim() == 1 && weight.size(0) == classes,
             "[{}] got weight sizes {}, expected [{}] (one per class)", op,
             shape_str(weight.sizes()), classes);
}

// nll over already-validated targets. Returns the unreduced loss and the per-element weights
// (undefined when all are 1), so mean can divide by their sum.
std::pair<Tensor, Tensor> nll_terms(const Tensor& logp, const ClassTargets& t,
                                    const Tensor& weight) {
  const int64_t class_dim = logp.dim() == 1 ? 0 : 1;
  Tensor loss = -logp.gather(class_dim, t.index.unsqueeze(class_dim)).squeeze(class_dim);
  Tensor w;
  if (weight.defined())
    w = weight.to(logp.dtype()).index_select(0, t.index.flatten()).view(t.index.sizes());
  if (t.any_ignored) w = w.defined() ? w * t.keep : t.keep;
  if (w.defined()) loss = loss * w;
  return {loss, w};
}

Tensor reduce_weighted(const Tensor& loss, const Tensor& w, const reduction_t& reduction) {
  if (reduction.index() == 1 && w.defined()) return loss.sum() / w.sum();
  return reduce(loss, reduction);
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossFuncOptions& options) {
  check_same_sizes("mse_loss", input, target);
  Tensor d = input - target;
  return reduce(d * d, options.reduction());
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options) {
  check_same_sizes("l1_loss", input, target);
  return reduce(kiln::abs(input - target), options.reduction());
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target,
                      const SmoothL1LossFuncOptions& options) {
  check_same_sizes("smooth_l1_loss", input, target);
  const double beta = options.beta();
  KILN_CHECK(beta >= 0, "[smooth_l1_loss] got beta={}, expected beta >= 0", beta);
  Tensor d = kiln::abs(input - target);
  if (beta == 0.0) return reduce(d, options.reduction());
  Tensor loss = kiln::where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta);
  return reduce(loss, options.reduction());
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossFuncOptions& options) {
  check_float("nll_loss", input, "input");
  KILN_CHECK(input.dim() >= 1,
             "[nll_loss] got a 0-dim input, expected [C], [N, C] or [N, C, d1, ...]");
  const int64_t classes = input.size(input.dim() == 1 ? 0 : 1);
  check_class_weight("nll_loss", options.weight(), classes);
  ClassTargets t = check_class_targets("nll_loss", input, target, options.ignore_index());
  auto [loss, w] = nll_terms(input, t, options.weight());
  return reduce_weighted(loss, w, options.reduction());
}

Tensor cross_entropy(const Tensor& input, const Tensor& target,
                     const CrossEntropyFuncOptions& options) {
  const char* op = "cross_entropy";
  check_float(op, input, "input");
  KILN_CHECK(input.dim() >= 1,
             "[cross_entropy] got a 0-dim input, expected [C], [N, C] or [N, C, d1, ...]");
  const double eps = options.label_smoothing();
  KILN_CHECK(eps >= 0.0 && eps <= 1.0,
             "[cross_entropy] got label_smoothing={}, expected a value in [0, 1]", eps);
  const int64_t class_dim = input.dim() == 1 ? 0 : 1;
  const int64_t classes = input.size(class_dim);
  const Tensor& weight = options.weight();
  check_class_weight(op, weight, classes);
  Tensor logp = kiln::log_softmax(input, class_dim);
  std::vector<int64_t> wshape(static_cast<size_t>(input.dim()), 1);
  wshape[class_dim] = classes;

  if (target.defined() && target.is_floating_point()) {
    // Class probabilities.
    KILN_CHECK(target.sizes().equals(input.sizes()),
               "[cross_entropy] got probability target sizes {}, expected the input's sizes {}",
               shape_str(target.sizes()), shape_str(input.sizes()));
    Tensor p = eps > 0 ? target * (1.0 - eps) + eps / static_cast<double>(classes) : target;
    Tensor terms = logp * p;
    if (weight.defined()) terms = terms * weight.to(logp.dtype()).view(wshape);
    Tensor loss = -terms.sum(class_dim);
    if (options.reduction().index() == 1) {
      const int64_t batch = classes == 0 ? 0 : input.numel() / classes;
      return loss.sum() / static_cast<double>(batch);
    }
    return reduce(loss, options.reduction());
  }

  ClassTargets t = check_class_targets(op, input, target, options.ignore_index());
  auto [nll, w] = nll_terms(logp, t, weight);
  Tensor result = reduce_weighted(nll, w, options.reduction());
  if (eps == 0.0) return result;
  // Label smoothing: (1 - eps) nll + eps / C * (-sum_c w_c logp_c), reduced like nll.
  Tensor smooth =
      -(weight.defined() ? logp * weight.to(logp.dtype()).view(wshape) : logp).sum(class_dim);
  if (t.any_ignored) smooth = smooth * t.keep;
  Tensor smooth_red;
  if (options.reduction().index() == 1) {
    smooth_red = w.defined() ? smooth.sum() / w.sum() : smooth.mean();
  } else {
    smooth_red = reduce(smooth, options.reduction());
  }
  return result * (1.0 - eps) + smooth_red * (eps / static_cast<double>(classes));
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target,
                            const BinaryCrossEntropyFuncOptions& options) {
  const char* op = "binary_cross_entropy";
  check_same_sizes(op, input, target);
  check_float(op, target, "target");
  if (input.numel() > 0) {
    const double lo = input.min().item<double>(), hi = input.max().item<double>();
    KILN_CHECK(lo >= 0.0 && hi <= 1.0,
               "[binary_cross_entropy] got input values in [{}, {}], expected probabilities in "
               "[0, 1] (use binary_cross_entropy_with_logits for logits)",
               lo, hi);
  }
  // Logs clamped at -100 so that a probability of exactly 0 or 1 gives a finite loss.
  Tensor log_p = kiln::log(input).clamp_min(-100.0);
  Tensor log_q = kiln::log(1.0 - input).clamp_min(-100.0);
  Tensor loss = -(target * log_p + (1.0 - target) * log_q);
  if (options.weight().defined()) loss = loss * options.weight();
  return reduce(loss, options.reduction());
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BinaryCrossEntropyWithLogitsFuncOptions& options) {
  const char* op = "binary_cross_entropy_with_logits";
  check_same_sizes(op, input, target);
  check_float(op, target, "target");
  // softplus(-x) = -log(sigmoid(x)) = log1p(exp(-|x|)) + max(-x, 0), stable for any x.
  Tensor softplus_neg = kiln::log1p(kiln::exp(-kiln::abs(input))) + kiln::relu(-input);
  const Tensor& pw = options.pos_weight();
  Tensor loss;
  if (pw.defined()) {
    KILN_CHECK(pw.dim() == 0 || (input.dim() >= 1 && pw.sizes().equals({input.size(-1)})) ||
                   pw.sizes().equals(input.sizes()),
               "[{}] got pos_weight sizes {}, expected [{}] (one per class) for input sizes {}", op,
               shape_str(pw.sizes()), input.dim() >= 1 ? input.size(-1) : 1,
               shape_str(input.sizes()));
    Tensor log_weight = (pw - 1.0) * target + 1.0;
    loss = (1.0 - target) * input + log_weight * softplus_neg;
  } else {
    loss = (1.0 - target) * input + softplus_neg;
  }
  if (options.weight().defined()) loss = loss * options.weight();
  return reduce(loss, options.reduction());
}

}  // namespace kiln::nn::functional
