// Dead-code elimination (see dead_code_elimination.h): a backward walk over each block that drops
// unused nodes and trims unused outputs of control flow and sub-graphs before descending into
// their blocks. The pipeline's cleanup step after every rewriting pass.
#include "kiln/passes/dead_code_elimination.h"

#include <unordered_set>

#include "kiln/core/error.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Prim;
using ir::Value;

// Every value used inside b (its nodes' inputs and what it returns), nested blocks included.
void used_inside(const Block* b, std::unordered_set<const Value*>& out) {
  for (const Node* n : b->nodes()) {
    for (const Value* v : n->inputs()) out.insert(v);
    for (const Block* nested : n->blocks()) used_inside(nested, out);
  }
  for (const Value* v : b->outputs()) out.insert(v);
}

// The values of a loop body needed to compute the carried values marked live (and the random
// draws, which always run).
std::unordered_set<const Value*> needed(const Block* body, const std::vector<bool>& live) {
  std::unordered_set<const Value*> need;
  for (size_t k = 0; k < live.size(); ++k)
    if (live[k]) need.insert(body->output(k));
  for (const Node* n : body->reverse_nodes()) {
    bool keep = detail::draws_random(n);
    for (const Value* v : n->outputs()) keep |= need.count(v) > 0;
    if (!keep) continue;
    for (const Value* v : n->inputs()) need.insert(v);
    for (const Block* nested : n->blocks()) used_inside(nested, need);
  }
  return need;
}

class Eliminator {
 public:
  bool changed = false;

  void block(Block* b) {
    for (Node* n : b->reverse_nodes()) {
      if (n->kind().is(Prim::If)) prune_if(n);
      if (n->kind().is(Prim::FusionGroup) || n->kind().is(Prim::Call)) prune_outputs(n);
      if (n->kind().is(Prim::Loop)) prune_loop(n);
      bool used = false;
      for (const Value* v : n->outputs()) used |= v->has_uses();
      if (!used && !detail::draws_random(n)) {
        n->destroy();
        changed = true;
        continue;
      }
      for (Block* nested : n->blocks()) block(nested);
      if (n->kind().is(Prim::FusionGroup) || n->kind().is(Prim::Call)) prune_inputs(n);
      if (n->kind().is(Prim::Loop)) prune_loop_inputs(n);
    }
  }

 private:
  void prune_if(Node* n) {
    for (size_t i = n->num_outputs(); i-- > 0;) {
      if (n->output(i)->has_uses()) continue;
      n->block(0)->erase_output(i);
      n->block(1)->erase_output(i);
      n->erase_output(i);
      changed = true;
    }
  }

  void prune_outputs(Node* n) {
    for (size_t i = n->num_outputs(); i-- > 0;) {
      if (n->output(i)->has_uses()) continue;
      n->block(0)->erase_output(i);
      n->erase_output(i);
      changed = true;
    }
  }

  void prune_inputs(Node* n) {
    Block* sub = n->block(0);
    for (size_t i = sub->inputs().size(); i-- > 0;) {
      if (sub->input(i)->has_uses()) continue;
      sub->erase_input(i);
      n->remove_input(i);
      changed = true;
    }
  }

  // A carried value is dead when nothing uses its final value and the body needs it for no live
  // carried value: drop what the body returns for it (the body is cleaned next), then its
  // parameter and initial value (prune_loop_inputs).
  void prune_loop(Node* n) {
    Block* body = n->block(0);
    const size_t m = n->num_outputs();
    std::vector<bool> live(m);
    for (size_t k = 0; k < m; ++k) live[k] = n->output(k)->has_uses();
    for (bool grew = true; grew;) {
      grew = false;
      const auto need = needed(body, live);
      for (size_t k = 0; k < m; ++k)
        if (!live[k] && need.count(body->input(k + 1))) live[k] = grew = true;
    }
    for (size_t k = m; k-- > 0;) {
      if (live[k]) continue;
      body->erase_output(k);
      n->erase_output(k);
      dead_params_.insert(body->input(k + 1));
      changed = true;
    }
  }

  void prune_loop_inputs(Node* n) {
    Block* body = n->block(0);
    for (size_t k = body->inputs().size(); k-- > 1;) {
      Value* p = body->input(k);
      if (!dead_params_.count(p)) continue;
      KILN_ASSERT(!p->has_uses(), "[passes.dce] a dead carried value is still used in the body");
      dead_params_.erase(p);
      body->erase_input(k);
      n->remove_input(k);
    }
  }

  std::unordered_set<const Value*> dead_params_;
};

}  // namespace

bool eliminate_dead_code(ir::Graph& g) {
  bool any = false;
  for (bool again = true; again;) {
    Eliminator e;
    e.block(g.block());
    again = e.changed;
    any |= e.changed;
  }
  return any;
}

}  // namespace kiln::passes
