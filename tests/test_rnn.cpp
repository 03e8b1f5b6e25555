// Tests of LSTM, GRU, their cells and MultiheadAttention against float64 references written
// here with plain loops over the modules' own weights (multi-layer, bidirectional, batch_first,
// initial states, masks), plus gradchecks and finite-difference checks of parameter gradients.
#include <cmath>
#include <limits>

#include "nn_test_util.h"

namespace kiln {
namespace {

using testing::check_param_grads;
using testing::close;
using testing::from_values;
using testing::matvec;
using testing::random_tensor;
using testing::sigmoid_ref;
using testing::to_vector;
using Vec = std::vector<double>;

// One direction of one recurrent layer over seq [T][N][in], from state h (and c) [N][H].
struct RefWeights {
  Vec w_ih, w_hh, b_ih, b_hh;
};

RefWeights ref_weights(const nn::Module& m, const std::string& suffix, bool bias) {
  auto params = m.named_parameters();
  RefWeights w;
  w.w_ih = to_vector(params["weight_ih" + suffix]);
  w.w_hh = to_vector(params["weight_hh" + suffix]);
  if (bias) {
    w.b_ih = to_vector(params["bias_ih" + suffix]);
    w.b_hh = to_vector(params["bias_hh" + suffix]);
  }
  return w;
}

// Runs an LSTM (gates i, f, g, o) or GRU (r, z, n) direction; returns outputs [T][N][H].
std::vector<std::vector<Vec>> ref_layer(bool lstm, const std::vector<std::vector<Vec>>& seq,
                                        const RefWeights& w, int64_t H, std::vector<Vec>& h,
                                        std::vector<Vec>& c, bool reverse) {
  const int64_t T = static_cast<int64_t>(seq.size()), N = static_cast<int64_t>(h.size());
  const int64_t in = static_cast<int64_t>(seq.empty() ? 0 : seq[0][0].size());
  const int64_t G = lstm ? 4 : 3;
  std::vector<std::vector<Vec>> out(T, std::vector<Vec>(N));
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    for (int64_t n = 0; n < N; ++n) {
      Vec xg = matvec(w.w_ih, G * H, in, seq[t][n].data(), w.b_ih);
      Vec hg = matvec(w.w_hh, G * H, H, h[n].data(), w.b_hh);
      Vec hn(H);
      for (int64_t j = 0; j < H; ++j) {
        if (lstm) {
          const double i = sigmoid_ref(xg[j] + hg[j]), f = sigmoid_ref(xg[H + j] + hg[H + j]);
          const double g = std::tanh(xg[2 * H + j] + hg[2 * H + j]);
          const double o = sigmoid_ref(xg[3 * H + j] + hg[3 * H + j]);
          c[n][j] = f * c[n][j] + i * g;
          hn[j] = o * std::tanh(c[n][j]);
        } else {
          const double r = sigmoid_ref(xg[j] + hg[j]), z = sigmoid_ref(xg[H + j] + hg[H + j]);
          const double nn_ = std::tanh(xg[2 * H + j] + r * hg[2 * H + j]);
          hn[j] = (1 - z) * nn_ + z * h[n][j];
        }
      }
      h[n] = hn;
      out[t][n] = hn;
    }
  }
  return out;
}

// The whole multi-layer, maybe bidirectional network on x [T, N, in] with states [L*D, N, H].
struct RefResult {
  Vec out, h_n, c_n;
};

RefResult ref_rnn(bool lstm, const nn::Module& m, const Tensor& x, const Tensor& h0,
                  const Tensor& c0, int64_t layers, bool bidir, int64_t H, bool bias) {
  const int64_t T = x.size(0), N = x.size(1), in = x.size(2), D = bidir ? 2 : 1;
  Vec xv = to_vector(x), hv = to_vector(h0), cv = c0.defined() ? to_vector(c0) : Vec();
  std::vector<std::vector<Vec>> seq(T, std::vector<Vec>(N));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      seq[t][n] = Vec(xv.begin() + (t * N + n) * in, xv.begin() + (t * N + n + 1) * in);
  RefResult r;
  r.h_n.assign(layers * D * N * H, 0);
  r.c_n.assign(layers * D * N * H, 0);
  for (int64_t l = 0; l < layers; ++l) {
    std::vector<std::vector<std::vector<Vec>>> dir_out;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t idx = l * D + d;
      std::vector<Vec> h(N, Vec(H)), c(N, Vec(H, 0.0));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          h[n][j] = hv[(idx * N + n) * H + j];
          if (!cv.empty()) c[n][j] = cv[(idx * N + n) * H + j];
        }
      const std::string suffix = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
      dir_out.push_back(ref_layer(lstm, seq, ref_weights(m, suffix, bias), H, h, c, d == 1));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          r.h_n[(idx * N + n) * H + j] = h[n][j];
          r.c_n[(idx * N + n) * H + j] = c[n][j];
        }
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) {
        Vec cat;
        for (int64_t d = 0; d < D; ++d)
          cat.insert(cat.end(), dir_out[d][t][n].begin(), dir_out[d][t][n].end());
        seq[t][n] = cat;
      }
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) r.out.insert(r.out.end(), seq[t][n].begin(), seq[t][n].end());
  return r;
}

