// Common-subexpression elimination: merges nodes that compute the same value from the same
// inputs. Runs after constant folding and canonicalisation in the pipeline (pipeline.h), which
// bring equal expressions to one spelling first.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Replaces every node by an earlier equivalent one where there is one: same kind, same
/// attributes (constants: the same value, compared bit for bit, and the same type), the same
/// inputs (for commutative ops in either order, see pass_util.h) and no blocks. A node may reuse
/// an equivalent node of its own block or of an enclosing block (never one of another branch
/// or from inside a loop body); fusion_group and call blocks are isolated and are processed on
/// their own. Ops that draw random numbers (kRandom) are never merged. The surviving value
/// keeps the more precise of the two types. Returns true when the graph changed.
///
///   before: %a = mul(%x, %y); %b = mul(%y, %x); %c = add(%a, %b)
///   after:  %a = mul(%x, %y); %c = add(%a, %a)
bool eliminate_common_subexpressions(ir::Graph& g);

}  // namespace kiln::passes
