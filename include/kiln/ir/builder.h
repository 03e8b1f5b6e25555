// ir::Builder: writes graphs from C++ with structured control flow, the way tests, passes and
// (later) the script frontend build IR. Arguments of ops may be Values or plain C++ literals,
// which become constant nodes; every node remembers the file:line of the builder call.
//
//   ir::Graph g;
//   ir::Builder b(g);
//   ir::Value* x = b.input(ir::tensor_type(kFloat, {2, 3}), "x");
//   ir::Value* s = b.op(ops::OpKind::Sum, {x, std::vector<int64_t>{1}, false});
//   auto r = b.if_(b.op(...cond...), [&](ir::Builder& t) { return std::vector{t.op(...)}; },
//                                  [&](ir::Builder& e) { return std::vector{s}; });
//   b.ret({r[0]});
#pragma once

#include <functional>
#include <optional>
#include <source_location>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::ir {

/// A C++ value Builder::op accepts as a literal argument (anything an IValue holds).
template <typename T>
concept LiteralArg = std::is_constructible_v<IValue, T> && !std::is_convertible_v<T, Value*>;

/// One argument of Builder::op: a Value of the graph, or a literal (int, double, bool, int list,
/// dtype, device, tensor, None) that the builder turns into a constant node.
class Arg {
 public:
  Arg(Value* v) : value_(v) {}  // NOLINT
  template <LiteralArg T>
  Arg(T&& literal) : literal_(IValue(std::forward<T>(literal))) {}  // NOLINT

  Value* value() const { return value_; }
  const IValue& literal() const { return literal_; }

 private:
  Value* value_ = nullptr;
  IValue literal_;
};

class Builder {
 public:
  using Values = std::vector<Value*>;
  /// Builds one branch of an if: returns the branch's outputs.
  using BranchFn = std::function<Values(Builder&)>;
  /// Builds a loop body from the iteration number and the carried values: returns the carried
  /// values of the next iteration.
  using LoopBodyFn = std::function<Values(Builder&, Value* i, const Values& carried)>;
  /// Builds an isolated sub-graph from its inputs: returns its outputs.
  using SubgraphFn = std::function<Values(Builder&, const Values& inputs)>;

  /// Appends nodes at the end of g's top block.
  explicit Builder(Graph& g);
  /// Appends nodes at the end of block (a block of g).
  Builder(Graph& g, Block* block);

  Graph& graph() const { return *graph_; }
  Block* block() const { return block_; }

  /// Adds an input to the graph (only from a builder on the top block).
  Value* input(Type t, std::string name = {});
  /// Sets the outputs of the builder's block (for the top block: the graph's outputs).
  void ret(const Values& values);

  /// A constant node holding v.
  Value* constant(IValue v, std::source_location loc = std::source_location::current());
  /// A primitive of the op table with one result. Arguments follow the op's schema; the arity
  /// and the type of each argument are checked (kiln::Error naming the op and the argument).
  /// The output's type is out_type, or the least precise type of the schema's result (a
  /// shape/dtype pass refines it).
  Value* op(ops::OpKind kind, const std::vector<Arg>& args, std::optional<Type> out_type = {},
            std::source_location loc = std::source_location::current());
  /// The same for ops with several results (sort, topk).
  Values op_n(ops::OpKind kind, const std::vector<Arg>& args, std::vector<Type> out_types = {},
              std::source_location loc = std::source_location::current());

  /// if (cond) then_fn else else_fn; the outputs' types unify the branches' (kiln::Error when the
  /// branches return different numbers of values or values of incompatible types).
  Values if_(Value* cond, const BranchFn& then_fn, const BranchFn& else_fn,
             std::source_location loc = std::source_location::current());
  /// for i in range(trip_count): carried = body(i, carried); returns the final carried values.
  /// The carried values have the types carried_types. By default a tensor is carried as plain
  /// `Tensor` (the body may change its dtype or sizes; a shape pass refines it) and any other
  /// value with its initial type. A body result that does not fit throws kiln::Error.
  Values loop(Value* trip_count, const Values& init, const LoopBodyFn& body,
              std::vector<Type> carried_types = {},
              std::source_location loc = std::source_location::current());
  /// A fusion group: an isolated sub-graph over inputs.
  Values fusion_group(const Values& inputs, const SubgraphFn& body,
                      std::source_location loc = std::source_location::current());
  /// A call of an isolated sub-graph named name (the inliner replaces it by its body).
  Values call(std::string name, const Values& inputs, const SubgraphFn& body,
              std::source_location loc = std::source_location::current());

  Value* tuple(const Values& elems, std::source_location loc = std::source_location::current());
  Values tuple_unpack(Value* tuple, std::source_location loc = std::source_location::current());
  /// A list of elems; its element type is elem_type or the unified type of the elements.
  Value* list(const Values& elems, std::optional<Type> elem_type = {},
              std::source_location loc = std::source_location::current());
  /// The n elements of a list (the interpreter checks n when it runs).
  Values list_unpack(Value* list, size_t n,
                     std::source_location loc = std::source_location::current());

  /// Inserts a detached node (e.g. from Graph::create) at the builder's position.
  Node* insert(Node* n, std::source_location loc = std::source_location::current());

 private:
  Node* sub_graph(NodeKind kind, const Values& inputs, const SubgraphFn& body,
                  std::source_location loc);
  Graph* graph_;
  Block* block_;
};

}  // namespace kiln::ir
