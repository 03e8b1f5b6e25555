// Fused eager kernels that autograd's derivative formulas (src/autograd/derivatives.cpp) use
// instead of their primitive spelling when nothing records the backward pass. They are not rows
// of ops.def: while autograd (create_graph) or the tracer watches, a formula keeps its
// spelling in primitives, so recorded graphs only hold ops the IR knows (Note [Recording
// composites] in record.h). Each gives the spelled-out formula's values (within float rounding
// where a library computes them; tests/test_autograd.cpp compares the two).
#pragma once

#include <array>

#include "kiln/tensor.h"
#include "tensor/record.h"

namespace kiln::detail {

/// True when no op called now on this thread is recorded: grad mode is off (a backward pass
/// without create_graph) and no tracer is active. A derivative may then run a fused kernel.
inline bool nothing_records() {
  const DispatchState& s = tls_dispatch;
  return s.tracer == nullptr && !s.grad_enabled;
}

/// ReLU's gradient, where(result > 0, grad, 0), in one pass without the bool mask. grad and
/// result must have the same floating dtype and broadcast together; returns an undefined
/// tensor when they do not (the caller takes the where() spelling).
Tensor relu_backward(const Tensor& grad, const Tensor& result);

/// conv2d's gradients {input, weight, bias} for the entries of `need`, from oneDNN's
/// backward-data and backward-weights primitives: float32 only, 4-D (batched) input. Returns
/// false, computing nothing, where that does not apply or oneDNN has no implementation (the
/// caller takes the im2col/col2im formula).
bool conv2d_backward_onednn(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                            IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation,
                            int64_t groups, std::array<bool, 3> need, std::array<Tensor, 3>& out);

}  // namespace kiln::detail
