// Tests for the IR core (src/ir): types, node kinds, the graph mutation API, the printer and
// parser (exact round trips, errors at line:column for malformed text, a mutation fuzzer that
// must never crash), the verifier (each rule rejected with the offending node printed), the DOT
// export and the Builder.
// ctest-label: ir
#include <kiln/ir/ir.h>

#include <random>
#include <set>

#include "test_util.h"

namespace kiln {
namespace {

using ops::OpKind;
using testing::expect_error;

// ---- helpers ------------------------------------------------------------------------------------
std::string roundtrip(const std::string& text) { return ir::print(*ir::parse(text)); }

// Parses text (which must parse) and expects verify() to fail mentioning every fragment.
void expect_verify_error(const std::string& text, const std::vector<std::string>& fragments) {
  SCOPED_TRACE(text);
  auto g = ir::parse(text);
  expect_error([&] { ir::verify(*g); }, fragments);
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

// ---- types --------------------------------------------------------------------------------------
TEST(IrType, PrintsAndParsesEveryKind) {
  const std::vector<ir::Type> types = {
      ir::tensor_type(),
      ir::tensor_type(kFloat, {2, 3}),
      ir::tensor_type(kHalf, {ir::Dim::symbol("N"), ir::Dim::unknown(), 0}, Device(kCPU),
                      ir::Contiguity::Contiguous),
      ir::tensor_type(
          ir::TensorType{std::nullopt, std::nullopt, Device(kCUDA, 1), ir::Contiguity::Strided}),
      ir::tensor_type(
          ir::TensorType{kBool, std::vector<ir::Dim>{}, std::nullopt, ir::Contiguity::Unknown}),
      ir::int_type(),
      ir::float_type(),
      ir::bool_type(),
      ir::none_type(),
      ir::dtype_type(),
      ir::device_type(),
      ir::string_type(),
      ir::list_type(ir::int_type()),
      ir::list_type(ir::optional_type(ir::tensor_type())),
      ir::optional_type(ir::list_type(ir::float_type())),
      ir::list_type(ir::list_type(ir::int_type())),
      ir::tuple_type({}),
      ir::tuple_type({ir::int_type()}),
      ir::tuple_type(
          {ir::tensor_type(kLong, {4}), ir::tuple_type({ir::bool_type(), ir::string_type()})}),
  };
  std::set<std::string> seen;
  for (const ir::Type& t : types) {
    const std::string s = t.str();
    SCOPED_TRACE(s);
    EXPECT_TRUE(seen.insert(s).second) << "two different types print the same";
    const ir::Type back = ir::parse_type(s);
    EXPECT_EQ(back, t);
    EXPECT_EQ(back.str(), s);
  }
  EXPECT_EQ(
      ir::tensor_type(kFloat, {2, ir::Dim::symbol("N")}, Device(kCPU), ir::Contiguity::Contiguous)
          .str(),
      "Tensor(float32, [2, N], cpu, contiguous)");
  EXPECT_EQ(ir::list_type(ir::optional_type(ir::tensor_type())).str(), "Tensor?[]");
}

TEST(IrType, SubtypingAndUnification) {
  const ir::Type exact = ir::tensor_type(kFloat, {2, 3}, Device(kCPU), ir::Contiguity::Contiguous);
  const ir::Type sym = ir::tensor_type(kFloat, {ir::Dim::symbol("N"), 3});
  const ir::Type any = ir::tensor_type();
  EXPECT_TRUE(ir::is_subtype_of(exact, any));
  EXPECT_TRUE(ir::is_subtype_of(exact, sym));
  EXPECT_FALSE(ir::is_subtype_of(sym, exact));
  EXPECT_FALSE(ir::is_subtype_of(any, exact));
  EXPECT_FALSE(ir::is_subtype_of(ir::tensor_type(kDouble, {2, 3}), sym));
  EXPECT_FALSE(ir::is_subtype_of(ir::tensor_type(kFloat, {2, 3, 1}), sym));
  EXPECT_TRUE(ir::is_subtype_of(ir::none_type(), ir::optional_type(ir::int_type())));
  EXPECT_TRUE(ir::is_subtype_of(ir::int_type(), ir::optional_type(ir::int_type())));
  EXPECT_FALSE(ir::is_subtype_of(ir::int_type(), ir::float_type()));
  EXPECT_TRUE(ir::is_subtype_of(ir::list_type(exact), ir::list_type(any)));

  auto u = ir::unify(exact, ir::tensor_type(kFloat, {2, 5}, Device(kCPU), ir::Contiguity::Strided));
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->str(), "Tensor(float32, [2, ?], cpu)");
  EXPECT_EQ(ir::unify(exact, ir::tensor_type(kFloat, {2}))->str(), "Tensor(float32)");
  EXPECT_EQ(ir::unify(ir::none_type(), exact)->str(), exact.str() + "?");
  EXPECT_FALSE(ir::unify(ir::int_type(), exact).has_value());
  EXPECT_FALSE(ir::unify(ir::tuple_type({ir::int_type()}), ir::tuple_type({})).has_value());
}

TEST(IrType, ValuesAgainstTypes) {
  Tensor x = kiln::zeros({2, 3});
  EXPECT_EQ(ir::mismatch(ir::tensor_type_of(x), IValue(x)), "");
  EXPECT_NE(ir::mismatch(ir::tensor_type(kDouble, {2, 3}), IValue(x)).find("dtype is float32"),
            std::string::npos);
  EXPECT_NE(ir::mismatch(ir::tensor_type_of(x), IValue(x.t())).find("not contiguous"),
            std::string::npos);
  ir::SymbolBindings b;
  const ir::Type n3 = ir::tensor_type(kFloat, {ir::Dim::symbol("N"), 3});
  EXPECT_EQ(ir::mismatch(n3, IValue(x), &b), "");
  EXPECT_NE(ir::mismatch(n3, IValue(kiln::zeros({4, 3})), &b).find("N = 2"), std::string::npos);
  EXPECT_EQ(ir::mismatch(ir::optional_type(ir::int_type()), IValue()), "");
  EXPECT_NE(ir::mismatch(ir::int_type(), IValue(1.5)), "");
  EXPECT_EQ(ir::type_of(IValue(std::vector<Tensor>{x, Tensor()})).str(),
            "Tensor(float32, [2, 3], cpu, contiguous)?[]");
}

// ---- node kinds ---------------------------------------------------------------------------------
TEST(IrNodeKind, EveryOpAndPrimHasOneMnemonic) {
  std::set<std::string_view> names;
  for (int k = 0; k < ops::num_ops(); ++k) {
    const ir::NodeKind kind(static_cast<OpKind>(k));
    EXPECT_TRUE(kind.is_op());
    EXPECT_EQ(kind.name(), ops::op_info(static_cast<OpKind>(k)).name);
    EXPECT_EQ(ir::NodeKind::from_name(kind.name()), kind);
    EXPECT_TRUE(names.insert(kind.name()).second) << kind.name();
  }
  for (int p = 0; p < ir::kNumPrims; ++p) {
    const ir::NodeKind kind(static_cast<ir::Prim>(p));
    EXPECT_TRUE(kind.is_prim());
    EXPECT_TRUE(names.insert(kind.name()).second)
        << "structural kind '" << kind.name() << "' collides with an op's mnemonic";
    const bool internal = kind.is(ir::Prim::Param) || kind.is(ir::Prim::Return);
    EXPECT_EQ(ir::NodeKind::from_name(kind.name()).has_value(), !internal) << kind.name();
  }
}

// ---- the graph mutation API ---------------------------------------------------------------------
TEST(IrGraph, ReplaceAllUsesAndDestroy) {
  ir::Graph g;
  ir::Value* a = g.add_input(ir::tensor_type(kFloat, {3}), "a");
  ir::Node* neg = g.insert(g.create(OpKind::Neg, {a}, {ir::tensor_type()}));
  ir::Node* add =
      g.insert(g.create(OpKind::Add, {neg->output(), neg->output()}, {ir::tensor_type()}));
  g.register_output(add->output());
  ir::verify(g);
  EXPECT_EQ(neg->output()->uses().size(), 2u);
  neg->output()->replace_all_uses_with(a);
  EXPECT_FALSE(neg->output()->has_uses());
  EXPECT_EQ(a->uses().size(), 3u);
  ir::verify(g);
  neg->destroy();
  ir::verify(g);
  EXPECT_EQ(ir::print(g),
            "graph(%a : Tensor(float32, [3])):\n"
            "  %0 : Tensor = add(%a, %a)\n"
            "  return (%0)\n");
  // A node whose output is still used cannot be destroyed.
  EXPECT_THROW(add->destroy(), InternalError);
}

TEST(IrGraph, InputEditsKeepUseListsConsistent) {
  ir::Graph g;
  ir::Value* x = g.add_input(ir::tensor_type(), "x");
  ir::Value* y = g.add_input(ir::tensor_type(), "y");
  ir::Node* l =
      g.insert(g.create(ir::Prim::ListConstruct, {x, x, y, x}, {ir::list_type(ir::tensor_type())}));
  g.register_output(l->output());
  ir::verify(g);
  l->insert_input(1, y);  // x y x y x
  ir::verify(g);
  l->remove_input(0);  // y x y x
  ir::verify(g);
  l->replace_input(3, y);  // y x y y
  ir::verify(g);
  l->replace_input_with(y, x);  // x x x x
  ir::verify(g);
  EXPECT_EQ(x->uses().size(), 4u);
  EXPECT_EQ(y->uses().size(), 0u);
  for (size_t i = 0; i < l->num_inputs(); ++i) EXPECT_EQ(l->input(i), x);
  l->remove_all_inputs();
  EXPECT_FALSE(x->has_uses());
  ir::verify(g);
}

TEST(IrGraph, MoveNodesAcrossBlocksAndOrder) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {2}), "x");
  ir::Value* c = b.input(ir::bool_type(), "c");
  ir::Value* e = b.op(OpKind::Exp, {x});
  auto outs = b.if_(
      c, [&](ir::Builder& t) { return ir::Builder::Values{t.op(OpKind::Neg, {x})}; },
      [&](ir::Builder& f) { return ir::Builder::Values{x}; });
  b.ret({outs[0], e});
  ir::verify(g);
  ir::Node* exp = e->node();
  ir::Node* if_node = outs[0]->node();
  EXPECT_TRUE(exp->is_before(if_node));
  EXPECT_FALSE(if_node->is_before(exp));
  // Moving exp into the then-branch leaves its use by the graph's return out of scope.
  exp->move_after(if_node->block(0)->param_node());
  expect_error([&] { ir::verify(g); }, {"defined inside a block that does not enclose", "return"});
  exp->move_before(if_node);
  ir::verify(g);
  // A node cannot be moved into its own block.
  EXPECT_THROW(if_node->move_before(if_node->block(0)->return_node()), InternalError);
  // WithInsertPoint puts new nodes where it says and restores the old point.
  {
    ir::WithInsertPoint guard(if_node->block(1));
    g.insert(g.create(OpKind::Relu, {x}, {ir::tensor_type()}));
  }
  EXPECT_EQ(g.insert_point(), g.block()->return_node());
  EXPECT_FALSE(if_node->block(1)->nodes().empty());
  ir::verify(g);
}

