// The IR: Graph / Block / Node / Value in SSA form, the structure every later stage (tracer,
// passes, interpreter, codegen) reads and rewrites. A Graph owns one top Block; a Block is a list
// of Nodes between a param node (its inputs) and a return node (its outputs); Nodes may hold
// nested Blocks (if, loop, fusion group, call). Every Value is defined exactly once and typed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kiln/ir/node_kind.h"
#include "kiln/ir/type.h"
#include "kiln/ivalue.h"

namespace kiln::ir {

class Graph;
class Block;
class Node;
class Value;

/// Where a node came from: a user's call (file:line), a position in parsed IR text
/// (file:line:column), or nothing known. context says what the location is of ("trace",
/// "builder", the op a user called...).
struct SourceLoc {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  std::string context;

  bool known() const { return !file.empty(); }
  /// "file:line[:column]" followed by " (context)" when there is one; "" when unknown.
  std::string str() const;
};

/// One use of a Value: input number `offset` of node `user`.
struct Use {
  Node* user;
  size_t offset;
  bool operator==(const Use& o) const = default;
};

/// An SSA value: an output of a node, or an input of a block (an output of its param node).
class Value {
 public:
  /// The static type of the value.
  const Type& type() const { return type_; }
  /// Changes the type (passes refine types; the verifier checks the result). Returns this.
  Value* set_type(Type t);
  /// The defining node (a block's param node for block inputs).
  Node* node() const { return node_; }
  /// The position among the defining node's outputs.
  size_t offset() const { return offset_; }
  /// True when the value is an input of a block (or of the graph).
  bool is_block_input() const;
  /// The graph the defining node belongs to.
  Graph* owning_graph() const;

  /// Every (node, input index) reading the value, block outputs included.
  const std::vector<Use>& uses() const { return uses_; }
  bool has_uses() const { return !uses_.empty(); }
  /// Makes every user read v instead.
  ///   before: %b = neg(%a); %c = add(%b, %b)    a->... b->replace_all_uses_with(a)
  ///   after:  %b = neg(%a); %c = add(%a, %a)
  void replace_all_uses_with(Value* v);

  /// The name the printer uses ("x", "fc1.weight"); empty when the value has none, in which
  /// case it prints as a number. Names are identifiers ([A-Za-z_][A-Za-z0-9_.]*); an invalid
  /// name throws kiln::Error.
  const std::string& debug_name() const { return name_; }
  bool has_debug_name() const { return !name_.empty(); }
  /// Sets (or, with "", clears) the name; returns this.
  Value* set_debug_name(std::string name);
  /// A number unique within the graph, in creation order (stable across mutations; not printed).
  size_t id() const { return id_; }

  /// True when name is acceptable to set_debug_name.
  static bool is_valid_name(std::string_view name);

 private:
  friend class Node;
  friend class Graph;
  Value(Node* node, size_t offset, Type type, size_t id)
      : node_(node), offset_(offset), type_(std::move(type)), id_(id) {}
  Node* node_;
  size_t offset_;
  Type type_;
  size_t id_;
  std::string name_;
  std::vector<Use> uses_;
};

// Note [Node ownership and lists]
// The Graph owns every Node and Block it created, attached or not, and frees them when it dies;
// Node::destroy() frees one early. A Block's nodes form a doubly linked list running from its
// param node to its return node; insert_before/after and move_before/after splice it. Passes
// iterate with `for (Node* n : block->nodes())`; the iterator fetches the next node before
// yielding one, so destroying the node just yielded is safe.

/// An operation in a block: a kind, input Values, output Values, nested blocks, attributes.
class Node {
 public:
  NodeKind kind() const { return kind_; }
  /// The op's schema (null for structural kinds).
  const ops::Schema* schema() const;

  /// The input values, in order (for ops: the schema's order).
  const std::vector<Value*>& inputs() const { return inputs_; }
  /// The output values the node defines, in order.
  const std::vector<Value*>& outputs() const { return outputs_; }
  /// Input / output i (an InternalError when out of range).
  Value* input(size_t i) const;
  Value* output(size_t i = 0) const;
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }

  // ---- inputs ---------------------------------------------------------------------------
  /// Appends an input; returns it.
  Value* add_input(Value* v);
  /// Inserts v as input i (later inputs shift up).
  Value* insert_input(size_t i, Value* v);
  /// Replaces input i with v.
  void replace_input(size_t i, Value* v);
  /// Replaces every occurrence of from among the inputs with to.
  void replace_input_with(Value* from, Value* to);
  /// Removes input i (later inputs shift down).
  void remove_input(size_t i);
  /// Removes every input (before destroying a node whose inputs are being rewired).
  void remove_all_inputs();

