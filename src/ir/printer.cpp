// The IR printer (see printer.h and docs/ir.md for the format) and the value namer it shares with
// the verifier and the DOT export. Output depends only on the graph's structure, never on
// addresses or creation history, so it serves as golden-test text and as a cache key input.
#include "kiln/ir/printer.h"

#include <cmath>
#include <sstream>

#include "ir/namer.h"
#include "kiln/core/error.h"

namespace kiln::ir {

// ---- Namer ------------------------------------------------------------------------------------
namespace detail {

Namer::Namer(const Graph& g) {
  for_each_block(g.block(), [&](const Block* b) {
    for (const Value* v : b->inputs())
      if (v->has_debug_name()) reserved_.insert(v->debug_name());
    for (const Node* n : b->nodes())
      for (const Value* v : n->outputs())
        if (v->has_debug_name()) reserved_.insert(v->debug_name());
  });
  walk(g.block());
}

void Namer::walk(const Block* b) {
  for (const Value* v : b->inputs()) define(v);
  for (const Node* n : b->nodes()) {
    for (const Value* v : n->outputs()) define(v);
    for (const Block* nested : n->blocks()) walk(nested);
  }
}

void Namer::define(const Value* v) {
  if (names_.count(v)) return;
  std::string name;
  if (v->has_debug_name()) {
    name = v->debug_name();
    // A repeated name gets the first free ".k" that no other value is named already.
    for (size_t k = 1; taken_.count(name); ++k) {
      std::string candidate = fmt::format("{}.{}", v->debug_name(), k);
      if (!taken_.count(candidate) && !reserved_.count(candidate)) name = std::move(candidate);
    }
  } else {
    name = std::to_string(next_number_++);
  }
  taken_.insert(name);
  names_.emplace(v, std::move(name));
}

const std::string& Namer::name(const Value* v) {
  auto it = names_.find(v);
  if (it != names_.end()) return it->second;
  return names_.emplace(v, fmt::format("?{}", v->id())).first->second;
}

}  // namespace detail

// ---- attribute values -------------------------------------------------------------------------
namespace {

std::string float_str(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}
std::string float_str(float f) {
  if (std::isnan(f) || std::isinf(f)) return float_str(static_cast<double>(f));
  std::string s = fmt::format("{}", f);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f)
          out += fmt::format("\\x{:02x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

template <typename T>
std::string element_str(T v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "true" : "false";
  else if constexpr (std::is_same_v<T, double>)
    return float_str(v);
  else if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, Half> ||
                     std::is_same_v<T, BFloat16>)
    return float_str(static_cast<float>(v));
  else
    return std::to_string(static_cast<int64_t>(v));
}

// Reads elements through sizes and strides (no tensor ops: printing inside a trace records
// nothing).
template <typename T>
void append_elements(const Tensor& t, std::vector<std::string>& out) {
  const T* base = static_cast<const T*>(t.data_ptr());
  const int64_t n = t.numel(), nd = t.dim();
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < nd; ++d) off += idx[d] * t.stride(d);
    out.push_back(element_str(base[off]));
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < t.size(d)) break;
      idx[d] = 0;
    }
  }
}

std::string tensor_str(const Tensor& t, const PrintOptions& options) {
  if (!t.defined()) return "None";
  const std::string head =
      fmt::format("tensor({}, {}", dtype_name(t.dtype()), shape_str(t.sizes()));
  if (options.max_tensor_elements > 0 && t.numel() > options.max_tensor_elements)
    return head + ", ...)";
  KILN_CHECK(t.is_cpu(), "[ir.print] tensor constants on {} cannot be printed", t.device().str());
  std::vector<std::string> elems;
  elems.reserve(static_cast<size_t>(t.numel()));
  switch (t.dtype()) {
#define KILN_APPEND(T, name, short_name) \
  case ScalarType::name:                 \
    append_elements<T>(t, elems);        \
    break;
    KILN_FORALL_SCALAR_TYPES(KILN_APPEND)
#undef KILN_APPEND
  }
  return fmt::format("{}, [{}])", head, fmt::join(elems, ", "));
}

}  // namespace

