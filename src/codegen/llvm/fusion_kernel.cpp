// Fusion groups to kernels: the program builder (IR block -> KernelProgram with eager's dtypes),
// the LLVM emitter (a vector loop over contiguous/broadcast operands with a masked tail, vector
// accumulators for reductions along the loop, read-modify-write accumulators otherwise, and a
// scalar strided loop for any other layout), and the launcher (coalesced dims, outer dims split
// across the thread pool only where no two tasks touch one accumulator).
#include "codegen/llvm/fusion_kernel.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "codegen/llvm/emit_ops.h"
#include "codegen/llvm/kernel_ir.h"
#include "codegen/llvm/value_range.h"
#include "codegen/llvm/vector_math.h"
#include "kiln/core/thread_pool.h"
#include "kiln/functions.h"
#include "kiln/ir/printer.h"
#include "kiln/ops/call.h"
#include "kiln/ops/schema.h"
#include "tensor/internal.h"

namespace kiln::codegen::llvm {
namespace ll = ::llvm;
using Instr = KernelProgram::Instr;
using ops::OpKind;

// ---- the program ---------------------------------------------------------------------------

std::string KernelProgram::str() const {
  std::string s = "inputs";
  for (ScalarType t : inputs) s += fmt::format(" {}", dtype_name(t));
  s += "\n";
  for (size_t i = 0; i < instrs.size(); ++i) {
    const Instr& in = instrs[i];
    s += fmt::format("%{} : {} = ", i, dtype_name(in.dtype));
    switch (in.kind) {
      case Instr::Kind::Load:
        s += fmt::format("load {}\n", in.input);
        break;
      case Instr::Kind::Const:
        s += in.is_float_const ? fmt::format("const {:a}\n", in.fvalue)
                               : fmt::format("const {}{}\n", in.ivalue, in.is_bool_const ? "b" : "");
        break;
      case Instr::Kind::Op:
        s += fmt::format("{}[{}]", ops::op_info(in.op).name, dtype_name(in.compute));
        for (int a : in.args) s += fmt::format(" %{}", a);
        s += "\n";
        break;
      case Instr::Kind::Dot:
        s += fmt::format("dot[{}] %{} %{}\n", in.ivalue, in.args[0], in.args[1]);
        break;
    }
  }
  for (const Output& o : outputs)
    s += fmt::format("out %{} {} {} {}\n", o.instr, dtype_name(o.dtype),
                     o.reduce ? ops::op_info(*o.reduce).name : "store", dtype_name(o.acc));
  return s;
}

bool KernelProgram::has_reductions() const {
  for (const Output& o : outputs)
    if (o.reduce) return true;
  return false;
}

std::vector<int> KernelProgram::dot_roles() const {
  std::vector<int> role(inputs.size(), 0);
  for (const Instr& in : instrs)
    if (in.kind == Instr::Kind::Dot) {
      role[instrs[in.args[0]].input] = 1;
      role[instrs[in.args[1]].input] = 2;
    }
  return role;
}

bool KernelSpec::vector_loop() const {
  return std::none_of(access.begin(), access.end(), [](Access a) { return a == Access::Strided; });
}

std::string KernelSpec::key() const {
  std::string s = program.str() + "access";
  for (Access a : access) s += a == Access::Contiguous ? " c" : a == Access::Broadcast ? " b" : " s";
  return s + fmt::format("\nlanes {}{}{}\n", lanes, streaming ? " streaming" : "",
                         uniform_k ? " uniform-k" : "");
}

namespace {

bool supported_dtype(ScalarType t) {
  return t == kFloat || t == kDouble || t == kInt || t == kLong || t == kBool;
}

// Ops whose functor is right for integer (and, for the logical ones, bool) values.
bool integer_ok(OpKind k) {
  switch (k) {
    case OpKind::Neg: case OpKind::Abs: case OpKind::Sign: case OpKind::Relu:
    case OpKind::Floor: case OpKind::Ceil: case OpKind::Round:
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Maximum:
    case OpKind::Minimum: case OpKind::Eq: case OpKind::Ne: case OpKind::Lt: case OpKind::Le:
    case OpKind::Gt: case OpKind::Ge: case OpKind::LogicalAnd: case OpKind::LogicalOr:
    case OpKind::LogicalXor: case OpKind::LogicalNot: case OpKind::Where: case OpKind::Copy:
    case OpKind::Cast: case OpKind::Assign:
      return true;
    default:
      return false;
  }
}
bool bool_ok(OpKind k) {
  switch (k) {
    case OpKind::Eq: case OpKind::Ne: case OpKind::LogicalAnd: case OpKind::LogicalOr:
    case OpKind::LogicalXor: case OpKind::LogicalNot: case OpKind::Where: case OpKind::Copy:
    case OpKind::Cast: case OpKind::Assign:
      return true;
    default:
      return false;
  }
}

// libtorch's promotion over IR operands: dim tensors, zero-dim tensors and wrapped numbers.
struct Promotion {
  std::optional<ScalarType> dim, zero, wrapped;
  static void upd(std::optional<ScalarType>& r, ScalarType t) { r = r ? promote_types(*r, t) : t; }
  static std::optional<ScalarType> combine(std::optional<ScalarType> hi,
                                           std::optional<ScalarType> lo) {
    if (!hi) return lo;
    if (!lo) return hi;
    if (is_floating_point(*hi)) return hi;
    if (*hi == kBool || is_floating_point(*lo)) return promote_types(*hi, *lo);
    return hi;
  }
  ScalarType result() const { return *combine(dim, combine(zero, wrapped)); }
};

struct Builder {
  KernelProgram prog;
  std::unordered_map<const ir::Value*, int> instr_of;
  // Per program input, the (view) value it loads; Dot operands have inputs of their own.
  std::vector<std::pair<const ir::Value*, int>> input_of;
  std::map<std::pair<const ir::Value*, int>, int> operand_of;  // (value, 0: A / 1: B) -> load
  std::string why;

  bool fail(std::string w) {
    why = std::move(w);
    return false;
  }

  // A constant number operand (or nullopt when v is not a constant number).
  std::optional<IValue> number_of(const ir::Value* v) {
    const ir::Node* n = v->node();
    if (!n->kind().is(ir::Prim::Constant)) return std::nullopt;
    const IValue& c = n->attr("value");
    if (!c.is_scalar()) return std::nullopt;
    return c;
  }

  int add(Instr in) {
    prog.instrs.push_back(std::move(in));
    return static_cast<int>(prog.instrs.size()) - 1;
  }

  int const_instr(const IValue& c, ScalarType as) {
    Instr in;
    in.kind = Instr::Kind::Const;
    in.dtype = as;
    if (c.is_double()) {
      in.is_float_const = true;
      in.fvalue = c.toDouble();
    } else if (c.is_bool()) {
      in.is_bool_const = true;
      in.ivalue = c.toBool() ? 1 : 0;
    } else {
      in.ivalue = c.toInt();
    }
    return add(in);
  }

  // The instruction computing a tensor value of the block (a load for inputs and views).
  std::optional<int> tensor_instr(const ir::Value* v) {
    auto it = instr_of.find(v);
    if (it != instr_of.end()) return it->second;
    const ir::Type& t = v->type();
    if (!t.is_tensor() || !t.tensor().dtype) {
      fail(fmt::format("value %{} has no known tensor dtype", v->id()));
      return std::nullopt;
    }
    const ScalarType dt = *t.tensor().dtype;
    if (!supported_dtype(dt)) {
      fail(fmt::format("dtype {} has no kernel lowering", dtype_name(dt)));
      return std::nullopt;
    }
    // Inputs and views of inputs are loads (the launcher applies the views).
    if (is_loaded(v)) return instr_of[v] = load(v, dt);
    fail(fmt::format("%{} is used before it is computed", v->id()));
    return std::nullopt;
  }

  static bool is_loaded(const ir::Value* v) {
    const ir::Node* n = v->node();
    return v->is_block_input() || (n->kind().is_op() && ops::op_info(n->kind().op()).is_view());
  }

  int load(const ir::Value* v, ScalarType dt) {
    Instr in;
    in.kind = Instr::Kind::Load;
    in.input = static_cast<int>(prog.inputs.size());
    in.dtype = dt;
    prog.inputs.push_back(dt);
    input_of.emplace_back(v, in.input);
    return add(in);
  }

  // mm(A, B) of two loaded float matrices of its dtype: a Dot over fresh loads of each.
  bool product(const ir::Node* n) {
    const ScalarType out = *n->output()->type().tensor().dtype;
    if (out != kFloat && out != kDouble)
      return fail(fmt::format("mm gives dtype {}", dtype_name(out)));
    int args[2];
    int64_t depth = -1;
    for (int i = 0; i < 2; ++i) {
      const ir::Value* v = n->input(i);
      const ir::TensorType& t = v->type().tensor();
      const auto sizes = t.static_sizes();
      if (!is_loaded(v) || t.dtype != out || !sizes || sizes->size() != 2)
        return fail("an mm operand that is not a 2-D matrix of the group's inputs");
      depth = i == 0 ? (*sizes)[1] : depth;
      if (i == 1 && (*sizes)[0] != depth) return fail("mm operands of different depths");
      // Products of one operand in one role share its load (the gates of an LSTM: one A).
      auto it = operand_of.find({v, i});
      args[i] = it != operand_of.end() ? it->second : (operand_of[{v, i}] = load(v, out));
    }
    Instr in;
    in.kind = Instr::Kind::Dot;
    in.op = OpKind::Mm;
    in.args = {args[0], args[1]};
    in.ivalue = depth;
    in.dtype = out;
    in.compute = out;
    instr_of[n->output()] = add(in);
    return true;
  }

