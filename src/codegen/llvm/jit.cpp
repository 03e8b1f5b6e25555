// The ORC LLJIT wrapper: host detection, new-PM optimisation, object emission and object loading.
// Every kernel, fresh or from a cache, enters the process through load(object bytes), so the
// disk-cache path is the path every test already runs.
#include "codegen/llvm/jit.h"

#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Transforms/Utils/Cloning.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace kiln::codegen::llvm {
namespace ll = ::llvm;

namespace {

// The JITTargetMachineBuilder detected once; copied per compile so that each compile owns its
// TargetMachine (a TargetMachine is not safe to share between concurrent codegen runs).
const ll::orc::JITTargetMachineBuilder& host_builder() {
  static const ll::orc::JITTargetMachineBuilder builder = [] {
    ll::InitializeNativeTarget();
    ll::InitializeNativeTargetAsmPrinter();
    ll::InitializeNativeTargetAsmParser();
    auto b = check_llvm(ll::orc::JITTargetMachineBuilder::detectHost(), "jit: detect host");
    // PIC + small code model: objects must link anywhere in the address space, and a cached
    // object is relocated again by every process that loads it.
    b.setRelocationModel(ll::Reloc::PIC_);
    b.setCodeModel(ll::CodeModel::Small);
    b.setCodeGenOptLevel(ll::CodeGenOptLevel::Aggressive);
    return b;
  }();
  return builder;
}

// KILN_PERF_MAP=1: every function of every library loaded is appended to /tmp/perf-<pid>.map
// (the format `perf report` reads for JIT code), named <library>:<symbol>.
bool perf_map_enabled() {
  const char* e = std::getenv("KILN_PERF_MAP");  // read per load: loads are rare
  return e != nullptr && *e != '\0' && std::string_view(e) != "0";
}

void perf_map_add(const void* addr, uint64_t size, const std::string& name) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const std::string path = fmt::format("/tmp/perf-{}.map", ::getpid());
  if (std::FILE* f = std::fopen(path.c_str(), "a")) {
    std::fprintf(f, "%lx %lx %s\n", reinterpret_cast<unsigned long>(addr),
                 static_cast<unsigned long>(size), name.c_str());
    std::fclose(f);
  }
}

std::string& last_session_error() {
  thread_local std::string last;
  return last;
}

ll::CodeGenOptLevel codegen_level(int opt_level) {
  switch (opt_level) {
    case 0:
      return ll::CodeGenOptLevel::None;
    case 1:
      return ll::CodeGenOptLevel::Less;
    case 2:
      return ll::CodeGenOptLevel::Default;
    default:
      return ll::CodeGenOptLevel::Aggressive;
  }
}

std::string emit(ll::TargetMachine& tm, ll::Module& m, ll::CodeGenFileType type) {
  ll::SmallVector<char, 0> buf;
  ll::raw_svector_ostream os(buf);
  ll::legacy::PassManager pm;
  KILN_CHECK(!tm.addPassesToEmitFile(pm, os, nullptr, type),
             "[codegen] the LLVM target {} cannot emit {} files", tm.getTargetTriple().str(),
             type == ll::CodeGenFileType::ObjectFile ? "object" : "assembly");
  pm.run(m);
  return std::string(buf.data(), buf.size());
}

}  // namespace

void check_llvm(ll::Error err, std::string_view what) {
  if (!err) return;
  std::string msg = ll::toString(std::move(err));
  KILN_FAIL("[{}] {}", what, msg);
}

std::string HostTarget::key() const { return fmt::format("{}|{}|{}", triple, cpu, features); }

Jit& Jit::get() {
  static Jit* instance = new Jit();  // never destroyed: see the header
  return *instance;
}

