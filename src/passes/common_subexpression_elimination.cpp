// Common-subexpression elimination (see common_subexpression_elimination.h): a forward walk with
// a stack of hash tables, one per enclosing block, so a node may reuse an equivalent node that
// dominates it. Isolated blocks (fusion groups, calls) start a table stack of their own.
#include "kiln/passes/common_subexpression_elimination.h"

#include <bit>
#include <functional>
#include <unordered_map>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Prim;
using ir::Value;

size_t mix(size_t h, size_t v) { return h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)); }

size_t hash_ivalue(const IValue& v) {
  size_t h = static_cast<size_t>(v.tag());
  switch (v.tag()) {
    case IValue::Tag::Int:
      return mix(h, std::hash<int64_t>()(v.toInt()));
    case IValue::Tag::Double:
      return mix(h, std::bit_cast<uint64_t>(v.toDouble()));
    case IValue::Tag::Bool:
      return mix(h, v.toBool());
    case IValue::Tag::IntList:
      for (int64_t i : v.toIntList()) h = mix(h, std::hash<int64_t>()(i));
      return h;
    case IValue::Tag::ScalarType:
      return mix(h, static_cast<size_t>(v.toScalarType()));
    case IValue::Tag::String:
      return mix(h, std::hash<std::string>()(v.toStringRef()));
    case IValue::Tag::Tensor:
      if (v.toTensor().defined()) {
        h = mix(h, static_cast<size_t>(v.toTensor().dtype()));
        for (int64_t s : v.toTensor().sizes()) h = mix(h, std::hash<int64_t>()(s));
      }
      return h;
    default:
      return h;
  }
}

// Kinds CSE may merge: ops and the pure structural kinds without blocks.
bool mergeable(const Node* n) {
  if (!n->blocks().empty() || detail::draws_random(n)) return false;
  if (n->kind().is_op()) return true;
  switch (n->kind().prim()) {
    case Prim::Constant:
    case Prim::TupleConstruct:
    case Prim::TupleUnpack:
    case Prim::ListConstruct:
    case Prim::ListUnpack:
      return true;
    default:
      return false;
  }
}

bool commutes(const Node* n) {
  return n->kind().is_op() && n->num_inputs() == 2 && detail::bitwise_commutative(n->kind().op());
}

size_t hash_node(const Node* n) {
  size_t h = std::hash<std::string_view>()(n->kind().name());
  h = mix(h, n->num_outputs());
  if (commutes(n)) {
    const size_t a = std::hash<const Value*>()(n->input(0));
    const size_t b = std::hash<const Value*>()(n->input(1));
    h = mix(h, a ^ b);
  } else {
    for (const Value* v : n->inputs()) h = mix(h, std::hash<const Value*>()(v));
  }
  for (const auto& [k, v] : n->attrs())
    h = mix(mix(h, std::hash<std::string>()(k)), hash_ivalue(v));
  return h;
}

bool equivalent(const Node* a, const Node* b) {
  if (a->kind() != b->kind() || a->num_inputs() != b->num_inputs() ||
      a->num_outputs() != b->num_outputs() || a->attrs().size() != b->attrs().size())
    return false;
  bool same_inputs = a->inputs() == b->inputs();
  if (!same_inputs && commutes(a))
    same_inputs = a->input(0) == b->input(1) && a->input(1) == b->input(0);
  if (!same_inputs) return false;
  for (size_t i = 0; i < a->attrs().size(); ++i)
    if (a->attrs()[i].first != b->attrs()[i].first ||
        !detail::same_constant(a->attrs()[i].second, b->attrs()[i].second))
      return false;
  // Constants (and lists/tuples, whose types record their elements') must agree on the type.
  if (!a->kind().is_op())
    for (size_t i = 0; i < a->num_outputs(); ++i)
      if (a->output(i)->type() != b->output(i)->type()) return false;
  return true;
}

class Cse {
 public:
  bool changed = false;

  void block(Block* b) {
    for (Node* n : b->nodes()) {
      for (Block* nested : n->blocks()) {
        if (nested->is_isolated()) {
          std::vector<Table> saved = std::move(scopes_);
          scopes_.clear();
          scopes_.emplace_back();
          block(nested);
          scopes_ = std::move(saved);
        } else {
          scopes_.emplace_back();
          block(nested);
          scopes_.pop_back();
        }
      }
      if (!mergeable(n)) continue;
      const size_t h = hash_node(n);
      if (Node* prior = find(n, h); prior != nullptr && merge(prior, n)) continue;
      scopes_.back()[h].push_back(n);
    }
  }

  void run(Block* top) {
    scopes_.emplace_back();
    block(top);
  }

 private:
  using Table = std::unordered_map<size_t, std::vector<Node*>>;

  Node* find(const Node* n, size_t h) const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {
      auto it = s->find(h);
      if (it == s->end()) continue;
      for (Node* m : it->second)
        if (equivalent(m, n)) return m;
    }
    return nullptr;
  }

  // Both nodes compute the same values, so each output's facts from either type hold; the
  // survivor takes the meet, which must fit wherever the merged node's values went.
  bool merge(Node* prior, Node* n) {
    std::vector<ir::Type> types;
    for (size_t i = 0; i < n->num_outputs(); ++i) {
      ir::Type t = detail::refine(prior->output(i)->type(), n->output(i)->type());
      if (!is_subtype_of(t, n->output(i)->type())) return false;
      types.push_back(std::move(t));
    }
    for (size_t i = 0; i < n->num_outputs(); ++i) prior->output(i)->set_type(types[i]);
    for (size_t i = 0; i < n->num_outputs(); ++i)
      n->output(i)->replace_all_uses_with(prior->output(i));
    n->destroy();
    changed = true;
    return true;
  }

  std::vector<Table> scopes_;
};

}  // namespace

bool eliminate_common_subexpressions(ir::Graph& g) {
  Cse c;
  c.run(g.block());
  return c.changed;
}

}  // namespace kiln::passes
