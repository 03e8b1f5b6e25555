// Tests for the reference interpreter (src/ir/interpreter.cpp): every row of ops.def run from a
// graph (and from the graph's printed text) against ops::call on the same arguments, control
// flow built with the Builder against the same computation written eagerly, and the errors.
// ctest-label: ir
#include <kiln/ir/ir.h>
#include <kiln/ops/call.h>

#include <cmath>

#include "ir_test_util.h"
#include "op_cases.h"

namespace kiln {
namespace {

using ops::OpKind;
using testing::f32;
using testing::op_cases;
using testing::random_tensor;
using testing::same;
using testing::to_vector;
using Args = std::vector<IValue>;
using Values = ir::Builder::Values;

// A graph running kind on args: tensors are graph inputs (lists of them are built with
// list_construct), everything else is a constant; outputs typed with the expected results'
// exact types so the interpreter also checks them.
std::unique_ptr<ir::Graph> graph_for(OpKind kind, const Args& args,
                                     const std::vector<IValue>& expected,
                                     std::vector<IValue>* inputs) {
  auto g = std::make_unique<ir::Graph>();
  ir::Builder b(*g);
  std::vector<ir::Arg> ins;
  const ops::Schema& s = ops::op_schema(kind);
  for (size_t i = 0; i < args.size(); ++i) {
    const IValue& a = args[i];
    if (a.is_tensor()) {
      ins.emplace_back(b.input(ir::type_of(a), s.params[i].name));
      inputs->push_back(a);
    } else if (a.is_tensor_list()) {
      Values elems;
      for (const Tensor& t : a.toTensorList()) {
        if (!t.defined()) {
          elems.push_back(b.constant(IValue()));
          continue;
        }
        elems.push_back(b.input(ir::tensor_type_of(t)));
        inputs->push_back(t);
      }
      const bool optional = s.params[i].type == ops::ArgType::OptionalTensorList;
      ins.emplace_back(
          b.list(elems, optional ? ir::optional_type(ir::tensor_type()) : ir::tensor_type()));
    } else {
      ins.emplace_back(a);
    }
  }
  std::vector<ir::Type> types;
  for (const IValue& e : expected) types.push_back(ir::type_of(e));
  b.ret(b.op_n(kind, ins, types));
  return g;
}

TEST(Interpreter, EveryOpMatchesEager) {
  size_t total = 0;
  for (int k = 0; k < ops::num_ops(); ++k) {
    const OpKind kind = static_cast<OpKind>(k);
    const std::string_view name = ops::op_info(kind).name;
    const std::vector<Args> cases = op_cases(kind);
    EXPECT_FALSE(cases.empty()) << "no interpreter case for op '" << name
                                << "': add one to op_cases() in " << __FILE__;
    total += cases.size();
    for (size_t c = 0; c < cases.size(); ++c) {
      SCOPED_TRACE(fmt::format("op {} case {}", name, c));
      manual_seed(42);
      const std::vector<IValue> expected = ops::call(kind, cases[c]);
      std::vector<IValue> inputs;
      auto g = graph_for(kind, cases[c], expected, &inputs);
      ir::verify(*g);
      manual_seed(42);
      const std::vector<IValue> got = ir::run(*g, inputs);
      ASSERT_EQ(got.size(), expected.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(same(got[i], expected[i])) << "result " << i;
      // The printed graph parses back to one that computes the same.
      const std::string text = ir::print(*g);
      auto parsed = ir::parse(text);
      EXPECT_EQ(ir::print(*parsed), text);
      ir::verify(*parsed);
      manual_seed(42);
      const std::vector<IValue> again = ir::run(*parsed, inputs);
      for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same(again[i], expected[i])) << text;
    }
  }
  EXPECT_GE(total, 2u * static_cast<size_t>(ops::num_ops()));
}

// ---- control flow -------------------------------------------------------------------------------
TEST(Interpreter, IfRunsTheBranchTheConditionPicks) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {3, 4}), "x");
  ir::Value* c = b.input(ir::bool_type(), "c");
  auto r = b.if_(
      c,
      [&](ir::Builder& t) {
        return Values{t.op(OpKind::Mul, {x, 2}), x};
      },
      [&](ir::Builder& e) {
        return Values{e.op(OpKind::Add, {x, 1}), e.op(OpKind::Exp, {x})};
      });
  b.ret(r);
  ir::verify(g);
  const Tensor in = f32({3, 4});
  auto t = ir::run(g, {in, true});
  EXPECT_TRUE(same(t[0], in * 2));
  EXPECT_TRUE(same(t[1], in));
  auto e = ir::run(g, {in, false});
  EXPECT_TRUE(same(e[0], in + 1));
  EXPECT_TRUE(same(e[1], in.exp()));
}

