// Convolution recognition (convolution.h). Every new node is typed by the shape rules; a
// rewrite whose result does not get the replaced value's sizes is taken back.
#include "kiln/passes/convolution.h"

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Value;
using ops::OpKind;

using detail::constant_int_list;
using detail::dtype_of;
using detail::is_op;
using detail::numel;
using detail::static_sizes;

bool float_type(const Value* v) {
  const auto dt = dtype_of(v);
  return dt && (*dt == kFloat || *dt == kDouble);
}

// The window arguments of an im2col node, each as a pair; nullopt unless all are constants.
struct Window {
  std::vector<int64_t> kernel, dilation, padding, stride;
};
std::optional<Window> window_of(const Node* n) {
  Window w;
  std::vector<int64_t>* fields[] = {&w.kernel, &w.dilation, &w.padding, &w.stride};
  for (size_t i = 0; i < 4; ++i) {
    auto l = constant_int_list(n->input(i + 1));
    if (!l || l->empty() || l->size() > 2) return std::nullopt;
    if (l->size() == 1) l->push_back(l->front());
    *fields[i] = *l;
  }
  return w;
}

class Rewriter {
 public:
  bool changed = false;

  void run(Block* b) {
    for (Node* n : b->nodes()) {
      if (is_op(n, OpKind::Bmm)) changed = product_with_columns(n) || changed;
    }
    for (Node* n : b->nodes()) {
      if (is_op(n, OpKind::Cat)) changed = cat_of_convolutions(n) || changed;
    }
    for (Node* n : b->nodes()) {
      if (is_op(n, OpKind::Add)) changed = add_as_bias(n) || changed;
    }
  }

 private:
  // A value equal to every batch slice of a ([N, O, K]), as a [1, O, K] or [O, K] tensor, or
  // nullptr. Cats of such pieces are rebuilt (through e) from the pieces' sources.
  static Value* batch_invariant(Value* a, int64_t batch, detail::NodeInserter& e) {
    const auto s = static_sizes(a);
    if (!s || s->size() != 3) return nullptr;
    if ((*s)[0] == 1 || batch == 1) return a;
    Node* n = a->node();
    if (is_op(n, OpKind::Expand) || is_op(n, OpKind::Copy)) {
      // The source itself when it is one matrix of a's [O, K]; a copy may also copy a
      // broadcast.
      Value* src = n->input(0);
      const auto ss = static_sizes(src);
      const bool matrix = ss && (ss->size() == 2 || (ss->size() == 3 && (*ss)[0] == 1)) &&
                          (*ss)[ss->size() - 2] == (*s)[1] && (*ss)[ss->size() - 1] == (*s)[2];
      if (matrix) return src;
      return is_op(n, OpKind::Copy) ? batch_invariant(src, batch, e) : nullptr;
    }
    if (is_op(n, OpKind::Cat)) {
      const auto dim = detail::constant_int(n->input(1));
      const auto elems = detail::list_elements(n->input(0));
      if (!dim || !elems || (*dim != 1 && *dim != 2 && *dim != -1 && *dim != -2)) return nullptr;
      std::vector<Value*> pieces;
      for (const Value* el : *elems) {
        Value* p = batch_invariant(const_cast<Value*>(el), batch, e);
        if (p == nullptr) return nullptr;
        auto ps = *static_sizes(p);
        if (ps.size() == 2) p = e.op(OpKind::View, {p, e.constant(IValue(std::vector<int64_t>{
                                                           1, ps[0], ps[1]}))});
        pieces.push_back(p);
      }
      return e.op(OpKind::Cat, {e.list(pieces), e.constant(IValue(*dim < 0 ? *dim + 3 : *dim))});
    }
    return nullptr;
  }

  // bmm(A, im2col(x, ...)) -> view(conv2d(x, view(W, [O, C, kh, kw]), None, ...), [N, O, L]).
  bool product_with_columns(Node* n) {
    Node* cols = n->input(1)->node();
    if (!is_op(cols, OpKind::Im2col)) return false;
    Value* x = cols->input(0);
    const auto xs = static_sizes(x);
    const auto win = window_of(cols);
    const auto as = static_sizes(n->input(0)), out = static_sizes(n->output());
    if (!xs || xs->size() != 4 || !win || !as || as->size() != 3 || !out) return false;
    if (!float_type(x) || dtype_of(n->input(0)) != dtype_of(x)) return false;
    const int64_t N = (*xs)[0], C = (*xs)[1], O = (*as)[1];
    const int64_t kh = win->kernel[0], kw = win->kernel[1];
    if ((*as)[0] != N || (*as)[2] != C * kh * kw || O == 0) return false;
    detail::NodeInserter e(n);
    Value* w = batch_invariant(n->input(0), N, e);
    if (w == nullptr) {
      e.undo();
      return false;
    }
    if (!detail::is_contiguous(w)) w = e.op(OpKind::Copy, {w});
    // A contiguous input gives a contiguous result (a channels-last one would not view as
    // [N, O, L]); copying a strided input costs 1 / (kh * kw) of the columns it replaces.
    if (!detail::is_contiguous(x)) x = e.op(OpKind::Copy, {x});
    Value* weight = e.op(OpKind::View, {w, e.constant(IValue(std::vector<int64_t>{O, C, kh, kw}))});
    Value* conv = e.op(OpKind::Conv2d,
                       {x, weight, e.constant(IValue()), e.constant(IValue(win->stride)),
                        e.constant(IValue(win->padding)), e.constant(IValue(win->dilation)),
                        e.constant(IValue(int64_t{1}))});
    return e.replace(n->output(), e.op(OpKind::View, {conv, e.constant(IValue(*out))}));
  }

