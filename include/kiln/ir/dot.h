// Graphviz export of an IR graph: one box per node (its kind and typed outputs), one edge per use
// labelled with the value's name, nested blocks as clusters. For looking at graphs, e.g.
// `dot -Tsvg graph.dot`; the text form (printer.h) is the one to diff and test against.
#pragma once

#include <string>

#include "kiln/ir/graph.h"

namespace kiln::ir {

/// The graph in Graphviz DOT syntax (deterministic: the same graph gives the same text).
std::string to_dot(const Graph& g);

}  // namespace kiln::ir
