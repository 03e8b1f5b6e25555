// Compiled execution benchmarks (Google Benchmark): kiln::jit::compile against eager Kiln, the
// memory-bandwidth floor (a STREAM-style copy) and oneDNN, in one run; bench_jit_torch.cpp adds
// libtorch eager on the same layers (benchmarks/layers.h) when libtorch is installed.
//   - the 8-op elementwise chain on 16M float32
//   - the seed's hand-written Conv2d (unfold + per-channel matmul), 1x3x512x512 -> 16, 3x3
//   - a hand-written LSTM cell over a sequence
//   - per-call overhead of a cached small graph; first compile of a 22-op graph, cold and from
//     the disk cache
// Run: bench_jit --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <kiln/kiln.h>

#include <filesystem>
#include <string>

#include <unistd.h>

#include "bench_util.h"
#include "layers.h"

namespace {

using kiln::Tensor;
using kiln::bench::set_threads;
namespace jit = kiln::jit;
namespace fs = std::filesystem;
namespace F = kiln::nn::functional;

constexpr int64_t k16M = int64_t{1} << 24;

// Compiled code is measured after its first call (trace + compile), as a user sees it in steady
// state; kernels come from a private cache directory so earlier runs do not matter.
jit::CompileOptions options(jit::CompileMode mode = jit::CompileMode::Default) {
  jit::CompileOptions o;
  o.mode = mode;
  o.disk_cache = false;
  return o;
}

// ---- the 8-op chain ------------------------------------------------------------------------
void BM_Chain8_Compiled(benchmark::State& state) { kiln::bench::compiled_chain8(state); }
BENCHMARK(BM_Chain8_Compiled)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// A memory-bound compiled kernel (x * 2 + 1): what streaming stores buy against both floors.
void BM_Affine16M_Compiled(benchmark::State& state) {
  set_threads(state);
  kiln::NoGradGuard no_grad;
  Tensor x = kiln::randn({k16M});
  auto f = jit::compile([](const Tensor& t) { return t * 2 + 1; }, options());
  f(x);
  for (auto _ : state) benchmark::DoNotOptimize(f(x));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Affine16M_Compiled)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Chain8_Eager(benchmark::State& state) {
  set_threads(state);
  kiln::NoGradGuard no_grad;
  Tensor x = kiln::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::bench::chain8(x));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Chain8_Eager)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// The copy floors: memcpy, and the same with non-temporal stores.
void copy_floor(benchmark::State& state, Tensor (*copy)(const Tensor&)) {
  set_threads(state);
  Tensor x = kiln::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(copy(x));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
void BM_StreamCopy16M(benchmark::State& state) { copy_floor(state, kiln::bench::stream_copy); }
void BM_StreamCopyNT16M(benchmark::State& state) { copy_floor(state, kiln::bench::stream_copy_nt); }
BENCHMARK(BM_StreamCopy16M)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StreamCopyNT16M)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- the seed's Conv2d ---------------------------------------------------------------------
struct ConvCase {
  Tensor x = kiln::randn({1, 3, 512, 512});
  Tensor weight = kiln::randn({16, 3, 3, 3}) * 0.2;
  Tensor bias = kiln::randn({16});
};

void BM_CustomConv2d_Eager(benchmark::State& state) {
  set_threads(state);
  kiln::NoGradGuard no_grad;
  ConvCase c;
  for (auto _ : state)
    benchmark::DoNotOptimize(kiln::bench::per_channel_conv2d(c.x, c.weight, c.bias));
}
BENCHMARK(BM_CustomConv2d_Eager)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_CustomConv2d_Compiled(benchmark::State& state) {
  set_threads(state);
  kiln::NoGradGuard no_grad;
  ConvCase c;
  auto f = jit::compile(
      [](const Tensor& x, const Tensor& w, const Tensor& b) {
        return kiln::bench::per_channel_conv2d(x, w, b);
      },
      options());
  f(c.x, c.weight, c.bias);
  for (auto _ : state) benchmark::DoNotOptimize(f(c.x, c.weight, c.bias));
}
BENCHMARK(BM_CustomConv2d_Compiled)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// oneDNN's convolution on the same problem (kiln::conv2d).
void BM_Conv2d_OneDNN(benchmark::State& state) {
  set_threads(state);
  kiln::NoGradGuard no_grad;
  ConvCase c;
  for (auto _ : state) benchmark::DoNotOptimize(kiln::conv2d(c.x, c.weight, c.bias));
}
BENCHMARK(BM_Conv2d_OneDNN)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- the LSTM cell over a sequence -----------------------------------------------------------
// range(1): hidden size; sequence 32 steps, batch 8, input size = hidden.
struct LstmCase {
  explicit LstmCase(int64_t hidden)
      : x(kiln::randn({32, 8, hidden})),
        h(kiln::zeros({8, hidden})),
        c(kiln::zeros({8, hidden})),
        w_ih(kiln::randn({4 * hidden, hidden}) * 0.1),
        w_hh(kiln::randn({4 * hidden, hidden}) * 0.1),
        b_ih(kiln::randn({4 * hidden}) * 0.1),
        b_hh(kiln::randn({4 * hidden}) * 0.1) {}
  Tensor x, h, c, w_ih, w_hh, b_ih, b_hh;
  Tensor eager() const { return kiln::bench::lstm_sequence(x, h, c, w_ih, w_hh, b_ih, b_hh); }
};

