// OpKind and per-op metadata, expanded from the one op table (ops.def).
// Later layers (autograd, IR, codegen) query traits here instead of keeping their own lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln::ops {

enum class OpFamily : uint8_t {
  Unary, Binary, Reduce, Ternary, Copy, Movement, Scan, Normalize, Linalg, Conv, Pool, Index,
  Sort, Creation
};

enum class DtypeRule : uint8_t { Promote, IntToFloat, Bool, Same, Long, SumLike, Explicit };

enum OpTrait : uint32_t {
  kFusible = 1u << 0,
  kCommutative = 1u << 1,
  kNoBool = 1u << 2,
  kFloatOnly = 1u << 3,
  kNonDiff = 1u << 4,
  kRandom = 1u << 5,
  kView = 1u << 6,
};

enum class OpKind : uint16_t {
#define KILN_UNARY_OP(Name, fn, r, t) Name,
#define KILN_BINARY_OP(Name, m, r, t) Name,
#define KILN_REDUCE_OP(Name, m, r, t) Name,
#define KILN_OP(Name, m, f, r, t, s) Name,
#include "kiln/ops/ops.def"
};

/// Static facts about one op, straight from its row in ops.def.
struct OpInfo {
  OpKind kind;
  std::string_view name;  // the IR mnemonic and the name used in error messages
  OpFamily family;
  DtypeRule dtype_rule;
  uint32_t traits;
  std::string_view schema;  // "(Tensor self, int dim) -> Tensor"; see ops.def

  bool has(OpTrait t) const { return (traits & t) != 0; }
  bool is_elementwise() const {
    return family == OpFamily::Unary || family == OpFamily::Binary ||
           family == OpFamily::Ternary || family == OpFamily::Copy;
  }
  bool is_reduction() const { return family == OpFamily::Reduce; }
  bool is_movement() const { return family == OpFamily::Movement; }
  bool is_library_call() const { return family == OpFamily::Linalg || family == OpFamily::Conv; }
  bool is_view() const { return has(kView); }
  bool is_differentiable() const { return !has(kNonDiff); }
};

/// Number of rows in the op table.
int num_ops();
/// Metadata for an op.
const OpInfo& op_info(OpKind k);
/// Looks an op up by its mnemonic; nullopt when no row has that name.
std::optional<OpKind> op_from_name(std::string_view name);

}  // namespace kiln::ops
