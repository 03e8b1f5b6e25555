// LLVM JIT benchmarks (Google Benchmark): the 8-op elementwise chain on 16M float32 as one JIT
// kernel (and as kiln::jit::compile's fused kernel) vs eager Kiln ops vs a STREAM-style copy (the memory-bandwidth floor: the kernel reads
// and writes the same bytes), all in one run; plus compile and object-load times of the kernel.
// Run: bench_codegen --benchmark_repetitions=5 --benchmark_min_time=0.3
#include <benchmark/benchmark.h>
#include <kiln/kiln.h>

#include <vector>

#include "bench_util.h"
#include "codegen/llvm/elementwise_kernel.h"

namespace {

using kiln::Tensor;
using kiln::codegen::llvm::ElementwiseExpr;
using kiln::codegen::llvm::ElementwiseKernel;
using kiln::ops::OpKind;

constexpr int64_t k16M = int64_t{1} << 24;

using kiln::bench::set_threads;

// x*2, +1, relu, *x, sigmoid, -0.5, tanh, +x
ElementwiseExpr chain8() {
  ElementwiseExpr e(kiln::kFloat, 1);
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

void BM_Chain8_Jit(benchmark::State& state) {
  set_threads(state);
  ElementwiseKernel k = ElementwiseKernel::compile(chain8());
  Tensor x = kiln::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(k({x}));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Chain8_Jit)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same chain through kiln::jit::compile (a fused kernel), in this process without libtorch
// (bench_jit loads it, and the speed of a kernel that spills registers depended on that: see
// docs/design.md, "Vector width").
void BM_Chain8_Compiled(benchmark::State& state) { kiln::bench::compiled_chain8(state); }
BENCHMARK(BM_Chain8_Compiled)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Chain8_Eager(benchmark::State& state) {
  set_threads(state);
  Tensor x = kiln::randn({k16M});
  for (auto _ : state) {
    Tensor v = kiln::relu(x * 2 + 1) * x;
    benchmark::DoNotOptimize(kiln::tanh(kiln::sigmoid(v) - 0.5) + x);
  }
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Chain8_Eager)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// One read + one write of 16M floats into a fresh tensor, chunked like the kernel.
void BM_StreamCopy(benchmark::State& state) {
  set_threads(state);
  Tensor x = kiln::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::bench::stream_copy(x));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_StreamCopy)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// Emit + O3 + codegen + link of the chain kernel (a cold compile-cache miss).
void BM_Chain8_Compile(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ElementwiseKernel::compile(chain8()).fn());
}
BENCHMARK(BM_Chain8_Compile)->Unit(benchmark::kMillisecond);

// Linking the kernel's object file (a disk-cache hit: no optimiser, no codegen).
void BM_Chain8_LoadObject(benchmark::State& state) {
  auto obj = ElementwiseKernel::compile(chain8()).object();
  for (auto _ : state) benchmark::DoNotOptimize(ElementwiseKernel::load(chain8(), obj).fn());
}
BENCHMARK(BM_Chain8_LoadObject)->Unit(benchmark::kMicrosecond);

}  // namespace
