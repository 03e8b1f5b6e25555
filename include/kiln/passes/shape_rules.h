// Shape and dtype rules of every op of the op table, written once (src/passes/shape_rules.cpp):
// the output types of an op node from its inputs' types and the values of its constant
// arguments. Shape propagation applies them through a graph; constant folding and fusion read
// the types they produce; a test walks every OpKind and checks each rule against eager results.
#pragma once

#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/ops/op_kind.h"

namespace kiln::passes {

/// True when the op has a shape rule (every row of ops.def must have one).
bool has_shape_rule(ops::OpKind kind);

/// The types of op node n's outputs as far as its inputs' types and constant arguments
/// determine them: dtype from the op's dtype rule (OpInfo::dtype_rule) with libtorch's type
/// promotion (wrapped numbers included), sizes from the op's shape rule (broadcasting,
/// reductions with dims and keepdim, views, matmuls, convolutions, pools, indexing, creation
/// from constant sizes...), device from the tensor inputs or the device argument, and
/// contiguity where the kernel always returns a fresh contiguous tensor. Static dims propagate
/// exactly, symbolic dims where the rule allows (N broadcast with N or 1 is N; different
/// symbols give ?), and anything not determined is left unknown (never guessed). Inputs that
/// would make the op fail give unknown facts, not an error. n must be an op node.
std::vector<ir::Type> infer_output_types(const ir::Node* n);

}  // namespace kiln::passes
