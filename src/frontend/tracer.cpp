// The tracer (kiln::jit::trace): an observer on the recording hook (slot 1, src/tensor/record.h)
// that turns every primitive call of the traced function into a node. Tensors map to Values by
// their TensorImpl; in-place calls become functional nodes that re-bind the tensor; aliases
// written through another view are poisoned so that using them fails loudly.
#include <algorithm>
#include <iostream>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "kiln/functions.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/printer.h"
#include "kiln/ir/verifier.h"
#include "kiln/jit/trace.h"
#include "kiln/ops/schema.h"
#include "tensor/record.h"

namespace kiln::jit {
namespace {

using ::kiln::detail::BelowRecordGuard;
using ::kiln::detail::CallKind;
using ::kiln::detail::RecordedCall;
using ::kiln::detail::tls_dispatch;
using ops::ArgType;
using ops::OpKind;

// What the trace knows of one tensor it has seen.
struct Binding {
  std::weak_ptr<TensorImpl> impl;  // to tell a live tensor from a new one at a reused address
  ir::Value* value = nullptr;
  std::string poisoned;  // why the tensor's memory no longer matches its Value (empty: it does)
};

// Note [Layout after in-place ops]
// A functional node returns a fresh contiguous tensor, while the eager in-place op it stands for
// keeps the target's strides. When the target is not contiguous the graph's layout differs
// from the eager one from there on: such Values are "layout-free" (contiguity unknown, and so
// is every value computed from them), and as_strided of one is rejected since it reads memory
// layout, not values.

class TracingState {
 public:
  TracingState(const TraceOptions& options, std::source_location loc)
      : graph_(std::make_shared<ir::Graph>()), print_warnings_(options.print_warnings) {
    loc_ = ir::SourceLoc{loc.file_name(), loc.line(), 0, "traced function"};
  }

  // ---- inputs and outputs -------------------------------------------------------------------
  void add_input(const IValue& v, const std::string& name, const std::string& what) {
    if (v.is_tensor()) {
      const Tensor& t = v.toTensor();
      KILN_CHECK(t.defined(), "[trace] {} is an undefined tensor, expected a defined tensor", what);
      check_distinct(t, what);
      ir::Value* in = graph_->add_input(ir::tensor_type_of(t), name);
      bind(t, in);
      inputs_.emplace_back(t, in, what);
      return;
    }
    KILN_CHECK(v.is_tensor_list(),
               "[trace] {} is a value of kind {}, expected a tensor or a list of tensors (numbers "
               "and other values are constants of the traced function: capture them instead)",
               what, v.kind_name());
    const auto& list = v.toTensorList();
    ir::Value* in = graph_->add_input(ir::type_of(v), name);
    ir::Node* unpack = append(graph_->create(ir::Prim::ListUnpack, {in}));
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string elem = fmt::format("{} element {}", what, i);
      KILN_CHECK(list[i].defined(), "[trace] {} is an undefined tensor", elem);
      check_distinct(list[i], elem);
      ir::Value* e = unpack->add_output(ir::tensor_type_of(list[i]));
      bind(list[i], e);
      inputs_.emplace_back(list[i], e, elem);
    }
  }

  ir::Value* output(const IValue& v, int depth = 0) {
    KILN_CHECK(depth < 64, "[trace] the result nests tuples too deeply");
    if (v.is_tensor()) {
      KILN_CHECK(v.toTensor().defined(),
                 "[trace] the traced function returned an undefined "
                 "tensor, expected a defined tensor");
      return value_of(v.toTensor(), "the traced function's result");
    }
    if (v.is_tensor_list()) {
      std::vector<ir::Value*> elems;
      for (const Tensor& t : v.toTensorList()) elems.push_back(output(IValue(t), depth + 1));
      return list_node(elems, false);
    }
    if (v.is_tuple()) {
      std::vector<ir::Value*> elems;
      std::vector<ir::Type> types;
      for (const IValue& e : v.toTuple()) {
        elems.push_back(output(e, depth + 1));
        types.push_back(elems.back()->type());
      }
      return append(graph_->create(ir::Prim::TupleConstruct, elems,
                                   {ir::tuple_type(std::move(types))}))
          ->output();
    }
    KILN_FAIL(
        "[trace] the traced function returned a value of kind {}, expected a tensor or a "
        "tuple or list of tensors",
        v.kind_name());
  }

