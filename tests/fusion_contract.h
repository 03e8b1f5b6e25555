// A checker for the fusion-group contract of docs/ir.md ("Fusion groups"), independent of the
// pass that creates groups (src/passes/fusion.cpp): the pass tests and the randomized pipeline
// test run it on every fusion_group node they produce.
#pragma once

#include <gtest/gtest.h>
#include <kiln/ir/ir.h>
#include <kiln/passes/fusion.h>

#include <algorithm>
#include <optional>
#include <unordered_set>

namespace kiln::testing {

inline ::testing::AssertionResult group_violation(const ir::Node* g, const std::string& what) {
  return ::testing::AssertionFailure()
         << "fusion contract: " << what << "\n  in: " << ir::node_str(g);
}

/// Checks one fusion_group node against the contract.
inline ::testing::AssertionResult check_fusion_group(const ir::Node* g) {
  using ops::OpKind;
  const ir::Block* b = g->block(0);
  std::optional<std::vector<int64_t>> iter;
  std::optional<std::vector<int64_t>> dims;
  int64_t compute = 0;
  std::unordered_set<const ir::Value*> views, elementwise, reductions;
  const auto sizes = [](const ir::Value* v) -> std::optional<std::vector<int64_t>> {
    if (!v->type().is_tensor() || !v->type().tensor().dtype) return std::nullopt;
    return v->type().tensor().static_sizes();
  };
  const auto same_iter = [&](const std::vector<int64_t>& s) {
    if (!iter) iter = s;
    return *iter == s;
  };
  for (const ir::Value* v : g->inputs())
    if (!v->type().is_tensor()) return group_violation(g, "a non-tensor input");
  for (const ir::Value* v : g->outputs()) {
    if (!v->type().is_tensor()) return group_violation(g, "a non-tensor output");
    if (!v->has_uses()) return group_violation(g, "an output nobody uses");
  }
  for (const ir::Value* v : b->inputs())
    if (!v->has_uses()) return group_violation(g, "a block input unused inside");
  // Block inputs in first-use order.
  std::vector<const ir::Value*> first_use;
  for (const ir::Node* n : b->nodes())
    for (const ir::Value* v : n->inputs())
      if (v->is_block_input() &&
          std::find(first_use.begin(), first_use.end(), v) == first_use.end())
        first_use.push_back(v);
  if (first_use != std::vector<const ir::Value*>(b->inputs().begin(), b->inputs().end()))
    return group_violation(g, "block inputs are not in first-use order");
  for (const ir::Node* n : b->nodes()) {
    if (n->kind().is(ir::Prim::Constant)) {
      if (n->attr("value").is_tensor()) return group_violation(g, "a tensor constant inside");
      continue;
    }
    if (!n->kind().is_op()) return group_violation(g, "a structural node inside");
    const ops::OpInfo& info = ops::op_info(n->kind().op());
    for (const ir::Value* v : n->inputs())
      if (!v->type().is_tensor() && !v->node()->kind().is(ir::Prim::Constant))
        return group_violation(g, "a non-tensor argument that is not a constant of the block");
    if (info.is_view()) {
      if (n->kind().op() == OpKind::AsStrided) return group_violation(g, "as_strided inside");
      const ir::Value* src = n->input(0);
      if (!src->is_block_input() && !views.count(src))
        return group_violation(g, "a view of a value computed inside the group");
      views.insert(n->output());
      continue;
    }
    if (n->kind().op() == OpKind::Mm) {
      // A small float product of two matrices the group loads (block inputs or their views).
      ++compute;
      auto s = sizes(n->output()), a = sizes(n->input(0)), m = sizes(n->input(1));
      const auto dt = n->output()->type().tensor().dtype;
      if (!s || !a || !m || a->size() != 2 || m->size() != 2 || !dt ||
          (*dt != kFloat && *dt != kDouble))
        return group_violation(g, "a product that is not of float matrices");
      for (const ir::Value* v : n->inputs())
        if (!v->is_block_input() && !views.count(v))
          return group_violation(g, "a product of a value computed inside the group");
      if ((*a)[0] * (*a)[1] * (*m)[1] > passes::kMaxFusedProductMacs)
        return group_violation(g, "a product larger than kMaxFusedProductMacs");
      if (!same_iter(*s)) return group_violation(g, "a product of another shape");
      elementwise.insert(n->output());
      continue;
    }
    if (info.has(ops::kRandom) || !info.has(ops::kFusible))
      return group_violation(g, fmt::format("op {} may not be fused", info.name));
    ++compute;
    for (const ir::Value* v : n->inputs())
      if (reductions.count(v)) return group_violation(g, "a reduction result used inside");
    if (info.is_elementwise()) {
      auto s = sizes(n->output());
      if (!s) return group_violation(g, "an elementwise value without static sizes and dtype");
      if (!same_iter(*s)) return group_violation(g, "elementwise values of different sizes");
      elementwise.insert(n->output());
      continue;
    }
    if (!info.is_reduction()) return group_violation(g, fmt::format("op {} inside", info.name));
    auto s = sizes(n->input(0));
    if (!s || !same_iter(*s)) return group_violation(g, "a reduction of another shape");
    const ir::Value* dv = n->input(1);
    if (!dv->node()->kind().is(ir::Prim::Constant) ||
        !n->input(2)->node()->kind().is(ir::Prim::Constant))
      return group_violation(g, "a reduction without constant dims and keepdim");
    std::vector<int64_t> d = dv->node()->attr("value").toIntList();
    const int64_t rank = static_cast<int64_t>(s->size());
    if (d.empty() || rank == 0) {
      d.clear();
      for (int64_t i = 0; i < rank; ++i) d.push_back(i);
    }
    for (int64_t& x : d) x = x < 0 ? x + rank : x;
    std::sort(d.begin(), d.end());
    if (dims && *dims != d) return group_violation(g, "reductions over different dims");
    dims = d;
    for (const ir::Use& u : n->output()->uses())
      if (!u.user->kind().is(ir::Prim::Return))
        return group_violation(g, "a reduction result used inside");
    reductions.insert(n->output());
  }
  if (compute == 0) return group_violation(g, "no compute node");
  if (compute > passes::kMaxGroupNodes) return group_violation(g, "too many nodes");
  if (static_cast<int64_t>(b->inputs().size()) > passes::kMaxGroupInputs)
    return group_violation(g, "too many inputs");
  std::unordered_set<const ir::Value*> outs;
  for (const ir::Value* v : b->outputs()) {
    if (!outs.insert(v).second) return group_violation(g, "an output returned twice");
    if (v->is_block_input() || views.count(v))
      return group_violation(g, "an output that is an input or a view of one");
    if (!elementwise.count(v) && !reductions.count(v))
      return group_violation(g, "an output that is not computed inside");
  }
  return ::testing::AssertionSuccess();
}

/// Checks every fusion_group of g (nested ones included); returns the number of groups.
inline int check_fusion_groups(const ir::Block* b, ::testing::AssertionResult* result) {
  int n = 0;
  for (const ir::Node* node : b->nodes()) {
    if (node->kind().is(ir::Prim::FusionGroup)) {
      ++n;
      auto r = check_fusion_group(node);
      if (!r && *result) *result = r;
      continue;
    }
    for (const ir::Block* nested : node->blocks()) n += check_fusion_groups(nested, result);
  }
  return n;
}

}  // namespace kiln::testing
