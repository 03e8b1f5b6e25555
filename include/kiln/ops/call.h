// The boxed entry point: run any primitive of the op table from IValue arguments in schema
// order. The IR interpreter and the autograd/tracer recorders use it; it records exactly as
// the typed functions (kiln::add, kiln::sum, ...) do.
#pragma once

#include <vector>

#include "kiln/ivalue.h"
#include "kiln/ops/op_kind.h"

namespace kiln::ops {

/// Runs one primitive eagerly. Arguments are checked against the op's schema first (a
/// mismatch throws kiln::Error naming the parameter); results come back in schema order.
std::vector<IValue> call(OpKind kind, const std::vector<IValue>& args);

}  // namespace kiln::ops
