// The IR verifier (see verifier.h): one walk over the blocks in order, keeping the set of values
// visible at each point, checking every node against its kind's rules and every op against its
// schema in ops.def. The first violation throws with the node printed by node_str.
#include "kiln/ir/verifier.h"

#include <unordered_set>

#include "kiln/core/error.h"
#include "kiln/ir/printer.h"

namespace kiln::ir {
namespace {

class Verifier {
 public:
  explicit Verifier(const Graph& g) : g_(g) {}

  void run() {
    const Block* top = g_.block();
    if (top->owning_node() != nullptr || top->owning_graph() != &g_)
      KILN_FAIL("[ir.verify] the graph's top block has an owning node or another graph");
    block(top);
  }

 private:
  [[noreturn]] void fail(const Node* n, const std::string& what) const {
    KILN_FAIL("[ir.verify] {}: {}\n  at: {}", n->kind().name(), what, node_str(n));
  }
  void check(bool cond, const Node* n, const std::string& what) const {
    if (!cond) [[unlikely]]
      fail(n, what);
  }
  // The message is built only on failure: verification runs after every pass and trace, and
  // formatting (value names need a walk of the whole graph) would make it quadratic.
  template <typename Msg>
    requires std::is_invocable_r_v<std::string, Msg>
  void check(bool cond, const Node* n, Msg&& what) const {
    if (!cond) [[unlikely]]
      fail(n, what());
  }
  static std::string ts(const Type& t) { return t.str(); }

  // ---- structure and scopes -----------------------------------------------------------------
  void block(const Block* b) {
    const Node* param = b->param_node();
    const Node* ret = b->return_node();
    if (param == nullptr || ret == nullptr || !param->kind().is(Prim::Param) ||
        !ret->kind().is(Prim::Return) || param->owning_block() != b || ret->owning_block() != b)
      KILN_FAIL("[ir.verify] a block's param or return node is missing or misplaced");
    for (size_t i = 0; i < param->num_outputs(); ++i) define(param, i);
    const Node* prev = param;
    for (const Node* n = param->next(); n != ret; n = n->next()) {
      if (n == nullptr || n->prev() != prev)
        KILN_FAIL("[ir.verify] broken node list in a block (after a {} node)", prev->kind().name());
      check(n->owning_block() == b, n, "the node's owning block is not the block it is in");
      check(n->owning_graph() == &g_, n, "the node belongs to another graph");
      check(!n->kind().is(Prim::Param) && !n->kind().is(Prim::Return), n,
            "param and return nodes may only open and close a block");
      for (size_t i = 0; i < n->num_inputs(); ++i) use(n, i);
      kind_rules(n);
      for (const Block* nested : n->blocks()) {
        check(nested->owning_node() == n && nested->owning_graph() == &g_, n,
              "a nested block's owning node is wrong");
        if (nested->is_isolated()) {
          std::unordered_set<const Value*> outer = std::move(visible_);
          std::vector<const Value*> added = std::move(scope_added_);
          visible_.clear();
          scope_added_.clear();
          ++isolated_depth_;
          block(nested);
          --isolated_depth_;
          visible_ = std::move(outer);
          scope_added_ = std::move(added);
        } else {
          std::vector<const Value*> added;
          std::swap(added, scope_added_);
          block(nested);
          for (const Value* v : scope_added_) visible_.erase(v);
          scope_added_ = std::move(added);
        }
      }
      for (size_t i = 0; i < n->num_outputs(); ++i) define(n, i);
      prev = n;
    }
    if (ret->prev() != prev) KILN_FAIL("[ir.verify] broken node list at the end of a block");
    for (size_t i = 0; i < ret->num_inputs(); ++i) use(ret, i);
  }

  void define(const Node* n, size_t i) {
    const Value* v = n->outputs()[i];
    check(v != nullptr && v->node() == n && v->offset() == i, n,
          [&] { return fmt::format("output {} does not point back to its node", i); });
    check(defined_.insert(v).second, n, [&] { return fmt::format("value {} is defined twice", value_str(v)); });
    for (const Use& u : v->uses())
      check(u.user != nullptr && u.offset < u.user->num_inputs() && u.user->inputs()[u.offset] == v,
            n, [&] { return fmt::format("the use list of {} names a node that does not use it", value_str(v)); });
    visible_.insert(v);
    scope_added_.push_back(v);
  }

