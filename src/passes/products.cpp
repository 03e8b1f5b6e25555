// Product splitting (products.h). Every new node is typed by the shape rules; a rewrite whose
// result does not get the replaced value's sizes is taken back.
#include "kiln/passes/products.h"

#include <map>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::Block;
using ir::Node;
using ir::Value;
using ops::OpKind;

using detail::constant_int;
using detail::constant_number;
using detail::dtype_of;
using detail::is_op;
using detail::static_sizes;

bool elementwise(const Node* n) {
  if (!n->kind().is_op()) return false;
  const ops::OpInfo& info = ops::op_info(n->kind().op());
  return info.is_elementwise() && info.has(ops::kFusible) && !info.has(ops::kRandom) &&
         n->num_outputs() == 1;
}

// Every use of v is an elementwise op in block b whose result has v's sizes.
bool read_elementwise(const Value* v, const Block* b) {
  const auto sizes = static_sizes(v);
  if (!sizes || v->uses().empty()) return false;
  for (const ir::Use& u : v->uses())
    if (u.user->owning_block() != b || !elementwise(u.user) ||
        static_sizes(u.user->output()) != sizes)
      return false;
  return true;
}

// A step-1 slice along dim 0 or 1 of a 2-D value: {dim, start, end}.
struct Cut {
  int64_t dim = 0, start = 0, end = 0;
};
std::optional<Cut> cut_of(const Node* s) {
  if (!is_op(s, OpKind::Slice)) return std::nullopt;
  const auto dim = constant_int(s->input(1)), start = constant_int(s->input(2)),
             end = constant_int(s->input(3)), step = constant_int(s->input(4));
  if (!dim || !start || !end || !step || *step != 1) return std::nullopt;
  const int64_t d = *dim < 0 ? *dim + 2 : *dim;
  if (d != 0 && d != 1) return std::nullopt;
  return Cut{d, *start, *end};
}

class Splitter {
 public:
  explicit Splitter(int64_t max_macs) : max_macs_(max_macs) {}
  bool changed = false;

  void run(Block* b) {
    copies_.clear();  // a copy serves the products of its own block
    readers_.clear();
    // The products to split, found before any is rewritten (their count per mat2 decides the
    // padding); splitting one does not change another's uses.
    std::vector<Candidate> found;
    for (Node* n : b->nodes())
      if (is_op(n, OpKind::Mm) || is_op(n, OpKind::Addmm))
        if (auto p = product_of(n))
          if (auto u = uses_of(n, *p, b)) {
            found.push_back({n, *p, std::move(*u)});
            ++readers_[p->b];  // the split products sharing a (padded) copy of their mat2
          }
    for (const Candidate& c : found) changed = split(c) || changed;
  }

 private:
  struct Product {
    Value *c = nullptr, *a = nullptr, *b = nullptr;  // c: addmm's self, or null
    double beta = 0, alpha = 1;
  };

  std::optional<Product> product_of(const Node* n) const {
    Product p;
    const bool addmm = is_op(n, OpKind::Addmm);
    p.a = n->input(addmm ? 1 : 0);
    p.b = n->input(addmm ? 2 : 1);
    const auto dt = dtype_of(n->output());
    if (!dt || (*dt != kFloat && *dt != kDouble) || dtype_of(p.a) != dt || dtype_of(p.b) != dt)
      return std::nullopt;
    const auto sa = static_sizes(p.a), sb = static_sizes(p.b);
    if (!sa || !sb || sa->size() != 2 || sb->size() != 2 ||
        (*sa)[0] * (*sa)[1] * (*sb)[1] > max_macs_)
      return std::nullopt;
    if (addmm) {
      const auto beta = constant_number(n->input(3)), alpha = constant_number(n->input(4));
      if (!beta || !alpha || dtype_of(n->input(0)) != dt) return std::nullopt;
      p.beta = *beta;
      p.alpha = *alpha;
      if (p.beta != 0) p.c = n->input(0);
      if (p.c != nullptr && !static_sizes(p.c)) return std::nullopt;  // rebuild cuts C by its sizes
    }
    return p;
  }

  // The uses of a product: the slices (each read only elementwise) and whether an elementwise
  // op reads it whole; nullopt when some use is neither, or when there is nothing to split
  // (a plain mm of a contiguous mat2 read whole is what fusion takes as it is).
  struct Uses {
    std::vector<Node*> cuts;
    bool whole = false;
  };
  std::optional<Uses> uses_of(const Node* n, const Product& p, const Block* blk) const {
    const Value* out = n->output();
    Uses r;
    for (const ir::Use& u : out->uses()) {
      Node* user = u.user;
      if (cut_of(user) && user->input(0) == out && read_elementwise(user->output(), blk)) {
        if (std::find(r.cuts.begin(), r.cuts.end(), user) == r.cuts.end()) r.cuts.push_back(user);
      } else if (user->owning_block() == blk && elementwise(user) &&
                 static_sizes(user->output()) == static_sizes(out)) {
        r.whole = true;
      } else {
        return std::nullopt;
      }
    }
    const bool plain = is_op(n, OpKind::Mm) && p.alpha == 1;
    if (r.cuts.empty() && (!r.whole || (plain && detail::is_contiguous(p.b)))) return std::nullopt;
    return r;
  }

