// ctest-label: codegen
// Fused kernels from fusion_group nodes (src/codegen/llvm/fusion_kernel.cpp) against the
// reference interpreter running the same group: elementwise chains, broadcasting, number
// constants, mixed dtypes and promotion, bool results, views of inputs, strided inputs, and
// every reduction along inner, outer, middle and all dims, at sizes around the vector width;
// the value-range analysis and the cheaper math it selects, at the values where it could break;
// small matrix products computed inside the kernel (sizes, layouts, broadcasts, threads).
#include <array>
#include <random>
#include <set>

#include "codegen/llvm/fusion_kernel.h"
#include "codegen/llvm/value_range.h"
#include "math_test_util.h"
#include "test_util.h"

namespace kiln::testing {
namespace {

using codegen::llvm::FusedKernel;
using codegen::llvm::GroupLowering;
using codegen::llvm::KernelSpec;
using ir::Value;
using ops::OpKind;

// Builds one fusion group while evaluating it eagerly on example tensors, so every value gets
// its exact type (what the tracer and the shape pass give real graphs).
class GroupBuilder {
 public:
  struct V {
    Value* v;
    IValue val;
  };
  GroupBuilder(ir::Builder& b, std::vector<Value*> ins, std::vector<Tensor> examples)
      : b_(b) {
    for (size_t i = 0; i < ins.size(); ++i) inputs_.push_back({ins[i], examples[i]});
  }
  V in(size_t i) const { return inputs_[i]; }
  V op(OpKind k, std::vector<std::variant<V, IValue>> args) {
    std::vector<ir::Arg> ir_args;
    std::vector<IValue> vals;
    for (auto& a : args) {
      if (std::holds_alternative<V>(a)) {
        ir_args.emplace_back(std::get<V>(a).v);
        vals.push_back(std::get<V>(a).val);
      } else {
        const IValue& c = std::get<IValue>(a);
        ir_args.emplace_back(b_.constant(c));
        vals.push_back(c);
      }
    }
    IValue r = ops::call(k, vals)[0];
    return {b_.op(k, ir_args, ir::tensor_type_of(r.toTensor())), r};
  }

 private:
  ir::Builder& b_;
  std::vector<V> inputs_;
};

using Body = std::function<std::vector<GroupBuilder::V>(GroupBuilder&)>;

struct Built {
  std::unique_ptr<ir::Graph> g;
  ir::Node* group = nullptr;
};

Built build(const std::vector<Tensor>& inputs, const Body& body) {
  Built r;
  r.g = std::make_unique<ir::Graph>();
  ir::Builder b(*r.g);
  std::vector<Value*> gi;
  for (size_t i = 0; i < inputs.size(); ++i) gi.push_back(b.input(ir::tensor_type_of(inputs[i])));
  auto outs = b.fusion_group(gi, [&](ir::Builder& sb, const std::vector<Value*>& ins) {
    GroupBuilder gb(sb, ins, inputs);
    std::vector<Value*> o;
    for (auto& v : body(gb)) o.push_back(v.v);
    return o;
  });
  b.ret(outs);
  for (ir::Node* n : r.g->block()->nodes())
    if (n->kind().is(ir::Prim::FusionGroup)) r.group = n;
  return r;
}

// Compiles the group for these inputs, runs it, and compares with the interpreter.
// `grain` (> 0): the launch's task grain; `compile_inputs`: the inputs the kernel is specialised
// for, when not `inputs` (same sizes, other strides).
void check(const std::string& what, const std::vector<Tensor>& inputs, const Body& body,
           double rtol = 1e-6, double atol = 1e-6, int lanes = 0, int64_t grain = 0,
           const std::vector<Tensor>& compile_inputs = {}) {
  SCOPED_TRACE(what);
  Built bt = build(inputs, body);
  std::string why;
  auto low = codegen::llvm::lower_group(*bt.group, &why);
  ASSERT_TRUE(low.has_value()) << why;
  auto args = codegen::llvm::launch_args(*low, inputs);
  if (grain > 0) args.grain = grain;
  KernelSpec spec = codegen::llvm::spec_for(
      low->program,
      compile_inputs.empty() ? args : codegen::llvm::launch_args(*low, compile_inputs));
  spec.lanes = lanes;
  auto kernel = FusedKernel::compile(spec);
  std::vector<Tensor> got = codegen::llvm::launch(*kernel, args);
  std::vector<IValue> in_vals(inputs.begin(), inputs.end());
  std::vector<IValue> want = ir::run(*bt.g, in_vals);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    Tensor g = got[i].reshape(low->output_sizes[i]);
    const Tensor& w = want[i].toTensor();
    EXPECT_EQ(g.dtype(), w.dtype()) << "output " << i;
    EXPECT_TRUE(close(g, w, rtol, atol)) << "output " << i << "\n" << low->program.str();
  }
}

using V = GroupBuilder::V;
using L = std::vector<int64_t>;

TEST(FusedKernel, EightOpChainAtSizesAroundTheVectorWidth) {
  for (int64_t n : {1, 7, 8, 31, 32, 33, 63, 64, 65, 1000, 100003}) {
    Tensor x = random_tensor({n}, kFloat);
    check(fmt::format("n = {}", n), {x}, [](GroupBuilder& g) {
      V x = g.in(0);
      V a = g.op(OpKind::Mul, {x, IValue(2.0)});
      a = g.op(OpKind::Add, {a, IValue(1.0)});
      a = g.op(OpKind::Relu, {a});
      a = g.op(OpKind::Mul, {a, x});
      a = g.op(OpKind::Sigmoid, {a});
      a = g.op(OpKind::Sub, {a, IValue(0.5)});
      a = g.op(OpKind::Tanh, {a});
      return std::vector<V>{g.op(OpKind::Add, {a, x})};
    }, 1e-5, 1e-6);
  }
}

TEST(FusedKernel, BroadcastingStridesAndSeveralOutputs) {
  Tensor a = random_tensor({3, 1, 5}, kFloat), b = random_tensor({4, 1}, kFloat);
  check("3-way broadcast, two outputs", {a, b}, [](GroupBuilder& g) {
    V s = g.op(OpKind::Add, {g.in(0), g.in(1)});  // [3, 4, 5]
    V p = g.op(OpKind::Mul, {s, g.in(0)});
    return std::vector<V>{s, g.op(OpKind::Exp, {p})};
  });
  Tensor t = random_tensor({6, 9}, kDouble).t();  // non-contiguous
  Tensor r = random_tensor({9, 6}, kDouble);
  check("transposed input (strided access)", {t, r}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Atan2, {g.in(0), g.in(1)})};
  }, 1e-12, 1e-12);
  Tensor big = random_tensor({257, 129}, kFloat);
  Tensor row = random_tensor({129}, kFloat);
  check("large, row broadcast (parallel rows)", {big, row}, [](GroupBuilder& g) {
    V d = g.op(OpKind::Div, {g.in(0), g.op(OpKind::Add, {g.op(OpKind::Abs, {g.in(1)}), IValue(1.0)})});
    return std::vector<V>{g.op(OpKind::Log1p, {g.op(OpKind::Abs, {d})})};
  }, 1e-5, 1e-6);
  Tensor s0 = random_tensor({}, kFloat), v = random_tensor({17}, kFloat);
  check("0-dim input", {s0, v}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Maximum, {g.in(0), g.in(1)})};
  });
  Tensor e = random_tensor({0, 3}, kFloat);
  check("zero-size", {e}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Neg, {g.in(0)})};
  });
}