  // Warnings about what the graph cannot reproduce, printed once each.
  std::vector<std::string> finish() {
    for (const auto& [t, in, what] : inputs_) {
      auto it = bindings_.find(t.unsafeGetTensorImpl());
      if (it != bindings_.end() && it->second.value != in)
        warn(
            fmt::format("[trace] warning: the traced function modifies {} in place; the graph "
                        "computes with the modified values, but running it leaves its inputs "
                        "unchanged (traced at {})",
                        what, loc_.str()));
    }
    if (!reads_.empty()) {
      std::vector<std::string> kinds;
      for (const auto& [what, n] : reads_) kinds.push_back(fmt::format("{} ({}x)", what, n));
      warn(fmt::format(
          "[trace] warning: the traced function read tensor values into C++ via {} (traced at "
          "{}). The graph records only the path taken for these values and bakes in anything "
          "computed from them: it may be wrong for other inputs. Build data-dependent control "
          "flow with ir::Builder (if_/loop) instead.",
          fmt::join(kinds, ", "), loc_.str()));
    }
    return warnings_;
  }

  const std::shared_ptr<ir::Graph>& graph() const { return graph_; }
  std::vector<ir::SourceLoc>& scopes() { return scopes_; }

  // ---- the observer's two halves -------------------------------------------------------------
  void begin(const RecordedCall& call) {
    BelowRecordGuard below;  // the tracer's own tensor work is never recorded
    const ops::Schema& s = ops::op_schema(call.kind);
    const std::string_view op = ops::op_info(call.kind).name;
    pending_.clear();
    for (size_t i = 0; i < call.args.size() && i < s.params.size(); ++i) {
      const IValue& a = call.args[i];
      // Assign (copy_, fill_) never reads self's values: a self the trace has not seen, or whose
      // memory no longer matches its Value, needs only its shape.
      if (call.kind == OpKind::Assign && i == 0 && a.is_tensor() && !usable(a.toTensor()))
        pending_.push_back(zeros_like(a.toTensor()));
      else
        pending_.push_back(arg_value(a, s.params[i].type, op));
    }
  }

  void abort() { pending_.clear(); }

  void end(const RecordedCall& call, std::vector<IValue>& results) {
    BelowRecordGuard below;
    const std::string_view op = ops::op_info(call.kind).name;
    if (call.kind == OpKind::AsStrided && layout_free_.count(pending_[0]))
      KILN_FAIL(
          "[trace] as_strided of a tensor that was modified in place while not contiguous: "
          "the graph cannot reproduce its memory layout (unsupported); clone() it first "
          "(traced at {})",
          here().str());
    const bool layout_free = any_layout_free(pending_);
    if (call.call_kind == CallKind::Functional) {
      std::vector<ir::Type> types;
      for (const IValue& r : results) types.push_back(result_type(r, layout_free));
      ir::Node* n = append(graph_->create(call.kind, pending_, types));
      for (size_t i = 0; i < results.size(); ++i) {
        if (layout_free) layout_free_.insert(n->output(i));
        if (results[i].is_tensor() && results[i].toTensor().defined())
          bind(results[i].toTensor(), n->output(i));
      }
      return;
    }
    // In place or out=: the functional op, converted to the target's dtype like the kernel does,
    // then the target (and any alias with the same layout) is re-bound to it.
    KILN_ASSERT(results.size() == 1 && results[0].is_tensor(), "trace: {} of {} has {} results",
                call.call_kind == CallKind::Inplace ? "in-place call" : "out= call", op,
                results.size());
    const Tensor& target = results[0].toTensor();
    const bool diverges = layout_free || !target.is_contiguous();
    ir::TensorType facts;
    facts.dtype = functional_dtype(call.kind, call.args);
    facts.device = target.device();
    std::vector<ir::Dim> sizes(target.sizes().begin(), target.sizes().end());
    facts.sizes = sizes;
    facts.contiguity = diverges ? ir::Contiguity::Unknown : ir::Contiguity::Contiguous;
    ir::Value* v = append(graph_->create(call.kind, pending_, {ir::tensor_type(facts)}))->output();
    if (facts.dtype != target.dtype()) {
      facts.dtype = target.dtype();
      v = append(graph_->create(OpKind::Cast, {v, scalar_constant(IValue(target.dtype()))},
                                {ir::tensor_type(facts)}))
              ->output();
    }
    if (diverges) layout_free_.insert(v);
    rebind_written(target, v, op);
  }

