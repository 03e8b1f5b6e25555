// kiln::jit::compile: wrap a function of tensors (or an nn::Module) so that each new input
// signature (dtypes, devices, sizes, contiguity, requires_grad) is traced once, optimised by
// the pass pipeline and lowered to generated kernels + library calls; later calls with that
// signature run the compiled code directly. explain() says what happened and why.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/ivalue.h"
#include "kiln/jit/trace.h"
#include "kiln/tensor.h"

namespace kiln::jit {

/// torch.compile's modes.
enum class CompileMode {
  Default,
  /// Minimises per-call overhead: outputs of the compiled graph live in buffers reused by the
  /// next call with the same signature (like CUDA-graph outputs: clone what you keep).
  ReduceOverhead,
  /// Tries several vector widths per kernel, times them on the first call's inputs, keeps the
  /// fastest and remembers the choice in the disk cache.
  MaxAutotune,
};

struct CompileOptions {
  CompileMode mode = CompileMode::Default;
  /// Entries keyed by dtypes, ranks and layouts only: a new size re-traces and re-plans the
  /// graph but reuses its kernels (compiled once, for any sizes), and does not count against
  /// recompile_limit.
  bool dynamic = false;
  /// Signatures compiled per function; later new signatures run eagerly (said once on stderr).
  int recompile_limit = 8;
  /// Keep compiled kernels on disk (KILN_CACHE_DIR, or $XDG_CACHE_HOME/kiln, or ~/.cache/kiln;
  /// KILN_CACHE_DIR=off disables): a second process loads them without running LLVM.
  bool disk_cache = true;
  /// Overrides the cache directory (empty: the default above).
  std::string cache_dir;
  /// LLVM optimisation level of generated kernels (2 or 3).
  int opt_level = 3;
  /// A name for messages and explain() (default: "compiled function").
  std::string name;
};

/// What one compiled signature holds and what building it cost.
struct CompiledEntryStats {
  std::string signature;  // "float32[64, 128] contiguous, ..."
  std::string reason;     // "first call", or what differs from the closest earlier entry
  std::string plan;       // one line per step: kernels, library calls, eager ops
  int fused_kernels = 0, kernels_compiled = 0, kernels_from_memory = 0, kernels_from_disk = 0;
  int library_calls = 0, eager_ops = 0, fallback_groups = 0;
  std::vector<std::string> fallback_reasons;  // why a group runs eagerly
  std::vector<std::string> pass_times;        // "cse 0.02 ms", ...
  std::vector<std::string> trace_warnings;
  double trace_ms = 0, passes_ms = 0, codegen_ms = 0, load_ms = 0, total_ms = 0;
  uint64_t calls = 0;
  bool eager = false;  // this signature runs eagerly (inputs require grad)
};

struct CompileStats {
  uint64_t calls = 0;
  uint64_t hits = 0;    // calls that found their signature compiled
  uint64_t misses = 0;  // calls that compiled a new entry
  uint64_t eager_calls = 0;  // calls run eagerly (over the recompile limit, or requiring grad)
  bool limit_reached = false;
  std::vector<CompiledEntryStats> entries;
};

/// The type-erased compiled function: boxed inputs (tensors) in, the traced result out.
class CompiledFunction {
 public:
  using BoxedFn = std::function<IValue(const std::vector<IValue>&)>;
  /// params: tensors the function reads besides its inputs (a module's parameters and
  /// buffers), read afresh at every call.
  CompiledFunction(BoxedFn fn, CompileOptions options,
                   std::function<std::vector<std::pair<std::string, Tensor>>()> params = {});
  IValue operator()(const std::vector<IValue>& inputs) const;
  CompileStats stats() const;
  const CompileOptions& options() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

/// A readable report: calls, cache hits and misses, each entry's signature, why it was
/// compiled, how its graph was split into kernels / library calls / eager ops, and the time of
/// every stage.
std::string explain(const CompiledFunction& f);

namespace compile_detail {
template <typename R>
R from_ivalue(const IValue& v) {
  if constexpr (std::is_same_v<R, Tensor>) {
    return v.toTensor();
  } else if constexpr (std::is_same_v<R, std::vector<Tensor>>) {
    return v.toTensorList();
  } else if constexpr (std::is_same_v<R, IValue>) {
    return v;
  } else {
    // a std::tuple of tensors
    return [&]<size_t... I>(std::index_sequence<I...>) {
      const auto& t = v.toTuple();
      return R{from_ivalue<std::tuple_element_t<I, R>>(t[I])...};
    }(std::make_index_sequence<std::tuple_size_v<R>>{});
  }
}
template <typename F, size_t... I>
IValue call_n(F& f, const std::vector<IValue>& in, std::index_sequence<I...>) {
  return trace_detail::to_output(f(in[I].toTensor()...));
}
// Calls f with as many tensors as the call got (up to 6), when f takes that many.
template <typename F>
IValue call_any(F& f, const std::vector<IValue>& in) {
  auto try_n = [&]<size_t N>(std::integral_constant<size_t, N>) -> std::optional<IValue> {
    if constexpr (trace_detail::takes_tensors<F>(std::make_index_sequence<N>{}))
      if (in.size() == N) return call_n(f, in, std::make_index_sequence<N>{});
    return std::nullopt;
  };
  std::optional<IValue> r;
  [&]<size_t... N>(std::index_sequence<N...>) {
    ((r = r ? r : try_n(std::integral_constant<size_t, N>{})), ...);
  }(std::make_index_sequence<7>{});
  if (!r) trace_detail::check_arity(static_cast<size_t>(-1), in.size());
  return *r;
}
}  // namespace compile_detail

/// The typed face of a compiled function: called like the original, returns what it returns.
template <typename F>
class Compiled {
 public:
  Compiled(CompiledFunction core) : core_(std::move(core)) {}  // NOLINT
  template <typename... Args>
  auto operator()(Args&&... args) const {
    using R = std::invoke_result_t<F&, Args...>;
    IValue r = core_(std::vector<IValue>{IValue(Tensor(args))...});
    return compile_detail::from_ivalue<std::decay_t<R>>(r);
  }
  const CompiledFunction& core() const { return core_; }
  CompileStats stats() const { return core_.stats(); }