TEST(FusedKernel, DtypesPromotionAndBoolResults) {
  Tensor i = random_tensor({5, 7}, kLong, -5, 5), f = random_tensor({7}, kFloat);
  check("int64 * float32 -> float32", {i, f}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Mul, {g.in(0), g.in(1)})};
  });
  check("comparison -> bool, where", {i, f}, [](GroupBuilder& g) {
    V c = g.op(OpKind::Gt, {g.in(0), g.in(1)});
    V w = g.op(OpKind::Where, {c, g.in(0), IValue(2.5)});
    return std::vector<V>{c, w, g.op(OpKind::LogicalNot, {c})};
  });
  check("integer arithmetic with an int number", {i}, [](GroupBuilder& g) {
    V a = g.op(OpKind::Mul, {g.in(0), IValue(int64_t{3})});
    V b = g.op(OpKind::Sub, {a, g.in(0)});
    V m = g.op(OpKind::Maximum, {b, IValue(int64_t{-4})});
    return std::vector<V>{g.op(OpKind::Abs, {m}), g.op(OpKind::Relu, {g.op(OpKind::Neg, {m})})};
  });
  check("int -> float via div (IntToFloat)", {i}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Div, {g.in(0), IValue(int64_t{4})}),
                          g.op(OpKind::Sqrt, {g.op(OpKind::Abs, {g.in(0)})})};
  });
  Tensor bb = random_tensor({9}, kBool), cc = random_tensor({9}, kBool);
  check("bool logic", {bb, cc}, [](GroupBuilder& g) {
    V x = g.op(OpKind::LogicalXor, {g.in(0), g.in(1)});
    return std::vector<V>{g.op(OpKind::LogicalOr, {x, g.op(OpKind::Eq, {g.in(0), g.in(1)})})};
  });
  Tensor d = random_tensor({4, 4}, kDouble), fl = random_tensor({4, 4}, kFloat);
  check("casts", {d, fl}, [](GroupBuilder& g) {
    V c = g.op(OpKind::Cast, {g.in(0), IValue(kFloat)});
    V s = g.op(OpKind::Add, {c, g.in(1)});
    V k = g.op(OpKind::Cast, {g.op(OpKind::Mul, {s, IValue(10.0)}), IValue(kLong)});
    V bl = g.op(OpKind::Cast, {s, IValue(kBool)});
    return std::vector<V>{s, k, bl, g.op(OpKind::Cast, {bl, IValue(kDouble)})};
  });
  Tensor nan = tensor({1.0, std::nan(""), -0.0, INFINITY, -INFINITY}, kFloat);
  check("special values", {nan}, [](GroupBuilder& g) {
    V r = g.op(OpKind::Relu, {g.in(0)});
    V m = g.op(OpKind::Maximum, {g.in(0), IValue(0.0)});
    return std::vector<V>{r, m, g.op(OpKind::Ne, {g.in(0), g.in(0)}),
                          g.op(OpKind::Sign, {g.in(0)})};
  });
}

