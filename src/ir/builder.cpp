// ir::Builder (see builder.h): appends nodes to a block, turning literals into constants, checking
// op arguments against the op's schema as they are added, and building if/loop/sub-graph blocks
// through nested builders.
#include "kiln/ir/builder.h"

#include "kiln/core/error.h"
#include "kiln/ir/printer.h"

namespace kiln::ir {
namespace {

SourceLoc from(const std::source_location& loc) {
  return SourceLoc{loc.file_name(), loc.line(), 0, "builder"};
}

}  // namespace

Builder::Builder(Graph& g) : graph_(&g), block_(g.block()) {}
Builder::Builder(Graph& g, Block* block) : graph_(&g), block_(block) {
  KILN_ASSERT(block->owning_graph() == &g, "Builder: the block belongs to another graph");
}

Value* Builder::input(Type t, std::string name) {
  KILN_CHECK(block_ == graph_->block(),
             "[ir.builder] input() adds graph inputs: use the builder of the top block");
  return graph_->add_input(std::move(t), std::move(name));
}

void Builder::ret(const Values& values) {
  KILN_CHECK(block_->outputs().empty(), "[ir.builder] ret() called twice on one block");
  for (Value* v : values) block_->register_output(v);
}

Node* Builder::insert(Node* n, std::source_location loc) {
  block_->append_node(n);
  if (!n->loc().known()) n->set_loc(from(loc));
  return n;
}

Value* Builder::constant(IValue v, std::source_location loc) {
  return insert(graph_->create_constant(std::move(v)), loc)->output();
}

Builder::Values Builder::op_n(ops::OpKind kind, const std::vector<Arg>& args,
                              std::vector<Type> out_types, std::source_location loc) {
  const ops::Schema& s = ops::op_schema(kind);
  const ops::OpInfo& info = ops::op_info(kind);
  const SourceLoc where = from(loc);
  KILN_CHECK(args.size() == s.params.size(),
             "[ir.builder] {}: got {} arguments, expected {} "
             "(schema {}) at {}",
             info.name, args.size(), s.params.size(), info.schema, where.str());
  Values inputs;
  for (size_t i = 0; i < args.size(); ++i) {
    Value* v = args[i].value() != nullptr ? args[i].value() : constant(args[i].literal(), loc);
    KILN_CHECK(v->owning_graph() == graph_,
               "[ir.builder] {}: argument {} is a value of another "
               "graph",
               info.name, i);
    KILN_CHECK(accepts(s.params[i].type, v->type()),
               "[ir.builder] {}: argument {} ('{}') has type {}, expected {} (schema {}) at {}",
               info.name, i, s.params[i].name, v->type().str(),
               ops::arg_type_name(s.params[i].type), info.schema, where.str());
    inputs.push_back(v);
  }
  if (out_types.empty())
    for (ops::ArgType r : s.returns) out_types.push_back(type_for_result(r));
  KILN_CHECK(out_types.size() == s.returns.size(),
             "[ir.builder] {}: got {} output types, the op has {} results", info.name,
             out_types.size(), s.returns.size());
  Node* n = insert(graph_->create(kind, inputs, out_types), loc);
  return n->outputs();
}

Value* Builder::op(ops::OpKind kind, const std::vector<Arg>& args, std::optional<Type> out_type,
                   std::source_location loc) {
  std::vector<Type> types;
  if (out_type) types.push_back(*out_type);
  Values outs = op_n(kind, args, std::move(types), loc);
  KILN_CHECK(outs.size() == 1, "[ir.builder] {} has {} results: use op_n", ops::op_info(kind).name,
             outs.size());
  return outs[0];
}

Builder::Values Builder::if_(Value* cond, const BranchFn& then_fn, const BranchFn& else_fn,
                             std::source_location loc) {
  KILN_CHECK(cond->type().kind() == TypeKind::Bool,
             "[ir.builder] if_: the condition has type {}, expected bool at {}", cond->type().str(),
             from(loc).str());
  Node* n = insert(graph_->create(Prim::If, {cond}), loc);
  Builder then_b(*graph_, n->add_block());
  Builder else_b(*graph_, n->add_block());
  const Values t = then_fn(then_b);
  const Values e = else_fn(else_b);
  KILN_CHECK(t.size() == e.size(), "[ir.builder] if_: the branches return {} and {} values at {}",
             t.size(), e.size(), from(loc).str());
  then_b.ret(t);
  else_b.ret(e);
  for (size_t i = 0; i < t.size(); ++i) {
    auto u = unify(t[i]->type(), e[i]->type());
    KILN_CHECK(u.has_value(),
               "[ir.builder] if_: output {} is {} in the then branch and {} in the else branch, "
               "which do not unify, at {}",
               i, t[i]->type().str(), e[i]->type().str(), from(loc).str());
    n->add_output(*u);
  }
  return n->outputs();
}

Builder::Values Builder::loop(Value* trip_count, const Values& init, const LoopBodyFn& body,
                              std::vector<Type> carried_types, std::source_location loc) {
  const SourceLoc where = from(loc);
  KILN_CHECK(trip_count->type().kind() == TypeKind::Int,
             "[ir.builder] loop: the trip count has type {}, expected int at {}",
             trip_count->type().str(), where.str());
  if (carried_types.empty())
    for (Value* v : init)
      carried_types.push_back(v->type().is_tensor() ? tensor_type() : v->type());
  KILN_CHECK(carried_types.size() == init.size(),
             "[ir.builder] loop: got {} carried types for {} carried values at {}",
             carried_types.size(), init.size(), where.str());
  for (size_t k = 0; k < init.size(); ++k)
    KILN_CHECK(is_subtype_of(init[k]->type(), carried_types[k]),
               "[ir.builder] loop: initial value {} has type {}, which does not fit its carried "
               "type {} at {}",
               k, init[k]->type().str(), carried_types[k].str(), where.str());
  Values ins = {trip_count};
  ins.insert(ins.end(), init.begin(), init.end());
  Node* n = insert(graph_->create(Prim::Loop, ins), loc);
  Block* b = n->add_block();
  Value* i = b->add_input(int_type());
  Values carried;
  for (const Type& t : carried_types) carried.push_back(b->add_input(t));
  Builder body_b(*graph_, b);
  const Values next = body(body_b, i, carried);
  KILN_CHECK(next.size() == init.size(),
             "[ir.builder] loop: the body returns {} values, expected {} carried values at {}",
             next.size(), init.size(), where.str());
  for (size_t k = 0; k < init.size(); ++k)
    KILN_CHECK(is_subtype_of(next[k]->type(), carried_types[k]),
               "[ir.builder] loop: the body returns {} for carried value {}, which does not fit "
               "its carried type {} (pass carried_types) at {}",
               next[k]->type().str(), k, carried_types[k].str(), where.str());
  body_b.ret(next);
  for (const Type& t : carried_types) n->add_output(t);
  return n->outputs();
}

Node* Builder::sub_graph(NodeKind kind, const Values& inputs, const SubgraphFn& body,
                         std::source_location loc) {
  Node* n = insert(graph_->create(kind, inputs), loc);
  Block* b = n->add_block();
  Values params;
  for (Value* v : inputs) params.push_back(b->add_input(v->type()));
  Builder sub(*graph_, b);
  const Values outs = body(sub, params);
  sub.ret(outs);
  for (Value* v : outs) n->add_output(v->type());
  return n;
}

Builder::Values Builder::fusion_group(const Values& inputs, const SubgraphFn& body,
                                      std::source_location loc) {
  return sub_graph(Prim::FusionGroup, inputs, body, loc)->outputs();
}

Builder::Values Builder::call(std::string name, const Values& inputs, const SubgraphFn& body,
                              std::source_location loc) {
  Node* n = sub_graph(Prim::Call, inputs, body, loc);
  n->set_attr("name", IValue(std::move(name)));
  return n->outputs();
}

Value* Builder::tuple(const Values& elems, std::source_location loc) {
  std::vector<Type> types;
  for (Value* v : elems) types.push_back(v->type());
  return insert(graph_->create(Prim::TupleConstruct, elems, {tuple_type(std::move(types))}), loc)
      ->output();
}

Builder::Values Builder::tuple_unpack(Value* tuple, std::source_location loc) {
  KILN_CHECK(tuple->type().is_tuple(), "[ir.builder] tuple_unpack: got a {}, expected a tuple",
             tuple->type().str());
  return insert(graph_->create(Prim::TupleUnpack, {tuple}, tuple->type().elems()), loc)->outputs();
}

Value* Builder::list(const Values& elems, std::optional<Type> elem_type, std::source_location loc) {
  if (!elem_type) {
    for (Value* v : elems) {
      elem_type = elem_type ? unify(*elem_type, v->type()) : std::optional<Type>(v->type());
      KILN_CHECK(elem_type.has_value(), "[ir.builder] list: elements of incompatible types at {}",
                 from(loc).str());
    }
    KILN_CHECK(elem_type.has_value(),
               "[ir.builder] list: an empty list needs its element type at {}", from(loc).str());
  }
  return insert(graph_->create(Prim::ListConstruct, elems, {list_type(*elem_type)}), loc)->output();
}

Builder::Values Builder::list_unpack(Value* list, size_t n, std::source_location loc) {
  KILN_CHECK(list->type().is_list(), "[ir.builder] list_unpack: got a {}, expected a list",
             list->type().str());
  return insert(graph_->create(Prim::ListUnpack, {list}, std::vector<Type>(n, list->type().elem())),
                loc)
      ->outputs();
}

}  // namespace kiln::ir