TEST(IrGraph, DestroyWhileIteratingAndEraseBlocks) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(), "x");
  ir::Value* keep = b.op(OpKind::Relu, {x});
  for (int i = 0; i < 5; ++i) b.op(OpKind::Exp, {b.op(OpKind::Neg, {x})});  // dead
  auto r = b.loop(b.constant(int64_t{3}), {keep}, [&](ir::Builder& l, ir::Value*, const auto& c) {
    return ir::Builder::Values{l.op(OpKind::Sin, {c[0]})};
  });
  b.ret({r[0]});
  const size_t before = g.num_nodes();
  // A dead-code sweep: last to first, destroying what has no uses.
  for (ir::Node* n : g.block()->reverse_nodes()) {
    bool used = false;
    for (ir::Value* v : n->outputs()) used |= v->has_uses();
    if (!used && n->blocks().empty()) n->destroy();
  }
  ir::verify(g);
  EXPECT_LT(g.num_nodes(), before);
  EXPECT_EQ(count(ir::print(g), "neg"), 0u);
  EXPECT_EQ(count(ir::print(g), "exp"), 0u);
  // Erasing the loop's body frees its nodes (the loop is then malformed until rebuilt).
  ir::Node* loop = r[0]->node();
  const size_t with_body = g.num_nodes();
  loop->erase_block(0);
  EXPECT_EQ(g.num_nodes(), with_body - 3);  // the body's param, sin and return nodes
  expect_error([&] { ir::verify(g); }, {"loop", "expects 1 blocks, got 0"});
}

