// The LLVM IR of a fusion group's kernel as text, without LLVM types in the interface: what
// `kiln-opt --emit=llvm` prints and the LLVM-IR golden tests (tests/ir/llvm_*.ir) check.
#pragma once

#include <string>

#include "kiln/ir/graph.h"

namespace kiln::codegen::llvm {

/// The kernel of fusion_group node `group` with every operand contiguous, `lanes` vector
/// elements per iteration (0: the host's width), optimised at opt_level (0: as emitted).
/// Throws kiln::Error naming why when the group cannot be lowered.
std::string fused_kernel_ir(const ir::Node& group, int lanes, int opt_level);

}  // namespace kiln::codegen::llvm