  bool elementwise(const ir::Node* n) {
    const OpKind k = n->kind().op();
    const ops::OpInfo& info = ops::op_info(k);
    const ScalarType out = *n->output()->type().tensor().dtype;
    if (!supported_dtype(out)) return fail(fmt::format("{} gives dtype {}", info.name, dtype_name(out)));
    // Tensor operands and number operands, in schema order (Cast's dtype is not an operand).
    std::vector<const ir::Value*> vals;
    for (size_t i = 0; i < n->num_inputs(); ++i) {
      if (k == OpKind::Cast && i == 1) break;
      vals.push_back(n->input(i));
    }
    Promotion p;
    for (size_t i = (k == OpKind::Where ? 1 : 0); i < vals.size(); ++i) {
      if (auto c = number_of(vals[i])) {
        Promotion::upd(p.wrapped, c->toScalar().type());
      } else {
        const ir::TensorType& tt = vals[i]->type().tensor();
        if (!tt.dtype || !tt.sizes) return fail("operand of unknown dtype or rank");
        Promotion::upd(tt.sizes->empty() ? p.zero : p.dim, *tt.dtype);
      }
    }
    ScalarType compute = out;
    if (info.dtype_rule == ops::DtypeRule::Bool) compute = p.result();
    if (k == OpKind::Where) compute = out;
    if (!supported_dtype(compute)) return fail(fmt::format("{} computes in {}", info.name, dtype_name(compute)));
    if (compute == kBool && !bool_ok(k)) return fail(fmt::format("{} on bool values", info.name));
    if (is_integral(compute) && !integer_ok(k))
      return fail(fmt::format("{} on {} values", info.name, dtype_name(compute)));
    Instr in;
    in.kind = Instr::Kind::Op;
    in.op = k;
    in.dtype = out;
    in.compute = compute;
    for (size_t i = 0; i < vals.size(); ++i) {
      if (auto c = number_of(vals[i])) {
        in.args.push_back(const_instr(*c, compute));
      } else {
        auto a = tensor_instr(vals[i]);
        if (!a) return false;
        in.args.push_back(*a);
      }
    }
    instr_of[n->output()] = add(in);
    return true;
  }