  // The conv2d node y is computed by, through a chain of views, when y and every value on the
  // way are read once (so nothing else sees the convolution's result); nullptr otherwise.
  static Node* conv_behind(Value* y) {
    Value* v = y;
    while (v->uses().size() == 1 && is_op(v->node(), OpKind::View)) v = v->node()->input(0);
    if (v->uses().size() != 1 || !is_op(v->node(), OpKind::Conv2d)) return nullptr;
    return v->node();
  }

  // A view of a contiguous [N, O, H, W] convolution result (only the last shape in a chain of
  // views matters) keeps the channels at dim 1 when it starts with [N, O].
  static bool keeps_channels(const std::vector<int64_t>& conv, const std::vector<int64_t>& y) {
    return y.size() >= 2 && y[0] == conv[0] && y[1] == conv[1];
  }

  // cat_1([conv2d(x, w_i, None, s, p, d, 1) (or views of them keeping [N, O_i])]) ->
  // conv2d(x, cat_0(w_i), ...) viewed as the cat.
  bool cat_of_convolutions(Node* n) {
    const auto dim = detail::constant_int(n->input(1));
    const auto elems = detail::list_elements(n->input(0));
    const auto out = static_sizes(n->output());
    if (!dim || !elems || elems->size() < 2 || !out || out->size() < 2) return false;
    if (*dim != 1 && *dim != 1 - static_cast<int64_t>(out->size())) return false;
    std::vector<Value*> weights;
    Node* first = nullptr;
    for (const Value* el : *elems) {
      Node* conv = conv_behind(const_cast<Value*>(el));
      if (conv == nullptr || el->uses().size() != 1) return false;
      const IValue* bias = detail::constant_of(conv->input(2));
      const auto cs = static_sizes(conv->output()), es = static_sizes(el);
      if (bias == nullptr || !bias->is_none() || !cs || cs->size() != 4 || !es ||
          !keeps_channels(*cs, *es) || !detail::is_contiguous(conv->output()))
        return false;
      if (first == nullptr) first = conv;
      if (conv->input(0) != first->input(0)) return false;
      for (size_t i = 3; i < conv->num_inputs(); ++i) {
        const IValue *a = detail::constant_of(conv->input(i)),
                     *b = detail::constant_of(first->input(i));
        if (a == nullptr || b == nullptr || !detail::same_constant(*a, *b)) return false;
      }
      if (detail::constant_int(conv->input(6)) != int64_t{1}) return false;
      if (dtype_of(conv->input(1)) != dtype_of(first->input(1))) return false;
      weights.push_back(conv->input(1));
    }
    detail::NodeInserter e(n);
    std::vector<Value*> inputs = first->inputs();
    inputs[1] = e.op(OpKind::Cat, {e.list(weights), e.constant(IValue(int64_t{0}))});
    Value* merged = e.op(OpKind::Conv2d, inputs);
    return e.replace(n->output(), e.op(OpKind::View, {merged, e.constant(IValue(*out))}));
  }

  // add(y, b) with y a bias-free conv2d (or a view of one keeping [N, O] in front) -> conv2d
  // with bias view(b, [O]), viewed as y.
  bool add_as_bias(Node* n) {
    for (size_t side : {0, 1}) {
      Value* y = n->input(side);
      Value* b = n->input(1 - side);
      Node* conv = conv_behind(y);
      if (conv == nullptr) continue;
      const IValue* bias = detail::constant_of(conv->input(2));
      if (bias == nullptr || !bias->is_none()) continue;
      const auto cs = static_sizes(conv->output()), ys = static_sizes(y), bs = static_sizes(b);
      const auto out = static_sizes(n->output());
      if (!cs || !ys || !bs || !out || cs->size() != 4 || ys->size() < 2 || out != ys) continue;
      if (!keeps_channels(*cs, *ys) || bs->size() > ys->size()) continue;
      if (y != conv->output() && !detail::is_contiguous(conv->output())) continue;
      if (!float_type(y) || dtype_of(b) != dtype_of(y)) continue;
      // b, right-aligned against y: O along dim 1, 1 everywhere else.
      const int64_t O = (*cs)[1], lead = static_cast<int64_t>(ys->size() - bs->size());
      bool per_channel = numel(*bs) == O;
      for (int64_t d = 0; d < static_cast<int64_t>(bs->size()); ++d)
        per_channel = per_channel && ((*bs)[d] == 1 || d + lead == 1);
      if (!per_channel) continue;
      detail::NodeInserter e(n);
      Value* bias_vec = e.op(OpKind::View, {b, e.constant(IValue(std::vector<int64_t>{O}))});
      std::vector<Value*> inputs = conv->inputs();
      inputs[2] = bias_vec;
      Value* biased = e.op(OpKind::Conv2d, inputs);
      if (e.replace(n->output(), e.op(OpKind::View, {biased, e.constant(IValue(*ys))})))
        return true;
    }
    return false;
  }
};

}  // namespace

bool recognize_convolutions(ir::Graph& g) {
  bool changed = false;
  detail::for_each_block(g.block(), [&](Block* b) {
    if (b->is_isolated()) return;
    Rewriter r;
    r.run(b);
    changed = changed || r.changed;
  });
  return changed;
}

}  // namespace kiln::passes
