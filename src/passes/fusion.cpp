// Fusion grouping (see fusion.h and docs/ir.md "Fusion groups"): per block, seeds a group at the
// last fusible node not yet grouped, grows it over producers (and over consumers the group would
// otherwise have to wait for), then moves its nodes into a fusion_group node placed at the seed.
// Last in the pipeline; code generation compiles each group's block into one kernel.
#include "kiln/passes/fusion.h"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "kiln/core/error.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Graph;
using ir::Node;
using ir::Prim;
using ir::Type;
using ir::Value;
using ops::OpKind;
using Shape = std::vector<int64_t>;

// Note [The fusible-shape predicate]
// The one place that says which tensors fusion accepts: a known dtype and static sizes. The
// dynamic-shape mode relaxes this to symbolic sizes; nothing else in this file looks at dims
// without going through it.
std::optional<Shape> fusible_shape(const Type& t) {
  if (!t.is_tensor() || !t.tensor().dtype) return std::nullopt;
  return t.tensor().static_sizes();
}

const ops::OpInfo* op_info_of(const Node* n) {
  return n->kind().is_op() ? &ops::op_info(n->kind().op()) : nullptr;
}

// Every tensor argument has a fusible shape and every other argument is a constant (non-tensor
// block inputs are not allowed, so varying numbers keep a node out of fusion).
bool fusible_args(const Node* n) {
  for (const Value* v : n->inputs()) {
    if (v->type().is_tensor()) {
      if (!fusible_shape(v->type())) return false;
    } else if (detail::constant_of(v) == nullptr) {
      return false;
    }
  }
  for (const Value* v : n->outputs())
    if (!fusible_shape(v->type())) return false;
  return true;
}

bool is_elementwise(const Node* n) {
  const ops::OpInfo* info = op_info_of(n);
  return info != nullptr && info->is_elementwise() && info->has(ops::kFusible) &&
         !info->has(ops::kRandom) && n->num_outputs() == 1 && fusible_args(n);
}

// A small float matrix product (mm of 2-D operands of its dtype, at most max_macs
// multiply-adds): code generation computes it at each point of the group that reads it.
bool is_product(const Node* n, int64_t max_macs) {
  if (!n->kind().is_op() || n->kind().op() != OpKind::Mm || !fusible_args(n)) return false;
  const auto dt = n->output()->type().tensor().dtype;
  if (*dt != kFloat && *dt != kDouble) return false;
  const auto a = fusible_shape(n->input(0)->type()), b = fusible_shape(n->input(1)->type());
  if (a->size() != 2 || b->size() != 2 || n->input(0)->type().tensor().dtype != dt ||
      n->input(1)->type().tensor().dtype != dt)
    return false;
  return (*a)[0] * (*a)[1] * (*b)[1] <= max_macs;
}

// A reduction of the group's kind: a kFusible row of the Reduce family (not argmax/argmin).
bool is_reduction(const Node* n) {
  const ops::OpInfo* info = op_info_of(n);
  return info != nullptr && info->is_reduction() && info->has(ops::kFusible) &&
         n->input(0)->type().is_tensor() && fusible_args(n);
}

// Views that may sit between a block input and the group: they become the input's strides.
// as_strided is left out: it reads its input's storage, not its elements.
bool is_input_view(const Node* n) {
  const ops::OpInfo* info = op_info_of(n);
  return info != nullptr && info->is_view() && n->kind().op() != OpKind::AsStrided &&
         fusible_args(n);
}

