// Example arguments for every row of the op table, shared by the suites that sweep all ops (the
// interpreter against eager, the shape rules of the passes against eager results). A row without
// cases makes those sweeps fail, naming the op.
#pragma once

#include <kiln/ops/op_kind.h>

#include <vector>

#include "test_util.h"

namespace kiln::testing {

using OpArgs = std::vector<IValue>;
using ops::OpKind;

inline Tensor f32(IntArrayRef sizes) { return random_tensor(sizes, kFloat); }
inline Tensor ints(IntArrayRef sizes, double lo, double hi) {
  return random_tensor(sizes, kLong, lo, hi);
}
inline Tensor index_in(IntArrayRef sizes, int64_t n) { return ints(sizes, 0, n - 0.01); }
inline const Device kCpu(kCPU);

inline std::vector<OpArgs> unary_cases(OpKind k) {
  std::vector<OpArgs> cases = {{f32({3, 4})}, {non_contiguous(f32({3, 4}))}};
  if (!ops::op_info(k).has(ops::kFloatOnly)) cases.push_back({ints({5}, -3, 3)});
  return cases;
}

inline std::vector<OpArgs> binary_cases(OpKind k) {
  std::vector<OpArgs> cases = {{f32({3, 4}), f32({3, 4})},
                               {f32({3, 4}), f32({3, 1})},
                               {non_contiguous(f32({2, 3})), 1.5},
                               {2, f32({4})}};
  // Integers away from zero: integer division and remainder by zero are errors.
  cases.push_back({ints({6}, 1, 4), ints({6}, 1, 4)});
  if (k == OpKind::LogicalAnd || k == OpKind::Eq)
    cases.push_back({random_tensor({5}, kBool), random_tensor({5}, kBool)});
  return cases;
}

inline std::vector<OpArgs> reduce_cases(OpKind k) {
  using L = std::vector<int64_t>;
  if (k == OpKind::All || k == OpKind::Any)
    return {{random_tensor({3, 4}, kBool), L{1}, true}, {random_tensor({3, 4}, kBool), L{}, false}};
  return {{f32({3, 4}), L{1}, true},
          {f32({2, 3, 4}), L{0, 2}, false},
          {f32({3, 4}), L{}, false},
          {ints({3, 4}, -3, 3), L{0}, false}};
}

// The cases of one op; empty when the op has none (the sweep then fails, naming the op).
inline std::vector<OpArgs> op_cases(OpKind k) {
  using L = std::vector<int64_t>;
  const IValue none;
  switch (k) {
#define KILN_UNARY_OP(Name, fn, r, t) \
  case OpKind::Name:                  \
    return unary_cases(k);
#define KILN_BINARY_OP(Name, fn, r, t) \
  case OpKind::Name:                   \
    return binary_cases(k);
#define KILN_REDUCE_OP(Name, fn, r, t) \
  case OpKind::Name:                   \
    return reduce_cases(k);
#include "kiln/ops/ops.def"
    case OpKind::Argmax:
    case OpKind::Argmin:
      return {{f32({3, 4}), 1, false}, {f32({3, 4}), none, true}};
    case OpKind::Where: {
      Tensor c = random_tensor({3, 4}, kBool);
      return {{c, f32({3, 4}), f32({4})}, {c, f32({3, 4}), 2.5}, {c, 1, ints({3, 4}, 0, 9)}};
    }
    case OpKind::Copy:
      return {{non_contiguous(f32({3, 4}))}, {ints({2}, 0, 5)}};
    case OpKind::Cast:
      return {{f32({3, 4}), kDouble}, {f32({3, 4}), kInt}, {f32({2}), kBool}};
    case OpKind::Assign:
      return {{f32({3, 4}), f32({4})}, {ints({2, 2}, 0, 4), 3.5}};
    case OpKind::View:
      return {{f32({3, 4}), L{4, 3}}, {f32({3, 4}), L{-1}}};
    case OpKind::Permute:
      return {{f32({2, 3, 4}), L{2, 0, 1}}};
    case OpKind::Expand:
      return {{f32({3, 1}), L{2, 3, 4}}};
    case OpKind::Slice:
      return {{f32({3, 6}), 1, 1, 5, 2}};
    case OpKind::Select:
      return {{f32({3, 4}), 0, 1}, {f32({3, 4}), 1, -1}};
    case OpKind::UnfoldView:
      return {{f32({3, 6}), 1, 2, 2}};
    case OpKind::AsStrided:
      return {{f32({3, 4}), L{2, 2}, L{4, 1}, 1}};
    case OpKind::Cumsum:
      return {{f32({3, 4}), 1}, {ints({5}, 0, 3), 0}};
    case OpKind::Softmax:
    case OpKind::LogSoftmax:
      return {{f32({3, 4}), 1}, {f32({3, 4}), 0}};
    case OpKind::Mm:
      return {{f32({3, 4}), f32({4, 5})}, {f32({4, 3}).t(), f32({4, 2})}};
    case OpKind::Bmm:
      return {{f32({2, 3, 4}), f32({2, 4, 5})}};
    case OpKind::Addmm:
      return {{f32({5}), f32({3, 4}), f32({4, 5}), 0.5, 2.0}};
    case OpKind::Conv2d:
      return {{f32({1, 2, 5, 5}), f32({3, 2, 3, 3}), f32({3}), L{1, 1}, L{1, 1}, L{1, 1}, 1},
              {f32({2, 4, 6, 6}), f32({2, 2, 3, 3}), none, L{2, 2}, L{0, 0}, L{1, 1}, 2}};
    case OpKind::MaxPool2d:
      return {{f32({1, 2, 5, 5}), L{2, 2}, L{2, 2}, L{0, 0}, L{1, 1}, false}};
    case OpKind::AvgPool2d:
      return {{f32({1, 2, 5, 5}), L{2, 2}, L{2, 2}, L{0, 0}, false, true, none},
              {f32({1, 2, 5, 5}), L{3, 3}, L{1, 1}, L{1, 1}, true, false, 3}};
    case OpKind::Im2col:
      return {{f32({1, 2, 4, 4}), L{2, 2}, L{1, 1}, L{0, 0}, L{1, 1}}};
    case OpKind::Col2im:
      return {{f32({1, 8, 9}), L{4, 4}, L{2, 2}, L{1, 1}, L{0, 0}, L{1, 1}},
              {f32({8, 4}), L{3, 3}, L{2, 2}, L{1, 1}, L{1, 1}, L{2, 2}}};
    case OpKind::MaxPool2dBackward:
      return {{f32({1, 2, 2, 2}), f32({1, 2, 5, 5}), L{2, 2}, L{2, 2}, L{0, 0}, L{1, 1}, false}};
    case OpKind::AvgPool2dBackward:
      return {{f32({1, 2, 3, 3}), f32({1, 2, 5, 5}), L{3, 3}, L{2, 2}, L{1, 1}, true, false, none}};
    case OpKind::Cat:
      return {{std::vector<Tensor>{f32({2, 3}), f32({1, 3})}, 0},
              {std::vector<Tensor>{f32({2, 3}), f32({2, 1})}, -1}};
    case OpKind::IndexSelect:
      return {{f32({3, 4}), 0, index_in({5}, 3)}};
    case OpKind::Gather:
      return {{f32({3, 4}), 1, index_in({3, 2}, 4)}};
    case OpKind::Scatter:
      return {{f32({3, 4}), 1, index_in({3, 2}, 4), f32({3, 2})},
              {f32({3, 4}), 0, index_in({2, 4}, 3), 5.0}};
    case OpKind::ScatterAdd:
      return {{f32({3, 4}), 1, index_in({3, 6}, 4), f32({3, 6})}};
    case OpKind::MaskedFill:
      return {{f32({3, 4}), random_tensor({4}, kBool), 0.5}};
    case OpKind::Index:
      return {{f32({3, 4}), std::vector<Tensor>{index_in({5}, 3)}},
              {f32({3, 4}), std::vector<Tensor>{Tensor(), index_in({2}, 4)}}};
    case OpKind::IndexPut:
      return {{f32({3, 4}), std::vector<Tensor>{index_in({2}, 3)}, f32({2, 4}), false},
              {f32({3, 4}), std::vector<Tensor>{Tensor(), index_in({6}, 4)}, f32({3, 6}), true}};
    case OpKind::Sort:
      return {{f32({3, 4}), 1, false}, {f32({3, 4}), 0, true}};
    case OpKind::Topk:
      return {{f32({3, 4}), 2, 1, true, true}, {f32({3, 4}), 1, 0, false, true}};
    case OpKind::Full:
      return {
          {L{2, 3}, 1.5, kFloat, kCpu}, {L{4}, int64_t{7}, kLong, kCpu}, {L{}, true, kBool, kCpu}};
    case OpKind::Arange:
      return {{0, 5, 1, kLong, kCpu}, {0.0, 1.0, 0.25, kFloat, kCpu}, {3, -3, -2, kInt, kCpu}};
    case OpKind::Linspace:
      return {{0, 1, 5, kFloat, kCpu}, {-1.5, 2.5, 1, kDouble, kCpu}};
    case OpKind::Eye:
      return {{3, 4, kFloat, kCpu}, {2, 2, kLong, kCpu}};
    case OpKind::Rand:
    case OpKind::Randn:
      return {{L{2, 3}, kFloat, kCpu}, {L{5}, kDouble, kCpu}};
    case OpKind::Randint:
      return {{0, 10, L{5}, kLong, kCpu}, {-3, 3, L{2, 2}, kInt, kCpu}};
  }
  return {};
}

}  // namespace kiln::testing
