// IR types: construction, printing, subtyping and unification, and checking concrete values
// against types (the interpreter's input/output checks). Parsing of types lives in parser.cpp.
#include "kiln/ir/type.h"

#include "kiln/core/error.h"

namespace kiln::ir {

// ---- Dim --------------------------------------------------------------------------------------
Dim Dim::symbol(std::string name) {
  Dim d(Kind::Symbol);
  d.name_ = std::move(name);
  return d;
}
Dim Dim::unknown() { return Dim(Kind::Unknown); }

std::string Dim::str() const {
  switch (kind_) {
    case Kind::Static:
      return std::to_string(size_);
    case Kind::Symbol:
      return name_;
    case Kind::Unknown:
      return "?";
  }
  return "?";
}

bool Dim::operator==(const Dim& o) const {
  if (kind_ != o.kind_) return false;
  if (kind_ == Kind::Static) return size_ == o.size_;
  if (kind_ == Kind::Symbol) return name_ == o.name_;
  return true;
}

// ---- TensorType -------------------------------------------------------------------------------
TensorType TensorType::of(const Tensor& t) {
  TensorType tt;
  tt.dtype = t.dtype();
  tt.device = t.device();
  std::vector<Dim> sizes;
  for (int64_t s : t.sizes()) sizes.emplace_back(s);
  tt.sizes = std::move(sizes);
  tt.contiguity = t.is_contiguous() ? Contiguity::Contiguous : Contiguity::Strided;
  return tt;
}

std::optional<std::vector<int64_t>> TensorType::static_sizes() const {
  if (!sizes) return std::nullopt;
  std::vector<int64_t> out;
  for (const Dim& d : *sizes) {
    if (!d.is_static()) return std::nullopt;
    out.push_back(d.size());
  }
  return out;
}

// ---- Type -------------------------------------------------------------------------------------
Type make_simple_type(TypeKind k) {
  Type t;
  t.kind_ = k;
  return t;
}

Type tensor_type(TensorType tt) {
  Type t;
  t.kind_ = TypeKind::Tensor;
  t.tensor_ = std::make_shared<const TensorType>(std::move(tt));
  return t;
}
Type tensor_type(ScalarType dtype) {
  TensorType t;
  t.dtype = dtype;
  return tensor_type(std::move(t));
}
Type tensor_type(ScalarType dtype, std::vector<Dim> sizes, std::optional<Device> device,
                 Contiguity contiguity) {
  return tensor_type(TensorType{dtype, std::move(sizes), device, contiguity});
}
Type tensor_type_of(const Tensor& t) { return tensor_type(TensorType::of(t)); }
Type int_type() { return make_simple_type(TypeKind::Int); }
Type float_type() { return make_simple_type(TypeKind::Float); }
Type bool_type() { return make_simple_type(TypeKind::Bool); }
Type none_type() { return make_simple_type(TypeKind::None); }
Type dtype_type() { return make_simple_type(TypeKind::ScalarType); }
Type device_type() { return make_simple_type(TypeKind::Device); }
Type string_type() { return make_simple_type(TypeKind::String); }

Type list_type(Type elem) {
  Type t;
  t.kind_ = TypeKind::List;
  t.elems_ = std::make_shared<const std::vector<Type>>(std::vector<Type>{std::move(elem)});
  return t;
}
Type tuple_type(std::vector<Type> elems) {
  Type t;
  t.kind_ = TypeKind::Tuple;
  t.elems_ = std::make_shared<const std::vector<Type>>(std::move(elems));
  return t;
}
Type optional_type(Type elem) {
  if (elem.is_optional() || elem.kind() == TypeKind::None) return elem;
  Type t;
  t.kind_ = TypeKind::Optional;
  t.elems_ = std::make_shared<const std::vector<Type>>(std::vector<Type>{std::move(elem)});
  return t;
}

const TensorType& Type::tensor() const {
  KILN_ASSERT(kind_ == TypeKind::Tensor, "Type::tensor() of a {}", str());
  return *tensor_;
}
const Type& Type::elem() const {
  KILN_ASSERT(kind_ == TypeKind::List || kind_ == TypeKind::Optional, "Type::elem() of a {}",
              str());
  return (*elems_)[0];
}
const std::vector<Type>& Type::elems() const {
  KILN_ASSERT(kind_ == TypeKind::Tuple, "Type::elems() of a {}", str());
  return *elems_;
}

namespace {
std::string_view contiguity_name(Contiguity c) {
  return c == Contiguity::Contiguous ? "contiguous" : "strided";
}
}  // namespace

std::string Type::str() const {
  switch (kind_) {
    case TypeKind::Tensor: {
      const TensorType& t = *tensor_;
      std::vector<std::string> parts;
      if (t.dtype) parts.emplace_back(dtype_name(*t.dtype));
      if (t.sizes) {
        std::vector<std::string> dims;
        for (const Dim& d : *t.sizes) dims.push_back(d.str());
        parts.push_back(fmt::format("[{}]", fmt::join(dims, ", ")));
      }
      if (t.device) parts.push_back(t.device->str());
      if (t.contiguity != Contiguity::Unknown) parts.emplace_back(contiguity_name(t.contiguity));
      if (parts.empty()) return "Tensor";
      return fmt::format("Tensor({})", fmt::join(parts, ", "));
    }
    case TypeKind::Int:
      return "int";
    case TypeKind::Float:
      return "float";
    case TypeKind::Bool:
      return "bool";
    case TypeKind::None:
      return "None";
    case TypeKind::ScalarType:
      return "ScalarType";
    case TypeKind::Device:
      return "Device";
    case TypeKind::String:
      return "str";
    case TypeKind::List:
      return elem().str() + "[]";
    case TypeKind::Optional:
      return elem().str() + "?";
    case TypeKind::Tuple: {
      std::vector<std::string> e;
      for (const Type& t : elems()) e.push_back(t.str());
      return fmt::format("({})", fmt::join(e, ", "));
    }
  }
  return "?";
}

bool Type::operator==(const Type& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case TypeKind::Tensor:
      return *tensor_ == *o.tensor_;
    case TypeKind::List:
    case TypeKind::Optional:
    case TypeKind::Tuple:
      return *elems_ == *o.elems_;
    default:
      return true;
  }
}

