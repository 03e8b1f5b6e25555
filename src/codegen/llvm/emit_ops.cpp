// emit_unary / emit_binary: the ops::scalar functor of a row, instantiated with Val.
#include "codegen/llvm/emit_ops.h"

#include <type_traits>

#include "codegen/llvm/vector_math.h"
#include "kiln/core/error.h"
#include "ops/scalar_ops.h"

namespace kiln::codegen::llvm {
namespace {

template <class F, class... A>
Val apply(ops::OpKind op, F f, const A&... args) {
  if constexpr (std::is_invocable_v<F, A...>) {
    return Val(f(args...));
  } else {
    KILN_FAIL("[codegen] {} has no LLVM lowering", ops::op_info(op).name);
  }
}

}  // namespace

Val numeric(const Val& v, const Val& like) { return v.is_mask() ? mask_to(v, like) : v; }

Val emit_unary(ops::OpKind op, const Val& a, const Interval& known) {
  // The math library's own forms where they beat the functor's formula: bounded arguments
  // (exp, tanh), and sigmoid's one-division form on exp(-|x|) <= 1 (within a few ulp of the
  // functor's 1 / (1 + exp(-x)), and more accurate).
  if (a.is_float()) {
    if (op == ops::OpKind::Exp) return exp(a, known);
    if (op == ops::OpKind::Tanh) return tanh(a, known);
    if (op == ops::OpKind::Sigmoid) return sigmoid(a);
  }
  switch (op) {
#define KILN_UNARY_OP(Name, fn, rule, traits) \
  case ops::OpKind::Name:                     \
    return apply(op, ops::scalar::Name{}, a);
#include "kiln/ops/ops.def"
    default:
      KILN_FAIL("[codegen] {} is not a unary op", ops::op_info(op).name);
  }
}

Val emit_binary(ops::OpKind op, const Val& a, const Val& b) {
  switch (op) {
#define KILN_BINARY_OP(Name, fn, rule, traits) \
  case ops::OpKind::Name:                      \
    return apply(op, ops::scalar::Name{}, a, b);
#include "kiln/ops/ops.def"
    default:
      KILN_FAIL("[codegen] {} is not a binary op", ops::op_info(op).name);
  }
}
}  // namespace kiln::codegen::llvm
