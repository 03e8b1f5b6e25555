// libtorch baselines for bench_eager.cpp: the same cases through Debian's libtorch, linked into the
// same bench_eager binary (only when find_package(Torch) succeeds) so both run in one process.
// Compare BM_X with BM_Torch_X; libtorch uses one intra-op thread per core, like Kiln.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

namespace {

constexpr int64_t k16M = int64_t{1} << 24;

void use_all_cores() {
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

void BM_Torch_AddOneElement(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::ones({1});
  torch::Tensor b = torch::ones({1});
  for (auto _ : state) benchmark::DoNotOptimize(a + b);
}
BENCHMARK(BM_Torch_AddOneElement);

void BM_Torch_AddInPlaceOneElement(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::zeros({1});
  torch::Tensor b = torch::full({1}, 1e-7);
  for (auto _ : state) benchmark::DoNotOptimize(a.add_(b));
}
BENCHMARK(BM_Torch_AddInPlaceOneElement);

void BM_Torch_Add16M(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::rand({k16M});
  torch::Tensor b = torch::rand({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(a + b);
  state.SetBytesProcessed(state.iterations() * 3 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Torch_Add16M)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Torch_AddOut16M(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::rand({k16M});
  torch::Tensor b = torch::rand({k16M});
  torch::Tensor c = torch::empty({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(torch::add_out(c, a, b));
  state.SetBytesProcessed(state.iterations() * 3 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Torch_AddOut16M)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Torch_Exp16M(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(torch::exp(a));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Torch_Exp16M)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Torch_Tanh16M(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::randn({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(torch::tanh(a));
  state.SetBytesProcessed(state.iterations() * 2 * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Torch_Tanh16M)->UseRealTime()->Unit(benchmark::kMillisecond);

constexpr int64_t k8K = 8192;

void BM_Torch_Mul8K(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::rand({k8K}), b = torch::rand({k8K});
  for (auto _ : state) benchmark::DoNotOptimize(a * b);
}
BENCHMARK(BM_Torch_Mul8K)->Unit(benchmark::kMicrosecond);

void BM_Torch_Sqrt8K(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::rand({k8K});
  for (auto _ : state) benchmark::DoNotOptimize(torch::sqrt(a));
}
BENCHMARK(BM_Torch_Sqrt8K)->Unit(benchmark::kMicrosecond);

void BM_Torch_Exp8K(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::randn({k8K});
  for (auto _ : state) benchmark::DoNotOptimize(torch::exp(a));
}
BENCHMARK(BM_Torch_Exp8K)->Unit(benchmark::kMicrosecond);

void BM_Torch_Sum16M(benchmark::State& state) {
  use_all_cores();
  torch::Tensor a = torch::rand({k16M});
  for (auto _ : state) benchmark::DoNotOptimize(a.sum());
  state.SetBytesProcessed(state.iterations() * k16M * int64_t{sizeof(float)});
}
BENCHMARK(BM_Torch_Sum16M)->UseRealTime()->Unit(benchmark::kMillisecond);

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] =
      benchmark::Counter(flops_per_iteration * state.iterations(), benchmark::Counter::kIsRate);
}

// Debian's libtorch runs float matmul through the system BLAS (libblas.so.3): the figure depends
// on which BLAS that alternative points to (reference BLAS is far slower than OpenBLAS).
void BM_Torch_Matmul1024(benchmark::State& state) {
  use_all_cores();
  const int64_t n = 1024;
  torch::Tensor a = torch::randn({n, n});
  torch::Tensor b = torch::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(torch::matmul(a, b));
  set_flops(state, 2.0 * n * n * n);
}
BENCHMARK(BM_Torch_Matmul1024)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Torch_Conv2d(benchmark::State& state) {
  use_all_cores();
  const int64_t c_in = 3, c_out = 16, h = 512, w = 512, k = 3;
  torch::Tensor x = torch::randn({1, c_in, h, w});
  torch::Tensor weight = torch::randn({c_out, c_in, k, k});
  torch::Tensor bias = torch::randn({c_out});
  for (auto _ : state) {
    benchmark::DoNotOptimize(torch::conv2d(x, weight, bias, /*stride=*/1, /*padding=*/1));
  }
  set_flops(state, 2.0 * c_out * h * w * c_in * k * k);
}
BENCHMARK(BM_Torch_Conv2d)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
