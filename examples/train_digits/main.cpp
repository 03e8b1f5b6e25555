// Trains an MLP and a small CNN on the 8x8 handwritten digits (sklearn's digits.csv.gz from
// Debian's python3-sklearn) with Kiln's nn and optim layers, printing per-epoch loss and test
// accuracy with a progress bar, then saves and reloads the CNN to check the checkpoint.
//   train_digits [--model mlp|cnn|both] [--epochs N] [--data PATH] [--seed S] [--threads T]
#include <kiln/kiln.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "digits.h"

namespace nn = kiln::nn;
namespace optim = kiln::optim;
namespace F = kiln::nn::functional;

// 64 -> 128 -> 64 -> 10 with ReLU and dropout.
struct MlpImpl : nn::Module {
  MlpImpl() {
    layers = register_module("layers",
                             nn::Sequential(nn::Linear(64, 128), nn::ReLU(), nn::Dropout(0.1),
                                            nn::Linear(128, 64), nn::ReLU(), nn::Linear(64, 10)));
  }
  kiln::Tensor forward(const kiln::Tensor& x) { return layers->forward(x.view({-1, 64})); }
  nn::Sequential layers{nullptr};
};
KILN_MODULE(Mlp);

// [N, 1, 8, 8] -> conv 16 -> pool -> conv 32 -> pool -> [N, 32 * 2 * 2] -> 10.
struct CnnImpl : nn::Module {
  CnnImpl() {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1)));
    bn1 = register_module("bn1", nn::BatchNorm2d(16));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)));
    fc = register_module("fc", nn::Linear(32 * 2 * 2, 10));
  }
  kiln::Tensor forward(const kiln::Tensor& x) {
    kiln::Tensor h = x.view({-1, 1, 8, 8});
    h = F::max_pool2d(kiln::relu(bn1(conv1(h))), F::MaxPool2dFuncOptions(2));
    h = F::max_pool2d(kiln::relu(conv2(h)), F::MaxPool2dFuncOptions(2));
    return fc(h.flatten(1));
  }
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::Linear fc{nullptr};
};
KILN_MODULE(Cnn);

namespace {

struct Args {
  std::string model = "both";
  std::string data = digits::kDefaultPath;
  int epochs = 20;
  uint64_t seed = 0;
  int threads = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--model")
      a.model = value();
    else if (k == "--epochs")
      a.epochs = std::stoi(value());
    else if (k == "--data")
      a.data = value();
    else if (k == "--seed")
      a.seed = std::stoull(value());
    else if (k == "--threads")
      a.threads = std::stoi(value());
    else
      throw std::invalid_argument("unknown argument " + k +
                                  " (use --model mlp|cnn|both, --epochs N, --data PATH, "
                                  "--seed S, --threads T)");
  }
  if (a.model != "mlp" && a.model != "cnn" && a.model != "both")
    throw std::invalid_argument("--model must be mlp, cnn or both, got " + a.model);
  return a;
}

// "[=========>          ]" of width 24 for done / total.
std::string bar(int64_t done, int64_t total) {
  const int width = 24;
  const int filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
  std::string s = "[";
  for (int i = 0; i < width; ++i) s += i < filled ? '=' : (i == filled ? '>' : ' ');
  return s + "]";
}

double accuracy(nn::Module& model, const std::function<kiln::Tensor(const kiln::Tensor&)>& fwd,
                const digits::Dataset& data) {
  kiln::NoGradGuard no_grad;
  model.eval();
  kiln::Tensor pred = fwd(data.images).argmax(1);
  model.train();
  return (pred == data.labels).to(kiln::kFloat).mean().item<double>();
}

// Trains with AdamW and cosine annealing; returns the final test accuracy.
template <typename Model>
double train(const std::string& name, Model& model, const digits::Dataset& train_set,
             const digits::Dataset& test_set, int epochs, uint64_t seed, double lr) {
  std::printf("\n== %s: %zu parameters ==\n", name.c_str(), static_cast<size_t>([&] {
                int64_t n = 0;
                for (const auto& p : model->parameters()) n += p.numel();
                return n;
              }()));
  optim::AdamW opt(model->parameters(), optim::AdamWOptions(lr).weight_decay(1e-4));
  optim::CosineAnnealingLR sched(opt, static_cast<unsigned>(epochs));
  digits::DataLoader loader(train_set, 32, /*shuffle=*/true, seed);
  const bool tty = isatty(fileno(stdout)) != 0;
  auto forward = [&](const kiln::Tensor& x) { return model(x); };
  double acc = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    loader.reset();
    digits::Dataset batch;
    double loss_sum = 0;
    int64_t seen = 0, b = 0;
    while (loader.next(batch)) {
      opt.zero_grad();
      kiln::Tensor loss = F::cross_entropy(model(batch.images), batch.labels,
                                           F::CrossEntropyFuncOptions().label_smoothing(0.05));
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>() * static_cast<double>(batch.size());
      seen += batch.size();
      ++b;
      if (tty) {
        std::printf("\repoch %2d/%d %s %3lld/%lld  loss %.4f", epoch, epochs,
                    bar(b, loader.num_batches()).c_str(), static_cast<long long>(b),
                    static_cast<long long>(loader.num_batches()), loss_sum / seen);
        std::fflush(stdout);
      }
    }
    sched.step();
    acc = accuracy(*model, forward, test_set);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%sepoch %2d/%d %s  loss %.4f  test accuracy %5.2f%%  (%.2f s)\n", tty ? "\r" : "",
                epoch, epochs, bar(1, 1).c_str(), loss_sum / seen, 100 * acc, secs);
  }
  return acc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args args = parse(argc, argv);
    if (args.threads > 0) kiln::set_num_threads(args.threads);
    digits::Dataset all = digits::load(args.data);
    auto [train_set, test_set] = digits::train_test_split(all, 0.2, args.seed);
    std::printf("digits: %lld images (%lld train, %lld test) from %s\n",
                static_cast<long long>(all.size()), static_cast<long long>(train_set.size()),
                static_cast<long long>(test_set.size()), args.data.c_str());
    kiln::manual_seed(args.seed);
    double mlp_acc = -1, cnn_acc = -1;
    if (args.model != "cnn") {
      Mlp mlp;
      mlp_acc = train("MLP", mlp, train_set, test_set, args.epochs, args.seed, 2e-3);
    }
    if (args.model != "mlp") {
      Cnn cnn;
      cnn_acc = train("CNN", cnn, train_set, test_set, args.epochs, args.seed, 3e-3);
      // The checkpoint round trip: a fresh model loaded from the file predicts the same.
      const std::string path = "train_digits_cnn.kiln";
      kiln::save(cnn, path);
      Cnn restored;
      kiln::load(restored, path);
      restored->eval();
      cnn->eval();
      kiln::NoGradGuard no_grad;
      const bool same = kiln::equal(cnn(test_set.images), restored(test_set.images));
      std::printf("\nsaved the CNN to %s and loaded it back: %s\n", path.c_str(),
                  same ? "identical predictions" : "PREDICTIONS DIFFER");
      std::remove(path.c_str());
      if (!same) return 1;
    }
    std::printf("\nfinal test accuracy:");
    if (mlp_acc >= 0) std::printf("  MLP %.2f%%", 100 * mlp_acc);
    if (cnn_acc >= 0) std::printf("  CNN %.2f%%", 100 * cnn_acc);
    std::printf("\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_digits: %s\n", e.what());
    return 1;
  }
}
