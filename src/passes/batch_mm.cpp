// Matmul batching and cat push-down (batch_mm.h). Both rewrites need static sizes and touch
// only pure op nodes; every new node's type comes from the shape rules.
#include "kiln/passes/batch_mm.h"

#include <algorithm>
#include <map>
#include <unordered_set>

#include "kiln/passes/dead_code_elimination.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Prim;
using ir::Value;
using ops::OpKind;

using detail::dtype_of;
using detail::is_op;
using detail::static_sizes;

// A node that may be moved or have its result replaced: an op (or constant / list) with no
// blocks and no random draw.
bool pure(const Node* n) {
  if (!n->blocks().empty() || detail::draws_random(n)) return false;
  return n->kind().is_op() || n->kind().is(Prim::Constant) || n->kind().is(Prim::ListConstruct);
}

// Every user of v is an op or the graph's return (so a replacement of another layout, or a
// view, is acceptable: op inputs and graph outputs take any tensor), and v's layout is not
// observed.
bool only_op_users(const Value* v) {
  if (detail::layout_observed(v)) return false;
  for (const ir::Use& u : v->uses()) {
    const Node* user = u.user;
    const bool graph_output =
        user->kind().is(Prim::Return) && user->owning_block()->owning_node() == nullptr;
    if (!user->kind().is_op() && !graph_output) return false;
  }
  return true;
}

// Builds new nodes just before one node (pass_util's NodeInserter) with the shapes of the
// rewrites: every result has static sizes.
class Emitter : public detail::NodeInserter {
 public:
  using NodeInserter::NodeInserter;

  Value* op(OpKind k, const std::vector<Value*>& inputs) {
    Value* v = NodeInserter::op(k, inputs);
    KILN_CHECK(v->type().is_tensor() && v->type().tensor().static_sizes(),
               "[batch_mm] internal: could not type a new {} node", v->node()->kind().name());
    return v;
  }
  Value* cat(const std::vector<Value*>& elems, int64_t dim) {
    return op(OpKind::Cat, {list(elems), constant(IValue(dim))});
  }
  Value* slice(Value* x, int64_t dim, int64_t start, int64_t end) {
    return op(OpKind::Slice, {x, constant(IValue(dim)), constant(IValue(start)),
                              constant(IValue(end)), constant(IValue(int64_t{1}))});
  }
  Value* view(Value* x, const std::vector<int64_t>& sizes) {
    return op(OpKind::View, {x, constant(IValue(sizes))});
  }
};

// ---- matmul batching ---------------------------------------------------------------------

// A product the pass can merge: which input is shared, which varies, and the dim of the
// varying input (and of the result) along which the pieces are stacked.
struct Product {
  Node* node;
  size_t shared, varying;  // input indices
  int64_t dim;             // stacking dim, non-negative
  std::vector<int64_t> sizes;  // of the varying input
};

// The product n reads as a candidate with `shared_rhs` (rows stacked) or not (columns).
std::optional<Product> as_product(Node* n, bool shared_rhs) {
  if (!n->kind().is_op() || !pure(n)) return std::nullopt;
  const OpKind k = n->kind().op();
  size_t a = 0, b = 1;
  if (k == OpKind::Addmm) {
    // addmm(bias, A, B, beta, alpha): bias must broadcast along the rows, so only the
    // shared-rhs form applies, with a 1-D bias.
    if (!shared_rhs) return std::nullopt;
    const auto bias = static_sizes(n->input(0));
    if (!bias || bias->size() != 1) return std::nullopt;
    a = 1, b = 2;
  } else if (k != OpKind::Mm && k != OpKind::Bmm) {
    return std::nullopt;
  }
  const auto sa = static_sizes(n->input(a)), sb = static_sizes(n->input(b));
  const auto so = static_sizes(n->output());
  if (!sa || !sb || !so || sa->size() < 2 || sa->size() != sb->size()) return std::nullopt;
  if (!dtype_of(n->input(a)) || dtype_of(n->input(a)) != dtype_of(n->input(b)))
    return std::nullopt;
  if (!only_op_users(n->output())) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(sa->size());
  if (shared_rhs) return Product{n, b, a, rank - 2, *sa};
  return Product{n, a, b, rank - 1, *sb};
}

// True when p and q can be one product: same op, same shared value and same other inputs
// (addmm's bias, beta, alpha), varying inputs of one dtype and equal sizes off the stacking dim.
bool compatible(const Product& p, const Product& q) {
  if (p.node->kind() != q.node->kind() || p.shared != q.shared) return false;
  for (size_t i = 0; i < p.node->num_inputs(); ++i)
    if (i != p.varying && p.node->input(i) != q.node->input(i)) return false;
  if (dtype_of(p.node->input(p.varying)) != dtype_of(q.node->input(q.varying))) return false;
  if (p.sizes.size() != q.sizes.size()) return false;
  for (size_t d = 0; d < p.sizes.size(); ++d)
    if (static_cast<int64_t>(d) != p.dim && p.sizes[d] != q.sizes[d]) return false;
  return true;
}

