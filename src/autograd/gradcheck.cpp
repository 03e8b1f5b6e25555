// gradcheck: the analytical Jacobian (one backward pass per output element, by one-hot
// grad_outputs) against central finite differences, element by element; optionally the same
// for the vector-Jacobian product itself (second derivatives).
#include <cmath>

#include "kiln/autograd/autograd.h"
#include "kiln/functions.h"

namespace kiln::autograd {
namespace {

std::vector<double> flat_values(const Tensor& t) {
  Tensor d = t.detach().to(kDouble).contiguous();
  const double* p = d.data_ptr<double>();
  return std::vector<double>(p, p + d.numel());
}

// Copies of the inputs with one element of one input moved by delta (same requires_grad).
variable_list perturbed(const variable_list& inputs, size_t which, int64_t k, double delta) {
  NoGradGuard no_grad;
  variable_list out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined()) {
      out.push_back(x);
      continue;
    }
    Tensor c = x.detach().clone();
    if (i == which) {
      Tensor e = c.view({-1})[k];
      e.fill_(e.item<double>() + delta);
    }
    if (x.requires_grad()) c.requires_grad_(true);
    out.push_back(c);
  }
  return out;
}

bool check_first_order(const std::function<variable_list(const variable_list&)>& fn,
                       const variable_list& inputs, const GradcheckOptions& o) {
  std::vector<size_t> diff;
  variable_list diff_inputs;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      diff.push_back(i);
      diff_inputs.push_back(inputs[i]);
    }
  KILN_CHECK(!diff.empty(), "[gradcheck] no input requires grad: nothing to check");
  variable_list outs = fn(inputs);
  // analytical[o][j][d] = d out_o[j] / d input_d (flattened)
  std::vector<std::vector<std::vector<std::vector<double>>>> analytical(outs.size());
  for (size_t oi = 0; oi < outs.size(); ++oi) {
    const Tensor& out = outs[oi];
    if (!out.defined() || !is_floating_point(out.dtype())) continue;
    analytical[oi].resize(out.numel());
    if (!out.requires_grad()) {
      for (auto& row : analytical[oi]) {
        row.resize(diff.size());
        for (size_t d = 0; d < diff.size(); ++d)
          row[d].assign(diff_inputs[d].numel(), 0.0);
      }
      continue;
    }
    for (int64_t j = 0; j < out.numel(); ++j) {
      variable_list gos;
      for (size_t q = 0; q < outs.size(); ++q) {
        if (!outs[q].defined() || !outs[q].requires_grad()) continue;
        Tensor g = zeros_like(outs[q]);
        if (q == oi) {
          NoGradGuard ng;
          g.view({-1})[j].fill_(1);
        }
        gos.push_back(g);
      }
      variable_list roots;
      for (const Tensor& t : outs)
        if (t.defined() && t.requires_grad()) roots.push_back(t);
      variable_list grads = grad(roots, diff_inputs, gos, /*retain_graph=*/true, false, true);
      auto& row = analytical[oi][j];
      for (size_t d = 0; d < diff.size(); ++d)
        row.push_back(grads[d].defined() ? flat_values(grads[d])
                                         : std::vector<double>(diff_inputs[d].numel(), 0.0));
    }
  }
  for (size_t d = 0; d < diff.size(); ++d) {
    const size_t i = diff[d];
    for (int64_t k = 0; k < inputs[i].numel(); ++k) {
      variable_list plus = fn(perturbed(inputs, i, k, o.eps));
      variable_list minus = fn(perturbed(inputs, i, k, -o.eps));
      for (size_t oi = 0; oi < outs.size(); ++oi) {
        if (analytical[oi].empty()) continue;
        std::vector<double> fp = flat_values(plus[oi]), fm = flat_values(minus[oi]);
        for (size_t j = 0; j < fp.size(); ++j) {
          const double num = (fp[j] - fm[j]) / (2 * o.eps);
          const double ana = analytical[oi][j][d][k];
          const bool ok = std::abs(num - ana) <= o.atol + o.rtol * std::abs(num) ||
                          (std::isnan(num) && std::isnan(ana));
          if (ok) continue;
          if (!o.raise_exception) return false;
          KILN_FAIL(
              "[gradcheck] Jacobian mismatch for output {} element {} with respect to input {} "
              "element {}: numerical {}, analytical {} (eps {}, atol {}, rtol {}); input {} "
              "has sizes {}",
              oi, j, i, k, num, ana, o.eps, o.atol, o.rtol, i, shape_str(inputs[i].sizes()));
        }
      }
    }
  }
  return true;
}

}  // namespace

bool gradcheck(const std::function<variable_list(const variable_list&)>& fn,
               const variable_list& inputs, const GradcheckOptions& options) {
  if (!check_first_order(fn, inputs, options)) return false;
  if (!options.check_grad_grad) return true;
  // Second order: the vector-Jacobian product for fixed random v, as a function of the inputs.
  variable_list outs = fn(inputs);
  variable_list vs;
  for (const Tensor& t : outs)
    if (t.defined() && t.requires_grad()) vs.push_back(randn_like(t).detach());
  auto vjp = [&](const variable_list& xs) {
    variable_list diff;
    for (const Tensor& x : xs)
      if (x.defined() && x.requires_grad()) diff.push_back(x);
    variable_list os = fn(xs), roots;
    for (const Tensor& t : os)
      if (t.defined() && t.requires_grad()) roots.push_back(t);
    variable_list g = grad(roots, diff, vs, true, /*create_graph=*/true, true);
    for (size_t i = 0; i < g.size(); ++i)
      if (!g[i].defined()) g[i] = zeros_like(diff[i]);
    return g;
  };
  return check_first_order(vjp, inputs, options);
}

}  // namespace kiln::autograd
