// The backward graph: a Node per recorded op (its grad_fn), Edges to the nodes of its inputs.
// Built by the autograd recorder from the op table's derivative formulas; run by the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln::autograd {

using variable_list = std::vector<Tensor>;

class Node;

/// Where a gradient goes: input slot input_nr of function (invalid when function is null).
struct Edge {
  std::shared_ptr<Node> function;
  uint32_t input_nr = 0;
  bool is_valid() const { return function != nullptr; }
};

/// Sizes, dtype and device of one forward output of a node (to make zero gradients).
struct OutputMeta {
  std::vector<int64_t> sizes;
  ScalarType dtype = kFloat;
  Device device = Device(kCPU);
};

/// A function of the backward graph: maps gradients of its forward outputs to gradients of its
/// forward inputs, which flow along next_edges().
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Gradients of the inputs (one per next edge; undefined means zero) from the gradients of
  /// the outputs (one per forward output; undefined means zero).
  virtual variable_list apply(variable_list&& grad_outputs) = 0;
  /// "MulBackward", "AccumulateGrad", ... (libtorch's names).
  virtual std::string name() const = 0;
  /// Frees saved tensors after a backward pass without retain_graph.
  virtual void release_variables() {}

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  std::vector<Edge>& mutable_next_edges() { return next_edges_; }
  const Edge& next_edge(size_t i) const { return next_edges_[i]; }
  size_t num_outputs() const { return next_edges_.size(); }
  /// Forward outputs of this node (gradients it receives).
  size_t num_inputs() const { return output_meta_.size(); }
  const std::vector<OutputMeta>& output_meta() const { return output_meta_; }
  void add_output_meta(const Tensor& t);
  /// Creation order: later nodes run first when both are ready (libtorch's sequence_nr).
  uint64_t sequence_nr() const { return sequence_nr_; }

  /// Hooks on the gradient of forward output k, run before apply() (tensor hooks).
  using GradHook = std::function<Tensor(const Tensor&)>;
  unsigned add_pre_hook(uint32_t output_nr, GradHook hook);
  void remove_pre_hook(unsigned id);
  /// Runs the hooks of output k over grad; returns the (possibly replaced) gradient.
  Tensor run_pre_hooks(uint32_t output_nr, Tensor grad) const;
  bool has_pre_hooks() const { return !pre_hooks_.empty(); }

 protected:
  std::vector<Edge> next_edges_;
  std::vector<OutputMeta> output_meta_;

 private:
  struct PreHook {
    unsigned id;
    uint32_t output_nr;
    GradHook fn;
  };
  std::vector<PreHook> pre_hooks_;
  uint64_t sequence_nr_;
};

}  // namespace kiln::autograd