// ---- subtyping and unification ----------------------------------------------------------------
namespace {

bool tensor_subtype(const TensorType& a, const TensorType& b) {
  if (b.dtype && a.dtype != b.dtype) return false;
  if (b.device && a.device != b.device) return false;
  if (b.contiguity != Contiguity::Unknown && a.contiguity != b.contiguity) return false;
  if (!b.sizes) return true;
  if (!a.sizes || a.sizes->size() != b.sizes->size()) return false;
  for (size_t i = 0; i < a.sizes->size(); ++i) {
    const Dim &da = (*a.sizes)[i], &db = (*b.sizes)[i];
    if (db.is_unknown()) continue;
    if (db.is_static() && !(da.is_static() && da.size() == db.size())) return false;
    if (db.is_symbol() && !(da.is_static() || da == db)) return false;
  }
  return true;
}

TensorType tensor_unify(const TensorType& a, const TensorType& b) {
  TensorType r;
  if (a.dtype == b.dtype) r.dtype = a.dtype;
  if (a.device == b.device) r.device = a.device;
  if (a.contiguity == b.contiguity) r.contiguity = a.contiguity;
  if (a.sizes && b.sizes && a.sizes->size() == b.sizes->size()) {
    std::vector<Dim> dims;
    for (size_t i = 0; i < a.sizes->size(); ++i)
      dims.push_back((*a.sizes)[i] == (*b.sizes)[i] ? (*a.sizes)[i] : Dim::unknown());
    r.sizes = std::move(dims);
  }
  return r;
}

}  // namespace

bool is_subtype_of(const Type& a, const Type& b) {
  if (b.is_optional()) {
    if (a.kind() == TypeKind::None) return true;
    return is_subtype_of(a.is_optional() ? a.elem() : a, b.elem());
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case TypeKind::Tensor:
      return tensor_subtype(a.tensor(), b.tensor());
    case TypeKind::List:
      return is_subtype_of(a.elem(), b.elem());
    case TypeKind::Tuple: {
      if (a.elems().size() != b.elems().size()) return false;
      for (size_t i = 0; i < a.elems().size(); ++i)
        if (!is_subtype_of(a.elems()[i], b.elems()[i])) return false;
      return true;
    }
    default:
      return true;
  }
}

