// LSTM, GRU and their cells as composites: per layer and direction the input projection of the
// whole sequence is one matmul, and each time step one addmm for the recurrent projection of
// all gates, then chunk and the gate nonlinearities.
#include "kiln/nn/modules/rnn.h"

#include <cmath>

#include "kiln/nn/functional.h"
#include "kiln/nn/init.h"

namespace kiln::nn {

namespace {

// One LSTM step from precomputed input gates xg [N, 4H] (biases included): (h', c').
std::pair<Tensor, Tensor> lstm_step(const Tensor& xg, const Tensor& h, const Tensor& c,
                                    const Tensor& w_hh) {
  Tensor gates = kiln::addmm(xg, h, w_hh.t());
  std::vector<Tensor> g = gates.chunk(4, 1);
  Tensor i = kiln::sigmoid(g[0]), f = kiln::sigmoid(g[1]);
  Tensor cell = kiln::tanh(g[2]), o = kiln::sigmoid(g[3]);
  Tensor c2 = f * c + i * cell;
  return {o * kiln::tanh(c2), c2};
}

// One GRU step from input gates xg [N, 3H] (b_ih included) and recurrent gates hg [N, 3H]
// (b_hh included): h' = n + z (h - n).
Tensor gru_step(const Tensor& xg, const Tensor& hg, const Tensor& h) {
  const int64_t hidden = h.size(1);
  Tensor rz = kiln::sigmoid(xg.narrow(1, 0, 2 * hidden) + hg.narrow(1, 0, 2 * hidden));
  Tensor r = rz.narrow(1, 0, hidden), z = rz.narrow(1, hidden, hidden);
  Tensor n = kiln::tanh(xg.narrow(1, 2 * hidden, hidden) + r * hg.narrow(1, 2 * hidden, hidden));
  return n + z * (h - n);
}

std::string bool_str(bool b) { return b ? "true" : "false"; }

}  // namespace

// ---- RNNImplBase -----------------------------------------------------------------------------

template <typename Derived>
RNNImplBase<Derived>::RNNImplBase(const RNNOptionsBase& options, int64_t gates, const char* name)
    : options_base(options), gates_(gates), kind_(name) {
  RNNImplBase::reset();
}

template <typename Derived>
void RNNImplBase<Derived>::reset() {
  const auto& o = options_base;
  KILN_CHECK(o.input_size() > 0 && o.hidden_size() > 0 && o.num_layers() > 0,
             "[{}] got input_size={}, hidden_size={}, num_layers={}, expected positive values",
             kind_, o.input_size(), o.hidden_size(), o.num_layers());
  KILN_CHECK(o.dropout() >= 0.0 && o.dropout() <= 1.0,
             "[{}] got dropout={}, expected a probability in [0, 1]", kind_, o.dropout());
  flat_.clear();
  const int64_t h = o.hidden_size(), g = gates_ * h;
  for (int64_t layer = 0; layer < o.num_layers(); ++layer) {
    for (int64_t dir = 0; dir < directions(); ++dir) {
      const int64_t in = layer == 0 ? o.input_size() : h * directions();
      const std::string suffix = fmt::format("_l{}{}", layer, dir == 1 ? "_reverse" : "");
      LayerWeights w;
      w.w_ih = this->register_parameter("weight_ih" + suffix, kiln::empty({g, in}));
      w.w_hh = this->register_parameter("weight_hh" + suffix, kiln::empty({g, h}));
      if (o.bias()) {
        w.b_ih = this->register_parameter("bias_ih" + suffix, kiln::empty({g}));
        w.b_hh = this->register_parameter("bias_hh" + suffix, kiln::empty({g}));
      }
      flat_.push_back(w);
    }
  }
  reset_parameters();
}

template <typename Derived>
void RNNImplBase<Derived>::reset_parameters() {
  const double bound = 1.0 / std::sqrt(static_cast<double>(options_base.hidden_size()));
  for (Tensor& p : all_weights()) init::uniform_(p, -bound, bound);
}

template <typename Derived>
std::vector<Tensor> RNNImplBase<Derived>::all_weights() const {
  std::vector<Tensor> out;
  for (const LayerWeights& w : flat_)
    for (const Tensor* t : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh})
      if (t->defined()) out.push_back(*t);
  return out;
}