  bool reduction(const ir::Node* n, std::vector<KernelProgram::Output>* reds) {
    const OpKind k = n->kind().op();
    auto src = tensor_instr(n->input(0));
    if (!src) return false;
    const ScalarType in = prog.instrs[*src].dtype;
    const ScalarType out = *n->output()->type().tensor().dtype;
    KernelProgram::Output o;
    o.instr = *src;
    o.dtype = out;
    o.reduce = k;
    switch (k) {
      case OpKind::Sum:
      case OpKind::Prod:
        o.acc = is_floating_point(in) ? kDouble : kLong;
        break;
      case OpKind::Amax:
      case OpKind::Amin:
        if (in == kBool) return fail("amax/amin of bool values");
        o.acc = in;
        break;
      default:
        o.acc = kBool;
        break;
    }
    reds->push_back(o);
    instr_of[n->output()] = -2 - static_cast<int>(reds->size() - 1);  // marks a reduction
    return true;
  }
};

}  // namespace

namespace {
std::optional<KernelProgram> build_program(const ir::Node& group, std::string* why,
                                           Builder& b) {
  const ir::Block* blk = group.block(0);
  std::vector<KernelProgram::Output> reds;
  auto failed = [&]() -> std::optional<KernelProgram> {
    if (why) *why = b.why;
    return std::nullopt;
  };
  for (const ir::Node* n : blk->nodes()) {
    if (n->kind().is(ir::Prim::Constant)) continue;
    if (!n->kind().is_op()) {
      b.fail(fmt::format("{} nodes have no kernel lowering", n->kind().name()));
      return failed();
    }
    const ops::OpInfo& info = ops::op_info(n->kind().op());
    if (info.is_view()) continue;  // loaded where used
    if (info.is_reduction()) {
      if (!b.reduction(n, &reds)) return failed();
      continue;
    }
    if (n->kind().op() == OpKind::Mm) {
      if (!b.product(n)) return failed();
      continue;
    }
    if (!info.is_elementwise() || !info.has(ops::kFusible)) {
      b.fail(fmt::format("{} is not an elementwise op", info.name));
      return failed();
    }
    if (!b.elementwise(n)) return failed();
  }
  for (const ir::Value* v : blk->outputs()) {
    auto it = b.instr_of.find(v);
    if (it != b.instr_of.end() && it->second <= -2) {
      b.prog.outputs.push_back(reds[static_cast<size_t>(-2 - it->second)]);
      continue;
    }
    auto src = b.tensor_instr(v);
    if (!src) return failed();
    KernelProgram::Output o;
    o.instr = *src;
    o.dtype = b.prog.instrs[*src].dtype;
    o.acc = o.dtype;
    b.prog.outputs.push_back(o);
  }
  return b.prog;
}

std::optional<std::vector<int64_t>> static_sizes(const ir::Value* v) {
  if (!v->type().is_tensor()) return std::nullopt;
  return v->type().tensor().static_sizes();
}

std::vector<int64_t> broadcast(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  return infer_broadcast_size(a, b, "fusion_group");
}
}  // namespace

std::optional<GroupLowering> lower_group(const ir::Node& group, std::string* why) {
  Builder b;
  auto prog = build_program(group, why, b);
  if (!prog) return std::nullopt;
  auto fail = [&](std::string w) -> std::optional<GroupLowering> {
    if (why) *why = std::move(w);
    return std::nullopt;
  };
  GroupLowering g;
  g.program = std::move(*prog);
  const ir::Block* blk = group.block(0);
  // Sources: walk each loaded view value back to its block input.
  g.sources.resize(g.program.inputs.size());
  for (const auto& [v, k] : b.input_of) {
    GroupLowering::Source src;
    const ir::Value* cur = v;
    while (!cur->is_block_input()) {
      src.views.insert(src.views.begin(), cur->node());
      cur = cur->node()->input(0);
    }
    for (size_t i = 0; i < blk->inputs().size(); ++i)
      if (blk->inputs()[i] == cur) src.block_input = static_cast<int>(i);
    if (src.block_input < 0) return fail("a view does not start at a group input");
    for (const ir::Node* view : src.views) {
      std::vector<IValue> args;
      for (size_t i = 1; i < view->num_inputs(); ++i) {
        const ir::Node* c = view->input(i)->node();
        if (!c->kind().is(ir::Prim::Constant)) return fail("a view argument is not a constant");
        args.push_back(c->attr("value"));
      }
      src.view_args.push_back(std::move(args));
    }
    g.sources[k] = std::move(src);
  }
  // The iteration shape: every tensor value of the group broadcasts to it.
  std::vector<int64_t> shape;
  std::optional<std::vector<int64_t>> reduced;
  for (const ir::Node* n : blk->nodes()) {
    if (!n->kind().is_op()) continue;
    const ops::OpInfo& info = ops::op_info(n->kind().op());
    if (info.is_view()) continue;
    if (info.is_reduction()) {
      auto in = static_sizes(n->input(0));
      if (!in) return fail("a reduction input of unknown sizes");
      shape = broadcast(shape, *in);
      std::vector<int64_t> dims = n->input(1)->node()->attr("value").toIntList();
      const int64_t nd = static_cast<int64_t>(in->size());
      if (dims.empty())
        for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
      for (int64_t& d : dims) d = d < 0 ? d + nd : d;
      std::sort(dims.begin(), dims.end());
      if (reduced && *reduced != dims) return fail("reductions over different dims");
      reduced = dims;
      continue;
    }
    for (const ir::Value* v : n->outputs()) {
      auto s = static_sizes(v);
      if (!s) return fail("a value of unknown sizes");
      shape = broadcast(shape, *s);
    }
  }
  const std::vector<int> roles = g.program.dot_roles();
  for (const auto& [v, k] : b.input_of) {
    auto s = static_sizes(v);
    if (!s) return fail("an input of unknown sizes");
    if (roles[k] == 0) shape = broadcast(shape, *s);  // products' operands are matrices
  }
  g.shape = shape;
  if (reduced) g.reduce_dims = *reduced;
  // Reductions read values of the whole shape; elementwise outputs are stored at that shape.
  for (const ir::Node* n : blk->nodes())
    if (n->kind().is_op() && ops::op_info(n->kind().op()).is_reduction() &&
        *static_sizes(n->input(0)) != shape)
      return fail("a reduction of a value smaller than the group's shape");
  for (size_t i = 0; i < blk->outputs().size(); ++i) {
    auto s = static_sizes(blk->outputs()[i]);
    if (!s) return fail("an output of unknown sizes");
    if (!g.program.outputs[i].reduce && *s != shape) return fail("an output smaller than the group's shape");
    g.output_sizes.push_back(*s);
  }
  return g;
}

LaunchArgs launch_args(const GroupLowering& g, const std::vector<Tensor>& block_inputs) {
  LaunchArgs a;
  a.shape = g.shape;
  a.reduce_dims = g.reduce_dims;
  for (const GroupLowering::Source& s : g.sources) {
    Tensor t = block_inputs.at(s.block_input);
    for (size_t j = 0; j < s.views.size(); ++j) {
      // The common views directly (this runs per launch); the rest through the op table.
      const std::vector<IValue>& va = s.view_args[j];
      switch (s.views[j]->kind().op()) {
        case OpKind::Slice:
          t = t.slice(va[0].toInt(), va[1].toInt(), va[2].toInt(), va[3].toInt());
          continue;
        case OpKind::Select:
          t = t.select(va[0].toInt(), va[1].toInt());
          continue;
        case OpKind::View:
          t = t.view(va[0].toIntList());
          continue;
        case OpKind::Permute:
          t = t.permute(va[0].toIntList());
          continue;
        case OpKind::Expand:
          t = t.expand(va[0].toIntList());
          continue;
        default: {
          std::vector<IValue> args;
          args.reserve(va.size() + 1);
          args.emplace_back(t);
          args.insert(args.end(), va.begin(), va.end());
          t = ops::call(s.views[j]->kind().op(), args)[0].toTensor();
        }
      }
    }
    a.inputs.push_back(t);
  }
  return a;
}

// ---- emission ------------------------------------------------------------------------------
namespace {

ll::Type* storage_type(ll::LLVMContext& c, ScalarType t) {
  switch (t) {
    case kFloat: return ll::Type::getFloatTy(c);
    case kDouble: return ll::Type::getDoubleTy(c);
    case kInt: return ll::Type::getInt32Ty(c);
    case kLong: return ll::Type::getInt64Ty(c);
    case kBool: return ll::Type::getInt8Ty(c);
    default: KILN_ASSERT(false, "no storage type for {}", dtype_name(t));
  }
}
// The register type of a value: bool values are i1 masks.
ll::Type* value_type(ll::LLVMContext& c, ScalarType t) {
  return t == kBool ? ll::Type::getInt1Ty(c) : storage_type(c, t);
}
ll::Type* widen(ll::Type* t, int lanes) {
  return lanes == 1 ? t : static_cast<ll::Type*>(ll::FixedVectorType::get(t, lanes));
}

// eager's detail::convert between dtypes (bool: != 0; float -> int truncates).
Val cast_to(const Val& v, ScalarType from, ScalarType to) {
  if (from == to) return v;
  ll::IRBuilderBase& b = v.builder();
  ll::LLVMContext& c = b.getContext();
  const int lanes = v.lanes();
  if (to == kBool) {
    Val zero = Val(0).like(v);
    if (is_floating_point(from)) return Val(b.CreateFCmpUNE(v.value(), zero.value()), b);
    return Val(b.CreateICmpNE(v.value(), zero.value()), b);
  }
  ll::Type* target = widen(value_type(c, to), lanes);
  if (from == kBool) {
    if (is_floating_point(to)) return Val(b.CreateUIToFP(v.value(), target), b);
    return Val(b.CreateZExt(v.value(), target), b);
  }
  return convert(v, target);
}

Val identity(ops::OpKind k, ScalarType acc, const Val& like_shape) {
  ll::IRBuilderBase& b = like_shape.builder();
  ll::LLVMContext& c = b.getContext();
  ll::Type* t = widen(value_type(c, acc), like_shape.lanes());
  auto splat = [&](ll::Constant* s) {
    return Val(like_shape.lanes() == 1 ? static_cast<ll::Value*>(s)
                                       : ll::ConstantVector::getSplat(
                                             ll::ElementCount::getFixed(like_shape.lanes()), s),
               b);
  };
  ll::Type* e = t->getScalarType();
  const bool f = is_floating_point(acc);
  switch (k) {
    case OpKind::Sum: return splat(f ? ll::ConstantFP::get(e, 0.0) : ll::ConstantInt::get(e, 0));
    case OpKind::Prod: return splat(f ? ll::ConstantFP::get(e, 1.0) : ll::ConstantInt::get(e, 1));
    case OpKind::All: return splat(ll::ConstantInt::getTrue(c));
    case OpKind::Any: return splat(ll::ConstantInt::getFalse(c));
    case OpKind::Amax:
    case OpKind::Amin: {
      const bool mx = k == OpKind::Amax;
      if (f) return splat(ll::ConstantFP::getInfinity(e, mx));
      const unsigned bits = e->getIntegerBitWidth();
      return splat(ll::ConstantInt::get(
          e, mx ? ll::APInt::getSignedMinValue(bits) : ll::APInt::getSignedMaxValue(bits)));
    }
    default: KILN_ASSERT(false, "not a reduction");
  }
}

// acc (+)= v, eager's combiners (Extreme: NaN wins).
Val combine(ops::OpKind k, ScalarType acc_t, const Val& acc, const Val& v) {
  ll::IRBuilderBase& b = acc.builder();
  switch (k) {
    case OpKind::Sum: return acc + v;
    case OpKind::Prod: return acc * v;
    case OpKind::All: return Val(b.CreateAnd(acc.value(), v.value()), b);
    case OpKind::Any: return Val(b.CreateOr(acc.value(), v.value()), b);
    case OpKind::Amax:
    case OpKind::Amin: {
      Val better = k == OpKind::Amax ? acc > v : acc < v;
      if (is_floating_point(acc_t)) better = better || isnan(acc);
      return where(better, acc, v);
    }
    default: KILN_ASSERT(false, "not a reduction");
  }
}

// The program's values at one point (scalar) or one vector of points, from the loads per input
// and the Dot instructions' results (computed first, by emit_dots) at their instruction index.
// `known`: value_ranges(p), which picks the math library's bounded forms.
std::vector<Val> emit_program(const KernelProgram& p, const std::vector<Interval>& known,
                              const std::vector<Val>& loads, const std::vector<Val>& dots,
                              ll::IRBuilderBase& b) {
  std::vector<Val> v(p.instrs.size());
  int lanes = 0;  // of the first value given (products' operands have none)
  for (const std::vector<Val>* vals : {&loads, &dots})
    for (const Val& x : *vals)
      if (lanes == 0 && !x.is_literal()) lanes = x.lanes();
  lanes = std::max(lanes, 1);
  for (size_t i = 0; i < p.instrs.size(); ++i) {
    const Instr& in = p.instrs[i];
    switch (in.kind) {
      case Instr::Kind::Load:
        v[i] = loads[in.input];
        break;
      case Instr::Kind::Dot:
        v[i] = dots[i];
        break;
      case Instr::Kind::Const: {
        ll::Type* t = widen(value_type(b.getContext(), in.dtype), lanes);
        ll::Value* undef = ll::UndefValue::get(t);
        Val like(undef, b);
        if (in.dtype == kBool) {
          v[i] = Val(in.ivalue != 0 ? ll::ConstantInt::getTrue(t) : ll::ConstantInt::getFalse(t), b);
        } else if (is_floating_point(in.dtype)) {
          v[i] = Val(in.is_float_const ? in.fvalue : static_cast<double>(in.ivalue)).like(like);
        } else {
          // eager converts a float number to an integer dtype by truncation
          const int64_t iv = in.is_float_const ? static_cast<int64_t>(in.fvalue) : in.ivalue;
          v[i] = Val(iv).like(like);
        }
        break;
      }
      case Instr::Kind::Op: {
        std::vector<Val> a;
        for (int arg : in.args) a.push_back(cast_to(v[arg], p.instrs[arg].dtype, in.compute));
        const ops::OpInfo& info = ops::op_info(in.op);
        Val r;
        ScalarType rt = in.compute;
        switch (info.family) {
          case ops::OpFamily::Unary:
            if (is_integral(in.compute) &&
                (in.op == OpKind::Floor || in.op == OpKind::Ceil || in.op == OpKind::Round)) {
              r = a[0];
            } else {
              r = emit_unary(in.op, a[0], known[in.args[0]]);
            }
            break;
          case ops::OpFamily::Binary:
            r = emit_binary(in.op, a[0], a[1]);
            break;
          case ops::OpFamily::Ternary:  // where(cond, x, y): cond is converted to bool, x, y not
            r = where(cast_to(v[in.args[0]], p.instrs[in.args[0]].dtype, kBool), a[1], a[2]);
            break;
          case ops::OpFamily::Copy:  // copy, cast, assign: the (last) operand, converted
            r = a.back();
            break;
          default:
            KILN_FAIL("[codegen] {} is not elementwise", info.name);
        }
        if (r.is_mask()) rt = kBool;
        v[i] = cast_to(r, rt, in.dtype);
        break;
      }
    }
  }
  return v;
}

struct Operands {
  int n_store = 0, n_acc = 0, n_in = 0;
  std::vector<int> store_out, acc_out;  // program output index of each store / acc operand
  int total() const { return n_store + n_acc + n_in; }
};
Operands operands_of(const KernelProgram& p) {
  Operands o;
  for (size_t i = 0; i < p.outputs.size(); ++i) {
    if (p.outputs[i].reduce) o.acc_out.push_back(static_cast<int>(i));
    else o.store_out.push_back(static_cast<int>(i));
  }
  o.n_store = static_cast<int>(o.store_out.size());
  o.n_acc = static_cast<int>(o.acc_out.size());
  o.n_in = static_cast<int>(p.inputs.size());
  return o;
}

// dtype of operand k in ABI order.
ScalarType operand_dtype(const KernelProgram& p, const Operands& o, int k) {
  if (k < o.n_store) return p.outputs[o.store_out[k]].dtype;
  if (k < o.n_store + o.n_acc) return p.outputs[o.acc_out[k - o.n_store]].acc;
  return p.inputs[k - o.n_store - o.n_acc];
}

// Lanes of one vector register of the widest element the kernel touches.
int register_lanes(const KernelProgram& p) {
  int widest = 4;
  for (ScalarType t : p.inputs) widest = std::max<int>(widest, static_cast<int>(element_size(t)));
  for (const auto& out : p.outputs)
    widest = std::max<int>(widest, static_cast<int>(element_size(out.reduce ? out.acc : out.dtype)));
  for (const Instr& in : p.instrs)
    if (in.kind == Instr::Kind::Op)
      widest = std::max<int>(widest, static_cast<int>(element_size(in.compute)));
  return std::max(1, Jit::get().target().lanes(widest));
}

int default_lanes(const KernelProgram& p) {
  int ndots = 0;
  for (const Instr& in : p.instrs) ndots += in.kind == Instr::Kind::Dot;
  // Four registers: LLVM splits each op into four independent chains, which hides the latency
  // of long math (see docs/design.md). Products keep one accumulator per Dot across their k
  // loop: about eight registers of them in all (two FMA pipes of latency four), at most four
  // per Dot.
  const int per_op = ndots ? std::clamp(8 / ndots, 1, 4) : 4;
  return per_op * register_lanes(p);
}

}  // namespace

std::unique_ptr<ll::Module> emit_fused(ll::LLVMContext& ctx, const KernelSpec& spec) {
  const KernelProgram& p = spec.program;
  const Operands ops_ = operands_of(p);
  const int nops = ops_.total();
  KILN_ASSERT(static_cast<int>(spec.access.size()) == nops, "access for {} operands, got {}",
              nops, spec.access.size());
  Jit& jit = Jit::get();
  const int lanes = spec.lanes > 0 ? spec.lanes : default_lanes(p);
  KILN_CHECK(lanes >= 2, "[codegen] a fused kernel's vector needs at least 2 lanes: got {}",
             lanes);
  // The masked head and tail steps: one register (or `lanes`, if fewer).
  const int narrow = std::min(lanes, register_lanes(p));
  const bool vector_path = spec.vector_loop();
  auto m = std::make_unique<ll::Module>("fused", ctx);
  jit.prepare(*m);
  ll::IRBuilder<> b(ctx);
  ll::Type* i64 = b.getInt64Ty();
  ll::Type* ptr = b.getPtrTy();
  // Two functions: the kernel (the ABI's entry point) runs the rows, each by a call of the
  // row function over one row. The row function is not inlined: hoisted out of a row loop, the
  // vector loop's constants and pointers stayed live across it and spilled (the 8-op chain ran
  // 10-15% slower).
  auto* kernel =
      ll::Function::Create(ll::FunctionType::get(b.getVoidTy(), {ptr, ptr, i64, i64}, false),
                           ll::Function::ExternalLinkage, kFusedSymbol, *m);
  kernel->addFnAttr(ll::Attribute::NoUnwind);
  auto* fn = ll::Function::Create(ll::FunctionType::get(b.getVoidTy(), {ptr, ptr, i64}, false),
                                  ll::Function::ExternalLinkage, kFusedRowSymbol, *m);
  fn->addFnAttr(ll::Attribute::NoUnwind);
  fn->addFnAttr(ll::Attribute::NoInline);
  ll::Value* n = fn->getArg(2);

  auto* entry = ll::BasicBlock::Create(ctx, "entry", fn);
  auto* exit = ll::BasicBlock::Create(ctx, "exit", fn);
  b.SetInsertPoint(entry);
  std::vector<ll::Value*> base(nops), stride(nops);
  std::vector<ll::Type*> st(nops), vt(nops);
  std::vector<ScalarType> dt(nops);
  for (int k = 0; k < nops; ++k) {
    base[k] = b.CreateLoad(ptr, b.CreateConstGEP1_64(ptr, fn->getArg(0), k));
    stride[k] = b.CreateLoad(i64, b.CreateConstGEP1_64(i64, fn->getArg(1), k));
    dt[k] = operand_dtype(p, ops_, k);
    st[k] = storage_type(ctx, dt[k]);
    vt[k] = value_type(ctx, dt[k]);
  }
  // The products' operands and their k strides (after the operands' strides, in order).
  std::vector<int> dot_ids;
  for (size_t i = 0; i < p.instrs.size(); ++i)
    if (p.instrs[i].kind == Instr::Kind::Dot) dot_ids.push_back(static_cast<int>(i));
  std::vector<bool> dot_operand(nops, false);
  // Per operand its k stride; with spec.uniform_k the vector loop steps every operand of a
  // role by the first one's (shared_k_stride), which `fast` checks.
  std::vector<ll::Value*> k_stride(nops, nullptr), shared_k_stride(nops, nullptr);
  int64_t at = nops;  // the next stride to read
  {
    const std::vector<int> roles = p.dot_roles();
    ll::Value* first[3] = {nullptr, nullptr, nullptr};
    for (size_t i = 0; i < roles.size(); ++i) {
      const int k = ops_.n_store + ops_.n_acc + static_cast<int>(i);
      if (!roles[i]) continue;
      dot_operand[k] = true;
      k_stride[k] = b.CreateLoad(i64, b.CreateConstGEP1_64(i64, fn->getArg(1), at++));
      if (!first[roles[i]]) first[roles[i]] = k_stride[k];
      shared_k_stride[k] = spec.uniform_k ? first[roles[i]] : k_stride[k];
    }
  }
  // Loads of operand k at address addr, as values (bool bytes become masks).
  auto load = [&](int k, ll::Value* addr, int w, ll::Value* mask) -> Val {
    ll::Type* t = widen(st[k], w);
    const ll::Align al(element_size(dt[k]));
    ll::Value* x = mask ? static_cast<ll::Value*>(
                              b.CreateMaskedLoad(t, addr, al, mask, ll::Constant::getNullValue(t)))
                        : b.CreateAlignedLoad(t, addr, al);
    if (dt[k] == kBool) x = b.CreateICmpNE(x, ll::Constant::getNullValue(t));
    return Val(x, b);
  };
  // Streaming kernels align their vector loop's stores to the register width (vmovntps needs
  // it; LLVM would split an unaligned non-temporal store into scalar ones).
  const int64_t reg_bytes = jit.target().vector_bits / 8;
  auto store = [&](int k, const Val& v, ll::Value* addr, ll::Value* mask,
                   bool nontemporal = false) {
    ll::Value* x = v.value();
    const int w = v.lanes();
    if (dt[k] == kBool) x = b.CreateZExt(x, widen(st[k], w));
    const ll::Align al(element_size(dt[k]));
    if (mask) {
      b.CreateMaskedStore(x, addr, al, mask);
    } else if (nontemporal) {
      ll::StoreInst* s = b.CreateAlignedStore(x, addr, ll::Align(reg_bytes));
      s->setMetadata(ll::LLVMContext::MD_nontemporal,
                     ll::MDNode::get(ctx, {ll::ConstantAsMetadata::get(b.getInt32(1))}));
    } else {
      b.CreateAlignedStore(x, addr, al);
    }
  };
  const int first_in = ops_.n_store + ops_.n_acc;
  const std::vector<Interval> known = value_ranges(p);

  // The Dot results at the current point, `w` lanes wide: one loop over k per depth, all dots
  // of that depth accumulating side by side; operand_at(operand, k stride, k) loads an operand
  // at k (splat to w lanes where it does not move along the loop).
  // `ks`: the operands' k strides (k_stride, or shared_k_stride in the vector loop).
  using OperandAt = std::function<Val(int, ll::Value*, ll::Value*)>;
  auto emit_dots = [&](int w, const std::vector<ll::Value*>& ks, const OperandAt& operand_at) {
    std::vector<Val> out(p.instrs.size());
    std::vector<int64_t> depths;
    for (int id : dot_ids)
      if (std::find(depths.begin(), depths.end(), p.instrs[id].ivalue) == depths.end())
        depths.push_back(p.instrs[id].ivalue);
    for (int64_t depth : depths) {
      std::vector<size_t> mine;  // ordinals into dot_ids
      for (size_t d = 0; d < dot_ids.size(); ++d)
        if (p.instrs[dot_ids[d]].ivalue == depth) mine.push_back(d);
      auto zero = [&](size_t d) {
        return ll::Constant::getNullValue(widen(value_type(ctx, p.instrs[dot_ids[d]].dtype), w));
      };
      if (depth == 0) {
        for (size_t d : mine) out[dot_ids[d]] = Val(zero(d), b);
        continue;
      }
      ll::BasicBlock* pre = b.GetInsertBlock();
      auto* body = ll::BasicBlock::Create(ctx, "dot.body", fn);
      auto* done = ll::BasicBlock::Create(ctx, "dot.done", fn);
      b.CreateBr(body);
      b.SetInsertPoint(body);
      ll::PHINode* kk = b.CreatePHI(i64, 2, "k");
      kk->addIncoming(b.getInt64(0), pre);
      std::vector<ll::PHINode*> acc;
      std::vector<ll::Value*> next;
      for (size_t d : mine) {
        acc.push_back(b.CreatePHI(zero(d)->getType(), 2, "dot.acc"));
        acc.back()->addIncoming(zero(d), pre);
      }
      for (size_t j = 0; j < mine.size(); ++j) {
        const Instr& in = p.instrs[dot_ids[mine[j]]];
        const int ka = first_in + p.instrs[in.args[0]].input;
        const int kb = first_in + p.instrs[in.args[1]].input;
        ll::Value* x = operand_at(ka, ks[ka], kk).value();
        ll::Value* y = operand_at(kb, ks[kb], kk).value();
        next.push_back(b.CreateIntrinsic(ll::Intrinsic::fma, {acc[j]->getType()}, {x, y, acc[j]}));
      }
      ll::Value* kn = b.CreateAdd(kk, b.getInt64(1), "k.next", true, true);
      kk->addIncoming(kn, body);
      for (size_t j = 0; j < mine.size(); ++j) acc[j]->addIncoming(next[j], body);
      b.CreateCondBr(b.CreateICmpSLT(kn, b.getInt64(depth)), body, done);
      b.SetInsertPoint(done);
      for (size_t j = 0; j < mine.size(); ++j) out[dot_ids[mine[j]]] = Val(next[j], b);
    }
    return out;
  };
  // Byte address base + off (+ k * k_stride).
  auto at_k = [&](ll::Value* addr, ll::Value* ks, ll::Value* kk) {
    return b.CreateGEP(b.getInt8Ty(), addr, b.CreateMul(kk, ks));
  };

  // A loop's !llvm.loop: never unrolled, and (`no_vectorize`) not vectorised either.
  auto loop_metadata = [&](bool no_vectorize) {
    std::vector<ll::Metadata*> ops = {nullptr};
    if (no_vectorize)
      ops.push_back(ll::MDNode::get(ctx, {ll::MDString::get(ctx, "llvm.loop.vectorize.enable"),
                                          ll::ConstantAsMetadata::get(b.getFalse())}));
    ops.push_back(ll::MDNode::get(ctx, {ll::MDString::get(ctx, "llvm.loop.unroll.disable")}));
    ll::MDNode* id = ll::MDNode::getDistinct(ctx, ops);
    id->replaceOperandWith(0, id);
    return id;
  };

  // ---- the scalar strided loop (any layout) ------------------------------------------------
  // `fallback`: the loop only runs when a launch's strides differ from the spec's (the spec's
  // operands are contiguous or broadcast): LLVM's loop vectoriser and unroller skip it, which
  // saves compile time for code that rarely runs.
  auto emit_scalar_loop = [&](ll::BasicBlock* from, bool fallback) {
    auto* ph = ll::BasicBlock::Create(ctx, "strided.ph", fn);
    auto* body = ll::BasicBlock::Create(ctx, "strided.body", fn);
    b.SetInsertPoint(from);
    b.CreateBr(ph);
    b.SetInsertPoint(ph);
    b.CreateCondBr(b.CreateICmpSGT(n, b.getInt64(0)), body, exit);
    b.SetInsertPoint(body);
    ll::PHINode* j = b.CreatePHI(i64, 2, "j");
    j->addIncoming(b.getInt64(0), ph);
    auto addr = [&](int k) {
      return b.CreateGEP(b.getInt8Ty(), base[k], b.CreateMul(j, stride[k]));
    };
    // The products first: the other loads would be live (spilled) across their loop.
    const std::vector<Val> dots = emit_dots(1, k_stride, [&](int k, ll::Value* ks, ll::Value* kk) {
      return load(k, at_k(addr(k), ks, kk), 1, nullptr);
    });
    std::vector<Val> loads;
    for (int k = first_in; k < nops; ++k)
      loads.push_back(dot_operand[k] ? Val() : load(k, addr(k), 1, nullptr));
    std::vector<Val> v = emit_program(p, known, loads, dots, b);
    for (int s = 0; s < ops_.n_store; ++s)
      store(s, v[p.outputs[ops_.store_out[s]].instr], addr(s), nullptr);
    for (int a = 0; a < ops_.n_acc; ++a) {
      const int k = ops_.n_store + a;
      const auto& o = p.outputs[ops_.acc_out[a]];
      ll::Value* ad = addr(k);
      Val cur = load(k, ad, 1, nullptr);
      Val x = cast_to(v[o.instr], p.instrs[o.instr].dtype, o.acc);
      store(k, combine(*o.reduce, o.acc, cur, x), ad, nullptr);
    }
    ll::Value* jn = b.CreateAdd(j, b.getInt64(1), "j.next", true, true);
    j->addIncoming(jn, b.GetInsertBlock());
    ll::BranchInst* back = b.CreateCondBr(b.CreateICmpSLT(jn, n), body, exit);
    if (fallback) back->setMetadata(ll::LLVMContext::MD_loop, loop_metadata(true));
  };

  // The kernel: for each row r, the row function at the operands' pointers plus r times their
  // row strides (the strides after the k strides); then `finish`.
  auto emit_kernel = [&](const std::function<void()>& finish) {
    b.SetInsertPoint(exit);
    b.CreateRetVoid();
    auto* k_entry = ll::BasicBlock::Create(ctx, "entry", kernel);
    auto* row_bb = ll::BasicBlock::Create(ctx, "row", kernel);
    auto* done = ll::BasicBlock::Create(ctx, "done", kernel);
    b.SetInsertPoint(k_entry);
    ll::Value* ptrs = kernel->getArg(0);
    ll::Value* strides = kernel->getArg(1);
    ll::Value* rows = kernel->getArg(3);
    ll::Value* row_ptrs = b.CreateAlloca(ptr, b.getInt64(nops), "row.ptrs");
    std::vector<ll::Value*> base0(nops), row_stride(nops);
    for (int k = 0; k < nops; ++k) {
      base0[k] = b.CreateLoad(ptr, b.CreateConstGEP1_64(ptr, ptrs, k));
      row_stride[k] = b.CreateLoad(i64, b.CreateConstGEP1_64(i64, strides, at + k));
    }
    b.CreateCondBr(b.CreateICmpSGT(rows, b.getInt64(0)), row_bb, done);
    b.SetInsertPoint(row_bb);
    ll::PHINode* r = b.CreatePHI(i64, 2, "r");
    r->addIncoming(b.getInt64(0), k_entry);
    for (int k = 0; k < nops; ++k)
      b.CreateStore(b.CreateGEP(b.getInt8Ty(), base0[k], b.CreateMul(r, row_stride[k])),
                    b.CreateConstGEP1_64(ptr, row_ptrs, k));
    b.CreateCall(fn, {row_ptrs, strides, kernel->getArg(2)});
    ll::Value* rn = b.CreateAdd(r, b.getInt64(1), "r.next", true, true);
    r->addIncoming(rn, row_bb);
    b.CreateCondBr(b.CreateICmpSLT(rn, rows), row_bb, done);
    b.SetInsertPoint(done);
    finish();
    b.CreateRetVoid();
    jit.prepare(*m);
  };

  if (!vector_path) {
    emit_scalar_loop(entry, false);
    emit_kernel([] {});
    return m;
  }

  // ---- the vector loop (contiguous and broadcast operands) ---------------------------------
  mark_vector_code(*m);
  ll::Value* fast = b.getTrue();
  for (int k = 0; k < nops; ++k) {
    const int64_t want = spec.access[k] == Access::Broadcast ? 0 : element_size(dt[k]);
    fast = b.CreateAnd(fast, b.CreateICmpEQ(stride[k], b.getInt64(want)));
    if (dot_operand[k]) fast = b.CreateAnd(fast, b.CreateICmpEQ(k_stride[k], shared_k_stride[k]));
  }
  const bool streaming = spec.streaming && ops_.n_store == 1 && ops_.n_acc == 0 &&
                         spec.access[0] == Access::Contiguous &&
                         reg_bytes % static_cast<int64_t>(element_size(dt[0])) == 0 &&
                         lanes * static_cast<int64_t>(element_size(dt[0])) % reg_bytes == 0;
  // Streaming: `head` elements (masked) bring the output to a register-aligned address; an
  // output not aligned to its element size takes the scalar loop.
  ll::Value* head = b.getInt64(0);
  if (streaming) {
    const int64_t es = static_cast<int64_t>(element_size(dt[0]));
    ll::Value* addr = b.CreatePtrToInt(base[0], i64);
    fast = b.CreateAnd(fast, b.CreateICmpEQ(b.CreateAnd(addr, b.getInt64(es - 1)), b.getInt64(0)));
    ll::Value* mis = b.CreateAnd(b.CreateNeg(addr), b.getInt64(reg_bytes - 1));
    head = b.CreateUDiv(mis, b.getInt64(es));
    head = b.CreateSelect(b.CreateICmpSLT(head, n), head, n, "head");
  }
  auto* vec_ph = ll::BasicBlock::Create(ctx, "vec.ph", fn);
  auto* vec_body = ll::BasicBlock::Create(ctx, "vec.body", fn);
  auto* vec_done = ll::BasicBlock::Create(ctx, "vec.done", fn);
  auto* vec_fin = ll::BasicBlock::Create(ctx, "vec.fin", fn);
  auto* slow = ll::BasicBlock::Create(ctx, "slow", fn);
  b.CreateCondBr(fast, vec_ph, slow);

  b.SetInsertPoint(vec_ph);
  // Broadcast inputs: loaded once, splat. Reductions into one slot keep vector accumulators.
  std::vector<Val> splats(nops), narrow_splats(nops);
  for (int k = first_in; k < nops; ++k)
    if (spec.access[k] == Access::Broadcast && !dot_operand[k]) {
      Val s = load(k, base[k], 1, nullptr);
      splats[k] = Val(b.CreateVectorSplat(lanes, s.value()), b);
      if (narrow != lanes) narrow_splats[k] = Val(b.CreateVectorSplat(narrow, s.value()), b);
    }
  // The whole vectors: [head, nvec).
  ll::Value* nvec =
      streaming
          ? b.CreateAdd(head, b.CreateAnd(b.CreateSub(n, head), b.getInt64(~int64_t(lanes - 1))),
                        "nvec")
          : b.CreateAnd(n, b.getInt64(~int64_t(lanes - 1)), "nvec");
  // Reductions into one slot keep vector accumulators (the others read-modify-write), starting
  // at the reduction's identity, w lanes wide.
  auto vector_acc = [&](int a) { return spec.access[ops_.n_store + a] == Access::Broadcast; };
  auto acc_identity = [&](int a, int w) {
    const auto& o = p.outputs[ops_.acc_out[a]];
    return identity(*o.reduce, o.acc, Val(ll::UndefValue::get(widen(b.getInt8Ty(), w)), b));
  };
  // One vector step of w lanes at element offset `at`, under mask (null: all lanes); streaming
  // stores where `nontemporal`. accs: the broadcast accumulators, w lanes wide.
  auto vector_step = [&](int w, ll::Value* at, ll::Value* mask, std::vector<Val>& accs,
                         bool nontemporal) {
    const std::vector<Val>& splat = w == lanes ? splats : narrow_splats;
    // The products first: the other loads would be live (spilled) across their loop.
    const std::vector<Val> dots =
        emit_dots(w, shared_k_stride, [&](int k, ll::Value* ks, ll::Value* kk) {
          if (spec.access[k] == Access::Broadcast) {
            Val x = load(k, at_k(base[k], ks, kk), 1, nullptr);
            return Val(b.CreateVectorSplat(w, x.value()), b);
          }
          return load(k, at_k(b.CreateGEP(st[k], base[k], at), ks, kk), w, mask);
        });
    std::vector<Val> loads;
    for (int k = first_in; k < nops; ++k)
      loads.push_back(dot_operand[k] ? Val()
                      : spec.access[k] == Access::Broadcast
                          ? splat[k]
                          : load(k, b.CreateGEP(st[k], base[k], at), w, mask));
    std::vector<Val> v = emit_program(p, known, loads, dots, b);
    for (int s = 0; s < ops_.n_store; ++s)
      store(s, v[p.outputs[ops_.store_out[s]].instr], b.CreateGEP(st[s], base[s], at), mask,
            nontemporal);
    for (int a = 0; a < ops_.n_acc; ++a) {
      const int k = ops_.n_store + a;
      const auto& o = p.outputs[ops_.acc_out[a]];
      Val x = cast_to(v[o.instr], p.instrs[o.instr].dtype, o.acc);
      if (spec.access[k] == Access::Broadcast) {
        Val c = combine(*o.reduce, o.acc, accs[a], x);
        accs[a] = mask ? where(Val(mask, b), c, accs[a]) : c;
      } else {
        ll::Value* ad = b.CreateGEP(st[k], base[k], at);
        Val cur = load(k, ad, w, mask);
        store(k, combine(*o.reduce, o.acc, cur, x), ad, mask);
      }
    }
  };
  // A mask of the first `count` lanes of w.
  auto first_lanes = [&](int w, ll::Value* count) {
    std::vector<uint64_t> ids(w);
    for (int l = 0; l < w; ++l) ids[l] = static_cast<uint64_t>(l);
    ll::Value* iota = ll::ConstantDataVector::get(ctx, ll::ArrayRef<uint64_t>(ids));
    return b.CreateICmpSLT(iota, b.CreateVectorSplat(w, count));
  };
  // Elements [start, start + count), count < `lanes`, in masked steps of `narrow` lanes: one
  // step when count cannot exceed them, else a loop. accs: the broadcast accumulators (narrow
  // lanes) going in; returns them as they stand in block `done`, where the code continues.
  auto masked_steps = [&](ll::Value* start, ll::Value* count, int64_t max_count,
                          std::vector<Val> accs, const char* name, ll::BasicBlock* done) {
    const bool once = max_count <= narrow;
    ll::BasicBlock* pre = b.GetInsertBlock();
    auto* body = ll::BasicBlock::Create(ctx, name, fn, done);
    b.CreateCondBr(b.CreateICmpSGT(count, b.getInt64(0)), body, done);
    b.SetInsertPoint(body);
    ll::PHINode* t = nullptr;
    std::vector<ll::PHINode*> phi(ops_.n_acc, nullptr);
    if (!once) {
      t = b.CreatePHI(i64, 2, "t");
      t->addIncoming(b.getInt64(0), pre);
      for (int a = 0; a < ops_.n_acc; ++a)
        if (vector_acc(a)) {
          phi[a] = b.CreatePHI(accs[a].type(), 2, "tail.acc");
          phi[a]->addIncoming(accs[a].value(), pre);
        }
    }
    std::vector<Val> step_accs(ops_.n_acc);
    for (int a = 0; a < ops_.n_acc; ++a)
      if (vector_acc(a)) step_accs[a] = phi[a] ? Val(phi[a], b) : accs[a];
    ll::Value* left = t ? b.CreateSub(count, t) : count;
    vector_step(narrow, t ? b.CreateAdd(start, t) : start, first_lanes(narrow, left), step_accs,
                false);
    ll::BasicBlock* body_end = b.GetInsertBlock();
    if (t) {
      ll::Value* tn = b.CreateAdd(t, b.getInt64(narrow), "t.next", true, true);
      t->addIncoming(tn, body_end);
      for (int a = 0; a < ops_.n_acc; ++a)
        if (phi[a]) phi[a]->addIncoming(step_accs[a].value(), body_end);
      // Not unrolled: LLVM would copy the body once per possible step, which is what the
      // narrow steps are there to avoid.
      b.CreateCondBr(b.CreateICmpSLT(tn, count), body, done)
          ->setMetadata(ll::LLVMContext::MD_loop, loop_metadata(false));
    } else {
      b.CreateBr(done);
    }
    b.SetInsertPoint(done);
    std::vector<Val> out(ops_.n_acc);
    for (int a = 0; a < ops_.n_acc; ++a) {
      if (!vector_acc(a)) continue;
      ll::PHINode* f = b.CreatePHI(accs[a].type(), 2, "acc.fin");
      f->addIncoming(accs[a].value(), pre);
      f->addIncoming(step_accs[a].value(), body_end);
      out[a] = Val(f, b);
    }
    return out;
  };
  if (streaming) {
    auto* head_done = ll::BasicBlock::Create(ctx, "vec.head.done", fn, vec_body);
    const int64_t max_head = reg_bytes / static_cast<int64_t>(element_size(dt[0])) - 1;
    masked_steps(b.getInt64(0), head, max_head, std::vector<Val>(ops_.n_acc), "vec.head",
                 head_done);
  }
  ll::BasicBlock* ph_end = b.GetInsertBlock();
  b.CreateCondBr(b.CreateICmpSGT(nvec, head), vec_body, vec_done);

  b.SetInsertPoint(vec_body);
  ll::PHINode* i = b.CreatePHI(i64, 2, "i");
  i->addIncoming(head, ph_end);
  std::vector<ll::PHINode*> acc_phi(ops_.n_acc, nullptr);
  for (int a = 0; a < ops_.n_acc; ++a)
    if (vector_acc(a)) {
      const Val init = acc_identity(a, lanes);
      acc_phi[a] = b.CreatePHI(init.type(), 2, "acc");
      acc_phi[a]->addIncoming(init.value(), ph_end);
    }
  {
    std::vector<Val> accs(ops_.n_acc);
    for (int a = 0; a < ops_.n_acc; ++a)
      if (acc_phi[a]) accs[a] = Val(acc_phi[a], b);
    vector_step(lanes, i, nullptr, accs, streaming);
    ll::Value* inext = b.CreateAdd(i, b.getInt64(lanes), "i.next", true, true);
    ll::BasicBlock* body_end = b.GetInsertBlock();
    i->addIncoming(inext, body_end);
    for (int a = 0; a < ops_.n_acc; ++a)
      if (acc_phi[a]) acc_phi[a]->addIncoming(accs[a].value(), body_end);
    b.CreateCondBr(b.CreateICmpSLT(inext, nvec), vec_body, vec_done);
  }

  // After the whole vectors: the accumulators as they stand, then the rest (< lanes elements)
  // in masked steps. Steps narrower than the loop's are a loop of their own over a copy of the
  // body a fraction of its size, and code size is compile time (docs/design.md).
  b.SetInsertPoint(vec_done);
  std::vector<Val> acc_done(ops_.n_acc);
  for (int a = 0; a < ops_.n_acc; ++a)
    if (vector_acc(a)) {
      ll::PHINode* d = b.CreatePHI(acc_phi[a]->getType(), 2, "acc.done");
      d->addIncoming(acc_identity(a, lanes).value(), ph_end);
      // the loop edge: the value the body's last block sends back to the body
      for (ll::BasicBlock* pred : ll::predecessors(vec_done))
        if (pred != ph_end) d->addIncoming(acc_phi[a]->getIncomingValueForBlock(pred), pred);
      acc_done[a] = Val(d, b);
    }
  std::vector<Val> tail_in(ops_.n_acc);
  for (int a = 0; a < ops_.n_acc; ++a)
    if (vector_acc(a)) tail_in[a] = narrow == lanes ? acc_done[a] : acc_identity(a, narrow);
  std::vector<Val> fin = masked_steps(nvec, b.CreateSub(n, nvec, "rem"), lanes - 1, tail_in,
                                      "vec.tail", vec_fin);
  for (int a = 0; a < ops_.n_acc; ++a) {
    if (!vector_acc(a)) continue;
    // Lanes combined in order (the loop's, then the rest's when it had its own), then into
    // the slot.
    const int k = ops_.n_store + a;
    const auto& o = p.outputs[ops_.acc_out[a]];
    Val r = load(k, base[k], 1, nullptr);
    auto fold = [&](const Val& acc) {
      for (int l = 0; l < acc.lanes(); ++l)
        r = combine(*o.reduce, o.acc, r,
                    Val(b.CreateExtractElement(acc.value(), b.getInt64(l)), b));
    };
    if (narrow != lanes) fold(acc_done[a]);
    fold(fin[a]);
    store(k, r, base[k], nullptr);
  }
  b.CreateBr(exit);

  emit_scalar_loop(slow, true);
  // Streaming stores are weakly ordered: fence them before the caller (another thread's
  // parallel_for) reads the output.
  emit_kernel([&] {
    if (streaming)
      b.CreateCall(ll::Intrinsic::getDeclaration(m.get(), ll::Intrinsic::x86_sse_sfence));
  });
  return m;
}

std::string fused_kernel_ir(const ir::Node& group, int lanes, int opt_level) {
  std::string why;
  std::optional<GroupLowering> low = lower_group(group, &why);
  KILN_CHECK(low.has_value(), "[codegen] cannot lower this fusion group: {}", why);
  // The access pattern of contiguous inputs of the group's declared sizes, as the executor
  // derives it from example inputs (broadcasts and reduction accumulators included).
  std::vector<Tensor> ex;
  for (const ir::Value* v : group.inputs()) {
    const auto sizes = v->type().is_tensor() ? v->type().tensor().static_sizes() : std::nullopt;
    KILN_CHECK(sizes && v->type().tensor().dtype,
               "[codegen] --emit=llvm needs static sizes and dtypes for the group's inputs, got {}",
               v->type().str());
    ex.push_back(zeros(*sizes, TensorOptions(*v->type().tensor().dtype)));
  }
  KernelSpec spec = spec_for(low->program, launch_args(*low, ex));
  spec.lanes = lanes;
  ll::LLVMContext ctx;
  std::unique_ptr<ll::Module> m = emit_fused(ctx, spec);
  Jit::get().prepare(*m);
  if (opt_level > 0) Jit::get().optimize(*m, opt_level);
  return print_ir(*m);
}

// ---- compiled kernels ----------------------------------------------------------------------

FusedKernel::FusedKernel(KernelSpec spec, ObjectCode object)
    : spec_(std::move(spec)), object_(std::move(object)) {
  library_ = Jit::get().load(object_);
  fn_ = library_->lookup<FusedFn>(kFusedSymbol);
}

std::shared_ptr<FusedKernel> FusedKernel::compile(const KernelSpec& spec,
                                                  const CompileOptions& options) {
  ll::LLVMContext ctx;
  auto m = emit_fused(ctx, spec);
  ObjectCode obj = Jit::get().compile(*m, options);
  return std::shared_ptr<FusedKernel>(new FusedKernel(spec, std::move(obj)));
}

std::shared_ptr<FusedKernel> FusedKernel::load(const KernelSpec& spec, const ObjectCode& object) {
  return std::shared_ptr<FusedKernel>(new FusedKernel(spec, object));
}

// ---- launching -----------------------------------------------------------------------------
namespace {

// Byte strides of t broadcast to shape (0 where t is expanded or missing).
std::vector<int64_t> strides_in(const Tensor& t, IntArrayRef shape) {
  const int64_t nd = static_cast<int64_t>(shape.size()), td = t.dim();
  std::vector<int64_t> out(nd, 0);
  const int64_t es = t.element_size();
  for (int64_t d = 0; d < td; ++d) {
    const int64_t od = d + nd - td;
    out[od] = (t.size(d) == 1 && shape[od] != 1) ? 0 : t.stride(d) * es;
  }
  return out;
}

using Layout = LaunchLayout;

// The share of the L1 data cache a block of B's columns may take (see inner_block).
constexpr int64_t kDotBlockBytes = 16 << 10;

// Byte strides over shape of a product's operand m (role 1: A [M, K], role 2: B [K, N]) at
// each point of the product's [M, N] result broadcast to shape: A moves with the rows, B with
// the columns (their k strides go to the layout's tail).
std::vector<int64_t> dot_operand_strides(const Tensor& m, IntArrayRef shape, int role) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  KILN_CHECK(m.dim() == 2 && nd >= 2,
             "[codegen] fused product: got a {}-D operand, expected a matrix", m.dim());
  std::vector<int64_t> out(nd, 0);
  const int64_t d = role == 1 ? 0 : 1;  // the operand's dim that is the result's
  const int64_t od = nd - 2 + d;        // the result's dim in shape
  const int64_t size = m.size(d);
  KILN_CHECK(size == shape[od] || size == 1,
             "[codegen] fused product: an operand of sizes {} does not broadcast to {}", m.sizes(),
             shape);
  out[od] = (size == 1 && shape[od] != 1) ? 0 : m.stride(d) * m.element_size();
  return out;
}

Layout coalesce(IntArrayRef shape, const std::vector<std::vector<int64_t>>& st,
                const std::vector<bool>& reduced_dim) {
  Layout l;
  const size_t nops = st.size();
  l.strides.resize(nops);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    l.sizes.push_back(shape[d]);
    l.reduced.push_back(reduced_dim[d]);
    for (size_t k = 0; k < nops; ++k) l.strides[k].push_back(st[k][d]);
  }
  for (int64_t d = static_cast<int64_t>(l.sizes.size()) - 1; d > 0; --d) {
    bool ok = l.reduced[d] == l.reduced[d - 1];
    for (size_t k = 0; ok && k < nops; ++k) ok = l.strides[k][d - 1] == l.strides[k][d] * l.sizes[d];
    if (!ok) continue;
    l.sizes[d - 1] *= l.sizes[d];
    l.sizes.erase(l.sizes.begin() + d);
    l.reduced.erase(l.reduced.begin() + d);
    for (size_t k = 0; k < nops; ++k) {
      l.strides[k][d - 1] = l.strides[k][d];
      l.strides[k].erase(l.strides[k].begin() + d);
    }
  }
  return l;
}

