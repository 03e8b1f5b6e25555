// Recording of primitive calls for the layers above the eager kernels: autograd builds its graph
// and the tracer its IR from the same hook. A typed op (kiln::exp, kiln::sum, ...) asks
// should_record() on entry; when it says yes the op is boxed and sent through record(), which
// runs the kernel below a guard (nested calls are not recorded) and tells the observers.
//
// Note [Recording composites]: only rows of ops.def are recorded. A composite (softmax's
// callers, var, linear, ...) records by calling primitives; a composite with a fused kernel of
// its own takes its primitive spelling when should_record() is true, so autograd and the
// tracer see exactly the primitives an IR graph may hold.
#pragma once

#include <functional>
#include <vector>

#include "kiln/ivalue.h"
#include "kiln/ops/op_kind.h"
#include "kiln/tensor.h"

namespace kiln::detail {

/// Per-thread state read on every op entry.
struct DispatchState {
  int below = 0;              // > 0 while a recorded op's kernel runs: nested ops are not recorded
  bool grad_enabled = true;   // autograd's GradMode
  void* tracer = nullptr;     // the active tracing state of this thread, if any
};

extern thread_local DispatchState tls_dispatch __attribute__((tls_model("initial-exec")));

inline bool requires_grad_of(const Tensor& t) {
  const TensorImpl* impl = t.unsafeGetTensorImpl();
  return impl != nullptr && impl->requires_grad();
}

/// True when the op about to run must be recorded: a tracer is active, or grad mode is on and
/// one of the tensors requires grad. Never true inside a recorded op's kernel.
template <typename... Ts>
inline bool should_record(const Ts&... tensors) {
  const DispatchState& s = tls_dispatch;
  if (s.below != 0) [[likely]] return false;
  if (s.tracer != nullptr) return true;
  return s.grad_enabled && (requires_grad_of(tensors) || ...);
}
bool should_record_list(const std::vector<Tensor>& tensors);

/// Marks the running code as inside a recorded op's kernel.
struct BelowRecordGuard {
  BelowRecordGuard() { ++tls_dispatch.below; }
  ~BelowRecordGuard() { --tls_dispatch.below; }
  BelowRecordGuard(const BelowRecordGuard&) = delete;
  BelowRecordGuard& operator=(const BelowRecordGuard&) = delete;
};

/// How a recorded call writes its result.
enum class CallKind : uint8_t {
  Functional,  // results are fresh tensors
  Inplace,     // the first argument is overwritten and is the only result (x.exp_())
  Out,         // results go into user-provided out= tensors
};

/// What an observer sees of one call. For Inplace calls, args[0] is the overwritten tensor.
struct RecordedCall {
  ops::OpKind kind;
  CallKind call_kind;
  const std::vector<IValue>& args;
};

/// Observers installed by the layers above (autograd, the tracer). Each begin() runs before the
/// kernel (so an observer can save or capture inputs that an in-place kernel overwrites) and
/// returns a token handed to end() with the results.
struct Observer {
  virtual ~Observer() = default;
  virtual bool active() const = 0;
  virtual void* begin(const RecordedCall& call) = 0;
  virtual void end(void* token, const RecordedCall& call, std::vector<IValue>& results) = 0;
  /// The kernel threw after begin(): drop what begin() made.
  virtual void abort(void* token) = 0;
};
/// Slot 0: autograd, slot 1: the tracer.
void set_observer(int slot, Observer* observer);

/// Told when traced code reads a tensor's values into C++ (Tensor::item()), which bakes the
/// value into the trace. Installed by the tracer; called only while a tracer is active on the
/// thread and outside recorded kernels.
using ValueReadHook = void (*)(const Tensor& t, const char* what);
void set_value_read_hook(ValueReadHook hook);
/// Calls the installed hook, if any.
void notify_value_read(const Tensor& t, const char* what);
/// Tells the tracer, when one is active on this thread, that t's values are read into C++.
inline void note_value_read(const Tensor& t, const char* what) {
  if (tls_dispatch.tracer != nullptr && tls_dispatch.below == 0) [[unlikely]]
    notify_value_read(t, what);
}

/// Runs kernel (below the guard) as the recorded call (kind, args) and tells the observers.
std::vector<IValue> record(ops::OpKind kind, CallKind call_kind, const std::vector<IValue>& args,
                           const std::function<std::vector<IValue>()>& kernel);

/// The common case: a functional call whose kernel is the op itself, run through ops::call's
/// unboxing. Returns the results.
std::vector<IValue> record_functional(ops::OpKind kind, std::vector<IValue> args);
/// record_functional for ops with one tensor result.
Tensor record1(ops::OpKind kind, std::vector<IValue> args);

/// An in-place op: kernel overwrites self; args[0] must be self.
void record_inplace(ops::OpKind kind, Tensor& self, std::vector<IValue> args,
                    const std::function<void()>& kernel);
/// An out= op: kernel writes out; args are the functional arguments.
void record_out(ops::OpKind kind, Tensor& out, std::vector<IValue> args,
                const std::function<void()>& kernel);

/// The kernels behind ops::call: unboxes args and runs the typed function (callers hold the
/// guard, so nothing nested records).
std::vector<IValue> call_kernel(ops::OpKind kind, const std::vector<IValue>& args);

}  // namespace kiln::detail
