// The autograd observer of the dispatch hook (tensor/record.h): for every recorded primitive
// whose inputs require grad it builds an OpNode (edges to the inputs' history, the arguments the
// derivative needs, saved with their versions) and makes the results its outputs. In-place
// calls rebase the overwritten tensor's history; writes through views go through CopySlices.
#include "autograd/derivatives.h"
#include "autograd/meta.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/functions.h"
#include "tensor/record.h"

namespace kiln::autograd {
namespace {

using detail::CallKind;
using detail::RecordedCall;

std::string op_spelling(const RecordedCall& call) {
  std::string n(ops::op_info(call.kind).name);
  if (call.call_kind == CallKind::Inplace) n += "_";
  if (call.call_kind == CallKind::Out) n += "_out";
  return n;
}

OutputMeta meta_from(const Tensor& t) { return OutputMeta{t.sizes().vec(), t.dtype(), t.device()}; }

// The root base of a view (views of views share the first base).
Tensor base_of(const Tensor& t) {
  AutogradMeta* m = meta_if(t);
  if (m != nullptr && m->is_view && m->base.defined()) return m->base;
  return t;
}

void check_inplace_target(const RecordedCall& call, const Tensor& self) {
  const bool leaf = self.requires_grad() && (meta_if(self) == nullptr || !meta_if(self)->grad_fn);
  KILN_CHECK(!leaf,
             "[{}] a leaf tensor that requires grad (sizes {}) is being used in an in-place "
             "operation; do it under kiln::NoGradGuard (e.g. a parameter update) or on a clone",
             op_spelling(call), shape_str(self.sizes()));
  AutogradMeta* m = meta_if(self);
  if (m != nullptr && m->is_view && m->base.defined()) {
    const Tensor& base = m->base;
    const bool base_leaf =
        base.requires_grad() && (meta_if(base) == nullptr || !meta_if(base)->grad_fn);
    KILN_CHECK(!base_leaf,
               "[{}] a view of a leaf tensor that requires grad (base sizes {}) is being used in "
               "an in-place operation; do it under kiln::NoGradGuard or on a clone",
               op_spelling(call), shape_str(base.sizes()));
  }
}

// After an in-place op on a view: the base's new history is CopySlices over its old one, and
// the view becomes an as_strided view of the new base.
void rebase_view(const Tensor& view, const std::shared_ptr<OpNode>& fn) {
  Tensor base = meta_if(view)->base;
  const Edge base_edge = gradient_edge(base);
  auto cs = std::make_shared<CopySlices>(base, view, fn, base_edge);
  set_history(base, cs, 0);
  auto vn = std::make_shared<OpNode>(ops::OpKind::AsStrided, 1);
  vn->args = {IValue(), view.sizes().vec(), view.strides().vec(), view.storage_offset()};
  vn->saved_args.resize(4);
  vn->saved_args[0] = SavedVariable(base, false);
  vn->slot_of = {0, -1, -1, -1};
  vn->list_len = {0, 0, 0, 0};
  vn->arg_meta = {meta_from(base)};
  vn->mutable_next_edges()[0] = Edge{cs, 0};
  vn->add_output_meta(view);
  set_history(view, vn, 0);
}

struct Token {
  std::shared_ptr<OpNode> node;
};

class Recorder final : public detail::Observer {
 public:
  bool active() const override { return true; }

  void* begin(const RecordedCall& call) override {
    const std::vector<IValue>& args = call.args;
    KILN_CHECK(call.call_kind != CallKind::Out,
               "[{}] out= arguments don't support automatic differentiation, but one of the "
               "arguments requires grad; call the functional form instead",
               op_spelling(call));
    if (call.call_kind == CallKind::Inplace) check_inplace_target(call, args[0].toTensor());
    const Derivative* d = derivative_of(call.kind);
    if (d == nullptr) return nullptr;
    // Helpers here (clones of in-place targets) must not be recorded themselves.
    detail::BelowRecordGuard below;
    size_t slots = 0;
    for (const IValue& a : args) {
      if (a.is_tensor() && a.toTensor().defined()) ++slots;
      if (a.is_tensor_list()) slots += a.toTensorList().size();
    }
    auto node = std::make_shared<OpNode>(call.kind, slots);
    node->args.resize(args.size());
    node->saved_args.resize(args.size());
    node->slot_of.assign(args.size(), -1);
    node->list_len.assign(args.size(), 0);
    size_t slot = 0;
    for (size_t i = 0; i < args.size(); ++i) {
      const IValue& a = args[i];
      const bool save = (d->save_args >> i) & 1u;
      if (a.is_tensor() && a.toTensor().defined()) {
        const Tensor& t = a.toTensor();
        node->slot_of[i] = static_cast<int>(slot);
        node->mutable_next_edges()[slot] = gradient_edge(t);
        node->arg_meta.push_back(meta_from(t));
        ++slot;
        if (save) {
          // The in-place target is overwritten by the kernel: keep its old value.
          const bool overwritten = call.call_kind == CallKind::Inplace && i == 0;
          node->saved_args[i] = SavedVariable(overwritten ? t.detach().clone() : t, false);
        }
      } else if (a.is_tensor_list()) {
        const auto& list = a.toTensorList();
        node->slot_of[i] = static_cast<int>(slot);
        node->list_len[i] = list.size();
        for (const Tensor& t : list) {
          node->mutable_next_edges()[slot++] = gradient_edge(t);
          node->arg_meta.push_back(t.defined() ? meta_from(t) : OutputMeta{});
        }
        if (save) node->args[i] = a;
      } else {
        node->args[i] = a;
      }
    }
    return new Token{std::move(node)};
  }

  void end(void* token, const RecordedCall& call, std::vector<IValue>& results) override {
    if (token == nullptr) return;
    std::unique_ptr<Token> tok(static_cast<Token*>(token));
    const std::shared_ptr<OpNode>& node = tok->node;
    const Derivative* d = derivative_of(call.kind);
    const ops::OpInfo& info = ops::op_info(call.kind);
    for (size_t k = 0; k < results.size(); ++k) {
      const Tensor& r = results[k].toTensor();
      node->add_output_meta(r);
      if (!is_floating_point(r.dtype())) continue;  // indices and masks carry no gradient
      if (call.call_kind == CallKind::Inplace) {
        AutogradMeta* m = meta_if(r);
        if (m != nullptr && m->is_view && m->base.defined()) {
          rebase_view(r, node);
        } else {
          set_history(r, node, static_cast<uint32_t>(k));
        }
      } else {
        set_history(r, node, static_cast<uint32_t>(k));
        if (info.is_view()) {
          AutogradMeta& m = meta_of(r);
          m.is_view = true;
          m.base = base_of(call.args[0].toTensor());
        }
      }
    }
    if (d->save_results) {
      node->saved_results.resize(results.size());
      for (size_t k = 0; k < results.size(); ++k)
        node->saved_results[k] = SavedVariable(results[k].toTensor(), /*is_output=*/true);
    }
  }

  void abort(void* token) override { delete static_cast<Token*>(token); }
};

}  // namespace

void install_recorder() {
  static Recorder recorder;
  static const bool installed = [] {
    detail::set_observer(0, &recorder);
    return true;
  }();
  (void)installed;
}

namespace {
// The recorder is on from library load: every process that links Kiln has autograd.
const bool g_installed = [] {
  install_recorder();
  return true;
}();
}  // namespace

}  // namespace kiln::autograd
