// Op schemas: the typed parameter lists of the op table's rows ("(Tensor self, int dim) ->
// Tensor"), parsed once from ops.def. The boxed entry point (ops::call), the IR verifier and the
// IR printer/parser read an op's parameters from here; no other list of them exists.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/ivalue.h"
#include "kiln/ops/op_kind.h"

namespace kiln::ops {

/// The type of one schema parameter or result.
enum class ArgType : uint8_t {
  Tensor,              // Tensor
  OptionalTensor,      // Tensor?
  TensorList,          // Tensor[]
  OptionalTensorList,  // Tensor?[]: a list whose entries may be None
  Operand,             // a tensor or a number
  Scalar,              // a number: int, float or bool
  Int,                 // int
  OptionalInt,         // int?
  IntList,             // int[]
  Float,               // float
  Bool,                // bool
  ScalarType,          // ScalarType (a dtype)
  Device,              // Device
};

/// The schema spelling: "Tensor", "int[]", "Tensor?[]", ...
std::string_view arg_type_name(ArgType t);
/// Parses a spelling back; false when it names no type.
bool parse_arg_type(std::string_view spelling, ArgType* out);
/// True when v is an acceptable boxed value for a parameter of type t.
bool ivalue_matches(const IValue& v, ArgType t);

struct Param {
  std::string name;
  ArgType type;
};

struct Schema {
  std::vector<Param> params;
  std::vector<ArgType> returns;
  /// Index of a parameter by name, -1 when there is none.
  int index_of(std::string_view name) const;
};

/// The parsed schema of an op (parsed once, then cached).
const Schema& op_schema(OpKind kind);

/// Checks boxed arguments against kind's schema; throws kiln::Error naming the op, the
/// parameter, what it got and what it expected.
void check_args(OpKind kind, const std::vector<IValue>& args);

}  // namespace kiln::ops
