// The public autograd API: grad mode, Tensor's autograd methods (backward, grad, detach, hooks,
// ...), and autograd::backward / autograd::grad on top of the engine.
#include "autograd/meta.h"
#include "kiln/autograd/autograd.h"
#include "kiln/functions.h"
#include "tensor/record.h"

namespace kiln {

bool GradMode::is_enabled() { return detail::tls_dispatch.grad_enabled; }
void GradMode::set_enabled(bool enabled) { detail::tls_dispatch.grad_enabled = enabled; }

using autograd::AutogradMeta;
using autograd::meta_if;
using autograd::meta_of;

Tensor& Tensor::requires_grad_(bool r) {
  AutogradMeta* m = meta_if(*this);
  KILN_CHECK(m == nullptr || !m->grad_fn || r,
             "[requires_grad_] you can only change requires_grad flags of leaf tensors; this "
             "one was produced by {} (use detach() to get a tensor without history)",
             m != nullptr && m->grad_fn ? m->grad_fn->name() : "an op");
  return set_requires_grad(r);
}

const Tensor& Tensor::grad() const {
  static const Tensor undefined;
  AutogradMeta* m = meta_if(*this);
  return m != nullptr ? m->grad : undefined;
}

Tensor& Tensor::mutable_grad() { return meta_of(*this).grad; }

void Tensor::backward(const Tensor& gradient, std::optional<bool> retain_graph,
                      bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

Tensor Tensor::detach() const {
  return Tensor(std::make_shared<TensorImpl>(impl()->storage(), dtype(), sizes().vec(),
                                             strides().vec(), storage_offset()));
}

Tensor& Tensor::detach_() {
  impl()->autograd_meta.reset();
  impl()->set_requires_grad(false);
  return *this;
}

void Tensor::set_data(const Tensor& new_data) const {
  KILN_CHECK(new_data.defined(), "[set_data] got an undefined tensor, expected a defined one");
  KILN_CHECK(!requires_grad() || new_data.is_floating_point(),
             "[set_data] a tensor that requires grad needs floating point data, got {}",
             dtype_name(new_data.dtype()));
  impl()->set_data_from(*new_data.impl());
}

bool Tensor::is_leaf() const {
  AutogradMeta* m = meta_if(*this);
  return m == nullptr || !m->grad_fn;
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  AutogradMeta* m = meta_if(*this);
  return m != nullptr ? m->grad_fn : nullptr;
}

uint32_t Tensor::output_nr() const {
  AutogradMeta* m = meta_if(*this);
  return m != nullptr ? m->output_nr : 0;
}

void Tensor::retain_grad() const {
  KILN_CHECK(requires_grad(),
             "[retain_grad] can't retain_grad on a tensor that has requires_grad=false");
  if (is_leaf()) return;  // leaves keep their gradient anyway
  AutogradMeta& m = meta_of(*this);
  if (m.retains_grad) return;
  m.retains_grad = true;
  // The hook holds the meta weakly so a retained grad does not keep the tensor alive.
  std::weak_ptr<AutogradMeta> weak = impl()->autograd_meta;
  m.retain_hook = m.grad_fn->add_pre_hook(m.output_nr, [weak](const Tensor& g) {
    if (auto meta = weak.lock()) {
      NoGradGuard no_grad;
      meta->grad = meta->grad.defined() ? kiln::add(meta->grad, g) : g.clone();
    }
    return Tensor();
  });
}

bool Tensor::retains_grad() const {
  AutogradMeta* m = meta_if(*this);
  return m != nullptr && m->retains_grad;
}

void Tensor::remove_hook(unsigned handle) const {
  AutogradMeta* m = meta_if(*this);
  if (m == nullptr) return;
  std::erase_if(m->leaf_hooks, [handle](const auto& h) { return h.first == handle; });
  if (m->grad_fn) m->grad_fn->remove_pre_hook(handle);
}

namespace detail {
unsigned register_tensor_hook(const Tensor& t, std::function<Tensor(const Tensor&)> hook) {
  KILN_CHECK(t.requires_grad(),
             "[register_hook] cannot register a hook on a tensor that doesn't require gradient");
  AutogradMeta& m = meta_of(t);
  if (m.grad_fn) return m.grad_fn->add_pre_hook(m.output_nr, std::move(hook));
  // Leaves: ids come from the same counter as node hooks.
  static std::atomic<unsigned> next{1u << 30};
  const unsigned id = next.fetch_add(1);
  m.leaf_hooks.emplace_back(id, std::move(hook));
  return id;
}
}  // namespace detail

namespace autograd {
namespace {

variable_list make_grads(const variable_list& outputs, const variable_list& grads,
                         const char* op) {
  KILN_CHECK(grads.empty() || grads.size() == outputs.size(),
             "[{}] got {} tensors and {} gradients, expected one gradient per tensor", op,
             outputs.size(), grads.size());
  variable_list out;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& t = outputs[i];
    KILN_CHECK(t.defined(), "[{}] element {} of tensors is undefined", op, i);
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      KILN_CHECK(t.numel() == 1,
                 "[{}] grad can be implicitly created only for scalar outputs: element {} has "
                 "sizes {}; pass a gradient",
                 op, i, shape_str(t.sizes()));
      g = ones_like(t);
    } else {
      KILN_CHECK(g.sizes().equals(t.sizes()),
                 "[{}] mismatch in shape: grad_output[{}] has sizes {} and output[{}] has sizes "
                 "{}",
                 op, i, shape_str(g.sizes()), i, shape_str(t.sizes()));
    }
    out.push_back(g);
  }
  return out;
}

std::vector<Edge> input_edges(const variable_list& inputs, const char* op) {
  std::vector<Edge> edges;
  for (size_t i = 0; i < inputs.size(); ++i) {
    KILN_CHECK(inputs[i].defined() && inputs[i].requires_grad(),
               "[{}] one of the differentiated tensors (input {}) does not require grad", op, i);
    edges.push_back(gradient_edge(inputs[i]));
  }
  return edges;
}

}  // namespace

void backward(const variable_list& tensors, const variable_list& grad_tensors,
              std::optional<bool> retain_graph, bool create_graph, const variable_list& inputs) {
  variable_list grads = make_grads(tensors, grad_tensors, "backward");
  const bool keep = retain_graph.value_or(create_graph);
  if (inputs.empty()) {
    run_backward(tensors, grads, keep, create_graph, {}, /*accumulate=*/true);
    return;
  }
  variable_list got =
      run_backward(tensors, grads, keep, create_graph, input_edges(inputs, "backward"), false);
  AutoGradMode mode(create_graph);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!got[i].defined()) continue;
    Tensor& g = meta_of(inputs[i]).grad;
    if (create_graph) g = g.defined() ? add(g, got[i]) : got[i].clone();
    else if (g.defined()) g.add_(got[i]);
    else g = got[i].clone();
  }
}

variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs, std::optional<bool> retain_graph,
                   bool create_graph, bool allow_unused) {
  variable_list grads = make_grads(outputs, grad_outputs, "grad");
  const bool keep = retain_graph.value_or(create_graph);
  variable_list got =
      run_backward(outputs, grads, keep, create_graph, input_edges(inputs, "grad"), false);
  for (size_t i = 0; i < got.size(); ++i)
    KILN_CHECK(got[i].defined() || allow_unused,
               "[grad] one of the differentiated tensors (input {}, sizes {}) appears to not have "
               "been used in the graph; pass allow_unused=true if this is intended",
               i, shape_str(inputs[i].sizes()));
  return got;
}

}  // namespace autograd
}  // namespace kiln
