// The IR data structures: node kinds, values and their use lists, nodes, blocks and graphs, with
// the mutation API the passes use (see graph.h). Printing, parsing and checking live in their
// own files (printer.cpp, parser.cpp, verifier.cpp).
#include "kiln/ir/graph.h"

#include <algorithm>
#include <unordered_map>

#include "kiln/core/error.h"

namespace kiln::ir {

// ---- NodeKind ---------------------------------------------------------------------------------
namespace {
constexpr std::string_view kPrimNames[kNumPrims] = {
    "param",        "return",         "constant",    "if",
    "loop",         "fusion_group",   "call",        "tuple_construct",
    "tuple_unpack", "list_construct", "list_unpack",
};
}  // namespace

std::string_view prim_name(Prim p) { return kPrimNames[static_cast<size_t>(p)]; }

ops::OpKind NodeKind::op() const {
  KILN_ASSERT(is_op(), "NodeKind::op() of structural kind {}", name());
  return static_cast<ops::OpKind>(v_);
}
Prim NodeKind::prim() const {
  KILN_ASSERT(is_prim(), "NodeKind::prim() of op {}", name());
  return static_cast<Prim>(v_ - kPrimBase);
}
std::string_view NodeKind::name() const {
  if (is_op()) return ops::op_info(static_cast<ops::OpKind>(v_)).name;
  return prim_name(static_cast<Prim>(v_ - kPrimBase));
}
std::optional<NodeKind> NodeKind::from_name(std::string_view name) {
  for (int p = static_cast<int>(Prim::Constant); p < kNumPrims; ++p)
    if (kPrimNames[p] == name) return NodeKind(static_cast<Prim>(p));
  if (auto op = ops::op_from_name(name)) return NodeKind(*op);
  return std::nullopt;
}

// ---- SourceLoc --------------------------------------------------------------------------------
std::string SourceLoc::str() const {
  if (!known()) return context;
  std::string s =
      column != 0 ? fmt::format("{}:{}:{}", file, line, column) : fmt::format("{}:{}", file, line);
  if (!context.empty()) s += fmt::format(" ({})", context);
  return s;
}

// ---- Value ------------------------------------------------------------------------------------
Value* Value::set_type(Type t) {
  type_ = std::move(t);
  return this;
}

bool Value::is_block_input() const { return node_->kind().is(Prim::Param); }

Graph* Value::owning_graph() const { return node_->owning_graph(); }

void Value::replace_all_uses_with(Value* v) {
  KILN_ASSERT(v != nullptr && v != this, "replace_all_uses_with: bad replacement");
  KILN_ASSERT(v->owning_graph() == owning_graph(), "replace_all_uses_with: value of another graph");
  for (const Use& u : uses_) {
    u.user->inputs_[u.offset] = v;
    v->uses_.push_back(u);
  }
  uses_.clear();
}

bool Value::is_valid_name(std::string_view name) {
  if (name.empty()) return false;
  const auto alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!alpha(name[0])) return false;
  for (char c : name)
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '.') return false;
  return true;
}

Value* Value::set_debug_name(std::string name) {
  KILN_CHECK(name.empty() || is_valid_name(name),
             "[ir] got value name '{}', expected an identifier ([A-Za-z_][A-Za-z0-9_.]*)", name);
  name_ = std::move(name);
  return this;
}

// ---- Node -------------------------------------------------------------------------------------
Node::~Node() {
  for (Value* v : outputs_) delete v;
}

const ops::Schema* Node::schema() const {
  return kind_.is_op() ? &ops::op_schema(kind_.op()) : nullptr;
}

Value* Node::input(size_t i) const {
  KILN_ASSERT(i < inputs_.size(), "input {} of a {} node with {} inputs", i, kind_.name(),
              inputs_.size());
  return inputs_[i];
}
Value* Node::output(size_t i) const {
  KILN_ASSERT(i < outputs_.size(), "output {} of a {} node with {} outputs", i, kind_.name(),
              outputs_.size());
  return outputs_[i];
}

Value* Node::add_input(Value* v) {
  KILN_ASSERT(v != nullptr && v->owning_graph() == graph_, "add_input: value of another graph");
  v->uses_.push_back({this, inputs_.size()});
  inputs_.push_back(v);
  return v;
}

