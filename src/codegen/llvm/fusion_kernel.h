// Lowering of one fusion_group (the pass's contract: elementwise primitives, number constants,
// views of block inputs, reductions at the tail; docs/ir.md) to one LLVM kernel, and the launcher
// that runs it over tensors with the thread pool. The group is first flattened into a
// KernelProgram (instructions with the dtypes eager computes them in), which is also what the
// kernel cache keys on; the kernel then evaluates the program at every point of the group's
// iteration shape, with broadcasting and views folded into per-operand strides.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/llvm/jit.h"
#include "kiln/ir/graph.h"
#include "kiln/ops/op_kind.h"
#include "kiln/tensor.h"

namespace kiln::codegen::llvm {

/// The computation of a fusion group, as straight-line instructions over loaded operands.
struct KernelProgram {
  struct Instr {
    /// Dot: the matrix product of two loaded operands at the current point, sum over k of
    /// A[m, k] * B[k, n] (fused multiply-adds in order of k, in dtype): the product's [M, N]
    /// result broadcasts to the iteration shape; its operands (args, both loads, used by
    /// nothing else) are the [M, K] and [K, N] matrices.
    enum class Kind : uint8_t { Load, Const, Op, Dot } kind = Kind::Op;
    ops::OpKind op = ops::OpKind::Copy;  // Op: the primitive (elementwise rows only)
    std::vector<int> args;               // Op: operand instructions; Dot: the loads of A, B
    int input = -1;                      // Load: index into inputs
    double fvalue = 0;                   // Const: the number (as written)
    int64_t ivalue = 0;                  // Const: the integer; Dot: K
    bool is_float_const = false;
    bool is_bool_const = false;
    ScalarType dtype = kFloat;    // the value's dtype
    ScalarType compute = kFloat;  // Op: the dtype its operands are converted to first
  };
  struct Output {
    int instr = -1;
    ScalarType dtype = kFloat;
    /// A reduction (Sum, Prod, Amax, Amin, All, Any) of instr, or none: an elementwise output.
    std::optional<ops::OpKind> reduce;
    ScalarType acc = kFloat;  // reductions: the accumulator dtype (double for float sums)
  };
  std::vector<Instr> instrs;
  std::vector<ScalarType> inputs;  // dtypes of the loaded operands
  std::vector<Output> outputs;

  /// A canonical text of the program (the kernel cache keys on it).
  std::string str() const;
  bool has_reductions() const;
  /// Per input: 0, or 1 / 2 where it is the A / B operand of a Dot.
  std::vector<int> dot_roles() const;
};

/// How the kernel's innermost loop reads one operand, fixed when it is compiled: contiguous,
/// broadcast (stride 0), or anything else (then the kernel takes its scalar strided loop).
enum class Access : uint8_t { Contiguous, Broadcast, Strided };

/// What a kernel is specialised for: the program and the inner-loop access of every operand
/// (in ABI order: elementwise outputs, accumulators, inputs).
struct KernelSpec {
  KernelProgram program;
  std::vector<Access> access;
  int lanes = 0;  // vector elements per iteration (0: pick for the target)
  /// Non-temporal (streaming) stores in the vector loop: for one elementwise output much larger
  /// than the caches, written once and not read back soon (see streams()). The loop first runs
  /// a masked head so that its stores are aligned to the vector register.
  bool streaming = false;
  /// Products: every A operand has one k stride and every B operand another (the launch's
  /// inputs do: a shared weight's column slices, say), so the k loop steps one offset per
  /// role instead of one per operand. Checked at run time: other strides take the scalar loop.
  bool uniform_k = false;
  /// Whether the kernel's main path is the vector loop (no operand is Strided).
  bool vector_loop() const;
  /// A canonical text (program + access + lanes + streaming + uniform_k) for the kernel cache.
  std::string key() const;
};

/// Outputs of at least this many bytes are written with streaming stores.
inline constexpr int64_t kStreamingBytes = int64_t{16} << 20;

/// The kernel ABI: ptrs/strides per operand in the order [elementwise outputs, reduction
/// accumulators, inputs]; byte strides of the innermost loop; n iterations; `rows` rows. Each
/// row r runs the n iterations at ptrs[k] + r * (operand k's row stride). Accumulators are
/// read-modify-written (stride 0: the loop reduces into one slot). The strides are, in order:
/// the operands' inner byte strides, the byte strides along k of the inputs that are Dot
/// operands (in input order), the operands' row byte strides.
using FusedFn = void (*)(char** ptrs, const int64_t* strides, int64_t n, int64_t rows);

inline constexpr const char* kFusedSymbol = "kiln_fused";
/// The function the kernel calls for each row (`void(char**, const int64_t*, int64_t)`).
inline constexpr const char* kFusedRowSymbol = "kiln_fused_row";

/// Bumped by every change to the code a kernel program lowers to (the disk cache keys on it,
/// so objects written by an older emitter of the same Kiln version are not reused).
inline constexpr int kCodegenRevision = 7;

/// A fusion group prepared for code generation: its program, and how to find the kernel's
/// operands among the group's inputs at run time.
struct GroupLowering {
  KernelProgram program;
  /// Per program input: the block input it reads and the view nodes (in the group) to apply
  /// to it first, in order.
  struct Source {
    int block_input = -1;
    std::vector<const ir::Node*> views;
    /// Per view: its arguments after the tensor (the constants), read once at lowering so a
    /// launch applies the views without looking attributes up.
    std::vector<std::vector<IValue>> view_args;
  };
  std::vector<Source> sources;
  std::vector<int64_t> shape;        // the iteration shape
  std::vector<int64_t> reduce_dims;  // sorted dims of shape the reductions reduce
  std::vector<std::vector<int64_t>> output_sizes;  // the group's declared output sizes
};

/// Prepares a fusion group node; returns nullopt (with why) when some node of the group has no
/// kernel lowering here or its shapes are not static (the caller then runs the group eagerly).
std::optional<GroupLowering> lower_group(const ir::Node& group, std::string* why);

/// The launch operands of a lowered group for its inputs' tensors (views applied).
struct LaunchArgs;
LaunchArgs launch_args(const GroupLowering& g, const std::vector<Tensor>& block_inputs);
/// Whether a launch of p with these arguments should use streaming stores: one elementwise
/// output (no reductions) of at least kStreamingBytes.
bool streams(const KernelProgram& p, const LaunchArgs& a);

/// Emits the kernel of spec as `void kiln_fused(char**, const int64_t*, int64_t, int64_t)`.
std::unique_ptr<::llvm::Module> emit_fused(::llvm::LLVMContext& ctx, const KernelSpec& spec);

/// A compiled fusion kernel.
class FusedKernel {
 public:
  /// Emits, optimises, compiles and loads.
  static std::shared_ptr<FusedKernel> compile(const KernelSpec& spec,
                                              const CompileOptions& options = {});
  /// Loads object code made by compile() (maybe in another process): no LLVM optimiser runs.
  static std::shared_ptr<FusedKernel> load(const KernelSpec& spec, const ObjectCode& object);

