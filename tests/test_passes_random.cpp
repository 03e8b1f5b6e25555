// Randomized equivalence test of the pass pipeline (src/passes/pipeline.cpp): random valid
// graphs built with the Builder (elementwise chains with broadcasting, scalar constants, views,
// reductions with keepdim, if/loop with constant and non-constant trip counts, calls, random
// draws, matmuls, dead and duplicated code) run in the interpreter before and after the default
// pipeline on random inputs; the results must be identical bit for bit (no pass reassociates).
// A fixed seed and a few hundred graphs in CI; KILN_RANDOM_GRAPHS=<n> runs more.
// ctest-label: ir
#include <kiln/ir/ir.h>
#include <kiln/passes/pipeline.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "fusion_contract.h"
#include "ir_test_util.h"

namespace kiln {
namespace {

using ops::OpKind;
using Shape = std::vector<int64_t>;
using Values = ir::Builder::Values;

constexpr uint64_t kSeed = 0x6b696c6e;  // "kiln"

bool broadcasts_into(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 0; i < from.size(); ++i) {
    const int64_t a = from[from.size() - 1 - i], b = to[to.size() - 1 - i];
    if (a != b && a != 1) return false;
  }
  return true;
}

Shape broadcast(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t x = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t y = i < b.size() ? b[b.size() - 1 - i] : 1;
    out[out.size() - 1 - i] = x == 1 ? y : x;
  }
  return out;
}

bool compatible(const Shape& a, const Shape& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const int64_t x = a[a.size() - 1 - i], y = b[b.size() - 1 - i];
    if (x != y && x != 1 && y != 1) return false;
  }
  return true;
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// What the generator knows of each tensor value it made.
struct Info {
  Shape shape;
  ScalarType dtype;
  bool contiguous;  // view() of it is valid
};

class Generator {
 public:
  Generator(uint64_t seed, ir::Graph& g) : rng_(seed), g_(g) {}

