// A number of any dtype category passed by value (like c10::Scalar): `x + 2`, `x.clamp(0.5)`.
// Remembers whether it came from an integer, a float or a bool, which type promotion needs.
#pragma once

#include <cstdint>
#include <ostream>
#include <type_traits>

#include "kiln/core/dtype.h"

namespace kiln {

class Scalar {
 public:
  Scalar() : Scalar(int64_t{0}) {}
  Scalar(bool v) : tag_(Tag::Bool) { v_.i = v; }  // NOLINT
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Scalar(T v) : tag_(Tag::Int) {  // NOLINT
    v_.i = static_cast<int64_t>(v);
  }
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Scalar(T v) : tag_(Tag::Double) {  // NOLINT
    v_.d = static_cast<double>(v);
  }
  Scalar(Half v) : Scalar(static_cast<double>(static_cast<float>(v))) {}      // NOLINT
  Scalar(BFloat16 v) : Scalar(static_cast<double>(static_cast<float>(v))) {}  // NOLINT

  bool is_floating_point() const { return tag_ == Tag::Double; }
  bool is_integral(bool include_bool = false) const {
    return tag_ == Tag::Int || (include_bool && tag_ == Tag::Bool);
  }
  bool is_boolean() const { return tag_ == Tag::Bool; }

  /// The dtype a wrapped number of this kind gets: default float, int64 or bool.
  ScalarType type() const {
    return tag_ == Tag::Double ? get_default_dtype() : (tag_ == Tag::Int ? kLong : kBool);
  }

  template <typename T>
  T to() const {
    if (tag_ == Tag::Double) {
      if constexpr (std::is_same_v<T, bool>) return v_.d != 0.0;
      else return static_cast<T>(v_.d);
    }
    if constexpr (std::is_same_v<T, bool>) return v_.i != 0;
    else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
      return T(static_cast<float>(v_.i));
    else return static_cast<T>(v_.i);
  }
  double toDouble() const { return to<double>(); }
  float toFloat() const { return to<float>(); }
  int64_t toLong() const { return to<int64_t>(); }
  bool toBool() const { return to<bool>(); }

  Scalar operator-() const {
    return tag_ == Tag::Double ? Scalar(-v_.d) : Scalar(-v_.i);
  }

 private:
  enum class Tag : int8_t { Bool, Int, Double };
  Tag tag_;
  union {
    int64_t i;
    double d;
  } v_;
};

std::ostream& operator<<(std::ostream& os, const Scalar& s);

}  // namespace kiln
