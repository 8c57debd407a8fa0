"""Drop-ins whose parameters K-FAC can precondition, for the stock modules that hide theirs, and RMSNorm for a torch
that has none.

torch.nn.MultiheadAttention runs its four projections as functional calls inside one function, so there is no module
forward to hook and its weights get the fallback. kronfac.nn.MultiheadAttention has the same options, inputs, outputs
and math (tested equal on the same weights), with q, k, v and the output projection as torch.nn.Linear modules run
on [B, L, E], so each is a sequence Linear block. ``replace_attention(model)`` swaps every stock attention of a model
for one, with the same weights, so that ``nn.TransformerEncoder`` and friends train with K-FAC unmodified otherwise.
"""
import math

import torch
import torch.nn.functional as F

from . import layers as _layers


class MultiheadAttention(torch.nn.Module):
    """torch.nn.MultiheadAttention with its projections as modules (q_proj, k_proj, v_proj, out_proj).

    The same constructor arguments (add_bias_kv and add_zero_attn are refused) and forward (query, key, value,
    key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal). ``from_stock(m)`` copies a stock
    module's weights."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if add_bias_kv or add_zero_attn:
            raise ValueError("kronfac.nn.MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        if embed_dim % num_heads != 0:
            raise ValueError(f"kronfac.nn.MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads "
                             f"{num_heads}")
        factory = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.q_proj = torch.nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.k_proj = torch.nn.Linear(self.kdim, embed_dim, bias=bias, **factory)
        self.v_proj = torch.nn.Linear(self.vdim, embed_dim, bias=bias, **factory)
        self.out_proj = torch.nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        # What torch.nn.Transformer*Layer's fast-path checks read: it declines this module and runs forward().
        self._qkv_same_embed_dim = False
        self.in_proj_weight = self.in_proj_bias = None

    @classmethod
    def from_stock(cls, stock):
        """A copy of ``stock`` (a torch.nn.MultiheadAttention) with the same weights, device and dtype."""
        if stock.bias_k is not None or stock.add_zero_attn:
            raise ValueError("kronfac.nn.MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        weight = stock.out_proj.weight
        m = cls(stock.embed_dim, stock.num_heads, stock.dropout, stock.in_proj_bias is not None, kdim=stock.kdim,
                vdim=stock.vdim, batch_first=stock.batch_first, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            if stock._qkv_same_embed_dim:
                for proj, w in zip((m.q_proj, m.k_proj, m.v_proj), stock.in_proj_weight.chunk(3)):
                    proj.weight.copy_(w)
            else:
                m.q_proj.weight.copy_(stock.q_proj_weight)
                m.k_proj.weight.copy_(stock.k_proj_weight)
                m.v_proj.weight.copy_(stock.v_proj_weight)
            if stock.in_proj_bias is not None:
                for proj, b in zip((m.q_proj, m.k_proj, m.v_proj), stock.in_proj_bias.chunk(3)):
                    proj.bias.copy_(b)
                m.out_proj.bias.copy_(stock.out_proj.bias)
            m.out_proj.weight.copy_(stock.out_proj.weight)
        m.train(stock.training)
        return m

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        if not self.batch_first or not batched:  # the projections run batch first: [B, L, E]
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        B, L, S, H, D = query.shape[0], query.shape[1], key.shape[1], self.num_heads, self.head_dim
        q = self.q_proj(query).view(B, L, H, D).transpose(1, 2)
        k = self.k_proj(key).view(B, S, H, D).transpose(1, 2)
        v = self.v_proj(value).view(B, S, H, D).transpose(1, 2)
        mask = self._mask(attn_mask, key_padding_mask, is_causal, B, L, S, q.dtype)
        scores = (q / math.sqrt(D)) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        weights = F.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, p=self.dropout)
        out = self.out_proj((weights @ v).transpose(1, 2).reshape(B, L, self.embed_dim))
        if not self.batch_first or not batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.sum(dim=1) / self.num_heads  # as the stock module averages
        return out, (weights if batched else weights.squeeze(0))

    def _mask(self, attn_mask, key_padding_mask, is_causal, B, L, S, dtype):
        """The additive mask [B or 1, H or 1, L, S] of the stock module's rules (bool: True may not attend)."""
        if attn_mask is None and is_causal:
            attn_mask = torch.ones(L, S, dtype=torch.bool, device=self.out_proj.weight.device).triu(1)
        masks = []
        if attn_mask is not None:
            if attn_mask.dim() == 3:
                attn_mask = attn_mask.view(B, self.num_heads, L, S)
            masks.append(attn_mask)
        if key_padding_mask is not None:
            masks.append(key_padding_mask.view(B, 1, 1, S))
        total = None
        for m in masks:
            additive = torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, float("-inf")) \
                if m.dtype == torch.bool else m.to(dtype)
            total = additive if total is None else total + additive
        return total


def replace_attention(model):
    """Replaces every torch.nn.MultiheadAttention in ``model`` by a kronfac.nn.MultiheadAttention with the same
    weights, in place; returns how many. Build the optimizer after this call (the parameters are new tensors)."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.MultiheadAttention:
                setattr(parent, name, MultiheadAttention.from_stock(child))
                count += 1
    return count


class _RMSNorm(torch.nn.Module):
    """torch.nn.RMSNorm (torch 2.4 and later) for an older torch: y = weight * x / sqrt(mean(x**2) + eps) over the
    trailing ``normalized_shape``; eps None means the input dtype's machine epsilon. Same arguments, parameter
    name and math, so a model written for either trains alike."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = torch.nn.Parameter(torch.ones(shape, device=device, dtype=dtype)) if elementwise_affine \
            else None

    def forward(self, x):
        eps = torch.finfo(x.dtype).eps if self.eps is None else self.eps
        dims = tuple(range(-len(self.normalized_shape), 0))
        y = x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps)
        return y if self.weight is None else y * self.weight


RMSNorm = getattr(torch.nn, "RMSNorm", _RMSNorm)
if RMSNorm is _RMSNorm:
    RMSNorm.__name__ = RMSNorm.__qualname__ = "RMSNorm"
    _layers.register_module_kind(RMSNorm, _layers.kind_factory("RMSNorm"))