// The launch-invariant parts of a layout (LaunchLayout's derived fields).
void finish_layout(Layout& l) {
  const int64_t nd = static_cast<int64_t>(l.sizes.size());
  const size_t nops = l.strides.size();
  std::vector<int64_t>& st = l.abi_strides;
  st.clear();
  for (size_t k = 0; k < nops; ++k) st.push_back(nd > 0 ? l.strides[k].back() : 0);
  st.insert(st.end(), l.k_strides.begin(), l.k_strides.end());
  for (size_t k = 0; k < nops; ++k) st.push_back(nd > 1 ? l.strides[k][nd - 2] : 0);
  l.kept.clear();
  l.red.clear();
  for (int64_t d = 0; d + 2 < nd; ++d) (l.reduced[d] ? l.red : l.kept).push_back(d);
  l.tasks = l.red_rows = 1;
  for (int64_t d : l.kept) l.tasks *= l.sizes[d];
  for (int64_t d : l.red) l.red_rows *= l.sizes[d];
}

struct Prepared {
  std::vector<Tensor> stores, accs;  // program outputs: elementwise, accumulators
  std::vector<char*> base;
  Layout layout;
  std::vector<int64_t> acc_shape;
};

// Where elementwise output oi is written: the caller's buffer (checked to fit) or a fresh
// contiguous tensor.
Tensor store_output(const KernelProgram& p, const std::vector<Tensor>& provided, size_t oi,
                    IntArrayRef shape) {
  const ScalarType t = p.outputs[oi].dtype;
  if (oi >= provided.size() || !provided[oi].defined()) return empty(shape, TensorOptions(t));
  const Tensor& out = provided[oi];
  KILN_ASSERT(out.sizes().equals(shape) && out.dtype() == t && out.is_contiguous(),
              "fused kernel: a provided output does not fit");
  return out;
}

