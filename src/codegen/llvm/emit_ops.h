// Emission of one elementwise primitive of the op table on Vals: the op's ops::scalar functor
// (src/ops/scalar_ops.h) instantiated with Val, through an X-macro over ops.def, so codegen keeps
// no op list of its own. Shared by every kernel emitter.
#pragma once

#include "codegen/llvm/val.h"
#include "codegen/llvm/vector_math.h"
#include "kiln/ops/op_kind.h"

namespace kiln::codegen::llvm {

/// Emits unary row op on a (throws kiln::Error when the functor cannot take a Val). `known`
/// bounds a's values (value_range.h): exp and tanh take their cheaper forms where it allows.
Val emit_unary(ops::OpKind op, const Val& a, const Interval& known = {});
/// Emits binary row op on a and b (both of one type).
Val emit_binary(ops::OpKind op, const Val& a, const Val& b);
/// A mask operand (a comparison's result) as 0/1 of like's type, as a bool tensor promotes.
Val numeric(const Val& v, const Val& like);

}  // namespace kiln::codegen::llvm
