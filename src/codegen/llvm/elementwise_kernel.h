// A smoke path for the LLVM layer: a tiny elementwise expression DAG (driven by ops::OpKind and
// the ops::scalar functors, so no op list of its own) lowered to one vectorised loop kernel,
// JIT-compiled and run over tensors with the thread pool. Tests and benchmarks use it until the
// IR's FusionGroup lowering replaces the DAG.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codegen/llvm/jit.h"
#include "kiln/core/dtype.h"
#include "kiln/ops/op_kind.h"
#include "kiln/tensor.h"

namespace kiln::codegen::llvm {

/// The kernel ABI: ptrs[0] is the output, ptrs[1..] the inputs; strides[i] is operand i's byte
/// stride; n elements. Every operand contiguous takes the vector loop (with a masked tail),
/// anything else a scalar strided loop. Callers split n across threads by offsetting ptrs.
using ElementwiseFn = void (*)(char** ptrs, const int64_t* strides, int64_t n);

/// An expression over num_inputs same-shaped inputs of one floating dtype.
class ElementwiseExpr {
 public:
  struct Node {
    enum class Kind { kInput, kConstant, kUnary, kBinary } kind;
    ops::OpKind op = ops::OpKind::Neg;  // for kUnary / kBinary
    int a = -1, b = -1;                 // operand node ids; the input index for kInput
    double value = 0;                   // for kConstant
  };

  /// dtype: kFloat or kDouble.
  ElementwiseExpr(ScalarType dtype, int num_inputs);

  int input(int i) const;      ///< node id of input i
  int constant(double value);  ///< a literal, typed like the inputs
  int unary(ops::OpKind op, int a);
  int binary(ops::OpKind op, int a, int b);
  void set_output(int node) { output_ = node; }

  ScalarType dtype() const { return dtype_; }
  /// kBool when the output node's op has the Bool dtype rule (comparisons), else dtype().
  ScalarType output_dtype() const;
  int num_inputs() const { return num_inputs_; }
  int output() const { return output_; }
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  int add(Node n);
  ScalarType dtype_;
  int num_inputs_;
  int output_ = -1;
  std::vector<Node> nodes_;
};

/// Emits `void <name>(char**, const int64_t*, int64_t)` computing expr into a new module, with
/// vectors of `lanes` elements (0: four of the target's widest registers, e.g. 32 floats with
/// AVX2, 64 with AVX-512; 1: scalar code only).
std::unique_ptr<::llvm::Module> emit_elementwise(::llvm::LLVMContext& ctx,
                                                 const ElementwiseExpr& expr,
                                                 const std::string& name, int lanes = 0);

/// A compiled expression: its object code, the loaded library and the entry point.
class ElementwiseKernel {
 public:
  static constexpr const char* kSymbol = "kiln_elementwise";

  /// Emits, optimises, compiles and loads expr.
  static ElementwiseKernel compile(const ElementwiseExpr& expr, const CompileOptions& options = {},
                                   int lanes = 0);
  /// Loads an object produced by compile() (possibly in another process): no LLVM optimiser or
  /// codegen runs.
  static ElementwiseKernel load(const ElementwiseExpr& expr, const ObjectCode& object);

  /// Runs the kernel on same-shaped inputs of expr.dtype() (any strides); returns a new
  /// contiguous tensor. Large inputs are split across kiln's thread pool.
  Tensor operator()(const std::vector<Tensor>& inputs) const;

  ElementwiseFn fn() const { return fn_; }
  const ObjectCode& object() const { return object_; }

 private:
  ElementwiseKernel(const ElementwiseExpr& expr, ObjectCode object);
  ElementwiseExpr expr_;
  ObjectCode object_;
  std::shared_ptr<KernelLibrary> library_;
  ElementwiseFn fn_ = nullptr;
};

}  // namespace kiln::codegen::llvm