  struct Candidate {
    Node* node;
    Product product;
    Uses uses;
  };

  bool split(const Candidate& cand) {
    Node* n = cand.node;
    const Product& p = cand.product;
    Value* out = n->output();
    const bool had_copy = copies_.count(p.b) > 0;
    Value* b = contiguous_mat2(n, p.b);
    bool done = false;
    for (Node* s : cand.uses.cuts)
      if (rebuild(p, b, cut_of(s), s, s->output())) {
        s->destroy();
        done = true;
      }
    if (!out->uses().empty()) done = rebuild(p, b, std::nullopt, n->next(), out) || done;
    if (!had_copy && b != p.b && b->uses().empty()) {
      // Unused after all: the copy (or the padded copy's slice, cat, list and full) goes.
      copies_.erase(p.b);
      std::vector<Node*> chain = {b->node()};
      for (size_t i = 0; i < chain.size(); ++i)
        for (Value* in : chain[i]->inputs())
          if (in->uses().size() == 1 && in != p.b) chain.push_back(in->node());
      for (Node* c : chain) c->destroy();
    }
    return done;
  }

  // mat2 with unit column stride: itself when contiguous, else one copy per block and value,
  // made before the first product that needs it. A mat2 that several products read and whose
  // rows are a multiple of 256 bytes apart is copied with 64 bytes of padding per row: the
  // kernel reads a column block of mat2 row after row, and rows that far apart map to a few
  // sets of the L1 cache and evict each other (measured: the LSTM step 12.2 -> 8.7 us).
  Value* contiguous_mat2(Node* product, Value* b) {
    const auto sizes = static_sizes(b);
    const ScalarType dt = *dtype_of(b);
    const int64_t es = static_cast<int64_t>(element_size(dt));
    const auto& device = b->type().tensor().device;
    const bool pad = readers_[b] >= 2 && device && (*sizes)[1] * es % 256 == 0;
    if (detail::is_contiguous(b) && !pad) return b;
    auto it = copies_.find(b);
    if (it != copies_.end()) return it->second;
    detail::NodeInserter ins(product);
    if (!pad) return copies_[b] = ins.op(OpKind::Copy, {b});
    const int64_t k = (*sizes)[0], n = (*sizes)[1];
    Value* zeros =
        ins.op(OpKind::Full, {ins.constant(std::vector<int64_t>{k, 64 / es}), ins.constant(0.0),
                              ins.constant(dt), ins.constant(*device)});
    Value* wide = ins.op(OpKind::Cat, {ins.list({b, zeros}), ins.constant(int64_t{1})});
    return copies_[b] =
               ins.op(OpKind::Slice, {wide, ins.constant(int64_t{1}), ins.constant(int64_t{0}),
                                      ins.constant(n), ins.constant(int64_t{1})});
  }

  // Replaces `from` (the product, or cut of it) by its split form, built before `before`.
  bool rebuild(const Product& p, Value* b, const std::optional<Cut>& cut, Node* before,
               Value* from) {
    detail::NodeInserter ins(before);
    auto slice = [&](Value* v, int64_t dim) {
      return ins.op(OpKind::Slice, {v, ins.constant(dim), ins.constant(cut->start),
                                    ins.constant(cut->end), ins.constant(int64_t{1})});
    };
    Value* a = cut && cut->dim == 0 ? slice(p.a, 0) : p.a;
    Value* m = ins.op(OpKind::Mm, {a, cut && cut->dim == 1 ? slice(b, 1) : b});
    if (p.alpha != 1) m = ins.op(OpKind::Mul, {m, ins.constant(p.alpha)});
    if (p.c != nullptr) {
      // C broadcasts to [M, N]: cut the dim of C the cut dim lines up with, unless C's size
      // there is 1 (or C has no such dim).
      Value* c = p.c;
      const auto sc = static_sizes(c);  // known: product_of checked
      const int64_t cd = cut ? cut->dim - (2 - static_cast<int64_t>(sc->size())) : -1;
      if (cut && cd >= 0 && (*sc)[cd] != 1) c = slice(c, cd);
      if (p.beta != 1) c = ins.op(OpKind::Mul, {c, ins.constant(p.beta)});
      m = ins.op(OpKind::Add, {c, m});
    }
    return ins.replace(from, m);
  }

  int64_t max_macs_;
  std::map<const Value*, Value*> copies_;
  std::map<const Value*, int> readers_;  // products of the block reading each mat2
};

}  // namespace

bool split_products(ir::Graph& g, int64_t max_macs) {
  Splitter s(max_macs);
  detail::for_each_block(g.block(), [&](Block* b) { s.run(b); });
  return s.changed;
}

}  // namespace kiln::passes