template <typename Derived>
void RNNImplBase<Derived>::pretty_print(std::ostream& s) const {
  const auto& o = options_base;
  s << "kiln::nn::" << kind_ << "(input_size=" << o.input_size()
    << ", hidden_size=" << o.hidden_size() << ", num_layers=" << o.num_layers()
    << ", bias=" << bool_str(o.bias()) << ", batch_first=" << bool_str(o.batch_first())
    << ", dropout=" << o.dropout() << ", bidirectional=" << bool_str(o.bidirectional()) << ")";
}

template <typename Derived>
Tensor RNNImplBase<Derived>::prepare_input(const Tensor& input, bool& unbatched) const {
  const auto& o = options_base;
  KILN_CHECK(input.defined(), "[{}] got an undefined input, expected a tensor", kind_);
  KILN_CHECK((input.dim() == 3 || input.dim() == 2) && input.size(-1) == o.input_size(),
             "[{}] got input sizes {}, expected {} (or unbatched [seq_len, {}])", kind_,
             shape_str(input.sizes()),
             o.batch_first() ? fmt::format("[batch, seq_len, {}]", o.input_size())
                             : fmt::format("[seq_len, batch, {}]", o.input_size()),
             o.input_size());
  KILN_CHECK(input.is_floating_point(), "[{}] got input dtype {}, expected floating point", kind_,
             dtype_name(input.dtype()));
  unbatched = input.dim() == 2;
  if (unbatched) return input.unsqueeze(1);
  return o.batch_first() ? input.transpose(0, 1) : input;
}

template <typename Derived>
Tensor RNNImplBase<Derived>::prepare_state(const Tensor& hx, const Tensor& input, bool unbatched,
                                           const char* what) const {
  const int64_t layers = options_base.num_layers() * directions();
  const int64_t batch = input.size(1), h = options_base.hidden_size();
  if (!hx.defined()) return kiln::zeros({layers, batch, h}, input.options());
  Tensor s = unbatched && hx.dim() == 2 ? hx.unsqueeze(1) : hx;
  KILN_CHECK(s.dim() == 3 && s.size(0) == layers && s.size(1) == batch && s.size(2) == h,
             "[{}] got {} sizes {}, expected [{}, {}, {}] (num_layers * directions, batch, "
             "hidden_size){}",
             kind_, what, shape_str(hx.sizes()), layers, batch, h,
             unbatched ? fmt::format(" or unbatched [{}, {}]", layers, h) : "");
  return s;
}

// ---- LSTM ------------------------------------------------------------------------------------

LSTMImpl::LSTMImpl(const LSTMOptions& options)
    : RNNImplBase(options, 4, "LSTM"), options(options) {}

