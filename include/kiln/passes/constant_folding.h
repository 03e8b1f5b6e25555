// Constant folding and propagation: evaluates ops whose inputs are all constants with the eager
// kernels (ops::call) and resolves control flow decided by constants. Runs after shape
// propagation in the pipeline (pipeline.h), which tells it the size of what it would create.
#pragma once

#include <cstdint>

#include "kiln/ir/graph.h"

namespace kiln::passes {

struct FoldOptions {
  /// Tensor constants the pass creates hold at most this many elements; an op whose result
  /// would be bigger (or whose size is not known from its type) stays in the graph.
  int64_t max_elements = 1024;
};

/// Folds, to a fixed point:
///   - an op all of whose inputs are constants, that draws no random numbers (kRandom), whose
///     result's size is known and within options.max_elements, and that runs without error:
///     its outputs become constants computed by ops::call (exactly what the interpreter would
///     compute); an op that throws is left for run time to report;
///   - list_construct / tuple_construct of constants, and list_unpack / tuple_unpack of them;
///   - `if` on a constant condition: the taken block is spliced in place of the node;
///   - `loop` with a constant trip count <= 0: its outputs become its initial values.
/// Results read by as_strided (which reads memory layout, not values) are not folded, since a
/// folded constant is a compact copy. Returns true when the graph changed.
///
///   before: %0 : int = constant[value=2](); %c = constant[value=tensor(float32, [2],
///   [1.0, 2.0])]()
///           %1 = mul(%c, %0)
///   after:  %1 = constant[value=tensor(float32, [2], [2.0, 4.0])]()
bool fold_constants(ir::Graph& g, const FoldOptions& options = {});

}  // namespace kiln::passes
