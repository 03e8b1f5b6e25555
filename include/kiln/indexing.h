// Python-style indexing: x.index({Slice(1, None, 2), 0, Ellipsis, None}) and index_put_.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "kiln/tensor.h"

namespace kiln::indexing {

struct NoneType {};
struct EllipsisType {};
inline constexpr NoneType None{};
inline constexpr EllipsisType Ellipsis{};

/// A slice start:stop:step; missing bounds are None.
class Slice {
 public:
  Slice(std::optional<int64_t> start = std::nullopt, std::optional<int64_t> stop = std::nullopt,
        std::optional<int64_t> step = std::nullopt)
      : start_(start), stop_(stop), step_(step.value_or(1)) {}
  Slice(NoneType, std::optional<int64_t> stop = std::nullopt, std::optional<int64_t> step = std::nullopt)
      : Slice(std::nullopt, stop, step) {}
  Slice(std::optional<int64_t> start, NoneType, std::optional<int64_t> step = std::nullopt)
      : Slice(start, std::nullopt, step) {}
  Slice(NoneType, NoneType, std::optional<int64_t> step = std::nullopt)
      : Slice(std::nullopt, std::nullopt, step) {}
  std::optional<int64_t> start() const { return start_; }
  std::optional<int64_t> stop() const { return stop_; }
  int64_t step() const { return step_; }

 private:
  std::optional<int64_t> start_, stop_;
  int64_t step_;
};

/// One entry of an index list: an integer, a Slice, None (new axis), Ellipsis ("..." too),
/// a boolean, or a tensor (integer indices or a boolean mask, advanced indexing).
class TensorIndex {
 public:
  enum class Kind { Integer, Slice, None, Ellipsis, Boolean, Tensor };
  TensorIndex(int64_t i) : kind_(Kind::Integer), integer_(i) {}  // NOLINT
  TensorIndex(int i) : kind_(Kind::Integer), integer_(i) {}      // NOLINT
  TensorIndex(Slice s) : kind_(Kind::Slice), slice_(s) {}       // NOLINT
  TensorIndex(NoneType) : kind_(Kind::None) {}                  // NOLINT
  TensorIndex(EllipsisType) : kind_(Kind::Ellipsis) {}          // NOLINT
  TensorIndex(const char* s);                                   // NOLINT: "..."
  TensorIndex(bool b) : kind_(Kind::Boolean), boolean_(b) {}    // NOLINT
  TensorIndex(Tensor t) : kind_(Kind::Tensor), tensor_(std::move(t)) {}  // NOLINT

  Kind kind() const { return kind_; }
  int64_t integer() const { return integer_; }
  const Slice& slice() const { return slice_; }
  bool boolean() const { return boolean_; }
  const Tensor& tensor() const { return tensor_; }

 private:
  Kind kind_;
  int64_t integer_ = 0;
  Slice slice_;
  bool boolean_ = false;
  Tensor tensor_;
};

}  // namespace kiln::indexing
