// The default pipeline, in order, and the registry of named passes: what runs between tracing and
// code generation. Read run_default_pipeline's list top to bottom; docs/ir.md ("Passes") says
// why each step is where it is.
#include "kiln/passes/pipeline.h"

#include "kiln/passes/batch_mm.h"
#include "kiln/passes/canonicalize.h"
#include "kiln/passes/common_subexpression_elimination.h"
#include "kiln/passes/constant_folding.h"
#include "kiln/passes/convolution.h"
#include "kiln/passes/dead_code_elimination.h"
#include "kiln/passes/fusion.h"
#include "kiln/passes/inlining.h"
#include "kiln/passes/loop_unrolling.h"
#include "kiln/passes/products.h"
#include "kiln/passes/shape_propagation.h"

namespace kiln::passes {

const std::vector<PassInfo>& registered_passes() {
  static const std::vector<PassInfo> passes = {
      {"inline", "splice the blocks of call nodes into their callers", inline_calls},
      {"shapes", "infer dtypes, sizes, devices and contiguity of every value", propagate_shapes},
      {"fold", "evaluate constant ops; resolve if/loop on constants",
       [](ir::Graph& g) { return fold_constants(g); }},
      {"canonicalize", "peephole identities (x * 1, permute of permute, ...)", canonicalize},
      {"cse", "merge nodes computing the same value", eliminate_common_subexpressions},
      {"dce", "remove what no output depends on", eliminate_dead_code},
      {"unroll", "unroll constant loops (fully when short, by a factor otherwise)",
       [](ir::Graph& g) { return unroll_loops(g); }},
      {"batch_mm", "merge matmuls sharing an operand; push cat through elementwise ops",
       batch_matmuls},
      {"conv", "im2col products into conv2d; per-channel adds into its bias",
       recognize_convolutions},
      {"products", "small products read by elementwise ops: bias, slices and layout split off",
       [](ir::Graph& g) { return split_products(g); }},
      {"fuse", "group elementwise ops and their reductions into fusion_group nodes",
       [](ir::Graph& g) { return create_fusion_groups(g); }},
  };
  return passes;
}

const PassInfo* find_pass(std::string_view name) {
  for (const PassInfo& p : registered_passes())
    if (p.name == name) return &p;
  return nullptr;
}

const std::vector<std::string>& default_pipeline() {
  static const std::vector<std::string> pipeline = {
      "inline",        // one flat graph for everything below
      "shapes",        // types first: folding, peepholes and fusion decide from them
      "fold",          // constants, and if/loop decided by them
      "canonicalize",  // identities out, one spelling per expression
      "cse",           // merge what canonicalisation made equal
      "dce",           // drop what folding and merging left unused
      "unroll",        // trip counts are constants now
      "shapes",        // exact types for the unrolled straight-line code
      "fold",          // iteration numbers are constants in the copies
      "canonicalize",  // identities the constants revealed
      "cse",           // the copies share work with each other and the code around
      "dce",           // the loops' leftovers
      "batch_mm",      // per-channel / per-step matmuls into one (needs the unrolled copies)
      "cse",           // the pieces batch_mm sliced and stacked
      "dce",           // the products and cats it replaced
      "conv",          // the merged im2col product is a convolution
      "dce",           // the products and unbiased convolutions it replaced
      "products",      // small products fed to elementwise ops: computed in their kernels
      "fuse",          // last: group what is left into kernels
      "dce",           // views left outside groups
  };
  return pipeline;
}

PassStats run_default_pipeline(ir::Graph& g, const PassManagerOptions& options) {
  PassManager pm(options);
  for (const std::string& name : default_pipeline()) pm.add(name);
  return pm.run(g);
}

}  // namespace kiln::passes
