// The IR verifier: checks a graph's invariants after it is built, parsed or rewritten. Tests and
// debug builds run it after every pass; the tracer runs it on every graph it returns. A violation
// throws kiln::Error naming what is wrong, with the offending node printed.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::ir {

/// Checks g and throws kiln::Error ("[ir.verify] what is wrong\n  at: <node> # location") on
/// the first violation of:
///  - structure: node lists, owning blocks and graphs, value offsets, use lists;
///  - SSA: every value is defined once and used only where its definition is visible (earlier in
///    the same block or in an enclosing one; fusion-group and call blocks see only their own);
///  - ops: the number of inputs and outputs and the type of each input against the op's schema;
///  - structural kinds: constants hold a value of their type, if/loop/fusion group/call have the
///    right blocks whose inputs and outputs fit the node's, tuple and list nodes match their types.
void verify(const Graph& g);

}  // namespace kiln::ir
