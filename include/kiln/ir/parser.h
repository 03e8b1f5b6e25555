// The IR parser: reads the text form the printer writes (docs/ir.md) back into a Graph, so that
// golden tests, kiln-opt and bug reports can start from text. Malformed text is rejected with a
// ParseError giving the line, the column and what was expected; it never crashes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kiln/core/error.h"
#include "kiln/ir/graph.h"

namespace kiln::ir {

/// Malformed IR text. what() reads "[ir.parse] file:line:column: expected X, got Y" followed by
/// the offending source line and a caret under the column.
class ParseError : public Error {
 public:
  ParseError(const std::string& msg, uint32_t line, uint32_t column)
      : Error(msg), line_(line), column_(column) {}
  /// 1-based position of the error.
  uint32_t line() const { return line_; }
  uint32_t column() const { return column_; }

 private:
  uint32_t line_;
  uint32_t column_;
};

/// Parses the text of one graph. Each node's source location is its position in the text
/// (file:line:column). The result is not verified: call ir::verify on it.
std::unique_ptr<Graph> parse(std::string_view text, std::string_view filename = "<string>");

/// Parses the text of one type ("Tensor(float32, [2, N], cpu, contiguous)", "int[]", "Tensor?").
Type parse_type(std::string_view text);

}  // namespace kiln::ir