  void use(const Node* n, size_t i) {
    const Value* v = n->inputs()[i];
    check(v != nullptr, n, [&] { return fmt::format("input {} is null", i); });
    check(v->owning_graph() == &g_, n, [&] { return fmt::format("input {} is a value of another graph", i); });
    bool listed = false;
    for (const Use& u : v->uses()) listed |= u.user == n && u.offset == i;
    check(listed, n, [&] { return fmt::format("input {} ({}) lacks the use in its use list", i, value_str(v)); });
    if (visible_.count(v)) return;
    if (!defined_.count(v))
      fail(n, fmt::format("input {} ({}) is used before it is defined", i, value_str(v)));
    if (isolated_depth_ > 0)
      fail(n, fmt::format("input {} ({}) is defined outside the enclosing fusion_group/call "
                          "block, which may use only its own inputs and values",
                          i, value_str(v)));
    fail(n, fmt::format("input {} ({}) is defined inside a block that does not enclose this use", i,
                        value_str(v)));
  }

  // ---- kinds --------------------------------------------------------------------------------
  void counts(const Node* n, size_t ins, size_t outs, size_t blocks) const {
    if (ins != SIZE_MAX)
      check(n->num_inputs() == ins, n,
            [&] { return fmt::format("expects {} inputs, got {}", ins, n->num_inputs()); });
    if (outs != SIZE_MAX)
      check(n->num_outputs() == outs, n,
            [&] { return fmt::format("expects {} outputs, got {}", outs, n->num_outputs()); });
    check(n->blocks().size() == blocks, n,
          [&] { return fmt::format("expects {} blocks, got {}", blocks, n->blocks().size()); });
  }
  void fits(const Type& a, const Type& b, const Node* n, const std::string& what) const {
    check(is_subtype_of(a, b), n,
          [&] { return fmt::format("{} has type {}, which does not fit {}", what, ts(a), ts(b)); });
  }