TEST(FusedKernel, ViewsOfInputs) {
  Tensor x = random_tensor({4, 6}, kFloat), y = random_tensor({6}, kFloat);
  check("permute + expand + slice of inputs", {x, y}, [](GroupBuilder& g) {
    V t = g.op(OpKind::Permute, {g.in(0), IValue(L{1, 0})});                     // [6, 4]
    V e = g.op(OpKind::Expand, {g.op(OpKind::View, {g.in(1), IValue(L{6, 1})}), IValue(L{6, 4})});
    V s = g.op(OpKind::Slice, {t, IValue(int64_t{0}), IValue(int64_t{0}), IValue(int64_t{6}),
                               IValue(int64_t{1})});
    return std::vector<V>{g.op(OpKind::Mul, {s, e})};
  });
}

Body reduce_body(OpKind k, L dims, bool keepdim, bool with_elementwise) {
  return [=](GroupBuilder& g) {
    V x = g.op(OpKind::Mul, {g.in(0), IValue(1.5)});
    std::vector<V> outs{g.op(k, {x, IValue(dims), IValue(keepdim)})};
    if (with_elementwise) outs.push_back(x);
    return outs;
  };
}

TEST(FusedKernel, ReductionsAlongEveryLayout) {
  const std::vector<std::pair<std::string, L>> dims = {
      {"inner", {2}}, {"outer", {0}}, {"middle", {1}}, {"all", {0, 1, 2}}, {"outer two", {0, 1}},
      {"first and last", {0, 2}}};
  for (OpKind k : {OpKind::Sum, OpKind::Prod, OpKind::Amax, OpKind::Amin}) {
    for (const auto& [name, d] : dims) {
      for (L shape : {L{3, 5, 7}, L{2, 3, 67}, L{65, 2, 33}}) {
        for (bool keep : {false, true}) {
          Tensor x = random_tensor(shape, kFloat, 0.5, 1.5);
          check(fmt::format("{} over {} of {}, keepdim {}", ops::op_info(k).name, name,
                            shape_str(shape), keep),
                {x}, reduce_body(k, d, keep, name == "inner"), 1e-5, 1e-5);
        }
      }
    }
  }
}

TEST(FusedKernel, ReductionDtypesAndSpecialValues) {
  Tensor big = random_tensor({1000, 300}, kFloat);
  check("large sum over rows (parallel)", {big}, reduce_body(OpKind::Sum, {1}, false, false),
        1e-5, 1e-4);
  check("large sum over columns (parallel chunks)", {big}, reduce_body(OpKind::Sum, {0}, false, true),
        1e-5, 1e-4);
  Tensor d = random_tensor({33, 17}, kDouble);
  check("float64 amin", {d}, reduce_body(OpKind::Amin, {1}, true, false), 1e-12, 1e-12);
  Tensor n = tensor({{1.0, std::nan(""), 3.0}, {-INFINITY, 2.0, 0.5}}, kFloat);
  check("amax with NaN and -inf", {n}, reduce_body(OpKind::Amax, {1}, false, false));
  Tensor ints = random_tensor({6, 40}, kLong, -9, 9);
  check("int64 sum and max", {ints}, [](GroupBuilder& g) {
    V x = g.op(OpKind::Add, {g.in(0), IValue(int64_t{1})});
    return std::vector<V>{g.op(OpKind::Sum, {x, IValue(L{1}), IValue(false)})};
  });
  check("int64 amax", {ints}, [](GroupBuilder& g) {
    V x = g.op(OpKind::Mul, {g.in(0), IValue(int64_t{2})});
    return std::vector<V>{g.op(OpKind::Amax, {x, IValue(L{0}), IValue(true)})};
  });
  Tensor f = random_tensor({5, 70}, kFloat);
  check("all/any of comparisons, sum of bools", {f}, [](GroupBuilder& g) {
    V c = g.op(OpKind::Gt, {g.in(0), IValue(0.0)});
    return std::vector<V>{g.op(OpKind::All, {c, IValue(L{1}), IValue(false)})};
  });
  check("any", {f}, [](GroupBuilder& g) {
    V c = g.op(OpKind::Gt, {g.in(0), IValue(1.9)});
    return std::vector<V>{g.op(OpKind::Any, {c, IValue(L{1}), IValue(false)})};
  });
  check("sum of bools", {f}, [](GroupBuilder& g) {
    V c = g.op(OpKind::Lt, {g.in(0), IValue(0.0)});
    return std::vector<V>{g.op(OpKind::Sum, {c, IValue(L{0}), IValue(false)})};
  });
  Tensor e = random_tensor({0, 4}, kFloat);
  check("sum over an empty dim", {e}, reduce_body(OpKind::Sum, {0}, false, false));
}

