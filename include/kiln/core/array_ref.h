// A non-owning view of a contiguous array (like c10::ArrayRef), constructible from braces,
// vectors and single values, so `x.view({2, 3})` and `x.sum(1)` both read naturally.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <vector>

#include <fmt/format.h>

namespace kiln {

template <typename T>
class ArrayRef {
 public:
  using value_type = T;
  using const_iterator = const T*;

  constexpr ArrayRef() = default;
  constexpr ArrayRef(const T& one) : data_(&one), size_(1) {}  // NOLINT
  constexpr ArrayRef(const T* data, size_t size) : data_(data), size_(size) {}
  ArrayRef(const std::vector<T>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  // The initializer list lives until the end of the full expression, like c10::ArrayRef.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
  constexpr ArrayRef(std::initializer_list<T> il)  // NOLINT
      : data_(il.begin() == il.end() ? nullptr : il.begin()), size_(il.size()) {}
#pragma GCC diagnostic pop

  constexpr const T* data() const { return data_; }
  constexpr size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr const T* begin() const { return data_; }
  constexpr const T* end() const { return data_ + size_; }
  constexpr const T& operator[](size_t i) const { return data_[i]; }
  constexpr const T& front() const { return data_[0]; }
  constexpr const T& back() const { return data_[size_ - 1]; }
  std::vector<T> vec() const { return std::vector<T>(begin(), end()); }

  bool equals(ArrayRef o) const {
    if (size_ != o.size_) return false;
    for (size_t i = 0; i < size_; ++i)
      if (!(data_[i] == o.data_[i])) return false;
    return true;
  }
  friend bool operator==(ArrayRef a, ArrayRef b) { return a.equals(b); }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
};

using IntArrayRef = ArrayRef<int64_t>;

/// Formats sizes as "[2, 3]" for error messages and printing.
std::string shape_str(IntArrayRef sizes);

inline std::ostream& operator<<(std::ostream& os, IntArrayRef a) { return os << shape_str(a); }

}  // namespace kiln

template <>
struct fmt::formatter<kiln::IntArrayRef> : fmt::formatter<std::string_view> {
  auto format(kiln::IntArrayRef a, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(kiln::shape_str(a), ctx);
  }
};
