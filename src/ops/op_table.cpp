// OpInfo rows expanded from ops.def: the only place op metadata is materialised at run time.
#include <array>
#include <string_view>

#include "kiln/ops/op_kind.h"

namespace kiln::ops {
namespace {

constexpr OpInfo kOpTable[] = {
#define KILN_UNARY_OP(Name, fn, rule, traits) \
  {OpKind::Name, #fn, OpFamily::Unary, DtypeRule::rule, (traits), "(Tensor self) -> Tensor"},
#define KILN_BINARY_OP(Name, fn, rule, traits)                        \
  {OpKind::Name, #fn, OpFamily::Binary, DtypeRule::rule, (traits), \
   "(Operand self, Operand other) -> Tensor"},
#define KILN_REDUCE_OP(Name, fn, rule, traits)                        \
  {OpKind::Name, #fn, OpFamily::Reduce, DtypeRule::rule, (traits), \
   "(Tensor self, int[] dim, bool keepdim) -> Tensor"},
#define KILN_OP(Name, fn, family, rule, traits, schema) \
  {OpKind::Name, #fn, OpFamily::family, DtypeRule::rule, (traits), schema},
#include "kiln/ops/ops.def"
};

constexpr bool rows_in_enum_order() {
  for (size_t i = 0; i < std::size(kOpTable); ++i)
    if (static_cast<size_t>(kOpTable[i].kind) != i) return false;
  return true;
}
static_assert(rows_in_enum_order(), "kOpTable must be indexed by OpKind");

}  // namespace

int num_ops() { return static_cast<int>(std::size(kOpTable)); }

const OpInfo& op_info(OpKind k) { return kOpTable[static_cast<size_t>(k)]; }

std::optional<OpKind> op_from_name(std::string_view name) {
  for (const OpInfo& info : kOpTable)
    if (info.name == name) return info.kind;
  return std::nullopt;
}

}  // namespace kiln::ops