std::tuple<Tensor, std::tuple<Tensor, Tensor>> LSTMImpl::forward(
    const Tensor& input, std::optional<std::tuple<Tensor, Tensor>> hx_opt) {
  bool unbatched = false;
  Tensor x = prepare_input(input, unbatched);
  Tensor h0 = prepare_state(hx_opt ? std::get<0>(*hx_opt) : Tensor(), x, unbatched, "h0");
  Tensor c0 = prepare_state(hx_opt ? std::get<1>(*hx_opt) : Tensor(), x, unbatched, "c0");
  const int64_t steps = x.size(0);
  std::vector<Tensor> h_n, c_n;
  for (int64_t layer = 0; layer < options.num_layers(); ++layer) {
    std::vector<Tensor> dir_out;
    for (int64_t dir = 0; dir < directions(); ++dir) {
      const LayerWeights& w = weights(layer, dir);
      const int64_t idx = layer * directions() + dir;
      // Both biases fold into the one input projection of the whole sequence.
      Tensor xg = kiln::linear(x, w.w_ih, w.b_ih.defined() ? w.b_ih + w.b_hh : Tensor());
      Tensor h = h0[idx], c = c0[idx];
      std::vector<Tensor> outs(static_cast<size_t>(steps));
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t t = dir == 0 ? s : steps - 1 - s;
        std::tie(h, c) = lstm_step(xg[t], h, c, w.w_hh);
        outs[static_cast<size_t>(t)] = h;
      }
      h_n.push_back(h);
      c_n.push_back(c);
      dir_out.push_back(steps > 0
                            ? kiln::stack(outs, 0)
                            : kiln::empty({0, x.size(1), options.hidden_size()}, x.options()));
    }
    x = dir_out.size() == 1 ? dir_out[0] : kiln::cat(dir_out, 2);
    if (options.dropout() > 0 && is_training() && layer + 1 < options.num_layers())
      x = functional::dropout(x, functional::DropoutFuncOptions().p(options.dropout()));
  }
  Tensor hn = kiln::stack(h_n, 0), cn = kiln::stack(c_n, 0);
  if (unbatched) return {x.squeeze(1), {hn.squeeze(1), cn.squeeze(1)}};
  if (options.batch_first()) x = x.transpose(0, 1);
  return {x, {hn, cn}};
}

// ---- GRU -------------------------------------------------------------------------------------

GRUImpl::GRUImpl(const GRUOptions& options) : RNNImplBase(options, 3, "GRU"), options(options) {}

std::tuple<Tensor, Tensor> GRUImpl::forward(const Tensor& input, Tensor hx) {
  bool unbatched = false;
  Tensor x = prepare_input(input, unbatched);
  Tensor h0 = prepare_state(hx, x, unbatched, "hx");
  const int64_t steps = x.size(0);
  std::vector<Tensor> h_n;
  for (int64_t layer = 0; layer < options.num_layers(); ++layer) {
    std::vector<Tensor> dir_out;
    for (int64_t dir = 0; dir < directions(); ++dir) {
      const LayerWeights& w = weights(layer, dir);
      Tensor xg = kiln::linear(x, w.w_ih, w.b_ih);
      Tensor h = h0[layer * directions() + dir];
      std::vector<Tensor> outs(static_cast<size_t>(steps));
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t t = dir == 0 ? s : steps - 1 - s;
        h = gru_step(xg[t], kiln::linear(h, w.w_hh, w.b_hh), h);
        outs[static_cast<size_t>(t)] = h;
      }
      h_n.push_back(h);
      dir_out.push_back(steps > 0
                            ? kiln::stack(outs, 0)
                            : kiln::empty({0, x.size(1), options.hidden_size()}, x.options()));
    }
    x = dir_out.size() == 1 ? dir_out[0] : kiln::cat(dir_out, 2);
    if (options.dropout() > 0 && is_training() && layer + 1 < options.num_layers())
      x = functional::dropout(x, functional::DropoutFuncOptions().p(options.dropout()));
  }
  Tensor hn = kiln::stack(h_n, 0);
  if (unbatched) return {x.squeeze(1), hn.squeeze(1)};
  if (options.batch_first()) x = x.transpose(0, 1);
  return {x, hn};
}

template class RNNImplBase<LSTMImpl>;
template class RNNImplBase<GRUImpl>;

// ---- cells -----------------------------------------------------------------------------------

template <typename Derived>
RNNCellImplBase<Derived>::RNNCellImplBase(const RNNCellOptionsBase& options, int64_t gates,
                                          const char* name)
    : options_base(options), gates_(gates), kind_(name) {
  RNNCellImplBase::reset();
}

template <typename Derived>
void RNNCellImplBase<Derived>::reset() {
  const auto& o = options_base;
  KILN_CHECK(o.input_size() > 0 && o.hidden_size() > 0,
             "[{}] got input_size={} and hidden_size={}, expected positive values", kind_,
             o.input_size(), o.hidden_size());
  const int64_t g = gates_ * o.hidden_size();
  weight_ih = this->register_parameter("weight_ih", kiln::empty({g, o.input_size()}));
  weight_hh = this->register_parameter("weight_hh", kiln::empty({g, o.hidden_size()}));
  bias_ih = this->register_parameter("bias_ih", o.bias() ? kiln::empty({g}) : Tensor(), o.bias());
  bias_hh = this->register_parameter("bias_hh", o.bias() ? kiln::empty({g}) : Tensor(), o.bias());
  reset_parameters();
}

