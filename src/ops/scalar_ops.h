// The scalar semantics of every elementwise primitive in ops.def, written once as generic
// functors. T is the compute type (opmath: float for half/bfloat16); math functions are called
// unqualified so an emitter's value type (codegen::llvm::Val, NVPTX) supplies them through ADL.
// For such a T a comparison yields a lane mask, not a bool: choices are spelled where(c, a, b)
// (no ?: or if on values) and predicates return auto.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "ops/simd_math.h"

namespace kiln::ops::scalar {

// exp, log, tanh, erf & co. of native float/double come from simd_math.h, which the eager
// kernel loops vectorise (the JIT's Val finds its own through ADL).
using math::erf;
using math::exp;
using math::exp2;
using math::expm1;
using math::log;
using math::log1p;
using math::log2;
using math::tanh;
using std::abs;
using std::atan2;
using std::ceil;
using std::cos;
using std::floor;
using std::fmod;
using std::nearbyint;
using std::pow;
using std::sin;
using std::sqrt;
using std::tan;

/// c ? a : b for native types; an emitter's where (found by ADL) emits a select.
template <typename T>
inline T where(bool c, T a, T b) {
  return c ? a : b;
}

template <typename T>
inline constexpr bool kIsInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// ---- unary ----------------------------------------------------------------------------------
struct Neg { template <class T> T operator()(T x) const { return -x; } };
struct Abs {
  template <class T> T operator()(T x) const {
    if constexpr (std::is_same_v<T, bool> || std::is_unsigned_v<T>) return x;
    else return where(x < T(0), T(-x), x);
  }
};
struct Exp { template <class T> T operator()(T x) const { return exp(x); } };
struct Exp2 { template <class T> T operator()(T x) const { return exp2(x); } };
struct Log { template <class T> T operator()(T x) const { return log(x); } };
struct Log2 { template <class T> T operator()(T x) const { return log2(x); } };
struct Log1p { template <class T> T operator()(T x) const { return log1p(x); } };
struct Expm1 { template <class T> T operator()(T x) const { return expm1(x); } };
struct Sqrt { template <class T> T operator()(T x) const { return sqrt(x); } };
struct Rsqrt { template <class T> T operator()(T x) const { return T(1) / sqrt(x); } };
struct Sin { template <class T> T operator()(T x) const { return sin(x); } };
struct Cos { template <class T> T operator()(T x) const { return cos(x); } };
struct Tan { template <class T> T operator()(T x) const { return tan(x); } };
struct Tanh { template <class T> T operator()(T x) const { return tanh(x); } };
struct Sigmoid { template <class T> T operator()(T x) const { return T(1) / (T(1) + exp(-x)); } };
struct Relu {
  // NaN propagates, like clamp_min(x, 0).
  template <class T> T operator()(T x) const { return where(x < T(0), T(0), x); }
};
// Exact (erf) GELU, torch's default approximate='none'.
struct Gelu {
  template <class T> T operator()(T x) const {
    return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
  }
};
struct Silu { template <class T> T operator()(T x) const { return x / (T(1) + exp(-x)); } };
struct Erf { template <class T> T operator()(T x) const { return erf(x); } };
struct Floor {
  template <class T> T operator()(T x) const {
    if constexpr (kIsInt<T>) return x; else return floor(x);
  }
};
struct Ceil {
  template <class T> T operator()(T x) const {
    if constexpr (kIsInt<T>) return x; else return ceil(x);
  }
};
// Half to even, like torch.round.
struct Round {
  template <class T> T operator()(T x) const {
    if constexpr (kIsInt<T>) return x; else return nearbyint(x);
  }
};
struct Sign {
  template <class T> T operator()(T x) const {
    if constexpr (std::is_same_v<T, bool>) return x;
    else return where(T(0) < x, T(1), where(x < T(0), T(-1), T(0)));
  }
};
struct Reciprocal { template <class T> T operator()(T x) const { return T(1) / x; } };
struct LogicalNot { template <class T> auto operator()(T x) const { return !(x != T(0)); } };

// ---- binary ---------------------------------------------------------------------------------
struct Add {
  template <class T> T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bool>) return a || b; else return a + b;
  }
};
struct Sub { template <class T> T operator()(T a, T b) const { return a - b; } };
struct Mul {
  template <class T> T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bool>) return a && b; else return a * b;
  }
};
struct Div { template <class T> T operator()(T a, T b) const { return a / b; } };
struct Pow {
  template <class T> T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bool>) {
      return a || !b;
    } else if constexpr (kIsInt<T>) {
      if (b < 0) {  // integer powers with negative exponents: only +-1 survive
        if (a == 1) return 1;
        if (a == T(-1)) return (b % 2 == 0) ? T(1) : T(-1);
        return 0;
      }
      T result = 1, base = a;
      for (auto e = b; e > 0; e >>= 1) {
        if (e & 1) result = static_cast<T>(result * base);
        base = static_cast<T>(base * base);
      }
      return result;
    } else {
      return pow(a, b);
    }
  }
};
// Python's modulo: the result takes the sign of the divisor. Integer b == 0 is rejected before
// the kernel runs.
struct Remainder {
  template <class T> T operator()(T a, T b) const {
    if constexpr (kIsInt<T>) {
      if constexpr (std::is_signed_v<T>) {
        if (b == T(-1)) return 0;  // a % -1 is 0; computing it traps for the minimum value
      }
      T r = static_cast<T>(a % b);
      if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      return r;
    } else {
      T r = fmod(a, b);
      return where(r != T(0) && ((r < T(0)) != (b < T(0))), T(r + b), r);
    }
  }
};
// NaN-propagating like torch.maximum.
struct Maximum {
  template <class T> T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return a > b ? a : b;
    else return where(a != a, a, where(b != b, b, where(a > b, a, b)));
  }
};
struct Minimum {
  template <class T> T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return a < b ? a : b;
    else return where(a != a, a, where(b != b, b, where(a < b, a, b)));
  }
};
struct Atan2 { template <class T> T operator()(T a, T b) const { return atan2(a, b); } };
struct Eq { template <class T> auto operator()(T a, T b) const { return a == b; } };
struct Ne { template <class T> auto operator()(T a, T b) const { return a != b; } };
struct Lt { template <class T> auto operator()(T a, T b) const { return a < b; } };
struct Le { template <class T> auto operator()(T a, T b) const { return a <= b; } };
struct Gt { template <class T> auto operator()(T a, T b) const { return a > b; } };
struct Ge { template <class T> auto operator()(T a, T b) const { return a >= b; } };
struct LogicalAnd {
  template <class T> auto operator()(T a, T b) const { return (a != T(0)) && (b != T(0)); }
};
struct LogicalOr {
  template <class T> auto operator()(T a, T b) const { return (a != T(0)) || (b != T(0)); }
};
struct LogicalXor {
  template <class T> auto operator()(T a, T b) const { return (a != T(0)) != (b != T(0)); }
};

}  // namespace kiln::ops::scalar
