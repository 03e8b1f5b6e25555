// Helpers the passes share (see pass_util.h): constant arguments, traits, type refinement and
// the use-chasing queries (layout observed, graph outputs, substitution) rewrites ask before
// they replace a value.
#include "passes/pass_util.h"

#include <bit>
#include <cstring>
#include <unordered_set>

#include "kiln/passes/shape_rules.h"

namespace kiln::passes::detail {

using ir::Block;
using ir::Node;
using ir::Prim;
using ir::Type;
using ir::Value;

const IValue* constant_of(const Value* v) {
  const Node* n = v->node();
  if (!n->kind().is(Prim::Constant)) return nullptr;
  return &n->attr("value");
}

std::optional<int64_t> constant_int(const Value* v) {
  const IValue* c = constant_of(v);
  if (c == nullptr || !c->is_int()) return std::nullopt;
  return c->toInt();
}

std::optional<bool> constant_bool(const Value* v) {
  const IValue* c = constant_of(v);
  if (c == nullptr || !c->is_bool()) return std::nullopt;
  return c->toBool();
}

std::optional<double> constant_number(const Value* v) {
  const IValue* c = constant_of(v);
  if (c == nullptr || !c->is_scalar()) return std::nullopt;
  return c->toDouble();
}

std::optional<std::vector<int64_t>> constant_int_list(const Value* v) {
  if (const IValue* c = constant_of(v)) {
    if (c->is_int_list()) return c->toIntList();
    return std::nullopt;
  }
  auto elems = list_elements(v);
  if (!elems) return std::nullopt;
  std::vector<int64_t> out;
  for (const Value* e : *elems) {
    auto i = constant_int(e);
    if (!i) return std::nullopt;
    out.push_back(*i);
  }
  return out;
}

std::optional<std::vector<const Value*>> list_elements(const Value* v) {
  const Node* n = v->node();
  if (!n->kind().is(Prim::ListConstruct)) return std::nullopt;
  return std::vector<const Value*>(n->inputs().begin(), n->inputs().end());
}

bool draws_random(const Node* n) {
  if (n->kind().is_op()) return ops::op_info(n->kind().op()).has(ops::kRandom);
  for (const Block* b : n->blocks())
    for (const Node* m : b->nodes())
      if (draws_random(m)) return true;
  return false;
}

namespace {

bool same_tensor(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined() || a.is_same(b)) return true;
  if (a.dtype() != b.dtype() || a.device() != b.device() || !a.sizes().equals(b.sizes()))
    return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(),
                     static_cast<size_t>(x.numel()) * element_size(x.dtype())) == 0;
}

}  // namespace

bool same_constant(const IValue& a, const IValue& b) {
  if (a.tag() != b.tag()) return false;
  switch (a.tag()) {
    case IValue::Tag::Double:
      return std::bit_cast<uint64_t>(a.toDouble()) == std::bit_cast<uint64_t>(b.toDouble());
    case IValue::Tag::DoubleList: {
      const auto &x = a.toDoubleList(), &y = b.toDoubleList();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (std::bit_cast<uint64_t>(x[i]) != std::bit_cast<uint64_t>(y[i])) return false;
      return true;
    }
    case IValue::Tag::Tensor:
      return same_tensor(a.toTensor(), b.toTensor());
    case IValue::Tag::TensorList: {
      const auto &x = a.toTensorList(), &y = b.toTensorList();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!same_tensor(x[i], y[i])) return false;
      return true;
    }
    case IValue::Tag::Tuple: {
      const auto &x = a.toTuple(), &y = b.toTuple();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!same_constant(x[i], y[i])) return false;
      return true;
    }
    default:
      return a == b;
  }
}

bool bitwise_commutative(ops::OpKind k) {
  return ops::op_info(k).has(ops::kCommutative) && k != ops::OpKind::Maximum &&
         k != ops::OpKind::Minimum;
}

