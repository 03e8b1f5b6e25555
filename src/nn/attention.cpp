// MultiheadAttention as a composite: input projections (one matmul when query, key and value
// are the same tensor), heads folded into the batch of two bmm's, masks, softmax, dropout and
// the output projection.
#include "kiln/nn/modules/attention.h"

#include <cmath>
#include <limits>

#include "kiln/nn/functional.h"
#include "kiln/nn/init.h"

namespace kiln::nn {

MultiheadAttentionImpl::MultiheadAttentionImpl(const MultiheadAttentionOptions& options)
    : options(options) {
  reset();
}

void MultiheadAttentionImpl::reset() {
  const auto& o = options;
  const int64_t e = o.embed_dim();
  KILN_CHECK(e > 0 && o.num_heads() > 0 && e % o.num_heads() == 0,
             "[MultiheadAttention] got embed_dim={} and num_heads={}, expected embed_dim "
             "divisible by num_heads",
             e, o.num_heads());
  KILN_CHECK(o.kdim() > 0 && o.vdim() > 0,
             "[MultiheadAttention] got kdim={} and vdim={}, expected positive sizes", o.kdim(),
             o.vdim());
  KILN_CHECK(o.dropout() >= 0.0 && o.dropout() <= 1.0,
             "[MultiheadAttention] got dropout={}, expected a probability in [0, 1]", o.dropout());
  head_dim = e / o.num_heads();
  _qkv_same_embed_dim = o.kdim() == e && o.vdim() == e;
  if (_qkv_same_embed_dim) {
    in_proj_weight = register_parameter("in_proj_weight", kiln::empty({3 * e, e}));
    q_proj_weight = register_parameter("q_proj_weight", {}, false);
    k_proj_weight = register_parameter("k_proj_weight", {}, false);
    v_proj_weight = register_parameter("v_proj_weight", {}, false);
  } else {
    q_proj_weight = register_parameter("q_proj_weight", kiln::empty({e, e}));
    k_proj_weight = register_parameter("k_proj_weight", kiln::empty({e, o.kdim()}));
    v_proj_weight = register_parameter("v_proj_weight", kiln::empty({e, o.vdim()}));
    in_proj_weight = register_parameter("in_proj_weight", {}, false);
  }
  in_proj_bias =
      register_parameter("in_proj_bias", o.bias() ? kiln::empty({3 * e}) : Tensor(), o.bias());
  out_proj = register_module("out_proj", Linear(LinearOptions(e, e).bias(o.bias())));
  bias_k = register_parameter("bias_k", o.add_bias_kv() ? kiln::empty({1, 1, e}) : Tensor(),
                              o.add_bias_kv());
  bias_v = register_parameter("bias_v", o.add_bias_kv() ? kiln::empty({1, 1, e}) : Tensor(),
                              o.add_bias_kv());
  _reset_parameters();
}

void MultiheadAttentionImpl::_reset_parameters() {
  if (_qkv_same_embed_dim) {
    init::xavier_uniform_(in_proj_weight);
  } else {
    init::xavier_uniform_(q_proj_weight);
    init::xavier_uniform_(k_proj_weight);
    init::xavier_uniform_(v_proj_weight);
  }
  if (in_proj_bias.defined()) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
  if (bias_k.defined()) init::xavier_normal_(bias_k);
  if (bias_v.defined()) init::xavier_normal_(bias_v);
}

void MultiheadAttentionImpl::pretty_print(std::ostream& s) const {
  s << "kiln::nn::MultiheadAttention(embed_dim=" << options.embed_dim()
    << ", num_heads=" << options.num_heads() << ", dropout=" << options.dropout() << ")";
}

namespace {
// Appends a column of zeros (a key nothing is masked from) to a [.., S] mask.
Tensor pad_mask(const Tensor& mask) {
  if (!mask.defined()) return mask;
  std::vector<int64_t> sizes = mask.sizes().vec();
  sizes.back() = 1;
  return kiln::cat({mask, kiln::zeros(sizes, mask.options())}, -1);
}
// Applies a bool (true hides) or float (added) mask to scores broadcastable with it.
Tensor apply_mask(const Tensor& scores, const Tensor& mask) {
  if (!mask.defined()) return scores;
  if (mask.dtype() == kBool)
    return scores.masked_fill(mask, -std::numeric_limits<double>::infinity());
  return scores + mask.to(scores.dtype());
}
}  // namespace

std::tuple<Tensor, Tensor> MultiheadAttentionImpl::forward(
    const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& key_padding_mask,
    bool need_weights, const Tensor& attn_mask, bool average_attn_weights) {
  const char* op = "MultiheadAttention";
  const int64_t e = options.embed_dim(), heads = options.num_heads();
  KILN_CHECK(query.defined() && key.defined() && value.defined(),
             "[{}] got an undefined query, key or value", op);
  const bool unbatched = query.dim() == 2;
  KILN_CHECK(
      (query.dim() == 3 || unbatched) && key.dim() == query.dim() && value.dim() == query.dim(),
      "[{}] got query sizes {}, key sizes {} and value sizes {}, expected [L, N, {}], "
      "[S, N, {}] and [S, N, {}] (or all unbatched)",
      op, shape_str(query.sizes()), shape_str(key.sizes()), shape_str(value.sizes()), e,
      options.kdim(), options.vdim());
  Tensor q_in = unbatched ? query.unsqueeze(1) : query;
  Tensor k_in = unbatched ? key.unsqueeze(1) : key;
  Tensor v_in = unbatched ? value.unsqueeze(1) : value;
  Tensor kpm =
      unbatched && key_padding_mask.defined() ? key_padding_mask.unsqueeze(0) : key_padding_mask;
  const int64_t L = q_in.size(0), N = q_in.size(1), S = k_in.size(0);
  KILN_CHECK(q_in.size(2) == e && k_in.size(2) == options.kdim() &&
                 v_in.size(2) == options.vdim() && k_in.size(1) == N && v_in.size(1) == N &&
                 v_in.size(0) == S,
             "[{}] got query sizes {}, key sizes {} and value sizes {}, expected [L, N, {}], "
             "[S, N, {}] and [S, N, {}]",
             op, shape_str(query.sizes()), shape_str(key.sizes()), shape_str(value.sizes()), e,
             options.kdim(), options.vdim());

  // Input projections.
  Tensor q, k, v;
  std::vector<Tensor> b =
      in_proj_bias.defined() ? in_proj_bias.chunk(3, 0) : std::vector<Tensor>(3, Tensor());
  if (_qkv_same_embed_dim && query.is_same(key) && key.is_same(value)) {
    std::vector<Tensor> qkv = kiln::linear(q_in, in_proj_weight, in_proj_bias).chunk(3, -1);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else if (_qkv_same_embed_dim) {
    std::vector<Tensor> w = in_proj_weight.chunk(3, 0);
    q = kiln::linear(q_in, w[0], b[0]);
    k = kiln::linear(k_in, w[1], b[1]);
    v = kiln::linear(v_in, w[2], b[2]);
  } else {
    q = kiln::linear(q_in, q_proj_weight, b[0]);
    k = kiln::linear(k_in, k_proj_weight, b[1]);
    v = kiln::linear(v_in, v_proj_weight, b[2]);
  }
  Tensor mask = attn_mask;
  if (mask.defined()) {
    const bool ok =
        (mask.dim() == 2 && mask.size(0) == L && mask.size(1) == S) ||
        (mask.dim() == 3 && mask.size(0) == N * heads && mask.size(1) == L && mask.size(2) == S);
    KILN_CHECK(ok, "[{}] got attn_mask sizes {}, expected [{}, {}] or [{}, {}, {}]", op,
               shape_str(mask.sizes()), L, S, N * heads, L, S);
  }
  if (kpm.defined())
    KILN_CHECK(kpm.dim() == 2 && kpm.size(0) == N && kpm.size(1) == S,
               "[{}] got key_padding_mask sizes {}, expected [{}, {}] (batch, source length)", op,
               shape_str(key_padding_mask.sizes()), N, S);
  int64_t src = S;
  if (bias_k.defined()) {
    k = kiln::cat({k, bias_k.expand({1, N, e})}, 0);
    v = kiln::cat({v, bias_v.expand({1, N, e})}, 0);
    mask = pad_mask(mask);
    kpm = pad_mask(kpm);
    ++src;
  }
  // Heads into the batch: [len, N, E] -> [N * heads, len, head_dim].
  auto split_heads = [&](const Tensor& t, int64_t len) {
    return t.contiguous().view({len, N * heads, head_dim}).transpose(0, 1);
  };
  q = split_heads(q, L);
  k = split_heads(k, src);
  v = split_heads(v, src);
  if (options.add_zero_attn()) {
    k = kiln::cat({k, kiln::zeros({N * heads, 1, head_dim}, k.options())}, 1);
    v = kiln::cat({v, kiln::zeros({N * heads, 1, head_dim}, v.options())}, 1);
    mask = pad_mask(mask);
    kpm = pad_mask(kpm);
    ++src;
  }
  Tensor scores = kiln::bmm(q * (1.0 / std::sqrt(static_cast<double>(head_dim))),
                            k.transpose(1, 2));  // [N * heads, L, src]
  scores = apply_mask(scores, mask);
  if (kpm.defined())
    scores = apply_mask(scores.view({N, heads, L, src}), kpm.view({N, 1, 1, src}))
                 .view({N * heads, L, src});
  Tensor attn = kiln::softmax(scores, -1);
  if (options.dropout() > 0 && is_training())
    attn = functional::dropout(attn, functional::DropoutFuncOptions().p(options.dropout()));
  Tensor out = kiln::bmm(attn, v).transpose(0, 1).contiguous().view({L, N, e});
  out = out_proj(out);
  Tensor weights;
  if (need_weights) {
    weights = attn.view({N, heads, L, src});
    if (average_attn_weights) weights = weights.mean({1});
    if (unbatched) weights = weights.squeeze(0);
  }
  if (unbatched) out = out.squeeze(1);
  return {out, weights};
}

}  // namespace kiln::nn