// Streaming (non-temporal) stores: the masked head that aligns the output, the aligned vector
// loop and the tail, for outputs at every misalignment inside a larger buffer (whose other
// elements must stay untouched), float32 and float64, with a broadcast operand, on one and
// two threads (each chunk aligns itself).
TEST(FusedKernel, StreamingStoresAtEveryAlignment) {
  const int threads = get_num_threads();
  for (int nt : {1, 2}) {
    set_num_threads(nt);
    for (ScalarType dt : {kFloat, kDouble}) {
      for (int64_t n : {1, 3, 8, 9, 33, 1000, 100003}) {
        for (int64_t offset : {0, 1, 2, 3, 5, 7}) {
          SCOPED_TRACE(fmt::format("threads {}, {}, n {}, offset {}", nt, dtype_name(dt), n,
                                   offset));
          Tensor x = random_tensor({n}, dt), y = random_tensor({1}, dt);
          Built bt = build({x, y}, [](GroupBuilder& g) {
            V a = g.op(OpKind::Sigmoid, {g.op(OpKind::Mul, {g.in(0), g.in(1)})});
            return std::vector<V>{g.op(OpKind::Add, {a, g.in(0)})};
          });
          std::string why;
          auto low = codegen::llvm::lower_group(*bt.group, &why);
          ASSERT_TRUE(low.has_value()) << why;
          auto args = codegen::llvm::launch_args(*low, {x, y});
          KernelSpec spec{low->program, codegen::llvm::access_for(low->program, args), 0, true};
          auto kernel = FusedKernel::compile(spec);
          Tensor buf = full({n + 16}, 12345.0, TensorOptions(dt));
          Tensor out = buf.narrow(0, offset, n);
          args.outputs = {out};
          codegen::llvm::launch(*kernel, args);
          std::vector<IValue> want = ir::run(*bt.g, {IValue(x), IValue(y)});
          EXPECT_TRUE(close(out, want[0].toTensor(), 1e-6, 1e-6));
          std::vector<double> all = to_vector(buf);
          for (int64_t i = 0; i < n + 16; ++i) {
            if (i < offset || i >= offset + n) {
              ASSERT_EQ(all[i], 12345.0) << "element " << i;
            }
          }
        }
      }
    }
  }
  set_num_threads(threads);
}

// Only one large elementwise output streams.
TEST(FusedKernel, StreamsOnlyOneLargeElementwiseOutput) {
  const int64_t big = codegen::llvm::kStreamingBytes / 4;
  auto streams_for = [](const std::vector<Tensor>& in, const Body& body) {
    Built bt = build(in, body);
    std::string why;
    auto low = codegen::llvm::lower_group(*bt.group, &why);
    EXPECT_TRUE(low.has_value()) << why;
    return low && codegen::llvm::streams(low->program, codegen::llvm::launch_args(*low, in));
  };
  auto neg = [](GroupBuilder& g) { return std::vector<V>{g.op(OpKind::Neg, {g.in(0)})}; };
  EXPECT_TRUE(streams_for({empty({big}, kFloat)}, neg));
  EXPECT_FALSE(streams_for({empty({big - 1}, kFloat)}, neg));
  EXPECT_FALSE(streams_for({empty({big}, kFloat)}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Neg, {g.in(0)}), g.op(OpKind::Abs, {g.in(0)})};
  }));
  EXPECT_FALSE(streams_for({empty({big / 1024, 1024}, kFloat)}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Sum, {g.in(0), IValue(L{1}), IValue(false)})};
  }));
}

// ---- value ranges ------------------------------------------------------------------------

// The interval value_ranges() proves for each output of the group built by body.
std::vector<codegen::llvm::Interval> output_ranges(const std::vector<Tensor>& inputs,
                                                   const Body& body) {
  Built bt = build(inputs, body);
  std::string why;
  auto low = codegen::llvm::lower_group(*bt.group, &why);
  EXPECT_TRUE(low.has_value()) << why;
  if (!low) return {};
  std::vector<codegen::llvm::Interval> all = codegen::llvm::value_ranges(low->program);
  std::vector<codegen::llvm::Interval> r;
  for (const auto& o : low->program.outputs) r.push_back(all[o.instr]);
  return r;
}