TEST(Interpreter, LoopsCarryValuesAndNest) {
  // acc = x; for i in range(n): acc = acc * 0.5 + x * i; if flag: acc = acc.sin() inside.
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {2, 3}), "x");
  ir::Value* n = b.input(ir::int_type(), "n");
  ir::Value* flag = b.input(ir::bool_type(), "flag");
  auto r =
      b.loop(n, {x, b.constant(int64_t{0})}, [&](ir::Builder& l, ir::Value* i, const Values& c) {
        ir::Value* next =
            l.op(OpKind::Add, {l.op(OpKind::Mul, {c[0], 0.5}), l.op(OpKind::Mul, {x, i})});
        auto s = l.if_(
            flag, [&](ir::Builder& t) { return Values{t.op(OpKind::Sin, {next})}; },
            [&](ir::Builder&) { return Values{next}; });
        // An inner loop: count the iterations of both loops in a tensor.
        auto inner = l.loop(
            i, {c[1]}, [&](ir::Builder&, ir::Value* j, const Values& k) { return Values{k[0]}; });
        return Values{s[0], inner[0]};
      });
  b.ret({r[0], r[1]});
  ir::verify(g);
  const Tensor in = f32({2, 3});
  for (int64_t trips : {0, 1, 5}) {
    for (bool f : {false, true}) {
      SCOPED_TRACE(fmt::format("n = {}, flag = {}", trips, f));
      Tensor acc = in;
      for (int64_t i = 0; i < trips; ++i) {
        acc = acc * 0.5 + in * i;
        if (f) acc = acc.sin();
      }
      auto out = ir::run(g, {in, trips, f});
      EXPECT_TRUE(same(out[0], acc));
      EXPECT_EQ(out[1].toInt(), 0);
    }
  }
  // The same graph through its text.
  auto parsed = ir::parse(ir::print(g));
  EXPECT_TRUE(
      same(ir::run(*parsed, {in, int64_t{3}, true})[0], ir::run(g, {in, int64_t{3}, true})[0]));
}

TEST(Interpreter, SubGraphsTuplesAndLists) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {4}), "x");
  ir::Value* y = b.input(ir::tensor_type(kFloat, {4}), "y");
  ir::Value* parts = b.input(ir::list_type(ir::tensor_type(kFloat)), "parts");
  auto fused = b.fusion_group({x, y}, [](ir::Builder& s, const Values& p) {
    return Values{s.op(OpKind::Mul, {s.op(OpKind::Add, {p[0], p[1]}), p[1]})};
  });
  auto called = b.call("twice", {fused[0]}, [](ir::Builder& s, const Values& p) {
    return Values{s.op(OpKind::Add, {p[0], p[0]}), s.op(OpKind::Neg, {p[0]})};
  });
  ir::Value* t = b.tuple({called[0], called[1]});
  auto back = b.tuple_unpack(t);
  auto elems = b.list_unpack(parts, 2);
  ir::Value* joined = b.op(OpKind::Cat, {b.list({elems[1], back[0], elems[0]}), 0});
  b.ret({joined, back[1], t});
  ir::verify(g);
  const Tensor a = f32({4}), c = f32({4}), p0 = f32({2}), p1 = f32({3});
  auto out = ir::run(g, {a, c, std::vector<Tensor>{p0, p1}});
  const Tensor f = (a + c) * c;
  EXPECT_TRUE(same(out[0], kiln::cat({p1, f + f, p0})));
  EXPECT_TRUE(same(out[1], -f));
  EXPECT_TRUE(same(out[2], IValue::tuple({f + f, -f})));
  EXPECT_KILN_ERROR(ir::run(g, {a, c, std::vector<Tensor>{p0}}),
                    {"[ir.run] list_unpack failed: got a list of 1 elements, expected 2", "at: %",
                     "list_unpack(%parts)", "test_interpreter.cpp"});
}

