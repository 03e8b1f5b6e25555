// Graphviz DOT export (see dot.h). Node ids follow print order and value labels come from the
// printer's namer, so the DOT text lines up with the printed IR.
#include "kiln/ir/dot.h"

#include <sstream>
#include <unordered_map>

#include "ir/namer.h"
#include "kiln/ir/printer.h"

namespace kiln::ir {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class DotWriter {
 public:
  explicit DotWriter(const Graph& g) : namer_(g) {}

  std::string run(const Graph& g) {
    out_ << "digraph kiln {\n  rankdir=TB;\n"
         << "  node [shape=box, fontname=\"monospace\", fontsize=10];\n"
         << "  edge [fontname=\"monospace\", fontsize=9];\n";
    block(g.block(), "graph", 1);
    for (const std::string& e : edges_) out_ << "  " << e << '\n';
    out_ << "}\n";
    return out_.str();
  }

 private:
  std::string typed(const Value* v) {
    return fmt::format("%{} : {}", namer_.name(v), v->type().str());
  }

  // Emits the pseudo-node for the block's inputs, its nodes, and the pseudo-node for its outputs.
  void block(const Block* b, const std::string& title, int indent) {
    const std::string pad(static_cast<size_t>(indent) * 2, ' ');
    const std::string in_id = fresh("in");
    std::string label = fmt::format("{} inputs", title);
    for (const Value* v : b->inputs()) label += fmt::format("\n{}", typed(v));
    out_ << pad << in_id << " [label=\"" << escape(label) << "\", shape=ellipse];\n";
    for (const Value* v : b->inputs()) producer_[v] = in_id;
    for (const Node* n : b->nodes()) node(n, indent);
    const std::string out_id = fresh("out");
    out_ << pad << out_id << " [label=\"" << escape(fmt::format("{} return", title))
         << "\", shape=ellipse];\n";
    consume(b->return_node(), out_id);
  }

  void node(const Node* n, int indent) {
    const std::string pad(static_cast<size_t>(indent) * 2, ' ');
    const std::string id = fresh("n");
    std::string label(n->kind().name());
    if (n->kind().is(Prim::Constant) && n->has_attr("value")) {
      PrintOptions o;
      o.max_tensor_elements = 8;
      label += fmt::format(" {}", ivalue_str(n->attr("value"), o));
    }
    for (const Value* v : n->outputs()) label += fmt::format("\n{}", typed(v));
    if (n->loc().known()) label += fmt::format("\n{}", n->loc().str());
    out_ << pad << id << " [label=\"" << escape(label) << "\"];\n";
    consume(n, id);
    for (size_t i = 0; i < n->blocks().size(); ++i) {
      out_ << pad << "subgraph cluster_" << clusters_++ << " {\n"
           << pad << "  label=\"" << escape(fmt::format("{} block{}", n->kind().name(), i))
           << "\";\n";
      block(n->block(i), fmt::format("block{}", i), indent + 1);
      out_ << pad << "}\n";
    }
    for (const Value* v : n->outputs()) producer_[v] = id;
  }

  void consume(const Node* n, const std::string& id) {
    for (const Value* v : n->inputs()) {
      auto it = producer_.find(v);
      const std::string from = it != producer_.end() ? it->second : undefined(v);
      edges_.push_back(fmt::format("{} -> {} [label=\"{}\"];", from, id,
                                   escape(fmt::format("%{}", namer_.name(v)))));
    }
  }
  std::string undefined(const Value* v) {
    const std::string id = fresh("undef");
    out_ << "  " << id << " [label=\"" << escape(fmt::format("undefined %{}", namer_.name(v)))
         << "\", color=red];\n";
    producer_[v] = id;
    return id;
  }
  std::string fresh(const char* prefix) { return fmt::format("{}{}", prefix, ids_++); }

  detail::Namer namer_;
  std::ostringstream out_;
  std::vector<std::string> edges_;
  std::unordered_map<const Value*, std::string> producer_;
  size_t ids_ = 0;
  size_t clusters_ = 0;
};

}  // namespace

std::string to_dot(const Graph& g) { return DotWriter(g).run(g); }

}  // namespace kiln::ir
