// Autograd internals: the per-tensor AutogradMeta, saved tensors with version checks, the node
// kinds the recorder builds (one per recorded primitive, AccumulateGrad for leaves, CopySlices
// for in-place writes through views) and the helpers that wire tensors into the graph.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/autograd/node.h"
#include "kiln/ivalue.h"
#include "kiln/ops/op_kind.h"
#include "kiln/tensor.h"

namespace kiln::autograd {

/// Per-tensor autograd state, hung off TensorImpl::autograd_meta. requires_grad itself lives in
/// the TensorImpl so the eager fast path can test it without touching this.
struct AutogradMeta {
  Tensor grad;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  uint32_t output_nr = 0;
  std::weak_ptr<Node> grad_accumulator;  // leaves: their AccumulateGrad, made on first use
  bool retains_grad = false;
  unsigned retain_hook = 0;
  // Hooks registered on a leaf (non-leaves put them on grad_fn as pre-hooks).
  std::vector<std::pair<unsigned, Node::GradHook>> leaf_hooks;
  // Views recorded while their base required grad: the base (never itself a view) and the
  // geometry of this view in the base's storage, for in-place writes through the view.
  bool is_view = false;
  Tensor base;
};

/// The meta of t, created on demand.
AutogradMeta& meta_of(const Tensor& t);
/// The meta of t or null.
AutogradMeta* meta_if(const Tensor& t);

/// The edge a gradient for t should flow along: its grad_fn, or its AccumulateGrad when t is a
/// leaf requiring grad; invalid when t does not require grad.
Edge gradient_edge(const Tensor& t);
/// The AccumulateGrad node of a leaf requiring grad (one per leaf, shared).
std::shared_ptr<Node> grad_accumulator(const Tensor& leaf);
/// Makes t output output_nr of fn (and sets requires_grad).
void set_history(const Tensor& t, const std::shared_ptr<Node>& fn, uint32_t output_nr);

/// A tensor kept for backward. Inputs are kept as they are (so create_graph can differentiate
/// through them); outputs of the saving node are kept without their history (that would be a
/// reference cycle) and get it back when unpacked.
class SavedVariable {
 public:
  SavedVariable() = default;
  SavedVariable(const Tensor& t, bool is_output);
  /// The saved tensor; throws kiln::Error if it was modified in place since it was saved.
  /// node is the saving node (needed to restore an output's history).
  Tensor unpack(const std::shared_ptr<Node>& node, std::string_view op,
                std::string_view what) const;
  bool defined() const { return data_.defined(); }
  void reset() {
    data_ = Tensor();
    released_ = true;
  }
  bool released() const { return released_; }

 private:
  Tensor data_;
  uint32_t version_ = 0;
  uint32_t output_nr_ = 0;
  bool is_output_ = false;
  bool requires_grad_ = false;
  bool released_ = false;
};

/// Gradient accumulation into a leaf's .grad().
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf);
  variable_list apply(variable_list&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  const Tensor& variable() const { return leaf_; }

 private:
  Tensor leaf_;
};

/// Node of one recorded primitive: runs its derivative formula (derivatives.cpp).
class OpNode : public Node {
 public:
  OpNode(ops::OpKind kind, size_t num_slots);
  variable_list apply(variable_list&& grads) override;
  std::string name() const override;
  void release_variables() override;

  ops::OpKind kind;
  // The call's arguments; tensors that the formula needs are in saved_args, the rest are
  // replaced by None. slot_of[i] is the first input slot of argument i (tensor lists take one
  // slot per element), or -1 for non-tensor arguments.
  std::vector<IValue> args;
  std::vector<SavedVariable> saved_args;  // indexed like args
  std::vector<OutputMeta> arg_meta;       // per slot: sizes/dtype of each tensor input
  std::vector<int> slot_of;
  std::vector<size_t> list_len;  // per argument: elements of a tensor list (0 otherwise)
  std::vector<SavedVariable> saved_results;
  bool released = false;
};

/// A write through a view: gradient of the base is split into the written region (handed to
/// fn, the node of the in-place op) and the rest (to the base's previous history).
class CopySlices : public Node {
 public:
  CopySlices(const Tensor& base, const Tensor& view, std::shared_ptr<Node> fn,
             const Edge& base_edge);
  variable_list apply(variable_list&& grads) override;
  std::string name() const override { return "CopySlices"; }
  void release_variables() override { fn_->release_variables(); }

 private:
  std::vector<int64_t> base_sizes_, base_strides_;
  std::vector<int64_t> view_sizes_, view_strides_;
  int64_t view_offset_;  // relative to the base's storage offset
  ScalarType dtype_;
  std::shared_ptr<Node> fn_;
};

/// Installs the recorder (the autograd observer of the dispatch hook). Idempotent.
void install_recorder();

/// Runs the backward graph from roots (engine.cpp). When capture is non-empty, returns the
/// gradients flowing into those edges instead of accumulating into leaves.
variable_list run_backward(const variable_list& roots, const variable_list& grad_roots,
                           bool keep_graph, bool create_graph,
                           const std::vector<Edge>& capture, bool accumulate);

/// sizes that g must be summed down to (undoing broadcasting).
Tensor sum_to(const Tensor& g, IntArrayRef sizes);

}  // namespace kiln::autograd