  // ---- outputs --------------------------------------------------------------------------
  /// Appends / inserts an output of type t; returns it.
  Value* add_output(Type t);
  Value* insert_output(size_t i, Type t);
  /// Erases output i, which must have no uses.
  void erase_output(size_t i);

  // ---- nested blocks --------------------------------------------------------------------
  /// The nested blocks (if: then, else; loop: body; fusion group and call: the sub-graph).
  const std::vector<Block*>& blocks() const { return blocks_; }
  Block* block(size_t i) const;
  /// Appends an empty nested block; returns it.
  Block* add_block();
  /// Destroys block i and everything in it.
  void erase_block(size_t i);

  // ---- position -------------------------------------------------------------------------
  /// The block this node is in; null while detached.
  Block* owning_block() const { return block_; }
  Graph* owning_graph() const { return graph_; }
  /// The neighbours in the owning block's list (the param/return nodes at the ends).
  Node* next() const { return next_; }
  Node* prev() const { return prev_; }
  bool is_attached() const { return block_ != nullptr; }
  /// Inserts this detached node just before n (into n's block); returns this.
  Node* insert_before(Node* n);
  /// Inserts this detached node just after n; returns this.
  Node* insert_after(Node* n);
  /// Moves this attached node to just before / after n (possibly into another block); an
  /// InternalError, before anything changes, when n is in this node's own blocks.
  void move_before(Node* n);
  void move_after(Node* n);
  /// True when this node comes before n in their common block (O(distance)).
  bool is_before(const Node* n) const;
  /// Unlinks and frees the node, its blocks and outputs. Its outputs must have no uses.
  void destroy();

  // ---- attributes -----------------------------------------------------------------------
  /// Named constant facts of the node (constant: `value`; call: `name`), kept sorted by name.
  const std::vector<std::pair<std::string, IValue>>& attrs() const { return attrs_; }
  /// True when the node has the attribute.
  bool has_attr(std::string_view name) const;
  /// The attribute's value; throws kiln::Error naming the node when it has none.
  const IValue& attr(std::string_view name) const;
  /// Sets (or replaces) an attribute; names are identifiers. Returns this.
  Node* set_attr(std::string name, IValue value);
  void remove_attr(std::string_view name);

  /// Where the node came from (see SourceLoc).
  const SourceLoc& loc() const { return loc_; }
  Node* set_loc(SourceLoc loc);

 private:
  friend class Graph;
  friend class Block;
  friend class Value;
  Node(Graph* g, NodeKind kind) : graph_(g), kind_(kind) {}
  ~Node();
  void unlink();
  void drop_input_use(size_t i);
  // Asserts that this node may be put just before (or after) n.
  void check_target(const Node* n, bool before) const;

  Graph* graph_;
  NodeKind kind_;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;  // owned
  std::vector<Block*> blocks_;   // owned by the graph, freed by destroy/erase_block
  std::vector<std::pair<std::string, IValue>> attrs_;
  SourceLoc loc_;
  Block* block_ = nullptr;
  Node* prev_ = nullptr;
  Node* next_ = nullptr;
};

/// Iterates a block's nodes (param and return nodes excluded). The iterator fetches the next
/// node before yielding one, so destroying or moving the node just yielded is safe; nodes
/// inserted right after it are not visited.
class NodeRange {
 public:
  class iterator {
   public:
    iterator(Node* n, Node* end, bool reverse) : n_(n), end_(end), reverse_(reverse) {
      next_ = n_ != end_ ? step(n_) : nullptr;
    }
    Node* operator*() const { return n_; }
    iterator& operator++() {
      n_ = next_;
      next_ = n_ != end_ ? step(n_) : nullptr;
      return *this;
    }
    bool operator!=(const iterator& o) const { return n_ != o.n_; }
    bool operator==(const iterator& o) const { return n_ == o.n_; }

   private:
    Node* step(Node* n) const { return reverse_ ? n->prev() : n->next(); }
    Node* n_;
    Node* next_;
    Node* end_;
    bool reverse_;
  };
  NodeRange(Node* first, Node* end, bool reverse) : first_(first), end_(end), reverse_(reverse) {}
  iterator begin() const { return iterator(first_, end_, reverse_); }
  iterator end() const { return iterator(end_, end_, reverse_); }
  bool empty() const { return first_ == end_; }

 private:
  Node* first_;
  Node* end_;
  bool reverse_;
};

