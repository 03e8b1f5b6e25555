// Val's operators: each emits one IR instruction (or intrinsic call) through the operands'
// IRBuilder, after giving a literal operand the other operand's type.
#include "codegen/llvm/val.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>

#include <cmath>

#include "kiln/core/error.h"

namespace kiln::codegen::llvm {
namespace ll = ::llvm;

ll::Value* Val::value() const {
  KILN_ASSERT(v_ != nullptr, "[codegen] a literal Val ({}) was used without a type", lit_);
  return v_;
}
ll::IRBuilderBase& Val::builder() const {
  KILN_ASSERT(b_ != nullptr, "[codegen] a literal Val has no builder");
  return *b_;
}
ll::Type* Val::type() const { return value()->getType(); }
ll::Type* Val::element_type() const { return type()->getScalarType(); }
bool Val::is_float() const { return element_type()->isFloatingPointTy(); }
bool Val::is_mask() const { return element_type()->isIntegerTy(1); }
int Val::lanes() const {
  if (auto* vt = ll::dyn_cast<ll::FixedVectorType>(type()))
    return static_cast<int>(vt->getNumElements());
  return 1;
}
int Val::element_bits() const { return static_cast<int>(element_type()->getPrimitiveSizeInBits()); }

namespace {

ll::Type* same_shape(ll::Type* like, ll::Type* elem) {
  if (auto* vt = ll::dyn_cast<ll::FixedVectorType>(like))
    return ll::FixedVectorType::get(elem, vt->getNumElements());
  return elem;
}

ll::Type* int_type_of(const Val& x) {
  return same_shape(x.type(), ll::Type::getIntNTy(x.type()->getContext(), x.element_bits()));
}

// Both operands as values of one type; a literal takes the other's type.
std::pair<Val, Val> unify(const Val& a, const Val& b) {
  Val x = a.is_literal() ? a.like(b) : a;
  Val y = b.is_literal() ? b.like(a) : b;
  KILN_ASSERT(x.type() == y.type(), "[codegen] operand types differ");
  return {x, y};
}

// A new value from the same builder; a mask made from a mask keeps its origin type.
Val wrap(ll::Value* v, const Val& from) {
  Val r(v, from.builder());
  return v->getType()->getScalarType()->isIntegerTy(1) && !from.is_literal()
             ? r.with_origin(from.origin())
             : r;
}

template <class FoldFn, class EmitFn>
Val binary(const Val& a, const Val& b, FoldFn fold, EmitFn emit) {
  if (a.is_literal() && b.is_literal()) return Val(fold(a.literal(), b.literal()));
  auto [x, y] = unify(a, b);
  return wrap(emit(x.builder(), x, y), x);
}

Val compare(const Val& a, const Val& b, ll::CmpInst::Predicate fp, ll::CmpInst::Predicate ip,
            bool (*fold)(double, double)) {
  if (a.is_literal() && b.is_literal()) return Val(fold(a.literal(), b.literal()));
  auto [x, y] = unify(a, b);
  auto& bl = x.builder();
  ll::Value* r = x.is_float() ? bl.CreateFCmp(fp, x.value(), y.value())
                              : bl.CreateICmp(ip, x.value(), y.value());
  return Val(r, bl).with_origin(x.type());
}

Val unary_intrinsic(ll::Intrinsic::ID id, const Val& x) {
  return wrap(x.builder().CreateUnaryIntrinsic(id, x.value()), x);
}

Val binary_intrinsic(ll::Intrinsic::ID id, const Val& a, const Val& b) {
  auto [x, y] = unify(a, b);
  return wrap(x.builder().CreateBinaryIntrinsic(id, x.value(), y.value()), x);
}

Val ternary_intrinsic(ll::Intrinsic::ID id, const Val& a, const Val& b, const Val& c) {
  const Val& typed = !a.is_literal() ? a : !b.is_literal() ? b : c;
  Val x = a.like(typed), y = b.like(typed), z = c.like(typed);
  return wrap(
      typed.builder().CreateIntrinsic(id, {typed.type()}, {x.value(), y.value(), z.value()}),
      typed);
}

}  // namespace

Val Val::constant(double c) const {
  if (is_float()) return Val(ll::ConstantFP::get(type(), c), builder());
  return int_constant(static_cast<int64_t>(c));
}

Val Val::int_constant(int64_t c) const {
  ll::Type* t = is_float() ? int_type_of(*this) : type();
  return Val(ll::ConstantInt::getSigned(t, c), builder());
}

Val Val::like(const Val& other) const {
  if (!is_literal()) return *this;
  if (other.is_float()) return other.constant(lit_);
  return other.int_constant(lit_is_int_ ? lit_int_ : static_cast<int64_t>(lit_));
}

// ---- arithmetic ----------------------------------------------------------------------------
Val operator+(const Val& a, const Val& b) {
  return binary(
      a, b, [](double x, double y) { return x + y; },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return x.is_float() ? bl.CreateFAdd(x.value(), y.value())
                            : bl.CreateAdd(x.value(), y.value());
      });
}
Val operator-(const Val& a, const Val& b) {
  return binary(
      a, b, [](double x, double y) { return x - y; },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return x.is_float() ? bl.CreateFSub(x.value(), y.value())
                            : bl.CreateSub(x.value(), y.value());
      });
}
Val operator*(const Val& a, const Val& b) {
  return binary(
      a, b, [](double x, double y) { return x * y; },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return x.is_float() ? bl.CreateFMul(x.value(), y.value())
                            : bl.CreateMul(x.value(), y.value());
      });
}
Val operator/(const Val& a, const Val& b) {
  return binary(
      a, b, [](double x, double y) { return x / y; },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return x.is_float() ? bl.CreateFDiv(x.value(), y.value())
                            : bl.CreateSDiv(x.value(), y.value());
      });
}
Val operator%(const Val& a, const Val& b) {
  return binary(
      a, b, [](double x, double y) { return std::fmod(x, y); },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return x.is_float() ? bl.CreateFRem(x.value(), y.value())
                            : bl.CreateSRem(x.value(), y.value());
      });
}
Val operator-(const Val& a) {
  if (a.is_literal()) return Val(-a.literal());
  if (a.is_float()) return wrap(a.builder().CreateFNeg(a.value()), a);
  return wrap(a.builder().CreateNeg(a.value()), a);
}

