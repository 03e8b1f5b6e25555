// NodeKind: what an IR node does. Either a primitive of the one op table (ops::OpKind, printed
// with its ops.def mnemonic) or one of a small closed set of structural kinds (Prim): constants,
// control flow, sub-graphs and tuple/list plumbing. There is no string-typed op.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "kiln/ops/op_kind.h"

namespace kiln::ir {

/// The structural node kinds. Their mnemonics never collide with an op's (a test checks).
enum class Prim : uint8_t {
  Param,           // internal: the outputs of a block's param node are the block's inputs
  Return,          // internal: the inputs of a block's return node are the block's outputs
  Constant,        // one output; the value is the node's `value` attribute
  If,              // (bool cond) -> outs; block0 runs when cond is true, block1 otherwise
  Loop,            // (int trip_count, carried...) -> carried; body block (int i, carried...)
  FusionGroup,     // (ins...) -> outs; one isolated block: a unit for code generation
  Call,            // (ins...) -> outs; one isolated block: a sub-graph call, to be inlined
  TupleConstruct,  // (elems...) -> tuple
  TupleUnpack,     // (tuple) -> elems...
  ListConstruct,   // (elems...) -> list
  ListUnpack,      // (list) -> elems... (count and refined types are checked when run)
};
inline constexpr int kNumPrims = 11;

class NodeKind {
 public:
  constexpr NodeKind(ops::OpKind op) : v_(static_cast<uint16_t>(op)) {}  // NOLINT
  constexpr NodeKind(Prim p)
      : v_(static_cast<uint16_t>(kPrimBase + static_cast<uint16_t>(p))) {}  // NOLINT

  /// True for a primitive of the op table.
  constexpr bool is_op() const { return v_ < kPrimBase; }
  constexpr bool is_prim() const { return v_ >= kPrimBase; }
  constexpr bool is(Prim p) const { return *this == NodeKind(p); }
  /// The op (only when is_op()).
  ops::OpKind op() const;
  /// The structural kind (only when is_prim()).
  Prim prim() const;
  /// The mnemonic: the op's ops.def name, or "constant", "if", "loop", ...
  std::string_view name() const;
  /// Looks a mnemonic up (ops and the printable prims; not "param"/"return").
  static std::optional<NodeKind> from_name(std::string_view name);

  constexpr bool operator==(const NodeKind& o) const { return v_ == o.v_; }
  constexpr bool operator!=(const NodeKind& o) const { return v_ != o.v_; }

 private:
  static constexpr uint16_t kPrimBase = 0x8000;
  uint16_t v_;
};

/// The mnemonic of a structural kind.
std::string_view prim_name(Prim p);

}  // namespace kiln::ir
