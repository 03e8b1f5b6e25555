// Constant folding and propagation (see constant_folding.h): evaluates constant ops with the
// eager kernels, builds constant lists and tuples, and resolves if/loop nodes whose control is a
// constant. After shape propagation in the pipeline, whose types bound what folding creates.
#include "kiln/passes/constant_folding.h"

#include "kiln/core/error.h"
#include "kiln/ops/call.h"
#include "kiln/passes/shape_rules.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Prim;
using ir::Type;
using ir::Value;

class Folder {
 public:
  explicit Folder(const FoldOptions& options) : options_(options) {}
  bool changed = false;

  void block(Block* b) {
    for (Node* n : b->nodes()) {
      for (Block* nested : n->blocks()) block(nested);
      if (n->kind().is_op()) {
        fold_op(n);
        continue;
      }
      switch (n->kind().prim()) {
        case Prim::ListConstruct:
          fold_list(n);
          break;
        case Prim::TupleConstruct:
          fold_tuple(n);
          break;
        case Prim::ListUnpack:
        case Prim::TupleUnpack:
          fold_unpack(n);
          break;
        case Prim::If:
          fold_if(n);
          break;
        case Prim::Loop:
          fold_loop(n);
          break;
        default:
          break;
      }
    }
  }

 private:
  // Replaces n's outputs by constants holding values (when each fits the output's type) and
  // destroys n.
  bool replace_with_constants(Node* n, const std::vector<IValue>& values) {
    std::vector<Node*> consts;
    for (size_t i = 0; i < values.size(); ++i) {
      const Type& declared = n->output(i)->type();
      Type t = ir::type_of(values[i]);
      if (!ir::mismatch(declared, values[i]).empty()) return discard(consts);
      if (!is_subtype_of(t, declared)) t = declared;  // e.g. int? holding an int
      Node* c = n->owning_graph()->create_constant(values[i], t);
      c->set_loc(n->loc());
      c->output()->set_debug_name(n->output(i)->debug_name());
      consts.push_back(c);
    }
    for (size_t i = 0; i < consts.size(); ++i) {
      consts[i]->insert_before(n);
      n->output(i)->replace_all_uses_with(consts[i]->output());
    }
    n->destroy();
    changed = true;
    return true;
  }
  static bool discard(const std::vector<Node*>& nodes) {
    for (Node* c : nodes) c->destroy();
    return false;
  }

  void fold_op(Node* n) {
    if (detail::draws_random(n)) return;
    std::vector<IValue> args;
    for (const Value* v : n->inputs()) {
      const IValue* c = detail::constant_of(v);
      if (c == nullptr) return;
      args.push_back(*c);
    }
    // Only results whose size the types bound; as_strided would see a compact copy's layout.
    const std::vector<Type> types = infer_output_types(n);
    for (size_t i = 0; i < n->num_outputs(); ++i) {
      const Type t = detail::refine(n->output(i)->type(), types[i]);
      if (!t.is_tensor()) return;
      const auto sizes = t.tensor().static_sizes();
      if (!sizes) return;
      int64_t numel = 1;
      for (int64_t s : *sizes) numel *= s;
      if (numel > options_.max_elements) return;
      if (detail::layout_observed(n->output(i))) return;
    }
    std::vector<IValue> results;
    try {
      results = ops::call(n->kind().op(), args);
    } catch (const Error&) {
      return;  // invalid arguments: the error is the interpreter's (or the user's) to see
    }
    for (IValue& r : results)
      if (r.is_tensor() && r.toTensor().defined()) r = IValue(r.toTensor().clone());
    replace_with_constants(n, results);
  }

  void fold_list(Node* n) {
    if (n->num_inputs() == 0) return;
    std::vector<const IValue*> elems;
    for (const Value* v : n->inputs()) {
      const IValue* c = detail::constant_of(v);
      if (c == nullptr) return;
      elems.push_back(c);
    }
    IValue list;
    if (elems[0]->is_int()) {
      std::vector<int64_t> v;
      for (const IValue* e : elems) {
        if (!e->is_int()) return;
        v.push_back(e->toInt());
      }
      list = IValue(std::move(v));
    } else if (elems[0]->is_double()) {
      std::vector<double> v;
      for (const IValue* e : elems) {
        if (!e->is_double()) return;
        v.push_back(e->toDouble());
      }
      list = IValue(std::move(v));
    } else if (elems[0]->is_tensor()) {
      std::vector<Tensor> v;
      for (const IValue* e : elems) {
        if (!e->is_tensor() || !e->toTensor().defined()) return;
        v.push_back(e->toTensor());
      }
      list = IValue(std::move(v));
    } else {
      return;
    }
    replace_with_constants(n, {list});
  }

  void fold_tuple(Node* n) {
    std::vector<IValue> elems;
    for (const Value* v : n->inputs()) {
      const IValue* c = detail::constant_of(v);
      if (c == nullptr) return;
      elems.push_back(*c);
    }
    replace_with_constants(n, {IValue::tuple(std::move(elems))});
  }

  void fold_unpack(Node* n) {
    const IValue* c = detail::constant_of(n->input(0));
    if (c == nullptr) return;
    std::vector<IValue> out;
    if (c->is_tuple()) {
      out = c->toTuple();
    } else if (c->is_int_list()) {
      for (int64_t v : c->toIntList()) out.emplace_back(v);
    } else if (c->is_double_list()) {
      for (double v : c->toDoubleList()) out.emplace_back(v);
    } else if (c->is_tensor_list()) {
      for (const Tensor& t : c->toTensorList()) {
        if (!t.defined()) return;
        out.emplace_back(t);
      }
    }
    if (out.size() != n->num_outputs()) return;  // fails at run time: leave it
    replace_with_constants(n, out);
  }

  // if on a constant: the taken block's nodes move in front of the node.
  void fold_if(Node* n) {
    const auto cond = detail::constant_bool(n->input(0));
    if (!cond) return;
    Block* taken = n->block(*cond ? 0 : 1);
    for (Node* m : taken->nodes()) m->move_before(n);
    for (size_t i = 0; i < n->num_outputs(); ++i)
      n->output(i)->replace_all_uses_with(taken->output(i));
    n->destroy();
    changed = true;
  }

  // A loop that runs no iteration returns its initial values.
  void fold_loop(Node* n) {
    const auto trips = detail::constant_int(n->input(0));
    if (!trips || *trips > 0) return;
    for (size_t i = 0; i < n->num_outputs(); ++i)
      n->output(i)->replace_all_uses_with(n->input(i + 1));
    n->destroy();
    changed = true;
  }

  FoldOptions options_;
};

}  // namespace

bool fold_constants(ir::Graph& g, const FoldOptions& options) {
  bool any = false;
  for (bool again = true; again;) {
    Folder f(options);
    f.block(g.block());
    again = f.changed;
    any |= f.changed;
  }
  return any;
}

}  // namespace kiln::passes