Jit::Jit() {
  const auto& b = host_builder();
  target_.triple = b.getTargetTriple().str();
  target_.cpu = b.getCPU();
  target_.features = b.getFeatures().getString();
  ll::SmallVector<ll::StringRef, 128> features;
  ll::StringRef(target_.features).split(features, ',');
  auto has = [&](std::string_view f) {
    for (ll::StringRef x : features)
      if (x.size() == f.size() + 1 && x[0] == '+' &&
          x.substr(1) == ll::StringRef(f.data(), f.size()))
        return true;
    return false;
  };
  const ll::Triple& tt = b.getTargetTriple();
  if (tt.isX86()) {
    target_.vector_bits = has("avx512f") ? 512 : has("avx") ? 256 : 128;
    target_.has_fma = has("fma");
  } else {
    target_.vector_bits = 128;  // NEON, and a safe default elsewhere
    target_.has_fma = tt.isAArch64();
  }
  jit_ = check_llvm(ll::orc::LLJITBuilder().setJITTargetMachineBuilder(b).create(),
                    "jit: create LLJIT");
  // Link errors (a missing symbol) are reported here, not to stderr; lookup adds the text to its
  // kiln::Error. Linking runs on the looking-up thread (no compile threads), hence thread_local.
  jit_->getExecutionSession().setErrorReporter([](ll::Error e) {
    std::string& last = last_session_error();
    last = last.empty() ? ll::toString(std::move(e))
                        : fmt::format("{}; {}", last, ll::toString(std::move(e)));
  });
}

std::unique_ptr<ll::TargetMachine> Jit::make_target_machine(int opt_level) const {
  auto b = host_builder();
  b.setCodeGenOptLevel(codegen_level(opt_level));
  return check_llvm(b.createTargetMachine(), "jit: create target machine");
}

void Jit::prepare(ll::Module& m) const {
  m.setTargetTriple(target_.triple);
  m.setDataLayout(jit_->getDataLayout());
  std::string width = std::to_string(target_.vector_bits);
  for (ll::Function& f : m) {
    if (f.isDeclaration()) continue;
    if (!f.hasFnAttribute("target-cpu")) f.addFnAttr("target-cpu", target_.cpu);
    if (!f.hasFnAttribute("target-features")) f.addFnAttr("target-features", target_.features);
    // Explicit <16 x float> code stays in zmm registers, and the loop vectoriser picks the
    // same width (LLVM otherwise prefers 256 bits on some AVX-512 CPUs).
    if (!f.hasFnAttribute("prefer-vector-width")) f.addFnAttr("prefer-vector-width", width);
    if (!f.hasFnAttribute("min-legal-vector-width")) f.addFnAttr("min-legal-vector-width", width);
    // Spilled vector registers in slots of their own alignment: the ABI's 16-byte stack made
    // 32-byte spills straddle cache lines (and pages) wherever the caller's stack depth put
    // them, and the 8-op chain ran 2.5x slower in one process than in another (docs/design.md).
    if (!f.getFnStackAlign())
      f.addFnAttr(ll::Attribute::getWithStackAlignment(m.getContext(),
                                                       ll::Align(target_.vector_bits / 8)));
  }
}

void mark_vector_code(ll::Module& m) {
  m.addModuleFlag(ll::Module::Max, kVectorCodeFlag, 1);
}

bool is_vector_code(const ll::Module& m) {
  return m.getModuleFlag(kVectorCodeFlag) != nullptr;
}

void Jit::optimize(ll::Module& m, int opt_level) const {
  auto tm = make_target_machine(opt_level);
  ll::LoopAnalysisManager lam;
  ll::FunctionAnalysisManager fam;
  ll::CGSCCAnalysisManager cgam;
  ll::ModuleAnalysisManager mam;
  ll::PipelineTuningOptions pto;
  pto.LoopVectorization = opt_level >= 2;
  pto.SLPVectorization = opt_level >= 2;
  pto.LoopUnrolling = opt_level >= 1;
  ll::PassBuilder pb(tm.get(), pto);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  ll::ModulePassManager mpm;
  if (opt_level > 0 && is_vector_code(m)) {
    // Loops already in their vector form need no vectoriser and little clean-up: the default
    // pipeline's eight InstCombines and SLP over the unrolled vectors were 30% of a first
    // compile and bought nothing measurable (docs/design.md). Products' k loops still unroll.
    const std::string pipeline = fmt::format(
        "function(early-cse,instcombine,simplifycfg,gvn,instcombine,loop-unroll<O{}>,"
        "simplifycfg)",
        std::min(opt_level, 3));
    check_llvm(pb.parsePassPipeline(mpm, pipeline), "jit: kernel pipeline");
    mpm.run(m, mam);
    return;
  }
  switch (opt_level) {
    case 0:
      mpm = pb.buildO0DefaultPipeline(ll::OptimizationLevel::O0);
      break;
    case 1:
      mpm = pb.buildPerModuleDefaultPipeline(ll::OptimizationLevel::O1);
      break;
    case 2:
      mpm = pb.buildPerModuleDefaultPipeline(ll::OptimizationLevel::O2);
      break;
    default:
      mpm = pb.buildPerModuleDefaultPipeline(ll::OptimizationLevel::O3);
      break;
  }
  mpm.run(m, mam);
}

