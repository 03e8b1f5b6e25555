// Canonicalisation (peephole rewrites): removes identities such as x * 1 and transpose of
// transpose, and puts commutative ops in one spelling, so later passes (CSE, fusion) see fewer,
// simpler nodes. Runs after shape propagation (pipeline.h): most rules need dtypes and sizes.
#pragma once

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// Applies the rewrite rules of docs/ir.md ("canonicalize") to a fixed point. Every rule is
/// exact: it never changes a value the interpreter computes, bit for bit (so x + 0 -> x only
/// for integers: for floats -0.0 + 0 is +0.0; x - 0 -> x holds for every dtype). A rule that
/// would return an existing value instead of a fresh tensor is skipped when the result's memory
/// layout can be observed (it is read by as_strided, or it is a graph output that would then
/// alias a graph input). Returns true when the graph changed.
///
///   before: %1 = permute(%x, %p10); %2 = permute(%1, %p10); %3 = mul(%2, %one)
///   after:  (uses of %3 read %x)
bool canonicalize(ir::Graph& g);

}  // namespace kiln::passes