TEST(ValueRanges, BoundsFollowTheOperations) {
  Tensor x = random_tensor({8}, kFloat);
  auto r = output_ranges({x}, [](GroupBuilder& g) {
    V s = g.op(OpKind::Sigmoid, {g.in(0)});
    V d = g.op(OpKind::Sub, {s, IValue(0.5)});
    V relu = g.op(OpKind::Relu, {g.in(0)});
    V e = g.op(OpKind::Exp, {g.op(OpKind::Neg, {g.op(OpKind::Abs, {g.in(0)})})});
    V q = g.op(OpKind::Div, {g.in(0), s});       // the divisor may be 0
    V z = g.op(OpKind::Mul, {relu, IValue(0.0)});  // 0 * inf is NaN: nothing known
    V big = g.op(OpKind::Add, {g.op(OpKind::Mul, {s, IValue(3e38)}), IValue(3e38)});
    V mx = g.op(OpKind::Minimum, {g.op(OpKind::Maximum, {g.in(0), IValue(-2.0)}), IValue(3.0)});
    V t = g.op(OpKind::Tanh, {g.op(OpKind::Mul, {mx, IValue(-4.0)})});
    return std::vector<V>{d, relu, e, q, z, big, mx, t};
  });
  ASSERT_EQ(r.size(), 8u);
  auto near = [](double got, double want) { return got == want || std::abs(got - want) < 1e-5; };
  // sigmoid - 0.5: [-0.5, 0.5], widened outward by a hair for rounding
  EXPECT_TRUE(r[0].lo <= -0.5 && near(r[0].lo, -0.5)) << r[0].lo;
  EXPECT_TRUE(r[0].hi >= 0.5 && near(r[0].hi, 0.5)) << r[0].hi;
  EXPECT_EQ(r[1].lo, 0.0);
  EXPECT_EQ(r[1].hi, INFINITY);
  EXPECT_EQ(r[2].lo, 0.0);  // exp(-|x|) in [0, 1]
  EXPECT_TRUE(r[2].hi >= 1 && near(r[2].hi, 1)) << r[2].hi;
  EXPECT_TRUE(r[3].is_everything());
  EXPECT_TRUE(r[4].is_everything());
  EXPECT_EQ(r[5].hi, INFINITY);  // 6e38 overflows float32
  EXPECT_TRUE(r[5].lo <= 3e38 && near(r[5].lo / 3e38, 1)) << r[5].lo;
  EXPECT_TRUE(r[6].lo <= -2 && near(r[6].lo, -2) && r[6].hi >= 3 && near(r[6].hi, 3));
  EXPECT_TRUE(r[7].lo <= -1 && near(r[7].lo, -1) && r[7].hi >= 1 && near(r[7].hi, 1));

  // Integer values are not bounded (nor is anything computed from them).
  Tensor i = random_tensor({8}, kLong, -3, 3);
  auto ri = output_ranges({i}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Abs, {g.in(0)})};
  });
  ASSERT_EQ(ri.size(), 1u);
  EXPECT_TRUE(ri[0].is_everything());
}

// The values where a bounded lowering could go wrong (both signs: zeros, denormals, exp's range
// edges, huge values, infinities, NaN) and random values over [-120, 120] and [-1, 1].
template <class T>
Tensor edge_inputs() {
  std::vector<T> v = special_values<T>();
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> wide(-120, 120), narrow(-1, 1);
  for (int k = 0; k < 3000; ++k) v.push_back(static_cast<T>(k % 2 ? wide(gen) : narrow(gen)));
  Tensor t = empty({static_cast<int64_t>(v.size())}, std::is_same_v<T, float> ? kFloat : kDouble);
  std::copy(v.begin(), v.end(), t.data_ptr<T>());
  return t;
}

TEST(ValueRanges, BoundedMathMatchesTheInterpreterAtEdgeValues) {
  for (ScalarType dt : {kFloat, kDouble}) {
    Tensor x = dt == kFloat ? edge_inputs<float>() : edge_inputs<double>();
    const double tol = dt == kFloat ? 1e-6 : 1e-13;
    const std::string d = dt == kFloat ? "float32: " : "float64: ";
    // tanh's polynomial: |argument| <= 0.5 and up to the bound
    check(d + "tanh(sigmoid(x) - 0.5)", {x}, [](GroupBuilder& g) {
      V s = g.op(OpKind::Sub, {g.op(OpKind::Sigmoid, {g.in(0)}), IValue(0.5)});
      return std::vector<V>{g.op(OpKind::Tanh, {s})};
    }, tol, tol);
    check(d + "tanh(clamp(x, -0.62, 0.62))", {x}, [](GroupBuilder& g) {
      V c = g.op(OpKind::Minimum, {g.op(OpKind::Maximum, {g.in(0), IValue(-0.62)}), IValue(0.62)});
      return std::vector<V>{g.op(OpKind::Tanh, {c})};
    }, tol, tol);
    // exp of an argument <= 0, down into the denormal results
    check(d + "exp(-|x|)", {x}, [](GroupBuilder& g) {
      V a = g.op(OpKind::Neg, {g.op(OpKind::Abs, {g.in(0)})});
      return std::vector<V>{g.op(OpKind::Exp, {a})};
    }, tol, tol);
    check(d + "exp(minimum(x, 0))", {x}, [](GroupBuilder& g) {
      return std::vector<V>{g.op(OpKind::Exp, {g.op(OpKind::Minimum, {g.in(0), IValue(0.0)})})};
    }, tol, tol);
    // exp inside the normal range (one scaling factor), and just beyond it (the general form)
    for (double scale : {80.0, 700.0, 88.5}) {
      check(d + fmt::format("exp(tanh(x) * {})", scale), {x}, [scale](GroupBuilder& g) {
        V a = g.op(OpKind::Mul, {g.op(OpKind::Tanh, {g.in(0)}), IValue(scale)});
        return std::vector<V>{g.op(OpKind::Exp, {a})};
      }, tol, tol);
    }
    check(d + "sigmoid(x)", {x}, [](GroupBuilder& g) {
      return std::vector<V>{g.op(OpKind::Sigmoid, {g.in(0)})};
    }, tol, tol);
  }
}

