// Tests for the shape and dtype rules (src/passes/shape_rules.cpp): every row of the op table
// has a rule, and each rule, on the example arguments of every op (tests/op_cases.h), agrees with
// the type of what the eager op returns: exactly with static input types, soundly (never a
// wrong fact) with dtype-only, untyped and symbolic input types. Then the symbolic-dim rules.
// ctest-label: ir
#include <kiln/ir/ir.h>
#include <kiln/ops/call.h>
#include <kiln/passes/shape_rules.h>

#include <map>

#include "op_cases.h"

namespace kiln {
namespace {

using ir::Dim;
using ops::OpKind;
using testing::OpArgs;

// How much of each tensor input's type the graph states.
enum class Facts { Exact, DtypeOnly, Nothing, Symbolic };

ir::Type input_type(const Tensor& t, Facts f) {
  switch (f) {
    case Facts::Exact:
      return ir::tensor_type_of(t);
    case Facts::DtypeOnly:
      return ir::tensor_type(t.dtype());
    case Facts::Nothing:
      return ir::tensor_type();
    case Facts::Symbolic: {
      // Equal sizes get equal symbols ("S3"), so symbols are consistent within one case.
      std::vector<Dim> dims;
      for (int64_t s : t.sizes())
        dims.push_back(s == 1 ? Dim(1) : Dim::symbol(fmt::format("S{}", s)));
      return ir::tensor_type(t.dtype(), dims, t.device());
    }
  }
  return ir::tensor_type();
}

// One node running kind on args: tensors are graph inputs typed per `facts` (lists of them are
// list_constructs), everything else a constant. Returns the node; *inputs gets the tensors.
ir::Node* node_for(ir::Graph& g, OpKind kind, const OpArgs& args, Facts facts,
                   std::vector<std::pair<ir::Type, IValue>>* inputs) {
  ir::Builder b(g);
  const ops::Schema& s = ops::op_schema(kind);
  std::vector<ir::Arg> ins;
  for (size_t i = 0; i < args.size(); ++i) {
    const IValue& a = args[i];
    if (a.is_tensor()) {
      const ir::Type t = input_type(a.toTensor(), facts);
      ins.emplace_back(b.input(t));
      inputs->emplace_back(t, a);
    } else if (a.is_tensor_list()) {
      ir::Builder::Values elems;
      for (const Tensor& t : a.toTensorList()) {
        if (!t.defined()) {
          elems.push_back(b.constant(IValue()));
          continue;
        }
        const ir::Type ty = input_type(t, facts);
        elems.push_back(b.input(ty));
        inputs->emplace_back(ty, t);
      }
      const bool optional = s.params[i].type == ops::ArgType::OptionalTensorList;
      ins.emplace_back(
          b.list(elems, optional ? ir::optional_type(ir::tensor_type()) : ir::tensor_type()));
    } else {
      ins.emplace_back(a);
    }
  }
  const auto outs = b.op_n(kind, ins);
  b.ret(outs);
  return outs[0]->node();
}

TEST(ShapeRules, EveryOpHasARule) {
  for (int k = 0; k < ops::num_ops(); ++k)
    EXPECT_TRUE(passes::has_shape_rule(static_cast<OpKind>(k)))
        << "op '" << ops::op_info(static_cast<OpKind>(k)).name
        << "' has no shape rule: add one in src/passes/shape_rules.cpp";
}

TEST(ShapeRules, AgreeWithEagerResults) {
  size_t checked = 0;
  for (int k = 0; k < ops::num_ops(); ++k) {
    const OpKind kind = static_cast<OpKind>(k);
    const std::string_view name = ops::op_info(kind).name;
    const std::vector<OpArgs> cases = testing::op_cases(kind);
    EXPECT_FALSE(cases.empty()) << "no example arguments for op '" << name << "' (op_cases.h)";
    for (size_t c = 0; c < cases.size(); ++c) {
      const std::vector<IValue> results = ops::call(kind, cases[c]);
      for (Facts facts : {Facts::Exact, Facts::DtypeOnly, Facts::Nothing, Facts::Symbolic}) {
        SCOPED_TRACE(fmt::format("op {} case {} facts {}", name, c, static_cast<int>(facts)));
        ir::Graph g;
        std::vector<std::pair<ir::Type, IValue>> inputs;
        ir::Node* n = node_for(g, kind, cases[c], facts, &inputs);
        const std::vector<ir::Type> inferred = passes::infer_output_types(n);
        ASSERT_EQ(inferred.size(), results.size());
        ir::SymbolBindings bindings;
        for (const auto& [t, v] : inputs) ASSERT_EQ(ir::mismatch(t, v, &bindings), "");
        for (size_t i = 0; i < results.size(); ++i) {
          const ir::Type actual = ir::type_of(results[i]);
          // Sound: every fact the rule states holds for the eager result.
          EXPECT_EQ(ir::mismatch(inferred[i], results[i], &bindings), "")
              << "inferred " << inferred[i].str() << ", eager gave " << actual.str();
          if (facts != Facts::Exact) continue;
          // Precise: with static inputs and constant arguments everything but contiguity
          // is determined.
          const ir::TensorType& t = inferred[i].tensor();
          EXPECT_EQ(t.dtype, actual.tensor().dtype) << inferred[i].str() << " vs " << actual.str();
          EXPECT_EQ(t.sizes, actual.tensor().sizes) << inferred[i].str() << " vs " << actual.str();
          EXPECT_EQ(t.device, actual.tensor().device) << inferred[i].str();
          ++checked;
        }
      }
    }
  }
  EXPECT_GE(checked, static_cast<size_t>(ops::num_ops()));
}

// A tiny graph: inputs of the given types, one op; returns the inferred type of its output.
ir::Type infer(OpKind kind, const std::vector<ir::Type>& tensors, std::vector<ir::Arg> rest = {}) {
  ir::Graph g;
  ir::Builder b(g);
  std::vector<ir::Arg> args;
  for (const ir::Type& t : tensors) args.emplace_back(b.input(t));
  for (ir::Arg& a : rest) args.push_back(std::move(a));
  ir::Value* out = b.op(kind, args);
  b.ret({out});
  return passes::infer_output_types(out->node())[0];
}

ir::Type f32(std::vector<Dim> dims) { return ir::tensor_type(kFloat, std::move(dims), kCPU); }
const Dim N = Dim::symbol("N");
const Dim M = Dim::symbol("M");
const Dim Q = Dim::unknown();

std::vector<Dim> sizes_of(const ir::Type& t) { return *t.tensor().sizes; }

TEST(ShapeRules, SymbolicBroadcasting) {
  using V = std::vector<Dim>;
  EXPECT_EQ(sizes_of(infer(OpKind::Add, {f32({N, 3}), f32({N, 3})})), (V{N, 3}));
  EXPECT_EQ(sizes_of(infer(OpKind::Add, {f32({N, 3}), f32({1, 3})})), (V{N, 3}));
  EXPECT_EQ(sizes_of(infer(OpKind::Add, {f32({N, 1}), f32({3})})), (V{N, 3}));
  // Different symbols: either may be 1, so nothing is known.
  EXPECT_EQ(sizes_of(infer(OpKind::Add, {f32({N}), f32({M})})), (V{Q}));
  // A static size > 1 wins: the other must be 1 or equal to it.
  EXPECT_EQ(sizes_of(infer(OpKind::Mul, {f32({N}), f32({4})})), (V{4}));
  EXPECT_EQ(sizes_of(infer(OpKind::Mul, {f32({Q}), f32({4})})), (V{4}));
  EXPECT_EQ(sizes_of(infer(OpKind::Mul, {f32({Q}), f32({1})})), (V{Q}));
  EXPECT_EQ(sizes_of(infer(OpKind::Mul, {f32({N, 2}), f32({7, N, 2})})), (V{7, N, 2}));
  // Unknown rank stays unknown.
  EXPECT_FALSE(infer(OpKind::Add, {ir::tensor_type(kFloat), f32({3})}).tensor().sizes);
}

TEST(ShapeRules, DtypePromotionWithWrappedNumbers) {
  const ir::Type i32 = ir::tensor_type(kInt, {Dim(3)}, kCPU);
  const ir::Type h = ir::tensor_type(kHalf, {Dim(3)}, kCPU);
  const ir::Type l0 = ir::tensor_type(kLong, std::vector<Dim>{}, kCPU);
  EXPECT_EQ(infer(OpKind::Add, {i32}, {2}).tensor().dtype, kInt);      // int wrapped
  EXPECT_EQ(infer(OpKind::Add, {i32}, {2.5}).tensor().dtype, kFloat);  // default float
  EXPECT_EQ(infer(OpKind::Mul, {h}, {2.5}).tensor().dtype, kHalf);     // float stays
  EXPECT_EQ(infer(OpKind::Add, {i32, l0}).tensor().dtype, kInt);       // 0-dim is lower
  EXPECT_EQ(infer(OpKind::Div, {i32, i32}).tensor().dtype, kFloat);    // IntToFloat
  EXPECT_EQ(infer(OpKind::Lt, {h}, {1}).tensor().dtype, kBool);        // Bool
  EXPECT_EQ(infer(OpKind::Sum, {i32}, {std::vector<int64_t>{}, false}).tensor().dtype, kLong);
  // Rank unknown: a dim tensor and a zero-dim one promote differently with int32, so the
  // result is unknown; with float32 both give float32.
  EXPECT_FALSE(infer(OpKind::Add, {i32, ir::tensor_type(kLong)}).tensor().dtype);
  EXPECT_EQ(infer(OpKind::Add, {f32({3}), ir::tensor_type(kLong)}).tensor().dtype, kFloat);
}

TEST(ShapeRules, ReductionsAndViewsWithSymbols) {
  using V = std::vector<Dim>;
  using L = std::vector<int64_t>;
  EXPECT_EQ(sizes_of(infer(OpKind::Sum, {f32({N, 3, M})}, {L{1}, true})), (V{N, 1, M}));
  EXPECT_EQ(sizes_of(infer(OpKind::Sum, {f32({N, 3, M})}, {L{-1, 0}, false})), (V{3}));
  EXPECT_EQ(sizes_of(infer(OpKind::Amax, {f32({N, 3})}, {L{}, false})), (V{}));
  EXPECT_EQ(sizes_of(infer(OpKind::Amax, {f32({N, 3})}, {L{}, true})), (V{1, 1}));
  EXPECT_FALSE(infer(OpKind::Sum, {f32({N, 3})}, {L{2}, true}).tensor().sizes);  // out of range
  EXPECT_EQ(sizes_of(infer(OpKind::View, {f32({N, 4})}, {L{-1, 2, 2}})), (V{N, 2, 2}));
  EXPECT_EQ(sizes_of(infer(OpKind::View, {f32({N, 4})}, {L{-1}})), (V{Q}));
  EXPECT_EQ(sizes_of(infer(OpKind::Permute, {f32({N, 3, M})}, {L{2, 0, 1}})), (V{M, N, 3}));
  EXPECT_EQ(sizes_of(infer(OpKind::Expand, {f32({N, 1})}, {L{2, -1, 5}})), (V{2, N, 5}));
  EXPECT_EQ(sizes_of(infer(OpKind::Select, {f32({N, 3})}, {0, 1})), (V{3}));
  EXPECT_EQ(sizes_of(infer(OpKind::Slice, {f32({N, 8})}, {1, 1, 7, 2})), (V{N, 3}));
  EXPECT_EQ(sizes_of(infer(OpKind::Slice, {f32({N, 8})}, {0, 1, 7, 2})), (V{Q, 8}));
  EXPECT_EQ(sizes_of(infer(OpKind::Mm, {f32({N, 3}), f32({3, M})})), (V{N, M}));
}

}  // namespace
}  // namespace kiln
