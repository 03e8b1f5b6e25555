// One training step (zero_grad, forward, cross entropy, backward, Adam step) of the digits MLP
// and CNN (examples/train_digits) at batch 32 and 256, on 1 thread and on every core; with
// libtorch found, bench_train_torch.cpp adds the same steps as BM_Torch_* to this binary.
// Run: bench_train --benchmark_repetitions=5 --benchmark_min_time=0.3
#include <benchmark/benchmark.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <thread>

namespace {

namespace nn = kiln::nn;
namespace F = kiln::nn::functional;

nn::Sequential make_mlp() {
  return nn::Sequential(nn::Linear(64, 128), nn::ReLU(), nn::Linear(128, 64), nn::ReLU(),
                        nn::Linear(64, 10));
}

nn::Sequential make_cnn() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1)), nn::BatchNorm2d(16),
                        nn::ReLU(), nn::MaxPool2d(2),
                        nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)), nn::ReLU(),
                        nn::MaxPool2d(2), nn::Flatten(), nn::Linear(128, 10));
}

// {batch, threads}: the example's batch and a larger one, on one thread and on every core.
void sizes(benchmark::internal::Benchmark* b) {
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  for (int64_t batch : {32, 256})
    for (int64_t threads : {int64_t{1}, cores}) b->Args({batch, threads});
  b->ArgNames({"batch", "threads"});
}

void train_step(benchmark::State& state, nn::Sequential model, kiln::Tensor x) {
  kiln::set_num_threads(static_cast<int>(state.range(1)));
  kiln::Tensor y = kiln::randint(10, {x.size(0)});
  kiln::optim::Adam opt(model->parameters(), kiln::optim::AdamOptions(1e-3));
  for (auto _ : state) {
    opt.zero_grad();
    kiln::Tensor loss = F::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * x.size(0));
}

void BM_TrainStepMLP(benchmark::State& state) {
  kiln::manual_seed(0);
  train_step(state, make_mlp(), kiln::rand({state.range(0), 64}));
}
BENCHMARK(BM_TrainStepMLP)->Apply(sizes)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_TrainStepCNN(benchmark::State& state) {
  kiln::manual_seed(0);
  train_step(state, make_cnn(), kiln::rand({state.range(0), 1, 8, 8}));
}
BENCHMARK(BM_TrainStepCNN)->Apply(sizes)->UseRealTime()->Unit(benchmark::kMicrosecond);

#define KILN_BENCH_LIB kiln
#define KILN_BENCH_NAME BM_CNNLayer
#include "cnn_layer_bench.inc"

}  // namespace
