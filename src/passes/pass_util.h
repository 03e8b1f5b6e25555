// Helpers the passes share (internal to src/passes): reading constant arguments, the traits that
// decide what a pass may touch (random draws, observable memory layout, bitwise commutativity),
// refining types, and walking blocks. Nothing here rewrites a graph on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/ivalue.h"
#include "kiln/ops/op_kind.h"

namespace kiln::passes::detail {

/// The value of v when a `constant` node defines it; nullptr otherwise.
const IValue* constant_of(const ir::Value* v);
/// v's value when it is a constant int / bool / number (int, float or bool).
std::optional<int64_t> constant_int(const ir::Value* v);
std::optional<bool> constant_bool(const ir::Value* v);
std::optional<double> constant_number(const ir::Value* v);
/// v's value when it is a constant int[] or a list_construct of constant ints.
std::optional<std::vector<int64_t>> constant_int_list(const ir::Value* v);
/// The elements of v when a list_construct defines it.
std::optional<std::vector<const ir::Value*>> list_elements(const ir::Value* v);

/// True for ops with kRandom and for nodes whose blocks contain one: such nodes are never
/// removed, merged, folded or executed a different number of times.
bool draws_random(const ir::Node* n);

/// True when a and b are the same constant bit for bit: same kind, floats by their bits (0.0
/// and -0.0 differ, a NaN equals itself), tensors by dtype, sizes and element bits.
bool same_constant(const IValue& a, const IValue& b);

/// True when op(a, b) and op(b, a) give the same bits. maximum and minimum are kCommutative in
/// ops.def but return their second operand for equal values, which differ for -0.0 / +0.0 and
/// NaN payloads, so they are excluded here.
bool bitwise_commutative(ops::OpKind k);

/// The meet of two types of one value: every fact of either (both hold). Where they disagree
/// the declared fact wins; a static size wins over a symbol.
ir::Type refine(const ir::Type& declared, const ir::Type& inferred);

/// True when the memory layout (strides, storage offset, aliasing) of v's tensor can be
/// observed: v, a view of it, or a value it flows into through control flow or a sub-graph is
/// read by as_strided.
bool layout_observed(const ir::Value* v);
/// True when v becomes an output of the graph (directly or through if/loop outputs).
bool reaches_graph_output(const ir::Value* v);
/// True when v may share memory with a graph input: a block input, a view, a cast (which
/// returns its input unchanged for the same dtype) or a control-flow output.
bool may_alias_input(const ir::Value* v);

/// True when every use of `from` would accept `to` instead: op inputs take any value of the
/// right kind; a value returned from a block, passed into a loop or sub-graph, or put into a
/// list or tuple must fit the type declared there.
bool can_substitute(const ir::Value* from, const ir::Value* to);

/// Calls fn on b and every block nested in it, outer blocks first. fn may rewrite the block it
/// is given but not remove its owner.
void for_each_block(ir::Block* b, const std::function<void(ir::Block*)>& fn);
/// Number of nodes in b, nested blocks included.
int64_t count_nodes(const ir::Block* b);

/// True when n is an op node of kind k.
bool is_op(const ir::Node* n, ops::OpKind k);
/// v's dtype / static sizes, when v is a tensor whose type records them.
std::optional<ScalarType> dtype_of(const ir::Value* v);
std::optional<std::vector<int64_t>> static_sizes(const ir::Value* v);
/// True when v is a tensor whose type says contiguous.
bool is_contiguous(const ir::Value* v);
/// The number of elements of a tensor of these sizes.
int64_t numel(const std::vector<int64_t>& sizes);

/// Inserts a constant node holding v just before `before`, with before's source location.
ir::Value* insert_constant(ir::Node* before, IValue v);

/// Builds nodes just before one node, each op typed by the shape rules (infer_output_types),
/// and can take all of them back when a rewrite turns out not to apply.
class NodeInserter {
 public:
  explicit NodeInserter(ir::Node* before) : before_(before) {}
  ir::Value* constant(IValue v);
  ir::Value* list(const std::vector<ir::Value*>& elems);
  /// A single-output op node.
  ir::Value* op(ops::OpKind k, const std::vector<ir::Value*>& inputs);
  /// Destroys every node inserted so far, last first (nothing else may use them).
  void undo();
  /// Finishes a rewrite: when `to` has from's static sizes and dtype and every use of `from`
  /// accepts it, replaces them with `to` and returns true; otherwise undo()es and returns false.
  bool replace(ir::Value* from, ir::Value* to);

 private:
  ir::Node* before_;
  std::vector<ir::Node*> added_;
};

}  // namespace kiln::passes::detail
