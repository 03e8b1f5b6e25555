// Custom autograd functions (Function<T>): the node that runs a user's backward, and the
// context that carries saved tensors and flags from forward to backward.
#include "autograd/meta.h"
#include "kiln/autograd/function.h"
#include "kiln/functions.h"

#include <algorithm>

namespace kiln::autograd {

struct AutogradContext::Impl {
  std::vector<SavedVariable> saved;
  std::vector<bool> needs_grad;
  std::vector<const TensorImpl*> non_differentiable;
  std::vector<const TensorImpl*> inputs;
  std::weak_ptr<Node> node;
};

namespace detail {

class CustomNode : public Node {
 public:
  CustomNode(BackwardFn backward, std::string name) : backward_(backward), name_(std::move(name)) {}
  variable_list apply(variable_list&& grads) override {
    KILN_CHECK(!released_,
               "[autograd] trying to backward through {} a second time; pass retain_graph=true "
               "to the first backward() if you need to backward twice",
               name());
    for (size_t k = 0; k < grads.size() && k < output_meta_.size(); ++k)
      if (!grads[k].defined() && is_floating_point(output_meta_[k].dtype))
        grads[k] = zeros(output_meta_[k].sizes, TensorOptions(output_meta_[k].dtype));
    variable_list out = backward_(&ctx, std::move(grads));
    KILN_CHECK(out.size() >= num_outputs(),
               "[{}] backward returned {} gradients, expected {} (one per tensor input of "
               "forward; return an undefined Tensor for inputs without one)",
               name(), out.size(), num_outputs());
    out.resize(num_outputs());
    for (size_t i = 0; i < out.size(); ++i) {
      if (!out[i].defined() || !next_edge(i).is_valid()) continue;
      const OutputMeta& m = input_meta_[i];
      KILN_CHECK(out[i].sizes().equals(m.sizes),
                 "[{}] backward returned a gradient of sizes {} for input {}, expected {}",
                 name(), shape_str(out[i].sizes()), i, shape_str(m.sizes));
    }
    return out;
  }
  std::string name() const override { return name_; }
  void release_variables() override {
    for (SavedVariable& s : ctx.impl_->saved) s.reset();
    released_ = true;
  }

  AutogradContext ctx;
  std::vector<OutputMeta> input_meta_;

 private:
  BackwardFn backward_;
  std::string name_;
  bool released_ = false;
};

std::shared_ptr<CustomNode> custom_prepare(AutogradContext* ctx, const variable_list& inputs,
                                           BackwardFn backward, std::string name) {
  ctx->impl_ = std::make_shared<AutogradContext::Impl>();
  bool any = false;
  for (const Tensor& t : inputs) {
    const bool needs = t.defined() && t.requires_grad() && GradMode::is_enabled();
    ctx->impl_->needs_grad.push_back(needs);
    ctx->impl_->inputs.push_back(t.unsafeGetTensorImpl());
    any |= needs;
  }
  if (!any) return nullptr;
  auto node = std::make_shared<CustomNode>(backward, std::move(name));
  for (const Tensor& t : inputs) {
    node->mutable_next_edges().push_back(gradient_edge(t));
    node->input_meta_.push_back(t.defined() ? OutputMeta{t.sizes().vec(), t.dtype(), t.device()}
                                            : OutputMeta{});
  }
  ctx->impl_->node = node;
  return node;
}

void custom_finish(const std::shared_ptr<CustomNode>& node, AutogradContext* ctx,
                   variable_list& outputs) {
  if (!node) return;
  node->ctx = *ctx;  // shares impl_: saved tensors and data
  node->ctx.saved_data = std::move(ctx->saved_data);
  for (size_t k = 0; k < outputs.size(); ++k) {
    Tensor& out = outputs[k];
    node->add_output_meta(out);
    const auto& nd = ctx->impl_->non_differentiable;
    const bool non_diff = std::find(nd.begin(), nd.end(), out.unsafeGetTensorImpl()) != nd.end();
    if (non_diff || !is_floating_point(out.dtype())) continue;
    // An input returned as is gets a fresh handle, so the input keeps its own history.
    const auto& ins = ctx->impl_->inputs;
    if (std::find(ins.begin(), ins.end(), out.unsafeGetTensorImpl()) != ins.end())
      out = out.detach();
    set_history(out, node, static_cast<uint32_t>(k));
  }
}

}  // namespace detail

void AutogradContext::save_for_backward(variable_list to_save) {
  for (const Tensor& t : to_save) impl_->saved.emplace_back(t, false);
}

variable_list AutogradContext::get_saved_variables() const {
  variable_list out;
  std::shared_ptr<Node> node = impl_->node.lock();
  for (const SavedVariable& s : impl_->saved)
    out.push_back(s.unpack(node, node ? node->name() : "custom function", "saved tensor"));
  return out;
}

void AutogradContext::mark_non_differentiable(const variable_list& outputs) {
  for (const Tensor& t : outputs) impl_->non_differentiable.push_back(t.unsafeGetTensorImpl());
}

bool AutogradContext::needs_input_grad(size_t index) const {
  return index < impl_->needs_grad.size() && impl_->needs_grad[index];
}

}  // namespace kiln::autograd
