// kfac::nn::MultiheadAttention: torch::nn::MultiheadAttention (same options, same inputs [L, N, E] and outputs, same
// math) with its four projections as kfac::nn::Linear layers, so that K-FAC sees q_proj, k_proj, v_proj and out_proj
// as weight-shared Linear blocks (the sequence positions are their shared dimension, docs/design.md §13). LibTorch's
// own module fuses the projections inside one functional call, so their inputs and output gradients cannot be tapped;
// a model holding it gets the fallback for its parameters, and the registration report names this module instead.
//
// The projections run batch first ([N, L, E]), so the examples are the batch and the positions the sequence.
// load_from(stock) copies a torch::nn::MultiheadAttention's weights (in_proj split into q, k, v).
// Not supported (refused at construction): add_bias_kv, add_zero_attn. A boolean attn_mask means what PyTorch
// documents (true = may not attend); LibTorch 1.13's C++ module instead adds it as 0/1, and takes no 3-D mask.
#pragma once

#include <torch/nn/modules/activation.h>
#include <torch/nn/options/activation.h>
#include <torch/nn/pimpl.h>

#include <tuple>

#include "kfac/nn/layers.h"

namespace kfac::nn {

class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads)
      : MultiheadAttentionImpl(torch::nn::MultiheadAttentionOptions(embed_dim, num_heads)) {}
  explicit MultiheadAttentionImpl(const torch::nn::MultiheadAttentionOptions& options);

  /// As torch::nn::MultiheadAttention::forward: query [L, N, E], key and value [S, N, kdim / vdim]; returns the
  /// output [L, N, E] and, if need_weights, the attention weights [N, L, S] (averaged over heads) or [N, H, L, S].
  /// key_padding_mask [N, S] (true or nonzero = ignore); attn_mask [L, S] or [N·H, L, S], boolean (true = ignore)
  /// or added to the scores.
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& query, const torch::Tensor& key,
                                                   const torch::Tensor& value,
                                                   const torch::Tensor& key_padding_mask = {}, bool need_weights = true,
                                                   const torch::Tensor& attn_mask = {},
                                                   bool average_attn_weights = true);

  /// Copies the weights of a stock module with the same options.
  void load_from(const torch::nn::MultiheadAttentionImpl& stock);

  torch::nn::MultiheadAttentionOptions options;
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 protected:
  FORWARD_HAS_DEFAULT_ARGS({3, torch::nn::AnyValue(torch::Tensor())}, {4, torch::nn::AnyValue(true)},
                           {5, torch::nn::AnyValue(torch::Tensor())}, {6, torch::nn::AnyValue(true)})
};
TORCH_MODULE(MultiheadAttention);

}  // namespace kfac::nn