  void kind_rules(const Node* n) {
    if (n->kind().is_op()) return op_rules(n);
    switch (n->kind().prim()) {
      case Prim::Param:
      case Prim::Return:
        return;
      case Prim::Constant: {
        counts(n, 0, 1, 0);
        check(n->has_attr("value"), n, "a constant needs a 'value' attribute");
        const std::string m = mismatch(n->output()->type(), n->attr("value"));
        check(m.empty(), n,
              [&] { return fmt::format("the value does not fit the type {}: {}", ts(n->output()->type()), m); });
        return;
      }
      case Prim::If: {
        counts(n, 1, SIZE_MAX, 2);
        check(n->input(0)->type().kind() == TypeKind::Bool, n,
              [&] { return fmt::format("the condition has type {}, expected bool", ts(n->input(0)->type())); });
        for (size_t b = 0; b < 2; ++b) {
          const Block* blk = n->block(b);
          check(blk->inputs().empty(), n, [&] { return fmt::format("block{} of an if takes no inputs", b); });
          check(blk->outputs().size() == n->num_outputs(), n,
                [&] { return fmt::format("block{} returns {} values, the if has {} outputs", b,
                            blk->outputs().size(), n->num_outputs()); });
          for (size_t i = 0; i < n->num_outputs(); ++i)
            fits(blk->output(i)->type(), n->output(i)->type(), n,
                 fmt::format("output {} of block{}", i, b));
        }
        return;
      }
      case Prim::Loop: {
        check(n->num_inputs() >= 1, n, "a loop takes a trip count and the carried values");
        counts(n, SIZE_MAX, n->num_inputs() - 1, 1);
        check(n->input(0)->type().kind() == TypeKind::Int, n,
              [&] { return fmt::format("the trip count has type {}, expected int", ts(n->input(0)->type())); });
        const Block* body = n->block(0);
        const size_t carried = n->num_inputs() - 1;
        check(body->inputs().size() == carried + 1, n,
              [&] { return fmt::format("the body takes {} inputs, expected the iteration number and {} "
                          "carried values",
                          body->inputs().size(), carried); });
        check(body->outputs().size() == carried, n,
              [&] { return fmt::format("the body returns {} values, expected {} carried values",
                          body->outputs().size(), carried); });
        check(body->input(0)->type().kind() == TypeKind::Int, n,
              "the body's first input (the iteration number) must be an int");
        for (size_t i = 0; i < carried; ++i) {
          const Type& p = body->input(i + 1)->type();
          fits(n->input(i + 1)->type(), p, n, fmt::format("initial value {}", i));
          fits(body->output(i)->type(), p, n, fmt::format("body output {}", i));
          fits(p, n->output(i)->type(), n, fmt::format("carried value {}", i));
        }
        return;
      }
      case Prim::FusionGroup:
      case Prim::Call: {
        counts(n, SIZE_MAX, SIZE_MAX, 1);
        const Block* sub = n->block(0);
        check(sub->inputs().size() == n->num_inputs(), n,
              [&] { return fmt::format("the sub-graph takes {} inputs, the node passes {}", sub->inputs().size(),
                          n->num_inputs()); });
        check(sub->outputs().size() == n->num_outputs(), n,
              [&] { return fmt::format("the sub-graph returns {} values, the node has {} outputs",
                          sub->outputs().size(), n->num_outputs()); });
        for (size_t i = 0; i < n->num_inputs(); ++i)
          fits(n->input(i)->type(), sub->input(i)->type(), n, fmt::format("input {}", i));
        for (size_t i = 0; i < n->num_outputs(); ++i)
          fits(sub->output(i)->type(), n->output(i)->type(), n,
               fmt::format("sub-graph output {}", i));
        if (n->has_attr("name"))
          check(n->attr("name").is_string(), n, "the 'name' attribute must be a string");
        return;
      }
      case Prim::TupleConstruct: {
        counts(n, SIZE_MAX, 1, 0);
        const Type& t = n->output()->type();
        check(t.is_tuple() && t.elems().size() == n->num_inputs(), n,
              [&] { return fmt::format("the output has type {}, expected a tuple of {} elements", ts(t),
                          n->num_inputs()); });
        for (size_t i = 0; i < n->num_inputs(); ++i)
          fits(n->input(i)->type(), t.elems()[i], n, fmt::format("element {}", i));
        return;
      }
      case Prim::TupleUnpack: {
        counts(n, 1, SIZE_MAX, 0);
        const Type& t = n->input(0)->type();
        check(t.is_tuple() && t.elems().size() == n->num_outputs(), n,
              [&] { return fmt::format("the input has type {}, expected a tuple of {} elements", ts(t),
                          n->num_outputs()); });
        for (size_t i = 0; i < n->num_outputs(); ++i)
          fits(t.elems()[i], n->output(i)->type(), n, fmt::format("element {}", i));
        return;
      }
      case Prim::ListConstruct: {
        counts(n, SIZE_MAX, 1, 0);
        const Type& t = n->output()->type();
        check(t.is_list(), n, [&] { return fmt::format("the output has type {}, expected a list", ts(t)); });
        for (size_t i = 0; i < n->num_inputs(); ++i)
          fits(n->input(i)->type(), t.elem(), n, fmt::format("element {}", i));
        return;
      }
      case Prim::ListUnpack: {
        counts(n, 1, SIZE_MAX, 0);
        const Type& t = n->input(0)->type();
        check(t.is_list(), n, [&] { return fmt::format("the input has type {}, expected a list", ts(t)); });
        // The outputs may refine the element type (the list's length and its elements' types
        // are checked when the node runs), but must be compatible with it.
        for (size_t i = 0; i < n->num_outputs(); ++i)
          check(unify(t.elem(), n->output(i)->type()).has_value(), n,
                [&] { return fmt::format("element {} has type {}, which is incompatible with the list's "
                            "element type {}",
                            i, ts(n->output(i)->type()), ts(t.elem())); });
        return;
      }
    }
  }

  void op_rules(const Node* n) {
    const ops::Schema& s = *n->schema();
    const ops::OpInfo& info = ops::op_info(n->kind().op());
    check(n->num_inputs() == s.params.size(), n,
          [&] { return fmt::format("expects {} inputs (schema {}), got {}", s.params.size(), info.schema,
                      n->num_inputs()); });
    for (size_t i = 0; i < s.params.size(); ++i) {
      const Type& t = n->input(i)->type();
      check(accepts(s.params[i].type, t), n,
            [&] { return fmt::format("input {} ('{}') has type {}, expected {} (schema {})", i, s.params[i].name,
                        ts(t), ops::arg_type_name(s.params[i].type), info.schema); });
    }
    check(n->num_outputs() == s.returns.size(), n,
          [&] { return fmt::format("expects {} outputs (schema {}), got {}", s.returns.size(), info.schema,
                      n->num_outputs()); });
    for (size_t i = 0; i < s.returns.size(); ++i)
      check(accepts(s.returns[i], n->output(i)->type()), n,
            [&] { return fmt::format("output {} has type {}, expected {}", i, ts(n->output(i)->type()),
                        ops::arg_type_name(s.returns[i])); });
    check(n->blocks().empty(), n, "an op takes no blocks");
  }

  const Graph& g_;
  std::unordered_set<const Value*> visible_;
  std::unordered_set<const Value*> defined_;
  std::vector<const Value*> scope_added_;
  int isolated_depth_ = 0;
};

}  // namespace

void verify(const Graph& g) { Verifier(g).run(); }

}  // namespace kiln::ir