TEST(LSTM, TwoLayerBidirectionalMatchesReference) {
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true));
  lstm->to(kDouble);
  EXPECT_EQ(lstm->named_parameters().keys(),
            (std::vector<std::string>{
                "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
                "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1",
                "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse",
                "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"}));
  EXPECT_EQ(lstm->named_parameters()["weight_ih_l1"].sizes().vec(), (std::vector<int64_t>{16, 8}));
  Tensor x = random_tensor({5, 2, 3}, kDouble);
  Tensor h0 = random_tensor({4, 2, 4}, kDouble), c0 = random_tensor({4, 2, 4}, kDouble);
  auto [out, state] = lstm(x, std::make_tuple(h0, c0));
  auto [hn, cn] = state;
  RefResult r = ref_rnn(true, *lstm, x, h0, c0, 2, true, 4, true);
  EXPECT_TRUE(close(out, from_values(r.out, {5, 2, 8}), 1e-12, 1e-12));
  EXPECT_TRUE(close(hn, from_values(r.h_n, {4, 2, 4}), 1e-12, 1e-12));
  EXPECT_TRUE(close(cn, from_values(r.c_n, {4, 2, 4}), 1e-12, 1e-12));
}

TEST(LSTM, BatchFirstNoBiasZeroStateAndUnbatched) {
  nn::LSTM lstm(nn::LSTMOptions(2, 3).batch_first(true).bias(false));
  lstm->to(kDouble);
  EXPECT_EQ(lstm->parameters().size(), 2u);
  Tensor x = random_tensor({2, 4, 2}, kDouble);  // [batch, seq, feature]
  auto [out, state] = lstm(x);
  ASSERT_EQ(out.sizes().vec(), (std::vector<int64_t>{2, 4, 3}));
  Tensor zeros = kiln::zeros({1, 2, 3}, kiln::dtype(kDouble));
  RefResult r = ref_rnn(true, *lstm, x.transpose(0, 1), zeros, zeros, 1, false, 3, false);
  EXPECT_TRUE(close(out.transpose(0, 1), from_values(r.out, {4, 2, 3}), 1e-12, 1e-12));
  EXPECT_TRUE(close(std::get<0>(state), from_values(r.h_n, {1, 2, 3}), 1e-12, 1e-12));
  // Unbatched [seq, feature] input gives the batch-1 result without the batch dim.
  auto [out1, state1] = lstm(x[0]);
  EXPECT_TRUE(close(out1, out[0], 1e-12, 1e-12));
  EXPECT_TRUE(close(std::get<1>(state1), std::get<1>(state).select(1, 0), 1e-12, 1e-12));
  EXPECT_KILN_ERROR(lstm(random_tensor({2, 4, 5}, kDouble)), {"[LSTM]", "[2, 4, 5]"});
  EXPECT_KILN_ERROR(lstm(x, std::make_tuple(kiln::zeros({2, 2, 3}, kiln::dtype(kDouble)), zeros)),
                    {"[LSTM]", "h0", "[2, 2, 3]", "[1, 2, 3]"});
}