TEST(IrGraph, CopyAndCloneAreDeepAndIndependent) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {4}), "x");
  ir::Value* n = b.input(ir::int_type(), "n");
  auto r = b.loop(n, {x}, [&](ir::Builder& l, ir::Value* i, const auto& c) {
    return ir::Builder::Values{l.op(OpKind::Add, {c[0], i})};
  });
  b.ret({r[0]});
  auto copy = g.copy();
  ir::verify(*copy);
  EXPECT_EQ(ir::print(*copy), ir::print(g));
  // Changing the copy leaves the original alone.
  ir::Node* neg = copy->create(OpKind::Neg, {copy->inputs()[0]}, {ir::tensor_type()});
  copy->block()->prepend_node(neg);
  EXPECT_NE(ir::print(*copy), ir::print(g));
  // create_clone of the loop with blocks, mapping its inputs to other values.
  ir::Graph h;
  ir::Value* hx = h.add_input(ir::tensor_type(kFloat, {4}), "y");
  ir::Value* hn = h.add_input(ir::int_type(), "m");
  ir::Node* c =
      h.insert(h.create_clone(r[0]->node(), [&](ir::Value* v) { return v == x ? hx : hn; }));
  h.register_output(c->output());
  ir::verify(h);
  std::vector<IValue> a = ir::run(g, {kiln::ones({4}), int64_t{3}});
  std::vector<IValue> bb = ir::run(h, {kiln::ones({4}), int64_t{3}});
  EXPECT_TRUE(kiln::equal(a[0].toTensor(), bb[0].toTensor()));
}

TEST(IrGraph, AttributesStaySortedAndNamesAreChecked) {
  ir::Graph g;
  ir::Node* n = g.create(ir::Prim::Constant, {}, {ir::int_type()});
  n->set_attr("value", IValue(int64_t{1}));
  n->set_attr("b", IValue(2.0));
  n->set_attr("a", IValue("s"));
  ASSERT_EQ(n->attrs().size(), 3u);
  EXPECT_EQ(n->attrs()[0].first, "a");
  EXPECT_EQ(n->attrs()[2].first, "value");
  n->set_attr("b", IValue(true));
  EXPECT_TRUE(n->attr("b").toBool());
  n->remove_attr("a");
  EXPECT_FALSE(n->has_attr("a"));
  EXPECT_KILN_ERROR(n->attr("missing"), {"no attribute 'missing'"});
  EXPECT_KILN_ERROR(n->set_attr("bad name", IValue(1)), {"attribute name"});
  EXPECT_KILN_ERROR(n->output()->set_debug_name("7"), {"expected an identifier"});
  n->destroy();
}

// ---- printer and parser -------------------------------------------------------------------------
const char* kOpsText =
    "graph(%x : Tensor(float32, [2, 3], cpu, contiguous),\n"
    "      %w : Tensor(float32, [3, N]),\n"
    "      %idx : Tensor(int64, [?]),\n"
    "      %flag : bool):\n"
    "  %0 : Tensor(float32, [2, N]) = mm(%x, %w)\n"
    "  %1 : float = constant[value=0.5]()\n"
    "  %2 : Tensor = add(%0, %1)\n"
    "  %3 : int[] = constant[value=[1]]()\n"
    "  %4 : bool = constant[value=true]()\n"
    "  %5 : Tensor = sum(%2, %3, %4)\n"
    "  %6 : int = constant[value=0]()\n"
    "  %7 : Tensor = index_select(%x, %6, %idx)\n"
    "  %8 : None = constant[value=None]()\n"
    "  %9 : Tensor?[] = list_construct(%idx, %8)\n"
    "  %10 : Tensor = index(%x, %9)\n"
    "  %11 : Tensor, %12 : Tensor = sort(%x, %6, %flag)\n"
    "  %13 : (Tensor, Tensor) = tuple_construct(%11, %12)\n"
    "  %14 : Tensor, %15 : Tensor = tuple_unpack(%13)\n"
    "  return (%5, %7, %10, %14)\n";

const char* kControlText =
    "graph(%x : Tensor(float32, [4]),\n"
    "      %n : int,\n"
    "      %c : bool):\n"
    "  %0 : Tensor(float32, [4]) = if(%c)\n"
    "    block0():\n"
    "      %1 : Tensor(float32, [4]) = neg(%x)\n"
    "      -> (%1)\n"
    "    block1():\n"
    "      -> (%x)\n"
    "  %2 : Tensor(float32, [4]), %3 : Tensor = loop(%n, %0, %x)\n"
    "    block0(%i : int, %a : Tensor(float32, [4]), %b : Tensor):\n"
    "      %4 : Tensor = mul(%a, %i)\n"
    "      %5 : Tensor = if(%c)\n"
    "        block0():\n"
    "          -> (%4)\n"
    "        block1():\n"
    "          %6 : Tensor = exp(%b)\n"
    "          -> (%6)\n"
    "      -> (%a, %5)\n"
    "  %7 : Tensor = fusion_group(%2, %3)\n"
    "    block0(%p : Tensor(float32, [4]), %q : Tensor):\n"
    "      %8 : Tensor = add(%p, %q)\n"
    "      -> (%8)\n"
    "  %9 : Tensor = call[name=\"helper\"](%7)\n"
    "    block0(%r : Tensor):\n"
    "      %10 : Tensor = relu(%r)\n"
    "      -> (%10)\n"
    "  return (%9)\n";

