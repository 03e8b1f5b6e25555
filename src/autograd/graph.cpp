// The pieces of the backward graph: Node bookkeeping, per-tensor meta, saved tensors with
// version checks, AccumulateGrad for leaves, OpNode for recorded primitives, CopySlices for
// in-place writes through views.
#include <atomic>
#include <mutex>

#include "autograd/derivatives.h"
#include "autograd/meta.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/functions.h"
#include "tensor/record.h"

namespace kiln::autograd {

namespace {
std::atomic<uint64_t> g_sequence{0};
std::atomic<unsigned> g_hook_id{1};
std::mutex g_meta_mutex;

Tensor shallow_copy(const Tensor& t) {
  return Tensor(std::make_shared<TensorImpl>(t.impl()->storage(), t.dtype(), t.sizes().vec(),
                                             t.strides().vec(), t.storage_offset()));
}
}  // namespace

// ---- Node -----------------------------------------------------------------------------------

Node::Node() : sequence_nr_(g_sequence.fetch_add(1, std::memory_order_relaxed)) {}
Node::~Node() = default;

void Node::add_output_meta(const Tensor& t) {
  output_meta_.push_back(OutputMeta{t.sizes().vec(), t.dtype(), t.device()});
}

unsigned Node::add_pre_hook(uint32_t output_nr, GradHook hook) {
  const unsigned id = g_hook_id.fetch_add(1);
  pre_hooks_.push_back(PreHook{id, output_nr, std::move(hook)});
  return id;
}

void Node::remove_pre_hook(unsigned id) {
  std::erase_if(pre_hooks_, [id](const PreHook& h) { return h.id == id; });
}

Tensor Node::run_pre_hooks(uint32_t output_nr, Tensor grad) const {
  for (const PreHook& h : pre_hooks_) {
    if (h.output_nr != output_nr || !grad.defined()) continue;
    Tensor r = h.fn(grad);
    if (r.defined()) grad = std::move(r);
  }
  return grad;
}

// ---- meta -----------------------------------------------------------------------------------

AutogradMeta& meta_of(const Tensor& t) {
  auto& slot = t.impl()->autograd_meta;
  if (!slot) {
    std::lock_guard<std::mutex> lk(g_meta_mutex);
    if (!slot) slot = std::make_shared<AutogradMeta>();
  }
  return *slot;
}

AutogradMeta* meta_if(const Tensor& t) {
  return t.defined() ? t.impl()->autograd_meta.get() : nullptr;
}

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  AutogradMeta& m = meta_of(leaf);
  std::lock_guard<std::mutex> lk(g_meta_mutex);
  if (auto acc = m.grad_accumulator.lock()) return acc;
  auto acc = std::make_shared<AccumulateGrad>(leaf);
  m.grad_accumulator = acc;
  return acc;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  AutogradMeta* m = meta_if(t);
  if (m != nullptr && m->grad_fn) return {m->grad_fn, m->output_nr};
  return {grad_accumulator(t), 0};
}

void set_history(const Tensor& t, const std::shared_ptr<Node>& fn, uint32_t output_nr) {
  AutogradMeta& m = meta_of(t);
  m.grad_fn = fn;
  m.output_nr = output_nr;
  t.impl()->set_requires_grad(true);
}

Tensor sum_to(const Tensor& g, IntArrayRef sizes) {
  if (g.sizes().equals(sizes)) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(sizes.size());
  if (lead < 0) return g.reshape(sizes);
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < lead; ++i) dims.push_back(i);
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] == 1 && g.size(lead + static_cast<int64_t>(i)) != 1)
      dims.push_back(lead + static_cast<int64_t>(i));
  Tensor r = dims.empty() ? g : g.sum(dims, true);
  return r.sizes().equals(sizes) ? r : r.reshape(sizes);
}

// ---- SavedVariable --------------------------------------------------------------------------

SavedVariable::SavedVariable(const Tensor& t, bool is_output) {
  if (!t.defined()) return;
  version_ = t._version();
  is_output_ = is_output;
  requires_grad_ = t.requires_grad();
  if (is_output) {
    AutogradMeta* m = meta_if(t);
    output_nr_ = m != nullptr ? m->output_nr : 0;
    data_ = shallow_copy(t);
  } else {
    data_ = t;
  }
}

Tensor SavedVariable::unpack(const std::shared_ptr<Node>& node, std::string_view op,
                             std::string_view what) const {
  KILN_CHECK(!released_,
             "[autograd] trying to backward through the graph a second time (or to read saved "
             "tensors after they were freed): {} of {} is gone. Pass retain_graph=true to the "
             "first backward() or grad() call if you need to backward twice",
             what, op);
  if (!data_.defined()) return data_;
  KILN_CHECK(data_._version() == version_,
             "[autograd] one of the tensors needed for gradient computation has been modified "
             "by an in-place operation: {} of {} (sizes {}, dtype {}) is at version {}; expected "
             "version {}. Clone it before modifying it, or modify a copy",
             what, op, shape_str(data_.sizes()), dtype_name(data_.dtype()), data_._version(),
             version_);
  if (is_output_ && requires_grad_ && GradMode::is_enabled() && node) {
    // An output gets its history back (as a fresh handle, so no cycle is kept).
    Tensor r = shallow_copy(data_);
    set_history(r, node, output_nr_);
    return r;
  }
  return data_;
}

