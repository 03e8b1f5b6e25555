// Fusion grouping: gathers maximal groups of elementwise ops, with reductions at their tail and
// views of their inputs, into `fusion_group` nodes whose blocks code generation compiles into
// one kernel each. Last in the pipeline (pipeline.h), after types are known and the graph has
// been simplified. The contract a group satisfies is in docs/ir.md ("Fusion groups").
#pragma once

#include <cstdint>

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Default limits of a fusion group.
inline constexpr int64_t kMaxGroupNodes = 64;
inline constexpr int64_t kMaxGroupInputs = 16;
/// Matrix products of at most this many multiply-adds are computed inside the kernel that
/// reads them (see docs/ir.md "Fusion groups"); larger ones stay library calls.
inline constexpr int64_t kMaxFusedProductMacs = int64_t{1} << 19;

struct FusionOptions {
  /// Compute nodes (elementwise ops and reductions; not constants or views) per group.
  int64_t max_nodes = kMaxGroupNodes;
  /// Tensor inputs per group.
  int64_t max_inputs = kMaxGroupInputs;
  /// The largest mm (M * N * K) a group may compute; 0: none.
  int64_t max_product_macs = kMaxFusedProductMacs;
};

/// Replaces maximal sets of fusible nodes of each block (the top block and the blocks of `if`
/// and `loop`, never across their boundaries) by `fusion_group` nodes. Every group satisfies
/// the contract of docs/ir.md: its block holds kFusible elementwise ops (unary, binary, where,
/// copy, cast, assign) all of one static iteration shape, reductions (sum, prod, amax, amin,
/// all, any) of values of that shape over one set of constant dims whose results leave the
/// group, views applied directly to block inputs, and the non-tensor constants these use;
/// block inputs (in first-use order) and outputs are tensors, and the outputs are exactly the
/// values used after the group. A group may also compute small matrix products it reads (mm of
/// float matrices that are block inputs or their views, at most max_product_macs
/// multiply-adds, of the iteration shape). Other library calls (larger mm, bmm, addmm, conv2d),
/// softmax, indexing, sorting, scans, pools, creation and random ops are never fused; tensors
/// without static sizes and dtypes are not fused. A single elementwise op may form a group of its
/// own. Returns true when the graph changed.
///
///   before: %1 = mul(%x, %y); %2 = exp(%1); %3 = sum(%2, %dims, %false); return (%3)
///   after:  %3 = fusion_group(%x, %y) block0(%a, %b): ... mul, exp, sum ... -> (%s)
bool create_fusion_groups(ir::Graph& g, const FusionOptions& options = {});

}  // namespace kiln::passes
