// ctest-label: codegen
// The CPU JIT runtime and the elementwise kernel smoke path: host detection, compile/lookup,
// object emit + reload (also in a fresh process), LLVM error conversion, IR/asm printing, and
// JIT kernels against the eager kernels for every elementwise op of the table, at sizes below,
// at and above the vector width and in non-contiguous layouts.
#include <gtest/gtest.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "codegen/llvm/elementwise_kernel.h"
#include "codegen/llvm/jit.h"
#include "kiln/ops/call.h"
#include "test_util.h"

extern char** environ;

namespace {

using kiln::Tensor;
using kiln::codegen::llvm::CompileOptions;
using kiln::codegen::llvm::ElementwiseExpr;
using kiln::codegen::llvm::ElementwiseKernel;
using kiln::codegen::llvm::Jit;
using kiln::codegen::llvm::ObjectCode;
using kiln::ops::OpKind;
namespace ll = ::llvm;

// A module with `double <name>(double x) { return x * k; }`.
std::unique_ptr<ll::Module> scale_module(ll::LLVMContext& ctx, const char* name, double k) {
  auto m = std::make_unique<ll::Module>("scale", ctx);
  ll::IRBuilder<> b(ctx);
  auto* f = ll::Function::Create(ll::FunctionType::get(b.getDoubleTy(), {b.getDoubleTy()}, false),
                                 ll::Function::ExternalLinkage, name, *m);
  b.SetInsertPoint(ll::BasicBlock::Create(ctx, "entry", f));
  b.CreateRet(b.CreateFMul(f->getArg(0), ll::ConstantFP::get(b.getDoubleTy(), k)));
  return m;
}

// The 8-op chain of the benchmark: x*2, +1, relu, *x, sigmoid, -0.5, tanh, +x.
ElementwiseExpr chain8(kiln::ScalarType dtype) {
  ElementwiseExpr e(dtype, 1);
  int x = e.input(0);
  int v = e.binary(OpKind::Mul, x, e.constant(2));
  v = e.binary(OpKind::Add, v, e.constant(1));
  v = e.unary(OpKind::Relu, v);
  v = e.binary(OpKind::Mul, v, x);
  v = e.unary(OpKind::Sigmoid, v);
  v = e.binary(OpKind::Sub, v, e.constant(0.5));
  v = e.unary(OpKind::Tanh, v);
  e.set_output(e.binary(OpKind::Add, v, x));
  return e;
}

Tensor chain8_eager(const Tensor& x) {
  Tensor v = kiln::relu(x * 2 + 1) * x;
  return kiln::tanh(kiln::sigmoid(v) - 0.5) + x;
}

// ulp distance between float results (NaN == NaN; infinities must be equal).
template <class T>
double ulps(T a, T b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : INFINITY;
  if (a == b) return 0;
  if (std::isinf(a) || std::isinf(b)) return INFINITY;
  int e = std::max(std::ilogb(std::max(std::fabs(a), std::fabs(b))),
                   std::numeric_limits<T>::min_exponent - 1);
  return std::fabs(double(a) - double(b)) / std::ldexp(1.0, e - std::numeric_limits<T>::digits + 1);
}

// JIT result vs eager result: within max_ulp, or (for results that cancel to near 0) within
// atol of each other.
::testing::AssertionResult near_eager(const Tensor& got, const Tensor& want, double max_ulp,
                                      double atol) {
  if (got.dtype() != want.dtype() || !got.sizes().equals(want.sizes()))
    return ::testing::AssertionFailure() << "dtype/sizes differ";
  Tensor g = got.contiguous(), w = want.contiguous();
  for (int64_t i = 0; i < g.numel(); ++i) {
    double d, a, b;
    if (g.dtype() == kiln::kFloat) {
      float x = g.data_ptr<float>()[i], y = w.data_ptr<float>()[i];
      d = ulps(x, y), a = x, b = y;
    } else if (g.dtype() == kiln::kDouble) {
      double x = g.data_ptr<double>()[i], y = w.data_ptr<double>()[i];
      d = ulps(x, y), a = x, b = y;
    } else {
      a = g.data_ptr<bool>()[i], b = w.data_ptr<bool>()[i];
      d = a == b ? 0 : INFINITY;
    }
    if (d > max_ulp && !(std::fabs(a - b) <= atol))
      return ::testing::AssertionFailure()
             << "element " << i << " of " << g.numel() << ": got " << a << ", eager " << b << " ("
             << d << " ulp, max " << max_ulp << ")";
  }
  return ::testing::AssertionSuccess();
}

// Random values with a few special ones mixed in.
Tensor test_input(kiln::IntArrayRef sizes, kiln::ScalarType dtype, double lo, double hi) {
  Tensor t = kiln::testing::random_tensor(sizes, kiln::kDouble, lo, hi);
  double* p = t.data_ptr<double>();
  const double specials[] = {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.5};
  for (int64_t i = 0; i < t.numel(); i += 7) p[i] = specials[(i / 7) % 8];
  return t.to(dtype);
}

// Sizes below, at and above one register (8/16 floats with AVX2/AVX-512) and the kernels'
// logical vector (4 registers: 32/64 floats), and one that the thread pool splits.
const int64_t kSizes[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 200003};

// ---- the runtime ---------------------------------------------------------------------------
TEST(Jit, HostTargetMatchesCpu) {
  const auto& t = Jit::get().target();
  EXPECT_FALSE(t.triple.empty());
  EXPECT_FALSE(t.cpu.empty());
#if defined(__x86_64__)
  EXPECT_NE(t.triple.find("x86_64"), std::string::npos);
  __builtin_cpu_init();
  int want = __builtin_cpu_supports("avx512f") ? 512 : __builtin_cpu_supports("avx") ? 256 : 128;
  EXPECT_EQ(t.vector_bits, want) << t.features;
  EXPECT_EQ(t.has_fma, bool(__builtin_cpu_supports("fma")));
#endif
  EXPECT_EQ(t.lanes(4), t.vector_bits / 32);
  EXPECT_NE(t.key().find(t.cpu), std::string::npos);
}

// Kernels realign their stack to the vector register, so that spilled registers never straddle
// a cache line or a page (what the caller's stack depth decided before).
TEST(Jit, PrepareAlignsTheStackForVectorSpills) {
  ll::LLVMContext ctx;
  auto m = scale_module(ctx, "f", 2.0);
  Jit::get().prepare(*m);
  auto align = m->getFunction("f")->getFnStackAlign();
  ASSERT_TRUE(align.has_value());
  EXPECT_EQ(align->value(), static_cast<uint64_t>(Jit::get().target().vector_bits / 8));
  ObjectCode obj = Jit::get().compile(*m);
  EXPECT_FALSE(obj.bytes.empty());
}

// A module with `void <name>(float* x, i64 n) { for (i < n) x[i] = x[i] * 3 + 1; }`: a scalar
// loop the loop vectoriser widens.
std::unique_ptr<ll::Module> scalar_loop_module(ll::LLVMContext& ctx) {
  auto m = std::make_unique<ll::Module>("loop", ctx);
  ll::IRBuilder<> b(ctx);
  auto* f = ll::Function::Create(
      ll::FunctionType::get(b.getVoidTy(), {b.getPtrTy(), b.getInt64Ty()}, false),
      ll::Function::ExternalLinkage, "axpb", *m);
  auto* entry = ll::BasicBlock::Create(ctx, "entry", f);
  auto* body = ll::BasicBlock::Create(ctx, "body", f);
  auto* done = ll::BasicBlock::Create(ctx, "done", f);
  b.SetInsertPoint(entry);
  b.CreateCondBr(b.CreateICmpSGT(f->getArg(1), b.getInt64(0)), body, done);
  b.SetInsertPoint(body);
  ll::PHINode* i = b.CreatePHI(b.getInt64Ty(), 2, "i");
  i->addIncoming(b.getInt64(0), entry);
  ll::Value* at = b.CreateGEP(b.getFloatTy(), f->getArg(0), i);
  ll::Value* x = b.CreateLoad(b.getFloatTy(), at);
  b.CreateStore(b.CreateFAdd(b.CreateFMul(x, ll::ConstantFP::get(b.getFloatTy(), 3.0)),
                             ll::ConstantFP::get(b.getFloatTy(), 1.0)),
                at);
  ll::Value* next = b.CreateAdd(i, b.getInt64(1));
  i->addIncoming(next, body);
  b.CreateCondBr(b.CreateICmpSLT(next, f->getArg(1)), body, done);
  b.SetInsertPoint(done);
  b.CreateRetVoid();
  return m;
}

// A module marked as vector code gets the short pipeline: its scalar loops stay scalar (no
// loop vectoriser), while the same module unmarked is vectorised at O3; both compute the same.
TEST(Jit, VectorCodeModulesSkipTheVectorisers) {
  namespace kl = kiln::codegen::llvm;
  for (bool marked : {false, true}) {
    ll::LLVMContext ctx;
    auto m = scalar_loop_module(ctx);
    if (marked) kl::mark_vector_code(*m);
    EXPECT_EQ(kl::is_vector_code(*m), marked);
    auto copy = scalar_loop_module(ctx);
    if (marked) kl::mark_vector_code(*copy);
    Jit::get().prepare(*copy);
    Jit::get().optimize(*copy, 3);
    const std::string ir = kl::print_ir(*copy);
    EXPECT_EQ(ir.find(" x float>") != std::string::npos, !marked) << ir;
    auto lib = Jit::get().add(*m);
    auto fn = lib->lookup<void (*)(float*, int64_t)>("axpb");
    std::vector<float> v(1003);
    for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k) * 0.25f;
    fn(v.data(), static_cast<int64_t>(v.size()));
    for (size_t k = 0; k < v.size(); ++k)
      ASSERT_EQ(v[k], static_cast<float>(k) * 0.25f * 3.0f + 1.0f) << k;
  }
}