template <typename Derived>
void RNNCellImplBase<Derived>::reset_parameters() {
  const double bound = 1.0 / std::sqrt(static_cast<double>(options_base.hidden_size()));
  for (Tensor* t : {&weight_ih, &weight_hh, &bias_ih, &bias_hh})
    if (t->defined()) init::uniform_(*t, -bound, bound);
}

template <typename Derived>
void RNNCellImplBase<Derived>::pretty_print(std::ostream& s) const {
  s << "kiln::nn::" << kind_ << "(" << options_base.input_size() << ", "
    << options_base.hidden_size() << (options_base.bias() ? "" : ", bias=false") << ")";
}

template <typename Derived>
Tensor RNNCellImplBase<Derived>::prepare_input(const Tensor& input, bool& unbatched) const {
  KILN_CHECK(input.defined(), "[{}] got an undefined input, expected a tensor", kind_);
  KILN_CHECK((input.dim() == 1 || input.dim() == 2) && input.size(-1) == options_base.input_size(),
             "[{}] got input sizes {}, expected [batch, {}] or [{}]", kind_,
             shape_str(input.sizes()), options_base.input_size(), options_base.input_size());
  unbatched = input.dim() == 1;
  return unbatched ? input.unsqueeze(0) : input;
}

template <typename Derived>
Tensor RNNCellImplBase<Derived>::prepare_state(const Tensor& hx, const Tensor& input,
                                               bool unbatched, const char* what) const {
  const int64_t batch = input.size(0), h = options_base.hidden_size();
  if (!hx.defined()) return kiln::zeros({batch, h}, input.options());
  Tensor s = unbatched && hx.dim() == 1 ? hx.unsqueeze(0) : hx;
  KILN_CHECK(s.dim() == 2 && s.size(0) == batch && s.size(1) == h,
             "[{}] got {} sizes {}, expected [{}, {}] (batch, hidden_size)", kind_, what,
             shape_str(hx.sizes()), batch, h);
  return s;
}

LSTMCellImpl::LSTMCellImpl(const LSTMCellOptions& options)
    : RNNCellImplBase(options, 4, "LSTMCell"), options(options) {}

std::tuple<Tensor, Tensor> LSTMCellImpl::forward(const Tensor& input,
                                                 std::optional<std::tuple<Tensor, Tensor>> hx_opt) {
  bool unbatched = false;
  Tensor x = prepare_input(input, unbatched);
  Tensor h = prepare_state(hx_opt ? std::get<0>(*hx_opt) : Tensor(), x, unbatched, "h");
  Tensor c = prepare_state(hx_opt ? std::get<1>(*hx_opt) : Tensor(), x, unbatched, "c");
  Tensor xg = kiln::linear(x, weight_ih, bias_ih.defined() ? bias_ih + bias_hh : Tensor());
  auto [h2, c2] = lstm_step(xg, h, c, weight_hh);
  if (unbatched) return {h2.squeeze(0), c2.squeeze(0)};
  return {h2, c2};
}

GRUCellImpl::GRUCellImpl(const GRUCellOptions& options)
    : RNNCellImplBase(options, 3, "GRUCell"), options(options) {}

Tensor GRUCellImpl::forward(const Tensor& input, Tensor hx) {
  bool unbatched = false;
  Tensor x = prepare_input(input, unbatched);
  Tensor h = prepare_state(hx, x, unbatched, "hx");
  Tensor h2 = gru_step(kiln::linear(x, weight_ih, bias_ih), kiln::linear(h, weight_hh, bias_hh), h);
  return unbatched ? h2.squeeze(0) : h2;
}

template class RNNCellImplBase<LSTMCellImpl>;
template class RNNCellImplBase<GRUCellImpl>;

}  // namespace kiln::nn