ObjectCode Jit::compile(ll::Module& m, const CompileOptions& options) const {
  KILN_CHECK(options.opt_level >= 0 && options.opt_level <= 3,
             "[codegen] opt_level must be 0..3: got {}", options.opt_level);
  prepare(m);
  std::string err;
  ll::raw_string_ostream es(err);
  if (ll::verifyModule(m, &es)) {
    es.flush();
    KILN_FAIL("[codegen] invalid LLVM IR in module '{}': {}", m.getName().str(), err);
  }
  optimize(m, options.opt_level);
  auto tm = make_target_machine(options.opt_level);
  ObjectCode out;
  out.target = target_.key();
  if (options.emit_asm) {
    // Codegen rewrites the IR it runs on, so the assembly comes from a copy.
    std::unique_ptr<ll::Module> copy = ll::CloneModule(m);
    out.assembly = emit(*tm, *copy, ll::CodeGenFileType::AssemblyFile);
  }
  out.bytes = emit(*tm, m, ll::CodeGenFileType::ObjectFile);
  compile_count_.fetch_add(1);
  return out;
}

std::shared_ptr<KernelLibrary> Jit::load(const ObjectCode& object) {
  KILN_CHECK(object.target == target_.key(),
             "[codegen] object file compiled for another target: got '{}', this process runs "
             "'{}'",
             object.target, target_.key());
  return load(std::string_view(object.bytes));
}

std::shared_ptr<KernelLibrary> Jit::load(std::string_view object_bytes) {
  std::string name = fmt::format("kiln_kernels_{}", next_dylib_.fetch_add(1));
  ll::orc::JITDylib& dylib = check_llvm(jit_->createJITDylib(name), "codegen: load object");
  std::shared_ptr<KernelLibrary> lib(new KernelLibrary(&dylib));  // unlinks on any throw below
  check_llvm(jit_->addObjectFile(
                 dylib, ll::MemoryBuffer::getMemBufferCopy(
                            ll::StringRef(object_bytes.data(), object_bytes.size()), name)),
             "codegen: load object");
  if (perf_map_enabled()) {
    auto obj = ll::object::ObjectFile::createObjectFile(
        ll::MemoryBufferRef(ll::StringRef(object_bytes.data(), object_bytes.size()), name));
    if (!obj) {
      ll::consumeError(obj.takeError());
    } else if (auto* elf = ll::dyn_cast<ll::object::ELFObjectFileBase>(obj->get())) {
      // Every function the object defines, at its linked address (looking one up links the
      // library now rather than at its first use).
      for (const ll::object::ELFSymbolRef sym : elf->symbols()) {
        auto sym_name = sym.getName();
        auto type = sym.getType();
        if (sym_name && type && *type == ll::object::SymbolRef::ST_Function) {
          auto at = jit_->lookup(dylib, *sym_name);
          if (at)
            perf_map_add(at->toPtr<void*>(), sym.getSize(),
                         fmt::format("{}:{}", name, sym_name->str()));
          else
            ll::consumeError(at.takeError());
        }
        if (!sym_name) ll::consumeError(sym_name.takeError());
        if (!type) ll::consumeError(type.takeError());
      }
    }
  }
  return lib;
}

std::shared_ptr<KernelLibrary> Jit::add(ll::Module& m, const CompileOptions& options) {
  return load(compile(m, options));
}

KernelLibrary::~KernelLibrary() {
  ll::consumeError(Jit::get().jit_->getExecutionSession().removeJITDylib(*dylib_));
}

void* KernelLibrary::lookup(std::string_view name) const {
  last_session_error().clear();
  auto addr = Jit::get().jit_->lookup(*dylib_, ll::StringRef(name.data(), name.size()));
  if (!addr) {
    std::string msg = ll::toString(addr.takeError());
    std::string& link = last_session_error();
    if (!link.empty()) msg = fmt::format("{} ({})", msg, link);
    link.clear();
    KILN_FAIL("[codegen] symbol '{}' not found in the kernel library: {}", name, msg);
  }
  return addr->toPtr<void*>();
}

std::string print_ir(const ll::Module& m) {
  std::string s;
  ll::raw_string_ostream os(s);
  m.print(os, nullptr);
  os.flush();
  return s;
}

}  // namespace kiln::codegen::llvm
