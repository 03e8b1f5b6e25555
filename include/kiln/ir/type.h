// IR types: the static type of every Value of a graph. A tensor type records what is known of
// its dtype, sizes (each dim static, a named symbol, or unknown), device and contiguity; the
// other types are the non-tensor values ops take (int, float, bool, ScalarType, Device, lists,
// tuples, optionals). The verifier, the interpreter and the passes all reason with these.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/device.h"
#include "kiln/core/dtype.h"
#include "kiln/ivalue.h"
#include "kiln/ops/schema.h"

namespace kiln::ir {

/// One dimension of a tensor type: a static size, a named symbol (two dims with the same
/// symbol have the same size within one run of a graph), or unknown.
class Dim {
 public:
  Dim(int64_t size) : kind_(Kind::Static), size_(size) {}  // NOLINT: {2, 3} reads as sizes
  Dim(int size) : Dim(static_cast<int64_t>(size)) {}       // NOLINT
  /// A symbolic size; name is an identifier ("N", "batch").
  static Dim symbol(std::string name);
  static Dim unknown();

  bool is_static() const { return kind_ == Kind::Static; }
  bool is_symbol() const { return kind_ == Kind::Symbol; }
  bool is_unknown() const { return kind_ == Kind::Unknown; }
  /// The static size (only when is_static()).
  int64_t size() const { return size_; }
  /// The symbol's name (only when is_symbol()).
  const std::string& name() const { return name_; }
  /// "3", "N" or "?".
  std::string str() const;
  bool operator==(const Dim& o) const;

 private:
  enum class Kind : uint8_t { Static, Symbol, Unknown };
  Dim(Kind k) : kind_(k) {}
  Kind kind_;
  int64_t size_ = 0;
  std::string name_;
};

/// What is known of a tensor's memory layout.
enum class Contiguity : uint8_t { Unknown, Contiguous, Strided };

/// The facts a tensor type records; every field may be unknown.
struct TensorType {
  std::optional<ScalarType> dtype;
  std::optional<std::vector<Dim>> sizes;  // nullopt: not even the rank is known
  std::optional<Device> device;
  Contiguity contiguity = Contiguity::Unknown;

  /// The exact type of a concrete tensor: dtype, static sizes, device and contiguity.
  static TensorType of(const Tensor& t);
  /// Static sizes when every dim is static.
  std::optional<std::vector<int64_t>> static_sizes() const;
  bool operator==(const TensorType& o) const = default;
};

enum class TypeKind : uint8_t {
  Tensor,
  Int,
  Float,
  Bool,
  None,
  ScalarType,
  Device,
  String,
  List,
  Tuple,
  Optional
};

/// An IR type: a small immutable value, cheap to copy. Built with the free functions below
/// (tensor_type(), int_type(), list_type(...), ...).
class Type {
 public:
  /// The None type.
  Type() = default;

  TypeKind kind() const { return kind_; }
  bool is_tensor() const { return kind_ == TypeKind::Tensor; }
  bool is_list() const { return kind_ == TypeKind::List; }
  bool is_tuple() const { return kind_ == TypeKind::Tuple; }
  bool is_optional() const { return kind_ == TypeKind::Optional; }
  /// Int, Float or Bool: what the schemas call a Scalar.
  bool is_number() const {
    return kind_ == TypeKind::Int || kind_ == TypeKind::Float || kind_ == TypeKind::Bool;
  }
  /// The tensor facts (only for tensor types).
  const TensorType& tensor() const;
  /// The element type of a list or optional.
  const Type& elem() const;
  /// The element types of a tuple.
  const std::vector<Type>& elems() const;

  /// The text form, as the printer writes it: "Tensor(float32, [2, N], cpu, contiguous)",
  /// "int", "Tensor?[]", "(Tensor, int)".
  std::string str() const;
  bool operator==(const Type& o) const;
  bool operator!=(const Type& o) const { return !(*this == o); }

 private:
  friend Type tensor_type(TensorType t);
  friend Type list_type(Type elem);
  friend Type tuple_type(std::vector<Type> elems);
  friend Type optional_type(Type elem);
  friend Type make_simple_type(TypeKind k);
  TypeKind kind_ = TypeKind::None;
  std::shared_ptr<const TensorType> tensor_;
  std::shared_ptr<const std::vector<Type>> elems_;  // list/optional: one; tuple: many
};

/// A tensor type with the given facts (all unknown by default: plain "Tensor").
Type tensor_type(TensorType t = {});
/// Shorthand: only the dtype known.
Type tensor_type(ScalarType dtype);
/// Shorthand: dtype and sizes known, device and contiguity as given (unknown by default).
Type tensor_type(ScalarType dtype, std::vector<Dim> sizes, std::optional<Device> device = {},
                 Contiguity contiguity = Contiguity::Unknown);
/// The exact type of a concrete tensor.
Type tensor_type_of(const Tensor& t);
Type int_type();
Type float_type();
Type bool_type();
Type none_type();
/// The type of a dtype value (schema spelling "ScalarType").
Type dtype_type();
Type device_type();
Type string_type();
Type list_type(Type elem);
Type tuple_type(std::vector<Type> elems);
/// A value of elem's type or None ("Tensor?"). optional_type of an optional is itself.
Type optional_type(Type elem);

/// True when every value of type a is also a value of type b: b knows no more than a (a tensor
/// of known sizes is a subtype of a tensor of unknown sizes; None and T are subtypes of T?).
bool is_subtype_of(const Type& a, const Type& b);
/// The most precise type both a and b are subtypes of, or nullopt when none exists (int and
/// Tensor). Tensor facts that differ become unknown.
std::optional<Type> unify(const Type& a, const Type& b);

/// The exact type of a boxed value (lists of tensors get the unified element type).
Type type_of(const IValue& v);

/// Sizes bound to symbolic dims while checking values against types (one run of a graph).
using SymbolBindings = std::vector<std::pair<std::string, int64_t>>;
/// Checks that a concrete value conforms to a type; returns an empty string when it does, else
/// what differs ("dim 1 is 4, expected 3"). Symbols are bound on first sight in bindings.
std::string mismatch(const Type& t, const IValue& v, SymbolBindings* bindings = nullptr);

/// True when a value of type t may be passed for a schema parameter of type param (Tensor,
/// Tensor?, Tensor[], Operand, Scalar, int, int[], ...).
bool accepts(ops::ArgType param, const Type& t);
/// The least precise type of values a schema result of type r may produce (for op outputs
/// whose type nothing refined yet).
Type type_for_result(ops::ArgType r);

}  // namespace kiln::ir