  const KernelSpec& spec() const { return spec_; }
  const ObjectCode& object() const { return object_; }
  FusedFn fn() const { return fn_; }

 private:
  FusedKernel(KernelSpec spec, ObjectCode object);
  KernelSpec spec_;
  ObjectCode object_;
  std::shared_ptr<KernelLibrary> library_;
  FusedFn fn_ = nullptr;
};

/// The tensors of one launch: the group's iteration shape and its operands.
struct LaunchArgs {
  std::vector<int64_t> shape;       // the iteration shape
  std::vector<Tensor> inputs;       // already viewed; each broadcasts to shape
  std::vector<int64_t> reduce_dims;  // dims of shape the reductions reduce (sorted)
  /// Optional, per program output: a contiguous tensor to write (reductions: of the keepdim
  /// sizes; only where the accumulator dtype is the output dtype). Undefined: a fresh tensor.
  std::vector<Tensor> outputs;
  /// Elements of work below which a task is not split further (max-autotune tries others).
  int64_t grain = 32768;
};

/// The coalesced iteration space of a launch: sizes, per operand byte strides (ABI order:
/// stores, accumulators, inputs) and which dims the reductions reduce.
struct LaunchLayout {
  std::vector<int64_t> sizes;
  std::vector<std::vector<int64_t>> strides;  // [operand][dim]
  std::vector<bool> reduced;
  std::vector<int64_t> k_strides;  // per Dot operand input: its byte stride along k (ABI tail)
  /// Products: the inner dim is run in blocks of this many elements, every outer index of a
  /// block before the next block (0: whole rows).
  int64_t inner_block = 0;
  /// Work per point in units of the launch grain: 1, plus K per product.
  int64_t work_per_point = 1;
  /// Derived from the above once per layout (finish_layout), read by every launch over it:
  /// the kernel's stride array (ABI order: inner, k, row strides), the outer dims before the
  /// rows dim that tasks split (kept) or every task runs through (reduced, in order), and
  /// their index counts.
  std::vector<int64_t> abi_strides, kept, red;
  int64_t tasks = 1, red_rows = 1;
};

/// What a launch of one lowered group derived from its block inputs' layouts, kept by the
/// caller (an executor step) so that later launches with the same input sizes and strides skip
/// the views and the layout work: each program input is then its block input's data plus a
/// fixed byte offset, and the iteration layout is the same.
struct LaunchMemo {
  bool valid = false;
  std::vector<int64_t> key;      // per block input: dim, sizes, strides
  std::vector<int64_t> offsets;  // per program input: bytes from its block input's data
  LaunchLayout layout;
};

/// launch(kernel, launch_args(g, block_inputs) with outputs and grain), remembered in memo:
/// a group without reductions whose block inputs have the layouts of the memo's last launch
/// runs without making view tensors or recomputing the layout. Same results as launch().
std::vector<Tensor> launch_group(const FusedKernel& kernel, const GroupLowering& g,
                                 const std::vector<Tensor>& block_inputs,
                                 const std::vector<Tensor>& outputs, int64_t grain,
                                 LaunchMemo& memo);

/// Where the launch's operands sit for one set of input strides: what the kernel's access
/// pattern must be for these inputs (computed without running anything).
std::vector<Access> access_for(const KernelProgram& program, const LaunchArgs& args);

/// The spec a launch with these arguments wants (access, streaming, uniform_k; lanes 0).
KernelSpec spec_for(const KernelProgram& program, const LaunchArgs& args);

/// Runs kernel over args and returns the group's outputs in program order (reductions with
/// keepdim sizes, i.e. the reduced dims kept as 1; callers view them as the group declares).
std::vector<Tensor> launch(const FusedKernel& kernel, const LaunchArgs& args);

}  // namespace kiln::codegen::llvm