Prepared prepare(const KernelProgram& p, const LaunchArgs& a, bool allocate) {
  const Operands o = operands_of(p);
  KILN_CHECK(static_cast<int>(a.inputs.size()) == o.n_in,
             "[codegen] fused kernel takes {} inputs, got {}", o.n_in, a.inputs.size());
  Prepared pr;
  const IntArrayRef shape(a.shape);
  std::vector<bool> reduced(shape.size(), false);
  for (int64_t d : a.reduce_dims) reduced[d] = true;
  pr.acc_shape = a.shape;
  for (int64_t d : a.reduce_dims) pr.acc_shape[d] = 1;
  std::vector<std::vector<int64_t>> st;
  for (int s = 0; s < o.n_store; ++s) {
    const ScalarType t = p.outputs[o.store_out[s]].dtype;
    const size_t oi = static_cast<size_t>(o.store_out[s]);
    Tensor out;
    if (allocate) out = store_output(p, a.outputs, oi, shape);
    std::vector<int64_t> cs(shape.size());
    int64_t acc = static_cast<int64_t>(element_size(t));
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      cs[d] = shape[d] == 1 ? 0 : acc;
      acc *= shape[d];
    }
    st.push_back(cs);
    pr.stores.push_back(out);
  }
  for (int r = 0; r < o.n_acc; ++r) {
    const auto& out = p.outputs[o.acc_out[r]];
    Tensor acc;
    const size_t oi = static_cast<size_t>(o.acc_out[r]);
    if (allocate) {
      if (oi < a.outputs.size() && a.outputs[oi].defined() && out.acc == out.dtype) {
        acc = a.outputs[oi];
        KILN_ASSERT(acc.sizes().equals(pr.acc_shape) && acc.dtype() == out.acc &&
                        acc.is_contiguous(),
                    "fused kernel: a provided reduction output does not fit");
      } else {
        acc = empty(pr.acc_shape, TensorOptions(out.acc));
      }
      const bool mx = *out.reduce == OpKind::Amax;
      switch (*out.reduce) {
        case OpKind::Sum: acc.fill_(0); break;
        case OpKind::Prod: acc.fill_(1); break;
        case OpKind::All: acc.fill_(true); break;
        case OpKind::Any: acc.fill_(false); break;
        default:
          if (is_floating_point(out.acc))
            acc.fill_(mx ? -std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::infinity());
          else if (out.acc == kInt)
            acc.fill_(mx ? std::numeric_limits<int32_t>::lowest() : std::numeric_limits<int32_t>::max());
          else
            acc.fill_(mx ? std::numeric_limits<int64_t>::lowest() : std::numeric_limits<int64_t>::max());
      }
    }
    std::vector<int64_t> cs(shape.size());
    int64_t stride = static_cast<int64_t>(element_size(out.acc));
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      cs[d] = (reduced[d] || shape[d] == 1) ? 0 : stride;
      stride *= pr.acc_shape[d];
    }
    st.push_back(cs);
    pr.accs.push_back(acc);
  }
  const std::vector<int> roles = p.dot_roles();
  for (size_t i = 0; i < a.inputs.size(); ++i)
    st.push_back(roles[i] ? dot_operand_strides(a.inputs[i], shape, roles[i])
                          : strides_in(a.inputs[i], shape));
  pr.layout = coalesce(shape, st, reduced);
  for (const Instr& in : p.instrs) {
    if (in.kind != Instr::Kind::Dot) continue;
    const Tensor& ma = a.inputs[p.instrs[in.args[0]].input];
    const Tensor& mb = a.inputs[p.instrs[in.args[1]].input];
    KILN_CHECK(ma.size(1) == in.ivalue && mb.size(0) == in.ivalue,
               "[codegen] fused product: got operands {} and {}, expected depth {}", ma.sizes(),
               mb.sizes(), in.ivalue);
    pr.layout.work_per_point += in.ivalue;
  }
  int64_t col_bytes = 0;  // of the B operands, per column of the result
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (roles[i]) {
      const Tensor& m = a.inputs[i];
      pr.layout.k_strides.push_back(m.stride(roles[i] == 1 ? 1 : 0) * m.element_size());
      if (roles[i] == 2) col_bytes += m.size(0) * m.element_size();
    }
  // Rows of a product re-read all of B: run them block of columns by block of columns, each
  // block's slice of B small enough to stay in the L1 cache across the rows.
  if (col_bytes > 0) pr.layout.inner_block = std::max<int64_t>(16, kDotBlockBytes / col_bytes);
  finish_layout(pr.layout);
  if (allocate) {
    for (const Tensor& t : pr.stores) pr.base.push_back(static_cast<char*>(t.data_ptr()));
    for (const Tensor& t : pr.accs) pr.base.push_back(static_cast<char*>(t.data_ptr()));
    for (const Tensor& t : a.inputs) pr.base.push_back(static_cast<char*>(t.data_ptr()));
  }
  return pr;
}

}  // namespace