// KILN_PERF_MAP=1: each function of a loaded library is listed in /tmp/perf-<pid>.map (address,
// size, library:name), which perf reads to name JIT code; unset, nothing is written.
TEST(Jit, PerfMapNamesLoadedFunctions) {
  const std::string path = "/tmp/perf-" + std::to_string(::getpid()) + ".map";
  std::filesystem::remove(path);
  ll::LLVMContext ctx;
  auto m1 = scalar_loop_module(ctx);
  auto quiet = Jit::get().add(*m1);
  ASSERT_NE(quiet->lookup("axpb"), nullptr);
  EXPECT_FALSE(std::filesystem::exists(path));
  ::setenv("KILN_PERF_MAP", "1", 1);
  auto m2 = scalar_loop_module(ctx);
  auto lib = Jit::get().add(*m2);
  void* addr = lib->lookup("axpb");
  ::unsetenv("KILN_PERF_MAP");
  std::ifstream in(path);
  std::string line, found;
  while (std::getline(in, line))
    if (line.find(":axpb") != std::string::npos) found = line;
  std::filesystem::remove(path);
  ASSERT_FALSE(found.empty());
  std::istringstream fields(found);
  std::string a, size, name;
  fields >> std::hex;
  fields >> a >> size >> name;
  EXPECT_EQ(std::stoull(a, nullptr, 16), reinterpret_cast<uintptr_t>(addr)) << found;
  EXPECT_GT(std::stoull(size, nullptr, 16), 16u) << found;
  EXPECT_EQ(name.substr(0, 13), "kiln_kernels_") << found;
}

