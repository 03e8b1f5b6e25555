// The hand-written layers of the JIT benchmarks, written once for Kiln and libtorch: every call
// is unqualified and found by argument-dependent lookup (kiln::matmul for kiln::Tensor,
// at::matmul for at::Tensor), so bench_jit.cpp and bench_jit_torch.cpp time the same code.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::bench {

/// The seed article's Conv2d: im2col, then one [1, C*k*k] x [N, C*k*k, L] matmul per output
/// channel plus its bias, concatenated (no padding, stride 1).
template <typename Tensor>
Tensor per_channel_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const int64_t n = x.size(0), out = weight.size(0), k = weight.size(2);
  const int64_t h = x.size(2) - k + 1, w = x.size(3) - k + 1;
  Tensor cols = im2col(x, {k, k}, {1, 1}, {0, 0}, {1, 1});  // F::unfold: [N, C*k*k, L]
  std::vector<Tensor> channels;
  for (int64_t o = 0; o < out; ++o)
    channels.push_back(matmul(weight[o].view({1, -1}), cols) + bias[o]);
  return cat(channels, 1).view({n, out, h, w});
}

/// An LSTM cell written by hand (gates by two linear maps, sigmoid/tanh elementwise) run over a
/// sequence x [T, B, I] from state (h, c); returns the last hidden state.
template <typename Tensor>
Tensor lstm_sequence(const Tensor& x, Tensor h, Tensor c, const Tensor& w_ih, const Tensor& w_hh,
                     const Tensor& b_ih, const Tensor& b_hh) {
  for (int64_t t = 0; t < x.size(0); ++t) {
    Tensor gates = linear(x[t], w_ih, b_ih) + linear(h, w_hh, b_hh);
    std::vector<Tensor> g = gates.chunk(4, 1);
    Tensor i = sigmoid(g[0]), f = sigmoid(g[1]), cell = tanh(g[2]), o = sigmoid(g[3]);
    c = f * c + i * cell;
    h = o * tanh(c);
  }
  return h;
}

/// The 8-op elementwise chain: x*2, +1, relu, *x, sigmoid, -0.5, tanh, +x.
template <typename Tensor>
Tensor chain8(const Tensor& x) {
  Tensor a = relu(x * 2 + 1) * x;
  return tanh(sigmoid(a) - 0.5) + x;
}

/// A 22-op graph for compile times: elementwise ops, a broadcast and two reductions.
template <typename Tensor>
Tensor graph20(const Tensor& x, const Tensor& y) {
  Tensor a = exp(x * 0.5) + y;               // ops so far: 3
  Tensor b = tanh(a) * sigmoid(x) - 0.25;    // 7
  Tensor m = amax(b, {1}, true);             // 8
  Tensor e = exp(b - m);                     // 10
  Tensor s = e / sum(e, {1}, true);          // 12
  Tensor r = relu(s * 3 - 1) + abs(x);       // 17
  return sqrt(r * r + 1) / 2 + 1;            // 22
}

}  // namespace kiln::bench
