// One training step (zero_grad, forward, cross entropy, backward, Adam step) of the MLP and the
// CNN of examples/train_digits, on random 8x8 "digits", at batch 32 (the example's) and 256.
// With libtorch found, bench_train_torch.cpp adds the same steps as BM_Torch_* in this binary.
// Run: bench_train --benchmark_repetitions=5 --benchmark_min_time=0.3
#include <benchmark/benchmark.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <thread>

namespace {

namespace nn = kiln::nn;
namespace F = kiln::nn::functional;

int num_cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

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

void train_step(benchmark::State& state, nn::Sequential model, kiln::Tensor x) {
  kiln::set_num_threads(num_cores());
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
BENCHMARK(BM_TrainStepMLP)->Arg(32)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_TrainStepCNN(benchmark::State& state) {
  kiln::manual_seed(0);
  train_step(state, make_cnn(), kiln::rand({state.range(0), 1, 8, 8}));
}
BENCHMARK(BM_TrainStepCNN)->Arg(32)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
