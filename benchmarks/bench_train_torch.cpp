// libtorch baselines for bench_train.cpp: the same MLP and CNN training steps through Debian's
// libtorch (eager), linked into bench_train when find_package(Torch) succeeds.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

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

void train_step(benchmark::State& state, nn::Sequential model, torch::Tensor x) {
  torch::set_num_threads(static_cast<int>(state.range(1)));
  torch::Tensor y = torch::randint(10, {x.size(0)});
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  for (auto _ : state) {
    opt.zero_grad();
    torch::Tensor loss = F::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * x.size(0));
}

void BM_Torch_TrainStepMLP(benchmark::State& state) {
  torch::manual_seed(0);
  train_step(state, make_mlp(), torch::rand({state.range(0), 64}));
}
BENCHMARK(BM_Torch_TrainStepMLP)->Apply(sizes)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_Torch_TrainStepCNN(benchmark::State& state) {
  torch::manual_seed(0);
  train_step(state, make_cnn(), torch::rand({state.range(0), 1, 8, 8}));
}
BENCHMARK(BM_Torch_TrainStepCNN)->Apply(sizes)->UseRealTime()->Unit(benchmark::kMicrosecond);

#define KILN_BENCH_LIB torch
#define KILN_BENCH_NAME BM_Torch_CNNLayer
#include "cnn_layer_bench.inc"

}  // namespace