Val operator==(const Val& a, const Val& b) {
  return compare(a, b, ll::CmpInst::FCMP_OEQ, ll::CmpInst::ICMP_EQ,
                 [](double x, double y) { return x == y; });
}
Val operator!=(const Val& a, const Val& b) {
  return compare(a, b, ll::CmpInst::FCMP_UNE, ll::CmpInst::ICMP_NE,
                 [](double x, double y) { return x != y; });
}
Val operator<(const Val& a, const Val& b) {
  return compare(a, b, ll::CmpInst::FCMP_OLT, ll::CmpInst::ICMP_SLT,
                 [](double x, double y) { return x < y; });
}
Val operator<=(const Val& a, const Val& b) {
  return compare(a, b, ll::CmpInst::FCMP_OLE, ll::CmpInst::ICMP_SLE,
                 [](double x, double y) { return x <= y; });
}
Val operator>(const Val& a, const Val& b) {
  return compare(a, b, ll::CmpInst::FCMP_OGT, ll::CmpInst::ICMP_SGT,
                 [](double x, double y) { return x > y; });
}
Val operator>=(const Val& a, const Val& b) {
  return compare(a, b, ll::CmpInst::FCMP_OGE, ll::CmpInst::ICMP_SGE,
                 [](double x, double y) { return x >= y; });
}

// Bitwise operators on literals fold as integers; masks use i1 and/or/xor.
Val operator!(const Val& a) {
  if (a.is_literal()) return Val(a.literal() == 0);
  return wrap(a.builder().CreateNot(a.value()), a);
}
Val operator&(const Val& a, const Val& b) {
  return binary(
      a, b,
      [](double x, double y) {
        return static_cast<double>(static_cast<int64_t>(x) & static_cast<int64_t>(y));
      },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return bl.CreateAnd(x.value(), y.value());
      });
}
Val operator|(const Val& a, const Val& b) {
  return binary(
      a, b,
      [](double x, double y) {
        return static_cast<double>(static_cast<int64_t>(x) | static_cast<int64_t>(y));
      },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return bl.CreateOr(x.value(), y.value());
      });
}
Val operator^(const Val& a, const Val& b) {
  return binary(
      a, b,
      [](double x, double y) {
        return static_cast<double>(static_cast<int64_t>(x) ^ static_cast<int64_t>(y));
      },
      [](ll::IRBuilderBase& bl, const Val& x, const Val& y) {
        return bl.CreateXor(x.value(), y.value());
      });
}
Val operator&&(const Val& a, const Val& b) {
  if (a.is_literal() && b.is_literal()) return Val(a.literal() != 0 && b.literal() != 0);
  return a & b;
}
Val operator||(const Val& a, const Val& b) {
  if (a.is_literal() && b.is_literal()) return Val(a.literal() != 0 || b.literal() != 0);
  return a | b;
}
Val operator<<(const Val& a, int bits) {
  return wrap(a.builder().CreateShl(a.value(), a.int_constant(bits).value()), a);
}
Val operator>>(const Val& a, int bits) {
  return wrap(a.builder().CreateAShr(a.value(), a.int_constant(bits).value()), a);
}
Val lshr(const Val& a, int bits) {
  return wrap(a.builder().CreateLShr(a.value(), a.int_constant(bits).value()), a);
}

