// Eager CPU op benchmarks (Google Benchmark): per-op overhead on one element, bandwidth-bound
// elementwise ops and reductions on 16M floats beside a memcpy floor, in-cache elementwise ops
// on 8192 floats, matmul 1024^3 and conv2d.
// Run: bench_eager --benchmark_repetitions=5. With libtorch baselines linked in (bench_torch.cpp),
// --benchmark_filter=Torch runs only those and --benchmark_filter=-Torch only Kiln's.
#include <benchmark/benchmark.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int64_t k16M = int64_t{1} << 24;

// Every benchmark runs with one kernel thread per core (Kiln's default, made explicit).
int num_cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }
void use_all_cores() { kiln::set_num_threads(num_cores()); }

// ---- per-op eager overhead: dispatch, shape/dtype checks, allocation of the result ----------
void BM_AddOneElement(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::ones({1});
  kiln::Tensor b = kiln::ones({1});
  for (auto _ : state) benchmark::DoNotOptimize(a + b);
}
BENCHMARK(BM_AddOneElement);

void BM_AddInPlaceOneElement(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::zeros({1});
  kiln::Tensor b = kiln::full({1}, 1e-7);
  for (auto _ : state) benchmark::DoNotOptimize(a.add_(b));
}
BENCHMARK(BM_AddInPlaceOneElement);

// ---- 16M floats: memory-bound, so bytes/s is the figure; memcpy is the floor ---------------
void BM_Memcpy16M(benchmark::State& state) {
  std::vector<float> src(k16M, 1.0f), dst(k16M, 0.0f);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), k16M * sizeof(float));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Memcpy16M)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same copy split across Kiln's thread pool: the floor for the multi-threaded kernels.
void BM_MemcpyParallel16M(benchmark::State& state) {
  use_all_cores();
  std::vector<float> src(k16M, 1.0f), dst(k16M, 0.0f);
  for (auto _ : state) {
    kiln::parallel_for(0, k16M, 32768, [&](int64_t begin, int64_t end) {
      std::memcpy(dst.data() + begin, src.data() + begin, (end - begin) * sizeof(float));
    });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_MemcpyParallel16M)->UseRealTime()->Unit(benchmark::kMillisecond);

// c = a + b, allocating c each time as eager code does (includes first-touch page faults).
void BM_Add16M(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::rand({k16M});
  kiln::Tensor b = kiln::rand({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(a + b);
  state.SetBytesProcessed(state.iterations() * 3 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Add16M)->UseRealTime()->Unit(benchmark::kMillisecond);

// add_out into a preallocated result: the kernel alone, comparable with the memcpy floor.
void BM_AddOut16M(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::rand({k16M});
  kiln::Tensor b = kiln::rand({k16M});
  kiln::Tensor c = kiln::empty({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::add_out(c, a, b));
  state.SetBytesProcessed(state.iterations() * 3 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_AddOut16M)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Exp16M(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::exp(a));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Exp16M)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Tanh16M(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::tanh(a));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Tanh16M)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- 8192 floats (an Adam step's parameter tensor): in cache, so per-element compute shows --
constexpr int64_t k8K = 8192;

void BM_Mul8K(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::rand({k8K}), b = kiln::rand({k8K});
  for (auto _ : state) benchmark::DoNotOptimize(a * b);
}
BENCHMARK(BM_Mul8K)->Unit(benchmark::kMicrosecond);

void BM_Sqrt8K(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::rand({k8K});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::sqrt(a));
}
BENCHMARK(BM_Sqrt8K)->Unit(benchmark::kMicrosecond);

void BM_Exp8K(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::randn({k8K});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::exp(a));
}
BENCHMARK(BM_Exp8K)->Unit(benchmark::kMicrosecond);

void BM_Sum16M(benchmark::State& state) {
  use_all_cores();
  kiln::Tensor a = kiln::rand({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(a.sum());
  state.SetBytesProcessed(state.iterations() * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Sum16M)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- compute-bound library calls (oneDNN): FLOP/s in the "FLOPS" counter --------------------
void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] =
      benchmark::Counter(flops_per_iteration * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_Matmul1024(benchmark::State& state) {
  use_all_cores();
  const int64_t n = 1024;
  kiln::Tensor a = kiln::randn({n, n});
  kiln::Tensor b = kiln::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::matmul(a, b));
  set_flops(state, 2.0 * n * n * n);
}
BENCHMARK(BM_Matmul1024)->UseRealTime()->Unit(benchmark::kMillisecond);

// 1x3x512x512 input, 16 output channels, 3x3 kernel, padding 1 (same-size output).
void BM_Conv2d(benchmark::State& state) {
  use_all_cores();
  const int64_t c_in = 3, c_out = 16, h = 512, w = 512, k = 3;
  kiln::Tensor x = kiln::randn({1, c_in, h, w});
  kiln::Tensor weight = kiln::randn({c_out, c_in, k, k});
  kiln::Tensor bias = kiln::randn({c_out});
  for (auto _ : state) {
    benchmark::DoNotOptimize(kiln::conv2d(x, weight, bias, /*stride=*/1, /*padding=*/1));
  }
  set_flops(state, 2.0 * c_out * h * w * c_in * k * k);
}
BENCHMARK(BM_Conv2d)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
