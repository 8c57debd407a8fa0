#include "kfac/nn/attention.h"

#include <torch/nn/functional/dropout.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "kfac/errors.h"

namespace kfac::nn {

MultiheadAttentionImpl::MultiheadAttentionImpl(const torch::nn::MultiheadAttentionOptions& o) : options(o) {
  const int64_t e = o.embed_dim(), h = o.num_heads();
  KFAC_CHECK(e > 0 && h > 0 && e % h == 0, "MultiheadAttention: embed_dim (", e, ") must be a positive multiple of ",
             "num_heads (", h, ")");
  KFAC_CHECK(!o.add_bias_kv() && !o.add_zero_attn(),
             "kfac::nn::MultiheadAttention does not support add_bias_kv or add_zero_attn; use the defaults (false)");
  auto linear = [&](int64_t in) { return Linear(torch::nn::LinearOptions(in, e).bias(o.bias())); };
  q_proj = register_module("q_proj", linear(e));
  k_proj = register_module("k_proj", linear(o.kdim()));
  v_proj = register_module("v_proj", linear(o.vdim()));
  out_proj = register_module("out_proj", linear(e));
  // LibTorch's initialization: xavier_uniform_ on the (fused) input projection, zero biases.
  torch::NoGradGuard no_grad;
  if (o.kdim() == e && o.vdim() == e) {
    auto fused = torch::empty({3 * e, e});
    torch::nn::init::xavier_uniform_(fused);
    q_proj->weight.copy_(fused.narrow(0, 0, e));
    k_proj->weight.copy_(fused.narrow(0, e, e));
    v_proj->weight.copy_(fused.narrow(0, 2 * e, e));
  } else {
    for (auto* p : {&q_proj->weight, &k_proj->weight, &v_proj->weight}) torch::nn::init::xavier_uniform_(*p);
  }
  if (o.bias())
    for (auto* p : {&q_proj->bias, &k_proj->bias, &v_proj->bias, &out_proj->bias}) p->zero_();
}

void MultiheadAttentionImpl::load_from(const torch::nn::MultiheadAttentionImpl& stock) {
  const auto& s = stock.options;
  KFAC_CHECK(s.embed_dim() == options.embed_dim() && s.num_heads() == options.num_heads() &&
                 s.kdim() == options.kdim() && s.vdim() == options.vdim() && s.bias() == options.bias(),
             "MultiheadAttention::load_from: the stock module's options differ (embed_dim, num_heads, kdim, vdim or "
             "bias)");
  torch::NoGradGuard no_grad;
  const int64_t e = options.embed_dim();
  if (stock._qkv_same_embed_dim) {
    q_proj->weight.copy_(stock.in_proj_weight.narrow(0, 0, e));
    k_proj->weight.copy_(stock.in_proj_weight.narrow(0, e, e));
    v_proj->weight.copy_(stock.in_proj_weight.narrow(0, 2 * e, e));
  } else {
    q_proj->weight.copy_(stock.q_proj_weight);
    k_proj->weight.copy_(stock.k_proj_weight);
    v_proj->weight.copy_(stock.v_proj_weight);
  }
  if (options.bias()) {
    q_proj->bias.copy_(stock.in_proj_bias.narrow(0, 0, e));
    k_proj->bias.copy_(stock.in_proj_bias.narrow(0, e, e));
    v_proj->bias.copy_(stock.in_proj_bias.narrow(0, 2 * e, e));
    out_proj->bias.copy_(stock.out_proj->bias);
  }
  out_proj->weight.copy_(stock.out_proj->weight);
}

std::tuple<torch::Tensor, torch::Tensor> MultiheadAttentionImpl::forward(
    const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
    const torch::Tensor& key_padding_mask, bool need_weights, const torch::Tensor& attn_mask,
    bool average_attn_weights) {
  KFAC_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3,
             "MultiheadAttention takes query, key and value as [L, N, E] (sequence first), got shapes ", query.sizes(),
             ", ", key.sizes(), ", ", value.sizes());
  const int64_t heads = options.num_heads(), e = options.embed_dim(), hd = e / heads;
  const int64_t n = query.size(1), l = query.size(0), s = key.size(0);
  // Projections batch first: [N, L, E] → [N, H, L, hd].
  auto split_heads = [&](const torch::Tensor& x, int64_t len) {
    return x.view({n, len, heads, hd}).permute({0, 2, 1, 3});
  };
  const auto q = split_heads(q_proj(query.transpose(0, 1)) * (1.0 / std::sqrt(static_cast<double>(hd))), l);
  const auto k = split_heads(k_proj(key.transpose(0, 1)), s);
  const auto v = split_heads(v_proj(value.transpose(0, 1)), s);
  auto scores = torch::matmul(q, k.transpose(-1, -2));  // [N, H, L, S]
  const double minus_inf = -std::numeric_limits<double>::infinity();
  if (attn_mask.defined()) {
    const auto mask = attn_mask.dim() == 2 ? attn_mask.view({1, 1, l, s}) : attn_mask.view({n, heads, l, s});
    scores = mask.scalar_type() == torch::kBool ? scores.masked_fill(mask, minus_inf) : scores + mask;
  }
  if (key_padding_mask.defined())
    scores = scores.masked_fill(key_padding_mask.to(torch::kBool).view({n, 1, 1, s}), minus_inf);
  auto weights = torch::softmax(scores, -1);
  const auto dropped = torch::nn::functional::dropout(
      weights, torch::nn::functional::DropoutFuncOptions().p(options.dropout()).training(is_training()));
  const auto context = torch::matmul(dropped, v).permute({0, 2, 1, 3}).reshape({n, l, e});
  auto output = out_proj(context).transpose(0, 1);  // [L, N, E]
  if (!need_weights) return {output, torch::Tensor()};
  return {output, average_attn_weights ? weights.mean(1) : weights};
}

}  // namespace kfac::nn