TEST(LSTM, GradientsAndCell) {
  nn::LSTM lstm(nn::LSTMOptions(2, 3).num_layers(2));
  lstm->to(kDouble);
  Tensor x = random_tensor({3, 2, 2}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [&](const autograd::variable_list& v) {
        auto [out, state] = lstm(v[0]);
        return autograd::variable_list{out, std::get<1>(state)};
      },
      {x}));
  Tensor xs = x.detach();
  check_param_grads(*lstm, [&] {
    auto [out, state] = lstm(xs);
    return (out * out).sum() + std::get<1>(state).sum();
  });

  nn::LSTMCell cell(2, 3);
  cell->to(kDouble);
  EXPECT_EQ(cell->named_parameters().keys(),
            (std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}));
  Tensor xc = random_tensor({4, 2}, kDouble);
  Tensor h = random_tensor({4, 3}, kDouble), c = random_tensor({4, 3}, kDouble);
  auto [h2, c2] = cell(xc, std::make_tuple(h, c));
  // Reference: one step of the single-direction layer.
  RefWeights w{to_vector(cell->weight_ih), to_vector(cell->weight_hh), to_vector(cell->bias_ih),
               to_vector(cell->bias_hh)};
  std::vector<Vec> hs(4), cs(4);
  Vec hv = to_vector(h), cv = to_vector(c), xv = to_vector(xc);
  std::vector<std::vector<Vec>> seq(1, std::vector<Vec>(4));
  for (int n = 0; n < 4; ++n) {
    hs[n] = Vec(hv.begin() + n * 3, hv.begin() + n * 3 + 3);
    cs[n] = Vec(cv.begin() + n * 3, cv.begin() + n * 3 + 3);
    seq[0][n] = Vec(xv.begin() + n * 2, xv.begin() + n * 2 + 2);
  }
  ref_layer(true, seq, w, 3, hs, cs, false);
  Vec hr, cr;
  for (int n = 0; n < 4; ++n) {
    hr.insert(hr.end(), hs[n].begin(), hs[n].end());
    cr.insert(cr.end(), cs[n].begin(), cs[n].end());
  }
  EXPECT_TRUE(close(h2, from_values(hr, {4, 3}), 1e-12, 1e-12));
  EXPECT_TRUE(close(c2, from_values(cr, {4, 3}), 1e-12, 1e-12));
  check_param_grads(*cell, [&] {
    auto [a, b] = cell(xc, std::make_tuple(h, c));
    return (a * b).sum();
  });
}

TEST(GRU, MatchesReferenceAndGradchecks) {
  nn::GRU gru(nn::GRUOptions(3, 2).num_layers(2).bidirectional(true));
  gru->to(kDouble);
  Tensor x = random_tensor({4, 3, 3}, kDouble);
  Tensor h0 = random_tensor({4, 3, 2}, kDouble);
  auto [out, hn] = gru(x, h0);
  RefResult r = ref_rnn(false, *gru, x, h0, Tensor(), 2, true, 2, true);
  EXPECT_TRUE(close(out, from_values(r.out, {4, 3, 4}), 1e-12, 1e-12));
  EXPECT_TRUE(close(hn, from_values(r.h_n, {4, 3, 2}), 1e-12, 1e-12));
  Tensor xg = random_tensor({3, 2, 3}, kDouble).requires_grad_();
  Tensor hg = random_tensor({4, 2, 2}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [&](const autograd::variable_list& v) {
        auto [o, h] = gru(v[0], v[1]);
        return autograd::variable_list{o, h};
      },
      {xg, hg}));
  check_param_grads(*gru, [&] { return std::get<0>(gru(x, h0)).pow(2).sum(); });

  nn::GRUCell cell(3, 2);
  cell->to(kDouble);
  Tensor xc = random_tensor({3, 3}, kDouble), hc = random_tensor({3, 2}, kDouble);
  // A one-step, one-layer GRU with the cell's weights is the cell.
  nn::GRU one(nn::GRUOptions(3, 2));
  one->to(kDouble);
  {
    NoGradGuard no_grad;
    auto p = one->named_parameters();
    p["weight_ih_l0"].copy_(cell->weight_ih);
    p["weight_hh_l0"].copy_(cell->weight_hh);
    p["bias_ih_l0"].copy_(cell->bias_ih);
    p["bias_hh_l0"].copy_(cell->bias_hh);
  }
  EXPECT_TRUE(
      close(cell(xc, hc), std::get<1>(one(xc.unsqueeze(0), hc.unsqueeze(0)))[0], 1e-12, 1e-12));
  check_param_grads(*cell, [&] { return cell(xc, hc).pow(2).sum(); });
}