  void value_read(const Tensor& t, const char* what) {
    auto it = bindings_.find(t.unsafeGetTensorImpl());
    if (it == bindings_.end() || it->second.impl.expired()) return;
    if (it->second.value->node()->kind().is(ir::Prim::Constant)) return;  // a constant anyway
    for (auto& [w, n] : reads_)
      if (w == what) {
        ++n;
        return;
      }
    reads_.emplace_back(what, 1);
  }

 private:
  ir::SourceLoc here() const { return scopes_.empty() ? loc_ : scopes_.back(); }

  ir::Node* append(ir::Node* n) {
    graph_->block()->append_node(n);
    n->set_loc(here());
    return n;
  }

  void warn(std::string msg) {
    if (print_warnings_) std::cerr << msg << std::endl;
    warnings_.push_back(std::move(msg));
  }

  void check_distinct(const Tensor& t, const std::string& what) {
    for (const auto& [other, v, other_what] : inputs_)
      KILN_CHECK(!other.is_same(t),
                 "[trace] {} is the same tensor as {}: pass distinct tensors "
                 "(the graph cannot tell two inputs are one)",
                 what, other_what);
  }

  // ---- tensors and values ---------------------------------------------------------------------
  void bind(const Tensor& t, ir::Value* v) {
    const TensorImpl* key = t.unsafeGetTensorImpl();
    Binding& b = bindings_[key];
    b.impl = t.impl();
    b.value = v;
    b.poisoned.clear();
    auto& aliases = by_storage_[t.impl()->storage().get()];
    if (std::find(aliases.begin(), aliases.end(), key) == aliases.end()) aliases.push_back(key);
  }

  // True when t is bound to a Value that matches its memory.
  bool usable(const Tensor& t) const {
    auto it = bindings_.find(t.unsafeGetTensorImpl());
    return it != bindings_.end() && !it->second.impl.expired() && it->second.poisoned.empty();
  }

  // The Value of a tensor the trace has seen and that is still alive, or null.
  ir::Value* lookup(const Tensor& t, std::string_view op) {
    auto it = bindings_.find(t.unsafeGetTensorImpl());
    if (it == bindings_.end()) return nullptr;
    if (it->second.impl.expired()) {  // the address now belongs to another tensor
      bindings_.erase(it);
      return nullptr;
    }
    if (!it->second.poisoned.empty())
      KILN_FAIL(
          "[trace] {}: uses a tensor whose memory was written in place through a "
          "different view ({}). The tracer records in-place ops functionally and cannot "
          "express writes through views: unsupported. Clone the tensor before writing to a "
          "view of it, or write the update functionally (index_put, scatter, where). Traced "
          "at {}",
          op, it->second.poisoned, here().str());
    return it->second.value;
  }

  ir::Value* value_of(const Tensor& t, std::string_view op) {
    if (ir::Value* v = lookup(t, op)) return v;
    ir::Value* v = capture(t);
    bind(t, v);
    return v;
  }

  // A constant holding t's current values (a clone: later writes to t do not change it). A
  // non-contiguous t is captured as the span of memory it covers plus an as_strided node, so the
  // Value has t's exact layout.
  ir::Value* capture(const Tensor& t) {
    if (t.is_contiguous() || t.numel() == 0)
      return append(graph_->create_constant(IValue(t.clone())))->output();
    int64_t extent = 1;
    for (int64_t d = 0; d < t.dim(); ++d) extent += (t.size(d) - 1) * t.stride(d);
    Tensor span = t.as_strided({extent}, {1}, t.storage_offset()).clone();
    ir::Value* c = append(graph_->create_constant(IValue(span)))->output();
    std::vector<ir::Value*> ins = {c, scalar_constant(IValue(t.sizes().vec())),
                                   scalar_constant(IValue(t.strides().vec())),
                                   scalar_constant(IValue(int64_t{0}))};
    return append(graph_->create(OpKind::AsStrided, ins, {ir::tensor_type_of(t)}))->output();
  }

