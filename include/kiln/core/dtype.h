// Scalar types (dtypes) of the tensor core and libtorch's type-promotion rules.
// Every layer above (ops, tensor, IR, codegen) names element types through ScalarType.
#pragma once

#include <cstdint>
#include <ostream>
#include <string_view>

#include "kiln/core/half.h"

namespace kiln {

// X-macro of every dtype: (C++ type, enum name, short name for printing).
// Order matters: it is the promotion lattice order within a category.
#define KILN_FORALL_SCALAR_TYPES(_) \
  _(bool, Bool, bool)               \
  _(uint8_t, Byte, uint8)           \
  _(int8_t, Char, int8)             \
  _(int32_t, Int, int32)            \
  _(int64_t, Long, int64)           \
  _(::kiln::Half, Half, float16)    \
  _(::kiln::BFloat16, BFloat16, bfloat16) \
  _(float, Float, float32)          \
  _(double, Double, float64)

enum class ScalarType : int8_t {
#define KILN_DEFINE_ST(T, name, short_name) name,
  KILN_FORALL_SCALAR_TYPES(KILN_DEFINE_ST)
#undef KILN_DEFINE_ST
};
inline constexpr int kNumScalarTypes = 9;

/// libtorch spellings.
inline constexpr ScalarType kBool = ScalarType::Bool;
inline constexpr ScalarType kUInt8 = ScalarType::Byte;
inline constexpr ScalarType kByte = ScalarType::Byte;
inline constexpr ScalarType kInt8 = ScalarType::Char;
inline constexpr ScalarType kChar = ScalarType::Char;
inline constexpr ScalarType kInt32 = ScalarType::Int;
inline constexpr ScalarType kInt = ScalarType::Int;
inline constexpr ScalarType kInt64 = ScalarType::Long;
inline constexpr ScalarType kLong = ScalarType::Long;
inline constexpr ScalarType kFloat16 = ScalarType::Half;
inline constexpr ScalarType kHalf = ScalarType::Half;
inline constexpr ScalarType kBFloat16 = ScalarType::BFloat16;
inline constexpr ScalarType kFloat32 = ScalarType::Float;
inline constexpr ScalarType kFloat = ScalarType::Float;
inline constexpr ScalarType kFloat64 = ScalarType::Double;
inline constexpr ScalarType kDouble = ScalarType::Double;

/// Size of one element in bytes.
constexpr size_t element_size(ScalarType t) {
  switch (t) {
#define KILN_ST_SIZE(T, name, short_name) \
  case ScalarType::name:                  \
    return sizeof(T);
    KILN_FORALL_SCALAR_TYPES(KILN_ST_SIZE)
#undef KILN_ST_SIZE
  }
  return 0;
}

/// "float32", "int64", ... (the names used in errors and the IR).
std::string_view dtype_name(ScalarType t);
/// "Float", "Long", ... (libtorch's CPUFloatType spelling, used when printing tensors).
std::string_view dtype_type_name(ScalarType t);
std::ostream& operator<<(std::ostream& os, ScalarType t);

constexpr bool is_floating_point(ScalarType t) {
  return t == kHalf || t == kBFloat16 || t == kFloat || t == kDouble;
}
constexpr bool is_integral(ScalarType t, bool include_bool = false) {
  return t == kByte || t == kChar || t == kInt || t == kLong || (include_bool && t == kBool);
}
constexpr bool is_signed(ScalarType t) { return t != kBool && t != kByte; }

/// Category used by promotion: bool < integral < floating.
enum class TypeCategory : int8_t { Bool = 0, Integral = 1, Floating = 2 };
constexpr TypeCategory category(ScalarType t) {
  return t == kBool ? TypeCategory::Bool
                    : (is_floating_point(t) ? TypeCategory::Floating : TypeCategory::Integral);
}

/// The smallest dtype both a and b convert to without losing category (torch.promote_types).
ScalarType promote_types(ScalarType a, ScalarType b);

/// The default float dtype (float32 unless changed) used for Python-style scalars and int->float ops.
ScalarType get_default_dtype();
void set_default_dtype(ScalarType t);

/// Maps C++ types to ScalarType.
template <typename T>
struct CppTypeToScalarType;
#define KILN_CPP_TO_ST(T, name, short_name)                       \
  template <>                                                     \
  struct CppTypeToScalarType<T> {                                 \
    static constexpr ScalarType value = ScalarType::name;         \
  };
KILN_FORALL_SCALAR_TYPES(KILN_CPP_TO_ST)
#undef KILN_CPP_TO_ST

template <typename T>
inline constexpr ScalarType scalar_type_of = CppTypeToScalarType<T>::value;

/// The type arithmetic happens in for storage type T (half and bfloat16 compute in float).
template <typename T>
struct OpMath {
  using type = T;
};
template <>
struct OpMath<Half> {
  using type = float;
};
template <>
struct OpMath<BFloat16> {
  using type = float;
};
template <typename T>
using opmath_t = typename OpMath<T>::type;

}  // namespace kiln
