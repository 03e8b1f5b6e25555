// The IR parser: a lexer and a recursive-descent parser for the text form of printer.cpp
// (grammar in docs/ir.md). Every failure is a ParseError at a line and column saying what was
// expected; nesting is bounded so that no input can exhaust the stack.
#include "kiln/ir/parser.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "kiln/functions.h"

namespace kiln::ir {
namespace {

constexpr int kMaxDepth = 200;

enum class Tok : uint8_t { End, Ident, Value, Int, Float, String, Punct, Arrow, Ellipsis };

struct Token {
  Tok kind = Tok::End;
  std::string text;  // identifier, value name (without '%'), number, decoded string, punctuation
  uint32_t line = 1;
  uint32_t column = 1;
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::End:
      return "end of input";
    case Tok::Value:
      return fmt::format("'%{}'", t.text);
    case Tok::String:
      return "a string";
    default:
      return fmt::format("'{}'", t.text);
  }
}

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  Lexer(std::string_view text, std::string_view file) : text_(text), file_(file) {}

  [[noreturn]] void fail(uint32_t line, uint32_t column, const std::string& what) const {
    // The offending line with a caret under the column.
    size_t start = 0;
    for (uint32_t l = 1; l < line && start < text_.size(); ++l) {
      size_t nl = text_.find('\n', start);
      start = nl == std::string_view::npos ? text_.size() : nl + 1;
    }
    size_t end = text_.find('\n', start);
    std::string src(
        text_.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    for (char& c : src)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = ' ';
    if (src.size() > 160) src = src.substr(0, 160) + "...";
    std::string caret(column > 1 ? std::min<size_t>(column - 1, 160) : 0, ' ');
    throw ParseError(
        fmt::format("[ir.parse] {}:{}:{}: {}\n  {}\n  {}^", file_, line, column, what, src, caret),
        line, column);
  }

  Token next() {
    skip_space();
    Token t;
    t.line = line_;
    t.column = column_;
    if (pos_ >= text_.size()) return t;
    const char c = text_[pos_];
    if (c == '%') {
      advance();
      size_t start = pos_;
      while (pos_ < text_.size() && (ident_char(text_[pos_]) || text_[pos_] == '.')) advance();
      if (pos_ == start) fail(t.line, t.column, "expected a value name after '%'");
      t.kind = Tok::Value;
      t.text = std::string(text_.substr(start, pos_ - start));
      return t;
    }
    if (ident_start(c)) {
      size_t start = pos_;
      while (pos_ < text_.size() && ident_char(text_[pos_])) advance();
      t.kind = Tok::Ident;
      t.text = std::string(text_.substr(start, pos_ - start));
      return t;
    }
    if (digit(c) || (c == '-' && pos_ + 1 < text_.size() && digit(text_[pos_ + 1])))
      return number(t);
    if (c == '-' && text_.substr(pos_, 4) == "-inf" &&
        (pos_ + 4 >= text_.size() || !ident_char(text_[pos_ + 4]))) {
      for (int i = 0; i < 4; ++i) advance();
      t.kind = Tok::Float;
      t.text = "-inf";
      return t;
    }
    if (c == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '>') {
      advance();
      advance();
      t.kind = Tok::Arrow;
      t.text = "->";
      return t;
    }
    if (c == '.' && text_.substr(pos_, 3) == "...") {
      for (int i = 0; i < 3; ++i) advance();
      t.kind = Tok::Ellipsis;
      t.text = "...";
      return t;
    }
    if (c == '"') return string(t);
    if (std::string_view("()[],:=?{}").find(c) != std::string_view::npos) {
      advance();
      t.kind = Tok::Punct;
      t.text = std::string(1, c);
      return t;
    }
    const unsigned char u = static_cast<unsigned char>(c);
    fail(t.line, t.column,
         u >= 0x20 && u < 0x7f ? fmt::format("unexpected character '{}'", c)
                               : fmt::format("unexpected byte 0x{:02x}", u));
  }

 private:
  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }
  void skip_space() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        advance();
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') advance();
      } else {
        break;
      }
    }
  }
  Token number(Token t) {
    size_t start = pos_;
    if (text_[pos_] == '-') advance();
    while (pos_ < text_.size() && digit(text_[pos_])) advance();
    bool is_float = false;
    if (pos_ < text_.size() && text_[pos_] == '.' && text_.substr(pos_, 3) != "...") {
      is_float = true;
      advance();
      while (pos_ < text_.size() && digit(text_[pos_])) advance();
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      size_t save = pos_;
      uint32_t save_col = column_;
      advance();
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) advance();
      if (pos_ < text_.size() && digit(text_[pos_])) {
        is_float = true;
        while (pos_ < text_.size() && digit(text_[pos_])) advance();
      } else {
        pos_ = save;
        column_ = save_col;
      }
    }
    if (pos_ < text_.size() && ident_char(text_[pos_]))
      fail(t.line, t.column, "expected a number; a number must not run into letters");
    t.kind = is_float ? Tok::Float : Tok::Int;
    t.text = std::string(text_.substr(start, pos_ - start));
    return t;
  }
  Token string(Token t) {
    advance();
    std::string out;
    while (true) {
      if (pos_ >= text_.size() || text_[pos_] == '\n')
        fail(t.line, t.column, "unterminated string");
      char c = text_[pos_];
      if (c == '"') {
        advance();
        break;
      }
      if (c == '\\') {
        advance();
        if (pos_ >= text_.size()) fail(t.line, t.column, "unterminated string");
        const char e = text_[pos_];
        if (e == 'n')
          out += '\n';
        else if (e == 't')
          out += '\t';
        else if (e == '"' || e == '\\')
          out += e;
        else if (e == 'x') {
          if (pos_ + 2 >= text_.size()) fail(line_, column_, "expected two hex digits after \\x");
          unsigned v = 0;
          auto [p, ec] = std::from_chars(text_.data() + pos_ + 1, text_.data() + pos_ + 3, v, 16);
          if (ec != std::errc() || p != text_.data() + pos_ + 3)
            fail(line_, column_, "expected two hex digits after \\x");
          out += static_cast<char>(v);
          advance();
          advance();
        } else {
          fail(line_, column_, fmt::format("unknown escape '\\{}' in a string", e));
        }
        advance();
        continue;
      }
      out += c;
      advance();
    }
    t.kind = Tok::String;
    t.text = std::move(out);
    return t;
  }

  std::string_view text_;
  std::string file_;
  size_t pos_ = 0;
  uint32_t line_ = 1;
  uint32_t column_ = 1;
};

