// Value-range analysis of a kernel program: for every instruction, bounds on the values it can
// take other than NaN, proved from its constants and operations (a sigmoid lies in [0, 1], so
// sigmoid(y) - 0.5 in [-0.5, 0.5]). The emitter hands them to the math library, which picks a
// cheaper lowering where the bounds allow it (vector_math.h's Interval overloads).
#pragma once

#include <vector>

#include "codegen/llvm/fusion_kernel.h"
#include "codegen/llvm/vector_math.h"

namespace kiln::codegen::llvm {

/// One interval per instruction of p (the whole line where nothing is known). Sound for the
/// values the kernel computes: bounds are widened outward by a few ulp of float32 to cover the
/// rounding of each operation in its compute dtype.
std::vector<Interval> value_ranges(const KernelProgram& p);

}  // namespace kiln::codegen::llvm