// ---- products computed in the kernel --------------------------------------------------------
// mm(A, B) as a Dot: per point of the result, K fused multiply-adds (the vector loop loads a
// row of B and splats A; strided operands take the scalar loop; threads take column blocks).

// A [m, k] (transposed in memory when `ta`) and B [k, n] (when `tb`).
std::pair<Tensor, Tensor> operands(int64_t m, int64_t k, int64_t n, ScalarType dt, bool ta,
                                   bool tb) {
  Tensor a = ta ? random_tensor({k, m}, dt).t() : random_tensor({m, k}, dt);
  Tensor b = tb ? random_tensor({n, k}, dt).t() : random_tensor({k, n}, dt);
  return {a, b};
}

// The rest after the whole vectors runs in masked steps of one register: one step when the
// kernel's vector is a register, else a loop of them with accumulators of its own. Every rest
// length at vector widths of 2 lanes and 1 to 8 registers (max-autotune's candidates; one lane
// is refused: the strided loop is the scalar code), for elementwise
// outputs, a reduction into one slot (vector accumulators), a row reduction into many slots
// (read-modify-write) and a product.
TEST(FusedKernel, RestsOfEveryLengthAtEveryVectorWidth) {
  const int reg = codegen::llvm::Jit::get().target().lanes(4);
  for (int lanes : {2, reg, 2 * reg, 4 * reg, 8 * reg}) {
    std::set<int64_t> sizes;  // rests of 1, one register -/+ 1, all but one, and 2+ steps
    for (int64_t n : {1, reg - 1, reg + 1, lanes - 1, lanes + reg + 1, 2 * lanes - 1})
      if (n > 0) sizes.insert(n);
    for (int64_t n : sizes) {
      const std::string at = fmt::format("{} lanes, n = {}", lanes, n);
      Tensor x = random_tensor({n}, kFloat, 0.5, 1.5);
      check("chain, sum and max of " + at, {x},
            [](GroupBuilder& g) {
              V a = g.op(OpKind::Tanh, {g.op(OpKind::Mul, {g.in(0), IValue(1.5)})});
              return std::vector<V>{a, g.op(OpKind::Sum, {a, IValue(L{0}), IValue(false)}),
                                    g.op(OpKind::Amax, {a, IValue(L{0}), IValue(false)})};
            },
            1e-5, 1e-5, lanes);
      Tensor rows = random_tensor({3, n}, kFloat, 0.5, 1.5);
      check("column sums of " + at, {rows}, reduce_body(OpKind::Sum, {0}, false, true), 1e-5,
            1e-5, lanes);
      auto [a, b] = operands(3, 5, n, kFloat, false, false);
      check("product of " + at, {a, b},
            [](GroupBuilder& g) {
              return std::vector<V>{g.op(OpKind::Relu, {g.op(OpKind::Mm, {g.in(0), g.in(1)})})};
            },
            1e-5, 1e-5, lanes);
    }
  }
}

TEST(FusedProduct, OddSizesDtypesAndLayouts) {
  for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{1, 1, 1},
                                                            {3, 5, 7},
                                                            {8, 64, 64},
                                                            {5, 17, 33},
                                                            {2, 0, 5},
                                                            {0, 3, 4},
                                                            {7, 9, 1},
                                                            {1, 9, 16},
                                                            {4, 3, 100}}) {
    for (ScalarType dt : {kFloat, kDouble}) {
      for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
          auto [a, b] = operands(m, k, n, dt, ta, tb);
          Tensor bias = random_tensor({n}, dt);
          const double tol = dt == kFloat ? 1e-5 : 1e-12;
          check(
              fmt::format("[{}, {}] x [{}, {}] {}{}{}", m, k, k, n, dtype_name(dt),
                          ta ? " A transposed" : "", tb ? " B transposed" : ""),
              {a, b, bias},
              [](GroupBuilder& g) {
                V p = g.op(OpKind::Mm, {g.in(0), g.in(1)});
                V r = g.op(OpKind::Relu, {g.op(OpKind::Add, {p, g.in(2)})});
                return std::vector<V>{r, p};  // the product itself is an output too
              },
              tol, tol);
        }
      }
    }
  }
}