TEST(Jit, CompileAndCall) {
  ll::LLVMContext ctx;
  auto lib = Jit::get().add(*scale_module(ctx, "triple", 3.0));
  auto f = lib->lookup<double (*)(double)>("triple");
  EXPECT_EQ(f(2.5), 7.5);
}

TEST(Jit, ObjectRoundTripAndIndependentLibraries) {
  ll::LLVMContext ctx;
  ObjectCode obj = Jit::get().compile(*scale_module(ctx, "scale", 4.0));
  ASSERT_GE(obj.bytes.size(), 4u);
  EXPECT_EQ(obj.bytes.substr(0, 4),
            "\x7f"
            "ELF");
  EXPECT_EQ(obj.target, Jit::get().target().key());
  // Loaded twice: two libraries with the same symbol name, unloaded independently.
  auto a = Jit::get().load(obj);
  auto b = Jit::get().load(std::string_view(obj.bytes));
  auto fa = a->lookup<double (*)(double)>("scale");
  auto fb = b->lookup<double (*)(double)>("scale");
  EXPECT_NE(reinterpret_cast<void*>(fa), reinterpret_cast<void*>(fb));
  a.reset();
  EXPECT_EQ(fb(1.5), 6.0);
  ll::LLVMContext ctx2;
  ObjectCode obj2 = Jit::get().compile(*scale_module(ctx2, "scale", 5.0));
  EXPECT_EQ(Jit::get().load(obj2)->lookup<double (*)(double)>("scale")(2.0), 10.0);
  EXPECT_EQ(fb(2.0), 8.0);
}