const char* kConstantsText =
    "graph(%a : Tensor(float16),\n"
    "      %b : Tensor([2, ?, N]),\n"
    "      %c : Tensor(cuda:0),\n"
    "      %d : Tensor(strided),\n"
    "      %e : int?,\n"
    "      %f : (int, float, (bool, str)),\n"
    "      %g : Tensor[],\n"
    "      %h : float[],\n"
    "      %i : ScalarType,\n"
    "      %j : Device,\n"
    "      %k : Tensor(bfloat16, [], cpu, strided)?):\n"
    "  %0 : Tensor(bool, [2], cpu, contiguous) = constant[value=tensor(bool, [2], [true, "
    "false])]()\n"
    "  %1 : Tensor(uint8, [3], cpu, contiguous) = constant[value=tensor(uint8, [3], [0, 7, "
    "255])]()\n"
    "  %2 : Tensor(int8, [2], cpu, contiguous) = constant[value=tensor(int8, [2], [-128, 127])]()\n"
    "  %3 : Tensor(int32, [1, 2], cpu, contiguous) = constant[value=tensor(int32, [1, 2], [-5, "
    "2147483647])]()\n"
    "  %4 : Tensor(int64, [0], cpu, contiguous) = constant[value=tensor(int64, [0], [])]()\n"
    "  %5 : Tensor(float16, [3], cpu, contiguous) = constant[value=tensor(float16, [3], [0.5, "
    "-65504.0, inf])]()\n"
    "  %6 : Tensor(bfloat16, [2], cpu, contiguous) = constant[value=tensor(bfloat16, [2], "
    "[1.0078125, -0.0])]()\n"
    "  %7 : Tensor(float32, [4], cpu, contiguous) = constant[value=tensor(float32, [4], [0.1, "
    "1e-30, nan, -inf])]()\n"
    "  %8 : Tensor(float64, [], cpu, contiguous) = constant[value=tensor(float64, [], [0.1])]()\n"
    "  %9 : float = constant[value=1e+300]()\n"
    "  %10 : float = constant[value=-2.5]()\n"
    "  %11 : int = constant[value=-9223372036854775808]()\n"
    "  %12 : str = constant[value=\"a \\\"q\\\" \\\\ \\n\\t\\x01\"]()\n"
    "  %13 : ScalarType = constant[value=bfloat16]()\n"
    "  %14 : Device = constant[value=cuda:1]()\n"
    "  %15 : float[] = constant[value=[]]()\n"
    "  %16 : float[] = constant[value=[1.0, -0.5]]()\n"
    "  %17 : (int, float) = constant[value=(1, 2.0)]()\n"
    "  %18 : bool = constant[value=false]()\n"
    "  return (%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, "
    "%18)\n";

const char* kNamesText =
    "graph(%x : Tensor,\n"
    "      %x.2 : Tensor):\n"
    "  %x.1 : Tensor = neg(%x)\n"
    "  %0 : Tensor = neg(%x.1)\n"
    "  %x.3 : Tensor = add(%0, %x.2)\n"
    "  return (%x.3)\n";

TEST(IrText, RoundTripsExactly) {
  for (const char* text : {kOpsText, kControlText, kConstantsText, kNamesText}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(roundtrip(text), text);
  }
  ir::verify(*ir::parse(kOpsText));
  ir::verify(*ir::parse(kControlText));
  ir::verify(*ir::parse(kConstantsText));
  ir::verify(*ir::parse(kNamesText));
}

TEST(IrText, ParsedConstantsHoldTheirValues) {
  auto g = ir::parse(kConstantsText);
  std::vector<IValue> v;
  for (ir::Value* out : g->outputs()) v.push_back(out->node()->attr("value"));
  EXPECT_EQ(v[5].toTensor().numel(), 3);
  EXPECT_EQ(v[1].toTensor().dtype(), kByte);
  EXPECT_EQ(v[1].toTensor()[2].item<int64_t>(), 255);
  EXPECT_EQ(v[2].toTensor()[0].item<int64_t>(), -128);
  EXPECT_EQ(v[5].toTensor()[1].item<float>(), -65504.0f);
  EXPECT_TRUE(std::isinf(v[5].toTensor()[2].item<float>()));
  EXPECT_TRUE(std::signbit(v[6].toTensor()[1].item<float>()));
  EXPECT_EQ(v[7].toTensor()[0].item<float>(), 0.1f);
  EXPECT_EQ(v[7].toTensor()[1].item<float>(), 1e-30f);
  EXPECT_TRUE(std::isnan(v[7].toTensor()[2].item<float>()));
  EXPECT_EQ(v[8].toTensor().item<double>(), 0.1);
  EXPECT_EQ(v[9].toDouble(), 1e300);
  EXPECT_EQ(v[11].toInt(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v[12].toStringRef(), "a \"q\" \\ \n\t\x01");
  EXPECT_EQ(v[13].toScalarType(), kBFloat16);
  EXPECT_EQ(v[14].toDevice(), Device(kCUDA, 1));
  EXPECT_TRUE(v[15].is_double_list());
  EXPECT_EQ(v[17].toTuple()[1].toDouble(), 2.0);
}

TEST(IrText, BuiltGraphsRoundTripThroughText) {
  // Every float32 bit pattern class (subnormal, max, tiny steps) survives printing.
  Tensor f = kiln::tensor({1e-45f, 3.4028235e38f, 1.1754942e-38f, 0.3f, -1.0f / 3.0f, 16777217.0f});
  Tensor d = kiln::tensor({0.1, 1.0 / 3.0, 5e-324, 1.7976931348623157e308});
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {6}), "x");
  ir::Value* y = b.op(OpKind::Mul, {x, f});
  ir::Value* z =
      b.op(OpKind::Add, {b.op(OpKind::Sum, {b.constant(d), std::vector<int64_t>{}, false}), 1});
  b.ret({y, z});
  const std::string text = ir::print(g);
  auto parsed = ir::parse(text);
  EXPECT_EQ(ir::print(*parsed), text);
  ir::verify(*parsed);
  Tensor in = testing::random_tensor({6});
  auto r1 = ir::run(g, {in});
  auto r2 = ir::run(*parsed, {in});
  EXPECT_TRUE(kiln::equal(r1[0].toTensor(), r2[0].toTensor()));
  EXPECT_TRUE(kiln::equal(r1[1].toTensor(), r2[1].toTensor()));
}

