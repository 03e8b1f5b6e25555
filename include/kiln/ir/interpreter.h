// The reference interpreter: runs any verified graph node by node with the eager kernels
// (ops::call for every primitive), including if, loop, fusion groups and calls. It defines what a
// graph means: every pass and every code generator is tested against it.
#pragma once

#include <unordered_map>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/ivalue.h"

namespace kiln::ir {

struct RunOptions {
  /// Checks the inputs and every node's outputs against their types (dtype, sizes, device,
  /// contiguity; a symbolic dim is bound at its first sight and must agree afterwards).
  bool check_types = true;
  /// When set, receives every value the run computed (the graph's inputs and the outputs of
  /// every node, nested blocks' included; a loop body's values as of its last trip).
  std::unordered_map<const Value*, IValue>* values = nullptr;
};

/// Runs g on inputs (in the order of g's inputs) and returns its outputs. A failing node throws
/// kiln::Error "[ir.run] <kind> failed: <the kernel's message>\n  at: <node> # location".
std::vector<IValue> run(const Graph& g, std::vector<IValue> inputs, const RunOptions& options = {});

}  // namespace kiln::ir
