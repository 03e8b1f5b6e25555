// Parses the schemas of ops.def once and checks boxed arguments against them.
#include "kiln/ops/schema.h"

#include <array>
#include <cctype>
#include <mutex>

#include "kiln/core/error.h"

namespace kiln::ops {
namespace {

struct TypeName {
  ArgType type;
  std::string_view name;
};
constexpr TypeName kTypeNames[] = {
    {ArgType::Tensor, "Tensor"},       {ArgType::OptionalTensor, "Tensor?"},
    {ArgType::TensorList, "Tensor[]"}, {ArgType::OptionalTensorList, "Tensor?[]"},
    {ArgType::Operand, "Operand"},     {ArgType::Scalar, "Scalar"},
    {ArgType::Int, "int"},             {ArgType::OptionalInt, "int?"},
    {ArgType::IntList, "int[]"},       {ArgType::Float, "float"},
    {ArgType::Bool, "bool"},           {ArgType::ScalarType, "ScalarType"},
    {ArgType::Device, "Device"},
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  s = trim(s);
  if (s.empty()) return out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ',') {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

ArgType type_or_die(std::string_view spelling, std::string_view op) {
  ArgType t;
  KILN_ASSERT(parse_arg_type(spelling, &t), "op table: schema of {} names unknown type '{}'", op,
              spelling);
  return t;
}

Schema parse_schema(const OpInfo& info) {
  std::string_view s = info.schema;
  const size_t open = s.find('('), close = s.find(')'), arrow = s.find("->");
  KILN_ASSERT(open == 0 && close != std::string_view::npos && arrow != std::string_view::npos &&
                  arrow > close,
              "op table: malformed schema for {}: '{}'", info.name, s);
  Schema schema;
  for (std::string_view p : split_commas(s.substr(1, close - 1))) {
    const size_t sp = p.rfind(' ');
    KILN_ASSERT(sp != std::string_view::npos, "op table: parameter '{}' of {} has no name", p,
                info.name);
    schema.params.push_back({std::string(trim(p.substr(sp + 1))),
                             type_or_die(trim(p.substr(0, sp)), info.name)});
  }
  std::string_view ret = trim(s.substr(arrow + 2));
  if (!ret.empty() && ret.front() == '(') {
    KILN_ASSERT(ret.back() == ')', "op table: malformed results of {}", info.name);
    ret = ret.substr(1, ret.size() - 2);
  }
  for (std::string_view r : split_commas(ret)) schema.returns.push_back(type_or_die(r, info.name));
  return schema;
}

const std::vector<Schema>& all_schemas() {
  static const std::vector<Schema> schemas = [] {
    std::vector<Schema> v;
    for (int k = 0; k < num_ops(); ++k) v.push_back(parse_schema(op_info(static_cast<OpKind>(k))));
    return v;
  }();
  return schemas;
}

}  // namespace

std::string_view arg_type_name(ArgType t) {
  for (const TypeName& n : kTypeNames)
    if (n.type == t) return n.name;
  return "?";
}

bool parse_arg_type(std::string_view spelling, ArgType* out) {
  for (const TypeName& n : kTypeNames)
    if (n.name == spelling) {
      *out = n.type;
      return true;
    }
  return false;
}

bool ivalue_matches(const IValue& v, ArgType t) {
  switch (t) {
    case ArgType::Tensor: return v.is_tensor() && v.toTensor().defined();
    case ArgType::OptionalTensor: return v.is_none() || v.is_tensor();
    case ArgType::TensorList: {
      if (!v.is_tensor_list()) return false;
      for (const Tensor& e : v.toTensorList())
        if (!e.defined()) return false;
      return true;
    }
    case ArgType::OptionalTensorList: return v.is_tensor_list();
    case ArgType::Operand: return (v.is_tensor() && v.toTensor().defined()) || v.is_scalar();
    case ArgType::Scalar: return v.is_scalar();
    case ArgType::Int: return v.is_int();
    case ArgType::OptionalInt: return v.is_none() || v.is_int();
    case ArgType::IntList: return v.is_int_list();
    case ArgType::Float: return v.is_double() || v.is_int();
    case ArgType::Bool: return v.is_bool();
    case ArgType::ScalarType: return v.is_scalar_type();
    case ArgType::Device: return v.is_device();
  }
  return false;
}

int Schema::index_of(std::string_view name) const {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == name) return static_cast<int>(i);
  return -1;
}

const Schema& op_schema(OpKind kind) { return all_schemas()[static_cast<size_t>(kind)]; }

void check_args(OpKind kind, const std::vector<IValue>& args) {
  const Schema& s = op_schema(kind);
  const std::string_view op = op_info(kind).name;
  KILN_CHECK(args.size() == s.params.size(), "[{}] got {} arguments, expected {} (schema {})", op,
             args.size(), s.params.size(), op_info(kind).schema);
  for (size_t i = 0; i < args.size(); ++i)
    KILN_CHECK(ivalue_matches(args[i], s.params[i].type),
               "[{}] argument {} ('{}') got a value of kind {}, expected {}", op, i,
               s.params[i].name, args[i].kind_name(), arg_type_name(s.params[i].type));
}

}  // namespace kiln::ops
