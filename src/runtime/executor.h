// The compiled-graph executor: an optimised graph turned into a flat list of steps over value
// slots (fused kernels, library calls and other primitives through ops::call, control flow as
// nested plans), with slots freed after their last use and kernel intermediates kept in reused
// buffers. What the JIT runs for one input signature.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "codegen/llvm/fusion_kernel.h"
#include "kiln/ir/graph.h"
#include "kiln/ivalue.h"
#include "runtime/disk_cache.h"

namespace kiln::runtime {

/// How each fusion group was lowered, and the kernel cache it draws from.
struct KernelStats {
  int fused_kernels = 0;      // groups running as one generated kernel
  int kernels_compiled = 0;   // LLVM ran for them
  int kernels_from_memory = 0;
  int kernels_from_disk = 0;  // loaded object code, no LLVM
  int library_calls = 0;      // mm, bmm, addmm, conv2d (oneDNN)
  int eager_ops = 0;          // other primitives, run by their eager kernels
  int fallback_groups = 0;    // groups the code generator could not take (run eagerly)
  std::vector<std::string> fallback_reasons;
  double codegen_ms = 0;      // emitting + optimising + compiling kernels
  double load_ms = 0;         // loading cached object code
};

struct ExecutorOptions {
  codegen::llvm::CompileOptions llvm;
  DiskCache* disk_cache = nullptr;  // null: no disk cache
  /// Try several vector widths per kernel, time them, keep the fastest (max-autotune).
  bool autotune = false;
  /// Print each kernel's LLVM IR / assembly to stderr (KILN_DUMP_IR=llvm|asm).
  bool dump_llvm = false;
  bool dump_asm = false;
};

/// One compiled graph. run() is thread-safe: each concurrent run gets its own buffers.
class Executor {
 public:
  /// Lowers g (owned from now on). Kernels are compiled or loaded here, not on first run.
  Executor(std::unique_ptr<ir::Graph> g, const std::vector<IValue>& example_inputs,
           const ExecutorOptions& options);
  ~Executor();

  std::vector<IValue> run(const std::vector<IValue>& inputs);

  const ir::Graph& graph() const { return *graph_; }
  const KernelStats& stats() const { return stats_; }
  /// One line per step: "kernel #0: 8 ops [4096] (compiled)", "library: mm", ...
  std::string describe() const;

  struct Plan;

 private:
  std::unique_ptr<ir::Graph> graph_;
  std::unique_ptr<Plan> plan_;
  KernelStats stats_;
  void* impl_ = nullptr;  // ExecutorImpl: constants, buffer types, free workspaces
};

/// The process-wide cache of compiled fusion kernels (bounded, thread-safe), by spec key.
class KernelCache {
 public:
  static KernelCache& get();
  /// The kernel of spec: from memory, else the disk cache, else compiled (and stored in both).
  /// *source says where it came from: 0 memory, 1 disk, 2 compiled.
  std::shared_ptr<codegen::llvm::FusedKernel> kernel(const codegen::llvm::KernelSpec& spec,
                                                     const ExecutorOptions& options, int* source,
                                                     double* ms);
  size_t size() const;
  void clear();
  /// The disk-cache key of a spec (kiln + LLVM versions, target CPU and the spec).
  static std::string disk_key(const codegen::llvm::KernelSpec& spec);

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::shared_ptr<codegen::llvm::FusedKernel>>> lru_;
};

}  // namespace kiln::runtime
