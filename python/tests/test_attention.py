"""kronfac.nn.MultiheadAttention equals torch.nn.MultiheadAttention on the same weights, and replace_attention turns a
stock transformer's attention into sequence Linear blocks."""
import pytest
import torch
import torch.nn.functional as F

import kronfac


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kdim", [None, 5])
def test_equals_the_stock_module(float64, batch_first, bias, kdim):
    torch.manual_seed(0)
    stock = torch.nn.MultiheadAttention(8, 2, bias=bias, kdim=kdim, vdim=kdim, batch_first=batch_first)
    ours = kronfac.nn.MultiheadAttention.from_stock(stock)
    L, S, B = 4, 3, 2
    shape = (lambda n, e: (B, n, e)) if batch_first else (lambda n, e: (n, B, e))
    q, k, v = torch.randn(shape(L, 8)), torch.randn(shape(S, kdim or 8)), torch.randn(shape(S, kdim or 8))
    masks = [dict(), dict(attn_mask=torch.tensor([[False, True, False]] * L)),
             dict(attn_mask=torch.randn(L, S)), dict(key_padding_mask=torch.tensor([[False, False, True]] * B)),
             dict(attn_mask=torch.randn(B * 2, L, S), key_padding_mask=torch.tensor([[True, False, False]] * B)),
             dict(average_attn_weights=False)]
    for kw in masks:
        a, wa = stock(q, k, v, **kw)
        b, wb = ours(q, k, v, **kw)
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(wb, wa, rtol=1e-12, atol=1e-12)
    # unbatched inputs
    a, _ = stock(q[:, 0] if not batch_first else q[0], k[:, 0] if not batch_first else k[0],
                 v[:, 0] if not batch_first else v[0])
    b, _ = ours(q[:, 0] if not batch_first else q[0], k[:, 0] if not batch_first else k[0],
                v[:, 0] if not batch_first else v[0])
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_refuses_what_it_does_not_implement():
    with pytest.raises(ValueError, match="add_bias_kv and add_zero_attn"):
        kronfac.nn.MultiheadAttention(8, 2, add_bias_kv=True)
    with pytest.raises(ValueError, match="divisible"):
        kronfac.nn.MultiheadAttention(8, 3)


def test_a_stock_transformer_trains_with_its_attention_preconditioned():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
    model = torch.nn.Sequential(torch.nn.Embedding(20, 16), torch.nn.TransformerEncoder(layer, 2),
                                torch.nn.Linear(16, 20))
    x = torch.randint(0, 20, (8, 6))
    before = model(x).detach()
    assert "1.layers.0.self_attn.in_proj_weight (use kronfac.nn.replace_attention(model))" in str(
        kronfac.Preconditioner(model).registration)
    assert kronfac.nn.replace_attention(model) == 2
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)  # the same function
    opt = kronfac.KFACOptimizer(model, lr=0.05, damping=1e-2, loss="softmax-cross-entropy")
    assert str(opt.preconditioner.registration) == ("registered 18 blocks: 1 Embedding (expand), 13 Linear (expand), "
                                                    "4 LayerNorm (full); no fallback parameters")
    model.eval()  # the encoder's inference fast path (no grad) must decline the replacement and run its forward
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    model.train()
    y = torch.roll(x, 1, dims=1)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        opt.update_statistics(x)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
