// Unit tests of the passes (src/passes/) on graphs built with the Builder: what each pass
// changes and what it must leave alone, that the interpreter computes the same before and
// after, the fusion contract and limits, the pass manager (names, verification, dumps, stats)
// and the pipeline list. The golden tests under tests/ir/ show the same passes on IR text.
// ctest-label: ir
#include <kiln/ir/ir.h>
#include <kiln/jit/trace.h>
#include <kiln/nn/functional.h>
#include <kiln/passes/canonicalize.h>
#include <kiln/passes/common_subexpression_elimination.h>
#include <kiln/passes/constant_folding.h>
#include <kiln/passes/dead_code_elimination.h>
#include <kiln/passes/fusion.h>
#include <kiln/passes/inlining.h>
#include <kiln/passes/loop_unrolling.h>
#include <kiln/passes/pipeline.h>
#include <kiln/passes/shape_propagation.h>

#include <set>
#include <sstream>

#include "fusion_contract.h"
#include "ir_test_util.h"

namespace kiln {
namespace {

using ops::OpKind;
using testing::random_tensor;
using testing::same;
using Values = ir::Builder::Values;
using L = std::vector<int64_t>;

ir::Type f32(std::vector<ir::Dim> sizes) {
  return ir::tensor_type(kFloat, std::move(sizes), Device(kCPU), ir::Contiguity::Contiguous);
}

int count(const ir::Block* b, ir::NodeKind k) { return testing::count_nodes(b, k); }
int count(const ir::Graph& g, ir::NodeKind k) { return count(g.block(), k); }

// Runs `pass` on a copy of g and checks that the interpreter gives identical results on
// inputs (with the same random seed); returns the rewritten copy.
std::unique_ptr<ir::Graph> run_and_compare(const ir::Graph& g, const std::vector<IValue>& inputs,
                                           const std::function<bool(ir::Graph&)>& pass) {
  auto out = g.copy();
  pass(*out);
  ir::verify(*out);
  manual_seed(7);
  const auto expected = ir::run(g, inputs);
  manual_seed(7);
  const auto got = ir::run(*out, inputs);
  EXPECT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < std::min(got.size(), expected.size()); ++i)
    EXPECT_TRUE(same(got[i], expected[i])) << "output " << i << "\nbefore:\n"
                                           << g << "\nafter:\n"
                                           << *out;
  return out;
}

// ---- dead code -----------------------------------------------------------------------------
TEST(DeadCode, KeepsRandomDrawsInsideLoops) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({3}), "x");
  ir::Value* n = b.input(ir::int_type(), "n");
  // The loop's result is unused, but its body draws: removing it would change the later draw.
  b.loop(n, {x}, [&](ir::Builder& l, ir::Value*, const Values& c) {
    return Values{l.op(OpKind::Add, {c[0], l.op(OpKind::Rand, {L{3}, kFloat, Device(kCPU)})})};
  });
  b.op(OpKind::Exp, {x});  // dead
  b.ret({b.op(OpKind::Rand, {L{3}, kFloat, Device(kCPU)})});
  auto out = run_and_compare(g, {random_tensor({3}), int64_t{2}}, passes::eliminate_dead_code);
  EXPECT_EQ(count(*out, ir::Prim::Loop), 1);
  EXPECT_EQ(count(*out, OpKind::Exp), 0);
  EXPECT_EQ(count(*out, OpKind::Rand), 2);
  EXPECT_FALSE(passes::eliminate_dead_code(*out));  // a fixed point
}

// ---- CSE -----------------------------------------------------------------------------------
TEST(Cse, ReusesOuterValuesInLoopsButNotAcrossIsolatedBlocks) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({3}), "x");
  ir::Value* e = b.op(OpKind::Exp, {x});
  const Values r =
      b.loop(b.constant(int64_t{3}), {x}, [&](ir::Builder& l, ir::Value*, const Values& c) {
        return Values{l.op(OpKind::Add, {c[0], l.op(OpKind::Exp, {x})})};  // invariant: reuses %e
      });
  const Values f = b.fusion_group({x}, [&](ir::Builder& s, const Values& in) {
    return Values{s.op(OpKind::Exp, {in[0]})};  // its own block: stays
  });
  b.ret({b.op(OpKind::Add, {e, r[0]}), f[0]});
  auto out = run_and_compare(g, {random_tensor({3})}, passes::eliminate_common_subexpressions);
  EXPECT_EQ(count(*out, OpKind::Exp), 2);
  const ir::Node* loop = nullptr;
  for (const ir::Node* n : out->block()->nodes())
    if (n->kind().is(ir::Prim::Loop)) loop = n;
  ASSERT_NE(loop, nullptr);
  EXPECT_EQ(count(loop->block(0), OpKind::Exp), 0);
}

