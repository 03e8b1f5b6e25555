// The vector math library: each function reduces its argument, evaluates a polynomial fitted by
// scripts/fit_polynomials.py (poly_coeffs.inc) and fixes the special values with selects. Written
// over Val, so one body serves float32/float64 and every vector width. Why each reduction was
// chosen is in docs/design.md ("CPU code generation").
#include "codegen/llvm/vector_math.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/core/error.h"

namespace kiln::codegen::llvm {
namespace ll = ::llvm;

namespace {

#include "codegen/llvm/poly_coeffs.inc"

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kLog2e = 0x1.71547652b82fep+0;
constexpr double kLn2 = 0x1.62e42fefa39efp-1;

bool is64(const Val& x) {
  KILN_ASSERT(!x.is_literal() && x.is_float() && (x.element_bits() == 32 || x.element_bits() == 64),
              "[codegen] vector math needs float32 or float64 values");
  return x.element_bits() == 64;
}
// A constant of x's type: c32 for float32, c64 for float64.
Val k(const Val& x, double c32, double c64) { return x.constant(is64(x) ? c64 : c32); }

// x > hi ? hi : x, keeping NaN (unlike min).
Val clamp_hi(const Val& x, const Val& hi) { return where(x > hi, hi, x); }
Val clamp_lo(const Val& x, const Val& lo) { return where(x < lo, lo, x); }

// 2^n for an integer value n inside the normal exponent range of like's type.
Val pow2i(const Val& n, const Val& like) {
  const bool d = is64(like);
  return float_from_bits((n + Val(d ? 1023 : 127)) << (d ? 52 : 23), like);
}

// Evaluates the polynomial with coefficients a where mask is true and b elsewhere (both of one
// degree): one blend per step instead of two polynomials.
template <class C, int N>
Val polynomial_select(const Val& x, const Val& mask, const C (&a)[N], const C (&b)[N]) {
  Val acc = where(mask, Val(a[0]).like(x), Val(b[0]).like(x));
  for (int i = 1; i < N; ++i) {
    acc = mul_add(acc, x, where(mask, Val(a[i]).like(x), Val(b[i]).like(x)));
  }
  return acc;
}

// ---- exp family ----------------------------------------------------------------------------
// x = n ln2 + r, |r| <= ln2/2 (Cody-Waite: n * ln2_hi is exact, so mul_add fused or not gives
// the same r). Returns expm1(r) = r + r^2 P(r) and n.
struct ExpReduced {
  Val u;  // expm1(r)
  Val n;  // as an integer value
};
ExpReduced exp_reduce(const Val& x) {
  const bool d = is64(x);
  Val n = rint(x * kLog2e);
  Val r = mul_add(n, k(x, -0x1.62e4p-1, -0x1.62e42fee00000p-1), x);
  r = mul_add(n, k(x, -0x1.7f7d1cp-20, -0x1.a39ef35793c76p-33), r);
  Val p = d ? polynomial(r, kPolyExpP64) : polynomial(r, kPolyExpP32);
  return {mul_add(r * r, p, r), to_int(n)};
}

// exp(x) for x already clamped so that 2^n fits two normal factors.
Val exp_clamped(const Val& xc) {
  ExpReduced e = exp_reduce(xc);
  Val n1 = e.n >> 1;
  Val n2 = e.n - n1;
  // Two factors: 2^n alone overflows the exponent for results near FLT_MAX and in the denormal
  // range, and p * 2^n1 is exact, so the one rounding is the last multiply.
  return (Val(1) + e.u) * pow2i(n1, xc) * pow2i(n2, xc);
}

// 2^n p for n whose 2^n is normal: one scaling factor, and p = 1 + u formed by the fma (one
// rounding).
Val scale_normal(const ExpReduced& e, const Val& like) {
  Val s = pow2i(e.n, like);
  return mul_add(e.u, s, s);
}

}  // namespace

Val exp(const Val& x) {
  Val xc = clamp_lo(clamp_hi(x, k(x, 89, 710)), k(x, -104, -746));
  return where(isnan(x), x, exp_clamped(xc));
}

Val exp(const Val& x, const Interval& known) {
  const bool d = is64(x);
  // Inside these bounds n = rint(x log2 e) keeps 2^n normal (float: n in [-126, 127]) and the
  // result finite: no clamps, one scaling factor.
  if (known.lo >= (d ? -708 : -87) && known.hi <= (d ? 709 : 88)) {
    return scale_normal(exp_reduce(x), x);
  }
  if (known.hi <= 0) {
    // x <= 0 (exp(-|y|), softmax's exp(y - max)): no overflow, so only the lower clamp. The
    // denormal results are formed as (2^(n+K) p) 2^-K: the first product is normal and exact up
    // to the fma's rounding, the second rounds once into the denormal range.
    const int K = d ? 64 : 32;
    ExpReduced e = exp_reduce(clamp_lo(x, k(x, -104, -746)));
    Val s = pow2i(e.n + Val(K), x);
    return mul_add(e.u, s, s) * k(x, 0x1p-32, 0x1p-64);
  }
  return exp(x);
}

Val exp2(const Val& x) {
  Val xc = clamp_lo(clamp_hi(x, k(x, 129, 1025)), k(x, -151, -1076));
  Val n = rint(xc);
  Val r = xc - n;  // exact, |r| <= 1/2
  Val rl = mul_add(r, k(x, 0x1.62e43p-1, 0x1.62e42fefa39efp-1),
                   r * k(x, -0x1.05c610p-29, 0x1.abc9e3b39803fp-56));
  // rl = r ln2 with |rl| <= ln2/2: the exp polynomial applies directly.
  const bool d = is64(x);
  Val p = d ? polynomial(rl, kPolyExpP64) : polynomial(rl, kPolyExpP32);
  Val u = mul_add(rl * rl, p, rl);
  Val ni = to_int(n);
  Val n1 = ni >> 1;
  Val n2 = ni - n1;
  Val res = (Val(1) + u) * pow2i(n1, x) * pow2i(n2, x);
  return where(isnan(x), x, res);
}

Val expm1(const Val& x) {
  // Below -30 (float) / -60 (double) expm1 rounds to -1; above the overflow bound it is inf.
  Val xc = clamp_lo(clamp_hi(x, k(x, 89, 710)), k(x, -30, -60));
  ExpReduced e = exp_reduce(xc);
  // expm1(x) = 2^n u + 2^n - 1 = 2 (t u + (t - 1/2)) with t = 2^(n-1): t stays finite for
  // n = 128 (float) / 1024 (double), where 2^n itself would overflow.
  Val t = pow2i(e.n - Val(1), xc);
  Val res = Val(2) * mul_add(t, e.u, t - Val(0.5));
  // |x| tiny: expm1(x) rounds to x (and keeps -0 and denormals exact).
  res = where(abs(x) < k(x, 0x1p-25, 0x1p-54), x, res);
  return where(isnan(x), x, res);
}

// ---- log family ----------------------------------------------------------------------------
namespace {

// x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1 (x > 0, normal). Then log1p(f) =
// f - hfsq + s (hfsq + R) with s = f / (2 + f), hfsq = f^2 / 2, R = z Q(z), z = s^2.
struct LogReduced {
  Val k;  // the exponent, as a float value
  Val f;
  Val hfsq;
  Val tail;  // s (hfsq + R)
};
LogReduced log_reduce(const Val& x) {
  const bool d = is64(x);
  // sqrt(1/2) as a bit pattern; adding (1.0 - it) moves the exponent step to sqrt(2)/2.
  const int64_t sq = d ? 0x3fe6a09e667f3bcdLL : 0x3f3504f3LL;
  const int64_t one = d ? 0x3ff0000000000000LL : 0x3f800000LL;
  const int mb = d ? 52 : 23;
  const int64_t mmask = d ? 0x000fffffffffffffLL : 0x007fffffLL;
  Val ix = bits_of(x) + Val(one - sq);
  Val kk = (ix >> mb) - Val(d ? 1023 : 127);
  Val m = float_from_bits((ix & Val(mmask)) + Val(sq), x);
  Val f = m - Val(1);
  Val s = f / (Val(2) + f);
  Val z = s * s;
  Val q = d ? polynomial(z, kPolyLogQ64) : polynomial(z, kPolyLogQ32);
  Val hfsq = Val(0.5) * f * f;
  return {to_float(kk, x), f, hfsq, s * mul_add(z, q, hfsq)};
}

// Scales denormal inputs into the normal range; returns the scaled x and the exponent offset.
std::pair<Val, Val> normalize_denormal(const Val& x) {
  Val tiny = x < k(x, 0x1p-126, 0x1p-1022);
  Val xs = where(tiny, x * k(x, 0x1p24, 0x1p54), x);
  Val off = where(tiny, k(x, -24, -54), Val(0).like(x));
  return {xs, off};
}

// log's special values: +inf and NaN return x, 0 gives -inf, x < 0 gives NaN.
Val log_specials(const Val& x, const Val& res) {
  Val r = where(x < k(x, kInf, kInf), res, x);
  r = where(x == Val(0), k(x, -kInf, -kInf), r);
  return where(x < Val(0), k(x, kNaN, kNaN), r);
}

}  // namespace

Val log(const Val& x) {
  auto [xs, off] = normalize_denormal(x);
  LogReduced l = log_reduce(xs);
  Val dk = l.k + off;
  Val ln2hi = k(x, 0x1.62e3p-1, 0x1.62e42fee00000p-1);
  Val ln2lo = k(x, 0x1.2fefa2p-17, 0x1.a39ef35793c76p-33);
  Val res = l.tail + dk * ln2lo - l.hfsq + l.f + dk * ln2hi;
  return log_specials(x, res);
}

Val log2(const Val& x) {
  auto [xs, off] = normalize_denormal(x);
  LogReduced l = log_reduce(xs);
  Val dk = l.k + off;
  const bool d = is64(x);
  // hi = f - hfsq with its low bits cut, so hi * ivln2hi is exact; lo carries the rest.
  Val hi = l.f - l.hfsq;
  hi = float_from_bits(bits_of(hi) & Val(d ? int64_t(0xffffffff00000000ULL) : int64_t(-4096)), x);
  Val lo = l.f - hi - l.hfsq + l.tail;
  Val ivhi = k(x, 0x1.716p+0, 0x1.7154765200000p+0);
  Val ivlo = k(x, -0x1.7135a8p-13, 0x1.705fc2eefa200p-33);
  Val res = (lo + hi) * ivlo + lo * ivhi + hi * ivhi + dk;
  return log_specials(x, res);
}

Val log1p(const Val& x) {
  Val u = Val(1) + x;
  // u > 0 is never denormal here: 1 + x >= 2^-24 (float) whenever x > -1.
  Val us = where(u > Val(0), u, Val(1).like(u));  // keep the reduction free of -inf/NaN lanes
  LogReduced l = log_reduce(us);
  // c/u corrects for the rounding of 1 + x (c is exact while u - 1 is).
  Val c = (x - (us - Val(1))) / us;
  Val ln2hi = k(x, 0x1.62e3p-1, 0x1.62e42fee00000p-1);
  Val ln2lo = k(x, 0x1.2fefa2p-17, 0x1.a39ef35793c76p-33);
  Val res = l.tail + (l.k * ln2lo + c) - l.hfsq + l.f + l.k * ln2hi;
  res = where(x < k(x, kInf, kInf), res, x);  // +inf, NaN
  res = where(x == Val(-1), k(x, -kInf, -kInf), res);
  res = where(x < Val(-1), k(x, kNaN, kNaN), res);
  return where(abs(x) < k(x, 0x1p-24, 0x1p-54), x, res);
}

// ---- hyperbolic, logistic, erf -----------------------------------------------------------------
Val tanh(const Val& x) {
  // tanh |x| = e / (e + 2), e = expm1(2|x|): accurate down to denormals (e ~ 2|x|), and |x|
  // beyond 10 (float) / 22 (double) rounds to 1.
  Val a = clamp_hi(abs(x), k(x, 10, 22));
  Val e = expm1(a + a);
  return copysign(e / (e + Val(2)), x);
}

Val tanh(const Val& x, const Interval& known) {
  if (std::max(-known.lo, known.hi) > kTanhPolynomialBound) return tanh(x);
  // |x| <= 0.625: x (1 + x^2 T(x^2)) alone (no exp, no division). The product form keeps the
  // sign of -0 (x + x^3 T would round -0 + 0 to +0), and x^2 underflows to 0 for tiny x,
  // leaving x exact.
  Val z = x * x;
  Val t = is64(x) ? polynomial(z, kPolyTanhT64) : polynomial(z, kPolyTanhT32);
  return x * mul_add(z, t, Val(1).like(x));
}

Val sigmoid(const Val& x) {
  // e / (1 + e) for x < 0 and 1 / (1 + e) otherwise, e = exp(-|x|) <= 1: one division, the
  // numerator chosen first.
  Val e = exp(-abs(x), Interval{-kInf, 0});
  return where(x < Val(0), e, Val(1).like(x)) / (Val(1) + e);
}

Val erf(const Val& x) {
  const bool d = is64(x);
  Val a = abs(x);
  Val z = x * x;
  Val small = x * (d ? polynomial(z, kPolyErfE64) : polynomial(z, kPolyErfE32));
  // |x| >= 1: erf = 1 - exp(-x^2) G(|x|); G's fit ends where erf rounds to 1.
  Val ac = clamp_hi(a, k(x, 4, 6));
  Val g = d ? polynomial_select(ac, ac < Val(2.5), kPolyErfcGLo64, kPolyErfcGHi64)
            : polynomial(ac, kPolyErfcG32);
  Val large = copysign(Val(1) - exp(-z) * g, x);
  return where(a < Val(1), small, large);
}

Val gelu(const Val& x) { return Val(0.5) * x * (Val(1) + erf(x * Val(0.70710678118654752440))); }

// ---- trigonometric -------------------------------------------------------------------------
namespace {

enum class Trig { kSin, kCos, kTan };

// Per-lane libm calls for the lanes in mask, in a cold block entered only when any lane needs
// one: huge arguments (beyond the Cody-Waite range), inf and NaN.
Val libm_fallback(const Val& x, const Val& mask, const Val& hot, const char* f32_name,
                  const char* f64_name) {
  ll::IRBuilderBase& b = x.builder();
  ll::BasicBlock* cur = b.GetInsertBlock();
  KILN_ASSERT(cur != nullptr && b.GetInsertPoint() == cur->end(),
              "[codegen] libm fallback needs the builder at the end of a block");
  ll::Function* fn = cur->getParent();
  ll::Module* m = fn->getParent();
  ll::Type* et = x.element_type();
  ll::FunctionCallee callee =
      m->getOrInsertFunction(is64(x) ? f64_name : f32_name, ll::FunctionType::get(et, {et}, false));
  ll::LLVMContext& ctx = b.getContext();
  auto* cold = ll::BasicBlock::Create(ctx, "libm.cold", fn);
  auto* cont = ll::BasicBlock::Create(ctx, "libm.cont", fn);
  ll::Value* any = x.lanes() > 1 ? b.CreateOrReduce(mask.value()) : mask.value();
  b.CreateCondBr(any, cold, cont, ll::MDBuilder(ctx).createBranchWeights(1, 1 << 20));
  b.SetInsertPoint(cold);
  ll::Value* v = x.value();
  ll::Value* out;
  if (x.lanes() == 1) {
    out = b.CreateCall(callee, {v});
  } else {
    out = ll::PoisonValue::get(x.type());
    for (int i = 0; i < x.lanes(); ++i) {
      ll::Value* lane = b.CreateCall(callee, {b.CreateExtractElement(v, uint64_t(i))});
      out = b.CreateInsertElement(out, lane, uint64_t(i));
    }
  }
  out = b.CreateSelect(mask.value(), out, hot.value());
  b.CreateBr(cont);
  b.SetInsertPoint(cont);
  ll::PHINode* phi = b.CreatePHI(x.type(), 2);
  phi->addIncoming(hot.value(), cur);
  phi->addIncoming(out, cold);
  return Val(phi, b);
}

// sin/cos/tan of a = |x| < the reduction bound. Float32 reduces and evaluates in double (its
// polynomials are the float32 fits), which keeps every float32 result within 1 ulp.
Val trig_core(const Val& a, Trig which) {
  const bool d = is64(a);
  Val ad = d ? a : convert(a, ll::Type::getDoubleTy(a.type()->getContext()));
  Val n = rint(ad * 0x1.45f306dc9c883p-1);  // 2/pi
  Val r;
  if (d) {
    // Three parts of pi/2 with fma: the first step is exact, the rest keep 2^-53 relative error
    // in r for |x| < 2^28.
    r = fma(n, Val(-0x1.921fb54442d18p+0), ad);
    r = fma(n, Val(-0x1.1a62633145c07p-54), r);
    r = fma(n, Val(0x1.f1976b7ed8fbcp-110), r);
  } else {
    r = fma(n, Val(-0x1.921fb54442d18p+0), ad);
    r = fma(n, Val(-0x1.1a62633145c07p-54), r);
  }
  Val z = r * r;
  Val s = mul_add(r * z, d ? polynomial(z, kPolySinS64) : polynomial(z, kPolySinS32), r);
  Val c = mul_add(z * z, d ? polynomial(z, kPolyCosC64) : polynomial(z, kPolyCosC32),
                  mul_add(z, Val(-0.5), Val(1)));
  Val q = to_int(n);
  Val odd = (q & Val(1)) != Val(0);
  Val v;
  switch (which) {
    case Trig::kSin:
      v = where(odd, c, s);
      v = where((q & Val(2)) != Val(0), -v, v);
      break;
    case Trig::kCos:
      v = where(odd, s, c);
      v = where(((q + Val(1)) & Val(2)) != Val(0), -v, v);
      break;
    case Trig::kTan:
      v = where(odd, -c / s, s / c);
      break;
  }
  return d ? v : convert(v, a.element_type());
}

Val trig(const Val& x, Trig which, const char* f32_name, const char* f64_name) {
  Val a = abs(x);
  Val bound = k(x, 0x1.921fb6p+28, 0x1.921fb54442d18p+28);
  Val ok = a < bound;  // false for inf and NaN
  Val v = trig_core(where(ok, a, Val(0).like(x)), which);
  if (which != Trig::kCos) v = where(signbit(x), -v, v);
  return libm_fallback(x, !ok, v, f32_name, f64_name);
}

}  // namespace

Val sin(const Val& x) { return trig(x, Trig::kSin, "sinf", "sin"); }
Val cos(const Val& x) { return trig(x, Trig::kCos, "cosf", "cos"); }
Val tan(const Val& x) { return trig(x, Trig::kTan, "tanf", "tan"); }

// ---- atan2 ---------------------------------------------------------------------------------
Val atan2(const Val& y_in, const Val& x_in) {
  Val y = y_in.like(x_in), x = x_in.like(y_in);
  const bool d = is64(x);
  // Float32 runs in double (with the float32 polynomial), so its offsets add no rounding.
  ll::Type* dt = ll::Type::getDoubleTy(x.type()->getContext());
  Val xd = d ? x : convert(x, dt);
  Val yd = d ? y : convert(y, dt);
  Val ax = abs(xd), ay = abs(yd);
  Val swap = ay > ax;
  Val u = where(swap, ax, ay);
  Val v = where(swap, ay, ax);
  Val t = u / v;
  t = where(v == Val(0), Val(0).like(t), t);  // atan2(+-0, +-0)
  t = where(isinf(u), Val(1).like(t), t);     // both infinite
  Val big = t > Val(0x1.a827999fcef32p-2);    // tan(pi/8)
  Val t2 = where(big, (t - Val(1)) / (t + Val(1)), t);
  Val z = t2 * t2;
  Val at = mul_add(t2 * z, d ? polynomial(z, kPolyAtanA64) : polynomial(z, kPolyAtanA32), t2);
  at = where(big, Val(0x1.921fb54442d18p-1) + (at + Val(0x1.1a62633145c07p-55)), at);
  at = where(swap, Val(0x1.921fb54442d18p+0) - at + Val(0x1.1a62633145c07p-54), at);
  at = where(signbit(xd), Val(0x1.921fb54442d18p+1) - at + Val(0x1.1a62633145c07p-53), at);
  Val res = copysign(at, yd);
  if (!d) res = convert(res, x.element_type());
  return where(isnan(x) || isnan(y), x + y, res);
}

// ---- pow -----------------------------------------------------------------------------------
namespace {

// log(x) as hi + lo for double x > 0 (normal or denormal), about 2^-60 relative.
std::pair<Val, Val> log_hilo(const Val& x) {
  auto [xs, off] = normalize_denormal(x);
  LogReduced l = log_reduce(xs);
  Val dk = l.k + off;
  // hfsq exactly as hfh + hfl (fma), then f - hfsq + tail as a double-double.
  Val ff = l.f * l.f;
  Val ffl = fma(l.f, l.f, -ff);
  Val hfh = Val(0.5) * ff, hfl = Val(0.5) * ffl;
  Val hi = l.f - hfh;
  Val lo = (l.f - hi) - hfh - hfl + l.tail;
  Val kh = dk * Val(0x1.62e42fee00000p-1);
  Val h2 = kh + hi;  // |kh| >= |hi| unless k = 0
  Val lo2 = (kh - h2) + hi + (lo + dk * Val(0x1.a39ef35793c76p-33));
  Val h3 = h2 + lo2;
  Val ok = x > Val(0) && x < Val(kInf);  // else log's special values, with no low part
  return {where(ok, h3, log_specials(x, h3)), where(ok, (h2 - h3) + lo2, Val(0).like(x))};
}

}  // namespace

Val pow(const Val& x_in, const Val& y_in) {
  Val x = x_in.like(y_in), y = y_in.like(x_in);
  const bool d = is64(x);
  Val res;
  if (!d) {
    // float32: log and exp in double are accurate far beyond float's 24 bits.
    ll::Type* dt = ll::Type::getDoubleTy(x.type()->getContext());
    Val xd = convert(x, dt), yd = convert(y, dt);
    res = convert(exp(yd * log(abs(xd))), x.element_type());
  } else {
    auto [lh, ll_] = log_hilo(abs(x));
    Val ph = y * lh;
    Val pl = fma(y, lh, -ph) + y * ll_;
    pl = where(abs(ph) < Val(kInf), pl, Val(0).like(pl));
    Val e = exp(ph);
    res = where(e < Val(kInf), mul_add(e, pl, e), e);
  }
  Val yint = trunc(y) == y;  // +-inf count as even integers
  Val half = y * Val(0.5);
  Val yodd = yint && (trunc(half) != half);
  res = where(signbit(x) && yodd, -res, res);
  res = where(x < Val(0) && x > Val(-kInf) && !yint, k(x, kNaN, kNaN), res);
  res = where(abs(x) == Val(1) && isinf(y), Val(1).like(x), res);
  return where(x == Val(1) || y == Val(0), Val(1).like(x), res);
}

}  // namespace kiln::codegen::llvm
