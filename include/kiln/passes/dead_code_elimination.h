// Dead-code elimination: the cleanup pass of the pipeline (pipeline.h), run after every pass that
// leaves unused nodes behind. Removes nodes whose results nothing uses, unused outputs of if,
// loop, fusion_group and call nodes, and unused inputs of sub-graph blocks.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Removes what cannot affect the graph's outputs:
///   - nodes none of whose outputs is used, unless they draw random numbers (kRandom ops, and
///     if/loop nodes containing one): removing a draw would change every later draw;
///   - outputs of `if` nodes nobody uses (with the values their blocks return for them);
///   - carried values of `loop` nodes whose final value nobody uses and which feed no other
///     carried value;
///   - unused outputs and unused block inputs of `fusion_group` and `call` nodes.
/// Graph inputs and outputs are never removed. Returns true when the graph changed.
///
///   before: %0 = exp(%x); %1 = neg(%x); return (%1)
///   after:  %1 = neg(%x); return (%1)
bool eliminate_dead_code(ir::Graph& g);

}  // namespace kiln::passes