bool streams(const KernelProgram& p, const LaunchArgs& a) {
  if (p.outputs.size() != 1 || p.has_reductions()) return false;
  const int64_t numel = detail::prod_sizes(a.shape);
  return numel * static_cast<int64_t>(element_size(p.outputs[0].dtype)) >= kStreamingBytes;
}

namespace {

// The inner-loop access of every operand over layout l.
std::vector<Access> access_over(const KernelProgram& p, const Layout& l) {
  const Operands o = operands_of(p);
  std::vector<Access> acc;
  for (int k = 0; k < o.total(); ++k) {
    if (l.sizes.empty()) {
      acc.push_back(Access::Contiguous);
      continue;
    }
    const int64_t s = l.strides[k].back();
    const int64_t es = static_cast<int64_t>(element_size(operand_dtype(p, o, k)));
    acc.push_back(s == 0 ? Access::Broadcast : s == es ? Access::Contiguous : Access::Strided);
  }
  return acc;
}

}  // namespace

std::vector<Access> access_for(const KernelProgram& p, const LaunchArgs& a) {
  return access_over(p, prepare(p, a, false).layout);
}

KernelSpec spec_for(const KernelProgram& p, const LaunchArgs& a) {
  KernelSpec spec;
  spec.program = p;
  const Layout layout = prepare(p, a, false).layout;
  spec.access = access_over(p, layout);
  spec.streaming = streams(p, a);
  // k strides per role (the layout lists them in input order of the Dot operands)
  const std::vector<int> roles = p.dot_roles();
  const std::vector<int64_t>& ks = layout.k_strides;
  std::optional<int64_t> first[3];
  bool uniform = !ks.empty();
  for (size_t i = 0, at = 0; i < roles.size(); ++i) {
    if (!roles[i]) continue;
    std::optional<int64_t>& f = first[roles[i]];
    if (!f) f = ks[at];
    uniform = uniform && ks[at++] == *f;
  }
  spec.uniform_k = uniform;
  return spec;
}

