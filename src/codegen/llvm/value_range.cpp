// value_ranges: interval arithmetic over a kernel program, one forward sweep (programs are
// straight-line SSA). Only floating-point values get bounds; integer and bool values, and any
// operation without a rule here, get the whole line.
#include "codegen/llvm/value_range.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::codegen::llvm {
namespace {

using ops::OpKind;
constexpr double kInf = std::numeric_limits<double>::infinity();

// [lo, hi] moved outward by `rel` times each bound plus `abs`. Zero and infinite bounds stay:
// rounding is monotonic and keeps signs, so a value <= 0 stays <= 0.
Interval outward(Interval v, double rel, double abs) {
  auto out = [&](double x, double dir) {
    return std::isinf(x) || x == 0 ? x : x + dir * (std::fabs(x) * rel + abs);
  };
  return {out(v.lo, -1), out(v.hi, 1)};
}

// Widens [lo, hi] outward by a relative 2^-20 plus 2^-24 (more than one rounding of float32 or
// of the double arithmetic here, and than a denormal's rounding). A NaN bound (inf - inf,
// 0 * inf) makes the whole line.
Interval widen(double lo, double hi) {
  if (std::isnan(lo) || std::isnan(hi)) return {};
  return outward({lo, hi}, 0x1p-20, 0x1p-24);
}

// The result of an operation stored as t: float16/bfloat16 round more coarsely (relative 2^-8
// at worst), and any bound beyond t's largest finite value may be an overflow to infinity.
Interval in_dtype(Interval v, ScalarType t) {
  if (t == kHalf || t == kBFloat16) v = outward(v, 0x1p-7, 0x1p-14);
  const double big = t == kDouble     ? std::numeric_limits<double>::max()
                     : t == kHalf     ? 65504.0
                     : t == kBFloat16 ? 0x1.fep127
                                      : static_cast<double>(std::numeric_limits<float>::max());
  if (v.hi > big) v.hi = kInf;
  if (v.lo < -big) v.lo = -kInf;
  return v;
}

Interval hull(std::initializer_list<double> v) {
  double lo = kInf, hi = -kInf;
  for (double x : v) {
    if (std::isnan(x)) return {};
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  return widen(lo, hi);
}

Interval unary(OpKind op, const Interval& a) {
  switch (op) {
    case OpKind::Neg: return {-a.hi, -a.lo};
    case OpKind::Abs:
      if (a.lo >= 0) return a;
      if (a.hi <= 0) return {-a.hi, -a.lo};
      return {0, std::max(-a.lo, a.hi)};
    case OpKind::Relu: return {std::max(a.lo, 0.0), std::max(a.hi, 0.0)};
    case OpKind::Sigmoid: return {0, 1};
    case OpKind::Tanh: return {-1, 1};
    case OpKind::Exp: return widen(std::exp(a.lo), std::exp(a.hi));
    case OpKind::Exp2: return widen(std::exp2(a.lo), std::exp2(a.hi));
    case OpKind::Sqrt: return a.lo >= 0 ? widen(std::sqrt(a.lo), std::sqrt(a.hi)) : Interval{};
    case OpKind::Sin:
    case OpKind::Cos: return {-1, 1};
    case OpKind::Erf: return {-1, 1};
    case OpKind::Floor:
    case OpKind::Ceil:
    case OpKind::Round: return {std::floor(a.lo), std::ceil(a.hi)};
    case OpKind::Sign: return {a.lo > 0 ? 1.0 : a.lo == 0 ? 0.0 : -1.0,
                               a.hi < 0 ? -1.0 : a.hi == 0 ? 0.0 : 1.0};
    default: return {};
  }
}

Interval binary(OpKind op, const Interval& a, const Interval& b) {
  switch (op) {
    case OpKind::Add: return widen(a.lo + b.lo, a.hi + b.hi);
    case OpKind::Sub: return widen(a.lo - b.hi, a.hi - b.lo);
    case OpKind::Mul:
      return hull({a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi});
    case OpKind::Div:
      // Only a divisor bounded away from zero (and finite bounds, so no inf / inf).
      if (!(b.lo > 0 || b.hi < 0)) return {};
      return hull({a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi});
    case OpKind::Maximum: return {std::max(a.lo, b.lo), std::max(a.hi, b.hi)};
    case OpKind::Minimum: return {std::min(a.lo, b.lo), std::min(a.hi, b.hi)};
    default: return {};
  }
}

}  // namespace

std::vector<Interval> value_ranges(const KernelProgram& p) {
  std::vector<Interval> r(p.instrs.size());
  for (size_t i = 0; i < p.instrs.size(); ++i) {
    const KernelProgram::Instr& in = p.instrs[i];
    if (!is_floating_point(in.dtype)) continue;
    switch (in.kind) {
      case KernelProgram::Instr::Kind::Load:
      case KernelProgram::Instr::Kind::Dot:  // products: unbounded
        break;
      case KernelProgram::Instr::Kind::Const: {
        const double v = in.is_float_const ? in.fvalue : static_cast<double>(in.ivalue);
        if (!std::isnan(v)) r[i] = in_dtype(widen(v, v), in.dtype);
        break;
      }
      case KernelProgram::Instr::Kind::Op: {
        // Operands are converted to the compute dtype first: bounds carry over between float
        // dtypes (widened for the rounding), not from integers or bools.
        if (!is_floating_point(in.compute)) break;
        std::vector<Interval> a;
        bool known = true;
        for (int arg : in.args) {
          known = known && is_floating_point(p.instrs[arg].dtype);
          a.push_back(in_dtype(r[arg], in.compute));
        }
        if (!known) break;
        const ops::OpInfo& info = ops::op_info(in.op);
        Interval v;
        if (info.family == ops::OpFamily::Unary && a.size() == 1) v = unary(in.op, a[0]);
        else if (info.family == ops::OpFamily::Binary && a.size() == 2) v = binary(in.op, a[0], a[1]);
        else if (info.family == ops::OpFamily::Copy && !a.empty()) v = a.back();
        v = widen(v.lo, v.hi);
        r[i] = in_dtype(in_dtype(v, in.compute), in.dtype);
        break;
      }
    }
  }
  return r;
}

}  // namespace kiln::codegen::llvm