void BM_LstmSequence_Eager(benchmark::State& state) {
  set_threads(state);
  kiln::NoGradGuard no_grad;
  LstmCase l(state.range(1));
  for (auto _ : state) benchmark::DoNotOptimize(l.eager());
}
BENCHMARK(BM_LstmSequence_Eager)
    ->Args({0, 64})
    ->Args({0, 256})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_LstmSequence_Compiled(benchmark::State& state) {
  set_threads(state);
  kiln::NoGradGuard no_grad;
  LstmCase l(state.range(1));
  auto f = jit::compile(
      [](const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
         const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
        return kiln::bench::lstm_sequence(x, h, c, w_ih, w_hh, b_ih, b_hh);
      },
      options(jit::CompileMode::ReduceOverhead));
  f(l.x, l.h, l.c, l.w_ih, l.w_hh, l.b_ih, l.b_hh);
  for (auto _ : state) benchmark::DoNotOptimize(f(l.x, l.h, l.c, l.w_ih, l.w_hh, l.b_ih, l.b_hh));
}
BENCHMARK(BM_LstmSequence_Compiled)
    ->Args({0, 64})
    ->Args({0, 256})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---- overheads and compile times -------------------------------------------------------------
// A cached call of a one-kernel graph on 1 element: signature check, plan walk, launch.
void BM_CachedCall_Overhead(benchmark::State& state) {
  kiln::NoGradGuard no_grad;
  const auto mode = state.range(0) ? jit::CompileMode::ReduceOverhead : jit::CompileMode::Default;
  auto f = jit::compile([](const Tensor& t) { return (t * 2 + 1).relu(); }, options(mode));
  Tensor x = kiln::randn({1});
  f(x);
  for (auto _ : state) benchmark::DoNotOptimize(f(x));
}
BENCHMARK(BM_CachedCall_Overhead)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// The same three ops eagerly, for scale.
void BM_CachedCall_EagerEquivalent(benchmark::State& state) {
  kiln::NoGradGuard no_grad;
  Tensor x = kiln::randn({1});
  for (auto _ : state) benchmark::DoNotOptimize((x * 2 + 1).relu());
}
BENCHMARK(BM_CachedCall_EagerEquivalent)->Unit(benchmark::kMicrosecond);

Tensor graph20_input(int which) {
  return which == 0 ? kiln::randn({64, 128}) : kiln::randn({128});
}

// First call of a new compiled function of a 22-op graph, nothing cached: trace, passes, LLVM
// (emit, O3, codegen, link) of every kernel, plan.
void BM_FirstCompile_Graph20_Cold(benchmark::State& state) {
  kiln::NoGradGuard no_grad;
  Tensor x = graph20_input(0), y = graph20_input(1);
  for (auto _ : state) {
    jit::clear_kernel_cache();
    auto f = jit::compile(
        [](const Tensor& a, const Tensor& b) { return kiln::bench::graph20(a, b); }, options());
    benchmark::DoNotOptimize(f(x, y));
  }
}
BENCHMARK(BM_FirstCompile_Graph20_Cold)->Unit(benchmark::kMillisecond);

// The same with the kernels in the disk cache (as in a second process): no LLVM optimisation
// or code generation, only trace, passes, object linking and plan.
void BM_FirstCompile_Graph20_FromDisk(benchmark::State& state) {
  kiln::NoGradGuard no_grad;
  const fs::path dir = fs::temp_directory_path() / ("kiln-bench-jit-" + std::to_string(::getpid()));
  jit::CompileOptions o;
  o.cache_dir = dir.string();
  Tensor x = graph20_input(0), y = graph20_input(1);
  auto fill = jit::compile(
      [](const Tensor& a, const Tensor& b) { return kiln::bench::graph20(a, b); }, o);
  fill(x, y);
  for (auto _ : state) {
    jit::clear_kernel_cache();
    auto f = jit::compile(
        [](const Tensor& a, const Tensor& b) { return kiln::bench::graph20(a, b); }, o);
    benchmark::DoNotOptimize(f(x, y));
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_FirstCompile_Graph20_FromDisk)->Unit(benchmark::kMillisecond);

}  // namespace