// The reduced dims of a reduction node, wrapped and sorted (an empty list: every dim).
std::optional<Shape> reduced_dims(const Node* r) {
  const auto dims = detail::constant_int_list(r->input(1));
  const auto in = fusible_shape(r->input(0)->type());
  if (!dims || !in) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(in->size());
  Shape out;
  if (dims->empty() || rank == 0) {
    for (int64_t d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : *dims) out.push_back(d < 0 ? d + rank : d);
  std::sort(out.begin(), out.end());
  return out;
}

// The start of a chain of input views ending in v: the value the group takes as its input.
Value* chain_root(Value* v) {
  while (is_input_view(v->node())) v = v->node()->input(0);
  return v;
}

class BlockFuser {
 public:
  BlockFuser(Block* b, const FusionOptions& options) : b_(b), options_(options) {
    int64_t i = 0;
    for (Node* n : b->nodes()) pos_[n] = 2 * i++;
  }

  bool run() {
    std::vector<Node*> order;
    for (Node* n : b_->nodes()) order.push_back(n);
    bool changed = false;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* seed = *it;
      if (seed->owning_block() != b_) continue;  // already moved into a group
      if (!is_elementwise(seed) && !is_reduction(seed)) continue;
      if (!start(seed)) continue;
      grow();
      materialize();
      changed = true;
    }
    return changed;
  }

 private:
  // ---- the group being built ----------------------------------------------------------------
  bool start(Node* seed) {
    seed_ = seed;
    members_.clear();
    iter_ = *fusible_shape(is_reduction(seed) ? seed->input(0)->type() : seed->output()->type());
    dims_.reset();
    std::unordered_set<Node*> t = {seed};
    if (!admissible(t)) return false;  // more inputs than the limit on its own
    add(t);
    return true;
  }

  void add(const std::unordered_set<Node*>& t) {
    for (Node* n : t) {
      members_.insert(n);
      if (is_reduction(n)) dims_ = reduced_dims(n);
    }
  }

  int64_t position(const Node* user) const {
    // The node of this block that contains the use (uses in nested blocks count at their
    // enclosing node; the block's return node comes after everything).
    while (user->owning_block() != b_) {
      const Node* owner = user->owning_block()->owning_node();
      KILN_ASSERT(owner != nullptr, "[passes.fuse] a use outside the block being fused");
      user = owner;
    }
    if (user == b_->return_node()) return std::numeric_limits<int64_t>::max();
    auto it = pos_.find(user);
    KILN_ASSERT(it != pos_.end(), "[passes.fuse] a node of unknown position");
    return it->second;
  }
  Node* in_block(Node* user) const {
    while (user->owning_block() != b_) user = user->owning_block()->owning_node();
    return user;
  }

  // Compute nodes that may join a group of this iteration shape and reduced dims.
  bool compatible(Node* n) const {
    if (n->owning_block() != b_ || n == b_->return_node()) return false;
    if (is_elementwise(n) || product(n)) return *fusible_shape(n->output()->type()) == iter_;
    if (!is_reduction(n) || *fusible_shape(n->input(0)->type()) != iter_) return false;
    const auto d = reduced_dims(n);
    return d && (!dims_ || *d == *dims_);
  }

  // Closes a candidate set over the consumers the group would otherwise need before it is
  // placed (users of members that come before the seed), then checks the group rules.
  bool close_over(std::unordered_set<Node*>& t) {
    std::vector<Node*> work(t.begin(), t.end());
    while (!work.empty()) {
      Node* n = work.back();
      work.pop_back();
      for (const Value* v : n->outputs())
        for (const ir::Use& u : v->uses()) {
          if (position(u.user) > pos_.at(seed_)) continue;  // runs after the group: an output
          Node* c = in_block(u.user);
          if (members_.count(c) || t.count(c)) continue;
          if (!compatible(c)) return false;
          t.insert(c);
          work.push_back(c);
        }
    }
    return admissible(t);
  }

  // The group with t added obeys the contract: one reduced-dims set, reduction results unused
  // inside, and the limits.
  bool admissible(const std::unordered_set<Node*>& t) const {
    std::optional<Shape> dims = dims_;
    int64_t compute = static_cast<int64_t>(members_.size());
    for (Node* n : t) {
      if (is_reduction(n)) {
        const auto d = reduced_dims(n);
        if (!d || (dims && *d != *dims)) return false;
        dims = d;
      }
      ++compute;
    }
    if (compute > options_.max_nodes) return false;
    const auto inside = [&](const Node* n) {
      return members_.count(const_cast<Node*>(n)) || t.count(const_cast<Node*>(n));
    };
    std::unordered_set<const Value*> inputs;
    const auto visit = [&](const Node* n) -> bool {
      for (Value* v : n->inputs()) {
        if (!v->type().is_tensor()) continue;
        const Node* p = v->node();
        if (inside(p)) {
          // Reduction results only leave the group; products read the group's inputs.
          if (is_reduction(p) || product(n)) return false;
          continue;
        }
        Value* root = chain_root(v);
        if (inside(root->node())) return false;  // a view of a value computed in the group
        inputs.insert(root);
      }
      return true;
    };
    for (const Node* n : members_)
      if (!visit(n)) return false;
    for (const Node* n : t)
      if (!visit(n)) return false;
    return static_cast<int64_t>(inputs.size()) <= options_.max_inputs;
  }

  bool product(const Node* n) const { return is_product(n, options_.max_product_macs); }

  bool try_add(Node* candidate) {
    std::unordered_set<Node*> t = {candidate};
    if (!close_over(t)) return false;
    add(t);
    return true;
  }

  void grow() {
    for (bool again = true; again;) {
      again = false;
      std::vector<Node*> current(members_.begin(), members_.end());
      std::sort(current.begin(), current.end(),
                [&](Node* a, Node* b) { return pos_.at(a) > pos_.at(b); });
      for (Node* m : current) {
        // Producers, through chains of input views.
        for (Value* v : m->inputs()) {
          if (!v->type().is_tensor()) continue;
          Node* p = chain_root(v)->node();
          if (members_.count(p) || !pos_.count(p) || !compatible(p)) continue;
          if (!is_elementwise(p) && !product(p)) continue;
          again |= try_add(p);
        }
        // Consumers that run before the seed: reductions of the group's values and elementwise
        // ops of its shape (horizontal fusion).
        if (!is_elementwise(m)) continue;
        for (const ir::Use& u : m->output()->uses()) {
          Node* c = u.user;
          if (members_.count(c) || c->owning_block() != b_ || !pos_.count(c)) continue;
          if (pos_.at(c) > pos_.at(seed_) || !compatible(c)) continue;
          again |= try_add(c);
        }
      }
    }
  }

  // ---- building the fusion_group node ---------------------------------------------------------
  void materialize() {
    std::vector<Node*> order(members_.begin(), members_.end());
    std::sort(order.begin(), order.end(),
              [&](Node* a, Node* b) { return pos_.at(a) < pos_.at(b); });
    Graph* g = b_->owning_graph();
    Node* group = g->create(Prim::FusionGroup);
    group->set_loc(seed_->loc());
    group->insert_before(seed_);
    pos_[group] = pos_.at(seed_) - 1;
    Block* sub = group->add_block();
    for (Node* n : order) n->move_before(sub->return_node());

    std::unordered_map<const Value*, Value*> inner;  // outer value -> its value inside
    const auto block_input = [&](Value* v) {
      auto it = inner.find(v);
      if (it != inner.end()) return it->second;
      Value* in = sub->add_input(v->type());
      group->add_input(v);
      inner[v] = in;
      return in;
    };
    // Non-tensor arguments are constants: cloned next to their user.
    const std::function<Value*(Value*, Node*)> bring = [&](Value* v, Node* user) -> Value* {
      auto it = inner.find(v);
      if (it != inner.end()) return it->second;
      if (!v->type().is_tensor()) {
        Node* c = g->create_clone(v->node(), [](Value* x) { return x; });
        c->insert_before(user);
        return inner[v] = c->output();
      }
      Node* p = v->node();
      if (!is_input_view(p)) return block_input(v);
      // A view chain: cloned onto the block input of its root.
      Node* c = g->create_clone(p, [](Value* x) { return x; });
      c->insert_before(user);
      for (size_t i = 0; i < c->num_inputs(); ++i) c->replace_input(i, bring(p->input(i), c));
      return inner[v] = c->output();
    };
    for (Node* n : order)
      for (size_t i = 0; i < n->num_inputs(); ++i)
        if (!members_.count(n->input(i)->node())) n->replace_input(i, bring(n->input(i), n));

    order_inputs(group);

    // Outputs: the members' values used anywhere outside the group, in member order.
    for (Node* n : order)
      for (Value* v : n->outputs()) {
        std::vector<ir::Use> outside;
        for (const ir::Use& u : v->uses())
          if (!inside_sub(u.user, sub)) outside.push_back(u);
        if (outside.empty()) continue;
        sub->register_output(v);
        Value* out = group->add_output(v->type());
        out->set_debug_name(v->debug_name());
        for (const ir::Use& u : outside) u.user->replace_input(u.offset, out);
      }
    // Names stay outside (on the group's outputs): equal groups print equally, and their text
    // keys the kernel cache.
    for (Node* n : sub->nodes())
      for (Value* v : n->outputs()) v->set_debug_name("");
  }

  // Block inputs in the order of their first use in the block (view chains are cloned in front
  // of their user, so creation order can differ), the node's inputs alike: equal groups print
  // equally.
  static void order_inputs(Node* group) {
    Block* sub = group->block(0);
    std::vector<Value*> order;
    for (Node* n : sub->nodes())
      for (Value* v : n->inputs())
        if (v->is_block_input() && std::find(order.begin(), order.end(), v) == order.end())
          order.push_back(v);
    if (order == sub->inputs()) return;
    std::vector<Value*> outer;
    const size_t n = sub->inputs().size();
    for (Value* v : order) {
      outer.push_back(group->input(v->offset()));
      v->replace_all_uses_with(sub->add_input(v->type()));
    }
    for (size_t i = n; i-- > 0;) sub->erase_input(i);
    group->remove_all_inputs();
    for (Value* v : outer) group->add_input(v);
  }

  static bool inside_sub(const Node* user, const Block* sub) {
    for (const Block* b = user->owning_block(); b != nullptr;) {
      if (b == sub) return true;
      const Node* owner = b->owning_node();
      if (owner == nullptr) return false;
      b = owner->owning_block();
    }
    return false;
  }

  Block* b_;
  FusionOptions options_;
  std::unordered_map<const Node*, int64_t> pos_;
  Node* seed_ = nullptr;
  std::unordered_set<Node*> members_;
  Shape iter_;
  std::optional<Shape> dims_;
};

bool fuse_block(Block* b, const FusionOptions& options) {
  bool changed = false;
  for (Node* n : b->nodes()) {
    if (n->kind().is(Prim::FusionGroup)) continue;
    for (Block* nested : n->blocks()) changed |= fuse_block(nested, options);
  }
  return BlockFuser(b, options).run() || changed;
}

}  // namespace

bool create_fusion_groups(ir::Graph& g, const FusionOptions& options) {
  return fuse_block(g.block(), options);
}

}  // namespace kiln::passes
