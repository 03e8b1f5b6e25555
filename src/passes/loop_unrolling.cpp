// Loop unrolling (see loop_unrolling.h): full unrolling of short constant loops and unrolling by
// a factor of longer ones whose body ignores the iteration number, innermost loops first, within
// a node budget. After constant folding in the pipeline; shape propagation, folding, CSE and
// fusion then work on the straight-line code it leaves.
#include "kiln/passes/loop_unrolling.h"

#include <unordered_map>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Graph;
using ir::Node;
using ir::Prim;
using ir::Value;

// Clones body's nodes before `before`, with its inputs bound to `args` (null for an input the
// body does not use); returns what it returns.
std::vector<Value*> clone_body(const Block* body, const std::vector<Value*>& args, Node* before) {
  Graph* g = before->owning_graph();
  std::unordered_map<const Value*, Value*> env;
  for (size_t i = 0; i < args.size(); ++i) env[body->input(i)] = args[i];
  const auto lookup = [&](Value* v) {
    auto it = env.find(v);
    return it != env.end() ? it->second : v;
  };
  for (const Node* n : body->nodes()) {
    Node* c = g->create_clone(n, lookup);
    c->insert_before(before);
    for (size_t i = 0; i < n->num_outputs(); ++i) env[n->output(i)] = c->output(i);
  }
  std::vector<Value*> out;
  for (Value* v : body->outputs()) out.push_back(lookup(v));
  return out;
}

Value* int_constant(Node* before, int64_t v) { return detail::insert_constant(before, IValue(v)); }

class Unroller {
 public:
  explicit Unroller(const UnrollOptions& options) : options_(options) {}
  bool changed = false;

  void block(Block* b) {
    for (Node* n : b->nodes()) {
      for (Block* nested : n->blocks()) block(nested);
      if (n->kind().is(Prim::Loop)) unroll(n);
    }
  }

 private:
  void unroll(Node* n) {
    const auto trips = detail::constant_int(n->input(0));
    if (!trips) return;
    Block* body = n->block(0);
    const int64_t size = std::max<int64_t>(detail::count_nodes(body), 1);
    std::vector<Value*> carried(n->inputs().begin() + 1, n->inputs().end());
    if (*trips <= 0) {
      finish(n, carried);
      return;
    }
    if (*trips <= options_.max_full_trips && *trips * size <= options_.max_nodes) {
      for (int64_t it = 0; it < *trips; ++it) carried = iterate(n, body, it, carried);
      finish(n, carried);
      return;
    }
    const int64_t f = options_.factor;
    if (f < 2 || *trips < f || body->input(0)->has_uses()) return;
    const int64_t rest = *trips % f;
    if ((f + rest) * size > options_.max_nodes) return;
    // A loop of trips / f iterations over f copies of the body, then the remaining copies.
    Graph* g = n->owning_graph();
    std::vector<Value*> ins = {int_constant(n, *trips / f)};
    ins.insert(ins.end(), carried.begin(), carried.end());
    Node* outer = g->create(Prim::Loop, ins);
    outer->set_loc(n->loc());
    outer->insert_before(n);
    Block* nb = outer->add_block();
    std::vector<Value*> params;
    for (const Value* p : body->inputs())
      params.push_back(nb->add_input(p->type(), p->debug_name()));
    for (const Value* v : n->outputs())
      outer->add_output(v->type())->set_debug_name(v->debug_name());
    std::vector<Value*> next(params.begin() + 1, params.end());
    for (int64_t c = 0; c < f; ++c) {
      std::vector<Value*> args = {params[0]};
      args.insert(args.end(), next.begin(), next.end());
      next = clone_body(body, args, nb->return_node());
    }
    for (Value* v : next) nb->register_output(v);
    carried.assign(outer->outputs().begin(), outer->outputs().end());
    for (int64_t c = 0; c < rest; ++c) carried = iterate(n, body, *trips - rest + c, carried);
    finish(n, carried);
  }

  // One iteration's copy of the body before the loop node.
  std::vector<Value*> iterate(Node* n, const Block* body, int64_t i,
                              const std::vector<Value*>& carried) {
    // The iteration number as a constant, when the body reads it.
    std::vector<Value*> args = {body->input(0)->has_uses() ? int_constant(n, i) : nullptr};
    args.insert(args.end(), carried.begin(), carried.end());
    return clone_body(body, args, n);
  }

  void finish(Node* n, const std::vector<Value*>& results) {
    for (size_t k = 0; k < n->num_outputs(); ++k) n->output(k)->replace_all_uses_with(results[k]);
    n->destroy();
    changed = true;
  }

  UnrollOptions options_;
};

}  // namespace

bool unroll_loops(ir::Graph& g, const UnrollOptions& options) {
  Unroller u(options);
  u.block(g.block());
  return u.changed;
}

}  // namespace kiln::passes
