// Value naming shared by the printer, the verifier's messages and the DOT export: named values
// keep their debug name (made unique with a ".N" suffix), unnamed ones are numbered in the order
// the printer meets their definitions, so the same graph always prints the same way.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>

#include "kiln/ir/graph.h"

namespace kiln::ir::detail {

class Namer {
 public:
  /// Names every value of g in print order.
  explicit Namer(const Graph& g);
  /// The name without the '%'; values the walk never met get "?<id>" (malformed graphs).
  const std::string& name(const Value* v);

 private:
  void walk(const Block* b);
  void define(const Value* v);
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_set<std::string> reserved_;  // every debug name in the graph
  std::unordered_set<std::string> taken_;
  size_t next_number_ = 0;
};

/// Calls f(block) for b and every block nested in it, in print order.
template <typename F>
void for_each_block(const Block* b, const F& f) {
  f(b);
  for (const Node* n : b->nodes())
    for (const Block* nested : n->blocks()) for_each_block(nested, f);
}

}  // namespace kiln::ir::detail
