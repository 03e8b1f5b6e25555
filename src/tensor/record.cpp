// The recording hook shared by autograd and the tracer (see record.h), and ops::call.
#include "tensor/record.h"

#include <atomic>

#include "kiln/ops/call.h"
#include "kiln/ops/schema.h"

namespace kiln::detail {

thread_local DispatchState tls_dispatch __attribute__((tls_model("initial-exec")));

namespace {
Observer* g_observers[2] = {nullptr, nullptr};

bool any_requires_grad(const std::vector<IValue>& args) {
  for (const IValue& a : args) {
    if (a.is_tensor() && requires_grad_of(a.toTensor())) return true;
    if (a.is_tensor_list())
      for (const Tensor& t : a.toTensorList())
        if (requires_grad_of(t)) return true;
  }
  return false;
}
}  // namespace

bool should_record_list(const std::vector<Tensor>& tensors) {
  const DispatchState& s = tls_dispatch;
  if (s.below != 0) return false;
  if (s.tracer != nullptr) return true;
  if (!s.grad_enabled) return false;
  for (const Tensor& t : tensors)
    if (requires_grad_of(t)) return true;
  return false;
}

namespace {
std::atomic<ValueReadHook> g_value_read_hook{nullptr};
}  // namespace

void set_value_read_hook(ValueReadHook hook) { g_value_read_hook.store(hook); }

void notify_value_read(const Tensor& t, const char* what) {
  if (ValueReadHook hook = g_value_read_hook.load()) hook(t, what);
}

void set_observer(int slot, Observer* observer) {
  KILN_ASSERT(slot == 0 || slot == 1, "observer slot {}", slot);
  g_observers[slot] = observer;
}

std::vector<IValue> record(ops::OpKind kind, CallKind call_kind, const std::vector<IValue>& args,
                           const std::function<std::vector<IValue>()>& kernel) {
  const RecordedCall call{kind, call_kind, args};
  // Autograd observes only when some input requires grad; the tracer whenever it is active.
  Observer* grad = g_observers[0];
  const bool use_grad = grad != nullptr && tls_dispatch.grad_enabled && any_requires_grad(args) &&
                        grad->active();
  Observer* tracer = g_observers[1];
  const bool use_trace = tracer != nullptr && tls_dispatch.tracer != nullptr && tracer->active();
  void* trace_token = use_trace ? tracer->begin(call) : nullptr;
  void* grad_token = nullptr;
  if (use_grad) {
    try {
      grad_token = grad->begin(call);
    } catch (...) {
      if (use_trace) tracer->abort(trace_token);
      throw;
    }
  }
  std::vector<IValue> results;
  try {
    BelowRecordGuard guard;
    results = kernel();
  } catch (...) {
    if (use_grad) grad->abort(grad_token);
    if (use_trace) tracer->abort(trace_token);
    throw;
  }
  if (use_grad) grad->end(grad_token, call, results);
  if (use_trace) tracer->end(trace_token, call, results);
  return results;
}

std::vector<IValue> record_functional(ops::OpKind kind, std::vector<IValue> args) {
  return record(kind, CallKind::Functional, args, [&] { return call_kernel(kind, args); });
}

Tensor record1(ops::OpKind kind, std::vector<IValue> args) {
  std::vector<IValue> r = record_functional(kind, std::move(args));
  return r[0].toTensor();
}

void record_inplace(ops::OpKind kind, Tensor& self, std::vector<IValue> args,
                    const std::function<void()>& kernel) {
  record(kind, CallKind::Inplace, args, [&] {
    kernel();
    return std::vector<IValue>{self};
  });
}

void record_out(ops::OpKind kind, Tensor& out, std::vector<IValue> args,
                const std::function<void()>& kernel) {
  record(kind, CallKind::Out, args, [&] {
    kernel();
    return std::vector<IValue>{out};
  });
}

}  // namespace kiln::detail

namespace kiln::ops {

std::vector<IValue> call(OpKind kind, const std::vector<IValue>& args) {
  check_args(kind, args);
  const detail::DispatchState& s = detail::tls_dispatch;
  bool rec = false;
  if (s.below == 0) {
    if (s.tracer != nullptr) {
      rec = true;
    } else if (s.grad_enabled) {
      for (const IValue& a : args) {
        if (a.is_tensor()) rec |= detail::requires_grad_of(a.toTensor());
        if (a.is_tensor_list()) rec |= detail::should_record_list(a.toTensorList());
      }
    }
  }
  if (rec) return detail::record_functional(kind, args);
  return detail::call_kernel(kind, args);
}

}  // namespace kiln::ops