// The disk-cache property: a second process loads the object and runs it without compiling.
TEST(Jit, ObjectLoadsInAFreshProcessWithoutCompiling) {
  if (const char* path = std::getenv("KILN_TEST_OBJECT_FILE")) {  // the child's side
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    ObjectCode obj{ss.str(), Jit::get().target().key(), ""};
    ElementwiseKernel k = ElementwiseKernel::load(chain8(kiln::kFloat), obj);
    Tensor x = test_input({1000}, kiln::kFloat, -3, 3);
    EXPECT_TRUE(near_eager(k({x}), chain8_eager(x), 4, 1e-6));
    EXPECT_EQ(Jit::get().compile_count(), 0);
    return;
  }
  ElementwiseKernel k = ElementwiseKernel::compile(chain8(kiln::kFloat));
  std::string path = ::testing::TempDir() + "kiln_chain8_" + std::to_string(getpid()) + ".o";
  std::ofstream(path, std::ios::binary) << k.object().bytes;
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=Jit.ObjectLoadsInAFreshProcessWithoutCompiling";
  std::string env_var = "KILN_TEST_OBJECT_FILE=" + path;
  std::vector<char*> argv = {self.data(), filter.data(), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  envp.push_back(env_var.data());
  envp.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  std::remove(path.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST(Jit, LlvmErrorsBecomeKilnErrors) {
  ll::LLVMContext ctx;
  // A block without a terminator: the verifier's text comes through.
  auto m = std::make_unique<ll::Module>("broken", ctx);
  ll::IRBuilder<> b(ctx);
  auto* f = ll::Function::Create(ll::FunctionType::get(b.getVoidTy(), false),
                                 ll::Function::ExternalLinkage, "broken", *m);
  ll::BasicBlock::Create(ctx, "entry", f);
  EXPECT_KILN_ERROR(Jit::get().compile(*m), {"[codegen] invalid LLVM IR", "broken", "terminator"});
  // Bytes that are no object file.
  EXPECT_KILN_ERROR(Jit::get().load(std::string_view("not an object file")), {"load object"});
  // An object for another target key.
  ll::LLVMContext ctx2;
  ObjectCode obj = Jit::get().compile(*scale_module(ctx2, "s", 1.0));
  obj.target = "riscv64-unknown-linux-gnu|generic|";
  EXPECT_KILN_ERROR(Jit::get().load(obj), {"another target", "riscv64"});
  // A missing symbol names itself.
  obj.target = Jit::get().target().key();
  auto lib = Jit::get().load(obj);
  EXPECT_KILN_ERROR(lib->lookup("no_such_kernel"), {"no_such_kernel", "not found"});
  // An undefined external is reported by LLVM at lookup, with the symbol's name.
  ll::LLVMContext ctx3;
  auto m3 = std::make_unique<ll::Module>("ext", ctx3);
  ll::IRBuilder<> b3(ctx3);
  auto* callee = ll::Function::Create(ll::FunctionType::get(b3.getVoidTy(), false),
                                      ll::Function::ExternalLinkage, "kiln_missing_fn_xyz", *m3);
  auto* g = ll::Function::Create(ll::FunctionType::get(b3.getVoidTy(), false),
                                 ll::Function::ExternalLinkage, "calls_missing", *m3);
  b3.SetInsertPoint(ll::BasicBlock::Create(ctx3, "entry", g));
  b3.CreateCall(callee);
  b3.CreateRetVoid();
  auto lib3 = Jit::get().add(*m3);
  EXPECT_KILN_ERROR(lib3->lookup("calls_missing"), {"kiln_missing_fn_xyz"});
}

TEST(Jit, PrintsIrAndAssembly) {
  ll::LLVMContext ctx;
  auto m = kiln::codegen::llvm::emit_elementwise(ctx, chain8(kiln::kFloat), "chain8");
  std::string ir = kiln::codegen::llvm::print_ir(*m);
  EXPECT_NE(ir.find("define void @chain8(ptr"), std::string::npos);
  EXPECT_NE(ir.find("vec.body"), std::string::npos);
  CompileOptions o;
  o.emit_asm = true;
  ObjectCode obj = Jit::get().compile(*m, o);
  EXPECT_NE(obj.assembly.find("chain8:"), std::string::npos);
  // The vector width follows the target: zmm registers with AVX-512, ymm with AVX.
  const int bits = Jit::get().target().vector_bits;
  if (bits == 512) {
    EXPECT_NE(obj.assembly.find("zmm"), std::string::npos);
  } else if (bits == 256) {
    EXPECT_NE(obj.assembly.find("ymm"), std::string::npos);
  }
  // Straight-line vector math: no libm call in the kernel.
  EXPECT_EQ(obj.assembly.find("expf"), std::string::npos);
  EXPECT_EQ(obj.assembly.find("tanhf"), std::string::npos);
}

TEST(Jit, ConcurrentCompilesFromThreads) {
  std::vector<std::thread> threads;
  std::vector<double> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &results] {
      ll::LLVMContext ctx;
      auto lib = Jit::get().add(*scale_module(ctx, "f", t + 1.0));
      results[t] = lib->lookup<double (*)(double)>("f")(10.0);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(results[t], 10.0 * (t + 1));
}

// ---- kernels vs eager ----------------------------------------------------------------------
TEST(ElementwiseKernel, Chain8MatchesEagerAtEverySizeAndLayout) {
  for (auto dtype : {kiln::kFloat, kiln::kDouble}) {
    ElementwiseKernel k = ElementwiseKernel::compile(chain8(dtype));
    for (int64_t n : kSizes) {
      SCOPED_TRACE(::testing::Message() << kiln::dtype_name(dtype) << " n=" << n);
      Tensor x = test_input({n}, dtype, -4, 4);
      EXPECT_TRUE(near_eager(k({x}), chain8_eager(x), 4, 1e-6));
    }
    // non-contiguous: a transposed matrix, a stepped slice, a 3-d permutation
    Tensor m = test_input({37, 19}, dtype, -4, 4);
    EXPECT_TRUE(near_eager(k({m.t()}), chain8_eager(m.t()), 4, 1e-6));
    Tensor s = kiln::testing::non_contiguous(test_input({5, 33}, dtype, -4, 4));
    EXPECT_TRUE(near_eager(k({s}), chain8_eager(s), 4, 1e-6));
    Tensor p = test_input({3, 4, 5}, dtype, -4, 4).permute({2, 0, 1});
    EXPECT_TRUE(near_eager(k({p}), chain8_eager(p), 4, 1e-6));
    Tensor z = test_input({}, dtype, -4, 4);  // 0-dim
    EXPECT_TRUE(near_eager(k({z}), chain8_eager(z), 4, 1e-6));
    EXPECT_EQ(k({kiln::empty({0, 3}, kiln::TensorOptions(dtype))}).numel(), 0);
  }
}

TEST(ElementwiseKernel, ThreadSplitGivesTheSameBits) {
  ElementwiseKernel k = ElementwiseKernel::compile(chain8(kiln::kFloat));
  Tensor x = test_input({300001}, kiln::kFloat, -4, 4);
  int saved = kiln::get_num_threads();
  kiln::set_num_threads(1);
  Tensor one = k({x});
  kiln::set_num_threads(4);
  Tensor four = k({x});
  kiln::set_num_threads(saved);
  const float* a = one.data_ptr<float>();
  const float* b = four.data_ptr<float>();
  const float* in = x.data_ptr<float>();
  for (int64_t i = 0; i < 300001; ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;  // NaN payloads may differ
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i]))
        << "index " << i << " x=" << in[i] << ": " << a[i] << " vs " << b[i];
  }
}