Val where(const Val& cond, const Val& a, const Val& b) {
  if (cond.is_literal()) return cond.literal() != 0 ? a : b;
  if (a.is_literal() && b.is_literal()) {
    // both branches literal (Sign's where(x < 0, -1, 0)): they take the compared values' type
    KILN_ASSERT(cond.origin() != nullptr, "[codegen] where() of two literals has no type");
    Val like(ll::UndefValue::get(cond.origin()), cond.builder());
    return where(cond, a.like(like), b.like(like));
  }
  auto [x, y] = unify(a, b);
  return wrap(cond.builder().CreateSelect(cond.value(), x.value(), y.value()), x);
}

// ---- conversions ---------------------------------------------------------------------------
Val bits_of(const Val& x) { return wrap(x.builder().CreateBitCast(x.value(), int_type_of(x)), x); }
Val float_from_bits(const Val& i, const Val& like) {
  return wrap(i.builder().CreateBitCast(i.value(), like.type()), i);
}
Val to_int(const Val& x) { return wrap(x.builder().CreateFPToSI(x.value(), int_type_of(x)), x); }
Val to_float(const Val& i, const Val& like) {
  return wrap(i.builder().CreateSIToFP(i.value(), like.type()), i);
}
Val mask_to(const Val& mask, const Val& like) {
  ll::IRBuilderBase& b = mask.builder();
  if (like.is_float()) return wrap(b.CreateUIToFP(mask.value(), like.type()), mask);
  return wrap(b.CreateZExt(mask.value(), like.type()), mask);
}
Val convert(const Val& x, ll::Type* to) {
  ll::IRBuilderBase& b = x.builder();
  ll::Type* target = same_shape(x.type(), to->getScalarType());
  if (x.type() == target) return x;
  ll::Type* from = x.element_type();
  ll::Type* te = target->getScalarType();
  if (from->isFloatingPointTy() && te->isFloatingPointTy()) {
    return wrap(from->getPrimitiveSizeInBits() < te->getPrimitiveSizeInBits()
                    ? b.CreateFPExt(x.value(), target)
                    : b.CreateFPTrunc(x.value(), target),
                x);
  }
  if (from->isIntegerTy(1)) {
    return wrap(te->isFloatingPointTy() ? b.CreateUIToFP(x.value(), target)
                                        : b.CreateZExt(x.value(), target),
                x);
  }
  if (from->isIntegerTy() && te->isFloatingPointTy())
    return wrap(b.CreateSIToFP(x.value(), target), x);
  if (from->isFloatingPointTy() && te->isIntegerTy())
    return wrap(b.CreateFPToSI(x.value(), target), x);
  return wrap(b.CreateSExtOrTrunc(x.value(), target), x);
}

// ---- intrinsics ----------------------------------------------------------------------------
Val abs(const Val& x) {
  if (x.is_literal()) return Val(std::fabs(x.literal()));
  if (x.is_float()) return unary_intrinsic(ll::Intrinsic::fabs, x);
  return wrap(
      x.builder().CreateBinaryIntrinsic(ll::Intrinsic::abs, x.value(), x.builder().getFalse()), x);
}
Val floor(const Val& x) { return unary_intrinsic(ll::Intrinsic::floor, x); }
Val ceil(const Val& x) { return unary_intrinsic(ll::Intrinsic::ceil, x); }
Val trunc(const Val& x) { return unary_intrinsic(ll::Intrinsic::trunc, x); }
Val nearbyint(const Val& x) { return unary_intrinsic(ll::Intrinsic::nearbyint, x); }
Val rint(const Val& x) { return unary_intrinsic(ll::Intrinsic::rint, x); }
Val sqrt(const Val& x) { return unary_intrinsic(ll::Intrinsic::sqrt, x); }
Val rsqrt(const Val& x) { return Val(1) / sqrt(x); }
Val copysign(const Val& mag, const Val& sign) {
  return binary_intrinsic(ll::Intrinsic::copysign, mag, sign);
}
Val fmod(const Val& a, const Val& b) { return a % b; }
Val fma(const Val& a, const Val& b, const Val& c) {
  return ternary_intrinsic(ll::Intrinsic::fma, a, b, c);
}
Val mul_add(const Val& a, const Val& b, const Val& c) {
  return ternary_intrinsic(ll::Intrinsic::fmuladd, a, b, c);
}
Val isnan(const Val& x) { return wrap(x.builder().CreateFCmpUNO(x.value(), x.value()), x); }
Val isinf(const Val& x) { return abs(x) == x.constant(HUGE_VAL); }
Val signbit(const Val& x) { return bits_of(x) < Val(0); }
Val min(const Val& a, const Val& b) { return where(a < b, a, b); }
Val max(const Val& a, const Val& b) { return where(a > b, a, b); }

}  // namespace kiln::codegen::llvm
