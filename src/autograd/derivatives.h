// The derivative formulas of the op table's primitives (derivatives.cpp), written as tensor ops
// so the same formula runs in eager backward, records itself under create_graph, and traces
// into IR for graph autodiff. GradCtx is the formula's view of one recorded call.
#pragma once

#include <vector>

#include "autograd/meta.h"
#include "kiln/ivalue.h"
#include "kiln/ops/op_kind.h"

namespace kiln::autograd {

class GradCtx {
 public:
  GradCtx(OpNode& node, const std::shared_ptr<Node>& self, variable_list& grads_in,
          variable_list& grads_out)
      : node_(node), self_(self), gin_(grads_in), gout_(grads_out) {}

  /// A non-tensor argument (int, list, scalar, ...), as recorded.
  const IValue& arg(size_t i) const { return node_.args[i]; }
  /// Whether argument i was a tensor (Operand arguments may be numbers).
  bool is_tensor(size_t i) const { return node_.slot_of[i] >= 0; }
  /// The saved value of tensor argument i (its formula must have asked to save it).
  Tensor tensor(size_t i) const;
  /// A tensor argument, or a number argument as a 0-dim tensor of dtype `like`.
  Tensor operand(size_t i, ScalarType like) const;
  /// Sizes / dtype of tensor argument i (always known, saved or not).
  IntArrayRef sizes(size_t i) const { return meta(i).sizes; }
  ScalarType dtype(size_t i) const { return meta(i).dtype; }
  const OutputMeta& meta(size_t i) const { return node_.arg_meta[node_.slot_of[i]]; }
  /// Result k of the forward call (formula must have asked to save results).
  Tensor result(size_t k = 0) const;
  /// Gradient of result k; undefined when none reached it.
  const Tensor& grad(size_t k = 0) const { return gin_[k]; }
  /// Whether tensor argument i needs a gradient.
  bool needs(size_t i) const {
    return is_tensor(i) && node_.next_edges()[node_.slot_of[i]].is_valid();
  }
  void set(size_t i, Tensor g) { gout_[node_.slot_of[i]] = std::move(g); }
  // Tensor-list arguments: element j of argument i.
  size_t list_size(size_t i) const { return node_.list_len[i]; }
  bool needs_elem(size_t i, size_t j) const {
    return node_.next_edges()[node_.slot_of[i] + j].is_valid();
  }
  const OutputMeta& elem_meta(size_t i, size_t j) const {
    return node_.arg_meta[node_.slot_of[i] + j];
  }
  void set_elem(size_t i, size_t j, Tensor g) { gout_[node_.slot_of[i] + j] = std::move(g); }

 private:
  OpNode& node_;
  const std::shared_ptr<Node>& self_;
  variable_list& gin_;
  variable_list& gout_;
};

/// A primitive's derivative: which arguments (bit i: argument i) and whether the results its
/// formula reads must be saved, and the formula itself.
struct Derivative {
  uint32_t save_args = 0;
  bool save_results = false;
  void (*backward)(GradCtx&) = nullptr;
};

/// The derivative of a primitive; nullptr for ops marked kNonDiff in ops.def.
const Derivative* derivative_of(ops::OpKind kind);

}  // namespace kiln::autograd