// The nodes of block b after `first` that v depends on (v's backward slice there), or nullopt
// when one of them is not pure. Collected into `slice`.
bool collect_slice(Value* v, Block* b, const std::unordered_set<Node*>& after_first,
                   std::unordered_set<Node*>& slice) {
  Node* n = v->node();
  if (n->owning_block() != b || !after_first.count(n) || slice.count(n)) return true;
  if (!pure(n)) return false;
  slice.insert(n);
  for (Value* in : n->inputs())
    if (!collect_slice(in, b, after_first, slice)) return false;
  return true;
}

// Merging reads the shared operand once instead of n times but copies the varying ones into
// the cat (a read and a write each): worth it when 2 * sum(varying) < (n - 1) * shared.
bool worth_it(const std::vector<Product>& cands, const std::vector<size_t>& group) {
  const Product& p0 = cands[group.front()];
  const int64_t shared = detail::numel(*static_sizes(p0.node->input(p0.shared)));
  int64_t varying = 0;
  for (size_t j : group) varying += detail::numel(cands[j].sizes);
  return 2 * varying < static_cast<int64_t>(group.size() - 1) * shared;
}

class MatmulBatcher {
 public:
  bool changed = false;

  void run(Block* b) {
    for (bool shared_rhs : {true, false}) {
      // Candidates in block order; each is merged at most once per sweep.
      std::vector<Product> cands;
      for (Node* n : b->nodes())
        if (auto p = as_product(n, shared_rhs)) cands.push_back(*p);
      std::vector<bool> used(cands.size(), false);
      for (size_t i = 0; i < cands.size(); ++i) {
        if (used[i]) continue;
        std::vector<size_t> group = grow_group(b, cands, used, i);
        if (group.size() < 2) continue;
        for (size_t j : group) used[j] = true;
        if (!worth_it(cands, group)) continue;
        merge(b, cands, group);
        changed = true;
      }
    }
  }

 private:
  // Starting from cands[first], the compatible later candidates whose varying input does not
  // depend on the result of any product already in the group, and whose backward slice after
  // the first product is pure.
  std::vector<size_t> grow_group(Block* b, const std::vector<Product>& cands,
                                 const std::vector<bool>& used, size_t first) {
    std::vector<size_t> group = {first};
    std::unordered_set<const Value*> tainted = {cands[first].node->output()};
    std::map<const Node*, size_t> index;
    for (size_t j = first + 1; j < cands.size(); ++j)
      if (!used[j] && compatible(cands[first], cands[j])) index[cands[j].node] = j;
    if (index.empty()) return group;
    std::unordered_set<Node*> after_first;
    for (Node* n = cands[first].node->next(); n != b->return_node(); n = n->next()) {
      after_first.insert(n);
      if (auto it = index.find(n); it != index.end()) {
        const Product& p = cands[it->second];
        std::unordered_set<Node*> slice;
        if (!tainted.count(n->input(p.varying)) &&
            collect_slice(n->input(p.varying), b, after_first, slice)) {
          group.push_back(it->second);
          tainted.insert(n->output());
          continue;
        }
      }
      // Propagate: a node reading a tainted value (or any node with blocks, which may read one
      // inside) taints its outputs.
      bool reads = !n->blocks().empty();
      for (Value* in : n->inputs()) reads = reads || tainted.count(in) > 0;
      if (reads)
        for (Value* out : n->outputs()) tainted.insert(out);
    }
    return group;
  }

  void merge(Block* b, const std::vector<Product>& cands, const std::vector<size_t>& group) {
    Node* first = cands[group.front()].node;
    // Hoist the later pieces' computations above the first product, in block order.
    std::unordered_set<Node*> after_first, slice;
    for (Node* n = first->next(); n != b->return_node(); n = n->next()) after_first.insert(n);
    for (size_t j : group) {
      const Product& p = cands[j];
      const bool ok = collect_slice(p.node->input(p.varying), b, after_first, slice);
      KILN_CHECK(ok, "[batch_mm] internal: a grouped product's operand became impure");
    }
    std::vector<Node*> hoist;
    for (Node* n = first->next(); n != b->return_node(); n = n->next())
      if (slice.count(n)) hoist.push_back(n);
    for (Node* n : hoist) n->move_before(first);

    const Product& p0 = cands[group.front()];
    Emitter e(first);
    std::vector<Value*> pieces;
    for (size_t j : group) pieces.push_back(cands[j].node->input(cands[j].varying));
    std::vector<Value*> inputs = first->inputs();
    inputs[p0.varying] = e.cat(pieces, p0.dim);
    Value* merged = e.op(first->kind().op(), inputs);
    int64_t offset = 0;
    for (size_t j : group) {
      const Product& p = cands[j];
      const int64_t len = p.sizes[p.dim];
      p.node->output()->replace_all_uses_with(e.slice(merged, p.dim, offset, offset + len));
      offset += len;
    }
    for (size_t j : group) cands[j].node->destroy();
  }
};

