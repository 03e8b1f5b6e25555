// Lowers an ElementwiseExpr to one loop kernel: a vector loop over contiguous operands with a
// masked tail, and a scalar strided loop otherwise. Each node is emitted by instantiating its
// ops::scalar functor with Val, through an X-macro over ops.def.
#include "codegen/llvm/elementwise_kernel.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "codegen/llvm/emit_ops.h"
#include "codegen/llvm/vector_math.h"
#include "kiln/core/thread_pool.h"
#include "kiln/functions.h"
#include "ops/scalar_ops.h"

namespace kiln::codegen::llvm {
namespace ll = ::llvm;
using Node = ElementwiseExpr::Node;

constexpr int kRegistersPerVector = 4;

// ---- the expression ------------------------------------------------------------------------
ElementwiseExpr::ElementwiseExpr(ScalarType dtype, int num_inputs)
    : dtype_(dtype), num_inputs_(num_inputs) {
  KILN_CHECK(dtype == kFloat || dtype == kDouble,
             "[codegen] elementwise kernels take float32 or float64: got {}", dtype_name(dtype));
  KILN_CHECK(num_inputs >= 1, "[codegen] an elementwise kernel needs an input: got {}", num_inputs);
  for (int i = 0; i < num_inputs; ++i) nodes_.push_back({Node::Kind::kInput, ops::OpKind::Neg, i});
  output_ = 0;
}

int ElementwiseExpr::input(int i) const {
  KILN_CHECK(i >= 0 && i < num_inputs_, "[codegen] input {} out of range: the kernel has {}", i,
             num_inputs_);
  return i;
}

int ElementwiseExpr::add(Node n) {
  auto valid = [&](int id) { return id >= 0 && id < static_cast<int>(nodes_.size()); };
  KILN_CHECK(n.kind == Node::Kind::kConstant || valid(n.a), "[codegen] bad operand node {}", n.a);
  KILN_CHECK(n.kind != Node::Kind::kBinary || valid(n.b), "[codegen] bad operand node {}", n.b);
  nodes_.push_back(n);
  return output_ = static_cast<int>(nodes_.size()) - 1;
}

int ElementwiseExpr::constant(double value) {
  return add({Node::Kind::kConstant, ops::OpKind::Neg, -1, -1, value});
}
int ElementwiseExpr::unary(ops::OpKind op, int a) {
  KILN_CHECK(ops::op_info(op).family == ops::OpFamily::Unary, "[codegen] {} is not a unary op",
             ops::op_info(op).name);
  return add({Node::Kind::kUnary, op, a});
}
int ElementwiseExpr::binary(ops::OpKind op, int a, int b) {
  KILN_CHECK(ops::op_info(op).family == ops::OpFamily::Binary, "[codegen] {} is not a binary op",
             ops::op_info(op).name);
  return add({Node::Kind::kBinary, op, a, b});
}

ScalarType ElementwiseExpr::output_dtype() const {
  const Node& n = nodes_[output_];
  bool is_bool = (n.kind == Node::Kind::kUnary || n.kind == Node::Kind::kBinary) &&
                 ops::op_info(n.op).dtype_rule == ops::DtypeRule::Bool;
  return is_bool ? kBool : dtype_;
}

// ---- emission ------------------------------------------------------------------------------
namespace {

// Computes the expression on loaded inputs (all of one type); the result is a value or a mask.
Val emit_expr(const ElementwiseExpr& expr, const std::vector<Val>& inputs) {
  std::vector<Val> v(expr.nodes().size());
  const Val& like = inputs[0];
  for (size_t i = 0; i < v.size(); ++i) {
    const Node& n = expr.nodes()[i];
    switch (n.kind) {
      case Node::Kind::kInput:
        v[i] = inputs[n.a];
        break;
      case Node::Kind::kConstant:
        v[i] = Val(n.value).like(like);
        break;
      case Node::Kind::kUnary:
        v[i] = emit_unary(n.op, numeric(v[n.a], like));
        break;
      case Node::Kind::kBinary:
        v[i] = emit_binary(n.op, numeric(v[n.a], like), numeric(v[n.b], like));
        break;
    }
  }
  return v[expr.output()];
}

// Stores a result: values as the element type, masks as bool bytes.
ll::Value* to_stored(ll::IRBuilderBase& b, const Val& r, ll::Type* store_type) {
  if (r.is_mask()) return b.CreateZExt(r.value(), store_type);
  return r.value();
}

}  // namespace

std::unique_ptr<ll::Module> emit_elementwise(ll::LLVMContext& ctx, const ElementwiseExpr& expr,
                                             const std::string& name, int lanes) {
  Jit& jit = Jit::get();
  const int es = static_cast<int>(element_size(expr.dtype()));
  // Four registers per logical vector: LLVM splits each <32 x float> op (AVX2) into four
  // adjacent independent ones, which hides the latency of long math chains (the 8-op chain
  // runs 1.7x faster than with one register; see docs/design.md).
  if (lanes == 0) lanes = kRegistersPerVector * jit.target().lanes(es);
  KILN_CHECK(lanes >= 1 && (lanes & (lanes - 1)) == 0,
             "[codegen] vector lanes must be a power of two: got {}", lanes);
  auto m = std::make_unique<ll::Module>(name, ctx);
  jit.prepare(*m);

  ll::IRBuilder<> b(ctx);
  ll::Type* i64 = b.getInt64Ty();
  ll::Type* ptr = b.getPtrTy();
  ll::Type* et = expr.dtype() == kFloat ? b.getFloatTy() : b.getDoubleTy();
  const bool bool_out = expr.output_dtype() == kBool;
  ll::Type* out_et = bool_out ? b.getInt8Ty() : et;
  const int out_es = bool_out ? 1 : es;
  const int nops = expr.num_inputs() + 1;

  auto* fty = ll::FunctionType::get(b.getVoidTy(), {ptr, ptr, i64}, false);
  auto* fn = ll::Function::Create(fty, ll::Function::ExternalLinkage, name, *m);
  fn->addFnAttr(ll::Attribute::NoUnwind);
  ll::Value* ptrs_arg = fn->getArg(0);
  ll::Value* strides_arg = fn->getArg(1);
  ll::Value* n = fn->getArg(2);

  auto* entry = ll::BasicBlock::Create(ctx, "entry", fn);
  auto* vec_ph = ll::BasicBlock::Create(ctx, "vec.ph", fn);
  auto* vec_body = ll::BasicBlock::Create(ctx, "vec.body", fn);
  auto* vec_tail_check = ll::BasicBlock::Create(ctx, "vec.tailcheck", fn);
  auto* vec_tail = ll::BasicBlock::Create(ctx, "vec.tail", fn);
  auto* str_ph = ll::BasicBlock::Create(ctx, "strided.ph", fn);
  auto* str_body = ll::BasicBlock::Create(ctx, "strided.body", fn);
  auto* exit = ll::BasicBlock::Create(ctx, "exit", fn);

  b.SetInsertPoint(entry);
  std::vector<ll::Value*> base(nops), stride(nops);
  ll::Value* contiguous = b.getTrue();
  for (int i = 0; i < nops; ++i) {
    base[i] = b.CreateLoad(ptr, b.CreateConstGEP1_64(ptr, ptrs_arg, i));
    stride[i] = b.CreateLoad(i64, b.CreateConstGEP1_64(i64, strides_arg, i));
    contiguous =
        b.CreateAnd(contiguous, b.CreateICmpEQ(stride[i], b.getInt64(i == 0 ? out_es : es)));
  }
  b.CreateCondBr(contiguous, vec_ph, str_ph);

  // Vector loop over whole vectors, then one masked vector for the rest.
  b.SetInsertPoint(vec_ph);
  ll::Value* nvec = b.CreateAnd(n, b.getInt64(~int64_t(lanes - 1)), "nvec");
  b.CreateCondBr(b.CreateICmpSGT(nvec, b.getInt64(0)), vec_body, vec_tail_check);

  ll::Type* vt = lanes == 1 ? et : static_cast<ll::Type*>(ll::FixedVectorType::get(et, lanes));
  ll::Type* out_vt =
      lanes == 1 ? out_et : static_cast<ll::Type*>(ll::FixedVectorType::get(out_et, lanes));
  const ll::Align ea(es), oa(out_es);

  b.SetInsertPoint(vec_body);
  ll::PHINode* i = b.CreatePHI(i64, 2, "i");
  i->addIncoming(b.getInt64(0), vec_ph);
  {
    std::vector<Val> in;
    for (int k = 1; k < nops; ++k)
      in.emplace_back(b.CreateAlignedLoad(vt, b.CreateGEP(et, base[k], i), ea), b);
    Val r = emit_expr(expr, in);
    b.CreateAlignedStore(to_stored(b, r, out_vt), b.CreateGEP(out_et, base[0], i), oa);
  }
  ll::Value* inext = b.CreateAdd(i, b.getInt64(lanes), "i.next", true, true);
  i->addIncoming(inext, b.GetInsertBlock());  // the body may have grown cold blocks
  b.CreateCondBr(b.CreateICmpSLT(inext, nvec), vec_body, vec_tail_check);

  b.SetInsertPoint(vec_tail_check);
  ll::Value* rem = b.CreateSub(n, nvec, "rem");
  b.CreateCondBr(b.CreateICmpSGT(rem, b.getInt64(0)), vec_tail, exit);

  b.SetInsertPoint(vec_tail);
  {
    ll::Value* mask;
    if (lanes == 1) {
      mask = nullptr;  // rem is 0 with one lane; the block is unreachable but must be valid
    } else {
      std::vector<uint64_t> lane_ids(lanes);
      for (int l = 0; l < lanes; ++l) lane_ids[l] = static_cast<uint64_t>(l);
      ll::Value* iota = ll::ConstantDataVector::get(ctx, ll::ArrayRef<uint64_t>(lane_ids));
      mask = b.CreateICmpSLT(iota, b.CreateVectorSplat(lanes, rem));
    }
    std::vector<Val> in;
    for (int k = 1; k < nops; ++k) {
      ll::Value* p = b.CreateGEP(et, base[k], nvec);
      ll::Value* v = mask ? static_cast<ll::Value*>(
                                b.CreateMaskedLoad(vt, p, ea, mask, ll::Constant::getNullValue(vt)))
                          : b.CreateAlignedLoad(vt, p, ea);
      in.emplace_back(v, b);
    }
    Val r = emit_expr(expr, in);
    ll::Value* p = b.CreateGEP(out_et, base[0], nvec);
    if (mask)
      b.CreateMaskedStore(to_stored(b, r, out_vt), p, oa, mask);
    else
      b.CreateAlignedStore(to_stored(b, r, out_vt), p, oa);
    b.CreateBr(exit);
  }

  // Strided loop: one element at a time through byte strides (broadcast operands have 0).
  b.SetInsertPoint(str_ph);
  b.CreateCondBr(b.CreateICmpSGT(n, b.getInt64(0)), str_body, exit);
  b.SetInsertPoint(str_body);
  ll::PHINode* j = b.CreatePHI(i64, 2, "j");
  j->addIncoming(b.getInt64(0), str_ph);
  {
    std::vector<Val> in;
    for (int k = 1; k < nops; ++k) {
      ll::Value* p = b.CreateGEP(b.getInt8Ty(), base[k], b.CreateMul(j, stride[k]));
      in.emplace_back(b.CreateAlignedLoad(et, p, ea), b);
    }
    Val r = emit_expr(expr, in);
    ll::Value* p = b.CreateGEP(b.getInt8Ty(), base[0], b.CreateMul(j, stride[0]));
    b.CreateAlignedStore(to_stored(b, r, out_et), p, oa);
  }
  ll::Value* jnext = b.CreateAdd(j, b.getInt64(1), "j.next", true, true);
  j->addIncoming(jnext, b.GetInsertBlock());
  b.CreateCondBr(b.CreateICmpSLT(jnext, n), str_body, exit);

  b.SetInsertPoint(exit);
  b.CreateRetVoid();
  jit.prepare(*m);  // attributes for the function just created
  return m;
}

// ---- compiled kernels ----------------------------------------------------------------------
ElementwiseKernel::ElementwiseKernel(const ElementwiseExpr& expr, ObjectCode object)
    : expr_(expr), object_(std::move(object)) {
  library_ = Jit::get().load(object_);
  fn_ = library_->lookup<ElementwiseFn>(kSymbol);
}

ElementwiseKernel ElementwiseKernel::compile(const ElementwiseExpr& expr,
                                             const CompileOptions& options, int lanes) {
  ll::LLVMContext ctx;
  auto m = emit_elementwise(ctx, expr, kSymbol, lanes);
  return ElementwiseKernel(expr, Jit::get().compile(*m, options));
}

ElementwiseKernel ElementwiseKernel::load(const ElementwiseExpr& expr, const ObjectCode& object) {
  return ElementwiseKernel(expr, object);
}

Tensor ElementwiseKernel::operator()(const std::vector<Tensor>& inputs) const {
  KILN_CHECK(static_cast<int>(inputs.size()) == expr_.num_inputs(),
             "[codegen] kernel takes {} inputs: got {}", expr_.num_inputs(), inputs.size());
  for (const Tensor& t : inputs) {
    KILN_CHECK(t.dtype() == expr_.dtype() && t.sizes() == inputs[0].sizes(),
               "[codegen] kernel inputs must be {} of sizes {}: got {} {}",
               dtype_name(expr_.dtype()), inputs[0].sizes(), dtype_name(t.dtype()), t.sizes());
  }
  Tensor out = empty(inputs[0].sizes(), TensorOptions(expr_.output_dtype()));
  const int64_t numel = out.numel();
  if (numel == 0) return out;
  const int nops = expr_.num_inputs() + 1;
  const int64_t es = static_cast<int64_t>(element_size(expr_.dtype()));
  const int64_t oes = out.element_size();
  std::vector<char*> base(nops);
  base[0] = static_cast<char*>(out.data_ptr());
  bool contiguous = true;
  for (int k = 1; k < nops; ++k) {
    base[k] = static_cast<char*>(inputs[k - 1].data_ptr());
    contiguous = contiguous && inputs[k - 1].is_contiguous();
  }
  constexpr int64_t kGrain = 32768;
  if (contiguous) {
    parallel_for(0, numel, kGrain, [&](int64_t begin, int64_t end) {
      std::vector<char*> p(nops);
      std::vector<int64_t> s(nops, es);
      s[0] = oes;
      for (int k = 0; k < nops; ++k) p[k] = base[k] + begin * s[k];
      fn_(p.data(), s.data(), end - begin);
    });
    return out;
  }
  // Rows of the last dim, each one kernel call with that dim's byte strides.
  const int64_t ndim = out.dim();
  const int64_t inner = ndim == 0 ? 1 : out.size(ndim - 1);
  const int64_t rows = numel / inner;
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t begin, int64_t end) {
    std::vector<char*> p(nops);
    std::vector<int64_t> s(nops);
    s[0] = oes;
    for (int k = 1; k < nops; ++k) s[k] = ndim == 0 ? es : inputs[k - 1].stride(ndim - 1) * es;
    for (int64_t r = begin; r < end; ++r) {
      p[0] = base[0] + r * inner * oes;
      for (int k = 1; k < nops; ++k) {
        int64_t off = 0, rem = r;
        for (int64_t d = ndim - 2; d >= 0; --d) {
          off += (rem % out.size(d)) * inputs[k - 1].stride(d);
          rem /= out.size(d);
        }
        p[k] = base[k] + off * es;
      }
      fn_(p.data(), s.data(), inner);
    }
  });
  return out;
}

}  // namespace kiln::codegen::llvm
