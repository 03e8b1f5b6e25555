// kiln::jit::trace: runs a C++ function eagerly while recording every primitive it calls into an
// IR graph (the front of the JIT pipeline: trace -> passes -> codegen). Like torch.jit.trace, the
// graph holds the one path the example inputs took: reading a tensor's value into C++ control
// flow (item()) bakes that path in, and the tracer warns when it happens.
//
// trace_module (once nn::Module exists) is a thin wrapper over trace(): it passes the module's
// named parameters and buffers as TraceOptions::parameters ("these tensors are graph inputs, in
// this order", or constants with freeze) and traces a lambda calling forward.
#pragma once

#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/ivalue.h"
#include "kiln/tensor.h"

namespace kiln::jit {

struct TraceOptions {
  /// Tensors the function reads besides its inputs (a module's parameters and buffers), by
  /// name. They become graph inputs after the example inputs, in this order, named after them;
  /// with freeze they become constants instead.
  std::vector<std::pair<std::string, Tensor>> parameters;
  /// Bakes the parameters into the graph as constants (captured by value) instead of inputs.
  bool freeze = false;
  /// Names of the graph inputs that stand for the example inputs; "input0", "input1", ... when
  /// not given.
  std::vector<std::string> input_names;
  /// Also prints the trace's warnings to stderr (each at most once per trace). They are always
  /// kept in TracedFunction::warnings().
  bool print_warnings = true;
};

/// What trace() returns: the graph, the parameter tensors it takes after the inputs, and the
/// warnings the trace produced.
class TracedFunction {
 public:
  TracedFunction(std::shared_ptr<ir::Graph> graph, std::vector<Tensor> parameters,
                 std::vector<std::string> warnings)
      : graph_(std::move(graph)),
        parameters_(std::move(parameters)),
        warnings_(std::move(warnings)) {}

  const ir::Graph& graph() const { return *graph_; }
  ir::Graph& graph() { return *graph_; }
  const std::shared_ptr<ir::Graph>& graph_ptr() const { return graph_; }
  /// The tensors passed after the inputs when the graph runs (empty when frozen).
  const std::vector<Tensor>& parameters() const { return parameters_; }
  /// Warnings about what the graph cannot reproduce (values read into C++, inputs modified in
  /// place), in the order they arose.
  const std::vector<std::string>& warnings() const { return warnings_; }

  /// Runs the graph with the reference interpreter on inputs followed by the parameters: the
  /// traced function's result (a tensor, or a tuple or list of tensors).
  IValue run(const std::vector<IValue>& inputs) const;
  IValue operator()(const std::vector<Tensor>& inputs) const;

 private:
  std::shared_ptr<ir::Graph> graph_;
  std::vector<Tensor> parameters_;
  std::vector<std::string> warnings_;
};

/// The boxed form of a traced function: it gets the example inputs (tensors or lists of
/// tensors) and returns a tensor, or a tuple or list of tensors.
using TraceFn = std::function<IValue(const std::vector<IValue>&)>;

/// Runs fn on example_inputs, recording every primitive it calls:
///  - tensors among the inputs (and options.parameters) become graph inputs; any other tensor
///    the function uses becomes a constant, captured (cloned) at its first use; numbers and
///    other non-tensor arguments become constants;
///  - an in-place op (x.add_(y), copy_, out= variants) is recorded as its functional op and x is
///    re-bound to the result; a tensor whose memory was written through a different view throws
///    kiln::Error when it is used afterwards (unsupported: the graph would be silently wrong);
///  - reading a tensor's values into C++ (item(), boolean-mask indexing) gives one warning;
///  - every node's source location is where trace() was called (refined by SourceScope).
/// Throws kiln::Error for a trace nested in another on the same thread and for results that
/// are not tensors. Tracing state is per thread: threads may trace concurrently.
TracedFunction trace(const TraceFn& fn, const std::vector<IValue>& example_inputs,
                     const TraceOptions& options = {},
                     std::source_location loc = std::source_location::current());

namespace trace_detail {
inline IValue to_output(IValue v) { return v; }
inline IValue to_output(const Tensor& t) { return IValue(t); }
inline IValue to_output(const std::vector<Tensor>& v) { return IValue(v); }
template <typename... Ts>
IValue to_output(const std::tuple<Ts...>& t) {
  return std::apply([](const auto&... e) { return IValue::tuple({to_output(e)...}); }, t);
}
template <typename F, size_t... I>
constexpr bool takes_tensors(std::index_sequence<I...>) {
  return std::is_invocable_v<F&, decltype((void)I, std::declval<const Tensor&>())...>;
}
template <typename F, size_t N = 0>
constexpr int tensor_arity() {
  if constexpr (N > 8)
    return -1;
  else if constexpr (takes_tensors<F>(std::make_index_sequence<N>{}))
    return static_cast<int>(N);
  else
    return tensor_arity<F, N + 1>();
}
template <typename F, size_t... I>
IValue call_unpacked(F& f, const std::vector<IValue>& in, std::index_sequence<I...>) {
  return to_output(f(in[I].toTensor()...));
}
void check_arity(size_t expected, size_t got);
}  // namespace trace_detail

/// A callable traced through the tensor form of trace() (not the boxed TraceFn form).
template <typename F>
concept TensorFunction =
    !std::is_invocable_v<std::remove_reference_t<F>&, const std::vector<IValue>&>;

/// trace() for functions of tensors: fn(x, y, ...) or fn(const std::vector<Tensor>&), returning
/// a Tensor, a std::tuple of Tensors, a std::vector<Tensor> or an IValue.
template <TensorFunction F>
TracedFunction trace(F&& fn, const std::vector<Tensor>& example_inputs,
                     const TraceOptions& options = {},
                     std::source_location loc = std::source_location::current()) {
  using Fn = std::remove_reference_t<F>;
  TraceFn boxed = [&fn](const std::vector<IValue>& in) -> IValue {
    if constexpr (std::is_invocable_v<Fn&, const std::vector<Tensor>&>) {
      std::vector<Tensor> ts;
      for (const IValue& v : in) ts.push_back(v.toTensor());
      return trace_detail::to_output(fn(ts));
    } else {
      constexpr int n = trace_detail::tensor_arity<Fn>();
      static_assert(n >= 0, "trace: fn must take up to 8 Tensors or a std::vector<Tensor>");
      trace_detail::check_arity(static_cast<size_t>(n), in.size());
      return trace_detail::call_unpacked(fn, in, std::make_index_sequence<n>{});
    }
  };
  return trace(boxed, std::vector<IValue>(example_inputs.begin(), example_inputs.end()), options,
               loc);
}

/// While alive on a thread that is tracing, nodes recorded get this scope's file:line instead of
/// the trace() call's: `{ jit::SourceScope here; y = attention(q, k, v); }`. No effect otherwise.
class SourceScope {
 public:
  explicit SourceScope(std::source_location loc = std::source_location::current());
  ~SourceScope();
  SourceScope(const SourceScope&) = delete;
  SourceScope& operator=(const SourceScope&) = delete;

 private:
  bool active_ = false;
};

}  // namespace kiln::jit