// ---- MultiheadAttention ----------------------------------------------------------------------

// out [L, N, E] and head-averaged weights [N, L, S] of multi-head attention, by loops.
void ref_mha(const Vec& wq, const Vec& wk, const Vec& wv, const Vec& bq, const Vec& bk,
             const Vec& bv, const Vec& wo, const Vec& bo, const Tensor& q, const Tensor& k,
             const Tensor& v, int64_t heads, const std::vector<std::vector<bool>>& key_pad,
             Vec& out, Vec& weights) {
  const int64_t L = q.size(0), N = q.size(1), E = q.size(2), S = k.size(0);
  const int64_t kd = k.size(2), vd = v.size(2), hd = E / heads;
  Vec qv = to_vector(q), kv = to_vector(k), vv = to_vector(v);
  out.assign(L * N * E, 0);
  weights.assign(N * L * S, 0);
  for (int64_t n = 0; n < N; ++n) {
    std::vector<Vec> Q(L), K(S), V(S);
    for (int64_t l = 0; l < L; ++l) Q[l] = matvec(wq, E, E, &qv[(l * N + n) * E], bq);
    for (int64_t s = 0; s < S; ++s) {
      K[s] = matvec(wk, E, kd, &kv[(s * N + n) * kd], bk);
      V[s] = matvec(wv, E, vd, &vv[(s * N + n) * vd], bv);
    }
    for (int64_t l = 0; l < L; ++l) {
      Vec concat(E, 0);
      for (int64_t h = 0; h < heads; ++h) {
        Vec score(S);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t s = 0; s < S; ++s) {
          double d = 0;
          for (int64_t j = 0; j < hd; ++j) d += Q[l][h * hd + j] * K[s][h * hd + j];
          score[s] = key_pad.empty() || !key_pad[n][s] ? d / std::sqrt(double(hd))
                                                       : -std::numeric_limits<double>::infinity();
          mx = std::max(mx, score[s]);
        }
        double z = 0;
        for (double& sc : score) z += (sc = std::exp(sc - mx));
        for (int64_t s = 0; s < S; ++s) {
          score[s] /= z;
          weights[(n * L + l) * S + s] += score[s] / heads;
          for (int64_t j = 0; j < hd; ++j) concat[h * hd + j] += score[s] * V[s][h * hd + j];
        }
      }
      Vec o = matvec(wo, E, E, concat.data(), bo);
      for (int64_t e = 0; e < E; ++e) out[(l * N + n) * E + e] = o[e];
    }
  }
}

Vec slice(const Vec& v, int64_t begin, int64_t count) {
  return Vec(v.begin() + begin, v.begin() + begin + count);
}

TEST(MultiheadAttention, SelfAttentionMatchesReference) {
  nn::MultiheadAttention mha(6, 2);
  mha->to(kDouble);
  {
    NoGradGuard no_grad;  // non-zero biases, so that they are tested too
    mha->in_proj_bias.copy_(random_tensor({18}, kDouble));
    mha->out_proj->bias.copy_(random_tensor({6}, kDouble));
  }
  Tensor x = random_tensor({4, 3, 6}, kDouble);
  auto [out, w] = mha(x, x, x);
  Vec ip = to_vector(mha->in_proj_weight), ib = to_vector(mha->in_proj_bias);
  Vec ref_out, ref_w;
  ref_mha(slice(ip, 0, 36), slice(ip, 36, 36), slice(ip, 72, 36), slice(ib, 0, 6), slice(ib, 6, 6),
          slice(ib, 12, 6), to_vector(mha->out_proj->weight), to_vector(mha->out_proj->bias), x, x,
          x, 2, {}, ref_out, ref_w);
  EXPECT_TRUE(close(out, from_values(ref_out, {4, 3, 6}), 1e-12, 1e-12));
  EXPECT_TRUE(close(w, from_values(ref_w, {3, 4, 4}), 1e-12, 1e-12));
  auto [out2, w2] = mha(x, x, x, Tensor(), /*need_weights=*/false);
  EXPECT_TRUE(close(out2, out, 1e-12, 1e-12));
  EXPECT_FALSE(w2.defined());
  auto [out3, w3] = mha(x, x, x, Tensor(), true, Tensor(), /*average_attn_weights=*/false);
  EXPECT_EQ(w3.sizes().vec(), (std::vector<int64_t>{3, 2, 4, 4}));
  EXPECT_TRUE(close(w3.mean({1}), w, 1e-12, 1e-12));
}