TEST(IrText, PrintOptions) {
  ir::Graph g;
  ir::Builder b(g);
  b.ret({b.constant(kiln::zeros({100}))});
  ir::PrintOptions o;
  o.max_tensor_elements = 10;
  const std::string elided = ir::print(g, o);
  EXPECT_NE(elided.find("tensor(float32, [100], ...)"), std::string::npos);
  EXPECT_KILN_ERROR(ir::parse(elided), {"elided tensor constant"});
  o.max_tensor_elements = 0;
  o.source_locations = true;
  const std::string located = ir::print(g, o);
  EXPECT_NE(located.find("  # "), std::string::npos);
  EXPECT_NE(located.find("test_ir.cpp:"), std::string::npos);
  // Comments are skipped, so located text still parses (to the same graph without them).
  EXPECT_EQ(roundtrip(located), ir::print(g));
  // Parsed nodes remember their position in the text.
  auto p = ir::parse(kControlText, "control.ir");
  ir::Node* first = *p->block()->nodes().begin();
  EXPECT_EQ(first->loc().str(), "control.ir:4:3");
}

struct BadText {
  std::string text;
  uint32_t line, column;
  std::string fragment;
};

TEST(IrText, MalformedTextFailsAtLineAndColumn) {
  const std::vector<BadText> cases = {
      {"", 1, 1, "expected 'graph' at the start of the text, got end of input"},
      {"grph()", 1, 1, "expected 'graph'"},
      {"graph(%x : Tensor):\n  return (%y)\n", 2, 11, "use of undefined value %y"},
      {"graph(%x : Tensr):\n  return ()\n", 1, 12, "expected a type"},
      {"graph(%x : Tensor(float32, [2, 3]):\n  return ()\n", 1, 35,
       "expected ',' or ')' after a parameter, got ':'"},
      {"graph():\n  %0 : int = constant[value=1](\n  return (%0)\n", 3, 3,
       "expected a value (%name), got 'return'"},
      {"graph(%x : Tensor):\n  %0 : Tensor = frobnicate(%x)\n  return (%0)\n", 2, 17,
       "unknown node kind 'frobnicate'"},
      {"graph(%x : Tensor):\n  %x : Tensor = neg(%x)\n  return (%x)\n", 2, 3,
       "value %x is defined twice (first at 1:7)"},
      {"graph():\n  %0 : int = constant[value=12abc]()\n  return (%0)\n", 2, 29,
       "must not run into letters"},
      {"graph():\n  %0 : str = constant[value=\"abc]()\n  return (%0)\n", 2, 29,
       "unterminated string"},
      {"graph():\n  %0 : str = constant[value=\"\\q\"]()\n  return (%0)\n", 2, 31,
       "unknown escape '\\q'"},
      {"graph() $", 1, 9, "unexpected character '$'"},
      {"graph() \x01", 1, 9, "unexpected byte 0x01"},
      {"graph(%x : Tensor(float32, float64)):\n  return ()\n", 1, 28, "in the order dtype"},
      {"graph(%x : Tensor([2], float32)):\n  return ()\n", 1, 24, "in the order dtype"},
      {"graph(%x : Tensor()):\n  return ()\n", 1, 19, "expected a dtype"},
      {"graph(%x : Tensor([-1])):\n  return ()\n", 1, 20, "expected a size >= 0"},
      {"graph(%x : Tensor(cpu:3)):\n  return ()\n", 1, 19, "bad device 'cpu:3'"},
      {"graph():\n  %0 : Tensor = constant[value=tensor(float32, [2], [1.0])]()\n  return ()\n", 2,
       53, "got 1 values, expected 2 for sizes [2]"},
      {"graph():\n  %0 : Tensor = constant[value=tensor(float32, [1], [1.0, 2.0])]()\n"
       "  return ()\n",
       2, 59, "expected 1 values for sizes [1]"},
      {"graph():\n  %0 : Tensor = constant[value=tensor(uint8, [1], [256])]()\n  return ()\n", 2,
       52, "256 is out of range for uint8"},
      {"graph():\n  %0 : Tensor = constant[value=tensor(bool, [1], [1])]()\n  return ()\n", 2, 51,
       "expected true or false"},
      {"graph():\n  %0 : Tensor = constant[value=tensor(int32, [1], [1.5])]()\n  return ()\n", 2,
       52, "expected an integer"},
      {"graph():\n  %0 : Tensor = constant[value=tensor(float32, [2], ...)]()\n  return ()\n", 2,
       53, "an elided tensor constant cannot be read back"},
      {"graph():\n  %0 : Tensor = constant[value=tensor(float33, [1], [1])]()\n  return ()\n", 2,
       39, "expected the tensor constant's dtype"},
      {"graph(%c : bool):\n  if(%c)\n    block1():\n      -> ()\n  return ()\n", 3, 5,
       "expected block0"},
      {"graph(%c : bool):\n  if(%c)\n    block0():\n  return ()\n", 4, 3,
       "expected a node or '->' ending the block, got 'return'"},
      {"graph():\n  block0():\n  return ()\n", 2, 3, "a block must follow a node"},
      {"graph():\n", 2, 1, "expected a node or 'return', got end of input"},
      {"graph():\n  return ()\nfoo", 3, 1, "expected end of input after the graph's return"},
      {"graph():\n  %0 : int = constant[value=99999999999999999999]()\n  return ()\n", 2, 29,
       "out of range for int64"},
      {"graph():\n  %0 : int = constant[value=1, value=2]()\n  return ()\n", 2, 32,
       "attribute 'value' given twice"},
      {"graph(% : int):\n  return ()\n", 1, 7, "expected a value name after '%'"},
      {"graph(%1a : int):\n  return ()\n", 1, 7, "neither a number nor an identifier"},
      {"graph():\n  %0 : int[] = constant[value=[1, \"a\"]]()\n  return ()\n", 2, 31,
       "expected a list of ints, of floats or of tensors"},
      {"graph():\n  %0 : int = constant[value=%x]()\n  return ()\n", 2, 29,
       "expected an attribute value"},
      {"graph():\n  %0 : int = constant[1]()\n  return ()\n", 2, 23, "expected an attribute name"},
      {"graph():\n  %0 : int constant()\n  return ()\n", 2, 12, "expected '=' after the node's"},
      {"graph(%x : Tensor):\n  %0 : Tensor = neg %x\n  return ()\n", 2, 21,
       "expected '(' and the inputs of neg"},
      {"graph(%x : Tensor):\n  %0 : Tensor = neg(%x %x)\n  return ()\n", 2, 24,
       "expected ',' or ')' in a value list"},
      {"graph(%x : int[):\n  return ()\n", 1, 16, "expected ']' after '['"},
  };
  for (const BadText& c : cases) {
    SCOPED_TRACE(c.text);
    try {
      ir::parse(c.text, "bad.ir");
      ADD_FAILURE() << "parsed without error";
    } catch (const ir::ParseError& e) {
      EXPECT_EQ(e.line(), c.line) << e.what();
      EXPECT_EQ(e.column(), c.column) << e.what();
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.fragment), std::string::npos) << msg;
      EXPECT_NE(msg.find(fmt::format("bad.ir:{}:{}:", c.line, c.column)), std::string::npos) << msg;
      EXPECT_NE(msg.find('^'), std::string::npos) << "no caret under the column: " << msg;
    }
  }
}