  ir::Value* zeros_like(const Tensor& t) {
    std::vector<ir::Value*> ins = {
        scalar_constant(IValue(t.sizes().vec())), scalar_constant(IValue(int64_t{0})),
        scalar_constant(IValue(t.dtype())), scalar_constant(IValue(t.device()))};
    ir::TensorType facts = ir::TensorType::of(t);
    facts.contiguity = ir::Contiguity::Contiguous;
    return append(graph_->create(OpKind::Full, ins, {ir::tensor_type(facts)}))->output();
  }

  // Numbers, lists of numbers, dtypes, devices, None: one constant node per distinct value
  // (the graph is flat while tracing, so the first definition dominates every later use).
  ir::Value* scalar_constant(const IValue& v) {
    const ir::Type t = ir::type_of(v);
    const std::string key = fmt::format("{}={}", t.str(), ir::ivalue_str(v));
    auto it = constants_.find(key);
    if (it != constants_.end()) return it->second;
    ir::Value* c = append(graph_->create_constant(v, t))->output();
    constants_.emplace(key, c);
    return c;
  }

  ir::Value* list_node(const std::vector<ir::Value*>& elems, bool optional) {
    std::optional<ir::Type> elem;
    for (ir::Value* e : elems) {
      if (e->type().kind() == ir::TypeKind::None) continue;
      elem = elem ? ir::unify(*elem, e->type()) : e->type();
    }
    ir::Type t = elem ? *elem : ir::tensor_type();
    if (optional) t = ir::optional_type(t);
    return append(graph_->create(ir::Prim::ListConstruct, elems, {ir::list_type(t)}))->output();
  }

  ir::Value* arg_value(const IValue& a, ArgType type, std::string_view op) {
    switch (type) {
      case ArgType::Tensor:
        return value_of(a.toTensor(), op);
      case ArgType::OptionalTensor:
        if (a.is_none() || !a.toTensor().defined()) return scalar_constant(IValue());
        return value_of(a.toTensor(), op);
      case ArgType::TensorList:
      case ArgType::OptionalTensorList: {
        std::vector<ir::Value*> elems;
        for (const Tensor& t : a.toTensorList())
          elems.push_back(t.defined() ? value_of(t, op) : scalar_constant(IValue()));
        return list_node(elems, type == ArgType::OptionalTensorList);
      }
      case ArgType::Operand:
        if (a.is_tensor()) return value_of(a.toTensor(), op);
        return scalar_constant(a);
      default:
        return scalar_constant(a);
    }
  }

  ir::Type result_type(const IValue& r, bool layout_free) const {
    ir::Type t = ir::type_of(r);
    if (layout_free && t.is_tensor()) {
      ir::TensorType facts = t.tensor();
      facts.contiguity = ir::Contiguity::Unknown;
      t = ir::tensor_type(facts);
    }
    return t;
  }

  bool any_layout_free(const std::vector<ir::Value*>& values) const {
    if (layout_free_.empty()) return false;
    for (ir::Value* v : values) {
      if (layout_free_.count(v)) return true;
      // A list built from a layout-free tensor carries it along.
      if (v->node()->kind().is(ir::Prim::ListConstruct) && any_layout_free(v->node()->inputs()))
        return true;
    }
    return false;
  }