TEST(Cse, MergedValueKeepsTheMorePreciseType) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({2}), "x");
  ir::Value* a = b.op(OpKind::Neg, {x});
  ir::Value* c = b.op(OpKind::Neg, {x}, f32({2}));
  b.ret({a, c});
  EXPECT_TRUE(passes::eliminate_common_subexpressions(g));
  ir::verify(g);
  EXPECT_EQ(g.outputs()[0], g.outputs()[1]);
  EXPECT_EQ(g.outputs()[0]->type(), f32({2}));
}

// ---- constant folding --------------------------------------------------------------------------
TEST(Fold, RespectsTheSizeBoundAndLayoutReaders) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({4}), "x");
  ir::Value* c = b.constant(random_tensor({4}));
  ir::Value* d = b.op(OpKind::Mul, {c, 2});
  ir::Value* big = b.op(OpKind::Full, {L{40}, 1.0, kFloat, Device(kCPU)});
  // A permuted constant read by as_strided: folding would hand as_strided a compact copy.
  ir::Value* m = b.constant(random_tensor({2, 3}));
  ir::Value* t = b.op(OpKind::Permute, {m, L{1, 0}});
  ir::Value* s = b.op(OpKind::AsStrided, {t, L{3}, L{2}, 1});
  b.ret({b.op(OpKind::Add, {x, d}), big, s});
  passes::propagate_shapes(g);
  auto out = run_and_compare(g, {random_tensor({4})}, [](ir::Graph& h) {
    return passes::fold_constants(h, passes::FoldOptions{16});
  });
  EXPECT_EQ(count(*out, OpKind::Mul), 0);
  EXPECT_EQ(count(*out, OpKind::Full), 1);     // 40 elements > 16
  EXPECT_EQ(count(*out, OpKind::Permute), 1);  // read by as_strided
  EXPECT_EQ(count(*out, OpKind::AsStrided), 1);
}

TEST(Fold, IfAndLoopDecidedByConstants) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({2}), "x");
  const Values i = b.if_(
      b.constant(false), [&](ir::Builder& t) { return Values{t.op(OpKind::Exp, {x})}; },
      [&](ir::Builder& e) { return Values{e.op(OpKind::Sin, {x})}; });
  const Values l =
      b.loop(b.constant(int64_t{-1}), {i[0]}, [&](ir::Builder& lb, ir::Value*, const Values& c) {
        return Values{lb.op(OpKind::Cos, {c[0]})};
      });
  b.ret({l[0]});
  auto out = run_and_compare(g, {random_tensor({2})},
                             [](ir::Graph& h) { return passes::fold_constants(h); });
  EXPECT_EQ(count(*out, ir::Prim::If) + count(*out, ir::Prim::Loop), 0);
  EXPECT_EQ(count(*out, OpKind::Sin), 1);
  EXPECT_EQ(count(*out, OpKind::Exp), 0);
}

// ---- canonicalisation
// ----------------------------------------------------------------------------
TEST(Canonicalize, KeepsIdentitiesWhoseLayoutIsObserved) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({2, 3}), "x");
  ir::Value* t = b.op(OpKind::Permute, {b.op(OpKind::Exp, {x}), L{1, 0}});
  ir::Value* m = b.op(OpKind::Mul, {t, 1});  // a fresh contiguous copy of the permuted values
  ir::Value* s = b.op(OpKind::AsStrided, {m, L{3}, L{1}, 0});  // reads m's memory order
  ir::Value* m2 = b.op(OpKind::Mul, {t, 1});  // only its values are read: removable
  b.ret({s, b.op(OpKind::Neg, {m2})});
  passes::propagate_shapes(g);
  auto out = run_and_compare(g, {random_tensor({2, 3})}, passes::canonicalize);
  EXPECT_EQ(count(*out, OpKind::Mul), 1);
}

