// Helpers of the suites that run the default pipeline on traced layers (test_batch_mm.cpp,
// test_convolution_pass.cpp): counting nodes of a kind, and optimising a traced function with
// the interpreter before and after, and eager, compared.
#pragma once

#include <kiln/ir/ir.h>
#include <kiln/jit/trace.h>
#include <kiln/passes/pass_manager.h>
#include <kiln/passes/pipeline.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fusion_contract.h"
#include "ir_test_util.h"

namespace kiln::testing {

/// Traces fn on inputs, runs the default pipeline with verification, checks the fusion-group
/// contract, and compares the interpreter on the optimised graph with the traced one and with
/// eager (to rtol / atol: merged products and convolutions sum in another order). Returns the
/// optimised graph.
/// Passes of the default pipeline listed in `skip` are left out (a suite about one pass can
/// keep a later one from rewriting what it counts).
template <typename Fn>
std::unique_ptr<ir::Graph> optimise_and_compare(Fn&& fn, const std::vector<Tensor>& inputs,
                                                double rtol = 1e-5, double atol = 1e-5,
                                                const std::vector<std::string>& skip = {}) {
  const Tensor eager = fn(inputs);
  auto traced = jit::trace([&](const std::vector<Tensor>& xs) { return fn(xs); }, inputs);
  std::vector<IValue> args(inputs.begin(), inputs.end());
  for (const Tensor& p : traced.parameters()) args.emplace_back(p);
  const auto before = ir::run(traced.graph(), args);
  auto g = traced.graph().copy();
  passes::PassManagerOptions o;
  o.verify_each = true;
  passes::PassManager pm(o);
  for (const std::string& name : passes::default_pipeline())
    if (std::find(skip.begin(), skip.end(), name) == skip.end()) pm.add(name);
  pm.run(*g);
  ::testing::AssertionResult ok = ::testing::AssertionSuccess();
  check_fusion_groups(g->block(), &ok);
  EXPECT_TRUE(ok);
  const auto after = ir::run(*g, args);
  EXPECT_EQ(before.size(), 1u);
  EXPECT_EQ(after.size(), 1u);
  if (before.size() == 1 && after.size() == 1) {
    EXPECT_TRUE(close(after[0].toTensor(), before[0].toTensor(), rtol, atol))
        << traced.graph() << "\nafter:\n" << *g;
    EXPECT_TRUE(close(after[0].toTensor(), eager, rtol, atol));
  }
  return g;
}

}  // namespace kiln::testing
