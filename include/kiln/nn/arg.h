// The building blocks of nn's options structs, spelled like libtorch's: KILN_ARG (TORCH_ARG),
// ExpandingArray (a size that is one number or one per spatial dim) and the enum tags
// kiln::kMean, kiln::kFanIn, kiln::kReLU, ... held in std::variants.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "kiln/core/array_ref.h"
#include "kiln/core/error.h"

/// Declares an option `name` of type T with a chaining setter `name(v)` and getters `name()`,
/// like libtorch's TORCH_ARG: `KILN_ARG(bool, bias) = true;`.
#define KILN_ARG(T, name)                                         \
 public:                                                          \
  inline auto name(const T& new_##name)->decltype(*this) {        \
    this->name##_ = new_##name;                                   \
    return *this;                                                 \
  }                                                               \
  inline auto name(T&& new_##name)->decltype(*this) {             \
    this->name##_ = std::move(new_##name);                        \
    return *this;                                                 \
  }                                                               \
  inline const T& name() const noexcept { return this->name##_; } \
  inline T& name() noexcept { return this->name##_; }             \
                                                                  \
 private:                                                         \
  T name##_

namespace kiln {

/// D values given as one number (repeated) or as D numbers: kernel sizes, strides, padding.
template <size_t D, typename T = int64_t>
class ExpandingArray {
 public:
  /// Every entry equal to value (`Conv2dOptions(3, 8, 5)` means a 5x5 kernel).
  ExpandingArray(T value) { values_.fill(value); }  // NOLINT: implicit like libtorch
  /// Exactly D values.
  ExpandingArray(std::initializer_list<T> list) : ExpandingArray(ArrayRef<T>(list)) {}   // NOLINT
  ExpandingArray(const std::vector<T>& values) : ExpandingArray(ArrayRef<T>(values)) {}  // NOLINT
  ExpandingArray(ArrayRef<T> values) {                                                   // NOLINT
    KILN_CHECK(values.size() == D, "[ExpandingArray] got {} values, expected {}", values.size(), D);
    std::copy(values.begin(), values.end(), values_.begin());
  }
  ExpandingArray(const std::array<T, D>& values) : values_(values) {}  // NOLINT

  std::array<T, D>& operator*() { return values_; }
  const std::array<T, D>& operator*() const { return values_; }
  std::array<T, D>* operator->() { return &values_; }
  const std::array<T, D>* operator->() const { return &values_; }
  operator ArrayRef<T>() const { return ArrayRef<T>(values_.data(), D); }  // NOLINT
  std::vector<T> vec() const { return std::vector<T>(values_.begin(), values_.end()); }
  const T& operator[](size_t i) const { return values_[i]; }
  size_t size() const { return D; }
  bool operator==(const ExpandingArray& o) const { return values_ == o.values_; }

 private:
  std::array<T, D> values_;
};

/// Tags of libtorch's enum-like options (torch::enumtype); use the constants kiln::kMean, ...
namespace enumtype {
#define KILN_ENUM_TYPE(Name, text)                         \
  struct k##Name {                                         \
    static constexpr const char* name() { return text; }   \
    bool operator==(const k##Name&) const { return true; } \
  };
KILN_ENUM_TYPE(None, "kNone")
KILN_ENUM_TYPE(Mean, "kMean")
KILN_ENUM_TYPE(Sum, "kSum")
KILN_ENUM_TYPE(FanIn, "kFanIn")
KILN_ENUM_TYPE(FanOut, "kFanOut")
KILN_ENUM_TYPE(Linear, "kLinear")
KILN_ENUM_TYPE(Conv1D, "kConv1D")
KILN_ENUM_TYPE(Conv2D, "kConv2D")
KILN_ENUM_TYPE(Conv3D, "kConv3D")
KILN_ENUM_TYPE(Sigmoid, "kSigmoid")
KILN_ENUM_TYPE(Tanh, "kTanh")
KILN_ENUM_TYPE(ReLU, "kReLU")
KILN_ENUM_TYPE(LeakyReLU, "kLeakyReLU")
KILN_ENUM_TYPE(GELU, "kGELU")
#undef KILN_ENUM_TYPE
}  // namespace enumtype

inline constexpr enumtype::kNone kNone{};
inline constexpr enumtype::kMean kMean{};
inline constexpr enumtype::kSum kSum{};
inline constexpr enumtype::kFanIn kFanIn{};
inline constexpr enumtype::kFanOut kFanOut{};
inline constexpr enumtype::kLinear kLinear{};
inline constexpr enumtype::kConv1D kConv1D{};
inline constexpr enumtype::kConv2D kConv2D{};
inline constexpr enumtype::kConv3D kConv3D{};
inline constexpr enumtype::kSigmoid kSigmoid{};
inline constexpr enumtype::kTanh kTanh{};
inline constexpr enumtype::kReLU kReLU{};
inline constexpr enumtype::kLeakyReLU kLeakyReLU{};
inline constexpr enumtype::kGELU kGELU{};

/// The "kMean" spelling of whichever tag a variant holds (for printing and errors).
template <typename... Ts>
std::string enum_name(const std::variant<Ts...>& v) {
  return std::visit([](const auto& tag) { return std::string(tag.name()); }, v);
}

}  // namespace kiln