// ---- cat push-down ------------------------------------------------------------------------

struct CatView {
  Node* node;
  std::vector<const Value*> elems;
  int64_t dim;
  std::vector<int64_t> sizes;  // of the result
};

std::optional<CatView> as_cat(Node* n) {
  if (!is_op(n, OpKind::Cat)) return std::nullopt;
  const auto elems = detail::list_elements(n->input(0));
  const auto dim = detail::constant_int(n->input(1));
  const auto sizes = static_sizes(n->output());
  if (!elems || elems->size() < 2 || !dim || !sizes || sizes->empty()) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(sizes->size());
  const int64_t d = *dim < 0 ? *dim + rank : *dim;
  for (const Value* e : *elems) {
    const auto s = static_sizes(e);
    if (!s || static_cast<int64_t>(s->size()) != rank) return std::nullopt;
  }
  return CatView{n, *elems, d, *sizes};
}

class CatPusher {
 public:
  bool changed = false;

  void run(Block* b) {
    for (Node* n : b->nodes()) {
      auto c = as_cat(n);
      if (!c) continue;
      if (consecutive_slices(*c) || consecutive_selects(*c) || through_elementwise(*c))
        changed = true;
    }
  }

 private:
  // cat_d(slice(x, d, s0, e0), slice(x, d, e0, e1), ...) -> slice(x, d, s0, e_last), or x.
  bool consecutive_slices(const CatView& c) {
    Value* base = nullptr;
    int64_t start = 0, end = 0;
    for (size_t i = 0; i < c.elems.size(); ++i) {
      Node* s = c.elems[i]->node();
      if (!is_op(s, OpKind::Slice)) return false;
      const auto dim = detail::constant_int(s->input(1)), st = detail::constant_int(s->input(2)),
                 en = detail::constant_int(s->input(3)), step = detail::constant_int(s->input(4));
      const auto bs = static_sizes(s->input(0));
      if (!dim || !st || !en || !step || *step != 1 || !bs) return false;
      const int64_t d = *dim < 0 ? *dim + static_cast<int64_t>(bs->size()) : *dim;
      if (d != c.dim || (i > 0 && (s->input(0) != base || *st != end))) return false;
      if (i == 0) base = s->input(0), start = *st;
      end = *en;
    }
    Value* out = c.node->output();
    // cat returns a fresh tensor; a view of base must not become observable in its place.
    if (!only_op_users(out)) return false;
    if (detail::reaches_graph_output(out) && detail::may_alias_input(base)) return false;
    const auto bs = static_sizes(base);
    Value* r = base;
    if (!(start == 0 && end == (*bs)[c.dim])) r = Emitter(c.node).slice(base, c.dim, start, end);
    out->replace_all_uses_with(r);
    return true;
  }

  // cat_d(select(x, d, i0), select(x, d, i0 + 1), ...) of a contiguous x -> a view of x's
  // rows i0.. with dims d and d + 1 merged (a sequence's steps stacked back into one matrix).
  bool consecutive_selects(const CatView& c) {
    Value* base = nullptr;
    int64_t first = 0;
    for (size_t i = 0; i < c.elems.size(); ++i) {
      Node* s = c.elems[i]->node();
      if (!is_op(s, OpKind::Select)) return false;
      const auto dim = detail::constant_int(s->input(1)), index = detail::constant_int(s->input(2));
      const auto bs = static_sizes(s->input(0));
      if (!dim || !index || !bs || bs->size() != c.sizes.size() + 1) return false;
      const int64_t rank = static_cast<int64_t>(bs->size());
      const int64_t d = *dim < 0 ? *dim + rank : *dim;
      const int64_t at = *index < 0 ? *index + (*bs)[d] : *index;
      if (d != c.dim || (i > 0 && (s->input(0) != base || at != first + static_cast<int64_t>(i))))
        return false;
      if (i == 0) base = s->input(0), first = at;
    }
    const ir::TensorType& bt = base->type().tensor();
    if (bt.contiguity != ir::Contiguity::Contiguous) return false;
    Value* out = c.node->output();
    if (!only_op_users(out)) return false;
    if (detail::reaches_graph_output(out) && detail::may_alias_input(base)) return false;
    const auto bs = *static_sizes(base);
    Emitter e(c.node);
    Value* rows = base;
    const int64_t n = static_cast<int64_t>(c.elems.size());
    if (!(first == 0 && n == bs[c.dim])) rows = e.slice(base, c.dim, first, first + n);
    out->replace_all_uses_with(e.view(rows, c.sizes));
    return true;
  }