TEST(FusedProduct, GatesFromSlicesOfOneMatrix) {
  // An LSTM step: four products of one state with column slices of one weight, the gate math
  // on them; the weight contiguous, or a slice of a wider (padded) one.
  for (int64_t hidden : {16, 13, 64}) {
    for (bool padded : {false, true}) {
      const int64_t k = 24, batch = 5;
      Tensor h = random_tensor({batch, k}, kFloat), c = random_tensor({batch, hidden}, kFloat);
      Tensor w = padded ? random_tensor({k, 4 * hidden + 16}, kFloat).slice(1, 0, 4 * hidden)
                        : random_tensor({k, 4 * hidden}, kFloat);
      Tensor gx = random_tensor({batch, 4 * hidden}, kFloat);
      check(
          fmt::format("hidden {}{}", hidden, padded ? ", padded weight" : ""), {h, w, gx, c},
          [hidden](GroupBuilder& g) {
            std::vector<V> gate;
            for (int64_t i = 0; i < 4; ++i) {
              auto cols = [&](V t) {
                return g.op(OpKind::Slice, {t, IValue(int64_t{1}), IValue(i * hidden),
                                            IValue((i + 1) * hidden), IValue(int64_t{1})});
              };
              V p = g.op(OpKind::Mm, {g.in(0), cols(g.in(1))});
              gate.push_back(g.op(OpKind::Add, {cols(g.in(2)), p}));
            }
            V ig = g.op(OpKind::Sigmoid, {gate[0]}), fg = g.op(OpKind::Sigmoid, {gate[1]});
            V cg = g.op(OpKind::Tanh, {gate[2]}), og = g.op(OpKind::Sigmoid, {gate[3]});
            V c2 =
                g.op(OpKind::Add, {g.op(OpKind::Mul, {fg, g.in(3)}), g.op(OpKind::Mul, {ig, cg})});
            return std::vector<V>{g.op(OpKind::Mul, {og, g.op(OpKind::Tanh, {c2})}), c2};
          },
          1e-5, 1e-5);
    }
  }
}

// Products whose operands of one role share a k stride step one offset for all of them; a
// launch whose strides differ from the compiled spec's takes the strided loop, with the same
// results. Two products of one state with a weight's column slices (shared), and with two
// weights of different row pitches (not shared).
TEST(FusedProduct, SharedKStridesAreCheckedAtRunTime) {
  const int64_t k = 12, batch = 6, n = 20;
  Tensor h = random_tensor({batch, k}, kFloat);
  Tensor one = random_tensor({k, 2 * n}, kFloat);
  Tensor w1 = one.slice(1, 0, n), w2 = one.slice(1, n, 2 * n);
  Tensor v1 = random_tensor({k, n}, kFloat), v2 = random_tensor({k, n + 9}, kFloat).slice(1, 0, n);
  auto body = [](GroupBuilder& g) {
    V p = g.op(OpKind::Mm, {g.in(0), g.in(1)}), q = g.op(OpKind::Mm, {g.in(0), g.in(2)});
    return std::vector<V>{g.op(OpKind::Add, {g.op(OpKind::Tanh, {p}), q})};
  };
  {
    Built bt = build({h, w1, w2}, body);
    std::string why;
    auto low = codegen::llvm::lower_group(*bt.group, &why);
    ASSERT_TRUE(low.has_value()) << why;
    EXPECT_TRUE(codegen::llvm::spec_for(low->program, codegen::llvm::launch_args(*low, {h, w1, w2}))
                    .uniform_k);
    EXPECT_FALSE(
        codegen::llvm::spec_for(low->program, codegen::llvm::launch_args(*low, {h, v1, v2}))
            .uniform_k);
  }
  check("slices of one weight", {h, w1, w2}, body, 1e-5, 1e-5);
  check("two weights", {h, v1, v2}, body, 1e-5, 1e-5);
  check("compiled for slices of one weight, run on two", {h, v1, v2}, body, 1e-5, 1e-5, 0, 0,
        {h, w1, w2});
  check("compiled for two weights, run on slices of one", {h, w1, w2}, body, 1e-5, 1e-5, 0, 0,
        {h, v1, v2});
}