void Node::drop_input_use(size_t i) {
  auto& uses = inputs_[i]->uses_;
  auto it = std::find(uses.begin(), uses.end(), Use{this, i});
  KILN_ASSERT(it != uses.end(), "use list of an input of {} is missing a use", kind_.name());
  uses.erase(it);
}

Value* Node::insert_input(size_t i, Value* v) {
  KILN_ASSERT(i <= inputs_.size(), "insert_input at {} of {}", i, inputs_.size());
  KILN_ASSERT(v != nullptr && v->owning_graph() == graph_, "insert_input: value of another graph");
  // From the top down, so that a value used twice never has two uses with the same offset.
  for (size_t j = inputs_.size(); j-- > i;)
    for (Use& u : inputs_[j]->uses_)
      if (u.user == this && u.offset == j) {
        ++u.offset;
        break;
      }
  inputs_.insert(inputs_.begin() + static_cast<ptrdiff_t>(i), v);
  v->uses_.push_back({this, i});
  return v;
}

void Node::replace_input(size_t i, Value* v) {
  KILN_ASSERT(i < inputs_.size(), "replace_input {} of {}", i, inputs_.size());
  KILN_ASSERT(v != nullptr && v->owning_graph() == graph_, "replace_input: value of another graph");
  drop_input_use(i);
  inputs_[i] = v;
  v->uses_.push_back({this, i});
}

void Node::replace_input_with(Value* from, Value* to) {
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i] == from) replace_input(i, to);
}

void Node::remove_input(size_t i) {
  KILN_ASSERT(i < inputs_.size(), "remove_input {} of {}", i, inputs_.size());
  drop_input_use(i);
  for (size_t j = i + 1; j < inputs_.size(); ++j)
    for (Use& u : inputs_[j]->uses_)
      if (u.user == this && u.offset == j) {
        --u.offset;
        break;
      }
  inputs_.erase(inputs_.begin() + static_cast<ptrdiff_t>(i));
}

void Node::remove_all_inputs() {
  for (size_t i = 0; i < inputs_.size(); ++i) drop_input_use(i);
  inputs_.clear();
}

Value* Node::add_output(Type t) { return insert_output(outputs_.size(), std::move(t)); }

Value* Node::insert_output(size_t i, Type t) {
  KILN_ASSERT(i <= outputs_.size(), "insert_output at {} of {}", i, outputs_.size());
  Value* v = new Value(this, i, std::move(t), graph_->next_value_id_++);
  outputs_.insert(outputs_.begin() + static_cast<ptrdiff_t>(i), v);
  for (size_t j = i + 1; j < outputs_.size(); ++j) outputs_[j]->offset_ = j;
  return v;
}

void Node::erase_output(size_t i) {
  KILN_ASSERT(i < outputs_.size(), "erase_output {} of {}", i, outputs_.size());
  KILN_ASSERT(!outputs_[i]->has_uses(), "erase_output: output {} of {} still has uses", i,
              kind_.name());
  delete outputs_[i];
  outputs_.erase(outputs_.begin() + static_cast<ptrdiff_t>(i));
  for (size_t j = i; j < outputs_.size(); ++j) outputs_[j]->offset_ = j;
}

Block* Node::block(size_t i) const {
  KILN_ASSERT(i < blocks_.size(), "block {} of a {} node with {} blocks", i, kind_.name(),
              blocks_.size());
  return blocks_[i];
}

Block* Node::add_block() {
  KILN_ASSERT(!kind_.is(Prim::Param) && !kind_.is(Prim::Return), "add_block on a {} node",
              kind_.name());
  Block* b = graph_->new_block(this);
  blocks_.push_back(b);
  return b;
}

void Node::erase_block(size_t i) {
  KILN_ASSERT(i < blocks_.size(), "erase_block {} of {}", i, blocks_.size());
  Block* b = blocks_[i];
  blocks_.erase(blocks_.begin() + static_cast<ptrdiff_t>(i));
  b->destroy_contents();
  graph_->free_block(b);
}

void Node::unlink() {
  prev_->next_ = next_;
  next_->prev_ = prev_;
  prev_ = next_ = nullptr;
  block_ = nullptr;
}

void Node::check_target(const Node* n, bool before) const {
  KILN_ASSERT(n != nullptr && n != this && n->block_ != nullptr, "insert/move: bad target node");
  KILN_ASSERT(!n->kind_.is(before ? Prim::Param : Prim::Return),
              "insert/move: nothing goes {} a block's {} node", before ? "before" : "after",
              n->kind_.name());
  KILN_ASSERT(n->graph_ == graph_, "insert/move: the target is a node of another graph");
  for (const Block* b = n->block_; b->owner_ != nullptr; b = b->owner_->block_) {
    KILN_ASSERT(b->owner_ != this, "insert/move: cannot put a node into its own block");
    if (b->owner_->block_ == nullptr) break;
  }
}

