// IValue accessors, comparison and printing.
#include "kiln/ivalue.h"

#include <ostream>

#include "kiln/core/error.h"

namespace kiln {

IValue::IValue(const Scalar& s) {
  if (s.is_boolean()) v_ = s.toBool();
  else if (s.is_integral()) v_ = s.toLong();
  else v_ = s.toDouble();
}

IValue IValue::tuple(std::vector<IValue> elems) {
  IValue v;
  v.v_ = std::make_shared<const std::vector<IValue>>(std::move(elems));
  return v;
}

void IValue::bad(std::string_view expected) const {
  KILN_FAIL("[IValue] got a value of kind {}, expected {}", kind_name(), expected);
}

const Tensor& IValue::toTensor() const {
  if (!is_tensor()) bad("Tensor");
  return std::get<Tensor>(v_);
}
int64_t IValue::toInt() const {
  if (!is_int()) bad("int");
  return std::get<int64_t>(v_);
}
double IValue::toDouble() const {
  if (is_double()) return std::get<double>(v_);
  if (is_int()) return static_cast<double>(std::get<int64_t>(v_));
  if (is_bool()) return std::get<bool>(v_) ? 1.0 : 0.0;
  bad("float");
}
bool IValue::toBool() const {
  if (!is_bool()) bad("bool");
  return std::get<bool>(v_);
}
Scalar IValue::toScalar() const {
  if (is_double()) return Scalar(std::get<double>(v_));
  if (is_int()) return Scalar(std::get<int64_t>(v_));
  if (is_bool()) return Scalar(std::get<bool>(v_));
  bad("Scalar");
}
const std::vector<int64_t>& IValue::toIntList() const {
  if (!is_int_list()) bad("int[]");
  return std::get<std::vector<int64_t>>(v_);
}
const std::vector<double>& IValue::toDoubleList() const {
  if (!is_double_list()) bad("float[]");
  return std::get<std::vector<double>>(v_);
}
const std::vector<Tensor>& IValue::toTensorList() const {
  if (!is_tensor_list()) bad("Tensor[]");
  return std::get<std::vector<Tensor>>(v_);
}
ScalarType IValue::toScalarType() const {
  if (!is_scalar_type()) bad("ScalarType");
  return std::get<ScalarType>(v_);
}
Device IValue::toDevice() const {
  if (!is_device()) bad("Device");
  return std::get<Device>(v_);
}
const std::string& IValue::toStringRef() const {
  if (!is_string()) bad("str");
  return std::get<std::string>(v_);
}
const std::vector<IValue>& IValue::toTuple() const {
  if (!is_tuple()) bad("tuple");
  return *std::get<TupleData>(v_);
}

std::string_view IValue::kind_name() const {
  switch (tag()) {
    case Tag::None: return "None";
    case Tag::Tensor: return "Tensor";
    case Tag::Int: return "int";
    case Tag::Double: return "float";
    case Tag::Bool: return "bool";
    case Tag::IntList: return "int[]";
    case Tag::DoubleList: return "float[]";
    case Tag::TensorList: return "Tensor[]";
    case Tag::ScalarType: return "ScalarType";
    case Tag::Device: return "Device";
    case Tag::String: return "str";
    case Tag::Tuple: return "tuple";
  }
  return "?";
}

bool IValue::operator==(const IValue& o) const {
  if (tag() != o.tag()) return false;
  switch (tag()) {
    case Tag::Tensor: return toTensor().is_same(o.toTensor());
    case Tag::TensorList: {
      const auto &a = toTensorList(), &b = o.toTensorList();
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!a[i].is_same(b[i])) return false;
      return true;
    }
    case Tag::Double: {
      // Bitwise, so that NaN constants compare equal to themselves.
      const double a = std::get<double>(v_), b = std::get<double>(o.v_);
      return a == b || (a != a && b != b);
    }
    case Tag::Tuple: return toTuple() == o.toTuple();
    case Tag::None: return true;
    case Tag::Int: return toInt() == o.toInt();
    case Tag::Bool: return toBool() == o.toBool();
    case Tag::IntList: return toIntList() == o.toIntList();
    case Tag::DoubleList: return toDoubleList() == o.toDoubleList();
    case Tag::ScalarType: return toScalarType() == o.toScalarType();
    case Tag::Device: return toDevice() == o.toDevice();
    case Tag::String: return toStringRef() == o.toStringRef();
  }
  return false;
}

std::ostream& operator<<(std::ostream& os, const IValue& v) {
  using Tag = IValue::Tag;
  switch (v.tag()) {
    case Tag::None: return os << "None";
    case Tag::Tensor: {
      const Tensor& t = v.toTensor();
      if (!t.defined()) return os << "Tensor(undefined)";
      return os << "Tensor(" << dtype_name(t.dtype()) << shape_str(t.sizes()) << ")";
    }
    case Tag::Int: return os << v.toInt();
    case Tag::Double: return os << fmt::format("{}", v.toDouble());
    case Tag::Bool: return os << (v.toBool() ? "true" : "false");
    case Tag::IntList: return os << shape_str(v.toIntList());
    case Tag::DoubleList: return os << fmt::format("[{}]", fmt::join(v.toDoubleList(), ", "));
    case Tag::TensorList: return os << "Tensor[" << v.toTensorList().size() << "]";
    case Tag::ScalarType: return os << dtype_name(v.toScalarType());
    case Tag::Device: return os << v.toDevice().str();
    case Tag::String: return os << '"' << v.toStringRef() << '"';
    case Tag::Tuple: {
      os << '(';
      const auto& t = v.toTuple();
      for (size_t i = 0; i < t.size(); ++i) os << (i ? ", " : "") << t[i];
      return os << ')';
    }
  }
  return os;
}

}  // namespace kiln