namespace {

// Operand pointers of one kernel call: on the stack for up to 32 operands.
class Pointers {
 public:
  explicit Pointers(int n) {
    if (n > static_cast<int>(std::size(small_))) big_.resize(n);
    p_ = big_.empty() ? small_ : big_.data();
  }
  char** get() { return p_; }

 private:
  char* small_[32];
  std::vector<char*> big_;
  char** p_;
};

// Runs fn over layout l with operand base pointers `base` (ABI order). The kernel loops over
// the rows of the dim before the inner one itself; tasks of about `grain` elements split the
// kept outer dims and kept rows (or the columns of one long kept row).
void run_layout(FusedFn fn, const Layout& l, const std::vector<char*>& base, int64_t grain) {
  const int nops = static_cast<int>(base.size());
  // grain counts points of work; a product's point is K multiply-adds.
  const int64_t kGrain = std::max<int64_t>(1, grain / l.work_per_point);
  const int64_t nd = static_cast<int64_t>(l.sizes.size());
  const int64_t* st = l.abi_strides.data();
  if (nd == 0) {
    fn(const_cast<char**>(base.data()), st, 1, 1);
    return;
  }
  const int64_t* inner_st = st;
  const int64_t* row_st = st + l.abi_strides.size() - nops;
  const int64_t inner = l.sizes.back();
  const bool inner_kept = !l.reduced.back();
  const int64_t rows = nd > 1 ? l.sizes[nd - 2] : 1;
  const bool rows_kept = nd < 2 || !l.reduced[nd - 2];
  const std::vector<int64_t>& kept = l.kept;
  const std::vector<int64_t>& red = l.red;
  const int64_t tasks = l.tasks, red_rows = l.red_rows;
  // Rows [r0, r1) of columns [lo, hi) of one task, for every reduced outer index in order (no
  // two tasks share an accumulator). Runs on any thread of the pool.
  auto run = [&](int64_t task, int64_t r0, int64_t r1, int64_t lo, int64_t hi) {
    Pointers at(nops);
    char** ptr = at.get();
    for (int k = 0; k < nops; ++k) ptr[k] = base[k] + r0 * row_st[k] + lo * inner_st[k];
    int64_t rem = task;
    for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
      const int64_t idx = rem % l.sizes[*it];
      rem /= l.sizes[*it];
      for (int k = 0; k < nops; ++k) ptr[k] += idx * l.strides[k][*it];
    }
    if (red.empty()) {
      fn(ptr, st, hi - lo, r1 - r0);
      return;
    }
    Pointers at_red(nops);
    char** p2 = at_red.get();
    for (int64_t r = 0; r < red_rows; ++r) {
      std::copy(ptr, ptr + nops, p2);
      int64_t rr = r;
      for (auto it = red.rbegin(); it != red.rend(); ++it) {
        const int64_t idx = rr % l.sizes[*it];
        rr /= l.sizes[*it];
        for (int k = 0; k < nops; ++k) p2[k] += idx * l.strides[k][*it];
      }
      fn(p2, st, hi - lo, r1 - r0);
    }
  };
  if (l.inner_block > 0 && inner_kept && inner > l.inner_block) {
    // Products: threads take blocks of columns (each reads its share of B), every row of a
    // block before the next block.
    const int64_t block = l.inner_block, nblocks = (inner + block - 1) / block;
    const int64_t per_block = block * tasks * red_rows * rows;
    parallel_for(0, nblocks, std::max<int64_t>(1, kGrain / per_block), [&](int64_t b0, int64_t b1) {
      for (int64_t bi = b0; bi < b1; ++bi)
        for (int64_t t = 0; t < tasks; ++t)
          run(t, 0, rows, bi * block, std::min(inner, (bi + 1) * block));
    });
    return;
  }
  // Units of work: a row of a task where rows are kept, all of a task's rows where they are
  // reduced (one call reduces them in order).
  const int64_t unit_rows = rows_kept ? rows : 1;
  const int64_t units = tasks * unit_rows;
  const int64_t unit_work = inner * red_rows * (rows_kept ? 1 : rows);
  if (units == 1 && inner_kept && unit_work > kGrain) {
    // One long kept row: split its columns into chunks.
    const int64_t chunk_grain = std::max<int64_t>(64, kGrain / (unit_work / inner));
    parallel_for(0, inner, chunk_grain, [&](int64_t lo, int64_t hi) { run(0, 0, rows, lo, hi); });
    return;
  }
  parallel_for(0, units, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, unit_work)),
               [&](int64_t u0, int64_t u1) {
                 for (int64_t u = u0; u < u1;) {
                   const int64_t t = u / unit_rows, r0 = u % unit_rows;
                   const int64_t r1 = std::min(unit_rows, r0 + (u1 - u));
                   if (rows_kept)
                     run(t, r0, r1, 0, inner);
                   else
                     run(t, 0, rows, 0, inner);
                   u += r1 - r0;
                 }
               });
}

}  // namespace