TEST(IrText, DeepNestingIsAnErrorNotACrash) {
  std::string deep_type =
      "graph(%x : " + std::string(5000, '(') + "int" + std::string(5000, ')') + "):\n  return ()\n";
  EXPECT_KILN_ERROR(ir::parse(deep_type), {"nesting deeper than"});
  std::string deep_list = "graph():\n  %0 : int = constant[value=" + std::string(5000, '[') +
                          std::string(5000, ']') + "]()\n  return ()\n";
  EXPECT_KILN_ERROR(ir::parse(deep_list), {"nesting deeper than"});
  std::string blocks = "graph(%c : bool):\n";
  for (int i = 0; i < 300; ++i) blocks += "  if(%c)\n    block0():\n";
  EXPECT_KILN_ERROR(ir::parse(blocks), {"nesting deeper than"});
}

// Random edits of valid text: the parser and verifier may reject the result, but only with
// kiln::Error, and whatever parses prints and re-parses to the same text.
TEST(IrText, MutatedTextNeverCrashes) {
  std::mt19937 rng(20240601);
  const std::vector<std::string> seeds = {kOpsText, kControlText, kConstantsText, kNamesText};
  const std::string alphabet = "%()[],:=?-> .\"#\n0123456789abcxyzTensorintfloatblock0";
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string text = seeds[iter % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % text.size();
      switch (rng() % 4) {
        case 0:
          text.erase(pos, 1 + rng() % 8);
          break;
        case 1:
          text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          text[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 3: {  // duplicate a slice of the text elsewhere
          const size_t from = rng() % text.size();
          text.insert(pos, text.substr(from, 1 + rng() % 20));
          break;
        }
      }
      if (text.empty()) text.push_back('g');
    }
    try {
      auto g = ir::parse(text);
      ++parsed;
      const std::string printed = ir::print(*g);
      EXPECT_EQ(roundtrip(printed), printed) << "from mutated text:\n" << text;
      try {
        ir::verify(*g);
      } catch (const Error&) {
        ++rejected;
      }
      ir::to_dot(*g);
    } catch (const ir::ParseError&) {
      ++rejected;
    } catch (const InternalError& e) {
      ADD_FAILURE() << "internal error on:\n" << text << "\n" << e.what();
    } catch (const Error& e) {
      ADD_FAILURE() << "non-parse error from the parser on:\n" << text << "\n" << e.what();
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
}

// ---- verifier -----------------------------------------------------------------------------------
TEST(IrVerify, UseBeforeDefinition) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(), "x");
  ir::Value* a = b.op(OpKind::Neg, {x});
  ir::Value* e = b.op(OpKind::Exp, {a});
  b.ret({e});
  ir::verify(g);
  e->node()->move_before(a->node());
  expect_error([&] { ir::verify(g); },
               {"[ir.verify] exp: input 0 (%1) is used before it is defined",
                "at: %0 : Tensor = exp(%1)", "test_ir.cpp"});
}

TEST(IrVerify, ScopesOfBlocks) {
  // A value of the then-branch used in the else-branch.
  expect_verify_error(
      "graph(%c : bool, %x : Tensor):\n"
      "  %0 : Tensor = if(%c)\n"
      "    block0():\n"
      "      %1 : Tensor = neg(%x)\n"
      "      -> (%1)\n"
      "    block1():\n"
      "      -> (%1)\n"
      "  return (%0)\n",
      {"input 0 (%1) is defined inside a block that does not enclose this use", "return (%1)"});
  // A value of a loop body used after the loop.
  expect_verify_error(
      "graph(%n : int, %x : Tensor):\n"
      "  %0 : Tensor = loop(%n, %x)\n"
      "    block0(%i : int, %a : Tensor):\n"
      "      %1 : Tensor = neg(%a)\n"
      "      -> (%1)\n"
      "  %2 : Tensor = exp(%1)\n"
      "  return (%2)\n",
      {"exp: input 0 (%1) is defined inside a block", "at: %2 : Tensor = exp(%1)", "<string>:6:3"});
  // A fusion group's block may not see the values around it.
  expect_verify_error(
      "graph(%x : Tensor, %y : Tensor):\n"
      "  %0 : Tensor = fusion_group(%x)\n"
      "    block0(%p : Tensor):\n"
      "      %1 : Tensor = add(%p, %y)\n"
      "      -> (%1)\n"
      "  return (%0)\n",
      {"add: input 1 (%y) is defined outside the enclosing fusion_group/call block",
       "at: %1 : Tensor = add(%p, %y)"});
  // A node's own outputs are not visible in its blocks.
  expect_verify_error(
      "graph(%c : bool, %x : Tensor):\n"
      "  %0 : Tensor = if(%c)\n"
      "    block0():\n"
      "      -> (%0)\n"
      "    block1():\n"
      "      -> (%x)\n"
      "  return (%0)\n",
      {"used before it is defined"});
}

