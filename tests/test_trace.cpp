// Tests for the tracer (src/frontend/tracer.cpp): traced graphs of real functions run by the
// interpreter reproduce eager results exactly, on the example inputs and on fresh inputs of the
// same shapes; constants are captured by value; in-place ops, views, the value-read warning,
// parameters, source locations, nesting and threads behave as trace.h documents.
// ctest-label: ir
#include <kiln/ir/ir.h>
#include <kiln/jit/trace.h>

#include <algorithm>
#include <thread>

#include "ir_test_util.h"

namespace kiln {
namespace {

using indexing::Slice;
using testing::random_tensor;
using testing::same;
using Tensors = std::vector<Tensor>;
using Fn = std::function<IValue(const Tensors&)>;

std::vector<IValue> boxed(const Tensors& ts) { return std::vector<IValue>(ts.begin(), ts.end()); }

// A copy of t with the same dtype, sizes and contiguity, so that in-place writes of one run do
// not leak into the next.
Tensor copy_of(const Tensor& t) {
  Tensor c = t.clone();
  return t.is_contiguous() ? c : testing::non_contiguous(c);
}
Tensors copies(const Tensors& ts) {
  Tensors out;
  for (const Tensor& t : ts) out.push_back(copy_of(t));
  return out;
}
// Fresh random values of the same dtype, sizes and contiguity; integers stay within the range
// of the originals (so that index tensors stay valid).
Tensors fresh_like(const Tensors& ts) {
  Tensors out;
  for (const Tensor& t : ts) {
    double lo = -2.0, hi = 2.0;
    if (is_integral(t.dtype()) && t.numel() > 0) {
      const std::vector<double> v = testing::to_vector(t);
      lo = *std::min_element(v.begin(), v.end());
      hi = *std::max_element(v.begin(), v.end()) + 0.99;
    }
    Tensor r = random_tensor(t.sizes(), t.dtype(), lo, hi);
    out.push_back(t.is_contiguous() ? r : testing::non_contiguous(r));
  }
  return out;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

jit::TraceOptions quiet() {
  jit::TraceOptions o;
  o.print_warnings = false;
  return o;
}

Tensors unboxed(const std::vector<IValue>& in) {
  Tensors ts;
  for (const IValue& v : in) ts.push_back(v.toTensor());
  return ts;
}

// What fn returns while it is being traced: eager results computed by exactly the primitives
// the trace records (composites with a fused kernel of their own take their primitive spelling
// when recorded; see Note [Recording composites] in src/tensor/record.h).
IValue eager_while_traced(const Fn& fn, const Tensors& in) {
  IValue out;
  jit::trace([&](const std::vector<IValue>& v) { return out = fn(unboxed(v)); }, boxed(in),
             quiet());
  return out;
}

// How a traced graph compares with fn run eagerly outside any trace: bit for bit, or within
// float32 rounding for composites whose eager kernel rounds differently from their primitive
// spelling (mean/var/std/logsumexp/norm; dot accumulates in double; matmul and linear run oneDNN
// GEMMs of other shapes or with a fused bias). Against the eager run while traced, which uses
// exactly the recorded primitives, it is always bit for bit.
enum class Eager { Exact, Close };

::testing::AssertionResult close_values(const IValue& a, const IValue& b) {
  if (a.is_tensor()) return testing::close(a.toTensor(), b.toTensor(), 1e-5, 1e-6);
  if (a.is_tensor_list()) {
    for (size_t i = 0; i < a.toTensorList().size(); ++i) {
      auto r = testing::close(a.toTensorList()[i], b.toTensorList()[i], 1e-5, 1e-6);
      if (!r) return r << " (list element " << i << ")";
    }
    return ::testing::AssertionSuccess();
  }
  for (size_t i = 0; i < a.toTuple().size(); ++i) {
    auto r = close_values(a.toTuple()[i], b.toTuple()[i]);
    if (!r) return r << " (tuple element " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

// Traces fn on inputs and checks that the graph (also after a trip through its text) gives
// fn's eager results, on the example inputs and on `fresh` sets of new random inputs.
jit::TracedFunction check_trace(const Fn& fn, const Tensors& inputs, Eager eager = Eager::Exact,
                                int fresh = 3, const jit::TraceOptions& options = quiet()) {
  const Tensors traced_inputs = copies(inputs);
  jit::TracedFunction tr =
      jit::trace([&](const std::vector<IValue>& in) { return fn(unboxed(in)); },
                 boxed(traced_inputs), options);
  const std::string text = ir::print(tr.graph());
  SCOPED_TRACE(text);
  ir::verify(tr.graph());
  auto parsed = ir::parse(text);
  EXPECT_EQ(ir::print(*parsed), text);
  std::vector<Tensors> sets = {inputs};
  for (int i = 0; i < fresh; ++i) sets.push_back(fresh_like(inputs));
  for (size_t s = 0; s < sets.size(); ++s) {
    SCOPED_TRACE(s == 0 ? "example inputs" : fmt::format("fresh inputs {}", s));
    manual_seed(s);
    const IValue recorded = eager_while_traced(fn, copies(sets[s]));
    manual_seed(s);
    const IValue plain = fn(copies(sets[s]));
    manual_seed(s);
    const IValue got = tr.run(boxed(copies(sets[s])));
    EXPECT_TRUE(same(got, recorded));
    if (eager == Eager::Exact)
      EXPECT_TRUE(same(got, plain));
    else
      EXPECT_TRUE(close_values(got, plain));
    manual_seed(s);
    std::vector<IValue> all = boxed(copies(sets[s]));
    for (const Tensor& p : tr.parameters()) all.emplace_back(p);
    EXPECT_TRUE(same(ir::run(*parsed, all)[0], recorded));
  }
  return tr;
}

// ---- real functions -----------------------------------------------------------------------------
TEST(Trace, MlpForward) {
  const Tensors in = {random_tensor({4, 8}), random_tensor({8, 16}), random_tensor({16}),
                      random_tensor({3, 16}), random_tensor({3})};
  auto tr = check_trace(
      [](const Tensors& t) {
        Tensor h = kiln::relu(t[0].matmul(t[1]) + t[2]);
        Tensor logits = kiln::linear(h, t[3], t[4]);
        return IValue::tuple({kiln::softmax(logits, 1), kiln::log_softmax(logits, -1)});
      },
      in, Eager::Close);
  const std::string text = ir::print(tr.graph());
  for (const char* op : {"= mm(", "= relu(", "= softmax(", "= log_softmax(", "= addmm("})
    EXPECT_NE(text.find(op), std::string::npos) << op;
  EXPECT_EQ(text.find("constant[value=tensor("), std::string::npos) << "weights are inputs";
}

TEST(Trace, BatchedMatmulConvAndPools) {
  check_trace(
      [](const Tensors& t) {
        Tensor a = t[0].matmul(t[1]);  // [2, 3, 4] @ [4, 5]: folded into one mm
        Tensor b = t[0].matmul(t[2]);  // batched, broadcast: bmm
        Tensor d = t[3].matmul(t[3]);  // 1-D dot
        Tensor c = kiln::conv2d(t[4], t[5], t[6], 1, 1);
        Tensor p = kiln::max_pool2d(c, 2) + kiln::avg_pool2d(c, 2, 2);
        return IValue::tuple({a, b, d, kiln::addmm(t[6], t[7], t[8], 0.5, 2), p});
      },
      {random_tensor({2, 3, 4}), random_tensor({4, 5}), random_tensor({1, 4, 2}),
       random_tensor({7}), random_tensor({2, 2, 6, 6}), random_tensor({3, 2, 3, 3}),
       random_tensor({3}), random_tensor({4, 5}), random_tensor({5, 3})},
      Eager::Close);
}

TEST(Trace, Views) {
  check_trace(
      [](const Tensors& t) {
        const Tensor& x = t[0];  // [2, 3, 4]
        Tensor a = x.view({6, 4}).t().unsqueeze(0).squeeze(0);
        Tensor b = x.transpose(0, 2).permute({1, 0, 2}).narrow(1, 1, 2).select(0, 2);
        Tensor c = x.slice(2, 0, 4, 2).expand({5, 2, 3, 2}).flatten(1);
        Tensor d = x.unfold(2, 2, 1).reshape({-1});
        Tensor e = x.transpose(1, 2).reshape({4, 6});  // not a view: reshape copies
        Tensor f = x.as_strided({2, 2}, {5, 1}, 3) + x[1][2][3];
        Tensor g = x.index({Slice(), 1, Slice(1, std::nullopt, 2)});
        return std::vector<Tensor>{a, b, c, d, e, f, g, x.view_as(e)};
      },
      {random_tensor({2, 3, 4})});
}

TEST(Trace, ScalarOpsAndPromotion) {
  check_trace(
      [](const Tensors& t) {
        const Tensor &x = t[0], &i = t[1], &m = t[2];
        Tensor a = (x + 2) * 0.5 - 3 / (x.abs() + 1) + (2 - x) / 4;
        Tensor b = x.pow(2) + x.abs().pow(0.5) + kiln::pow(2, x) + x % 1.5;
        Tensor c = kiln::where(x > 0.5, x, 0.0) + kiln::where(m, 1, x) + (-x).clamp(-1, 1);
        Tensor d = i + 1.5;      // int64 + float scalar: default float
        Tensor e = (i * 2) / 3;  // integer true division
        Tensor f = (m & (x < 0)) | !m;
        return std::vector<Tensor>{a, b, c, d, e, f, x.to(kDouble), i.to(kFloat).sigmoid()};
      },
      {random_tensor({3, 4}), random_tensor({3, 4}, kLong, -5, 5), random_tensor({3, 4}, kBool)});
}

TEST(Trace, ReductionsKeepdimAndDtypes) {
  check_trace(
      [](const Tensors& t) {
        const Tensor &x = t[0], &i = t[1];
        auto [mx, arg] = x.max(1, true);
        auto [mn, argn] = x.min(0);
        return std::vector<Tensor>{x.sum({1}, true),
                                   x.prod(1, true),
                                   x.amax({0, 1}),
                                   x.amin({1}, true),
                                   mx,
                                   arg,
                                   mn,
                                   argn,
                                   x.argmax(1, true),
                                   x.argmin(),
                                   x.norm(1, {0}, true),
                                   (x > 0).all(1),
                                   (x > 1).any(),
                                   x.cumsum(1),
                                   i.sum(),
                                   i.sum({0}, false, kDouble),
                                   i.cumsum(0)};
      },
      {random_tensor({3, 5}), random_tensor({3, 5}, kInt, -4, 4)});
}

// mean, var, std, logsumexp and the 2-norm have fused eager kernels that round differently from the
// primitives they are recorded as: the graph matches the recorded primitives exactly, the
// fused kernels within float32 rounding.
TEST(Trace, ReductionsWithFusedEagerKernels) {
  check_trace(
      [](const Tensors& t) {
        const Tensor& x = t[0];
        return std::vector<Tensor>{
            x.mean({0}), x.mean(),         x.mean({1}, true), x.var({1}), x.std({0}, false, true),
            x.var(),     x.logsumexp({1}), x.norm()};
      },
      {random_tensor({3, 5})}, Eager::Close);
}

TEST(Trace, JoiningAndIndexing) {
  check_trace(
      [](const Tensors& t) {
        const Tensor &x = t[0], &y = t[1], &idx = t[2], &w = t[3];
        std::vector<Tensor> parts = x.split(2, 1);
        Tensor a = kiln::cat({x, y}, 0) + 0;
        Tensor b = kiln::stack({x, y.narrow(0, 0, 3)}, 1);
        Tensor c = x.index_select(1, idx) + x.gather(1, idx.view({1, -1}).expand({3, 4}));
        Tensor d = x.scatter(1, idx.view({1, -1}).expand({3, 4}), 2.0);
        Tensor e = x.index({Slice(), idx}) + x.index({idx.remainder(3)}).t()[0][0];
        Tensor f = kiln::embedding(w, idx) + kiln::one_hot(idx, 5).to(kFloat).sum();
        auto [vals, ids] = x.topk(2, 1);
        auto [sorted, order] = x.sort(0, true);
        Tensor g = kiln::index_put(x, {idx.remainder(3)}, kiln::zeros({4, 5}));
        Tensor h = x.masked_fill(x > 0, -1.0) +
                   x.scatter_add(0, idx.view({-1, 1}).remainder(3).expand({4, 5}),
                                 y.narrow(0, 0, 4).contiguous());
        return std::vector<Tensor>{
            parts[0],         parts[2],           a, b, c, d, e, f, vals, ids, sorted, order, g, h,
            x.chunk(2, 0)[1], kiln::argsort(x, 1)};
      },
      {random_tensor({3, 5}), random_tensor({4, 5}), random_tensor({4}, kLong, 0, 4.99),
       random_tensor({6, 3})});
}

TEST(Trace, FactoriesAndRandomNumbers) {
  check_trace(
      [](const Tensors& t) {
        const Tensor& x = t[0];  // [3, 3]
        Tensor a = x + kiln::zeros_like(x) + kiln::ones({3}) + kiln::full({3, 1}, 2.5);
        Tensor b = x.matmul(kiln::eye(3)) + kiln::arange(3) + kiln::linspace(0, 1, 3);
        Tensor c = x * kiln::rand({3, 3}) + kiln::randn({3}) + kiln::randint(0, 4, {3}, kFloat);
        return std::vector<Tensor>{a, b, c, kiln::arange(0.5, 2.0, 0.5, kDouble)};
      },
      {random_tensor({3, 3})});
}

// ---- in-place ops -------------------------------------------------------------------------------
TEST(Trace, InplaceOpsRecordTheirFunctionalForm) {
  auto tr = check_trace(
      [](const Tensors& t) {
        Tensor z = t[0].clone();
        z.add_(t[1]).mul_(2).relu_();
        z.clamp_(-0.5, 1.5);
        z.masked_fill_(z > 1.0, 0.25);
        z.sub_(t[1], 0.5);
        z.scatter_(1, kiln::zeros({3, 1}, kLong), 7.0);
        z.index_put_({t[2]}, kiln::ones({2, 4}));
        Tensor mixed = t[0].clone();
        mixed.add_(t[3]);  // float32 += float64: computed in float64, written back as float32
        Tensor flags = t[0].clone();
        flags.gt_(0.0);  // bool result stored as float32
        return std::vector<Tensor>{z, mixed, flags};
      },
      {random_tensor({3, 4}), random_tensor({3, 4}), random_tensor({2}, kLong, 0, 2.99),
       random_tensor({4}, kDouble)});
  const std::string text = ir::print(tr.graph());
  EXPECT_EQ(count(text, "= cast("), 2u) << text;
  EXPECT_NE(text.find("= add("), std::string::npos);
  EXPECT_NE(text.find("= masked_fill("), std::string::npos);
  EXPECT_NE(text.find("= index_put("), std::string::npos);
}

TEST(Trace, CopyFillAndOutVariantsIntoFreshBuffers) {
  auto tr = check_trace(
      [](const Tensors& t) {
        Tensor buf = kiln::empty({3, 4});  // uninitialised: its values must never reach the graph
        buf.copy_(t[0]);
        buf.add_(1);
        Tensor filled = kiln::empty({4});
        filled.fill_(2.5);
        Tensor zeroed = t[0].clone();
        zeroed.zero_();
        Tensor out = kiln::empty({0});
        kiln::exp_out(out, t[0]);
        Tensor wide = kiln::empty({3, 4}, kDouble);
        kiln::add_out(wide, t[0], t[1]);  // float32 sum written into a float64 tensor
        return std::vector<Tensor>{buf, filled, zeroed, out, wide};
      },
      {random_tensor({3, 4}), random_tensor({3, 4})});
  const std::string text = ir::print(tr.graph());
  EXPECT_EQ(text.find("constant[value=tensor("), std::string::npos)
      << "an empty() buffer was captured by value:\n"
      << text;
  EXPECT_NE(text.find("= full("), std::string::npos);
  EXPECT_NE(text.find("= assign("), std::string::npos);
}

TEST(Trace, InplaceOnAnInputWarns) {
  auto tr = check_trace(
      [](const Tensors& t) {
        Tensor x = t[0];
        x.mul_(3);
        return IValue(x + 1);
      },
      {random_tensor({2, 2})});
  ASSERT_EQ(tr.warnings().size(), 1u);
  EXPECT_NE(tr.warnings()[0].find("modifies example input 0 in place"), std::string::npos);
}

TEST(Trace, InplaceOnANonContiguousTensorLeavesItsLayoutOpen) {
  auto tr = check_trace(
      [](const Tensors& t) {
        Tensor x = t[0];  // strided input
        x.add_(1);
        Tensor y = x.t();
        return std::vector<Tensor>{y, y.contiguous().view({-1})};
      },
      {testing::non_contiguous(random_tensor({3, 4}))});
  EXPECT_NE(ir::print(tr.graph()).find("Tensor(float32, [4, 3], cpu) = permute"), std::string::npos)
      << ir::print(tr.graph());
  EXPECT_KILN_ERROR(jit::trace(
                        [](const Tensor& x) {
                          Tensor y = x;
                          y.add_(1);
                          return y.as_strided({2}, {1}, 0);
                        },
                        {testing::non_contiguous(random_tensor({3, 4}))}, quiet()),
                    {"as_strided of a tensor that was modified in place while not contiguous"});
}

// ---- views written in place ---------------------------------------------------------------------
TEST(Trace, WritesThroughViewsFailWhenTheAliasIsUsed) {
  const Tensor x = random_tensor({3, 4});
  // A write to a view, then the base is used.
  EXPECT_KILN_ERROR(jit::trace(
                        [](const Tensor& x) {
                          Tensor y = x.relu();
                          Tensor v = y.select(0, 0);
                          v.add_(1);
                          return y;
                        },
                        {x}, quiet()),
                    {"[trace]", "written in place through a different view", "add_", "unsupported",
                     "test_trace.cpp"});
  // A write to the base, then an earlier view is used.
  EXPECT_KILN_ERROR(jit::trace(
                        [](const Tensor& x) {
                          Tensor y = x.relu();
                          Tensor v = y[0];
                          y.mul_(2);
                          return v * 1;
                        },
                        {x}, quiet()),
                    {"mul: uses a tensor whose memory was written in place", "mul_"});
  // Python-style slice assignment writes through a view too.
  EXPECT_KILN_ERROR(jit::trace(
                        [](const Tensor& x) {
                          Tensor y = x.clone();
                          y.index_put_({Slice(0, 1)}, 5.0);
                          return y;
                        },
                        {x}, quiet()),
                    {"written in place through a different view", "assign_"});
}

TEST(Trace, WritesThroughViewsThatStayConsistentAreFine) {
  // The written view itself stays usable, and so does an alias with the same layout.
  check_trace(
      [](const Tensors& t) {
        Tensor y = t[0].relu();
        Tensor same_layout = y.view(y.sizes());
        same_layout.add_(1);
        Tensor v = y.narrow(0, 0, 1);
        v.mul_(3);
        return std::vector<Tensor>{v + 0};
      },
      {random_tensor({3, 4})});
  check_trace(
      [](const Tensors& t) {
        Tensor y = t[0].relu();
        Tensor a = y.view({-1});
        y.sub_(0.5);
        return std::vector<Tensor>{y * 2};  // `a` is stale but never used
      },
      {random_tensor({3, 4})});
  // Overwriting the whole base makes it consistent again.
  check_trace(
      [](const Tensors& t) {
        Tensor y = t[0].relu();
        y[0].add_(1);
        y.copy_(t[0]);
        return std::vector<Tensor>{y};
      },
      {random_tensor({3, 4})});
}

// ---- constants ----------------------------------------------------------------------------------
// The results as a tuple of copies (a result may be a view of an outside tensor).
IValue tuple_of(const std::tuple<Tensor, Tensor, Tensor>& t) {
  return IValue::tuple({std::get<0>(t).clone(), std::get<1>(t).clone(), std::get<2>(t).clone()});
}

TEST(Trace, OutsideTensorsAreCapturedByValue) {
  Tensor w = random_tensor({4, 3});
  Tensor wt = random_tensor({3, 4}).t();  // a non-contiguous outside tensor
  auto f = [&](const Tensor& x) {
    return std::make_tuple(x.matmul(w) + kiln::tensor({1.0f, 2.0f, 3.0f}),
                           x.matmul(wt) * wt.t().sum(), wt.t());
  };
  const Tensor x = random_tensor({2, 4});
  auto tr = jit::trace(f, {x}, quiet());
  const IValue traced_values = tuple_of(f(x));
  w.mul_(0);  // after tracing: the graph keeps the values it saw
  wt.add_(1);
  EXPECT_TRUE(same(tr({x}), traced_values));
  EXPECT_FALSE(same(tr({x}), tuple_of(f(x)))) << "the outside tensors did not change";
  const std::string text = ir::print(tr.graph());
  EXPECT_NE(text.find("tensor(float32, [3], [1.0, 2.0, 3.0])"), std::string::npos) << text;
  EXPECT_NE(text.find("= as_strided("), std::string::npos) << "strided capture:\n" << text;
  // wt.t() is contiguous in eager code; the captured layout makes it so in the graph too.
  EXPECT_TRUE(tr({x}).toTuple()[2].toTensor().is_contiguous());
  EXPECT_TRUE(tr.warnings().empty());
}

TEST(Trace, AnOutsideTensorWrittenInsideIsCapturedBeforeTheWrite) {
  Tensor c = random_tensor({3});
  const Tensor saved = c.clone();
  const Tensor x = random_tensor({3});
  auto tr = jit::trace(
      [&](const Tensor& in) {
        c.add_(1);
        return in + c;
      },
      {x}, quiet());
  EXPECT_TRUE(same(tr({x}), x + (saved + 1)));
  EXPECT_TRUE(same(IValue(c), saved + 1));  // the eager run did write it
}

TEST(Trace, NumbersBecomeSharedConstants) {
  auto tr = jit::trace([](const Tensor& x) { return x.sum({1}) + x.sum({1}) * 2; },
                       {random_tensor({2, 3})}, quiet());
  const std::string text = ir::print(tr.graph());
  EXPECT_EQ(count(text, "constant[value=[1]]"), 1u) << text;
  EXPECT_EQ(count(text, "= sum("), 2u) << text;
}

// ---- reading values into C++ --------------------------------------------------------------------
TEST(Trace, ItemWarnsOncePerTrace) {
  auto f = [](const Tensor& x) {
    // Data-dependent control flow: the trace keeps the branch the example took.
    if (x.sum().item<float>() > 0 && x.max().item<double>() > -100) return x * 2;
    return x * 3;
  };
  const Tensor pos = kiln::ones({2, 2});
  ::testing::internal::CaptureStderr();
  auto tr = jit::trace(f, {pos});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(err, "[trace] warning"), 1u) << err;
  EXPECT_NE(err.find("Tensor::item() (2x)"), std::string::npos) << err;
  EXPECT_NE(err.find("test_trace.cpp"), std::string::npos) << err;
  ASSERT_EQ(tr.warnings().size(), 1u);
  EXPECT_EQ(tr.warnings()[0] + "\n", err);
  // Why it warns: the graph runs the positive branch even for a negative input.
  const Tensor neg = -kiln::ones({2, 2});
  EXPECT_TRUE(same(tr({neg}), neg * 2));
  EXPECT_FALSE(same(tr({neg}), f(neg)));
  // No value read, or a read of an outside (constant) tensor: no warning.
  const Tensor outside = kiln::ones({1});
  ::testing::internal::CaptureStderr();
  auto quiet_trace =
      jit::trace([&](const Tensor& x) { return outside.item<float>() > 0 ? x + 1 : x; }, {pos});
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(quiet_trace.warnings().empty());
  // print_warnings = false keeps the warning but prints nothing.
  ::testing::internal::CaptureStderr();
  auto kept = jit::trace(f, {pos}, quiet());
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(kept.warnings().size(), 1u);
}

TEST(Trace, MaskIndexingAndEqualWarnToo) {
  auto tr =
      jit::trace([](const Tensor& x) { return x.index({x > 0}); }, {random_tensor({8})}, quiet());
  ASSERT_EQ(tr.warnings().size(), 1u);
  EXPECT_NE(tr.warnings()[0].find("indexing with a boolean mask"), std::string::npos);
  auto eq = jit::trace([](const Tensor& x, const Tensor& y) { return kiln::equal(x, y) ? x : y; },
                       {random_tensor({2}), random_tensor({2})}, quiet());
  EXPECT_EQ(eq.warnings().size(), 1u);
}

// ---- structure of traces ------------------------------------------------------------------------
TEST(Trace, GraphTextOfASmallFunction) {
  jit::TraceOptions o = quiet();
  o.input_names = {"x"};
  auto tr =
      jit::trace([](const Tensor& x) { return (x * 2).sum({1}); }, {random_tensor({2, 3})}, o);
  EXPECT_EQ(ir::print(tr.graph()),
            "graph(%x : Tensor(float32, [2, 3], cpu, contiguous)):\n"
            "  %0 : int = constant[value=2]()\n"
            "  %1 : Tensor(float32, [2, 3], cpu, contiguous) = mul(%x, %0)\n"
            "  %2 : int[] = constant[value=[1]]()\n"
            "  %3 : bool = constant[value=false]()\n"
            "  %4 : Tensor(float32, [2], cpu, contiguous) = sum(%1, %2, %3)\n"
            "  return (%4)\n");
}

TEST(Trace, OutputsAndInputsOfEveryShape) {
  const Tensor a = random_tensor({2, 3}), b = random_tensor({3});
  // A nested tuple, an input returned as is, and a list.
  auto nested = jit::trace(
      [](const std::vector<IValue>& in) -> IValue {
        const Tensor& x = in[0].toTensor();
        return IValue::tuple({x, IValue::tuple({x.exp(), IValue(std::vector<Tensor>{x, x + 1})})});
      },
      {a}, quiet());
  EXPECT_TRUE(
      same(nested({a}),
           IValue::tuple({a, IValue::tuple({a.exp(), IValue(std::vector<Tensor>{a, a + 1})})})));
  // A list of tensors as one input.
  auto listed = jit::trace(
      [](const std::vector<IValue>& in) -> IValue {
        return kiln::cat(in[0].toTensorList(), 0) * 2;
      },
      {IValue(std::vector<Tensor>{a.view({-1}), b})}, quiet());
  const Tensor c = random_tensor({6}), d = random_tensor({3});
  EXPECT_TRUE(same(listed.run({IValue(std::vector<Tensor>{c, d})}), kiln::cat({c, d}) * 2));
  EXPECT_NE(ir::print(listed.graph()).find("= list_unpack(%input0)"), std::string::npos);
  // Bad results and inputs.
  EXPECT_KILN_ERROR(jit::trace([](const std::vector<IValue>&) -> IValue { return IValue(3); }, {a}),
                    {"returned a value of kind int, expected a tensor or a tuple or list"});
  EXPECT_KILN_ERROR(jit::trace([](const Tensor& x, const Tensor& y) { return x + y; }, {a, a}),
                    {"example input 1 is the same tensor as example input 0"});
  EXPECT_KILN_ERROR(
      jit::trace([](const std::vector<IValue>& in) -> IValue { return in[0]; }, {IValue(2.5)}),
      {"example input 0 is a value of kind float, expected a tensor"});
  EXPECT_KILN_ERROR(jit::trace([](const Tensor& x) { return x; }, {a, b}),
                    {"takes 1 tensors, got 2 example inputs"});
}

TEST(Trace, ParametersAreInputsInOrderOrFrozenConstants) {
  // What trace_module will do: the module's parameters are named graph inputs after the inputs.
  Tensor weight = random_tensor({3, 4}), bias = random_tensor({3});
  auto forward = [&](const Tensor& x) { return kiln::linear(x, weight, bias).relu(); };
  jit::TraceOptions o = quiet();
  o.parameters = {{"fc.weight", weight}, {"fc.bias", bias}};
  const Tensor x = random_tensor({2, 4});
  auto tr = jit::trace(forward, {x}, o);
  ASSERT_EQ(tr.graph().inputs().size(), 3u);
  EXPECT_EQ(tr.graph().inputs()[1]->debug_name(), "fc.weight");
  EXPECT_EQ(tr.graph().inputs()[2]->debug_name(), "fc.bias");
  ASSERT_EQ(tr.parameters().size(), 2u);
  EXPECT_TRUE(tr.parameters()[0].is_same(weight));
  EXPECT_TRUE(same(tr({x}), forward(x)));
  // New weights flow through the graph: they are inputs, not constants.
  const Tensor w2 = random_tensor({3, 4}), b2 = random_tensor({3});
  EXPECT_TRUE(same(ir::run(tr.graph(), {x, w2, b2})[0], kiln::linear(x, w2, b2).relu()));
  EXPECT_EQ(ir::print(tr.graph()).find("constant[value=tensor("), std::string::npos);
  // Frozen: the parameters become constants and the graph takes only x.
  o.freeze = true;
  auto frozen = jit::trace(forward, {x}, o);
  EXPECT_EQ(frozen.graph().inputs().size(), 1u);
  EXPECT_TRUE(frozen.parameters().empty());
  EXPECT_NE(ir::print(frozen.graph()).find("constant[value=tensor("), std::string::npos);
  EXPECT_TRUE(same(frozen({x}), forward(x)));
}

TEST(Trace, NodesRememberWhereTheyWereTraced) {
  const int line = __LINE__ + 1;
  auto tr = jit::trace([](const Tensor& x) { return x.exp() + 1; }, {random_tensor({2})}, quiet());
  for (const ir::Node* n : tr.graph().block()->nodes()) {
    EXPECT_NE(n->loc().file.find("test_trace.cpp"), std::string::npos);
    EXPECT_EQ(n->loc().line, static_cast<uint32_t>(line));
  }
  int scoped_line = 0;
  auto scoped = jit::trace(
      [&](const Tensor& x) {
        Tensor y = x.exp();
        jit::SourceScope here;
        scoped_line = __LINE__ - 1;
        return y.sin();
      },
      {random_tensor({2})}, quiet());
  std::vector<uint32_t> lines;
  for (const ir::Node* n : scoped.graph().block()->nodes()) lines.push_back(n->loc().line);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0], static_cast<uint32_t>(scoped_line));
  EXPECT_EQ(lines[1], static_cast<uint32_t>(scoped_line));
  // Errors of the traced graph point back to the trace.
  auto bad = jit::trace([](const Tensor& x, const Tensor& w) { return x.mm(w); },
                        {random_tensor({2, 3}), random_tensor({3, 2})}, quiet());
  ir::RunOptions unchecked;
  unchecked.check_types = false;
  EXPECT_KILN_ERROR(ir::run(bad.graph(), {random_tensor({2, 3}), random_tensor({2, 2})}, unchecked),
                    {"[ir.run] mm failed", "test_trace.cpp", "(traced function)"});
}

TEST(Trace, NestedTracesAreRejectedAndStateIsCleanedUp) {
  const Tensor x = random_tensor({2});
  EXPECT_KILN_ERROR(jit::trace(
                        [](const Tensor& x) {
                          jit::trace([](const Tensor& y) { return y + 1; }, {x});
                          return x;
                        },
                        {x}, quiet()),
                    {"nested traces are not supported"});
  // A traced function that throws leaves nothing behind: the next trace is normal.
  EXPECT_KILN_ERROR(jit::trace([](const Tensor& x) { return x.view({3}); }, {x}, quiet()),
                    {"[view]"});
  auto ok = jit::trace([](const Tensor& x) { return x * x; }, {x}, quiet());
  EXPECT_FALSE(ok.graph().block()->nodes().empty());
  EXPECT_TRUE(same(ok({x}), x * x));
}

TEST(Trace, RunningAGraphInsideATraceRecordsItsOps) {
  ir::Graph g;
  ir::Builder b(g);
  ir::Value* in = b.input(ir::tensor_type(kFloat, {3}), "in");
  b.ret({b.op(ops::OpKind::Tanh, {b.op(ops::OpKind::Mul, {in, 3})})});
  auto tr = jit::trace([&](const Tensor& x) { return ir::run(g, {x + 1})[0].toTensor(); },
                       {random_tensor({3})}, quiet());
  const std::string text = ir::print(tr.graph());
  EXPECT_NE(text.find("= tanh("), std::string::npos) << text;
  const Tensor y = random_tensor({3});
  EXPECT_TRUE(same(tr({y}), ((y + 1) * 3).tanh()));
}

TEST(Trace, ThreadsTraceIndependently) {
  std::vector<std::string> failures(2);
  auto work = [&](int id) {
    for (int i = 0; i < 20; ++i) {
      const Tensor x = kiln::full({4}, 0.5 * i);  // (the test RNG is not thread-safe)
      auto tr = id == 0 ? jit::trace([](const Tensor& t) { return t.exp() * 2; }, {x}, quiet())
                        : jit::trace([](const Tensor& t) { return t.sin() - 1; }, {x}, quiet());
      const std::string text = ir::print(tr.graph());
      const bool right =
          id == 0
              ? text.find("exp(") != std::string::npos && text.find("sin(") == std::string::npos
              : text.find("sin(") != std::string::npos && text.find("exp(") == std::string::npos;
      if (!right) failures[id] = text;
    }
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(failures[0], "");
  EXPECT_EQ(failures[1], "");
}

}  // namespace
}  // namespace kiln
