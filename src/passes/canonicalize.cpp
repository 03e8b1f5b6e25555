// Canonicalisation (see canonicalize.h): peephole rules over single nodes and their producers,
// applied to a fixed point. After shape propagation in the pipeline (the rules check dtypes and
// sizes) and before CSE (which then finds more equal spellings). Each rule is listed, with an
// example, in docs/ir.md.
#include "kiln/passes/canonicalize.h"

#include <cmath>
#include <numeric>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Prim;
using ir::Type;
using ir::Value;
using ops::OpKind;

using detail::dtype_of;
using detail::is_op;
using detail::static_sizes;

// Equal dtype and equal, fully known sizes (static or the same symbols).
bool same_dtype_and_sizes(const Value* a, const Value* b) {
  if (!a->type().is_tensor() || !b->type().is_tensor()) return false;
  const ir::TensorType &x = a->type().tensor(), &y = b->type().tensor();
  if (!x.dtype || !y.dtype || *x.dtype != *y.dtype || !x.sizes || !y.sizes) return false;
  if (x.sizes->size() != y.sizes->size()) return false;
  for (size_t i = 0; i < x.sizes->size(); ++i) {
    const ir::Dim &p = (*x.sizes)[i], &q = (*y.sizes)[i];
    if (p.is_unknown() || !(p == q)) return false;
  }
  return true;
}

Node* producer(const Value* v, OpKind k) {
  Node* n = v->node();
  return is_op(n, k) ? n : nullptr;
}

class Canonicalizer {
 public:
  bool changed = false;

  void run(Block* top) {
    detail::for_each_block(top, [&](Block* b) {
      for (Node* n : b->nodes()) rewrite(n);
    });
  }

 private:
  // Makes n's only output's users read x and drops n. `fresh` says n computes a new tensor (an
  // arithmetic identity) rather than a view of x with x's layout: then the swap must not be
  // observable through layout or aliasing.
  bool forward(Node* n, Value* x, bool fresh) {
    Value* r = n->output();
    if (fresh) {
      if (detail::layout_observed(r)) return false;
      if (detail::reaches_graph_output(r) && detail::may_alias_input(x)) return false;
    }
    if (!detail::can_substitute(r, x)) return false;
    r->replace_all_uses_with(x);
    n->destroy();
    changed = true;
    return true;
  }

  Value* constant(Node* before, IValue v) { return detail::insert_constant(before, std::move(v)); }

  void rewrite(Node* n) {
    if (n->kind().is(Prim::TupleUnpack) || n->kind().is(Prim::ListUnpack)) {
      unpack_of_construct(n);
      return;
    }
    if (!n->kind().is_op()) return;
    switch (n->kind().op()) {
      case OpKind::Mul:
        identity_operand(n, 1.0, /*both_sides=*/true) || constant_right(n);
        return;
      case OpKind::Div:
        identity_operand(n, 1.0, false);
        return;
      case OpKind::Sub:
        identity_operand(n, 0.0, false);
        return;
      case OpKind::Add:
        add_zero(n) || constant_right(n);
        return;
      case OpKind::Neg:
      case OpKind::LogicalNot:
        involution(n);
        return;
      case OpKind::Permute:
        permute(n);
        return;
      case OpKind::View:
        view(n);
        return;
      case OpKind::Expand:
        expand(n);
        return;
      case OpKind::Slice:
        whole_slice(n) || view_of_elementwise(n);
        return;
      case OpKind::Select:
        view_of_elementwise(n);
        return;
      case OpKind::Cast:
        if (dtype_of(n->input(0)) && detail::constant_of(n->input(1)) &&
            *dtype_of(n->input(0)) == detail::constant_of(n->input(1))->toScalarType())
          forward(n, n->input(0), false);
        return;
      case OpKind::Copy:
        if (producer(n->input(0), OpKind::Copy)) forward(n, n->input(0), false);
        return;
      default:
        if (detail::bitwise_commutative(n->kind().op())) constant_right(n);
        return;
    }
  }

  // x * 1, 1 * x, x / 1, x - 0 -> x when the result has x's dtype and sizes (a wrapped 1.0
  // would make an integer x float; a broadcasting operand would change the sizes).
  bool identity_operand(Node* n, double identity, bool both_sides) {
    for (size_t side = 0; side < (both_sides ? 2u : 1u); ++side) {
      const auto c = detail::constant_number(n->input(1 - side));
      if (!c || *c != identity) continue;
      Value* x = n->input(side);
      if (same_dtype_and_sizes(x, n->output()) && forward(n, x, true)) return true;
    }
    return false;
  }