std::optional<Type> unify(const Type& a, const Type& b) {
  if (a == b) return a;
  if (a.kind() == TypeKind::None) return optional_type(b);
  if (b.kind() == TypeKind::None) return optional_type(a);
  if (a.is_optional() || b.is_optional()) {
    auto e = unify(a.is_optional() ? a.elem() : a, b.is_optional() ? b.elem() : b);
    if (!e) return std::nullopt;
    return optional_type(*e);
  }
  if (a.kind() != b.kind()) return std::nullopt;
  switch (a.kind()) {
    case TypeKind::Tensor:
      return tensor_type(tensor_unify(a.tensor(), b.tensor()));
    case TypeKind::List: {
      auto e = unify(a.elem(), b.elem());
      if (!e) return std::nullopt;
      return list_type(*e);
    }
    case TypeKind::Tuple: {
      if (a.elems().size() != b.elems().size()) return std::nullopt;
      std::vector<Type> elems;
      for (size_t i = 0; i < a.elems().size(); ++i) {
        auto e = unify(a.elems()[i], b.elems()[i]);
        if (!e) return std::nullopt;
        elems.push_back(*e);
      }
      return tuple_type(std::move(elems));
    }
    default:
      return a;
  }
}

// ---- values -----------------------------------------------------------------------------------
Type type_of(const IValue& v) {
  using Tag = IValue::Tag;
  switch (v.tag()) {
    case Tag::None:
      return none_type();
    case Tag::Tensor:
      return v.toTensor().defined() ? tensor_type_of(v.toTensor()) : none_type();
    case Tag::Int:
      return int_type();
    case Tag::Double:
      return float_type();
    case Tag::Bool:
      return bool_type();
    case Tag::IntList:
      return list_type(int_type());
    case Tag::DoubleList:
      return list_type(float_type());
    case Tag::TensorList: {
      std::optional<Type> elem;
      for (const Tensor& t : v.toTensorList()) {
        Type e = t.defined() ? tensor_type_of(t) : none_type();
        elem = elem ? unify(*elem, e) : e;
      }
      if (!elem || elem->kind() == TypeKind::None) return list_type(optional_type(tensor_type()));
      return list_type(*elem);
    }
    case Tag::ScalarType:
      return dtype_type();
    case Tag::Device:
      return device_type();
    case Tag::String:
      return string_type();
    case Tag::Tuple: {
      std::vector<Type> elems;
      for (const IValue& e : v.toTuple()) elems.push_back(type_of(e));
      return tuple_type(std::move(elems));
    }
  }
  return none_type();
}

namespace {

std::string tensor_mismatch(const TensorType& t, const Tensor& x, SymbolBindings* bindings) {
  if (t.dtype && *t.dtype != x.dtype())
    return fmt::format("dtype is {}, expected {}", dtype_name(x.dtype()), dtype_name(*t.dtype));
  if (t.device && *t.device != x.device())
    return fmt::format("device is {}, expected {}", x.device().str(), t.device->str());
  if (t.contiguity == Contiguity::Contiguous && !x.is_contiguous())
    return "it is not contiguous, expected a contiguous tensor";
  if (t.contiguity == Contiguity::Strided && x.is_contiguous())
    return "it is contiguous, expected a non-contiguous (strided) tensor";
  if (!t.sizes) return {};
  if (static_cast<int64_t>(t.sizes->size()) != x.dim())
    return fmt::format("sizes are {}, expected {} dims", shape_str(x.sizes()), t.sizes->size());
  for (size_t i = 0; i < t.sizes->size(); ++i) {
    const Dim& d = (*t.sizes)[i];
    const int64_t s = x.size(static_cast<int64_t>(i));
    if (d.is_static() && d.size() != s)
      return fmt::format("sizes are {}, expected dim {} to be {}", shape_str(x.sizes()), i,
                         d.size());
    if (d.is_symbol() && bindings != nullptr) {
      bool found = false;
      for (const auto& [name, size] : *bindings) {
        if (name != d.name()) continue;
        found = true;
        if (size != s)
          return fmt::format("sizes are {}, expected dim {} to be {} = {} (bound earlier)",
                             shape_str(x.sizes()), i, d.name(), size);
      }
      if (!found) bindings->emplace_back(d.name(), s);
    }
  }
  return {};
}

}  // namespace