Node* Node::insert_before(Node* n) {
  KILN_ASSERT(block_ == nullptr, "insert_before: node {} is already in a block", kind_.name());
  check_target(n, true);
  prev_ = n->prev_;
  next_ = n;
  n->prev_->next_ = this;
  n->prev_ = this;
  block_ = n->block_;
  return this;
}

Node* Node::insert_after(Node* n) {
  check_target(n, false);
  return insert_before(n->next_);
}

void Node::move_before(Node* n) {
  KILN_ASSERT(block_ != nullptr, "move_before: node {} is not attached", kind_.name());
  check_target(n, true);
  unlink();
  insert_before(n);
}

void Node::move_after(Node* n) {
  KILN_ASSERT(block_ != nullptr, "move_after: node {} is not attached", kind_.name());
  check_target(n, false);
  unlink();
  insert_after(n);
}

bool Node::is_before(const Node* n) const {
  KILN_ASSERT(block_ != nullptr && n->block_ == block_, "is_before: nodes in different blocks");
  for (const Node* p = next_; p != nullptr; p = p->next_)
    if (p == n) return true;
  return false;
}

void Node::destroy() {
  KILN_ASSERT(!kind_.is(Prim::Param) && !kind_.is(Prim::Return),
              "destroy: a block's {} node goes with its block", kind_.name());
  for (size_t i = 0; i < outputs_.size(); ++i)
    KILN_ASSERT(!outputs_[i]->has_uses(), "destroy: output {} of {} still has {} uses", i,
                kind_.name(), outputs_[i]->uses().size());
  remove_all_inputs();
  while (!blocks_.empty()) erase_block(blocks_.size() - 1);
  if (block_ != nullptr) unlink();
  graph_->free_node(this);
}

bool Node::has_attr(std::string_view name) const {
  for (const auto& [k, v] : attrs_)
    if (k == name) return true;
  return false;
}

const IValue& Node::attr(std::string_view name) const {
  for (const auto& [k, v] : attrs_)
    if (k == name) return v;
  KILN_FAIL("[ir] node {} has no attribute '{}'", kind_.name(), name);
}

Node* Node::set_attr(std::string name, IValue value) {
  KILN_CHECK(Value::is_valid_name(name) && name.find('.') == std::string::npos,
             "[ir] got attribute name '{}', expected an identifier ([A-Za-z_][A-Za-z0-9_]*)", name);
  auto it = std::lower_bound(attrs_.begin(), attrs_.end(), name,
                             [](const auto& kv, const std::string& n) { return kv.first < n; });
  if (it != attrs_.end() && it->first == name)
    it->second = std::move(value);
  else
    attrs_.insert(it, {std::move(name), std::move(value)});
  return this;
}

void Node::remove_attr(std::string_view name) {
  std::erase_if(attrs_, [&](const auto& kv) { return kv.first == name; });
}

Node* Node::set_loc(SourceLoc loc) {
  loc_ = std::move(loc);
  return this;
}

// ---- Block ------------------------------------------------------------------------------------
Block::Block(Graph* g, Node* owner) : graph_(g), owner_(owner) {
  param_ = g->new_node(Prim::Param);
  return_ = g->new_node(Prim::Return);
  param_->next_ = return_;
  return_->prev_ = param_;
  param_->block_ = this;
  return_->block_ = this;
}

const std::vector<Value*>& Block::inputs() const { return param_->outputs(); }
const std::vector<Value*>& Block::outputs() const { return return_->inputs(); }
Value* Block::input(size_t i) const { return param_->output(i); }
Value* Block::output(size_t i) const { return return_->input(i); }

Value* Block::add_input(Type t, std::string name) {
  return insert_input(param_->num_outputs(), std::move(t), std::move(name));
}
Value* Block::insert_input(size_t i, Type t, std::string name) {
  Value* v = param_->insert_output(i, std::move(t));
  if (!name.empty()) v->set_debug_name(std::move(name));
  return v;
}
void Block::erase_input(size_t i) { param_->erase_output(i); }

