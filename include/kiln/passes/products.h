// Product splitting: a small matrix product whose result only feeds elementwise ops (directly
// or through slices, as an LSTM's gates are the chunks of one product) is rewritten so that
// fusion can compute it inside the kernel of those ops: the bias of addmm becomes an add, the
// slices move onto the operands (a column slice of the result is the product with a column
// slice of mat2), and a mat2 whose columns are not contiguous is copied once (the kernel reads
// rows of mat2 as vectors). Runs just before fusion (pipeline.h).
#pragma once

#include <cstdint>

#include "kiln/ir/graph.h"
#include "kiln/passes/fusion.h"

namespace kiln::passes {

/// Rewrites, in every block, each mm(A, B) or addmm(C, A, B, beta, alpha) (constant beta and
/// alpha) of float32 or float64 2-D operands with at most max_macs multiply-adds whose every
/// use is an elementwise op of the product's sizes or a step-1 slice of it along dim 0 or 1
/// read only by elementwise ops of the slice's sizes:
///
///   before: %p = addmm(%c, %a, %bt, 1, 1); %s = slice(%p, 1, 0, 4, 1); %y = sigmoid(%s)
///   after:  %b = copy(%bt); %cs = slice(%c, 0, 0, 4, 1); %bs = slice(%b, 1, 0, 4, 1)
///           %m = mm(%a, %bs); %s2 = add(%cs, %m); %y = sigmoid(%s2)
///
/// beta 0 drops C (its values are not read, as eager's addmm); other beta and alpha scale C
/// and the product by mul. A plain mm whose mat2 is contiguous and which is not sliced is left
/// as it is. mat2 is copied when its columns are not contiguous; when two or more of the
/// rewritten products of a block read it and its rows are a multiple of 256 bytes long, the
/// copy (made whether or not mat2 is contiguous) has 64 bytes of padding per row,
/// slice(cat([mat2, full([K, 64 / element size], 0)], 1), 1, 0, N, 1): rows that far apart
/// share a few L1 cache sets, and the kernel reads a block of columns row after row. Returns
/// true when the graph changed.
bool split_products(ir::Graph& g, int64_t max_macs = kMaxFusedProductMacs);

}  // namespace kiln::passes
