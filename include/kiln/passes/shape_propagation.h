// Shape and dtype propagation: type inference through the whole graph, from the graph's input
// types and constants, with the per-op rules of shape_rules.h. Early in the pipeline
// (pipeline.h): folding, canonicalisation and fusion all decide from the types it computes.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Refines the type of every value from its definition: op outputs from infer_output_types
/// (shape_rules.h), constants from their value, `if` outputs from both branches, loop-carried
/// values to a fixed point over the body (unifying the initial value with each iteration's),
/// sub-graph blocks from their node's inputs, tuples and lists from their elements. Types only
/// ever become more precise: a fact already declared is kept when inference knows less, and a
/// declared fact that contradicts an inferred one wins (the graph would fail at run time there,
/// which is not this pass's to decide). Returns true when some type changed.
///
///   before: %1 : Tensor = add(%x, %y)     # %x : Tensor(float32, [2, 1]), %y : Tensor(int64, [3])
///   after:  %1 : Tensor(float32, [2, 3], cpu, contiguous) = add(%x, %y)
bool propagate_shapes(ir::Graph& g);

}  // namespace kiln::passes