TEST(IrVerify, OpsAgainstTheirSchema) {
  expect_verify_error("graph(%x : Tensor):\n  %0 : Tensor = add(%x)\n  return (%0)\n",
                      {"add: expects 2 inputs (schema (Operand self, Operand other) -> Tensor), "
                       "got 1",
                       "at: %0 : Tensor = add(%x)"});
  expect_verify_error(
      "graph(%x : Tensor, %k : bool):\n  %0 : Tensor = sum(%x, %x, %k)\n  return (%0)\n",
      {"sum: input 1 ('dim') has type Tensor, expected int[]",
       "at: %0 : Tensor = sum(%x, %x, %k)"});
  expect_verify_error(
      "graph(%x : Tensor, %d : ScalarType):\n  %0 : Tensor = mul(%x, %d)\n  return (%0)\n",
      {"input 1 ('other') has type ScalarType, expected Operand"});
  expect_verify_error(
      "graph(%x : Tensor, %i : int, %b : bool):\n  %0 : Tensor = sort(%x, %i, %b)\n"
      "  return (%0)\n",
      {"sort: expects 2 outputs", "at: %0 : Tensor = sort(%x, %i, %b)"});
  expect_verify_error("graph(%x : Tensor):\n  %0 : int = neg(%x)\n  return (%0)\n",
                      {"neg: output 0 has type int, expected Tensor"});
  expect_verify_error(
      "graph(%x : Tensor, %c : bool):\n  %0 : Tensor = neg(%x)\n    block0():\n      -> ()\n"
      "  return (%0)\n",
      {"neg: an op takes no blocks"});
  expect_verify_error(
      "graph(%x : Tensor, %i : int[]):\n  %0 : Tensor[] = list_construct(%x)\n"
      "  %1 : Tensor = cat(%0, %i)\n  return (%1)\n",
      {"cat: input 1 ('dim') has type int[], expected int"});
}

TEST(IrVerify, StructuralKinds) {
  expect_verify_error(
      "graph(%c : bool, %x : Tensor, %n : int):\n"
      "  %0 : Tensor = if(%c)\n"
      "    block0():\n"
      "      -> (%x)\n"
      "    block1():\n"
      "      -> (%n)\n"
      "  return (%0)\n",
      {"if: output 0 of block1 has type int, which does not fit Tensor",
       "at: %0 : Tensor = if(%c)"});
  expect_verify_error(
      "graph(%x : Tensor, %n : int):\n"
      "  %0 : Tensor = if(%n)\n"
      "    block0():\n"
      "      -> (%x)\n"
      "    block1():\n"
      "      -> (%x)\n"
      "  return (%0)\n",
      {"the condition has type int, expected bool"});
  expect_verify_error(
      "graph(%c : bool, %x : Tensor):\n"
      "  %0 : Tensor = if(%c)\n"
      "    block0():\n"
      "      -> (%x)\n"
      "  return (%0)\n",
      {"if: expects 2 blocks, got 1"});
  expect_verify_error(
      "graph(%n : int, %x : Tensor):\n"
      "  %0 : Tensor = loop(%n, %x)\n"
      "    block0(%i : int, %a : Tensor):\n"
      "      -> (%a, %a)\n"
      "  return (%0)\n",
      {"the body returns 2 values, expected 1 carried values"});
  expect_verify_error(
      "graph(%n : int, %x : Tensor):\n"
      "  %0 : Tensor = loop(%n, %x)\n"
      "    block0(%i : float, %a : Tensor):\n"
      "      -> (%a)\n"
      "  return (%0)\n",
      {"the body's first input (the iteration number) must be an int"});
  expect_verify_error(
      "graph(%n : int, %x : Tensor(float32)):\n"
      "  %0 : Tensor(float32) = loop(%n, %x)\n"
      "    block0(%i : int, %a : Tensor(float32)):\n"
      "      %1 : Tensor = neg(%a)\n"
      "      -> (%1)\n"
      "  return (%0)\n",
      {"body output 0 has type Tensor, which does not fit Tensor(float32)"});
  expect_verify_error(
      "graph(%f : float, %x : Tensor):\n"
      "  %0 : Tensor = loop(%f, %x)\n"
      "    block0(%i : int, %a : Tensor):\n"
      "      -> (%a)\n"
      "  return (%0)\n",
      {"the trip count has type float, expected int"});
  expect_verify_error(
      "graph():\n  %0 : int = constant[value=1.5]()\n  return (%0)\n",
      {"constant: the value does not fit the type int", "at: %0 : int = constant[value=1.5]()"});
  expect_verify_error("graph():\n  %0 : int = constant()\n  return (%0)\n",
                      {"a constant needs a 'value' attribute"});
  expect_verify_error(
      "graph():\n  %0 : Tensor(float32, [3]) = constant[value=tensor(float32, [2], [1.0, "
      "2.0])]()\n  return (%0)\n",
      {"the value does not fit the type Tensor(float32, [3])", "expected dim 0 to be 3"});
  expect_verify_error(
      "graph(%x : Tensor, %n : int):\n  %0 : (Tensor, Tensor) = tuple_construct(%x, %n)\n"
      "  return (%0)\n",
      {"tuple_construct: element 1 has type int, which does not fit Tensor"});
  expect_verify_error(
      "graph(%t : (Tensor, int)):\n  %0 : Tensor = tuple_unpack(%t)\n  return (%0)\n",
      {"expected a tuple of 1 elements"});
  expect_verify_error("graph(%x : Tensor):\n  %0 : int[] = list_construct(%x)\n  return (%0)\n",
                      {"list_construct: element 0 has type Tensor, which does not fit int"});
  expect_verify_error("graph(%x : Tensor):\n  %0 : Tensor = list_unpack(%x)\n  return (%0)\n",
                      {"the input has type Tensor, expected a list"});
  expect_verify_error(
      "graph(%x : Tensor):\n  %0 : Tensor = call[name=1](%x)\n    block0(%p : Tensor):\n"
      "      -> (%p)\n  return (%0)\n",
      {"the 'name' attribute must be a string"});
  expect_verify_error(
      "graph(%x : Tensor, %n : int):\n  %0 : Tensor = fusion_group(%x, %n)\n"
      "    block0(%p : Tensor, %q : Tensor):\n      -> (%p)\n  return (%0)\n",
      {"fusion_group: input 1 has type int, which does not fit Tensor"});
}

