// Custom differentiable ops (libtorch's torch::autograd::Function<T>): a user struct with
// static forward(AutogradContext*, args...) and backward(AutogradContext*, variable_list).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/node.h"
#include "kiln/ivalue.h"
#include "kiln/tensor.h"

namespace kiln::autograd {

/// What forward() leaves for backward(): saved tensors (version-checked), other data, and which
/// inputs need gradients.
class AutogradContext {
 public:
  /// Saves tensors for backward; they are checked for in-place modification when read back.
  void save_for_backward(variable_list to_save);
  /// The tensors passed to save_for_backward, in order.
  variable_list get_saved_variables() const;
  /// Marks forward outputs that are not differentiable (e.g. indices).
  void mark_non_differentiable(const variable_list& outputs);
  /// Whether tensor input i of forward needs a gradient.
  bool needs_input_grad(size_t index) const;
  /// Arbitrary values for backward.
  std::map<std::string, IValue> saved_data;

  // Used by Function<T>::apply (not part of the user API).
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

namespace detail {
/// Node that runs a custom backward. Created by Function<T>::apply.
class CustomNode;
using BackwardFn = variable_list (*)(AutogradContext*, variable_list);
/// Sets up ctx before forward: which tensors are inputs and whether they need grad.
std::shared_ptr<CustomNode> custom_prepare(AutogradContext* ctx, const variable_list& inputs,
                                           BackwardFn backward, std::string name);
/// Wires the outputs of forward into the graph (no-op when no input requires grad).
void custom_finish(const std::shared_ptr<CustomNode>& node, AutogradContext* ctx,
                   variable_list& outputs);

template <typename T>
void collect_tensors(variable_list& out, const T& arg) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) out.push_back(arg);
  else if constexpr (std::is_same_v<std::decay_t<T>, variable_list>)
    out.insert(out.end(), arg.begin(), arg.end());
}
}  // namespace detail

/// CRTP base: struct MyOp : Function<MyOp> { static variable_list forward(AutogradContext*,
/// ...); static variable_list backward(AutogradContext*, variable_list); }; then
/// MyOp::apply(x, y). forward may also return a single Tensor.
template <typename T>
struct Function {
  template <typename... Args>
  static auto apply(Args&&... args) {
    variable_list inputs;
    (detail::collect_tensors(inputs, args), ...);
    AutogradContext ctx;
    auto node = detail::custom_prepare(&ctx, inputs, &T::backward, typeid(T).name());
    using R = decltype(T::forward(&ctx, std::forward<Args>(args)...));
    R result = [&] {
      AutoGradMode no_grad(false);
      return T::forward(&ctx, std::forward<Args>(args)...);
    }();
    if constexpr (std::is_same_v<R, Tensor>) {
      variable_list outs{result};
      detail::custom_finish(node, &ctx, outs);
      return outs[0];
    } else {
      variable_list outs = result;
      detail::custom_finish(node, &ctx, outs);
      return outs;
    }
  }
};

}  // namespace kiln::autograd