  // After target was written in place (now holding v): aliases with the same layout hold the
  // same elements and follow it; any other alias of the memory no longer matches its Value.
  void rebind_written(const Tensor& target, ir::Value* v, std::string_view op) {
    bind(target, v);
    const TensorImpl* t = target.unsafeGetTensorImpl();
    auto& aliases = by_storage_[t->storage().get()];
    std::vector<const TensorImpl*> live;
    for (const TensorImpl* a : aliases) {
      auto it = bindings_.find(a);
      if (it == bindings_.end() || it->second.impl.expired()) continue;
      live.push_back(a);
      if (a == t) continue;
      const TensorImpl* o = it->second.impl.lock().get();
      if (o->dtype() == t->dtype() && o->sizes().equals(t->sizes()) &&
          o->strides().equals(t->strides()) && o->storage_offset() == t->storage_offset()) {
        it->second.value = v;
        it->second.poisoned.clear();
      } else {
        it->second.poisoned =
            fmt::format("{}_ at {} wrote to a tensor sharing its memory", op, here().str());
      }
    }
    aliases = std::move(live);
  }

  // The dtype the functional form of an in-place or out= call produces (before the kernel
  // converts it to the target's dtype).
  static std::optional<ScalarType> functional_dtype(OpKind kind, const std::vector<IValue>& a) {
    const ops::OpInfo& info = ops::op_info(kind);
    const auto tensor_dtype = [&](size_t i) -> std::optional<ScalarType> {
      if (i < a.size() && a[i].is_tensor() && a[i].toTensor().defined())
        return a[i].toTensor().dtype();
      return std::nullopt;
    };
    switch (info.dtype_rule) {
      case ops::DtypeRule::Same:
        return tensor_dtype(0);
      case ops::DtypeRule::Bool:
        return kBool;
      case ops::DtypeRule::Long:
        return kLong;
      case ops::DtypeRule::SumLike: {
        auto d = tensor_dtype(0);
        if (d && is_integral(*d, true)) return kLong;
        return d;
      }
      case ops::DtypeRule::Explicit:
        for (const IValue& v : a)
          if (v.is_scalar_type()) return v.toScalarType();
        return std::nullopt;
      case ops::DtypeRule::Promote:
      case ops::DtypeRule::IntToFloat: {
        std::optional<ScalarType> d;
        if (info.family == ops::OpFamily::Binary && a.size() == 2) {
          if (a[0].is_tensor() && a[1].is_tensor())
            d = kiln::result_type(a[0].toTensor(), a[1].toTensor());
          else if (a[0].is_tensor())
            d = kiln::result_type(a[0].toTensor(), a[1].toScalar());
          else if (a[1].is_tensor())
            d = kiln::result_type(a[1].toTensor(), a[0].toScalar());
        } else if (info.family == ops::OpFamily::Unary) {
          d = tensor_dtype(0);
        }
        if (d && info.dtype_rule == ops::DtypeRule::IntToFloat && is_integral(*d, true))
          d = get_default_dtype();
        return d;
      }
    }
    return std::nullopt;
  }

  std::shared_ptr<ir::Graph> graph_;
  bool print_warnings_;
  ir::SourceLoc loc_;
  std::vector<ir::SourceLoc> scopes_;
  std::unordered_map<const TensorImpl*, Binding> bindings_;
  std::unordered_map<const StorageImpl*, std::vector<const TensorImpl*>> by_storage_;
  std::unordered_map<std::string, ir::Value*> constants_;
  std::unordered_set<const ir::Value*> layout_free_;
  std::vector<ir::Value*> pending_;  // the inputs of the call between begin() and end()
  std::vector<std::tuple<Tensor, ir::Value*, std::string>> inputs_;
  std::vector<std::pair<std::string, int>> reads_;
  std::vector<std::string> warnings_;
};

TracingState* current() { return static_cast<TracingState*>(tls_dispatch.tracer); }

class TraceObserver final : public ::kiln::detail::Observer {
 public:
  bool active() const override { return tls_dispatch.tracer != nullptr; }
  void* begin(const RecordedCall& call) override {
    current()->begin(call);
    return current();
  }
  void end(void* token, const RecordedCall& call, std::vector<IValue>& results) override {
    static_cast<TracingState*>(token)->end(call, results);
  }
  // The kernel threw: the pending inputs stay unused constants (dead code the passes remove).
  void abort(void* token) override { static_cast<TracingState*>(token)->abort(); }
};

void on_value_read(const Tensor& t, const char* what) {
  if (TracingState* s = current()) s->value_read(t, what);
}

void install_hooks() {
  static std::once_flag once;
  static TraceObserver observer;
  std::call_once(once, [] {
    ::kiln::detail::set_observer(1, &observer);
    ::kiln::detail::set_value_read_hook(&on_value_read);
  });
}
// Installed when the library loads, before user threads can be recording; trace() repeats the
// (idempotent) call in case this initialiser has not run yet.
const bool kHooksInstalled = (install_hooks(), true);

// Installs a tracing state on this thread for one trace and removes it however the trace ends.
class ActiveTrace {
 public:
  explicit ActiveTrace(TracingState* s) { tls_dispatch.tracer = s; }
  ~ActiveTrace() { tls_dispatch.tracer = nullptr; }
  ActiveTrace(const ActiveTrace&) = delete;
  ActiveTrace& operator=(const ActiveTrace&) = delete;
};

}  // namespace

