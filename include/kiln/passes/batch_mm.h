// Matmul batching: merges independent matrix products that share an operand into one library
// call, and pushes concatenations back through the elementwise ops that feed them, so a layer
// written as "one small matmul per channel / per time step" becomes one large matmul and one
// fused kernel. TorchScript's BatchMM pass is the model (its "side" form); the cat push-down is
// Kiln's, and is what lets the merged product reach the kernel that follows without a copy.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Runs both rewrites to a fixed point on every block; returns true when the graph changed.
/// Needs static sizes (it runs after shape propagation; symbolic sizes are left alone).
///
/// Shared right operand (per-channel weights times one im2col matrix, per-step inputs times one
/// weight): products mm/bmm/addmm(A_i, B) with the same B, whose A_i have equal sizes except
/// the row dim and do not depend on each other's results, become one product of cat(A_i) and
/// B whose rows are sliced back out. Shared left operand: mm/bmm(A, B_i) becomes
/// mm/bmm(A, cat(B_i)) sliced along the columns. The nodes computing the A_i (B_i) that come
/// after the first product are moved up before it (they are pure and independent of the
/// products by the check above).
///
///   before: %p = bmm(%a, %b); %q = bmm(%c, %b)
///   after:  %l = list_construct(%a, %c); %ac = cat(%l, 1); %m = bmm(%ac, %b)
///           %p = slice(%m, 1, 0, rows_a, 1); %q = slice(%m, 1, rows_a, rows_a + rows_c, 1)
///
/// Cat push-down: cat_d([f(x_i, y_i)]) -> f(cat_d(x_i), cat_d(y_i)) for one elementwise op f
/// whose results are used only by the cat, when every operand keeps its dtype (no promotion
/// can change) and its size along d matches; an operand the same for every i with size 1
/// along d is used as it is (it broadcasts). cat_d of consecutive slices of one tensor along d
/// is one slice (or the tensor itself).
///
///   before: %p = slice(%m, 1, 0, 1, 1); %q = slice(%m, 1, 1, 2, 1)
///           %r = add(%p, %s); %t = add(%q, %u); %l = list_construct(%r, %t); %o = cat(%l, 1)
///   after:  %l2 = list_construct(%s', %u'); %su = cat(%l2, 1); %o = add(%m, %su)
bool batch_matmuls(ir::Graph& g);

}  // namespace kiln::passes
