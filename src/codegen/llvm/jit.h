// The CPU JIT runtime: one in-process ORC LLJIT per process, host target detection, the new-pass-
// manager optimiser, and object files as the unit of compiled code. Codegen lowers a fusion group
// to an llvm::Module, Jit::compile turns it into object bytes (what the disk cache will store),
// Jit::load links object bytes into the process and returns callable symbols.
#pragma once

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "kiln/core/error.h"

namespace llvm {
class LLVMContext;
class Module;
class TargetMachine;
namespace orc {
class LLJIT;
class JITDylib;
}  // namespace orc
}  // namespace llvm

namespace kiln::codegen::llvm {

/// What code is generated for: the host CPU as LLVM names it.
struct HostTarget {
  std::string triple;     ///< "x86_64-pc-linux-gnu"
  std::string cpu;        ///< "znver4"
  std::string features;   ///< "+avx512f,+avx2,...,-amx-tile" (every feature LLVM knows, +/-)
  int vector_bits = 128;  ///< the widest vector register the kernels use: 512, 256 or 128
  bool has_fma = false;

  /// Identifies the code an object file holds; part of every compile-cache key, so a cache
  /// written on one machine is never loaded on a CPU with fewer features.
  std::string key() const;
  /// Vector lanes for elements of elem_bytes bytes (16 floats for AVX-512).
  int lanes(int elem_bytes) const { return vector_bits / 8 / elem_bytes; }
};

/// The result of compiling one module: a relocatable object file for HostTarget.
struct ObjectCode {
  std::string bytes;     ///< the ELF (or Mach-O/COFF) object, as written to disk
  std::string target;    ///< HostTarget::key() it was compiled for
  std::string assembly;  ///< the module's assembly, only when CompileOptions::emit_asm
};

/// How Jit::compile optimises.
struct CompileOptions {
  int opt_level = 3;      ///< 0..3, as -O; 2 and 3 run the loop and SLP vectorisers
  bool emit_asm = false;  ///< also produce ObjectCode::assembly (for KILN_DUMP_IR=asm)
};

/// Object code linked into this process. Symbols stay valid while the library lives; the
/// destructor unlinks it and frees its memory.
class KernelLibrary {
 public:
  KernelLibrary(const KernelLibrary&) = delete;
  KernelLibrary& operator=(const KernelLibrary&) = delete;
  ~KernelLibrary();

  /// The address of a function (or global) the object defines; throws kiln::Error if absent.
  void* lookup(std::string_view name) const;
  /// The address cast to a function pointer type: lib.lookup<void (*)(char**)>("k").
  template <typename Fn>
  Fn lookup(std::string_view name) const {
    return reinterpret_cast<Fn>(lookup(name));
  }

 private:
  friend class Jit;
  explicit KernelLibrary(::llvm::orc::JITDylib* dylib) : dylib_(dylib) {}
  ::llvm::orc::JITDylib* dylib_;
};

/// The process-wide JIT. Thread-safe: any thread may compile and load concurrently.
class Jit {
 public:
  /// The one instance, created (and LLVM's native target initialised) on first use. It lives
  /// until the process exits, so kernels held by other static objects never outlive it.
  static Jit& get();

  const HostTarget& target() const { return target_; }

  /// Sets a module's triple and data layout (and the CPU/feature attributes on each function
  /// that has none) so that it is optimised and compiled for target().
  void prepare(::llvm::Module& m) const;

  /// Verifies, optimises (in place) and compiles a module to an object file. Invalid IR and
  /// LLVM failures throw kiln::Error with LLVM's message.
  ObjectCode compile(::llvm::Module& m, const CompileOptions& options = {}) const;

  /// Runs only the optimisation pipeline of compile (for KILN_DUMP_IR=llvm and tests): the
  /// -O pipeline of opt_level, or for a module marked as vector code (mark_vector_code) a
  /// short one of scalar clean-up and loop unrolling.
  void optimize(::llvm::Module& m, int opt_level = 3) const;

  /// Links an object file into the process. Objects compiled for another target key are
  /// rejected; undefined symbols (libm, memcpy) resolve against the process.
  std::shared_ptr<KernelLibrary> load(const ObjectCode& object);
  /// Links raw object bytes read back from a cache (the caller checked the target key).
  std::shared_ptr<KernelLibrary> load(std::string_view object_bytes);

  /// compile + load.
  std::shared_ptr<KernelLibrary> add(::llvm::Module& m, const CompileOptions& options = {});

  /// Modules compiled by this process so far (the disk-cache tests check it stays 0).
  int64_t compile_count() const { return compile_count_.load(); }

 private:
  friend class KernelLibrary;
  Jit();
  std::unique_ptr<::llvm::TargetMachine> make_target_machine(int opt_level) const;

  HostTarget target_;
  std::unique_ptr<::llvm::orc::LLJIT> jit_;
  mutable std::atomic<int64_t> compile_count_{0};
  std::atomic<int64_t> next_dylib_{0};
};

/// Marks a module whose hot loops are explicit vector code (a fused kernel's vector loop):
/// Jit::optimize gives it a short pipeline without the loop and SLP vectorisers.
void mark_vector_code(::llvm::Module& m);
bool is_vector_code(const ::llvm::Module& m);
inline constexpr const char* kVectorCodeFlag = "kiln.vector-code";

/// The textual LLVM IR of a module (KILN_DUMP_IR=llvm).
std::string print_ir(const ::llvm::Module& m);

/// Throws kiln::Error "[what] <LLVM's message>" if err holds a failure; consumes err.
void check_llvm(::llvm::Error err, std::string_view what);

/// The value of e, or kiln::Error "[what] <LLVM's message>".
template <typename T>
T check_llvm(::llvm::Expected<T> e, std::string_view what) {
  if (!e) check_llvm(e.takeError(), what);
  return std::forward<T>(*e);  // T may be a reference (Expected<JITDylib&>)
}

}  // namespace kiln::codegen::llvm
