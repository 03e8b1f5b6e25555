// The IR printer: the deterministic text form of a graph (docs/ir.md), which ir::parse reads
// back exactly: print(*parse(text)) == text for any text the printer wrote. Also the one-line
// forms of nodes, values and attribute values used by error messages everywhere.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln::ir {

struct PrintOptions {
  /// Appends "  # file:line (context)" to nodes whose source location is known. The parser
  /// skips comments, so such text parses, but the locations are not read back.
  bool source_locations = false;
  /// Tensor constants with more elements than this print as "tensor(float32, [512, 512], ...)",
  /// which does not parse; 0 prints every value.
  int64_t max_tensor_elements = 0;
};

/// The text form of g.
std::string print(const Graph& g, const PrintOptions& options = {});
std::ostream& operator<<(std::ostream& os, const Graph& g);

/// The line of n as the printer writes it inside its graph (value names are those of the whole
/// graph; nested blocks are shown as " { N blocks }"), followed by its source location when
/// known. For error messages.
std::string node_str(const Node* n);
/// The printed name of v within its graph ("%x", "%3").
std::string value_str(const Value* v);
/// The text form of an attribute or constant value: 1, 2.5, true, None, [1, 2], float32, cpu,
/// "text", tensor(float32, [2], [1.0, 2.0]).
std::string ivalue_str(const IValue& v, const PrintOptions& options = {});

}  // namespace kiln::ir
