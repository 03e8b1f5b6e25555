// Shape and dtype propagation (see shape_propagation.h): one forward walk over the blocks, the op
// rules of shape_rules.cpp for op nodes, and a fixed point for loop-carried values. Early in the
// pipeline, and again after unrolling; later passes decide from the types it leaves.
#include "kiln/passes/shape_propagation.h"

#include <unordered_map>

#include "kiln/passes/shape_rules.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Prim;
using ir::Type;
using ir::Value;

// More iterations than any chain of facts a carried type can lose (dtype, each dim, rank,
// device, contiguity) in graphs of sensible rank.
constexpr int kMaxLoopIterations = 24;

using Snapshot = std::unordered_map<Value*, Type>;

void snapshot_block(Block* b, Snapshot& s) {
  for (Value* v : b->inputs()) s.emplace(v, v->type());
  for (Node* n : b->nodes()) {
    for (Value* v : n->outputs()) s.emplace(v, v->type());
    for (Block* nested : n->blocks()) snapshot_block(nested, s);
  }
}

void restore(const Snapshot& s) {
  for (const auto& [v, t] : s) v->set_type(t);
}

class Propagator {
 public:
  void block(Block* b) {
    for (Node* n : b->nodes()) node(n);
  }

 private:
  static void set(Value* v, const Type& inferred) {
    v->set_type(detail::refine(v->type(), inferred));
  }

  void node(Node* n) {
    if (n->kind().is_op()) {
      const std::vector<Type> types = infer_output_types(n);
      for (size_t i = 0; i < types.size(); ++i) set(n->output(i), types[i]);
      return;
    }
    switch (n->kind().prim()) {
      case Prim::Param:
      case Prim::Return:
        return;
      case Prim::Constant:
        set(n->output(), ir::type_of(n->attr("value")));
        return;
      case Prim::If:
        block(n->block(0));
        block(n->block(1));
        for (size_t i = 0; i < n->num_outputs(); ++i)
          if (auto u = unify(n->block(0)->output(i)->type(), n->block(1)->output(i)->type()))
            set(n->output(i), *u);
        return;
      case Prim::Loop:
        loop(n);
        return;
      case Prim::FusionGroup:
      case Prim::Call: {
        Block* sub = n->block(0);
        for (size_t i = 0; i < n->num_inputs(); ++i) set(sub->input(i), n->input(i)->type());
        block(sub);
        for (size_t i = 0; i < n->num_outputs(); ++i) set(n->output(i), sub->output(i)->type());
        return;
      }
      case Prim::TupleConstruct: {
        std::vector<Type> elems;
        for (const Value* v : n->inputs()) elems.push_back(v->type());
        set(n->output(), ir::tuple_type(std::move(elems)));
        return;
      }
      case Prim::TupleUnpack: {
        const Node* src = n->input(0)->node();
        const bool direct = src->kind().is(Prim::TupleConstruct);
        const Type& t = n->input(0)->type();
        for (size_t i = 0; i < n->num_outputs(); ++i) {
          if (direct)
            set(n->output(i), src->input(i)->type());
          else if (t.is_tuple() && i < t.elems().size())
            set(n->output(i), t.elems()[i]);
        }
        return;
      }
      case Prim::ListConstruct: {
        if (n->num_inputs() == 0) return;
        std::optional<Type> elem = n->input(0)->type();
        for (const Value* v : n->inputs())
          if (elem) elem = unify(*elem, v->type());
        if (elem) set(n->output(), ir::list_type(*elem));
        return;
      }
      case Prim::ListUnpack: {
        const Node* src = n->input(0)->node();
        const bool direct =
            src->kind().is(Prim::ListConstruct) && src->num_inputs() == n->num_outputs();
        for (size_t i = 0; i < n->num_outputs(); ++i)
          set(n->output(i), direct ? src->input(i)->type() : n->input(0)->type().elem());
        return;
      }
    }
  }

  // Carried values: start from the initial values' types and unify with what the body returns
  // until nothing changes. The body's own types are recomputed from their declared state each
  // round, so that a guess of an early round never survives into the result.
  void loop(Node* n) {
    Block* body = n->block(0);
    const size_t m = n->num_inputs() - 1;
    Snapshot declared_body;
    snapshot_block(body, declared_body);
    std::vector<Type> declared, cur;
    for (size_t k = 0; k < m; ++k) {
      declared.push_back(body->input(k + 1)->type());
      cur.push_back(detail::refine(declared[k], n->input(k + 1)->type()));
    }
    bool stable = false;
    for (int iter = 0; iter < kMaxLoopIterations && !stable; ++iter) {
      restore(declared_body);
      for (size_t k = 0; k < m; ++k) body->input(k + 1)->set_type(cur[k]);
      block(body);
      stable = true;
      for (size_t k = 0; k < m; ++k) {
        auto u = unify(cur[k], body->output(k)->type());
        Type next = u ? detail::refine(declared[k], *u) : declared[k];
        if (next != cur[k]) stable = false;
        cur[k] = std::move(next);
      }
    }
    if (!stable) {  // give up: the declared carried types, which the verifier holds to
      restore(declared_body);
      block(body);
      return;
    }
    for (size_t k = 0; k < m; ++k) set(n->output(k), cur[k]);
  }
};

}  // namespace

bool propagate_shapes(ir::Graph& g) {
  Snapshot before;
  snapshot_block(g.block(), before);
  Propagator().block(g.block());
  for (const auto& [v, t] : before)
    if (v->type() != t) return true;
  return false;
}

}  // namespace kiln::passes
