// Loop unrolling: replaces small loops with constant trip counts by copies of their body, and
// unrolls longer ones by a factor, within a size budget. Runs after constant folding has made
// trip counts constant (pipeline.h); the straight-line code it leaves is then folded, merged
// and fused like any other.
#pragma once

#include <cstdint>

#include "kiln/ir/graph.h"

namespace kiln::passes {

struct UnrollOptions {
  /// Loops with a constant trip count of at most this many iterations are unrolled fully.
  int64_t max_full_trips = 16;
  /// Loops that are not fully unrolled repeat their body this many times per iteration.
  int64_t factor = 4;
  /// At most this many nodes (nested ones included) may be created for one loop.
  int64_t max_nodes = 256;
};

/// Unrolls `loop` nodes, innermost first:
///   - a constant trip count n <= 0: the outputs become the initial values;
///   - a constant n <= max_full_trips with n x body size <= max_nodes: the body is cloned n
///     times in sequence with the iteration number as the constants 0 .. n-1;
///   - otherwise, a constant n with factor x body size <= max_nodes, when the body does not read
///     the iteration number: a loop of n / factor trips whose body is factor copies, followed
///     by n % factor copies. (The IR has no integer arithmetic, so neither a non-constant trip
///     count nor an iteration number read by the body can be split; such loops stay.)
/// The order of every node's executions is unchanged, random draws included. Returns true
/// when the graph changed.
///
///   before: %r = loop(%three, %x) block0(%i : int, %c : Tensor): %n = mul(%c, %c) -> (%n)
///   after:  %n0 = mul(%x, %x); %n1 = mul(%n0, %n0); %r = mul(%n1, %n1)
bool unroll_loops(ir::Graph& g, const UnrollOptions& options = {});

}  // namespace kiln::passes