// ---- DOT ----------------------------------------------------------------------------------------
TEST(IrDot, ExportsNodesEdgesAndClusters) {
  auto g = ir::parse(kControlText);
  const std::string dot = ir::to_dot(*g);
  EXPECT_EQ(dot.rfind("digraph kiln {", 0), 0u);
  EXPECT_EQ(dot.back(), '\n');
  EXPECT_EQ(dot, ir::to_dot(*g)) << "not deterministic";
  EXPECT_EQ(count(dot, "subgraph cluster_"), 7u);  // if 2, loop 1, inner if 2, fusion 1, call 1
  EXPECT_NE(dot.find("label=\"%a\""), std::string::npos);
  EXPECT_NE(dot.find("fusion_group block0"), std::string::npos);
  // One edge per use: count the uses of every value.
  size_t uses = 0;
  std::function<void(const ir::Block*)> walk = [&](const ir::Block* b) {
    for (const ir::Value* v : b->inputs()) uses += v->uses().size();
    for (const ir::Node* n : b->nodes()) {
      for (const ir::Value* v : n->outputs()) uses += v->uses().size();
      for (const ir::Block* nb : n->blocks()) walk(nb);
    }
  };
  walk(g->block());
  EXPECT_EQ(count(dot, " -> "), uses);
}

// ---- builder ------------------------------------------------------------------------------------
TEST(IrBuilder, ChecksArgumentsWhereTheyAreWritten) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x = b.input(ir::tensor_type(kFloat, {3}), "x");
  EXPECT_KILN_ERROR(b.op(OpKind::Mul, {x, kFloat}),
                    {"[ir.builder] mul: argument 1 ('other') has type ScalarType, expected Operand",
                     "test_ir.cpp:"});
  EXPECT_KILN_ERROR(b.op(OpKind::Add, {x}), {"add: got 1 arguments, expected 2"});
  EXPECT_KILN_ERROR(b.op(OpKind::Sort, {x, 0, false}), {"use op_n"});
  EXPECT_KILN_ERROR(b.if_(
                        x, [](ir::Builder&) { return ir::Builder::Values{}; },
                        [](ir::Builder&) { return ir::Builder::Values{}; }),
                    {"if_: the condition has type Tensor(float32, [3]), expected bool"});
  ir::Value* c = b.constant(true);
  EXPECT_KILN_ERROR(
      b.if_(
          c, [&](ir::Builder&) { return ir::Builder::Values{x}; },
          [&](ir::Builder&) { return ir::Builder::Values{c}; }),
      {"if_: output 0 is Tensor(float32, [3]) in the then branch and bool", "test_ir.cpp:"});
}

TEST(IrBuilder, UnifiesBranchAndLoopTypesAndRecordsLocations) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* x =
      b.input(ir::tensor_type(kFloat, {2}, Device(kCPU), ir::Contiguity::Contiguous), "x");
  ir::Value* y = b.input(ir::tensor_type(kFloat, {3}), "y");
  ir::Value* c = b.input(ir::bool_type(), "c");
  const int line = __LINE__ + 1;
  auto r = b.if_(
      c, [&](ir::Builder&) { return ir::Builder::Values{x}; },
      [&](ir::Builder&) { return ir::Builder::Values{y}; });
  EXPECT_EQ(r[0]->type().str(), "Tensor(float32, [?])");
  EXPECT_EQ(r[0]->node()->loc().line, static_cast<uint32_t>(line));
  EXPECT_NE(r[0]->node()->loc().file.find("test_ir.cpp"), std::string::npos);
  // The carried value grows each iteration: its carried type must leave the size open.
  const ir::Type grows = ir::tensor_type(kFloat, {ir::Dim::unknown()});
  const auto body = [&](ir::Builder& body, ir::Value*, const ir::Builder::Values& v) {
    ir::Value* list = body.list({v[0], v[0]});
    return ir::Builder::Values{body.op(OpKind::Cat, {list, 0}, grows)};
  };
  EXPECT_KILN_ERROR(b.loop(b.constant(int64_t{2}), {x}, body, {x->type()}),
                    {"the body returns Tensor(float32, [?]) for carried value 0, which does not "
                     "fit its carried type Tensor(float32, [2], cpu, contiguous)"});
  g.block()->return_node()->prev()->destroy();  // the half-built loop
  auto l = b.loop(b.constant(int64_t{2}), {x}, body, {grows});
  EXPECT_EQ(l[0]->type().str(), "Tensor(float32, [?])");
  EXPECT_EQ(b.loop(b.constant(int64_t{1}), {x}, body)[0]->type().str(), "Tensor");
  ir::Value* t = b.tuple({l[0], r[0]});
  auto parts = b.tuple_unpack(t);
  b.ret({parts[0]});
  ir::verify(g);
  auto out = ir::run(g, {kiln::ones({2}), kiln::ones({3}), true});
  EXPECT_EQ(out[0].toTensor().size(0), 8);
}

}  // namespace
}  // namespace kiln