  // Builds the graph and returns the inputs to run it with.
  std::vector<IValue> build() {
    ir::Builder b(g_);
    scopes_.push_back({});
    const int rank = pick(1, 3);
    for (int i = 0; i < rank; ++i) base_.push_back(pick(1, 4));
    std::vector<IValue> inputs;
    const int n_inputs = pick(1, 3);
    for (int i = 0; i < n_inputs; ++i) {
      Shape s = base_;
      for (int64_t& d : s)
        if (chance(0.3)) d = 1;
      if (chance(0.3) && !s.empty()) s.erase(s.begin());
      const ScalarType dt = chance(0.15) ? kDouble : kFloat;
      Tensor t = testing::random_tensor(s, dt);
      // Mostly exact types; sometimes only the dtype, so shape propagation has work to do and
      // fusion must leave what it cannot size alone.
      ir::Type ty = ir::tensor_type_of(t);
      if (chance(0.1)) {
        ty = ir::tensor_type(ir::TensorType{dt, {}, {}, {}});
      } else if (chance(0.15)) {
        // Symbols for the dims of the base shape: consistent across inputs.
        std::vector<ir::Dim> dims;
        for (size_t d = 0; d < s.size(); ++d) {
          const size_t bd = d + base_.size() - s.size();
          dims.push_back(s[d] == 1 ? ir::Dim(1) : ir::Dim::symbol(fmt::format("D{}", bd)));
        }
        ty = ir::tensor_type(dt, dims, Device(kCPU), ir::Contiguity::Contiguous);
      }
      add(b.input(ty, fmt::format("x{}", i)), {s, dt, true});
      inputs.emplace_back(t);
    }
    flag_ = b.input(ir::bool_type(), "flag");
    inputs.emplace_back(chance(0.5));
    trips_ = b.input(ir::int_type(), "n");
    inputs.emplace_back(static_cast<int64_t>(pick(0, 4)));
    const int steps = pick(6, 22);
    for (int i = 0; i < steps; ++i) step(b, 0);
    Values outs;
    const int n_out = pick(1, 3);
    const auto& top = scopes_.back();
    if (!opaque_.empty() && chance(0.5)) outs.push_back(one_of(opaque_));
    for (int i = 0; i < n_out; ++i)
      outs.push_back(top[top.size() - 1 - pick(0, std::min<int>(3, top.size() - 1))]);
    b.ret(outs);
    return inputs;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& one_of(const std::vector<T>& v) {
    return v[pick(0, static_cast<int>(v.size()) - 1)];
  }

  ir::Value* add(ir::Value* v, Info info) {
    info_[v] = std::move(info);
    scopes_.back().push_back(v);
    return v;
  }
  const Info& info(ir::Value* v) const { return info_.at(v); }

  // The tensors visible from the current block (an isolated call body sees only its own).
  std::vector<ir::Value*> visible(const std::function<bool(const Info&)>& pred) const {
    std::vector<ir::Value*> out;
    for (size_t s = scopes_.size(); s-- > 0;) {
      for (ir::Value* v : scopes_[s])
        if (pred(info_.at(v))) out.push_back(v);
      if (isolated_.count(s)) break;
    }
    return out;
  }
  ir::Value* some_float() {
    auto vs = visible([](const Info& i) { return is_floating_point(i.dtype); });
    return vs.empty() ? nullptr : vs[pick(0, static_cast<int>(vs.size()) - 1)];
  }

  // A scalar operand chosen to hit the canonicalisation rules.
  ir::Arg scalar() {
    switch (pick(0, 6)) {
      case 0:
        return ir::Arg(1);
      case 1:
        return ir::Arg(0);
      case 2:
        return ir::Arg(-0.0);
      case 3:
        return ir::Arg(1.0);
      case 4:
        return ir::Arg(2);
      case 5:
        return ir::Arg(0.5);
      default:
        return ir::Arg(-1.5);
    }
  }

  static ScalarType promote(ScalarType a, ScalarType b) { return promote_types(a, b); }

  // One elementwise op on x with operands that broadcast into x's shape: the result keeps x's
  // shape (and, for floats, a float dtype).
  ir::Value* elementwise_on(ir::Builder& b, ir::Value* x, ir::Value* i = nullptr) {
    const Info xi = info(x);
    static const std::vector<OpKind> unary = {OpKind::Exp,  OpKind::Neg,     OpKind::Abs,
                                              OpKind::Tanh, OpKind::Sigmoid, OpKind::Sin,
                                              OpKind::Relu, OpKind::Sqrt,    OpKind::Floor};
    static const std::vector<OpKind> binary = {OpKind::Add, OpKind::Sub,     OpKind::Mul,
                                               OpKind::Div, OpKind::Maximum, OpKind::Minimum};
    const int c = pick(0, 9);
    if (c < 3) return add(b.op(one_of(unary), {x}), {xi.shape, xi.dtype, true});
    const OpKind k = one_of(binary);
    if (c < 6 || i != nullptr) {
      if (i != nullptr && chance(0.5)) return add(b.op(k, {x, i}), {xi.shape, xi.dtype, true});
      ir::Arg s = scalar();
      const bool left = chance(0.3);
      ir::Value* r = left ? b.op(k, {s, x}) : b.op(k, {x, s});
      return add(r, {xi.shape, xi.dtype, true});
    }
    auto others = visible([&](const Info& o) {
      return is_floating_point(o.dtype) && broadcasts_into(o.shape, xi.shape);
    });
    ir::Value* y = one_of(others);  // x itself qualifies
    const ScalarType dt = promote(xi.dtype, info(y).dtype);
    return add(chance(0.5) ? b.op(k, {x, y}) : b.op(k, {y, x}), {xi.shape, dt, true});
  }

  ir::Value* chain(ir::Builder& b, ir::Value* x, int len, ir::Value* i = nullptr) {
    for (int k = 0; k < len; ++k) x = elementwise_on(b, x, i);
    return x;
  }

  void step(ir::Builder& b, int depth) {
    ir::Value* x = some_float();
    if (x == nullptr) return;
    const Info xi = info(x);
    const int c = pick(0, 99);
    if (c < 30) {
      elementwise_on(b, x);
    } else if (c < 38) {  // binary between compatible shapes (broadcasting both ways)
      auto others = visible([&](const Info& o) {
        return is_floating_point(o.dtype) && compatible(o.shape, xi.shape);
      });
      ir::Value* y = one_of(others);
      const OpKind k = one_of(std::vector<OpKind>{OpKind::Add, OpKind::Mul, OpKind::Sub});
      add(b.op(k, {x, y}),
          {broadcast(xi.shape, info(y).shape), promote(xi.dtype, info(y).dtype), true});
    } else if (c < 44) {  // comparison and where
      ir::Value* cond = b.op(chance(0.5) ? OpKind::Gt : OpKind::Le, {x, 0.25});
      info_[cond] = {xi.shape, kBool, true};
      ir::Value* y = chance(0.5) ? x : elementwise_on(b, x);
      add(b.op(OpKind::Where, {cond, y, chance(0.5) ? ir::Arg(1.5) : ir::Arg(x)}),
          {xi.shape, info(y).dtype, true});
    } else if (c < 52) {  // reduction
      const OpKind k =
          one_of(std::vector<OpKind>{OpKind::Sum, OpKind::Amax, OpKind::Amin, OpKind::Prod});
      std::vector<int64_t> dims;
      const int64_t rank = static_cast<int64_t>(xi.shape.size());
      for (int64_t d = 0; d < rank; ++d)
        if (chance(0.5)) dims.push_back(chance(0.3) ? d - rank : d);
      const bool keepdim = chance(0.5);
      Shape out;
      for (int64_t d = 0; d < rank; ++d) {
        const bool reduced = dims.empty() || std::count(dims.begin(), dims.end(), d) ||
                             std::count(dims.begin(), dims.end(), d - rank);
        if (!reduced)
          out.push_back(xi.shape[d]);
        else if (keepdim)
          out.push_back(1);
      }
      add(b.op(k, {x, dims, keepdim}), {out, xi.dtype, true});
    } else if (c < 62) {
      view_of(b, x);
    } else if (c < 65) {  // a round trip through float64 (or a no-op cast)
      const ScalarType mid = chance(0.5) ? kDouble : xi.dtype;
      // A cast to the same dtype returns its input (and its layout).
      const bool fresh = mid != xi.dtype;
      ir::Value* d = b.op(OpKind::Cast, {x, mid});
      info_[d] = {xi.shape, mid, fresh || xi.contiguous};
      add(b.op(OpKind::Cast, {d, xi.dtype}), {xi.shape, xi.dtype, fresh || xi.contiguous});
    } else if (c < 70) {  // the same expression twice
      static const std::vector<OpKind> ks = {OpKind::Exp, OpKind::Neg, OpKind::Tanh};
      const OpKind k = one_of(ks);
      ir::Value* a1 = b.op(k, {x});
      ir::Value* a2 = b.op(k, {x});
      add(b.op(OpKind::Add, {a1, a2}), {xi.shape, xi.dtype, true});
    } else if (c < 73) {  // random draws: never merged, folded or removed
      ir::Value* r1 = b.op(OpKind::Rand, {xi.shape, xi.dtype, Device(kCPU)});
      ir::Value* r2 = b.op(OpKind::Rand, {xi.shape, xi.dtype, Device(kCPU)});
      if (chance(0.5)) b.op(OpKind::Rand, {Shape{3}, kFloat, Device(kCPU)});  // unused
      add(b.op(OpKind::Add, {b.op(OpKind::Mul, {x, r1}), r2}), {xi.shape, xi.dtype, true});
    } else if (c < 76) {  // a library call between fused code
      if (xi.shape.size() == 2 && (xi.dtype == kFloat || xi.dtype == kDouble) && chance(0.3)) {
        // LSTM-like gates: addmm(bias, y, w^T) read through four column slices by elementwise
        // ops (the products pass splits it into four products fusion computes in the kernel).
        ir::Value* y = elementwise_on(b, x);
        const int64_t h = pick(1, 5), in = xi.shape[1];
        // (w^T as a constant: a permute of a constant would fold into a contiguous copy, and
        // the product before and after would round differently for the layout alone.)
        ir::Value* wt = b.constant(testing::random_tensor({in, 4 * h}, xi.dtype));
        ir::Value* bias = b.constant(testing::random_tensor({4 * h}, xi.dtype));
        ir::Value* gates = b.op(OpKind::Addmm, {bias, y, wt, 1.0, chance(0.5) ? 1.0 : 0.5});
        Values g;
        for (int64_t q = 0; q < 4; ++q) {
          ir::Value* s4 = b.op(OpKind::Slice, {gates, 1, q * h, (q + 1) * h, 1});
          g.push_back(b.op(q == 2 ? OpKind::Tanh : OpKind::Sigmoid, {s4}));
        }
        ir::Value* cell = b.op(OpKind::Add, {b.op(OpKind::Mul, {g[0], g[2]}), g[1]});
        add(b.op(OpKind::Mul, {g[3], b.op(OpKind::Tanh, {cell})}),
            {Shape{xi.shape[0], h}, xi.dtype, true});
      } else if (xi.shape.size() == 2 && chance(0.5)) {
        // One product per row sharing the right operand, each through the same elementwise
        // op, concatenated back (batch_mm merges the products and pushes the cat through).
        ir::Value* y = elementwise_on(b, x);
        // A weight wider than x, so the merge pays for stacking the rows (batch_mm's rule).
        ir::Value* t = b.constant(testing::random_tensor({xi.shape[1], 8}, info(y).dtype));
        const OpKind k = one_of(std::vector<OpKind>{OpKind::Add, OpKind::Mul, OpKind::Sub});
        Values pieces;
        for (int64_t r = 0; r < xi.shape[0]; ++r) {
          ir::Value* row = b.op(OpKind::Slice, {y, 0, r, r + 1, 1});
          ir::Value* p = b.op(OpKind::Mm, {row, t});
          pieces.push_back(chance(0.5) ? b.op(k, {p, 0.5}) : b.op(k, {p, p}));
        }
        if (!pieces.empty()) {
          ir::Value* joined = b.op(OpKind::Cat, {b.list(pieces), 0});
          add(joined, {Shape{xi.shape[0], 8}, info(y).dtype, true});
        }
      } else if (xi.shape.size() == 3 && (xi.dtype == kFloat || xi.dtype == kDouble) &&
                 xi.shape[1] >= 2 && xi.shape[2] >= 2) {
        // A convolution of x as one [C, H, W] image, written as im2col and a product by the
        // weights broadcast over the batch, plus a per-channel bias: the conv pass makes it one
        // biased conv2d.
        const int64_t n = 1, ch = xi.shape[0], k = pick(1, 2), o = pick(1, 4);
        const int64_t rows = ch * k * k, cols = (xi.shape[1] - k + 1) * (xi.shape[2] - k + 1);
        const std::vector<int64_t> ones = {1, 1};
        ir::Value* image = b.op(OpKind::View, {x, std::vector<int64_t>{1, ch, xi.shape[1],
                                                                          xi.shape[2]}});
        ir::Value* col = b.op(OpKind::Im2col, {image, std::vector<int64_t>{k, k}, ones,
                                               std::vector<int64_t>{0, 0}, ones});
        ir::Value* w = b.constant(testing::random_tensor({1, o, rows}, xi.dtype));
        ir::Value* we = b.op(OpKind::Expand, {w, std::vector<int64_t>{n, o, rows}});
        ir::Value* y = b.op(OpKind::Bmm, {we, col});
        ir::Value* bias = b.constant(testing::random_tensor({1, o, 1}, xi.dtype));
        add(b.op(OpKind::Add, {y, bias}), {Shape{n, o, cols}, xi.dtype, true});
      } else if (xi.shape.size() == 2) {
        ir::Value* y = elementwise_on(b, x);
        ir::Value* t = b.op(OpKind::Permute, {y, std::vector<int64_t>{1, 0}});
        add(b.op(OpKind::Mm, {y, t}), {Shape{xi.shape[0], xi.shape[0]}, info(y).dtype, true});
      }
    } else if (c < 79) {  // a tensor constant (folded when all inputs are constants)
      Tensor k = testing::random_tensor(xi.shape, xi.dtype);
      ir::Value* kv = b.constant(k);
      info_[kv] = {xi.shape, xi.dtype, true};
      ir::Value* kk = b.op(OpKind::Mul, {kv, 2});
      add(b.op(OpKind::Add, {x, kk}), {xi.shape, xi.dtype, true});
    } else if (c < 85 && depth < 2) {
      if_of(b, x, depth);
    } else if (c < 93 && depth < 2) {
      loop_of(b, x, depth);
    } else if (c < 97 && depth < 2) {
      call_of(b, x);
    } else {
      b.op(OpKind::Neg, {x});  // dead code
    }
  }

  void view_of(ir::Builder& b, ir::Value* x) {
    const Info xi = info(x);
    const int64_t rank = static_cast<int64_t>(xi.shape.size());
    switch (pick(0, 5)) {
      case 0: {  // permute, sometimes twice (canonicalisation composes them)
        std::vector<int64_t> p(rank);
        std::iota(p.begin(), p.end(), 0);
        std::shuffle(p.begin(), p.end(), rng_);
        Shape s;
        for (int64_t d : p) s.push_back(xi.shape[d]);
        ir::Value* y = b.op(OpKind::Permute, {x, p});
        if (chance(0.4)) {
          std::vector<int64_t> inv(rank);
          for (int64_t i = 0; i < rank; ++i) inv[p[i]] = i;
          add(b.op(OpKind::Permute, {y, inv}), {xi.shape, xi.dtype, false});
          return;
        }
        add(y, {s, xi.dtype, false});
        return;
      }
      case 1: {  // expand size-1 dims and a new leading dim
        Shape s = xi.shape;
        for (int64_t& d : s)
          if (d == 1 && chance(0.7)) d = pick(2, 3);
        if (chance(0.4)) s.insert(s.begin(), 2);
        add(b.op(OpKind::Expand, {x, s}), {s, xi.dtype, false});
        return;
      }
      case 2: {  // view: flatten, or a leading 1
        if (!xi.contiguous) return;
        if (chance(0.5)) {
          add(b.op(OpKind::View, {x, Shape{-1}}), {Shape{numel(xi.shape)}, xi.dtype, true});
        } else {
          Shape s = xi.shape;
          s.insert(s.begin(), 1);
          add(b.op(OpKind::View, {x, s}), {s, xi.dtype, true});
        }
        return;
      }
      case 3: {  // slice
        if (rank == 0) return;
        const int64_t d = pick(0, static_cast<int>(rank) - 1), n = xi.shape[d];
        const int64_t lo = pick(0, static_cast<int>(n) - 1),
                      hi = pick(static_cast<int>(lo) + 1, static_cast<int>(n) + 2);
        const int64_t step = pick(1, 2);
        Shape s = xi.shape;
        s[d] = (std::min(hi, n) - lo + step - 1) / step;
        add(b.op(OpKind::Slice, {x, d, lo, hi, step}), {s, xi.dtype, false});
        return;
      }
      case 4: {  // select (keeping at least one dim)
        if (rank < 2) return;
        const int64_t d = pick(0, static_cast<int>(rank) - 1);
        Shape s = xi.shape;
        s.erase(s.begin() + d);
        add(b.op(OpKind::Select, {x, d, pick(0, static_cast<int>(xi.shape[d]) - 1)}),
            {s, xi.dtype, false});
        return;
      }
      default: {  // an identity view (canonicalisation removes it)
        add(b.op(OpKind::Expand, {x, xi.shape}), {xi.shape, xi.dtype, false});
        return;
      }
    }
  }

  void nested(ir::Builder& nb, bool isolated, const std::function<void()>& body) {
    scopes_.push_back({});
    if (isolated) isolated_.insert(scopes_.size() - 1);
    body();
    isolated_.erase(scopes_.size() - 1);
    scopes_.pop_back();
  }

  void if_of(ir::Builder& b, ir::Value* x, int depth) {
    const Info xi = info(x);
    ir::Value* cond = chance(0.6) ? flag_ : b.constant(chance(0.5));
    const auto branch = [&](ir::Builder& nb) {
      Values out;
      nested(nb, false, [&] {
        for (int k = pick(0, 2); k > 0; --k) step(nb, depth + 1);
        ir::Value* v = chain(nb, x, pick(0, 3));
        if (info(v).dtype != xi.dtype) v = add(nb.op(OpKind::Cast, {v, xi.dtype}), xi);
        out = {v};
      });
      return out;
    };
    const Values r = b.if_(cond, branch, branch);
    // A branch may return x itself, whatever its layout.
    add(r[0], {xi.shape, xi.dtype, false});
  }

  void loop_of(ir::Builder& b, ir::Value* x, int depth) {
    const Info xi = info(x);
    ir::Value* n =
        chance(0.3) ? trips_ : b.constant(int64_t{one_of(std::vector<int>{0, 1, 2, 3, 5, 20})});
    const bool use_i = chance(0.4);
    // Sometimes the carried value's sizes change in the first iteration (a reduction with
    // keepdim), so they depend on the trip count: shape propagation must not guess.
    const bool reshaping = !xi.shape.empty() && xi.shape[0] > 1 && chance(0.2);
    const Values r = b.loop(n, {x}, [&](ir::Builder& lb, ir::Value* i, const Values& c) {
      Values out;
      nested(lb, false, [&] {
        info_[c[0]] = xi;
        scopes_.back().push_back(c[0]);
        if (chance(0.3)) step(lb, depth + 1);
        ir::Value* next = chain(lb, c[0], pick(1, 3), use_i ? i : nullptr);
        // Keep the carried dtype stable: mixing with float64 operands may promote.
        if (info(next).dtype != xi.dtype) next = add(lb.op(OpKind::Cast, {next, xi.dtype}), xi);
        if (reshaping) next = lb.op(OpKind::Amax, {next, std::vector<int64_t>{0}, true});
        out = {next};
      });
      return out;
    });
    if (reshaping) {
      ir::Value* o = b.op(OpKind::Exp, {r[0]});
      if (scopes_.size() == 1) opaque_.push_back(o);  // graph outputs come from the top block
      return;
    }
    add(r[0], {xi.shape, xi.dtype, false});  // no iteration returns x itself
  }

  void call_of(ir::Builder& b, ir::Value* x) {
    const Info xi = info(x);
    const Values r = b.call("f", {x}, [&](ir::Builder& cb, const Values& in) {
      Values out;
      nested(cb, true, [&] {
        add(in[0], xi);
        out = {chain(cb, in[0], pick(1, 3))};
      });
      return out;
    });
    add(r[0], {xi.shape, info(r[0]->node()->block(0)->output(0)).dtype, true});
  }

  std::mt19937_64 rng_;
  ir::Graph& g_;
  Shape base_;
  ir::Value* flag_ = nullptr;
  ir::Value* trips_ = nullptr;
  std::map<ir::Value*, Info> info_;
  std::vector<std::vector<ir::Value*>> scopes_;
  std::set<size_t> isolated_;
  std::vector<ir::Value*> opaque_;  // sizes unknown to the generator: only returned
};

int graph_count() {
  if (const char* env = std::getenv("KILN_RANDOM_GRAPHS")) return std::max(1, std::atoi(env));
  return 300;
}

TEST(PassesRandom, PipelineKeepsResults) {
  const int count = graph_count();
  std::map<std::string, int> changed;
  int groups = 0;
  for (int i = 0; i < count; ++i) {
    const uint64_t seed = kSeed + static_cast<uint64_t>(i);
    ir::Graph g;
    std::vector<IValue> inputs = Generator(seed, g).build();
    ASSERT_NO_THROW(ir::verify(g)) << "generator bug, seed " << seed << "\n" << g;
    const std::unique_ptr<ir::Graph> original = g.copy();
    const auto before = [&] { return ir::print(*original); };
    manual_seed(seed);
    const std::vector<IValue> expected = ir::run(g, inputs);

    passes::PassManagerOptions options;
    options.verify_each = true;
    options.dump = "";
    passes::PassStats stats;
    try {
      stats = passes::run_default_pipeline(g, options);
    } catch (const Error& e) {
      FAIL() << "graph " << i << " (seed " << seed << "): " << e.what() << "\n" << before();
    }
    for (const auto& e : stats.passes) changed[e.name] += e.changed;
    ::testing::AssertionResult contract = ::testing::AssertionSuccess();
    groups += testing::check_fusion_groups(g.block(), &contract);
    EXPECT_TRUE(contract) << "graph " << i << " (seed " << seed << ")\n" << g;
    std::vector<IValue> got;
    manual_seed(seed);
    try {
      got = ir::run(g, inputs);
    } catch (const Error& e) {
      FAIL() << "graph " << i << " (seed " << seed << ") fails after the pipeline: " << e.what()
             << "\nbefore:\n"
             << before() << "\nafter:\n"
             << g;
    }
    ASSERT_EQ(got.size(), expected.size());
    // Every pass is exact except batch_mm, conv and products: a merged or split product is one
    // oneDNN call of another size, and a convolution sums in another order than the product it
    // replaces; they may round differently (FMA contraction, blocking), within an ulp or two
    // per product. Graphs they changed are compared with a float tolerance.
    bool batched = false;
    for (const auto& e : stats.passes)
      batched = batched ||
                ((e.name == "batch_mm" || e.name == "conv" || e.name == "products") && e.changed);
    for (size_t k = 0; k < got.size(); ++k)
      ASSERT_TRUE(batched && got[k].is_tensor() && expected[k].is_tensor()
                      ? testing::close(got[k].toTensor(), expected[k].toTensor(), 1e-4, 1e-5)
                      : testing::same(got[k], expected[k]))
          << "graph " << i << " (seed " << seed << ") output " << k << "\nbefore:\n"
          << before() << "\nafter:\n"
          << g;
  }
  // The graphs must exercise every pass, or this test proves nothing.
  for (const auto& p : passes::registered_passes())
    EXPECT_GT(changed[std::string(p.name)], 0) << "no graph was changed by pass " << p.name;
  EXPECT_GT(groups, count / 2);
}

}  // namespace
}  // namespace kiln