std::string mismatch(const Type& t, const IValue& v, SymbolBindings* bindings) {
  const auto got = [&] { return fmt::format("got a value of kind {}", v.kind_name()); };
  switch (t.kind()) {
    case TypeKind::Optional:
      if (v.is_none() || (v.is_tensor() && !v.toTensor().defined())) return {};
      return mismatch(t.elem(), v, bindings);
    case TypeKind::Tensor:
      if (!v.is_tensor() || !v.toTensor().defined()) return got();
      return tensor_mismatch(t.tensor(), v.toTensor(), bindings);
    case TypeKind::Int:
      return v.is_int() ? std::string() : got();
    case TypeKind::Float:
      return v.is_double() ? std::string() : got();
    case TypeKind::Bool:
      return v.is_bool() ? std::string() : got();
    case TypeKind::None:
      return v.is_none() ? std::string() : got();
    case TypeKind::ScalarType:
      return v.is_scalar_type() ? std::string() : got();
    case TypeKind::Device:
      return v.is_device() ? std::string() : got();
    case TypeKind::String:
      return v.is_string() ? std::string() : got();
    case TypeKind::List: {
      const Type& e = t.elem();
      if (e.kind() == TypeKind::Int) return v.is_int_list() ? std::string() : got();
      if (e.kind() == TypeKind::Float) return v.is_double_list() ? std::string() : got();
      const bool tensors = e.is_tensor() || (e.is_optional() && e.elem().is_tensor());
      if (!tensors) return fmt::format("a list of {} cannot be held by a value", e.str());
      if (!v.is_tensor_list()) return got();
      const auto& list = v.toTensorList();
      for (size_t i = 0; i < list.size(); ++i) {
        std::string m = mismatch(e, list[i].defined() ? IValue(list[i]) : IValue(), bindings);
        if (!m.empty()) return fmt::format("element {}: {}", i, m);
      }
      return {};
    }
    case TypeKind::Tuple: {
      if (!v.is_tuple()) return got();
      const auto& elems = v.toTuple();
      if (elems.size() != t.elems().size())
        return fmt::format("a tuple of {} elements, expected {}", elems.size(), t.elems().size());
      for (size_t i = 0; i < elems.size(); ++i) {
        std::string m = mismatch(t.elems()[i], elems[i], bindings);
        if (!m.empty()) return fmt::format("element {}: {}", i, m);
      }
      return {};
    }
  }
  return got();
}

// ---- schema parameter types -------------------------------------------------------------------
namespace {
bool is_optional_of(const Type& t, TypeKind k) {
  return t.kind() == k || t.kind() == TypeKind::None || (t.is_optional() && t.elem().kind() == k);
}
}  // namespace

bool accepts(ops::ArgType param, const Type& t) {
  using ops::ArgType;
  switch (param) {
    case ArgType::Tensor:
      return t.is_tensor();
    case ArgType::OptionalTensor:
      return is_optional_of(t, TypeKind::Tensor);
    case ArgType::TensorList:
      return t.is_list() && t.elem().is_tensor();
    case ArgType::OptionalTensorList:
      return t.is_list() && is_optional_of(t.elem(), TypeKind::Tensor);
    case ArgType::Operand:
      return t.is_tensor() || t.is_number();
    case ArgType::Scalar:
      return t.is_number();
    case ArgType::Int:
      return t.kind() == TypeKind::Int;
    case ArgType::OptionalInt:
      return is_optional_of(t, TypeKind::Int);
    case ArgType::IntList:
      return t.is_list() && t.elem().kind() == TypeKind::Int;
    case ArgType::Float:
      return t.kind() == TypeKind::Float || t.kind() == TypeKind::Int;
    case ArgType::Bool:
      return t.kind() == TypeKind::Bool;
    case ArgType::ScalarType:
      return t.kind() == TypeKind::ScalarType;
    case ArgType::Device:
      return t.kind() == TypeKind::Device;
  }
  return false;
}

Type type_for_result(ops::ArgType r) {
  using ops::ArgType;
  switch (r) {
    case ArgType::Tensor:
      return tensor_type();
    case ArgType::OptionalTensor:
      return optional_type(tensor_type());
    case ArgType::TensorList:
      return list_type(tensor_type());
    case ArgType::OptionalTensorList:
      return list_type(optional_type(tensor_type()));
    case ArgType::Operand:
      return tensor_type();
    case ArgType::Scalar:
      return float_type();
    case ArgType::Int:
      return int_type();
    case ArgType::OptionalInt:
      return optional_type(int_type());
    case ArgType::IntList:
      return list_type(int_type());
    case ArgType::Float:
      return float_type();
    case ArgType::Bool:
      return bool_type();
    case ArgType::ScalarType:
      return dtype_type();
    case ArgType::Device:
      return device_type();
  }
  return tensor_type();
}

}  // namespace kiln::ir