// ---- types --------------------------------------------------------------------------------------
namespace {

ir::Dim refine_dim(const ir::Dim& d, const ir::Dim& i) {
  if (d.is_unknown()) return i;
  if (d.is_symbol() && i.is_static()) return i;
  return d;
}

ir::TensorType refine_tensor(const ir::TensorType& d, const ir::TensorType& i) {
  ir::TensorType r = d;
  if (!r.dtype) r.dtype = i.dtype;
  if (!r.device) r.device = i.device;
  if (r.contiguity == ir::Contiguity::Unknown) r.contiguity = i.contiguity;
  if (!d.sizes) {
    r.sizes = i.sizes;
  } else if (i.sizes && i.sizes->size() == d.sizes->size()) {
    std::vector<ir::Dim> dims;
    for (size_t k = 0; k < d.sizes->size(); ++k)
      dims.push_back(refine_dim((*d.sizes)[k], (*i.sizes)[k]));
    r.sizes = std::move(dims);
  }
  return r;
}

}  // namespace

Type refine(const Type& declared, const Type& inferred) {
  if (is_subtype_of(inferred, declared)) return inferred;
  if (is_subtype_of(declared, inferred)) return declared;
  if (declared.is_tensor() && inferred.is_tensor())
    return ir::tensor_type(refine_tensor(declared.tensor(), inferred.tensor()));
  if (declared.is_list() && inferred.is_list()) {
    Type e = refine(declared.elem(), inferred.elem());
    return ir::list_type(e);
  }
  if (declared.is_tuple() && inferred.is_tuple() &&
      declared.elems().size() == inferred.elems().size()) {
    std::vector<Type> elems;
    for (size_t k = 0; k < declared.elems().size(); ++k)
      elems.push_back(refine(declared.elems()[k], inferred.elems()[k]));
    return ir::tuple_type(std::move(elems));
  }
  if (declared.is_optional() && !inferred.is_optional()) {
    Type e = refine(declared.elem(), inferred);
    if (is_subtype_of(e, declared)) return e;
  }
  return declared;
}

// ---- following values through uses --------------------------------------------------------------
namespace {

// Visits v and every value its tensor flows into unchanged or as a view: block outputs to the
// owner's outputs (and a loop's next iteration), node inputs into loop bodies and sub-graphs,
// and view ops to their results. Stops early when visit returns true (and returns true).
bool flows(const Value* start, const std::function<bool(const ir::Use&)>& visit) {
  std::vector<const Value*> work = {start};
  std::unordered_set<const Value*> seen = {start};
  const auto push = [&](const Value* v) {
    if (seen.insert(v).second) work.push_back(v);
  };
  while (!work.empty()) {
    const Value* v = work.back();
    work.pop_back();
    for (const ir::Use& u : v->uses()) {
      if (visit(u)) return true;
      const Node* user = u.user;
      if (user->kind().is(Prim::Return)) {
        const Node* owner = user->owning_block()->owning_node();
        if (owner == nullptr) continue;
        if (owner->kind().is(Prim::Loop)) {
          push(owner->output(u.offset));
          push(owner->block(0)->input(u.offset + 1));
        } else if (owner->kind().is(Prim::If) || owner->kind().is(Prim::FusionGroup) ||
                   owner->kind().is(Prim::Call)) {
          push(owner->output(u.offset));
        }
        continue;
      }
      if (user->kind().is(Prim::Loop) && u.offset > 0) {
        push(user->block(0)->input(u.offset));
        push(user->output(u.offset - 1));
      } else if (user->kind().is(Prim::FusionGroup) || user->kind().is(Prim::Call)) {
        push(user->block(0)->input(u.offset));
      } else if (user->kind().is_op() && ops::op_info(user->kind().op()).is_view() &&
                 u.offset == 0) {
        push(user->output());
      } else if (is_op(user, ops::OpKind::Cast)) {
        push(user->output());
      } else if (user->kind().is(Prim::ListConstruct) || user->kind().is(Prim::TupleConstruct)) {
        // Elements of lists and tuples: follow the unpacked values.
        for (const ir::Use& lu : user->output()->uses())
          if (lu.user->kind().is(Prim::ListUnpack) || lu.user->kind().is(Prim::TupleUnpack))
            for (const Value* o : lu.user->outputs()) push(o);
        push(user->output());
      }
    }
  }
  return false;
}

}  // namespace

bool layout_observed(const Value* v) {
  return flows(v, [](const ir::Use& u) {
    return is_op(u.user, ops::OpKind::AsStrided);
  });
}

bool reaches_graph_output(const Value* v) {
  return flows(v, [](const ir::Use& u) {
    return u.user->kind().is(Prim::Return) && u.user->owning_block()->owning_node() == nullptr;
  });
}

