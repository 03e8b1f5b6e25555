// Dtype names and libtorch's promotion lattice (torch.promote_types) for the nine core dtypes.
#include "kiln/core/dtype.h"

#include <atomic>

#include "kiln/core/error.h"

namespace kiln {

std::string_view dtype_name(ScalarType t) {
  switch (t) {
#define KILN_ST_NAME(T, name, short_name) \
  case ScalarType::name:                  \
    return #short_name;
    KILN_FORALL_SCALAR_TYPES(KILN_ST_NAME)
#undef KILN_ST_NAME
  }
  return "unknown";
}

std::string_view dtype_type_name(ScalarType t) {
  switch (t) {
#define KILN_ST_TYPE_NAME(T, name, short_name) \
  case ScalarType::name:                       \
    return #name;
    KILN_FORALL_SCALAR_TYPES(KILN_ST_TYPE_NAME)
#undef KILN_ST_TYPE_NAME
  }
  return "Unknown";
}

std::ostream& operator<<(std::ostream& os, ScalarType t) { return os << dtype_name(t); }

ScalarType promote_types(ScalarType a, ScalarType b) {
  if (a == b) return a;
  if (a == kBool) return b;
  if (b == kBool) return a;
  bool fa = is_floating_point(a), fb = is_floating_point(b);
  if (fa && fb) {
    // half + bfloat16 has no common 16-bit type: both fit in float32.
    if ((a == kHalf && b == kBFloat16) || (a == kBFloat16 && b == kHalf)) return kFloat;
    return static_cast<int8_t>(a) > static_cast<int8_t>(b) ? a : b;
  }
  if (fa) return a;
  if (fb) return b;
  // Both integral. uint8 with int8 is int16 in libtorch; Kiln has no int16, so int32 (lossless).
  if ((a == kByte && b == kChar) || (a == kChar && b == kByte)) return kInt;
  return static_cast<int8_t>(a) > static_cast<int8_t>(b) ? a : b;
}

namespace {
std::atomic<ScalarType> g_default_dtype{kFloat};
}

ScalarType get_default_dtype() { return g_default_dtype.load(std::memory_order_relaxed); }

void set_default_dtype(ScalarType t) {
  KILN_CHECK(is_floating_point(t), "[set_default_dtype] got {}, expected a floating-point dtype",
             dtype_name(t));
  g_default_dtype.store(t, std::memory_order_relaxed);
}

}  // namespace kiln