size_t Block::register_output(Value* v) {
  return_->add_input(v);
  return return_->num_inputs() - 1;
}
void Block::insert_output(size_t i, Value* v) { return_->insert_input(i, v); }
void Block::replace_output(size_t i, Value* v) { return_->replace_input(i, v); }
void Block::erase_output(size_t i) { return_->remove_input(i); }

NodeRange Block::nodes() const { return NodeRange(param_->next(), return_, false); }
NodeRange Block::reverse_nodes() const { return NodeRange(return_->prev(), param_, true); }

Node* Block::append_node(Node* n) { return n->insert_before(return_); }
Node* Block::prepend_node(Node* n) { return n->insert_after(param_); }

bool Block::is_isolated() const {
  return owner_ != nullptr &&
         (owner_->kind().is(Prim::FusionGroup) || owner_->kind().is(Prim::Call));
}

void Block::destroy_contents() {
  return_->remove_all_inputs();
  for (Node* n : reverse_nodes()) n->destroy();
  graph_->free_node(return_);
  for (size_t i = 0; i < param_->num_outputs(); ++i)
    KILN_ASSERT(!param_->output(i)->has_uses(), "erase_block: a block input is still used");
  graph_->free_node(param_);
  param_ = return_ = nullptr;
}

void Block::clone_from(const Block& src, const std::function<Value*(Value*)>& outer) {
  KILN_ASSERT(inputs().empty() && outputs().empty() && nodes().empty(),
              "clone_from: the destination block must be empty");
  std::unordered_map<const Value*, Value*> env;
  const auto lookup = [&](Value* v) -> Value* {
    auto it = env.find(v);
    return it != env.end() ? it->second : outer(v);
  };
  for (Value* v : src.inputs()) env[v] = add_input(v->type(), v->debug_name());
  for (Node* n : src.nodes()) {
    Node* c = append_node(graph_->create_clone(n, lookup));
    for (size_t i = 0; i < n->num_outputs(); ++i) env[n->output(i)] = c->output(i);
  }
  for (Value* v : src.outputs()) register_output(lookup(v));
}

// ---- Graph ------------------------------------------------------------------------------------
Graph::Graph() {
  block_ = new_block(nullptr);
  insert_before_ = block_->return_node();
}

Graph::~Graph() {
  for (Node* n : nodes_) delete n;
  for (Block* b : blocks_) delete b;
}

Node* Graph::new_node(NodeKind kind) {
  Node* n = new Node(this, kind);
  nodes_.insert(n);
  return n;
}

Block* Graph::new_block(Node* owner) {
  Block* b = new Block(this, owner);
  blocks_.insert(b);
  return b;
}

void Graph::free_node(Node* n) {
  if (insert_before_ == n) insert_before_ = block_->return_node();
  nodes_.erase(n);
  delete n;
}

void Graph::free_block(Block* b) {
  blocks_.erase(b);
  delete b;
}

Node* Graph::create(NodeKind kind, const std::vector<Value*>& inputs,
                    const std::vector<Type>& output_types) {
  KILN_ASSERT(!kind.is(Prim::Param) && !kind.is(Prim::Return), "create: {} nodes belong to blocks",
              kind.name());
  Node* n = new_node(kind);
  for (Value* v : inputs) n->add_input(v);
  for (const Type& t : output_types) n->add_output(t);
  return n;
}

Node* Graph::create_constant(IValue v, std::optional<Type> type) {
  Node* n = create(Prim::Constant, {}, {type ? *type : type_of(v)});
  n->set_attr("value", std::move(v));
  return n;
}

Node* Graph::create_clone(const Node* n, const std::function<Value*(Value*)>& map,
                          bool copy_blocks) {
  Node* c = new_node(n->kind());
  for (Value* v : n->inputs()) c->add_input(map(v));
  for (Value* v : n->outputs()) c->add_output(v->type())->set_debug_name(v->debug_name());
  c->attrs_ = n->attrs_;
  c->loc_ = n->loc_;
  if (copy_blocks)
    for (Block* b : n->blocks()) c->add_block()->clone_from(*b, map);
  return c;
}

std::unique_ptr<Graph> Graph::copy() const {
  auto g = std::make_unique<Graph>();
  g->block_->clone_from(*block_, [](Value* v) -> Value* {
    KILN_ASSERT(false, "Graph::copy: the top block uses value {} defined outside it", v->id());
    return nullptr;
  });
  return g;
}

}  // namespace kiln::ir
