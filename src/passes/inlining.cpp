// Inlining (see inlining.h): splices the blocks of `call` nodes into their callers, round after
// round until none is left (a callee may itself call). First in the pipeline.
#include "kiln/passes/inlining.h"

#include <vector>

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Prim;

void collect_calls(Block* b, std::vector<Node*>& out) {
  for (Node* n : b->nodes()) {
    if (n->kind().is(Prim::FusionGroup)) continue;
    if (n->kind().is(Prim::Call)) {
      out.push_back(n);
      continue;  // its own calls are found once it is spliced
    }
    for (Block* nested : n->blocks()) collect_calls(nested, out);
  }
}

// The callee's nodes move in front of the call; its inputs become the call's arguments, and
// the call's outputs the values the callee returns.
void inline_one(Node* call) {
  Block* sub = call->block(0);
  for (size_t i = 0; i < sub->inputs().size(); ++i)
    sub->input(i)->replace_all_uses_with(call->input(i));
  for (Node* n : sub->nodes()) n->move_before(call);
  for (size_t i = 0; i < call->num_outputs(); ++i)
    call->output(i)->replace_all_uses_with(sub->output(i));
  call->destroy();
}

}  // namespace

bool inline_calls(ir::Graph& g) {
  bool changed = false;
  for (;;) {
    std::vector<Node*> calls;
    collect_calls(g.block(), calls);
    if (calls.empty()) return changed;
    for (Node* c : calls) inline_one(c);
    changed = true;
  }
}

}  // namespace kiln::passes