// Domain of random inputs per op (the special values are mixed in everywhere).
std::pair<double, double> domain(OpKind op) {
  switch (op) {
    case OpKind::Exp:
    case OpKind::Exp2:
    case OpKind::Expm1:
      return {-20, 20};
    case OpKind::Pow:
      return {0, 4};
    default:
      return {-6, 6};
  }
}

// Every unary and binary op of the table, vector and scalar kernels, against eager.
TEST(ElementwiseKernel, EveryElementwiseOpMatchesEager) {
  int tested = 0;
  for (int i = 0; i < kiln::ops::num_ops(); ++i) {
    const auto& info = kiln::ops::op_info(static_cast<OpKind>(i));
    if (info.family != kiln::ops::OpFamily::Unary && info.family != kiln::ops::OpFamily::Binary)
      continue;
    const bool binary = info.family == kiln::ops::OpFamily::Binary;
    for (auto dtype : {kiln::kFloat, kiln::kDouble}) {
      for (int lanes : {0, 1}) {
        SCOPED_TRACE(::testing::Message() << info.name << " " << kiln::dtype_name(dtype)
                                          << (lanes ? " scalar" : " vector"));
        ElementwiseExpr e(dtype, binary ? 2 : 1);
        if (binary)
          e.binary(info.kind, e.input(0), e.input(1));
        else
          e.unary(info.kind, e.input(0));
        ElementwiseKernel k = ElementwiseKernel::compile(e, {}, lanes);
        auto [lo, hi] = domain(info.kind);
        for (int64_t n : {int64_t(17), int64_t(100), int64_t(1000)}) {
          Tensor a = test_input({n}, dtype, lo, hi);
          Tensor b = test_input({n}, dtype, lo, hi) * -1;
          std::vector<kiln::IValue> args = {a};
          if (binary) args.push_back(b);
          Tensor want = kiln::ops::call(info.kind, args)[0].toTensor();
          Tensor got = binary ? k({a, b}) : k({a});
          // libm (eager) and the vector library each err by <= ~2.5 ulp
          EXPECT_TRUE(near_eager(got, want, 5, dtype == kiln::kFloat ? 1e-6 : 1e-14));
          // non-contiguous inputs take the strided loop
          Tensor an = kiln::testing::non_contiguous(a);
          Tensor bn = kiln::testing::non_contiguous(b);
          EXPECT_TRUE(near_eager(binary ? k({an, bn}) : k({an}), want, 5,
                                 dtype == kiln::kFloat ? 1e-6 : 1e-14));
        }
        ++tested;
      }
    }
  }
  EXPECT_GE(tested, 4 * 40);  // every unary + binary row of ops.def
}

TEST(ElementwiseKernel, RejectsBadInput) {
  EXPECT_KILN_ERROR(ElementwiseExpr(kiln::kInt, 1), {"[codegen]", "float32 or float64"});
  ElementwiseExpr e(kiln::kFloat, 1);
  EXPECT_KILN_ERROR(e.unary(OpKind::Add, 0), {"add is not a unary op"});
  EXPECT_KILN_ERROR(e.binary(OpKind::Mul, 0, 7), {"bad operand node 7"});
  ElementwiseKernel k = ElementwiseKernel::compile(e);
  EXPECT_KILN_ERROR(k({kiln::zeros({3}, kiln::TensorOptions(kiln::kDouble))}), {"float32"});
}

}  // namespace