  // cat_d([f(a_i, b_i, ...)]) -> f(cat_d(a_i), cat_d(b_i), ...).
  bool through_elementwise(const CatView& c) {
    const Node* f0 = c.elems[0]->node();
    if (!f0->kind().is_op() || !ops::op_info(f0->kind().op()).is_elementwise() || !pure(f0))
      return false;
    const auto out_dtype = dtype_of(c.elems[0]);
    for (const Value* e : c.elems) {
      const Node* f = e->node();
      if (f->kind() != f0->kind() || f->num_outputs() != 1 || e->uses().size() != 1 ||
          f->num_inputs() != f0->num_inputs() || dtype_of(e) != out_dtype)
        return false;
    }
    // Each operand: the same value everywhere (non-tensors; tensors of size 1 along d), or
    // tensors of one dtype whose pieces stack along d.
    const bool is_where = is_op(f0, OpKind::Where);
    std::vector<int> plan(f0->num_inputs(), 0);  // 0: shared as is, 1: stacked
    for (size_t p = 0; p < f0->num_inputs(); ++p) {
      const Value* v0 = f0->input(p);
      bool same = true;
      for (const Value* e : c.elems) same = same && e->node()->input(p) == v0;
      if (!v0->type().is_tensor()) {
        if (!same) return false;
        continue;
      }
      // Promotion between a dimensioned tensor and a 0-dim one differs from that between two
      // dimensioned tensors: only operands already of the result dtype (where's condition:
      // bool) can change rank safely.
      const auto want = is_where && p == 0 ? std::optional<ScalarType>(kBool) : out_dtype;
      const int64_t rank = static_cast<int64_t>(c.sizes.size());
      std::vector<std::vector<int64_t>> ext;
      for (const Value* e : c.elems) {
        const Value* y = e->node()->input(p);
        auto s = static_sizes(y);
        if (!s || dtype_of(y) != want || static_cast<int64_t>(s->size()) > rank) return false;
        s->insert(s->begin(), static_cast<size_t>(rank) - s->size(), 1);
        ext.push_back(*s);
      }
      if (same && ext[0][c.dim] == 1) continue;
      for (size_t i = 0; i < c.elems.size(); ++i) {
        const auto piece = *static_sizes(c.elems[i]);
        for (int64_t d = 0; d < rank; ++d) {
          const bool ok = d == c.dim ? ext[i][d] == piece[d] : ext[i][d] == ext[0][d];
          if (!ok) return false;
        }
      }
      plan[p] = 1;
    }
    Emitter e(c.node);
    std::vector<Value*> stacked(f0->num_inputs(), nullptr);
    for (size_t p = 0; p < f0->num_inputs(); ++p) {
      if (!plan[p]) continue;
      std::vector<Value*> pieces;
      const int64_t rank = static_cast<int64_t>(c.sizes.size());
      for (const Value* el : c.elems) {
        Value* y = el->node()->input(p);
        auto s = *static_sizes(y);
        if (static_cast<int64_t>(s.size()) < rank) {
          s.insert(s.begin(), static_cast<size_t>(rank) - s.size(), 1);
          y = e.view(y, s);
        }
        pieces.push_back(y);
      }
      stacked[p] = e.cat(pieces, c.dim);
    }
    std::vector<Value*> inputs = f0->inputs();
    for (size_t p = 0; p < inputs.size(); ++p)
      if (plan[p]) inputs[p] = stacked[p];
    // The checks above make the result fit; replace() leaves the graph as it was if not.
    return e.replace(c.node->output(), e.op(f0->kind().op(), inputs));
  }
};

}  // namespace

bool batch_matmuls(ir::Graph& g) {
  bool changed = false;
  for (int round = 0; round < 64; ++round) {
    bool any = false;
    detail::for_each_block(g.block(), [&](Block* b) {
      if (b->is_isolated()) return;
      MatmulBatcher m;
      m.run(b);
      CatPusher c;
      c.run(b);
      any = any || m.changed || c.changed;
    });
    if (!any) break;
    changed = true;
    // The cats and pieces a round replaced: gone before the next round, so a replaced cat
    // cannot match again and a piece read by a replaced op counts its single real use.
    eliminate_dead_code(g);
  }
  return changed;
}

}  // namespace kiln::passes
