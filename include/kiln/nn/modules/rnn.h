// Recurrent modules: LSTM and GRU (multi-layer, bidirectional, batch_first, inter-layer
// dropout) and LSTMCell/GRUCell, with libtorch's parameter names (weight_ih_l0, ...), gate
// order and initialisation. Each step is one matmul over all gates, then chunk.
#pragma once

#include <optional>
#include <tuple>
#include <vector>

#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

/// Shared by LSTM and GRU: per layer and direction weight_ih_l{k}[_reverse] [G*H, in],
/// weight_hh_l{k} [G*H, H], bias_ih_l{k}, bias_hh_l{k} [G*H] (G = 4 gates for LSTM, 3 for
/// GRU), all uniform in +-1/sqrt(hidden_size).
template <typename Derived>
class RNNImplBase : public Cloneable<Derived> {
 public:
  RNNImplBase(const RNNOptionsBase& options, int64_t gates, const char* name);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  /// Every weight and bias in registration order (libtorch's all_weights()).
  std::vector<Tensor> all_weights() const;

  RNNOptionsBase options_base;

 protected:
  struct LayerWeights {
    Tensor w_ih, w_hh, b_ih, b_hh;
  };
  /// input as [seq, batch, feature] (batch_first and unbatched inputs converted), checked.
  Tensor prepare_input(const Tensor& input, bool& unbatched) const;
  /// [layers * directions, batch, hidden] initial state: hx, or zeros when undefined.
  Tensor prepare_state(const Tensor& hx, const Tensor& input, bool unbatched,
                       const char* what) const;
  const LayerWeights& weights(int64_t layer, int64_t direction) const {
    return flat_[static_cast<size_t>(layer * directions() + direction)];
  }
  int64_t directions() const { return options_base.bidirectional() ? 2 : 1; }

  std::vector<LayerWeights> flat_;
  int64_t gates_;
  const char* kind_;
};

/// Long short-term memory. forward(input, (h0, c0)) returns (output, (h_n, c_n)): output
/// [seq, batch, directions * hidden] ([batch, seq, ...] with batch_first), h_n and c_n
/// [layers * directions, batch, hidden]. Gates i, f, g, o.
class LSTMImpl : public RNNImplBase<LSTMImpl> {
 public:
  LSTMImpl(int64_t input_size, int64_t hidden_size)
      : LSTMImpl(LSTMOptions(input_size, hidden_size)) {}
  explicit LSTMImpl(const LSTMOptions& options);
  std::tuple<Tensor, std::tuple<Tensor, Tensor>> forward(
      const Tensor& input, std::optional<std::tuple<Tensor, Tensor>> hx_opt = {});
  LSTMOptions options;
};
KILN_MODULE(LSTM);

/// Gated recurrent unit. forward(input, h0) returns (output, h_n). Gates r, z, n.
class GRUImpl : public RNNImplBase<GRUImpl> {
 public:
  GRUImpl(int64_t input_size, int64_t hidden_size) : GRUImpl(GRUOptions(input_size, hidden_size)) {}
  explicit GRUImpl(const GRUOptions& options);
  std::tuple<Tensor, Tensor> forward(const Tensor& input, Tensor hx = {});
  GRUOptions options;
};
KILN_MODULE(GRU);

/// Shared by the cells: weight_ih [G*H, in], weight_hh [G*H, H], bias_ih, bias_hh [G*H].
template <typename Derived>
class RNNCellImplBase : public Cloneable<Derived> {
 public:
  RNNCellImplBase(const RNNCellOptionsBase& options, int64_t gates, const char* name);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  RNNCellOptionsBase options_base;
  Tensor weight_ih;
  Tensor weight_hh;
  Tensor bias_ih;
  Tensor bias_hh;

 protected:
  /// input as [batch, input_size] (unbatched [input_size] gets a batch dim), checked.
  Tensor prepare_input(const Tensor& input, bool& unbatched) const;
  Tensor prepare_state(const Tensor& hx, const Tensor& input, bool unbatched,
                       const char* what) const;
  int64_t gates_;
  const char* kind_;
};

/// One LSTM step: forward(input, (h, c)) returns (h', c').
class LSTMCellImpl : public RNNCellImplBase<LSTMCellImpl> {
 public:
  LSTMCellImpl(int64_t input_size, int64_t hidden_size)
      : LSTMCellImpl(LSTMCellOptions(input_size, hidden_size)) {}
  explicit LSTMCellImpl(const LSTMCellOptions& options);
  std::tuple<Tensor, Tensor> forward(const Tensor& input,
                                     std::optional<std::tuple<Tensor, Tensor>> hx_opt = {});
  LSTMCellOptions options;
};
KILN_MODULE(LSTMCell);

/// One GRU step: forward(input, h) returns h'.
class GRUCellImpl : public RNNCellImplBase<GRUCellImpl> {
 public:
  GRUCellImpl(int64_t input_size, int64_t hidden_size)
      : GRUCellImpl(GRUCellOptions(input_size, hidden_size)) {}
  explicit GRUCellImpl(const GRUCellOptions& options);
  Tensor forward(const Tensor& input, Tensor hx = {});
  GRUCellOptions options;
};
KILN_MODULE(GRUCell);

}  // namespace kiln::nn