TEST(Canonicalize, ComposesPermutesAndExpands) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({2, 1, 4}), "x");
  ir::Value* p = b.op(OpKind::Permute, {b.op(OpKind::Permute, {x, L{2, 0, 1}}), L{0, 2, 1}});
  ir::Value* e = b.op(OpKind::Expand, {b.op(OpKind::Expand, {x, L{2, 3, 4}}), L{5, -1, -1, 4}});
  b.ret({b.op(OpKind::Neg, {p}), b.op(OpKind::Neg, {e})});
  passes::propagate_shapes(g);
  auto out = run_and_compare(g, {random_tensor({2, 1, 4})}, [](ir::Graph& h) {
    bool c = passes::canonicalize(h);
    passes::eliminate_dead_code(h);
    return c;
  });
  EXPECT_EQ(count(*out, OpKind::Permute), 1);
  EXPECT_EQ(count(*out, OpKind::Expand), 1);
}

// ---- shape propagation
// ---------------------------------------------------------------------------
TEST(Shapes, LoopFixedPointAndSubGraphs) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {ir::Dim::symbol("N"), 2}, Device(kCPU)), "x");
  ir::Value* n = b.input(ir::int_type(), "n");
  // Carried through cat, the first dim grows each iteration: only the second stays known.
  const Values grow = b.loop(n, {x}, [&](ir::Builder& l, ir::Value*, const Values& c) {
    return Values{l.op(OpKind::Cat, {l.list({c[0], x}), 0})};
  });
  const Values same_shape = b.loop(n, {x}, [&](ir::Builder& l, ir::Value* i, const Values& c) {
    return Values{l.op(OpKind::Add, {c[0], i})};
  });
  const Values call = b.call("f", {x}, [&](ir::Builder& s, const Values& in) {
    return Values{s.op(OpKind::Sum, {in[0], L{0}, false})};
  });
  b.ret({grow[0], same_shape[0], call[0]});
  EXPECT_TRUE(passes::propagate_shapes(g));
  ir::verify(g);
  const auto sizes = [](const ir::Value* v) { return *v->type().tensor().sizes; };
  EXPECT_EQ(sizes(grow[0]), (std::vector<ir::Dim>{ir::Dim::unknown(), 2}));
  EXPECT_EQ(sizes(same_shape[0]), (std::vector<ir::Dim>{ir::Dim::symbol("N"), 2}));
  EXPECT_EQ(sizes(call[0]), (std::vector<ir::Dim>{2}));
  EXPECT_FALSE(passes::propagate_shapes(g));  // a fixed point
  for (int64_t trips : {0, 1, 3})
    EXPECT_NO_THROW(ir::run(g, {random_tensor({3, 2}), trips})) << trips;
}

// ---- unrolling and inlining
// ------------------------------------------------------------------------
TEST(Unroll, KeepsTheOrderOfRandomDrawsAndTheBudget) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({3}), "x");
  const auto body = [&](ir::Builder& l, ir::Value* i, const Values& c) {
    ir::Value* r = l.op(OpKind::Rand, {L{3}, kFloat, Device(kCPU)});
    return Values{l.op(OpKind::Add, {l.op(OpKind::Mul, {c[0], r}), i})};
  };
  const Values a = b.loop(b.constant(int64_t{5}), {x}, body);
  b.ret({a[0]});
  auto out = run_and_compare(g, {random_tensor({3})},
                             [](ir::Graph& h) { return passes::unroll_loops(h); });
  EXPECT_EQ(count(*out, ir::Prim::Loop), 0);
  EXPECT_EQ(count(*out, OpKind::Rand), 5);
  // Over budget: 5 iterations x 6 nodes > 20.
  auto kept = g.copy();
  EXPECT_FALSE(passes::unroll_loops(*kept, passes::UnrollOptions{16, 4, 20}));
  EXPECT_EQ(count(*kept, ir::Prim::Loop), 1);
}

TEST(Inline, NestedCallsAndTheirResults) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({3}), "x");
  const Values r = b.call("outer", {x}, [&](ir::Builder& s, const Values& in) {
    const Values inner = s.call("inner", {in[0]}, [&](ir::Builder& t, const Values& p) {
      return Values{t.op(OpKind::Exp, {p[0]}), p[0]};
    });
    return Values{s.op(OpKind::Add, {inner[0], inner[1]})};
  });
  b.ret({r[0]});
  auto out = run_and_compare(g, {random_tensor({3})}, passes::inline_calls);
  EXPECT_EQ(count(*out, ir::Prim::Call), 0);
  EXPECT_EQ(count(*out, OpKind::Add), 1);
}