namespace trace_detail {
void check_arity(size_t expected, size_t got) {
  KILN_CHECK(expected == got,
             "[trace] the traced function takes {} tensors, got {} example "
             "inputs",
             expected, got);
}
}  // namespace trace_detail

TracedFunction trace(const TraceFn& fn, const std::vector<IValue>& example_inputs,
                     const TraceOptions& options, std::source_location loc) {
  KILN_CHECK(tls_dispatch.tracer == nullptr,
             "[trace] trace() called while this thread is already tracing: nested traces are not "
             "supported (trace the inner function on its own, or call it inside the outer trace "
             "to record it inline)");
  KILN_CHECK(tls_dispatch.below == 0, "[trace] trace() called from inside a running kernel");
  KILN_CHECK(options.input_names.empty() || options.input_names.size() == example_inputs.size(),
             "[trace] got {} input names for {} example inputs", options.input_names.size(),
             example_inputs.size());
  if (!kHooksInstalled) install_hooks();
  TracingState state(options, loc);
  for (size_t i = 0; i < example_inputs.size(); ++i) {
    const std::string name =
        options.input_names.empty() ? fmt::format("input{}", i) : options.input_names[i];
    KILN_CHECK(ir::Value::is_valid_name(name), "[trace] input name '{}' is not an identifier",
               name);
    state.add_input(example_inputs[i], name, fmt::format("example input {}", i));
  }
  std::vector<Tensor> params;
  if (!options.freeze)
    for (const auto& [name, t] : options.parameters) {
      KILN_CHECK(ir::Value::is_valid_name(name),
                 "[trace] parameter name '{}' is not an identifier ([A-Za-z_][A-Za-z0-9_.]*)",
                 name);
      state.add_input(IValue(t), name, fmt::format("parameter '{}'", name));
      params.push_back(t);
    }
  IValue result;
  {
    ActiveTrace active(&state);
    result = fn(example_inputs);
    BelowRecordGuard below;
    state.graph()->register_output(state.output(result));
  }
  std::vector<std::string> warnings = state.finish();
  try {
    ir::verify(*state.graph());
  } catch (const Error& e) {
    throw InternalError(
        fmt::format("[trace] produced an invalid graph (a bug in Kiln): {}", e.what()));
  }
  return TracedFunction(state.graph(), std::move(params), std::move(warnings));
}

IValue TracedFunction::run(const std::vector<IValue>& inputs) const {
  std::vector<IValue> all = inputs;
  for (const Tensor& p : parameters_) all.emplace_back(p);
  std::vector<IValue> out = ir::run(*graph_, std::move(all));
  KILN_ASSERT(out.size() == 1, "a traced graph returns one value, got {}", out.size());
  return out[0];
}

IValue TracedFunction::operator()(const std::vector<Tensor>& inputs) const {
  return run(std::vector<IValue>(inputs.begin(), inputs.end()));
}

SourceScope::SourceScope(std::source_location loc) {
  if (TracingState* s = current()) {
    s->scopes().push_back(ir::SourceLoc{loc.file_name(), loc.line(), 0, ""});
    active_ = true;
  }
}

SourceScope::~SourceScope() {
  if (!active_) return;
  if (TracingState* s = current()) s->scopes().pop_back();
}

}  // namespace kiln::jit
