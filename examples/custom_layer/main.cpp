// The headline in one file: a hand-written Conv2d layer (im2col by F::unfold, then one matmul
// per output channel — the seed article's layer, written the way a user writes it first) made
// fast by wrapping it in one call, kiln::jit::compile(layer). The example checks that the
// compiled layer gives eager's answers, then times both and oneDNN's conv2d.
#include <kiln/kiln.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace F = kiln::nn::functional;

// The custom layer: a plain nn::Module with a weight and a bias, no Kiln-specific code.
struct MyConv2dImpl : kiln::nn::Module {
  MyConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : out_channels(out_channels), kernel_size(kernel_size) {
    weight = register_parameter(
        "weight", kiln::randn({out_channels, in_channels, kernel_size, kernel_size}) * 0.2);
    bias = register_parameter("bias", kiln::randn({out_channels}) * 0.1);
  }

  kiln::Tensor forward(const kiln::Tensor& x) {
    const int64_t n = x.size(0), h = x.size(2) - kernel_size + 1, w = x.size(3) - kernel_size + 1;
    kiln::Tensor cols = F::unfold(x, {kernel_size, kernel_size});  // [N, C*k*k, L]
    std::vector<kiln::Tensor> channels;
    for (int64_t o = 0; o < out_channels; ++o) {
      // [1, C*k*k] @ [N, C*k*k, L] -> [N, 1, L], plus this channel's bias.
      channels.push_back(kiln::matmul(weight[o].view({1, -1}), cols) + bias[o]);
    }
    return kiln::cat(channels, 1).view({n, out_channels, h, w});
  }

  int64_t out_channels, kernel_size;
  kiln::Tensor weight, bias;
};
KILN_MODULE(MyConv2d);

template <typename Fn>
double median_ms(Fn&& fn, int reps = 9) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main() {
  kiln::manual_seed(0);
  kiln::NoGradGuard no_grad;  // inference: compiled graphs run without recording autograd
  MyConv2d conv(3, 16, 3);
  kiln::Tensor x = kiln::randn({1, 3, 512, 512});

  auto fast = kiln::jit::compile(conv);  // <- the one line

  kiln::Tensor eager = conv->forward(x);
  kiln::Tensor compiled = fast(x);  // first call: trace, optimise, generate code, cache
  const double err = (compiled - eager).abs().max().item<double>();
  std::printf("output %s, max |compiled - eager| = %.3g\n",
              fmt::format("{}", compiled.sizes()).c_str(), err);
  if (!kiln::allclose(compiled, eager, 1e-4, 1e-4)) {
    std::printf("compiled and eager disagree\n");
    return 1;
  }

  const double t_eager = median_ms([&] { conv->forward(x); });
  const double t_compiled = median_ms([&] { fast(x); });
  const double t_onednn = median_ms([&] { F::conv2d(x, conv->weight, conv->bias); });
  std::printf("eager     %8.2f ms\ncompiled  %8.2f ms  (%.1fx faster than eager)\n"
              "conv2d    %8.2f ms  (oneDNN; compiled / conv2d = %.2f)\n",
              t_eager, t_compiled, t_eager / t_compiled, t_onednn, t_compiled / t_onednn);
  std::printf("\n%s", kiln::jit::explain(fast).c_str());
  return 0;
}