// ---- errors -------------------------------------------------------------------------------------
TEST(Interpreter, ErrorsNameTheNodeAndWhereItCameFrom) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat), "x");
  ir::Value* w = b.input(ir::tensor_type(kFloat), "w");
  ir::Value* n = b.input(ir::int_type(), "n");
  const int line = __LINE__ + 2;
  auto r = b.loop(n, {x}, [&](ir::Builder& l, ir::Value*, const Values& c) {
    return Values{l.op(OpKind::Mm, {c[0], w})};
  });
  b.ret(r);
  ir::verify(g);
  try {
    ir::run(g, {f32({2, 3}), f32({2, 3}), int64_t{2}});
    ADD_FAILURE() << "mm of [2, 3] x [2, 3] ran";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[ir.run] mm failed: [mm] mat1 and mat2 shapes cannot be multiplied"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("at: %3 : Tensor = mm(%2, %w)"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fmt::format("test_interpreter.cpp:{}", line)), std::string::npos) << msg;
    EXPECT_NE(msg.find("inside: %0 : Tensor = loop(%n, %x) { 1 block }"), std::string::npos) << msg;
  }
}

TEST(Interpreter, ChecksInputsAndOutputsAgainstTheirTypes) {
  ir::Graph g;
  ir::Builder b(g);
  const ir::Dim n = ir::Dim::symbol("N");
  ir::Value* x = b.input(ir::tensor_type(kFloat, {n, 3}), "x");
  ir::Value* y = b.input(ir::tensor_type(kFloat, {n, 3}), "y");
  b.ret({b.op(OpKind::Add, {x, y}, ir::tensor_type(kFloat, {n, 3}))});
  ir::verify(g);
  EXPECT_TRUE(
      same(ir::run(g, {kiln::ones({5, 3}), kiln::ones({5, 3})})[0], kiln::full({5, 3}, 2.0)));
  EXPECT_KILN_ERROR(ir::run(g, {kiln::ones({5, 3}), kiln::ones({4, 3})}),
                    {"[ir.run] input 1 (%y) does not fit its type Tensor(float32, [N, 3])",
                     "expected dim 0 to be N = 5 (bound earlier)"});
  EXPECT_KILN_ERROR(ir::run(g, {kiln::ones({5, 3}, kDouble), kiln::ones({5, 3})}),
                    {"input 0 (%x)", "dtype is float64, expected float32"});
  EXPECT_KILN_ERROR(ir::run(g, {kiln::ones({5, 3})}), {"the graph takes 2 inputs, got 1"});
  // A wrong output type is the graph's fault, reported at the node.
  ir::Graph h;
  ir::Builder hb(h);
  ir::Value* z = hb.input(ir::tensor_type(kFloat, {2}), "z");
  hb.ret({hb.op(OpKind::Sum, {z, std::vector<int64_t>{}, false}, ir::tensor_type(kFloat, {2}))});
  EXPECT_KILN_ERROR(ir::run(h, {kiln::ones({2})}),
                    {"[ir.run] sum failed: output 0 does not fit its type Tensor(float32, [2])",
                     "sizes are [], expected 1 dims"});
  ir::RunOptions unchecked;
  unchecked.check_types = false;
  EXPECT_TRUE(same(ir::run(h, {kiln::ones({2})}, unchecked)[0], kiln::full({}, 2.0)));
}

}  // namespace
}  // namespace kiln
