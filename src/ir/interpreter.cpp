// The reference interpreter (see interpreter.h): an environment from Values to IValues, filled
// block by block. Primitives go through ops::call, so the interpreter computes exactly what eager
// code calling the same primitives computes (and, while tracing, is itself traced).
#include "kiln/ir/interpreter.h"

#include <unordered_map>

#include "kiln/core/error.h"
#include "kiln/ir/printer.h"
#include "kiln/ops/call.h"

namespace kiln::ir {
namespace {

constexpr std::string_view kPrefix = "[ir.run]";

class Interpreter {
 public:
  explicit Interpreter(const RunOptions& options) : options_(options) {}

  std::vector<IValue> run(const Graph& g, std::vector<IValue> inputs) {
    KILN_CHECK(inputs.size() == g.inputs().size(), "{} the graph takes {} inputs, got {}", kPrefix,
               g.inputs().size(), inputs.size());
    if (options_.check_types)
      for (size_t i = 0; i < inputs.size(); ++i) {
        const Value* v = g.inputs()[i];
        const std::string m = mismatch(v->type(), inputs[i], &bindings_);
        KILN_CHECK(m.empty(), "{} input {} ({}) does not fit its type {}: {}", kPrefix, i,
                   value_str(v), v->type().str(), m);
      }
    std::vector<IValue> outs = block(g.block(), std::move(inputs));
    if (options_.values != nullptr) *options_.values = std::move(env_);  // the run is over
    return outs;
  }

 private:
  std::vector<IValue> block(const Block* b, std::vector<IValue> args) {
    for (size_t i = 0; i < args.size(); ++i) env_[b->inputs()[i]] = std::move(args[i]);
    for (const Node* n : b->nodes()) node(n);
    std::vector<IValue> outs;
    for (const Value* v : b->outputs()) outs.push_back(get(v, b->return_node()));
    return outs;
  }

  const IValue& get(const Value* v, const Node* user) const {
    auto it = env_.find(v);
    if (it == env_.end())
      KILN_FAIL("{} {} uses {}, which has not been computed (is the graph verified?)\n  at: {}",
                kPrefix, user->kind().name(), value_str(v), node_str(user));
    return it->second;
  }
  std::vector<IValue> args_of(const Node* n) const {
    std::vector<IValue> args;
    args.reserve(n->num_inputs());
    for (const Value* v : n->inputs()) args.push_back(get(v, n));
    return args;
  }

  void node(const Node* n) {
    std::vector<IValue> outs;
    try {
      outs = execute(n);
      KILN_CHECK(outs.size() == n->num_outputs(), "produced {} values for {} outputs", outs.size(),
                 n->num_outputs());
      if (options_.check_types)
        for (size_t i = 0; i < outs.size(); ++i) {
          const std::string m = mismatch(n->output(i)->type(), outs[i], &bindings_);
          KILN_CHECK(m.empty(), "output {} does not fit its type {}: {}", i,
                     n->output(i)->type().str(), m);
        }
    } catch (const InternalError& e) {
      throw InternalError(context(n, e.what()));
    } catch (const Error& e) {
      throw Error(context(n, e.what()));
    }
    for (size_t i = 0; i < outs.size(); ++i) env_[n->output(i)] = std::move(outs[i]);
  }

  // An error of a nested node already says where it happened: add the enclosing node.
  static std::string context(const Node* n, const std::string& msg) {
    if (msg.rfind(kPrefix, 0) == 0) return fmt::format("{}\n  inside: {}", msg, node_str(n));
    return fmt::format("{} {} failed: {}\n  at: {}", kPrefix, n->kind().name(), msg, node_str(n));
  }

  std::vector<IValue> execute(const Node* n) {
    if (n->kind().is_op()) return ops::call(n->kind().op(), args_of(n));
    switch (n->kind().prim()) {
      case Prim::Param:
      case Prim::Return:
        break;
      case Prim::Constant:
        return {n->attr("value")};
      case Prim::If: {
        const bool cond = get(n->input(0), n).toBool();
        return block(n->block(cond ? 0 : 1), {});
      }
      case Prim::Loop: {
        std::vector<IValue> args = args_of(n);
        const int64_t trips = args[0].toInt();
        std::vector<IValue> carried(args.begin() + 1, args.end());
        for (int64_t i = 0; i < trips; ++i) {
          std::vector<IValue> body_args = {IValue(i)};
          for (IValue& c : carried) body_args.push_back(std::move(c));
          carried = block(n->block(0), std::move(body_args));
        }
        return carried;
      }
      case Prim::FusionGroup:
      case Prim::Call:
        return block(n->block(0), args_of(n));
      case Prim::TupleConstruct:
        return {IValue::tuple(args_of(n))};
      case Prim::TupleUnpack: {
        const auto& elems = get(n->input(0), n).toTuple();
        KILN_CHECK(elems.size() == n->num_outputs(), "got a tuple of {} elements, expected {}",
                   elems.size(), n->num_outputs());
        return elems;
      }
      case Prim::ListConstruct:
        return {list_of(n)};
      case Prim::ListUnpack:
        return unpack(n);
    }
    KILN_ASSERT(false, "interpreter: cannot execute a {} node", n->kind().name());
    return {};
  }

  IValue list_of(const Node* n) const {
    const Type& elem = n->output()->type().elem();
    std::vector<IValue> args = args_of(n);
    if (elem.is_tensor() || (elem.is_optional() && elem.elem().is_tensor())) {
      std::vector<Tensor> v;
      for (const IValue& a : args) v.push_back(a.toOptionalTensor());
      return IValue(std::move(v));
    }
    if (elem.kind() == TypeKind::Int) {
      std::vector<int64_t> v;
      for (const IValue& a : args) v.push_back(a.toInt());
      return IValue(std::move(v));
    }
    if (elem.kind() == TypeKind::Float) {
      std::vector<double> v;
      for (const IValue& a : args) v.push_back(a.toDouble());
      return IValue(std::move(v));
    }
    KILN_FAIL("lists of {} cannot be built (lists hold tensors, ints or floats)", elem.str());
  }

  std::vector<IValue> unpack(const Node* n) const {
    const IValue& list = get(n->input(0), n);
    std::vector<IValue> out;
    if (list.is_int_list())
      for (int64_t v : list.toIntList()) out.emplace_back(v);
    else if (list.is_double_list())
      for (double v : list.toDoubleList()) out.emplace_back(v);
    else
      for (const Tensor& t : list.toTensorList()) out.push_back(t.defined() ? IValue(t) : IValue());
    KILN_CHECK(out.size() == n->num_outputs(), "got a list of {} elements, expected {}", out.size(),
               n->num_outputs());
    return out;
  }

  RunOptions options_;
  std::unordered_map<const Value*, IValue> env_;
  SymbolBindings bindings_;
};

}  // namespace

std::vector<IValue> run(const Graph& g, std::vector<IValue> inputs, const RunOptions& options) {
  return Interpreter(options).run(g, std::move(inputs));
}

}  // namespace kiln::ir