/// A list of nodes with typed inputs (block parameters) and outputs (what it returns).
class Block {
 public:
  /// The block's inputs (the outputs of its param node).
  const std::vector<Value*>& inputs() const;
  /// The values the block returns (the inputs of its return node).
  const std::vector<Value*>& outputs() const;
  Value* input(size_t i) const;
  Value* output(size_t i) const;
  /// Appends / inserts an input of type t, optionally named; returns it.
  Value* add_input(Type t, std::string name = {});
  Value* insert_input(size_t i, Type t, std::string name = {});
  /// Erases input i, which must have no uses.
  void erase_input(size_t i);
  /// Appends v to the outputs; returns its index.
  size_t register_output(Value* v);
  /// Inserts, replaces or erases output i.
  void insert_output(size_t i, Value* v);
  void replace_output(size_t i, Value* v);
  void erase_output(size_t i);

  /// The nodes, first to last / last to first. See Note [Node ownership and lists].
  NodeRange nodes() const;
  NodeRange reverse_nodes() const;
  /// The sentinels at the ends of the node list.
  Node* param_node() const { return param_; }
  Node* return_node() const { return return_; }
  /// Inserts a detached node at the end / the start; returns it.
  Node* append_node(Node* n);
  Node* prepend_node(Node* n);

  /// The node this block belongs to; null for the graph's top block.
  Node* owning_node() const { return owner_; }
  Graph* owning_graph() const { return graph_; }
  /// True for the blocks of fusion groups and calls: they may use only their own values.
  bool is_isolated() const;
  /// Clones src's inputs, nodes and outputs into this empty block. Values src uses from outside
  /// itself are mapped through outer (called once per such value).
  void clone_from(const Block& src, const std::function<Value*(Value*)>& outer);

 private:
  friend class Graph;
  friend class Node;
  Block(Graph* g, Node* owner);
  void destroy_contents();
  Graph* graph_;
  Node* owner_;
  Node* param_;
  Node* return_;
};

/// A function in SSA form: typed inputs, a top block of nodes, outputs.
class Graph {
 public:
  /// An empty graph: no inputs, no nodes, no outputs.
  Graph();
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  /// The top block; the graph's inputs and outputs are its inputs and outputs.
  Block* block() const { return block_; }
  const std::vector<Value*>& inputs() const { return block_->inputs(); }
  const std::vector<Value*>& outputs() const { return block_->outputs(); }
  Value* add_input(Type t, std::string name = {}) {
    return block_->add_input(std::move(t), std::move(name));
  }
  size_t register_output(Value* v) { return block_->register_output(v); }

  // ---- creating nodes (detached until inserted) -------------------------------------------
  /// A detached node of kind with these inputs and one output per type.
  Node* create(NodeKind kind, const std::vector<Value*>& inputs = {},
               const std::vector<Type>& output_types = {});
  /// A detached constant node holding v (its output's type is type_of(v) unless given).
  Node* create_constant(IValue v, std::optional<Type> type = std::nullopt);
  /// A detached copy of n whose inputs are map(n's inputs); blocks are deep-copied, mapping
  /// values from outside them through map as well.
  Node* create_clone(const Node* n, const std::function<Value*(Value*)>& map,
                     bool copy_blocks = true);

  // ---- the insertion point ----------------------------------------------------------------
  /// Where insert() puts nodes: before this node (the top block's return node by default).
  Node* insert_point() const { return insert_before_; }
  void set_insert_point(Node* before) { insert_before_ = before; }
  /// Insert at the end of b.
  void set_insert_point(Block* b) { insert_before_ = b->return_node(); }
  /// Inserts a detached node at the insertion point; returns it.
  Node* insert(Node* n) { return n->insert_before(insert_before_); }

  /// A deep copy (tensor constants are shared: constants are never written).
  std::unique_ptr<Graph> copy() const;
  /// Number of live nodes, including every block's param and return node.
  size_t num_nodes() const { return nodes_.size(); }

 private:
  friend class Node;
  friend class Block;
  Node* new_node(NodeKind kind);
  Block* new_block(Node* owner);
  void free_node(Node* n);
  void free_block(Block* b);
  size_t next_value_id_ = 0;
  std::unordered_set<Node*> nodes_;
  std::unordered_set<Block*> blocks_;
  Block* block_;
  Node* insert_before_;
};

/// Sets the graph's insertion point for a scope and restores it afterwards.
class WithInsertPoint {
 public:
  explicit WithInsertPoint(Node* before)
      : graph_(before->owning_graph()), saved_(graph_->insert_point()) {
    graph_->set_insert_point(before);
  }
  explicit WithInsertPoint(Block* b) : graph_(b->owning_graph()), saved_(graph_->insert_point()) {
    graph_->set_insert_point(b);
  }
  ~WithInsertPoint() { graph_->set_insert_point(saved_); }
  WithInsertPoint(const WithInsertPoint&) = delete;
  WithInsertPoint& operator=(const WithInsertPoint&) = delete;

 private:
  Graph* graph_;
  Node* saved_;
};

}  // namespace kiln::ir
