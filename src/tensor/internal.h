// Helpers shared by the eager CPU kernels (src/tensor/*.cpp): dim wrapping, dtype dispatch,
// result allocation and type conversion. Internal: not installed, not part of the public API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/core/thread_pool.h"
#include "kiln/functions.h"
#include "kiln/ivalue.h"
#include "kiln/ops/op_kind.h"
#include "kiln/tensor.h"

namespace kiln::detail {

/// Maps a possibly negative dim into [0, ndim); throws "[op] dim d out of range ..." otherwise.
/// Zero-dim tensors accept dims -1 and 0 like libtorch.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
/// Wraps every dim of a list, rejecting repeats; empty means all dims.
std::vector<int64_t> wrap_dims(IntArrayRef dims, int64_t ndim, const char* op);
/// Row-major strides for sizes.
std::vector<int64_t> contiguous_strides(IntArrayRef sizes);
int64_t prod_sizes(IntArrayRef sizes);
/// Throws "[op] expected a CPU tensor for arg ..." when t is not a defined CPU tensor.
void check_cpu(const Tensor& t, const char* op, const char* arg = "input");
void check_defined(const Tensor& t, const char* op, const char* arg = "input");
/// Throws when t's dtype is not floating point.
void check_floating(const Tensor& t, const char* op);
/// A new contiguous tensor on the device of like (or CPU).
Tensor make_empty(IntArrayRef sizes, ScalarType dtype, Device device = Device(kCPU));

// Kernels of primitives whose public spellings differ from their op-table form.
/// Sum, Prod, Amax, Amin, All, Any over dims (empty: all dims).
Tensor reduce(ops::OpKind kind, const Tensor& self, IntArrayRef dims, bool keepdim);
/// The Assign primitive: a fresh tensor of self's sizes and dtype holding src (a tensor
/// broadcast to self, or a number).
Tensor assign(const Tensor& self, const IValue& src);
/// The Index primitive: indices[i] (undefined: the whole dim) indexes dim i of self.
Tensor index_tensors(const Tensor& self, const std::vector<Tensor>& indices);
/// The IndexPut primitive, in place on self (accumulate adds instead of writing).
void index_put_tensors_(Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                        bool accumulate);
/// An IValue for an optional tensor argument: None when undefined.
inline IValue optional_arg(const Tensor& t) { return t.defined() ? IValue(t) : IValue(); }

/// Converts between any two element types (bool: != 0; float -> int truncates like C++).
template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>)
      return static_cast<float>(v) != 0.0f;
    else
      return v != From(0);
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(v));
  } else if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) {
    return static_cast<To>(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace kiln::detail

// Dispatch on a runtime dtype: the callable (a lambda) sees `scalar_t` as the element type.
/// All nine dtypes.
#define KILN_DISPATCH_ALL_TYPES(DTYPE, OP, ...)                                                  \
  [&] {                                                                                          \
    switch (DTYPE) {                                                                             \
      case ::kiln::ScalarType::Bool: { using scalar_t = bool; return __VA_ARGS__(); }            \
      case ::kiln::ScalarType::Byte: { using scalar_t = uint8_t; return __VA_ARGS__(); }         \
      case ::kiln::ScalarType::Char: { using scalar_t = int8_t; return __VA_ARGS__(); }          \
      case ::kiln::ScalarType::Int: { using scalar_t = int32_t; return __VA_ARGS__(); }          \
      case ::kiln::ScalarType::Long: { using scalar_t = int64_t; return __VA_ARGS__(); }         \
      case ::kiln::ScalarType::Half: { using scalar_t = ::kiln::Half; return __VA_ARGS__(); }    \
      case ::kiln::ScalarType::BFloat16: { using scalar_t = ::kiln::BFloat16; return __VA_ARGS__(); } \
      case ::kiln::ScalarType::Float: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::kiln::ScalarType::Double: { using scalar_t = double; return __VA_ARGS__(); }        \
    }                                                                                            \
    KILN_FAIL("[{}] unsupported dtype {}", OP, ::kiln::dtype_name(DTYPE));                      \
  }()

/// Every dtype but bool.
#define KILN_DISPATCH_NUMERIC_TYPES(DTYPE, OP, ...)                                               \
  [&] {                                                                                          \
    switch (DTYPE) {                                                                             \
      case ::kiln::ScalarType::Byte: { using scalar_t = uint8_t; return __VA_ARGS__(); }         \
      case ::kiln::ScalarType::Char: { using scalar_t = int8_t; return __VA_ARGS__(); }          \
      case ::kiln::ScalarType::Int: { using scalar_t = int32_t; return __VA_ARGS__(); }          \
      case ::kiln::ScalarType::Long: { using scalar_t = int64_t; return __VA_ARGS__(); }         \
      case ::kiln::ScalarType::Half: { using scalar_t = ::kiln::Half; return __VA_ARGS__(); }    \
      case ::kiln::ScalarType::BFloat16: { using scalar_t = ::kiln::BFloat16; return __VA_ARGS__(); } \
      case ::kiln::ScalarType::Float: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::kiln::ScalarType::Double: { using scalar_t = double; return __VA_ARGS__(); }        \
      default: break;                                                                            \
    }                                                                                            \
    KILN_FAIL("[{}] got dtype {}, expected a numeric (non-bool) dtype", OP,                       \
              ::kiln::dtype_name(DTYPE));                                                        \
  }()

/// float16, bfloat16, float32, float64.
#define KILN_DISPATCH_FLOATING_TYPES(DTYPE, OP, ...)                                              \
  [&] {                                                                                          \
    switch (DTYPE) {                                                                             \
      case ::kiln::ScalarType::Half: { using scalar_t = ::kiln::Half; return __VA_ARGS__(); }    \
      case ::kiln::ScalarType::BFloat16: { using scalar_t = ::kiln::BFloat16; return __VA_ARGS__(); } \
      case ::kiln::ScalarType::Float: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::kiln::ScalarType::Double: { using scalar_t = double; return __VA_ARGS__(); }        \
      default: break;                                                                            \
    }                                                                                            \
    KILN_FAIL("[{}] got dtype {}, expected a floating-point dtype", OP,                           \
              ::kiln::dtype_name(DTYPE));                                                        \
  }()