// ---- AccumulateGrad -------------------------------------------------------------------------

AccumulateGrad::AccumulateGrad(Tensor leaf) : leaf_(std::move(leaf)) { add_output_meta(leaf_); }

namespace {
// libtorch's rule for a leaf's first gradient: take the incoming tensor itself when nothing else
// can see it (this handle is the only one to its impl and the impl the only one to its storage,
// so no view or saved copy aliases it), it carries no autograd state, and it has the layout
// clone() would give (contiguous, spanning its whole storage); otherwise copy it.
bool can_steal(const Tensor& g) {
  const TensorImpl* impl = g.unsafeGetTensorImpl();
  return g.impl().use_count() == 1 && impl->storage().use_count() == 1 &&
         impl->autograd_meta == nullptr && !impl->requires_grad() && impl->is_contiguous() &&
         impl->storage_offset() == 0 &&
         impl->storage()->nbytes() ==
             static_cast<size_t>(impl->numel()) * element_size(impl->dtype());
}
}  // namespace

variable_list AccumulateGrad::apply(variable_list&& grads) {
  Tensor g = std::move(grads[0]);
  if (!g.defined()) return {};
  AutogradMeta& m = meta_of(leaf_);
  if (GradMode::is_enabled()) {
    // create_graph: the accumulated gradient keeps its history.
    m.grad = m.grad.defined() ? add(m.grad, g) : g.clone();
  } else if (!m.grad.defined()) {
    m.grad = can_steal(g) ? std::move(g) : g.clone();
  } else {
    m.grad.add_(g);
  }
  return {};
}

// ---- OpNode ---------------------------------------------------------------------------------

OpNode::OpNode(ops::OpKind k, size_t num_slots) : kind(k) { next_edges_.resize(num_slots); }

std::string OpNode::name() const {
  // libtorch style: "MulBackward".
  std::string_view n = ops::op_info(kind).name;
  std::string out;
  bool up = true;
  for (char ch : n) {
    if (ch == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(ch))) : ch;
    up = false;
  }
  return out + "Backward";
}

void OpNode::release_variables() {
  for (SavedVariable& s : saved_args)
    if (s.defined()) s.reset();
  for (SavedVariable& s : saved_results)
    if (s.defined()) s.reset();
  released = true;
}

variable_list OpNode::apply(variable_list&& grads) {
  variable_list out(num_outputs());
  bool any = false;
  for (const Tensor& g : grads) any |= g.defined();
  if (!any) return out;
  KILN_CHECK(!released,
             "[autograd] trying to backward through the graph a second time through {}: its "
             "saved tensors were freed after the first backward. Pass retain_graph=true to the "
             "first backward() or grad() call if you need to backward twice",
             name());
  const Derivative* d = derivative_of(kind);
  KILN_ASSERT(d != nullptr, "{} has no derivative", name());
  // Outputs without a gradient contribute zero.
  for (size_t k = 0; k < grads.size() && k < output_meta_.size(); ++k)
    if (!grads[k].defined() && is_floating_point(output_meta_[k].dtype))
      grads[k] = zeros(output_meta_[k].sizes, TensorOptions(output_meta_[k].dtype));
  std::shared_ptr<Node> self = shared_from_this();
  GradCtx ctx(*this, self, grads, out);
  d->backward(ctx);
  return out;
}

// ---- CopySlices -----------------------------------------------------------------------------

CopySlices::CopySlices(const Tensor& base, const Tensor& view, std::shared_ptr<Node> fn,
                       const Edge& base_edge)
    : base_sizes_(base.sizes().vec()),
      base_strides_(base.strides().vec()),
      view_sizes_(view.sizes().vec()),
      view_strides_(view.strides().vec()),
      view_offset_(view.storage_offset() - base.storage_offset()),
      dtype_(base.dtype()),
      fn_(std::move(fn)) {
  add_output_meta(base);
  next_edges_.push_back(base_edge);
  for (size_t i = 1; i < fn_->next_edges().size(); ++i) next_edges_.push_back(fn_->next_edge(i));
}

variable_list CopySlices::apply(variable_list&& grads) {
  variable_list out(num_outputs());
  const Tensor& g = grads[0];
  if (!g.defined()) return out;
  // The gradient laid out like the base, so the view's strides address its region.
  Tensor result = empty_strided(base_sizes_, base_strides_, TensorOptions(dtype_));
  result.copy_(g);
  Tensor region = result.as_strided(view_sizes_, view_strides_, view_offset_);
  variable_list res = fn_->apply({region.clone()});
  if (res.empty() || !res[0].defined()) region.zero_();
  else region.copy_(res[0]);
  out[0] = result;
  for (size_t i = 1; i < res.size() && i < out.size(); ++i) out[i] = std::move(res[i]);
  return out;
}

}  // namespace kiln::autograd