TEST(FusedProduct, BroadcastReducedAndParallel) {
  Tensor a1 = random_tensor({1, 6}, kFloat), b = random_tensor({6, 9}, kFloat);
  Tensor x = random_tensor({3, 5, 9}, kFloat);
  check(
      "a [1, 9] product broadcast over [3, 5, 9]", {a1, b, x},
      [](GroupBuilder& g) {
        return std::vector<V>{g.op(OpKind::Mul, {g.op(OpKind::Mm, {g.in(0), g.in(1)}), g.in(2)})};
      },
      1e-5, 1e-5);
  Tensor a = random_tensor({5, 6}, kFloat), b1 = random_tensor({6, 1}, kFloat);
  Tensor y = random_tensor({5, 4}, kFloat);
  check(
      "a [5, 1] product broadcast over [5, 4]", {a, b1, y},
      [](GroupBuilder& g) {
        return std::vector<V>{g.op(OpKind::Sub, {g.in(2), g.op(OpKind::Mm, {g.in(0), g.in(1)})})};
      },
      1e-5, 1e-5);
  for (int64_t d : {0, 1}) {
    Tensor p = random_tensor({7, 11}, kDouble), q = random_tensor({11, 37}, kDouble);
    check(
        fmt::format("sum over dim {} of a product", d), {p, q},
        [d](GroupBuilder& g) {
          V m = g.op(OpKind::Mul, {g.op(OpKind::Mm, {g.in(0), g.in(1)}), IValue(2.0)});
          return std::vector<V>{g.op(OpKind::Sum, {m, IValue(L{d}), IValue(false)})};
        },
        1e-12, 1e-12);
  }
  Tensor sq = random_tensor({6, 6}, kFloat), w6 = random_tensor({6, 6}, kFloat);
  check("an input read as both operands of a product and elementwise", {sq, w6},
        [](GroupBuilder& g) {
          V p = g.op(OpKind::Mm, {g.in(0), g.in(0)});
          V q = g.op(OpKind::Mm, {g.in(1), g.in(0)});
          return std::vector<V>{g.op(OpKind::Add, {g.op(OpKind::Mul, {p, g.in(0)}), q})};
        }, 1e-5, 1e-5);
  // Column blocks over the pool's threads, rows of a block on one thread.
  const int threads = get_num_threads();
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    Tensor pa = random_tensor({64, 128}, kFloat), pb = random_tensor({128, 300}, kFloat);
    check(
        fmt::format("[64, 128] x [128, 300] on {} thread(s)", t), {pa, pb},
        [](GroupBuilder& g) {
          return std::vector<V>{g.op(OpKind::Tanh, {g.op(OpKind::Mm, {g.in(0), g.in(1)})})};
        },
        1e-5, 1e-5);
  }
  set_num_threads(threads);
}

// The kernel runs the rows of the dim before the inner one itself; the launcher splits kept
// outer dims and kept rows into tasks (a task may start and end inside an outer index's rows)
// and hands reduced rows to one call. Layouts of two and three dims that do not coalesce
// (broadcasts, reductions), on 1-3 threads with task grains down to one row.
TEST(FusedKernel, RowsSplitIntoTasksAndReducedInOrder) {
  const int threads = get_num_threads();
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    for (int64_t grain : {0, 1, 50}) {
      const std::string at = fmt::format(" on {} thread(s), grain {}", t, grain);
      Tensor x = random_tensor({13, 21}, kFloat), b = random_tensor({21}, kFloat);
      check(
          "[13, 21] + [21]" + at, {x, b},
          [](GroupBuilder& g) {
            return std::vector<V>{g.op(OpKind::Exp, {g.op(OpKind::Add, {g.in(0), g.in(1)})})};
          },
          1e-6, 1e-6, 0, grain);
      Tensor y = random_tensor({3, 7, 9}, kDouble), c = random_tensor({7, 1}, kDouble);
      check(
          "[3, 7, 9] * [7, 1]" + at, {y, c},
          [](GroupBuilder& g) {
            return std::vector<V>{g.op(OpKind::Mul, {g.in(0), g.in(1)})};
          },
          1e-12, 1e-12, 0, grain);
      for (const L& dims : {L{0}, L{1}, L{0, 1}, L{0, 2}, L{1, 2}}) {
        check(
            fmt::format("sum over {} of [3, 7, 9] * [9]", dims) + at,
            {y, random_tensor({9}, kDouble)},
            [dims](GroupBuilder& g) {
              V m = g.op(OpKind::Mul, {g.in(0), g.in(1)});
              return std::vector<V>{g.op(OpKind::Sum, {m, IValue(dims), IValue(false)}), m};
            },
            1e-12, 1e-12, 0, grain);
      }
    }
  }
  set_num_threads(threads);
}

TEST(FusedKernel, ProgramsOutsideTheLoweringAreRefused) {
  Tensor h = random_tensor({4}, kHalf);
  Built bt = build({h}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Neg, {g.in(0)})};
  });
  std::string why;
  EXPECT_FALSE(codegen::llvm::lower_group(*bt.group, &why).has_value());
  EXPECT_NE(why.find("float16"), std::string::npos) << why;
  Tensor i = random_tensor({4}, kLong, 1, 4);
  Built bt2 = build({i, i}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Remainder, {g.in(0), g.in(1)})};
  });
  EXPECT_FALSE(codegen::llvm::lower_group(*bt2.group, &why).has_value());
  EXPECT_NE(why.find("remainder"), std::string::npos) << why;
  Tensor li = random_tensor({3, 3}, kLong, -3, 3);
  Built bt3 = build({li, li}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Neg, {g.op(OpKind::Mm, {g.in(0), g.in(1)})})};
  });
  EXPECT_FALSE(codegen::llvm::lower_group(*bt3.group, &why).has_value());
  EXPECT_NE(why.find("mm gives dtype int64"), std::string::npos) << why;
  Tensor f = random_tensor({3, 3}, kFloat);
  Built bt4 = build({f, f}, [](GroupBuilder& g) {
    return std::vector<V>{g.op(OpKind::Mm, {g.op(OpKind::Exp, {g.in(0)}), g.in(1)})};
  });
  EXPECT_FALSE(codegen::llvm::lower_group(*bt4.group, &why).has_value());
  EXPECT_NE(why.find("not a 2-D matrix of the group's inputs"), std::string::npos) << why;
}

}  // namespace
}  // namespace kiln::testing
