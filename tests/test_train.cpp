// End-to-end training tests on synthetic data (CI has no dataset): an MLP on three Gaussian
// blobs and a small CNN on images with a bright bar that is either horizontal or vertical. The
// loss must fall well below its start and the accuracy must reach a high level, in well under
// a second each.
#include <cmath>

#include "nn_test_util.h"

namespace kiln {
namespace {

namespace F = nn::functional;

struct MlpImpl : nn::Module {
  MlpImpl() {
    fc1 = register_module("fc1", nn::Linear(2, 32));
    fc2 = register_module("fc2", nn::Linear(32, 3));
  }
  Tensor forward(const Tensor& x) { return fc2(kiln::relu(fc1(x))); }
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
KILN_MODULE(Mlp);

TEST(Train, MlpLossFallsOnBlobs) {
  manual_seed(0);
  const int64_t n = 300;
  Tensor labels = kiln::arange(n) % 3;
  Tensor centers = kiln::tensor({{2.0f, 0.0f}, {-1.0f, 1.7f}, {-1.0f, -1.7f}});
  Tensor x = centers.index_select(0, labels) + kiln::randn({n, 2}) * 0.5;
  Mlp model;
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  double first = 0, last = 0;
  for (int epoch = 0; epoch < 60; ++epoch) {
    opt.zero_grad();
    Tensor loss = F::cross_entropy(model(x), labels);
    loss.backward();
    opt.step();
    if (epoch == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, 0.25 * first);
  NoGradGuard no_grad;
  const double acc = (model(x).argmax(1) == labels).to(kFloat).mean().item<double>();
  EXPECT_GT(acc, 0.95);
}

TEST(Train, CnnLossFallsOnBars) {
  manual_seed(1);
  const int64_t n = 64;
  Tensor images = kiln::randn({n, 1, 8, 8}) * 0.3;
  Tensor labels = kiln::arange(n) % 2;  // 0: horizontal bar, 1: vertical bar
  {
    NoGradGuard no_grad;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = 1 + (i / 2) % 6;
      Tensor img = images[i][0];
      if (i % 2 == 0)
        img[pos].add_(2.0);
      else
        img.select(1, pos).add_(2.0);
    }
  }
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)), nn::ReLU(),
                       nn::MaxPool2d(2), nn::Flatten(), nn::Linear(4 * 4 * 4, 2));
  optim::Adam opt(model->parameters(), optim::AdamOptions(0.02));
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    Tensor loss = F::cross_entropy(model(images), labels);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, 0.2 * first);
  NoGradGuard no_grad;
  EXPECT_GT((model(images).argmax(1) == labels).to(kFloat).mean().item<double>(), 0.95);
}

}  // namespace
}  // namespace kiln