// ---- fusion ------------------------------------------------------------------------------------
TEST(Fusion, GroupsObeyTheContractAndTheLimits) {
  ir::Graph g;
  ir::Builder b(g);
  Values ins;
  for (int i = 0; i < 6; ++i) ins.push_back(b.input(f32({4, 5}), fmt::format("x{}", i)));
  ir::Value* acc = ins[0];
  for (int i = 1; i < 6; ++i) acc = b.op(OpKind::Add, {b.op(OpKind::Exp, {acc}), ins[i]});
  ir::Value* s = b.op(OpKind::Sum, {acc, L{1}, true});
  b.ret({s, acc});
  passes::propagate_shapes(g);
  std::vector<IValue> inputs;
  for (int i = 0; i < 6; ++i) inputs.emplace_back(random_tensor({4, 5}));
  for (const auto& [nodes, in] :
       std::vector<std::pair<int64_t, int64_t>>{{64, 16}, {3, 16}, {64, 3}}) {
    SCOPED_TRACE(fmt::format("max_nodes {} max_inputs {}", nodes, in));
    auto out = run_and_compare(g, inputs, [&](ir::Graph& h) {
      return passes::create_fusion_groups(h, passes::FusionOptions{nodes, in});
    });
    ::testing::AssertionResult ok = ::testing::AssertionSuccess();
    const int groups = testing::check_fusion_groups(out->block(), &ok);
    EXPECT_TRUE(ok);
    for (const ir::Node* n : out->block()->nodes()) {
      if (!n->kind().is(ir::Prim::FusionGroup)) continue;
      EXPECT_LE(static_cast<int64_t>(n->num_inputs()), in);
      int compute = 0;
      for (const ir::Node* m : n->block(0)->nodes()) compute += m->kind().is_op();
      EXPECT_LE(compute, nodes);
    }
    if (nodes == 64 && in == 16)
      EXPECT_EQ(groups, 1);  // everything, the sum included
    else
      EXPECT_GT(groups, 1);
  }
}

TEST(Fusion, EqualSubgraphsPrintEqually) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({3}), "x");
  ir::Value* y = b.input(f32({3}), "y");
  ir::Value* a = b.op(OpKind::Mul, {b.op(OpKind::Exp, {x}), y});
  ir::Value* w = b.op(OpKind::Softmax, {a, 0});  // not fusible: splits the two groups
  ir::Value* c = b.op(OpKind::Mul, {b.op(OpKind::Exp, {w}), x});
  b.ret({c});
  passes::propagate_shapes(g);
  ASSERT_TRUE(passes::create_fusion_groups(g));
  ir::verify(g);
  // Both groups compute exp(p) * q: their blocks print the same (block text keys the kernel
  // cache), whatever their inputs are called outside.
  std::vector<std::string> texts;
  for (const ir::Node* n : g.block()->nodes()) {
    if (!n->kind().is(ir::Prim::FusionGroup)) continue;
    ir::Graph sub;
    sub.block()->clone_from(*n->block(0), [](ir::Value* v) { return v; });
    texts.push_back(ir::print(sub));
  }
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0], texts[1]);
}

TEST(Fusion, NeverAcrossControlFlowAndInsideLoops) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({3}), "x");
  ir::Value* n = b.input(ir::int_type(), "n");
  ir::Value* e = b.op(OpKind::Exp, {x}, f32({3}));
  const Values l =
      b.loop(n, {e},
             [&](ir::Builder& lb, ir::Value*, const Values& c) {
               return Values{lb.op(OpKind::Tanh, {lb.op(OpKind::Mul, {c[0], x})}, f32({3}))};
             },
             {f32({3})});
  b.ret({b.op(OpKind::Neg, {l[0]})});
  passes::propagate_shapes(g);
  auto out = run_and_compare(g, {random_tensor({3}), int64_t{3}},
                             [](ir::Graph& h) { return passes::create_fusion_groups(h); });
  EXPECT_EQ(count(*out, ir::Prim::FusionGroup), 3);  // before, inside, after the loop
  int in_loops = 0;
  for (const ir::Node* node : out->block()->nodes())
    if (node->kind().is(ir::Prim::Loop)) in_loops += count(node->block(0), ir::Prim::FusionGroup);
  EXPECT_EQ(in_loops, 1);
}

