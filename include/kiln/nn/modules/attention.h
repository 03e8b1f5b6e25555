// MultiheadAttention (libtorch's torch::nn::MultiheadAttention): packed or separate q/k/v input
// projections, optional bias_k/bias_v and zero attention, key padding and attention masks,
// dropout on the weights, over inputs [seq, batch, embed_dim].
#pragma once

#include <tuple>

#include "kiln/nn/module.h"
#include "kiln/nn/modules/linear.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

/// Attention with num_heads heads of embed_dim / num_heads features. Parameters:
/// in_proj_weight [3E, E] and in_proj_bias [3E] (or q/k/v_proj_weight when kdim or vdim differ
/// from E), out_proj (Linear E -> E), bias_k/bias_v [1, 1, E] with add_bias_kv.
class MultiheadAttentionImpl : public Cloneable<MultiheadAttentionImpl> {
 public:
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads)
      : MultiheadAttentionImpl(MultiheadAttentionOptions(embed_dim, num_heads)) {}
  explicit MultiheadAttentionImpl(const MultiheadAttentionOptions& options);
  void reset() override;
  void _reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  /// query [L, N, E], key [S, N, kdim], value [S, N, vdim] (or unbatched [L, E], ...).
  /// key_padding_mask [N, S]: true (or -inf when float) hides a key. attn_mask [L, S] or
  /// [N * num_heads, L, S]: bool true hides, float is added to the scores. Returns the output
  /// [L, N, E] and, with need_weights, the attention weights [N, L, S] (averaged over heads)
  /// or [N, num_heads, L, S].
  std::tuple<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                     const Tensor& key_padding_mask = {}, bool need_weights = true,
                                     const Tensor& attn_mask = {},
                                     bool average_attn_weights = true);

  MultiheadAttentionOptions options;
  bool _qkv_same_embed_dim = true;
  int64_t head_dim = 0;
  Tensor in_proj_weight;
  Tensor in_proj_bias;
  Tensor q_proj_weight;
  Tensor k_proj_weight;
  Tensor v_proj_weight;
  Tensor bias_k;
  Tensor bias_v;
  Linear out_proj = nullptr;
};
KILN_MODULE(MultiheadAttention);

}  // namespace kiln::nn