  // x + 0 -> x only for integers and bools: for floats -0.0 + 0 is +0.0. x + (-0.0) -> x holds
  // for every float.
  bool add_zero(Node* n) {
    for (size_t side = 0; side < 2; ++side) {
      const IValue* c = detail::constant_of(n->input(1 - side));
      if (c == nullptr || !c->is_scalar() || c->toDouble() != 0.0) continue;
      Value* x = n->input(side);
      const auto dt = dtype_of(x);
      if (!dt) continue;
      const bool exact = !is_floating_point(*dt) || (c->is_double() && std::signbit(c->toDouble()));
      if (exact && same_dtype_and_sizes(x, n->output()) && forward(n, x, true)) return true;
    }
    return false;
  }

  // op(2, x) -> op(x, 2) for ops whose operands commute bit for bit, so that CSE sees one
  // spelling. Not for a NaN constant (two NaN operands keep the first one's payload).
  bool constant_right(Node* n) {
    if (!detail::bitwise_commutative(n->kind().op())) return false;
    const IValue* a = detail::constant_of(n->input(0));
    if (a == nullptr || detail::constant_of(n->input(1)) != nullptr) return false;
    if (a->is_double() && std::isnan(a->toDouble())) return false;
    if (a->is_tensor()) return false;
    Value* lhs = n->input(0);
    Value* rhs = n->input(1);
    n->replace_input(0, rhs);
    n->replace_input(1, lhs);
    changed = true;
    return true;
  }

  // neg(neg(x)) -> x, logical_not(logical_not(x)) -> x (x bool).
  void involution(Node* n) {
    Node* inner = producer(n->input(0), n->kind().op());
    if (inner == nullptr) return;
    Value* x = inner->input(0);
    if (n->kind().op() == OpKind::LogicalNot && dtype_of(x) != kBool) return;
    if (same_dtype_and_sizes(x, n->output())) forward(n, x, true);
  }

  // permute(permute(x, p), q) -> permute(x, p o q); permute(x, identity) -> x.
  void permute(Node* n) {
    auto q = detail::constant_int_list(n->input(1));
    if (!q) return;
    const int64_t rank = static_cast<int64_t>(q->size());
    for (int64_t& d : *q) {
      if (d < -rank || d >= std::max<int64_t>(rank, 1)) return;
      if (d < 0) d += rank;
    }
    if (Node* inner = producer(n->input(0), OpKind::Permute)) {
      auto p = detail::constant_int_list(inner->input(1));
      if (!p || static_cast<int64_t>(p->size()) != rank) return;
      std::vector<int64_t> composed(rank);
      for (int64_t i = 0; i < rank; ++i) {
        int64_t d = (*p)[(*q)[i]];
        composed[i] = d < 0 ? d + rank : d;
      }
      n->replace_input(1, constant(n, composed));
      n->replace_input(0, inner->input(0));
      changed = true;
      return;
    }
    std::vector<int64_t> identity(rank);
    std::iota(identity.begin(), identity.end(), 0);
    const auto in = n->input(0)->type();
    if (*q == identity && in.is_tensor() && in.tensor().sizes &&
        static_cast<int64_t>(in.tensor().sizes->size()) == rank)
      forward(n, n->input(0), false);
  }

  // view(x, sizes of x) -> x (the result's type says which sizes); view(view(x, a), b) -> view(x,
  // b) when x is contiguous (then any view of it exists).
  void view(Node* n) {
    const auto out = static_sizes(n->output());
    const auto in = static_sizes(n->input(0));
    if (out && in && *out == *in) {
      forward(n, n->input(0), false);
      return;
    }
    Node* inner = producer(n->input(0), OpKind::View);
    if (inner == nullptr) return;
    const Type& x = inner->input(0)->type();
    if (x.is_tensor() && x.tensor().contiguity == ir::Contiguity::Contiguous) {
      n->replace_input(0, inner->input(0));
      changed = true;
    }
  }

  // expand(x, sizes of x) -> x; expand(expand(x, a), b) -> expand(x, b), with b's -1s taken
  // from the inner result's sizes.
  void expand(Node* n) {
    auto req = detail::constant_int_list(n->input(1));
    if (!req) return;
    const auto in = static_sizes(n->input(0));
    if (in && in->size() == req->size()) {
      bool same = true;
      for (size_t i = 0; i < in->size(); ++i) same &= (*req)[i] == -1 || (*req)[i] == (*in)[i];
      if (same) {
        forward(n, n->input(0), false);
        return;
      }
    }
    Node* inner = producer(n->input(0), OpKind::Expand);
    if (inner == nullptr) return;
    if (std::find(req->begin(), req->end(), -1) != req->end()) {
      if (!in || in->size() > req->size()) return;
      const size_t lead = req->size() - in->size();
      for (size_t i = 0; i < req->size(); ++i)
        if ((*req)[i] == -1) {
          if (i < lead) return;
          (*req)[i] = (*in)[i - lead];
        }
    }
    n->replace_input(1, constant(n, *req));
    n->replace_input(0, inner->input(0));
    changed = true;
  }

