// The backward engine: counts dependencies over the graph reachable from the roots, then runs
// nodes in dependency order (latest-created first among the ready ones, like libtorch),
// summing gradients per input slot, applying tensor hooks, and checking each gradient's shape
// and dtype against the forward tensor it belongs to.
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/meta.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/functions.h"

namespace kiln::autograd {
namespace {

// A gradient must look like the forward tensor it is for: broadcasting is summed away and
// dtypes converted (a float input of a double op gets a float gradient).
Tensor validate(Tensor g, const OutputMeta& m, const Node& fn) {
  if (!g.defined()) return g;
  if (!g.sizes().equals(m.sizes)) {
    std::vector<int64_t> b;
    bool ok = true;
    try {
      b = infer_broadcast_size(g.sizes(), m.sizes, "autograd");
      ok = IntArrayRef(b).equals(g.sizes());
    } catch (const Error&) {
      ok = false;
    }
    if (!ok) {
      int64_t n = 1;
      for (int64_t s : m.sizes) n *= s;
      KILN_ASSERT(n == g.numel(), "gradient for an input of {} has sizes {}, expected {}",
                  fn.name(), shape_str(g.sizes()), shape_str(m.sizes));
      g = g.reshape(m.sizes);
    } else {
      g = sum_to(g, m.sizes);
    }
  }
  if (g.dtype() != m.dtype) g = g.to(m.dtype);
  return g;
}

void accumulate_into(Tensor& slot, Tensor g) {
  if (!g.defined()) return;
  if (!slot.defined()) {
    slot = std::move(g);
  } else {
    slot = add(slot, g);
  }
}

Tensor run_leaf_hooks(const Tensor& leaf, Tensor g) {
  AutogradMeta* m = meta_if(leaf);
  if (m == nullptr) return g;
  for (auto& [id, hook] : m->leaf_hooks) {
    if (!g.defined()) break;
    Tensor r = hook(g);
    if (r.defined()) g = std::move(r);
  }
  return g;
}

struct ByOrder {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

}  // namespace

variable_list run_backward(const variable_list& roots, const variable_list& grad_roots,
                           bool keep_graph, bool create_graph, const std::vector<Edge>& capture,
                           bool accumulate) {
  AutoGradMode mode(create_graph);
  std::vector<Edge> root_edges;
  for (size_t i = 0; i < roots.size(); ++i) {
    Edge e = gradient_edge(roots[i]);
    KILN_CHECK(e.is_valid(),
               "[backward] element {} of tensors does not require grad and does not have a "
               "grad_fn (sizes {}); nothing to differentiate",
               i, shape_str(roots[i].sizes()));
    root_edges.push_back(std::move(e));
  }

  // Dependencies of every reachable node, and which nodes lead to a captured edge.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> order;  // discovery order
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (const Edge& e : root_edges)
    if (seen.insert(e.function.get()).second) stack.push_back(e.function.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (const Edge& e : n->next_edges()) {
      if (!e.is_valid()) continue;
      ++deps[e.function.get()];
      if (seen.insert(e.function.get()).second) stack.push_back(e.function.get());
    }
  }
  std::unordered_set<Node*> needed;
  if (!capture.empty()) {
    std::unordered_set<Node*> targets;
    for (const Edge& e : capture)
      if (e.is_valid()) targets.insert(e.function.get());
    // A node is needed when it is a target or reaches one: fixed point over the discovery
    // order reversed (children are discovered after parents).
    bool changed = true;
    while (changed) {
      changed = false;
      for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node* n = *it;
        if (needed.count(n)) continue;
        bool need = targets.count(n) > 0;
        for (const Edge& e : n->next_edges())
          need = need || (e.is_valid() && needed.count(e.function.get()));
        if (need) {
          needed.insert(n);
          changed = true;
        }
      }
    }
  }

  std::unordered_map<Node*, variable_list> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> owners;  // keep nodes alive while queued
  auto buffer_of = [&](const std::shared_ptr<Node>& fn) -> variable_list& {
    auto it = buffers.find(fn.get());
    if (it != buffers.end()) return it->second;
    owners[fn.get()] = fn;
    return buffers.emplace(fn.get(), variable_list(fn->num_inputs())).first->second;
  };
  for (size_t i = 0; i < root_edges.size(); ++i) {
    const Edge& e = root_edges[i];
    variable_list& buf = buffer_of(e.function);
    accumulate_into(buf[e.input_nr],
                    validate(grad_roots[i], e.function->output_meta()[e.input_nr], *e.function));
  }

  variable_list captured(capture.size());
  std::priority_queue<Node*, std::vector<Node*>, ByOrder> ready;
  for (const Edge& e : root_edges)
    if (deps[e.function.get()] == 0) {
      deps[e.function.get()] = -1;  // queued once
      ready.push(e.function.get());
    }
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::shared_ptr<Node> hold = owners[n];
    variable_list inputs = std::move(buffers[n]);
    buffers.erase(n);
    auto* acc = dynamic_cast<AccumulateGrad*>(n);
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (n->has_pre_hooks()) inputs[k] = n->run_pre_hooks(static_cast<uint32_t>(k), inputs[k]);
      if (acc != nullptr) inputs[k] = run_leaf_hooks(acc->variable(), inputs[k]);
    }
    for (size_t c = 0; c < capture.size(); ++c)
      if (capture[c].function.get() == n) captured[c] = inputs[capture[c].input_nr];
    const bool run = capture.empty() ? true : needed.count(n) > 0;
    variable_list outputs;
    if (run && (acc == nullptr || accumulate)) {
      outputs = n->apply(std::move(inputs));
      if (!keep_graph) n->release_variables();
    }
    for (size_t i = 0; i < n->next_edges().size(); ++i) {
      const Edge& e = n->next_edge(i);
      if (!e.is_valid()) continue;
      if (i < outputs.size() && outputs[i].defined()) {
        variable_list& buf = buffer_of(e.function);
        accumulate_into(buf[e.input_nr], validate(std::move(outputs[i]),
                                                  e.function->output_meta()[e.input_nr], *e.function));
      } else {
        owners.emplace(e.function.get(), e.function);
      }
      if (--deps[e.function.get()] == 0) {
        deps[e.function.get()] = -1;
        if (!buffers.count(e.function.get())) buffer_of(e.function);
        ready.push(e.function.get());
      }
    }
    owners.erase(n);
  }
  return captured;
}

}  // namespace kiln::autograd