std::string ivalue_str(const IValue& v, const PrintOptions& options) {
  using Tag = IValue::Tag;
  switch (v.tag()) {
    case Tag::None:
      return "None";
    case Tag::Tensor:
      return tensor_str(v.toTensor(), options);
    case Tag::Int:
      return std::to_string(v.toInt());
    case Tag::Double:
      return float_str(v.toDouble());
    case Tag::Bool:
      return v.toBool() ? "true" : "false";
    case Tag::IntList:
      return fmt::format("[{}]", fmt::join(v.toIntList(), ", "));
    case Tag::DoubleList: {
      std::vector<std::string> e;
      for (double d : v.toDoubleList()) e.push_back(float_str(d));
      return fmt::format("[{}]", fmt::join(e, ", "));
    }
    case Tag::TensorList: {
      std::vector<std::string> e;
      for (const Tensor& t : v.toTensorList()) e.push_back(tensor_str(t, options));
      return fmt::format("[{}]", fmt::join(e, ", "));
    }
    case Tag::ScalarType:
      return std::string(dtype_name(v.toScalarType()));
    case Tag::Device:
      return v.toDevice().str();
    case Tag::String:
      return quoted(v.toStringRef());
    case Tag::Tuple: {
      std::vector<std::string> e;
      for (const IValue& x : v.toTuple()) e.push_back(ivalue_str(x, options));
      return fmt::format("({})", fmt::join(e, ", "));
    }
  }
  return "?";
}

// ---- graphs -----------------------------------------------------------------------------------
namespace {

class Printer {
 public:
  Printer(const Graph& g, const PrintOptions& options) : namer_(g), options_(options) {}

  void graph(const Graph& g) {
    out_ << "graph(";
    params(g.inputs(), ",\n      ");
    out_ << "):\n";
    body(g.block(), 2);
    out_ << "  return (";
    values(g.outputs());
    out_ << ")\n";
  }

  // The node's own line (no newline), blocks summarised when summary is set.
  void node_line(const Node* n, bool summary) {
    for (size_t i = 0; i < n->num_outputs(); ++i) {
      if (i) out_ << ", ";
      typed(n->output(i));
    }
    if (n->num_outputs() > 0) out_ << " = ";
    out_ << n->kind().name();
    if (!n->attrs().empty()) {
      out_ << '[';
      for (size_t i = 0; i < n->attrs().size(); ++i) {
        const auto& [k, v] = n->attrs()[i];
        out_ << (i ? ", " : "") << k << '=' << ivalue_str(v, options_);
      }
      out_ << ']';
    }
    out_ << '(';
    values(n->inputs());
    out_ << ')';
    if (summary && !n->blocks().empty())
      out_ << fmt::format(" {{ {} block{} }}", n->blocks().size(),
                          n->blocks().size() > 1 ? "s" : "");
  }

  std::string str() const { return out_.str(); }
  std::ostringstream& out() { return out_; }
  detail::Namer& namer() { return namer_; }

 private:
  void body(const Block* b, int indent) {
    const std::string pad(static_cast<size_t>(indent), ' ');
    for (const Node* n : b->nodes()) {
      out_ << pad;
      node_line(n, false);
      if (options_.source_locations && n->loc().known()) out_ << "  # " << n->loc().str();
      out_ << '\n';
      for (size_t i = 0; i < n->blocks().size(); ++i) {
        const Block* nested = n->block(i);
        out_ << pad << "  block" << i << '(';
        params(nested->inputs(), ", ");
        out_ << "):\n";
        body(nested, indent + 4);
        out_ << pad << "    -> (";
        values(nested->outputs());
        out_ << ")\n";
      }
    }
  }
  void typed(const Value* v) { out_ << '%' << namer_.name(v) << " : " << v->type().str(); }
  void params(const std::vector<Value*>& vs, const char* sep) {
    for (size_t i = 0; i < vs.size(); ++i) {
      if (i) out_ << sep;
      typed(vs[i]);
    }
  }
  void values(const std::vector<Value*>& vs) {
    for (size_t i = 0; i < vs.size(); ++i) out_ << (i ? ", %" : "%") << namer_.name(vs[i]);
  }

  detail::Namer namer_;
  PrintOptions options_;
  std::ostringstream out_;
};

}  // namespace

std::string print(const Graph& g, const PrintOptions& options) {
  Printer p(g, options);
  p.graph(g);
  return p.str();
}

std::ostream& operator<<(std::ostream& os, const Graph& g) { return os << print(g); }

std::string node_str(const Node* n) {
  PrintOptions options;
  options.max_tensor_elements = 8;
  Printer p(*n->owning_graph(), options);
  if (n->kind().is(Prim::Param) || n->kind().is(Prim::Return)) {
    p.out() << (n->kind().is(Prim::Param) ? "block inputs (" : "return (");
    const auto& vs = n->kind().is(Prim::Param) ? n->outputs() : n->inputs();
    for (size_t i = 0; i < vs.size(); ++i) p.out() << (i ? ", %" : "%") << p.namer().name(vs[i]);
    p.out() << ')';
  } else {
    p.node_line(n, true);
  }
  if (n->loc().known()) p.out() << "  # " << n->loc().str();
  return p.str();
}

std::string value_str(const Value* v) {
  detail::Namer namer(*v->owning_graph());
  return "%" + namer.name(v);
}

}  // namespace kiln::ir