  // slice(x, d, 0, end, 1) covering the whole dim -> x.
  bool whole_slice(Node* n) {
    const auto dim = detail::constant_int(n->input(1)), start = detail::constant_int(n->input(2)),
               end = detail::constant_int(n->input(3)), step = detail::constant_int(n->input(4));
    const auto in = static_sizes(n->input(0));
    if (!dim || !start || !end || !step || !in || in->empty() || *start != 0 || *step != 1)
      return false;
    const int64_t rank = static_cast<int64_t>(in->size());
    if (*dim < -rank || *dim >= rank) return false;
    const int64_t size = (*in)[*dim < 0 ? *dim + rank : *dim];
    return *end >= size && forward(n, n->input(0), false);
  }

  // slice / select of an elementwise result read only through such views -> the op on the
  // same view of each operand (an operand broadcast along the dim is kept, or has its size-1
  // dim selected away). Each element is computed from the same values, so the result is the
  // same bit for bit; the full result is never materialised, and a kernel after a library call
  // reads the call's pieces (an LSTM's gates chunked after the matmuls) directly.
  //   before: %g = add(%a, %b); %i = slice(%g, %one, %zero, %h, %one)
  //   after:  %ai = slice(%a, %one, %zero, %h, %one); %bi = slice(%b, ...); %i = add(%ai, %bi)
  bool view_of_elementwise(Node* n) {
    Value* e = n->input(0);
    const Node* f = e->node();
    if (!f->kind().is_op() || f->num_outputs() != 1 || !f->blocks().empty() ||
        detail::draws_random(f) || !ops::op_info(f->kind().op()).is_elementwise())
      return false;
    const auto sizes = static_sizes(e);
    const auto dim = detail::constant_int(n->input(1));
    if (!sizes || sizes->empty() || !dim || !static_sizes(n->output())) return false;
    const int64_t rank = static_cast<int64_t>(sizes->size());
    if (*dim < -rank || *dim >= rank) return false;
    const int64_t d = *dim < 0 ? *dim + rank : *dim;
    for (const ir::Use& u : e->uses())
      if (!is_op(u.user, OpKind::Slice) && !is_op(u.user, OpKind::Select)) return false;
    if (detail::layout_observed(n->output())) return false;
    const bool select = is_op(n, OpKind::Select);
    detail::NodeInserter add(n);
    std::vector<Value*> inputs = f->inputs();
    for (Value*& y : inputs) {
      if (!y->type().is_tensor()) continue;
      const auto ys = static_sizes(y);
      if (!ys) {
        add.undo();
        return false;
      }
      const int64_t yd = d - (rank - static_cast<int64_t>(ys->size()));
      if (yd < 0 || ((*ys)[yd] == 1 && !select)) continue;  // broadcast along d: as it is
      std::vector<Value*> args = {y, add.constant(IValue(yd))};
      if (select)
        args.push_back((*ys)[yd] == 1 ? add.constant(IValue(int64_t{0})) : n->input(2));
      else
        args.insert(args.end(), {n->input(2), n->input(3), n->input(4)});
      y = add.op(n->kind().op(), args);
    }
    if (!add.replace(n->output(), add.op(f->kind().op(), inputs))) return false;
    n->destroy();
    changed = true;
    return true;
  }

  // tuple_unpack(tuple_construct(a, b)) -> a, b; the same for lists of the right length.
  void unpack_of_construct(Node* n) {
    const Node* src = n->input(0)->node();
    const bool tuple = n->kind().is(Prim::TupleUnpack);
    if (!src->kind().is(tuple ? Prim::TupleConstruct : Prim::ListConstruct)) return;
    if (src->num_inputs() != n->num_outputs()) return;
    for (size_t i = 0; i < n->num_outputs(); ++i)
      if (!detail::can_substitute(n->output(i), src->input(i))) return;
    for (size_t i = 0; i < n->num_outputs(); ++i)
      n->output(i)->replace_all_uses_with(src->input(i));
    n->destroy();
    changed = true;
  }
};

}  // namespace

bool canonicalize(ir::Graph& g) {
  bool any = false;
  for (bool again = true; again;) {
    Canonicalizer c;
    c.run(g.block());
    again = c.changed;
    any |= c.changed;
  }
  return any;
}

}  // namespace kiln::passes