TEST(MultiheadAttention, SeparateKVDimsAndKeyPaddingMask) {
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(4, 2).kdim(3).vdim(5));
  mha->to(kDouble);
  EXPECT_FALSE(mha->in_proj_weight.defined());
  EXPECT_EQ(mha->k_proj_weight.sizes().vec(), (std::vector<int64_t>{4, 3}));
  Tensor q = random_tensor({2, 2, 4}, kDouble), k = random_tensor({3, 2, 3}, kDouble);
  Tensor v = random_tensor({3, 2, 5}, kDouble);
  Tensor pad = kiln::tensor({{false, false, true}, {true, false, false}});
  auto [out, w] = mha(q, k, v, pad);
  Vec ib = to_vector(mha->in_proj_bias), ref_out, ref_w;
  ref_mha(to_vector(mha->q_proj_weight), to_vector(mha->k_proj_weight),
          to_vector(mha->v_proj_weight), slice(ib, 0, 4), slice(ib, 4, 4), slice(ib, 8, 4),
          to_vector(mha->out_proj->weight), to_vector(mha->out_proj->bias), q, k, v, 2,
          {{false, false, true}, {true, false, false}}, ref_out, ref_w);
  EXPECT_TRUE(close(out, from_values(ref_out, {2, 2, 4}), 1e-12, 1e-12));
  EXPECT_TRUE(close(w, from_values(ref_w, {2, 2, 3}), 1e-12, 1e-12));
  EXPECT_KILN_ERROR(mha(q, v, v), {"[MultiheadAttention]", "[S, N, 3]"});
  EXPECT_KILN_ERROR(nn::MultiheadAttention(6, 4), {"divisible by num_heads"});
}

TEST(MultiheadAttention, MasksBiasKVAndGradients) {
  nn::MultiheadAttention mha(
      nn::MultiheadAttentionOptions(4, 2).add_bias_kv(true).add_zero_attn(true));
  mha->to(kDouble);
  Tensor x = random_tensor({3, 2, 4}, kDouble);
  // A causal bool mask and the same mask as -inf floats give the same result.
  Tensor causal = kiln::ones({3, 3}, kiln::dtype(kBool));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j <= i; ++j) causal[i][j].fill_(false);
  Tensor neg = kiln::zeros({3, 3}, kiln::dtype(kDouble)).masked_fill(causal, -INFINITY);
  auto [a, wa] = mha(x, x, x, Tensor(), true, causal);
  auto [b, wb] = mha(x, x, x, Tensor(), true, neg);
  EXPECT_TRUE(close(a, b, 1e-12, 1e-12));
  // Sources: 3 keys + bias_k + the zero key; masked future keys get weight 0.
  ASSERT_EQ(wa.sizes().vec(), (std::vector<int64_t>{2, 3, 5}));
  EXPECT_EQ(wa.select(1, 0).select(1, 1).abs().max().item<double>(), 0.0);
  EXPECT_TRUE(close(wa.sum(-1), kiln::ones({2, 3}, kiln::dtype(kDouble)), 1e-12, 1e-12));
  Tensor xg = random_tensor({3, 2, 4}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [&](const autograd::variable_list& v) {
        return autograd::variable_list{std::get<0>(mha(v[0], v[0], v[0], Tensor(), false, causal))};
      },
      {xg}));
  check_param_grads(*mha, [&] { return std::get<0>(mha(x, x, x)).pow(2).sum(); });
}

TEST(Recurrent, SecondDerivatives) {
  autograd::GradcheckOptions gg;
  gg.check_grad_grad = true;
  nn::LSTM lstm(2, 3);
  lstm->to(kDouble);
  Tensor x = random_tensor({2, 1, 2}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [&](const autograd::variable_list& v) {
        return autograd::variable_list{std::get<0>(lstm(v[0]))};
      },
      {x}, gg));
  nn::MultiheadAttention mha(4, 2);
  mha->to(kDouble);
  Tensor q = random_tensor({2, 1, 4}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [&](const autograd::variable_list& v) {
        return autograd::variable_list{std::get<0>(mha(v[0], v[0], v[0]))};
      },
      {q}, gg));
}

}  // namespace
}  // namespace kiln
