// Reverse-mode automatic differentiation, libtorch's torch::autograd API: backward() and grad()
// over the graph that recorded ops build, higher-order gradients (create_graph), and gradcheck.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/node.h"
#include "kiln/tensor.h"

namespace kiln::autograd {

/// Accumulates gradients of tensors (sum of them, each weighted by its grad_tensors entry)
/// into the .grad() of the leaves they depend on. A scalar tensor may omit its gradient.
/// With inputs, only those leaves accumulate. retain_graph defaults to create_graph.
void backward(const variable_list& tensors, const variable_list& grad_tensors = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
              const variable_list& inputs = {});

/// The gradients of outputs (weighted by grad_outputs) with respect to inputs, without touching
/// any .grad(). create_graph records the backward pass itself, for higher-order gradients.
/// An input the outputs do not depend on throws unless allow_unused (then it is undefined).
variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs = {},
                   std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                   bool allow_unused = false);

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // |numerical - analytical| <= atol + rtol * |numerical|
  double rtol = 1e-3;
  /// Throw kiln::Error describing the first mismatch (else just return false).
  bool raise_exception = true;
  /// Also check second derivatives (gradgradcheck): grad of the vector-Jacobian product.
  bool check_grad_grad = false;
};

/// Compares the analytical Jacobian of fn (by backward passes) with central finite differences,
/// for every input that requires grad. Inputs should be float64. Returns true when they agree.
bool gradcheck(const std::function<variable_list(const variable_list&)>& fn,
               const variable_list& inputs, const GradcheckOptions& options = {});

}  // namespace kiln::autograd
