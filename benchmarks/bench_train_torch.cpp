// libtorch baselines for bench_train.cpp: the same MLP and CNN training steps through Debian's
// libtorch (eager), linked into bench_train when find_package(Torch) succeeds.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

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

void train_step(benchmark::State& state, nn::Sequential model, torch::Tensor x) {
  torch::set_num_threads(num_cores());
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
BENCHMARK(BM_Torch_TrainStepMLP)->Arg(32)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_Torch_TrainStepCNN(benchmark::State& state) {
  torch::manual_seed(0);
  train_step(state, make_cnn(), torch::rand({state.range(0), 1, 8, 8}));
}
BENCHMARK(BM_Torch_TrainStepCNN)->Arg(32)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
