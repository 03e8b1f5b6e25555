// IValue: one boxed argument or result of a primitive (a tensor, a number, a list, a dtype...).
// The op table's schemas are written in these types; the boxed entry point ops::call, the
// autograd recorder, the tracer and the IR interpreter all pass primitives' arguments as IValues.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kiln/core/scalar.h"
#include "kiln/tensor.h"

namespace kiln {

class IValue {
 public:
  enum class Tag : uint8_t {
    None, Tensor, Int, Double, Bool, IntList, DoubleList, TensorList, ScalarType, Device, String,
    Tuple
  };

  IValue() = default;  // None
  IValue(std::nullopt_t) {}  // NOLINT
  IValue(Tensor t) : v_(std::move(t)) {}  // NOLINT
  IValue(const Scalar& s);  // NOLINT: Int, Double or Bool by the scalar's kind
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  IValue(T v) : v_(static_cast<int64_t>(v)) {}  // NOLINT
  IValue(double v) : v_(v) {}  // NOLINT
  IValue(bool v) : v_(v) {}  // NOLINT
  IValue(std::vector<int64_t> v) : v_(std::move(v)) {}  // NOLINT
  IValue(IntArrayRef v) : v_(v.vec()) {}  // NOLINT
  IValue(std::vector<double> v) : v_(std::move(v)) {}  // NOLINT
  IValue(std::vector<Tensor> v) : v_(std::move(v)) {}  // NOLINT
  IValue(ScalarType t) : v_(t) {}  // NOLINT
  IValue(Device d) : v_(d) {}  // NOLINT
  IValue(std::string s) : v_(std::move(s)) {}  // NOLINT
  IValue(const char* s) : v_(std::string(s)) {}  // NOLINT
  template <typename T>
  IValue(const std::optional<T>& o) {  // NOLINT
    if (o) *this = IValue(*o);
  }
  /// A tuple of values (multi-result ops, tuple-typed graph values).
  static IValue tuple(std::vector<IValue> elems);

  Tag tag() const { return static_cast<Tag>(v_.index()); }
  bool is_none() const { return tag() == Tag::None; }
  bool is_tensor() const { return tag() == Tag::Tensor; }
  bool is_int() const { return tag() == Tag::Int; }
  bool is_double() const { return tag() == Tag::Double; }
  bool is_bool() const { return tag() == Tag::Bool; }
  /// Int, Double or Bool.
  bool is_scalar() const { return is_int() || is_double() || is_bool(); }
  bool is_int_list() const { return tag() == Tag::IntList; }
  bool is_double_list() const { return tag() == Tag::DoubleList; }
  bool is_tensor_list() const { return tag() == Tag::TensorList; }
  bool is_scalar_type() const { return tag() == Tag::ScalarType; }
  bool is_device() const { return tag() == Tag::Device; }
  bool is_string() const { return tag() == Tag::String; }
  bool is_tuple() const { return tag() == Tag::Tuple; }

  // Accessors throw kiln::Error naming the expected and actual kind on a mismatch.
  const Tensor& toTensor() const;
  int64_t toInt() const;
  /// Int, Double or Bool as a double.
  double toDouble() const;
  bool toBool() const;
  Scalar toScalar() const;
  const std::vector<int64_t>& toIntList() const;
  const std::vector<double>& toDoubleList() const;
  const std::vector<Tensor>& toTensorList() const;
  ScalarType toScalarType() const;
  Device toDevice() const;
  const std::string& toStringRef() const;
  const std::vector<IValue>& toTuple() const;
  /// The tensor, or an undefined tensor for None.
  Tensor toOptionalTensor() const { return is_none() ? Tensor() : toTensor(); }
  std::optional<int64_t> toOptionalInt() const {
    return is_none() ? std::nullopt : std::optional<int64_t>(toInt());
  }
  std::optional<ScalarType> toOptionalScalarType() const {
    return is_none() ? std::nullopt : std::optional<ScalarType>(toScalarType());
  }

  /// "Tensor", "int", "float", ... (the schema spelling of the kind).
  std::string_view kind_name() const;
  /// Values compared by content for numbers, lists, dtypes and strings; tensors by identity.
  bool operator==(const IValue& o) const;

 private:
  using TupleData = std::shared_ptr<const std::vector<IValue>>;
  std::variant<std::monostate, Tensor, int64_t, double, bool, std::vector<int64_t>,
               std::vector<double>, std::vector<Tensor>, ScalarType, Device, std::string,
               TupleData>
      v_;
  [[noreturn]] void bad(std::string_view expected) const;
};

/// Prints numbers, lists and dtypes like the IR text does; tensors as their type.
std::ostream& operator<<(std::ostream& os, const IValue& v);

}  // namespace kiln
