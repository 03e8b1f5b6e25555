// libtorch eager baselines for bench_jit.cpp: the same layers (benchmarks/layers.h) through
// Debian's libtorch in the same process (Debian's TorchScript fuser is built without LLVM, so
// eager is what libtorch offers here). Compare BM_Torch_X with BM_X_Eager / BM_X_Compiled.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include "layers.h"

namespace {

void torch_threads(const benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  torch::set_num_threads(
      n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

void BM_Torch_Chain8(benchmark::State& state) {
  torch_threads(state);
  torch::NoGradGuard no_grad;
  at::Tensor x = torch::randn({int64_t{1} << 24});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::bench::chain8(x));
}
BENCHMARK(BM_Torch_Chain8)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Torch_CustomConv2d(benchmark::State& state) {
  torch_threads(state);
  torch::NoGradGuard no_grad;
  at::Tensor x = torch::randn({1, 3, 512, 512}), w = torch::randn({16, 3, 3, 3}) * 0.2,
             b = torch::randn({16});
  for (auto _ : state) benchmark::DoNotOptimize(kiln::bench::per_channel_conv2d(x, w, b));
}
BENCHMARK(BM_Torch_CustomConv2d)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Torch_Conv2d(benchmark::State& state) {
  torch_threads(state);
  torch::NoGradGuard no_grad;
  at::Tensor x = torch::randn({1, 3, 512, 512}), w = torch::randn({16, 3, 3, 3}) * 0.2,
             b = torch::randn({16});
  for (auto _ : state) benchmark::DoNotOptimize(torch::conv2d(x, w, b));
}
BENCHMARK(BM_Torch_Conv2d)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Torch_LstmSequence(benchmark::State& state) {
  torch_threads(state);
  torch::NoGradGuard no_grad;
  const int64_t hidden = state.range(1);
  at::Tensor x = torch::randn({32, 8, hidden}), h = torch::zeros({8, hidden}),
             c = torch::zeros({8, hidden}), w_ih = torch::randn({4 * hidden, hidden}) * 0.1,
             w_hh = torch::randn({4 * hidden, hidden}) * 0.1,
             b_ih = torch::randn({4 * hidden}) * 0.1, b_hh = torch::randn({4 * hidden}) * 0.1;
  for (auto _ : state)
    benchmark::DoNotOptimize(kiln::bench::lstm_sequence(x, h, c, w_ih, w_hh, b_ih, b_hh));
}
BENCHMARK(BM_Torch_LstmSequence)
    ->Args({0, 64})
    ->Args({0, 256})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
