// gradcheck of every differentiable primitive of the op table (through the boxed ops::call, one
// case per row: a new row without a case fails OpTableIsCovered), with broadcasting,
// non-contiguous inputs and number operands, plus second derivatives; then the composites of
// the public API (mean, var, softmax, matmul, linear, ...) and views/indexing spellings.
#include <map>

#include "test_util.h"

namespace kiln::testing {
namespace {

using autograd::variable_list;
using ops::OpKind;

Tensor in(IntArrayRef sizes, double lo = -2, double hi = 2) {
  return random_tensor(sizes, kDouble, lo, hi).requires_grad_();
}
// Values bounded away from 0 (kinks, poles): |x| in [0.2, 2].
Tensor away_from_zero(IntArrayRef sizes) {
  Tensor m = random_tensor(sizes, kDouble, 0.2, 2);
  Tensor s = random_tensor(sizes, kDouble, -1, 1).sign();
  s = where(eq(s, 0), 1.0, s);
  return (m * s).detach().requires_grad_();
}
Tensor nc(const Tensor& t) {  // the same values, non-contiguous, still a leaf requiring grad
  return non_contiguous(t.detach()).requires_grad_();
}
Tensor ints(std::vector<int64_t> v, IntArrayRef sizes) {
  return tensor(TensorDataContainer(v), kLong).view(sizes);
}

struct Case {
  std::string name;
  std::function<variable_list()> inputs;
  // Builds the boxed arguments of the op from the (perturbed) inputs.
  std::function<std::vector<IValue>(const variable_list&)> args;
  bool gradgrad = true;
  autograd::GradcheckOptions opts{};
};

std::multimap<OpKind, Case>& cases() {
  static std::multimap<OpKind, Case> m;
  return m;
}

void add(OpKind k, Case c) { cases().emplace(k, std::move(c)); }

void unary(OpKind k, std::function<Tensor(IntArrayRef)> make, bool gradgrad = true) {
  add(k, {"contiguous", [=] { return variable_list{make({3, 4})}; },
           [](const variable_list& v) { return std::vector<IValue>{v[0]}; }, gradgrad});
  add(k, {"non-contiguous", [=] { return variable_list{nc(make({2, 3}))}; },
           [](const variable_list& v) { return std::vector<IValue>{v[0]}; }, gradgrad});
  add(k, {"0-dim", [=] { return variable_list{make({})}; },
           [](const variable_list& v) { return std::vector<IValue>{v[0]}; }, gradgrad});
}

void binary(OpKind k, std::function<Tensor(IntArrayRef)> ma, std::function<Tensor(IntArrayRef)> mb,
            double scalar_other, double scalar_self) {
  add(k, {"broadcast", [=] { return variable_list{ma({3, 1}), mb({4})}; },
           [](const variable_list& v) { return std::vector<IValue>{v[0], v[1]}; }});
  add(k, {"same shape non-contiguous", [=] { return variable_list{nc(ma({2, 3})), mb({2, 3})}; },
           [](const variable_list& v) { return std::vector<IValue>{v[0], v[1]}; }});
  add(k, {"number other", [=] { return variable_list{ma({5})}; },
           [=](const variable_list& v) { return std::vector<IValue>{v[0], scalar_other}; }});
  add(k, {"number self", [=] { return variable_list{mb({5})}; },
           [=](const variable_list& v) { return std::vector<IValue>{scalar_self, v[0]}; }});
}

auto any_values = [](IntArrayRef s) { return in(s); };
auto positive = [](IntArrayRef s) { return in(s, 0.3, 2.5); };
auto nonzero = [](IntArrayRef s) { return away_from_zero(s); };

void register_cases() {
  static bool done = false;
  if (done) return;
  done = true;
  // ---- unary
  for (OpKind k : {OpKind::Neg, OpKind::Exp, OpKind::Exp2, OpKind::Expm1, OpKind::Sin,
                   OpKind::Cos, OpKind::Tanh, OpKind::Sigmoid, OpKind::Gelu, OpKind::Silu,
                   OpKind::Erf})
    unary(k, any_values);
  for (OpKind k : {OpKind::Log, OpKind::Log2, OpKind::Sqrt, OpKind::Rsqrt, OpKind::Log1p})
    unary(k, positive);
  for (OpKind k : {OpKind::Abs, OpKind::Relu, OpKind::Reciprocal}) unary(k, nonzero);
  unary(OpKind::Tan, [](IntArrayRef s) { return in(s, -1, 1); });
  // Piecewise constant: zero gradient away from the jumps (random values never sit on them).
  for (OpKind k : {OpKind::Floor, OpKind::Ceil, OpKind::Round, OpKind::Sign}) unary(k, nonzero);

  // ---- binary
  binary(OpKind::Add, any_values, any_values, 1.5, -0.5);
  binary(OpKind::Sub, any_values, any_values, 1.5, -0.5);
  binary(OpKind::Mul, any_values, any_values, 1.5, -0.5);
  binary(OpKind::Div, any_values, nonzero, 1.5, -0.5);
  binary(OpKind::Pow, positive, any_values, 2.5, 1.7);
  add(OpKind::Pow, {"integer exponent, negative base", [] { return variable_list{in({4})}; },
                    [](const variable_list& v) { return std::vector<IValue>{v[0], int64_t{3}}; }});
  binary(OpKind::Remainder, positive, positive, 0.7, 3.3);
  binary(OpKind::Maximum, any_values, any_values, 0.1, 0.2);
  binary(OpKind::Minimum, any_values, any_values, 0.1, 0.2);
  binary(OpKind::Atan2, any_values, nonzero, 1.5, -0.5);

  // ---- reductions
  for (OpKind k : {OpKind::Sum, OpKind::Prod, OpKind::Amax, OpKind::Amin}) {
    auto mk = k == OpKind::Prod ? std::function<Tensor(IntArrayRef)>(nonzero) : any_values;
    add(k, {"dim 1", [=] { return variable_list{mk({3, 4})}; },
            [](const variable_list& v) {
              return std::vector<IValue>{v[0], std::vector<int64_t>{1}, false};
            }});
    add(k, {"dims 0,2 keepdim", [=] { return variable_list{nc(mk({2, 3, 2}))}; },
            [](const variable_list& v) {
              return std::vector<IValue>{v[0], std::vector<int64_t>{0, 2}, true};
            }});
    add(k, {"all dims", [=] { return variable_list{mk({2, 3})}; },
            [](const variable_list& v) {
              return std::vector<IValue>{v[0], std::vector<int64_t>{0, 1}, false};
            }});
  }
  add(OpKind::Prod, {"one zero per slice, two zeros in one",
                     [] {
                       return variable_list{
                           tensor({{0.0, 1.5, -2.0}, {0.0, 0.0, 3.0}, {1.2, 0.7, 2.0}}, kDouble)
                               .requires_grad_()};
                     },
                     [](const variable_list& v) {
                       return std::vector<IValue>{v[0], std::vector<int64_t>{1}, false};
                     },
                     /*gradgrad=*/false});

  // ---- elementwise with three inputs, copies
  add(OpKind::Where, {"broadcast",
                      [] {
                        return variable_list{random_tensor({3, 1}, kBool), in({4}), in({3, 4})};
                      },
                      [](const variable_list& v) { return std::vector<IValue>{v[0], v[1], v[2]}; }});
  add(OpKind::Where, {"number other", [] { return variable_list{random_tensor({5}, kBool), in({5})}; },
                      [](const variable_list& v) { return std::vector<IValue>{v[0], v[1], 2.0}; }});
  add(OpKind::Copy, {"non-contiguous", [] { return variable_list{nc(in({3, 4}))}; },
                     [](const variable_list& v) { return std::vector<IValue>{v[0]}; }});
  add(OpKind::Cast, {"to float32 (float tolerances)",
                     [] { return variable_list{in({4})}; },
                     [](const variable_list& v) { return std::vector<IValue>{v[0], kFloat}; },
                     false, autograd::GradcheckOptions{1e-3, 1e-3, 1e-2}});
  add(OpKind::Assign, {"src broadcast", [] { return variable_list{in({2, 3}), in({3})}; },
                       [](const variable_list& v) { return std::vector<IValue>{v[0], v[1]}; }});

  // ---- views
  add(OpKind::View, {"split a dim", [] { return variable_list{in({2, 6})}; },
                     [](const variable_list& v) {
                       return std::vector<IValue>{v[0], std::vector<int64_t>{2, 2, 3}};
                     }});
  add(OpKind::Permute, {"3-d", [] { return variable_list{in({2, 3, 4})}; },
                        [](const variable_list& v) {
                          return std::vector<IValue>{v[0], std::vector<int64_t>{2, 0, 1}};
                        }});
  add(OpKind::Expand, {"new and size-1 dims", [] { return variable_list{in({3, 1})}; },
                       [](const variable_list& v) {
                         return std::vector<IValue>{v[0], std::vector<int64_t>{2, 3, 4}};
                       }});
  add(OpKind::Slice, {"step 2", [] { return variable_list{in({3, 7})}; },
                      [](const variable_list& v) {
                        return std::vector<IValue>{v[0], int64_t{1}, int64_t{1}, int64_t{6},
                                                   int64_t{2}};
                      }});
  add(OpKind::Select, {"middle", [] { return variable_list{nc(in({3, 4}))}; },
                       [](const variable_list& v) {
                         return std::vector<IValue>{v[0], int64_t{0}, int64_t{1}};
                       }});
  add(OpKind::UnfoldView, {"overlapping windows", [] { return variable_list{in({2, 7})}; },
                           [](const variable_list& v) {
                             return std::vector<IValue>{v[0], int64_t{1}, int64_t{3}, int64_t{2}};
                           }});
  add(OpKind::AsStrided, {"overlapping", [] { return variable_list{in({6})}; },
                          [](const variable_list& v) {
                            return std::vector<IValue>{v[0], std::vector<int64_t>{3, 2},
                                                       std::vector<int64_t>{1, 2}, int64_t{0}};
                          }});

  // ---- scans, normalisations
  add(OpKind::Cumsum, {"dim 1", [] { return variable_list{in({3, 4})}; },
                       [](const variable_list& v) { return std::vector<IValue>{v[0], int64_t{1}}; }});
  for (OpKind k : {OpKind::Softmax, OpKind::LogSoftmax}) {
    add(k, {"last dim", [] { return variable_list{in({3, 4})}; },
            [](const variable_list& v) { return std::vector<IValue>{v[0], int64_t{1}}; }});
    add(k, {"outer dim", [] { return variable_list{nc(in({3, 2, 2}))}; },
            [](const variable_list& v) { return std::vector<IValue>{v[0], int64_t{0}}; }});
  }

  // ---- library calls
  add(OpKind::Mm, {"transposed rhs", [] { return variable_list{in({3, 4}), nc(in({4, 2}))}; },
                   [](const variable_list& v) { return std::vector<IValue>{v[0], v[1]}; }});
  add(OpKind::Bmm, {"batch 2", [] { return variable_list{in({2, 3, 4}), in({2, 4, 2})}; },
                    [](const variable_list& v) { return std::vector<IValue>{v[0], v[1]}; }});
  add(OpKind::Addmm, {"row bias, beta/alpha",
                      [] { return variable_list{in({2}), in({3, 4}), in({4, 2})}; },
                      [](const variable_list& v) {
                        return std::vector<IValue>{v[0], v[1], v[2], 0.5, 1.5};
                      }});
  add(OpKind::Conv2d, {"stride, padding, bias",
                       [] { return variable_list{in({2, 2, 5, 5}), in({3, 2, 3, 3}), in({3})}; },
                       [](const variable_list& v) {
                         return std::vector<IValue>{v[0], v[1], v[2], std::vector<int64_t>{2, 1},
                                                    std::vector<int64_t>{1, 0},
                                                    std::vector<int64_t>{1, 1}, int64_t{1}};
                       }});
  add(OpKind::Conv2d, {"groups, dilation, no bias, unbatched",
                       [] { return variable_list{in({4, 6, 6}), in({2, 2, 2, 2})}; },
                       [](const variable_list& v) {
                         return std::vector<IValue>{v[0], v[1], IValue(), std::vector<int64_t>{1},
                                                    std::vector<int64_t>{1},
                                                    std::vector<int64_t>{2}, int64_t{2}};
                       }});

  // ---- windows
  add(OpKind::MaxPool2d, {"overlapping, padding, ceil",
                          [] { return variable_list{in({1, 2, 5, 5})}; },
                          [](const variable_list& v) {
                            return std::vector<IValue>{
                                v[0], std::vector<int64_t>{3, 3}, std::vector<int64_t>{2, 2},
                                std::vector<int64_t>{1, 1}, std::vector<int64_t>{1, 1}, true};
                          }});
  add(OpKind::MaxPool2d, {"dilation, unbatched", [] { return variable_list{in({2, 6, 6})}; },
                          [](const variable_list& v) {
                            return std::vector<IValue>{
                                v[0], std::vector<int64_t>{2}, std::vector<int64_t>{},
                                std::vector<int64_t>{0}, std::vector<int64_t>{2}, false};
                          }});
  add(OpKind::AvgPool2d, {"padding excluded, ceil",
                          [] { return variable_list{in({1, 2, 5, 5})}; },
                          [](const variable_list& v) {
                            return std::vector<IValue>{v[0], std::vector<int64_t>{3},
                                                       std::vector<int64_t>{2},
                                                       std::vector<int64_t>{1}, true, false, IValue()};
                          }});
  add(OpKind::AvgPool2d, {"divisor override", [] { return variable_list{in({2, 4, 4})}; },
                          [](const variable_list& v) {
                            return std::vector<IValue>{v[0], std::vector<int64_t>{2},
                                                       std::vector<int64_t>{}, std::vector<int64_t>{0},
                                                       false, true, int64_t{3}};
                          }});
  add(OpKind::Im2col, {"dilation, padding, stride", [] { return variable_list{in({1, 2, 5, 4})}; },
                       [](const variable_list& v) {
                         return std::vector<IValue>{v[0], std::vector<int64_t>{2, 2},
                                                    std::vector<int64_t>{2, 1},
                                                    std::vector<int64_t>{1, 0},
                                                    std::vector<int64_t>{1, 2}};
                       }});
  add(OpKind::Col2im, {"overlapping blocks", [] { return variable_list{in({1, 8, 9})}; },
                       [](const variable_list& v) {
                         return std::vector<IValue>{v[0], std::vector<int64_t>{4, 4},
                                                    std::vector<int64_t>{2, 2},
                                                    std::vector<int64_t>{1, 1},
                                                    std::vector<int64_t>{0, 0},
                                                    std::vector<int64_t>{1, 1}};
                       }});
  add(OpKind::MaxPool2dBackward,
      {"grad_output", [] { return variable_list{in({1, 2, 3, 3}), in({1, 2, 5, 5}).detach()}; },
       [](const variable_list& v) {
         return std::vector<IValue>{v[0], v[1], std::vector<int64_t>{3}, std::vector<int64_t>{2},
                                    std::vector<int64_t>{1}, std::vector<int64_t>{1}, false};
       }});
  add(OpKind::AvgPool2dBackward,
      {"grad_output", [] { return variable_list{in({1, 2, 3, 3}), in({1, 2, 5, 5}).detach()}; },
       [](const variable_list& v) {
         return std::vector<IValue>{v[0], v[1], std::vector<int64_t>{3}, std::vector<int64_t>{2},
                                    std::vector<int64_t>{1}, true, true, IValue()};
       }});

  // ---- joining and indexing
  add(OpKind::Cat, {"three pieces, dim 1",
                    [] { return variable_list{in({2, 1}), nc(in({2, 3})), in({2, 2})}; },
                    [](const variable_list& v) {
                      return std::vector<IValue>{std::vector<Tensor>{v[0], v[1], v[2]}, int64_t{1}};
                    }});
  add(OpKind::IndexSelect, {"repeated indices", [] { return variable_list{in({3, 4})}; },
                            [](const variable_list& v) {
                              return std::vector<IValue>{v[0], int64_t{1}, ints({3, 0, 3, 1}, {4})};
                            }});
  add(OpKind::Gather, {"dim 1", [] { return variable_list{in({3, 4})}; },
                       [](const variable_list& v) {
                         return std::vector<IValue>{v[0], int64_t{1},
                                                    ints({0, 3, 3, 1, 2, 2}, {3, 2})};
                       }});
  add(OpKind::Scatter, {"src", [] { return variable_list{in({3, 4}), in({2, 2})}; },
                        [](const variable_list& v) {
                          return std::vector<IValue>{v[0], int64_t{1}, ints({0, 2, 1, 3}, {2, 2}),
                                                     v[1]};
                        }});
  add(OpKind::Scatter, {"value", [] { return variable_list{in({3, 4})}; },
                        [](const variable_list& v) {
                          return std::vector<IValue>{v[0], int64_t{0}, ints({0, 2, 1, 0}, {1, 4}),
                                                     2.5};
                        }});
  add(OpKind::ScatterAdd, {"repeated targets", [] { return variable_list{in({3, 4}), in({2, 3})}; },
                           [](const variable_list& v) {
                             return std::vector<IValue>{v[0], int64_t{1},
                                                        ints({0, 0, 1, 3, 3, 3}, {2, 3}), v[1]};
                           }});
  add(OpKind::MaskedFill, {"broadcast mask",
                           [] { return variable_list{in({3, 4}), random_tensor({4}, kBool)}; },
                           [](const variable_list& v) {
                             return std::vector<IValue>{v[0], v[1], -1.0};
                           }});
  add(OpKind::Index, {"two index tensors, a whole dim between",
                      [] { return variable_list{in({3, 2, 4})}; },
                      [](const variable_list& v) {
                        return std::vector<IValue>{
                            v[0], std::vector<Tensor>{ints({2, 0, 2}, {3}), Tensor(),
                                                      ints({1, 3, 1}, {3})}};
                      }});
  add(OpKind::IndexPut, {"accumulate with repeats",
                         [] { return variable_list{in({4, 3}), in({3, 3})}; },
                         [](const variable_list& v) {
                           return std::vector<IValue>{v[0], std::vector<Tensor>{ints({1, 3, 1}, {3})},
                                                      v[1], true};
                         }});
  add(OpKind::IndexPut, {"overwrite, broadcast values",
                         [] { return variable_list{in({4, 3}), in({3})}; },
                         [](const variable_list& v) {
                           return std::vector<IValue>{v[0], std::vector<Tensor>{ints({0, 2}, {2})},
                                                      v[1], false};
                         }});
  add(OpKind::Sort, {"descending dim 0", [] { return variable_list{in({4, 3})}; },
                     [](const variable_list& v) {
                       return std::vector<IValue>{v[0], int64_t{0}, true};
                     }});
  add(OpKind::Topk, {"k 2 of 5", [] { return variable_list{nc(in({3, 5}))}; },
                     [](const variable_list& v) {
                       return std::vector<IValue>{v[0], int64_t{2}, int64_t{1}, true, true};
                     }});
}

// Runs one case: the op's tensor results (floating ones) as the function's outputs.
void run_case(OpKind k, const Case& c) {
  SCOPED_TRACE(std::string(ops::op_info(k).name) + ": " + c.name);
  variable_list inputs = c.inputs();
  auto fn = [&](const variable_list& v) {
    std::vector<IValue> r = ops::call(k, c.args(v));
    variable_list outs;
    for (const IValue& x : r)
      if (x.is_tensor() && is_floating_point(x.toTensor().dtype())) outs.push_back(x.toTensor());
    return outs;
  };
  autograd::GradcheckOptions o = c.opts;
  EXPECT_TRUE(autograd::gradcheck(fn, inputs, o));
  if (c.gradgrad) {
    o.check_grad_grad = true;
    EXPECT_TRUE(autograd::gradcheck(fn, inputs, o));
  }
}

TEST(Gradcheck, OpTableIsCovered) {
  register_cases();
  for (int i = 0; i < ops::num_ops(); ++i) {
    const auto k = static_cast<OpKind>(i);
    const ops::OpInfo& info = ops::op_info(k);
    if (info.has(ops::kNonDiff)) {
      EXPECT_EQ(cases().count(k), 0u) << info.name << " is marked kNonDiff but has cases";
      continue;
    }
    EXPECT_GT(cases().count(k), 0u) << "no gradcheck case for differentiable op " << info.name;
  }
}

class GradcheckOp : public ::testing::TestWithParam<int> {};

TEST_P(GradcheckOp, MatchesFiniteDifferences) {
  register_cases();
  const auto k = static_cast<OpKind>(GetParam());
  auto [lo, hi] = cases().equal_range(k);
  for (auto it = lo; it != hi; ++it) run_case(k, it->second);
}

INSTANTIATE_TEST_SUITE_P(AllOps, GradcheckOp, ::testing::Range(0, ops::num_ops()),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return std::string(ops::op_info(static_cast<OpKind>(p.param)).name);
                         });

TEST(Gradcheck, NonDifferentiableOpsGiveNoHistory) {
  Tensor x = in({4});
  for (int i = 0; i < ops::num_ops(); ++i) {
    const auto k = static_cast<OpKind>(i);
    if (!ops::op_info(k).has(ops::kNonDiff)) continue;
    const ops::Schema& s = ops::op_schema(k);
    if (s.params.empty() || s.params[0].type != ops::ArgType::Operand) continue;
    // comparisons and logical ops: bool results never require grad
    Tensor r = ops::call(k, {x, x * 0.5})[0].toTensor();
    EXPECT_FALSE(r.requires_grad()) << ops::op_info(k).name;
  }
}

// ---- composites of the public API ---------------------------------------------------------

void check(const std::string& what, const std::function<Tensor(const variable_list&)>& f,
           const variable_list& inputs, bool gradgrad = true) {
  SCOPED_TRACE(what);
  auto fn = [&](const variable_list& v) { return variable_list{f(v)}; };
  EXPECT_TRUE(autograd::gradcheck(fn, inputs));
  if (gradgrad) {
    EXPECT_TRUE(autograd::gradcheck(fn, inputs, {.check_grad_grad = true}));
  }
}

TEST(Gradcheck, ReductionComposites) {
  check("mean dims", [](const variable_list& v) { return v[0].mean({0, 2}, true); }, {in({2, 3, 2})});
  check("mean all", [](const variable_list& v) { return v[0].mean(); }, {nc(in({3, 2}))});
  check("var", [](const variable_list& v) { return v[0].var({1}); }, {in({3, 4})});
  check("std biased keepdim", [](const variable_list& v) { return v[0].std({0}, false, true); },
        {in({4, 3})});
  check("norm 2", [](const variable_list& v) { return v[0].norm(); }, {in({3, 4})});
  check("norm 3 dim", [](const variable_list& v) { return v[0].norm(3, {1}); }, {nonzero({2, 3})});
  check("norm 1", [](const variable_list& v) { return v[0].norm(1, {0}); }, {nonzero({3, 2})});
  check("logsumexp", [](const variable_list& v) { return v[0].logsumexp({1}); }, {in({3, 4})});
  check("max dim", [](const variable_list& v) { return std::get<0>(v[0].max(1, true)); },
        {in({3, 4})});
  check("min all", [](const variable_list& v) { return v[0].min(); }, {in({3, 4})});
  check("sum dtype", [](const variable_list& v) { return v[0].sum({1}, false, kDouble); },
        {in({2, 3})});
  check("cumsum", [](const variable_list& v) { return v[0].cumsum(0); }, {in({4, 2})});
}

TEST(Gradcheck, LinearAlgebraComposites) {
  check("matmul 1d 1d", [](const variable_list& v) { return v[0].matmul(v[1]); }, {in({4}), in({4})});
  check("matmul 2d 1d", [](const variable_list& v) { return v[0].matmul(v[1]); },
        {in({3, 4}), in({4})});
  check("matmul 1d 3d", [](const variable_list& v) { return v[0].matmul(v[1]); },
        {in({3}), in({2, 3, 2})});
  check("matmul batched broadcast", [](const variable_list& v) { return v[0].matmul(v[1]); },
        {in({2, 1, 3, 4}), in({3, 4, 2})});
  check("matmul batched x 2d", [](const variable_list& v) { return v[0].matmul(v[1]); },
        {in({2, 3, 4}), in({4, 2})});
  check("linear 3d input", [](const variable_list& v) { return linear(v[0], v[1], v[2]); },
        {in({2, 3, 4}), in({5, 4}), in({5})});
  check("linear no bias", [](const variable_list& v) { return linear(v[0], v[1]); },
        {in({3, 4}), nc(in({2, 4}))});
  check("dot", [](const variable_list& v) { return dot(v[0], v[1]); }, {in({5}), in({5})});
}

TEST(Gradcheck, ElementwiseComposites) {
  check("clamp", [](const variable_list& v) { return v[0].clamp(-0.5, 0.7); }, {in({10})});
  check("add alpha", [](const variable_list& v) { return v[0].add(v[1], 2.5); }, {in({3}), in({3})});
  check("square", [](const variable_list& v) { return v[0].square(); }, {in({3})});
  check("softmax api", [](const variable_list& v) { return softmax(v[0], -1); }, {in({2, 5})});
  check("log_softmax api", [](const variable_list& v) { return log_softmax(v[0], 0); }, {in({3, 2})});
  check("scalar on the left", [](const variable_list& v) { return 2.0 / (1.0 - v[0]); },
        {in({4}, -0.5, 0.5)});
}

TEST(Gradcheck, ViewsAndIndexing) {
  using indexing::None;
  using indexing::Slice;
  check("transpose", [](const variable_list& v) { return v[0].transpose(0, 1) * 2; }, {in({2, 3})});
  check("t of 1d", [](const variable_list& v) { return v[0].t() * 2; }, {in({3})});
  check("narrow", [](const variable_list& v) { return v[0].narrow(1, 1, 2); }, {in({2, 4})});
  check("flatten", [](const variable_list& v) { return v[0].flatten(); }, {nc(in({2, 3}))});
  check("reshape copy", [](const variable_list& v) { return v[0].t().reshape({-1}); },
        {in({2, 3})});
  check("squeeze unsqueeze", [](const variable_list& v) { return v[0].squeeze(1).unsqueeze(0); },
        {in({3, 1, 2})});
  check("expand_as", [](const variable_list& v) { return v[0].expand_as(v[1]) * v[1]; },
        {in({1, 3}), in({2, 3})});
  check("index slices", [](const variable_list& v) { return v[0].index({Slice(1, None), 0}); },
        {in({3, 2})});
  check("index tensor", [](const variable_list& v) { return v[0].index({ints({2, 2, 0}, {3})}); },
        {in({3, 2})});
  check("index mask", [](const variable_list& v) { return v[0].index({v[0].detach() > 0}); },
        {nonzero({3, 2})});
  check("stack", [](const variable_list& v) { return stack({v[0], v[1]}, 1); }, {in({2}), in({2})});
  check("split/chunk", [](const variable_list& v) { return v[0].chunk(3, 1)[1] * v[0].split(2, 1)[0]; },
        {in({2, 6})});
  check("embedding", [](const variable_list& v) { return embedding(v[0], ints({1, 1, 0}, {3})); },
        {in({3, 2})});
}

TEST(Gradcheck, InPlaceSpellings) {
  check("index_put_ via setitem",
        [](const variable_list& v) {
          Tensor t = v[0] * 1;
          t.index_put_({ints({0, 2}, {2})}, v[1]);
          return t;
        },
        {in({3, 2}), in({2, 2})});
  check("slice copy_",
        [](const variable_list& v) {
          Tensor t = v[0] * 1;
          t.slice(0, 0, 2).copy_(v[1] * v[1]);
          return t;
        },
        {in({3}), in({2})});
  check("masked_fill_ then relu_",
        [](const variable_list& v) {
          Tensor t = v[0] * 2;
          t.masked_fill_(v[0].detach() > 1, 0.0);
          t.relu_();
          return t;
        },
        {nonzero({5})});
  check("scatter_add_ into a non-leaf",
        [](const variable_list& v) {
          Tensor t = v[0] * 2;  // (exp would save its result, which scatter_add_ overwrites)
          t.scatter_add_(0, ints({0, 0, 2}, {3}), v[1]);
          return t;
        },
        {in({3}), in({3})});
}

}  // namespace
}  // namespace kiln::testing