// ---- the pipeline on traced functions
// ------------------------------------------------------------ Traced graphs are what the JIT will
// feed the pipeline: exact types, many constants, captured tensors (non-contiguous ones through
// as_strided), in-place ops recorded functionally.
TEST(Pipeline, TracedFunctionsKeepTheirResults) {
  const Tensor w = random_tensor({3, 4});
  const Tensor captured = random_tensor({4, 4}).t();  // non-contiguous: captured via as_strided
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&, const Tensor&)>>>
      fns = {
          {"mlp", [&](const Tensor& x,
                      const Tensor&) { return relu(nn::functional::linear(x, w)).sum({1}, true); }},
          {"softmax-like",
           [](const Tensor& x, const Tensor&) {
             Tensor e = exp(x - x.amax({1}, true));
             return e / e.sum({1}, true);
           }},
          {"broadcast-views",
           [&](const Tensor& x, const Tensor& y) {
             return (x * captured + y.unsqueeze(0)).t().tanh() * 1 + 0.0;
           }},
          {"in-place",
           [](const Tensor& x, const Tensor& y) {
             Tensor z = x.clone();
             z.mul_(2).add_(y);
             z.clamp_(-0.5, 0.5);
             return z.sigmoid();
           }},
      };
  for (const auto& [name, fn] : fns) {
    SCOPED_TRACE(name);
    const Tensor x = random_tensor({4, 4}), y = random_tensor({4});
    auto traced = jit::trace([&](const Tensor& a, const Tensor& b) { return fn(a, b); }, {x, y});
    const IValue expected = traced.run({x, y});
    auto g = traced.graph().copy();
    passes::PassManagerOptions o;
    o.verify_each = true;
    passes::run_default_pipeline(*g, o);
    ::testing::AssertionResult ok = ::testing::AssertionSuccess();
    EXPECT_GT(testing::check_fusion_groups(g->block(), &ok), 0) << *g;
    EXPECT_TRUE(ok);
    std::vector<IValue> inputs = {x, y};
    for (const Tensor& p : traced.parameters()) inputs.emplace_back(p);
    const auto got = ir::run(*g, inputs);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(same(got[0], expected)) << traced.graph() << "\nafter:\n" << *g;
  }
}

// ---- pass manager and pipeline -----------------------------------------------------------------
TEST(PassManager, NamesVerificationDumpsAndStats) {
  EXPECT_KILN_ERROR(passes::PassManager().add("nosuch"), {"unknown pass 'nosuch'", "dce"});
  std::set<std::string_view> names;
  for (const auto& p : passes::registered_passes()) EXPECT_TRUE(names.insert(p.name).second);
  for (const std::string& p : passes::default_pipeline()) EXPECT_TRUE(names.count(p)) << p;

  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(f32({2}), "x");
  b.op(OpKind::Exp, {x});
  b.ret({b.op(OpKind::Neg, {x})});
  std::ostringstream dump;
  passes::PassManagerOptions o;
  o.verify_each = true;
  o.dump = "dce, shapes";
  o.dump_stream = &dump;
  passes::PassManager pm(o);
  pm.add("shapes").add("cse").add("dce");
  const passes::PassStats stats = pm.run(g);
  ASSERT_EQ(stats.passes.size(), 3u);
  EXPECT_EQ(stats.passes[2].name, "dce");
  EXPECT_TRUE(stats.passes[2].changed);
  EXPECT_FALSE(stats.passes[1].changed);
  EXPECT_LT(stats.passes[2].nodes_after, stats.passes[2].nodes_before);
  EXPECT_NE(stats.str().find("total"), std::string::npos);
  EXPECT_NE(dump.str().find("# ---- IR after shapes"), std::string::npos);
  EXPECT_NE(dump.str().find("# ---- IR after dce"), std::string::npos);
  EXPECT_EQ(dump.str().find("after cse"), std::string::npos);

  // A pass that breaks the IR is caught by the verifier and named; its own errors too.
  passes::PassManager broken(o);
  broken.add("break", [](ir::Graph& h) {
    h.block()->return_node()->replace_input(0, h.inputs()[0]);
    h.inputs()[0]->set_type(ir::int_type());
    return true;
  });
  EXPECT_KILN_ERROR(broken.run(g), {"[passes] break", "invalid IR"});
  passes::PassManager throwing;
  throwing.add("boom", [](ir::Graph&) -> bool { KILN_FAIL("[boom] no"); });
  EXPECT_KILN_ERROR(throwing.run(g), {"[passes] boom", "[boom] no"});
}

}  // namespace
}  // namespace kiln