bool may_alias_input(const Value* v) {
  const Node* n = v->node();
  if (!n->kind().is_op()) return !n->kind().is(Prim::Constant);
  const ops::OpInfo& info = ops::op_info(n->kind().op());
  return info.is_view() || n->kind().op() == ops::OpKind::Cast;
}

bool can_substitute(const Value* from, const Value* to) {
  const auto fits = [&](const Type& t) { return is_subtype_of(to->type(), t); };
  for (const ir::Use& u : from->uses()) {
    const Node* user = u.user;
    if (user->kind().is_op()) continue;
    if (user->kind().is(Prim::Return)) {
      const Node* owner = user->owning_block()->owning_node();
      if (owner == nullptr) continue;
      if (owner->kind().is(Prim::Loop)) {
        if (!fits(owner->block(0)->input(u.offset + 1)->type())) return false;
      } else if (!fits(owner->output(u.offset)->type())) {
        return false;
      }
      continue;
    }
    if (user->kind().is(Prim::Loop) && u.offset > 0) {
      if (!fits(user->block(0)->input(u.offset)->type())) return false;
    } else if (user->kind().is(Prim::FusionGroup) || user->kind().is(Prim::Call)) {
      if (!fits(user->block(0)->input(u.offset)->type())) return false;
    } else if (user->kind().is(Prim::If) || user->kind().is(Prim::Loop)) {
      if (!fits(from->type())) return false;
    } else if (!fits(from->type())) {
      return false;  // lists, tuples: their types record the element's
    }
  }
  return true;
}

void for_each_block(Block* b, const std::function<void(Block*)>& fn) {
  fn(b);
  for (Node* n : b->nodes())
    for (Block* nested : n->blocks()) for_each_block(nested, fn);
}

int64_t count_nodes(const Block* b) {
  int64_t n = 0;
  for (const Node* m : b->nodes()) {
    ++n;
    for (const Block* nested : m->blocks()) n += count_nodes(nested);
  }
  return n;
}

bool is_op(const Node* n, ops::OpKind k) { return n->kind().is_op() && n->kind().op() == k; }

std::optional<ScalarType> dtype_of(const Value* v) {
  return v->type().is_tensor() ? v->type().tensor().dtype : std::nullopt;
}

std::optional<std::vector<int64_t>> static_sizes(const Value* v) {
  if (!v->type().is_tensor()) return std::nullopt;
  return v->type().tensor().static_sizes();
}

bool is_contiguous(const Value* v) {
  return v->type().is_tensor() && v->type().tensor().contiguity == ir::Contiguity::Contiguous;
}

int64_t numel(const std::vector<int64_t>& sizes) {
  int64_t n = 1;
  for (int64_t d : sizes) n *= d;
  return n;
}

Value* insert_constant(Node* before, IValue v) {
  Node* c = before->owning_graph()->create_constant(std::move(v));
  c->set_loc(before->loc());
  c->insert_before(before);
  return c->output();
}

Value* NodeInserter::constant(IValue v) {
  Value* c = insert_constant(before_, std::move(v));
  added_.push_back(c->node());
  return c;
}

Value* NodeInserter::list(const std::vector<Value*>& elems) {
  // The element type: what every element's type fits (their layouts may differ).
  std::optional<ir::Type> t = elems.front()->type();
  for (const Value* e : elems)
    if (t) t = ir::unify(*t, e->type());
  Node* l = before_->owning_graph()->create(Prim::ListConstruct, elems,
                                            {ir::list_type(t ? *t : ir::tensor_type())});
  l->insert_before(before_);
  added_.push_back(l);
  return l->output();
}

Value* NodeInserter::op(ops::OpKind k, const std::vector<Value*>& inputs) {
  Node* n = before_->owning_graph()->create(k, inputs, {ir::tensor_type()});
  n->set_loc(before_->loc());
  n->insert_before(before_);
  added_.push_back(n);
  n->output()->set_type(infer_output_types(n).at(0));
  return n->output();
}

bool NodeInserter::replace(Value* from, Value* to) {
  if (static_sizes(to) != static_sizes(from) || dtype_of(to) != dtype_of(from) ||
      !can_substitute(from, to)) {
    undo();
    return false;
  }
  from->replace_all_uses_with(to);
  return true;
}

void NodeInserter::undo() {
  for (auto it = added_.rbegin(); it != added_.rend(); ++it) (*it)->destroy();
  added_.clear();
}

}  // namespace kiln::passes::detail