bool is_block_header(const Token& t) {
  if (t.kind != Tok::Ident || t.text.size() < 6 || t.text.compare(0, 5, "block") != 0) return false;
  for (size_t i = 5; i < t.text.size(); ++i)
    if (!digit(t.text[i])) return false;
  return true;
}

std::optional<ScalarType> dtype_from_name(std::string_view name) {
  for (int i = 0; i < kNumScalarTypes; ++i)
    if (dtype_name(static_cast<ScalarType>(i)) == name) return static_cast<ScalarType>(i);
  return std::nullopt;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!digit(c)) return false;
  return true;
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view file) : lex_(text, file), file_(file) {
    tok_ = lex_.next();
  }

  std::unique_ptr<Graph> graph() {
    auto g = std::make_unique<Graph>();
    g_ = g.get();
    expect_ident("graph", "'graph' at the start of the text");
    expect("(", "'(' after 'graph'");
    params(g->block(), "graph input");
    expect(":", "':' after the graph's inputs");
    body(g->block(), 0);
    if (!(tok_.kind == Tok::Ident && tok_.text == "return")) fail("expected a node or 'return'");
    next();
    expect("(", "'(' after 'return'");
    for (Value* v : value_list()) g->register_output(v);
    if (tok_.kind != Tok::End) fail("expected end of input after the graph's return");
    return g;
  }

  Type type_only() {
    Type t = type(0);
    if (tok_.kind != Tok::End) fail("expected end of input after the type");
    return t;
  }

 private:
  // ---- tokens -------------------------------------------------------------------------------
  [[noreturn]] void fail(const std::string& what) const {
    lex_.fail(tok_.line, tok_.column, fmt::format("{}, got {}", what, describe(tok_)));
  }
  [[noreturn]] void fail_at(const Token& t, const std::string& what) const {
    lex_.fail(t.line, t.column, what);
  }
  Token next() {
    Token t = std::move(tok_);
    tok_ = lex_.next();
    return t;
  }
  bool is(const char* punct) const { return tok_.kind == Tok::Punct && tok_.text == punct; }
  bool accept(const char* punct) {
    if (!is(punct)) return false;
    next();
    return true;
  }
  void expect(const char* punct, const char* what) {
    if (!accept(punct)) fail(fmt::format("expected {}", what));
  }
  void expect_ident(const char* word, const char* what) {
    if (tok_.kind != Tok::Ident || tok_.text != word) fail(fmt::format("expected {}", what));
    next();
  }
  void enter(int depth) const {
    if (depth > kMaxDepth) fail(fmt::format("nesting deeper than {} levels", kMaxDepth));
  }

  // ---- values -------------------------------------------------------------------------------
  void define(const Token& name, Value* v) {
    auto [it, fresh] = defs_.emplace(name.text, std::make_pair(v, name));
    if (!fresh)
      fail_at(name, fmt::format("value %{} is defined twice (first at {}:{})", name.text,
                                it->second.second.line, it->second.second.column));
    if (!all_digits(name.text)) {
      if (!Value::is_valid_name(name.text))
        fail_at(name,
                fmt::format("value name %{} is neither a number nor an identifier", name.text));
      v->set_debug_name(name.text);
    }
  }
  Value* use() {
    if (tok_.kind != Tok::Value) fail("expected a value (%name)");
    auto it = defs_.find(tok_.text);
    if (it == defs_.end()) fail_at(tok_, fmt::format("use of undefined value %{}", tok_.text));
    next();
    return it->second.first;
  }
  // Values up to and including ')'.
  std::vector<Value*> value_list() {
    std::vector<Value*> out;
    if (accept(")")) return out;
    do {
      out.push_back(use());
    } while (accept(","));
    expect(")", "',' or ')' in a value list");
    return out;
  }
  // "%name : type" pairs up to and including ')', added as inputs of b.
  void params(Block* b, const char* what) {
    if (accept(")")) return;
    do {
      if (tok_.kind != Tok::Value) fail(fmt::format("expected a {} (%name : type)", what));
      Token name = next();
      expect(":", "':' and a type after the value name");
      Value* v = b->add_input(type(0));
      define(name, v);
    } while (accept(","));
    expect(")", "',' or ')' after a parameter");
  }

  // ---- nodes --------------------------------------------------------------------------------
  bool at_body_end() const {
    return tok_.kind == Tok::End || tok_.kind == Tok::Arrow ||
           (tok_.kind == Tok::Ident && tok_.text == "return");
  }
  void body(Block* b, int depth) {
    enter(depth);
    while (!at_body_end()) node(b, depth);
  }
  void node(Block* b, int depth) {
    const Token start = tok_;
    std::vector<std::pair<Token, Type>> outs;
    if (tok_.kind == Tok::Value) {
      do {
        if (tok_.kind != Tok::Value) fail("expected an output value (%name : type)");
        Token name = next();
        expect(":", "':' and a type after the output name");
        outs.emplace_back(std::move(name), type(0));
      } while (accept(","));
      expect("=", "'=' after the node's outputs");
    }
    if (tok_.kind != Tok::Ident) fail("expected an op or a structural node kind");
    if (is_block_header(tok_)) fail("expected a node; a block must follow a node that takes it");
    const Token kind_tok = next();
    auto kind = NodeKind::from_name(kind_tok.text);
    if (!kind)
      fail_at(kind_tok, fmt::format("unknown node kind '{}' (not an op of ops.def nor "
                                    "a structural kind)",
                                    kind_tok.text));
    std::vector<std::pair<std::string, IValue>> attrs;
    if (accept("[")) {
      do {
        if (tok_.kind != Tok::Ident) fail("expected an attribute name");
        Token name = next();
        for (const auto& [k, v] : attrs)
          if (k == name.text) fail_at(name, fmt::format("attribute '{}' given twice", name.text));
        expect("=", "'=' after the attribute name");
        attrs.emplace_back(name.text, attr_value(0));
      } while (accept(","));
      expect("]", "',' or ']' after an attribute");
    }
    expect("(", fmt::format("'(' and the inputs of {}", kind_tok.text).c_str());
    std::vector<Value*> inputs = value_list();
    std::vector<Type> types;
    for (const auto& o : outs) types.push_back(o.second);
    Node* n = b->append_node(g_->create(*kind, inputs, types));
    n->set_loc({file_, start.line, start.column, ""});
    for (auto& [k, v] : attrs) {
      // "[]" reads as an int list; a float-list constant's type says which it is.
      if (kind->is(Prim::Constant) && k == "value" && v.is_int_list() && v.toIntList().empty() &&
          n->num_outputs() == 1 && n->output()->type().is_list() &&
          n->output()->type().elem().kind() == TypeKind::Float)
        v = IValue(std::vector<double>{});
      n->set_attr(k, std::move(v));
    }
    for (size_t i = 0; i < outs.size(); ++i) define(outs[i].first, n->output(i));
    for (size_t i = 0; is_block_header(tok_); ++i) {
      if (tok_.text != fmt::format("block{}", i)) fail(fmt::format("expected block{}", i));
      next();
      expect("(", "'(' after the block name");
      Block* nested = n->add_block();
      params(nested, "block input");
      expect(":", "':' after the block's inputs");
      body(nested, depth + 1);
      if (tok_.kind != Tok::Arrow) fail("expected a node or '->' ending the block");
      next();
      expect("(", "'(' after '->'");
      for (Value* v : value_list()) nested->register_output(v);
    }
  }

  // ---- types --------------------------------------------------------------------------------
  Type type(int depth) {
    enter(depth);
    Type t = base_type(depth);
    while (true) {
      if (accept("?")) {
        t = optional_type(t);
      } else if (is("[")) {
        next();
        expect("]", "']' after '[' in a list type");
        t = list_type(t);
      } else {
        return t;
      }
    }
  }
  Type base_type(int depth) {
    if (accept("(")) {
      std::vector<Type> elems;
      if (!accept(")")) {
        do {
          elems.push_back(type(depth + 1));
        } while (accept(","));
        expect(")", "',' or ')' in a tuple type");
      }
      return tuple_type(std::move(elems));
    }
    if (tok_.kind != Tok::Ident) fail("expected a type");
    const std::string word = tok_.text;
    if (word == "Tensor") {
      next();
      if (!is("(")) return tensor_type();
      next();
      return tensor_type(tensor_facts());
    }
    static const std::pair<const char*, Type (*)()> kSimple[] = {
        {"int", int_type},    {"float", float_type},      {"bool", bool_type},
        {"None", none_type},  {"ScalarType", dtype_type}, {"Device", device_type},
        {"str", string_type},
    };
    for (const auto& [name, make] : kSimple)
      if (word == name) {
        next();
        return make();
      }
    fail("expected a type (Tensor, int, float, bool, None, ScalarType, Device, str or a tuple)");
  }
  // After "Tensor(": the known facts in the order dtype, sizes, device, contiguity.
  TensorType tensor_facts() {
    TensorType t;
    int stage = 0;  // the next fact must come after this one
    const char* order = "in the order dtype, sizes, device, contiguity";
    do {
      int this_stage;
      if (is("[")) {
        this_stage = 2;
        if (stage >= this_stage) fail(fmt::format("expected the tensor's facts {}", order));
        next();
        t.sizes = dims();
      } else if (tok_.kind == Tok::Ident) {
        const std::string word = tok_.text;
        if (auto dt = dtype_from_name(word)) {
          this_stage = 1;
          if (stage >= this_stage) fail(fmt::format("expected the tensor's facts {}", order));
          next();
          t.dtype = *dt;
        } else if (word == "cpu" || word == "cuda") {
          this_stage = 3;
          if (stage >= this_stage) fail(fmt::format("expected the tensor's facts {}", order));
          t.device = device();
        } else if (word == "contiguous" || word == "strided") {
          this_stage = 4;
          if (stage >= this_stage) fail(fmt::format("expected the tensor's facts {}", order));
          next();
          t.contiguity = word == "contiguous" ? Contiguity::Contiguous : Contiguity::Strided;
        } else {
          fail("expected a dtype (float32, int64, ...), sizes, a device or contiguous/strided");
        }
      } else {
        fail("expected a dtype (float32, int64, ...), sizes, a device or contiguous/strided");
      }
      stage = this_stage;
    } while (accept(","));
    expect(")", "',' or ')' after the tensor's facts");
    return t;
  }
  // After "[": dims up to and including "]".
  std::vector<Dim> dims() {
    std::vector<Dim> out;
    if (accept("]")) return out;
    do {
      if (tok_.kind == Tok::Int) {
        int64_t v = integer(tok_);
        if (v < 0) fail("expected a size >= 0");
        next();
        out.emplace_back(v);
      } else if (tok_.kind == Tok::Ident) {
        out.push_back(Dim::symbol(next().text));
      } else if (accept("?")) {
        out.push_back(Dim::unknown());
      } else {
        fail("expected a dim: a size, a symbol or '?'");
      }
    } while (accept(","));
    expect("]", "',' or ']' after a dim");
    return out;
  }
  Device device() {
    const Token word = next();
    std::string spec = word.text;
    if (accept(":")) {
      if (tok_.kind != Tok::Int) fail("expected a device index after ':'");
      spec += ":" + next().text;
    }
    try {
      return Device(spec);
    } catch (const Error& e) {
      fail_at(word, fmt::format("bad device '{}': {}", spec, e.what()));
    }
  }

  // ---- attribute values ---------------------------------------------------------------------
  int64_t integer(const Token& t) const {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
    if (ec != std::errc() || p != t.text.data() + t.text.size())
      fail_at(t, fmt::format("integer {} is out of range for int64", t.text));
    return v;
  }
  template <typename F>
  F floating(const Token& t) const {
    if (t.text == "inf") return std::numeric_limits<F>::infinity();
    if (t.text == "-inf") return -std::numeric_limits<F>::infinity();
    if (t.text == "nan") return std::numeric_limits<F>::quiet_NaN();
    F v = 0;
    auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
    if (ec == std::errc::result_out_of_range)
      fail_at(t, fmt::format("number {} is out of range", t.text));
    if (ec != std::errc() || p != t.text.data() + t.text.size())
      fail_at(t, fmt::format("malformed number {}", t.text));
    return v;
  }
  bool is_float_word() const {
    return tok_.kind == Tok::Ident && (tok_.text == "inf" || tok_.text == "nan");
  }

  IValue attr_value(int depth) {
    enter(depth);
    if (tok_.kind == Tok::Int) return IValue(integer(next()));
    if (tok_.kind == Tok::Float || is_float_word()) return IValue(floating<double>(next()));
    if (tok_.kind == Tok::String) return IValue(next().text);
    if (is("[")) {
      const Token start = next();
      return list_value(start, depth);
    }
    if (accept("(")) {
      std::vector<IValue> elems;
      if (!accept(")")) {
        do {
          elems.push_back(attr_value(depth + 1));
        } while (accept(","));
        expect(")", "',' or ')' in a tuple");
      }
      return IValue::tuple(std::move(elems));
    }
    if (tok_.kind == Tok::Ident) {
      const std::string word = tok_.text;
      if (word == "true" || word == "false") {
        next();
        return IValue(word == "true");
      }
      if (word == "None") {
        next();
        return IValue();
      }
      if (word == "tensor") return IValue(tensor_value());
      if (auto dt = dtype_from_name(word)) {
        next();
        return IValue(*dt);
      }
      if (word == "cpu" || word == "cuda") return IValue(device());
    }
    fail(
        "expected an attribute value (a number, true/false, None, a string, a list, a dtype, "
        "a device or tensor(...))");
  }
  // After start ("["): a homogeneous list up to and including "]".
  IValue list_value(const Token& start, int depth) {
    std::vector<IValue> elems;
    if (!accept("]")) {
      do {
        elems.push_back(attr_value(depth + 1));
      } while (accept(","));
      expect("]", "',' or ']' in a list");
    }
    bool ints = true, numbers = true, tensors = true;
    for (const IValue& e : elems) {
      ints &= e.is_int();
      numbers &= e.is_int() || e.is_double();
      tensors &= e.is_tensor();
    }
    if (ints) {
      std::vector<int64_t> v;
      for (const IValue& e : elems) v.push_back(e.toInt());
      return IValue(std::move(v));
    }
    if (numbers) {
      std::vector<double> v;
      for (const IValue& e : elems) v.push_back(e.toDouble());
      return IValue(std::move(v));
    }
    if (tensors) {
      std::vector<Tensor> v;
      for (const IValue& e : elems) v.push_back(e.toTensor());
      return IValue(std::move(v));
    }
    fail_at(start, "expected a list of ints, of floats or of tensors");
  }
  // tensor(dtype, [sizes], [values])
  Tensor tensor_value() {
    next();
    expect("(", "'(' after 'tensor'");
    if (tok_.kind != Tok::Ident || !dtype_from_name(tok_.text))
      fail("expected the tensor constant's dtype (float32, int64, ...)");
    const ScalarType dt = *dtype_from_name(next().text);
    expect(",", "',' after the dtype");
    expect("[", "'[' and the tensor constant's sizes");
    std::vector<int64_t> sizes;
    int64_t numel = 1;
    if (!accept("]")) {
      do {
        if (tok_.kind != Tok::Int) fail("expected a size");
        const int64_t s = integer(tok_);
        if (s < 0) fail("expected a size >= 0");
        if (s != 0 && numel > (int64_t{1} << 40) / s) fail("tensor constant too large");
        numel *= s;
        sizes.push_back(s);
        next();
      } while (accept(","));
      expect("]", "',' or ']' after a size");
    }
    expect(",", "',' and the tensor constant's values");
    if (tok_.kind == Tok::Ellipsis)
      fail(
          "an elided tensor constant cannot be read back: print it with "
          "PrintOptions::max_tensor_elements = 0");
    const Token values_at = tok_;
    expect("[", "'[' and the tensor constant's values");
    std::vector<Token> elems;
    if (!accept("]")) {
      do {
        if (static_cast<int64_t>(elems.size()) >= numel)
          fail(fmt::format("expected {} values for sizes {}", numel, shape_str(sizes)));
        elems.push_back(next());
      } while (accept(","));
      expect("]", "',' or ']' after a value");
    }
    if (static_cast<int64_t>(elems.size()) != numel)
      fail_at(values_at, fmt::format("got {} values, expected {} for sizes {}", elems.size(), numel,
                                     shape_str(sizes)));
    expect(")", "')' after the tensor constant's values");
    Tensor t = kiln::empty(sizes, TensorOptions(dt));
    switch (dt) {
#define KILN_FILL(T, name, short_name) \
  case ScalarType::name:               \
    fill<T>(t, elems);                 \
    break;
      KILN_FORALL_SCALAR_TYPES(KILN_FILL)
#undef KILN_FILL
    }
    return t;
  }
  template <typename T>
  void fill(Tensor& t, const std::vector<Token>& elems) {
    T* p = static_cast<T*>(t.data_ptr());
    for (size_t i = 0; i < elems.size(); ++i) {
      const Token& e = elems[i];
      if constexpr (std::is_same_v<T, bool>) {
        if (e.kind != Tok::Ident || (e.text != "true" && e.text != "false"))
          fail_at(e, fmt::format("expected true or false in a bool tensor, got {}", describe(e)));
        p[i] = e.text == "true";
      } else if constexpr (std::is_integral_v<T>) {
        if (e.kind != Tok::Int)
          fail_at(e, fmt::format("expected an integer in an integer tensor, got {}", describe(e)));
        const int64_t v = integer(e);
        if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            v > static_cast<int64_t>(std::numeric_limits<T>::max()))
          fail_at(e, fmt::format("{} is out of range for {}", v, dtype_name(scalar_type_of<T>)));
        p[i] = static_cast<T>(v);
      } else {
        const bool word = e.kind == Tok::Ident && (e.text == "inf" || e.text == "nan");
        if (e.kind != Tok::Int && e.kind != Tok::Float && !word)
          fail_at(e, fmt::format("expected a number in a floating tensor, got {}", describe(e)));
        if constexpr (std::is_same_v<T, double>)
          p[i] = floating<double>(e);
        else
          p[i] = T(floating<float>(e));
      }
    }
  }

  Lexer lex_;
  std::string file_;
  Token tok_;
  Graph* g_ = nullptr;
  std::unordered_map<std::string, std::pair<Value*, Token>> defs_;
};

}  // namespace

std::unique_ptr<Graph> parse(std::string_view text, std::string_view filename) {
  return Parser(text, filename).graph();
}

Type parse_type(std::string_view text) { return Parser(text, "<type>").type_only(); }

}  // namespace kiln::ir
