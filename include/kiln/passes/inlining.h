// Inlining of sub-graph calls: splices the block of every `call` node into its caller. First
// in the pipeline (pipeline.h), so that every later pass sees one flat graph.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Replaces every `call` node (nested ones included, calls inside callees too) by a copy of its
/// block's nodes, with the block's inputs bound to the call's inputs and the call's outputs
/// replaced by what the block returns. fusion_group nodes are left alone. Returns true when the
/// graph changed.
///
///   before: %y = call[name="f"](%x) block0(%a : Tensor): %b = exp(%a) -> (%b)
///   after:  %y = exp(%x)
bool inline_calls(ir::Graph& g);

}  // namespace kiln::passes