 private:
  CompiledFunction core_;
};

template <typename F>
std::string explain(const Compiled<F>& f) {
  return explain(f.core());
}

/// An nn::ModuleHolder (nn::Linear, nn::Sequential, a KILN_MODULE type, ...).
template <typename T>
concept ModuleHolderLike = requires(const T& t) {
  t.ptr();
  t.ptr()->named_parameters();
};

/// Compiles a function of tensors: fn(x, y, ...) returning a Tensor, a std::tuple of Tensors or
/// a std::vector<Tensor>. Tensors it reads other than its arguments are baked in as constants
/// when a signature is compiled (like torch.jit.trace); pass modules to the other overload.
template <typename F>
  requires(!ModuleHolderLike<F>)
Compiled<F> compile(F fn, CompileOptions options = {}) {
  auto shared = std::make_shared<F>(std::move(fn));
  CompiledFunction::BoxedFn boxed = [shared](const std::vector<IValue>& in) {
    return compile_detail::call_any(*shared, in);
  };
  return Compiled<F>(CompiledFunction(std::move(boxed), std::move(options)));
}

/// Compiles an nn::Module's forward. Its parameters and buffers are graph inputs read at every
/// call (named self.<name>), so training updates and load() are seen by the compiled code.
template <ModuleHolderLike H>
auto compile(const H& module, CompileOptions options = {}) {
  auto impl = module.ptr();
  if (options.name.empty()) options.name = impl->name();
  // SFINAE-friendly (the trailing return type), so the arity search sees forward's arity.
  auto fwd = [impl](const auto&... xs) -> decltype(impl->forward(xs...)) {
    return impl->forward(xs...);
  };
  using Fwd = decltype(fwd);
  CompiledFunction::BoxedFn boxed = [fwd](const std::vector<IValue>& in) mutable {
    return compile_detail::call_any(fwd, in);
  };
  auto params = [impl] {
    std::vector<std::pair<std::string, Tensor>> out;
    for (const auto& item : impl->named_parameters())
      out.emplace_back("self." + item.key(), item.value());
    for (const auto& item : impl->named_buffers())
      out.emplace_back("self." + item.key(), item.value());
    return out;
  };
  return Compiled<Fwd>(CompiledFunction(std::move(boxed), std::move(options), std::move(params)));
}

}  // namespace kiln::jit