namespace {

// launch(), also handing the layout it ran over to `keep` when given.
std::vector<Tensor> launch_keeping(const FusedKernel& kernel, const LaunchArgs& args,
                                   Layout* keep) {
  const KernelProgram& p = kernel.spec().program;
  const Operands o = operands_of(p);
  Prepared pr = prepare(p, args, true);
  const int64_t numel = detail::prod_sizes(args.shape);
  if (numel > 0) run_layout(kernel.fn(), pr.layout, pr.base, args.grain);
  std::vector<Tensor> outs(p.outputs.size());
  for (int s = 0; s < o.n_store; ++s) outs[o.store_out[s]] = pr.stores[s];
  for (int r = 0; r < o.n_acc; ++r) {
    const auto& out = p.outputs[o.acc_out[r]];
    outs[o.acc_out[r]] = out.acc == out.dtype ? pr.accs[r] : pr.accs[r].to(out.dtype);
  }
  if (keep != nullptr) *keep = std::move(pr.layout);
  return outs;
}

}  // namespace

std::vector<Tensor> launch(const FusedKernel& kernel, const LaunchArgs& args) {
  return launch_keeping(kernel, args, nullptr);
}

namespace {

// True when the block inputs have the dims, sizes and strides recorded in key (or, with record,
// writes them there).
bool same_layouts(const std::vector<Tensor>& ins, std::vector<int64_t>& key, bool record) {
  if (record) key.clear();
  size_t at = 0;
  auto match = [&](int64_t v) {
    if (record) {
      key.push_back(v);
      return true;
    }
    return at < key.size() && key[at++] == v;
  };
  for (const Tensor& t : ins) {
    const IntArrayRef sizes = t.sizes(), strides = t.strides();
    if (!match(static_cast<int64_t>(sizes.size()))) return false;
    for (size_t d = 0; d < sizes.size(); ++d)
      if (!match(sizes[d]) || !match(strides[d])) return false;
  }
  return record || at == key.size();
}

}  // namespace

std::vector<Tensor> launch_group(const FusedKernel& kernel, const GroupLowering& g,
                                 const std::vector<Tensor>& block_inputs,
                                 const std::vector<Tensor>& outputs, int64_t grain,
                                 LaunchMemo& memo) {
  const KernelProgram& p = kernel.spec().program;
  const Operands o = operands_of(p);
  const int64_t numel = detail::prod_sizes(g.shape);
  const bool memoisable = o.n_acc == 0 && numel > 0;
  if (memoisable && memo.valid && same_layouts(block_inputs, memo.key, false)) {
    // The program's outputs (provided buffers or fresh contiguous tensors), then its inputs at
    // their block input's data plus the recorded offset.
    std::vector<Tensor> outs(p.outputs.size());
    std::vector<char*> base;
    base.reserve(o.total());
    for (int s = 0; s < o.n_store; ++s) {
      const size_t oi = static_cast<size_t>(o.store_out[s]);
      Tensor out = store_output(p, outputs, oi, g.shape);
      base.push_back(static_cast<char*>(out.data_ptr()));
      outs[oi] = std::move(out);
    }
    for (size_t i = 0; i < g.sources.size(); ++i)
      base.push_back(static_cast<char*>(block_inputs[g.sources[i].block_input].data_ptr()) +
                     memo.offsets[i]);
    run_layout(kernel.fn(), memo.layout, base, grain);
    return outs;
  }
  LaunchArgs la = launch_args(g, block_inputs);
  la.outputs = outputs;
  la.grain = grain;
  if (!memoisable) return launch(kernel, la);
  // Remember where each viewed input starts and the layout the launch ran over (the memo is
  // invalid until both are in).
  memo.valid = false;
  memo.offsets.clear();
  for (size_t i = 0; i < g.sources.size(); ++i)
    memo.offsets.push_back(
        static_cast<const char*>(la.inputs[i].data_ptr()) -
        static_cast<const char*>(block_inputs[g.sources[i].block_input].data_ptr()));
  std::vector<Tensor> outs = launch_keeping(kernel, la, &memo.layout);
  same_layouts(block_inputs, memo.key, true);
  memo.valid = true;
  return outs;
}

}  // namespace kiln::codegen::llvm
