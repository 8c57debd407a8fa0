"""pytorch/examples' word_language_model: its TransformerModel (model.py) and the loop of its train() (main.py) as
they are, smaller (one layer, 64 wide), on the first 40,000 words of the King James Bible that scripts/setup.sh
installs. The example updates the weights by hand; the change is that update, and the model's attention made
visible to K-FAC before the optimizer is built:

    +    kronfac.nn.replace_attention(model)
    +    optimizer = kronfac.KFACOptimizer(model, lr=0.3, loss="nll")
         ...
    -        for p in model.parameters():
    -            p.data.add_(p.grad, alpha=-lr)
    +        optimizer.step()

Gradient clipping, the causal mask, dropout and log_softmax + NLLLoss stay the example's. K-FAC must end no worse
than the example's own update at its Transformer learning rate (its README: --lr 5) on the same 50 batches."""
import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import kronfac

KJV = "/usr/local/share/kfac-data/kjv.txt"


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super(PositionalEncoding, self).__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer('pe', pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super(TransformerModel, self).__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                                               num_encoder_layers=nlayers)
        self.model_type = 'Transformer'
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)
        self.init_weights()

    def _generate_square_subsequent_mask(self, sz):
        return torch.log(torch.tril(torch.ones(sz, sz)))

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, src, has_mask=True):
        if has_mask:
            device = src.device
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                mask = self._generate_square_subsequent_mask(len(src)).to(device)
                self.src_mask = mask
        else:
            self.src_mask = None
        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


def corpus():
    words = open(KJV, encoding="utf-8").read().split()[:40000]
    vocab = {w: i for i, w in enumerate(sorted(set(words)))}
    ids = torch.tensor([vocab[w] for w in words])
    bsz = 20  # main.py's batchify
    nbatch = ids.size(0) // bsz
    return ids[:nbatch * bsz].view(bsz, -1).t().contiguous(), len(vocab)


def train(kfac, lr, batches=50, bptt=35, clip=0.25):
    torch.manual_seed(1)
    train_data, ntokens = corpus()
    model = TransformerModel(ntokens, 64, 2, 64, 1, 0.2)
    criterion = nn.NLLLoss()
    if kfac:
        kronfac.nn.replace_attention(model)
        optimizer = kronfac.KFACOptimizer(model, lr=lr, loss="nll")

    def get_batch(source, i):
        seq_len = min(bptt, len(source) - 1 - i)
        data = source[i:i + seq_len]
        target = source[i + 1:i + 1 + seq_len].view(-1)
        return data, target

    model.train()
    losses = []
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        if batch == batches:
            break
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        output = model(data)
        output = output.view(-1, ntokens)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if kfac:
            optimizer.step()
        else:
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    registration = optimizer.preconditioner.registration if kfac else None
    return sum(losses[-10:]) / 10, losses[0], registration


@pytest.mark.skipif(not os.path.exists(KJV), reason="scripts/setup.sh installs the King James Bible text")
def test_the_word_language_model_trains_with_kfac_in_its_own_loop():
    kfac_loss, first, registration = train(kfac=True, lr=0.3)
    sgd_loss, _, _ = train(kfac=False, lr=5.0)
    print(f"K-FAC {kfac_loss:.3f}, the example's update {sgd_loss:.3f} (first batch {first:.3f})")
    # Every weight of the encoder, the embedding and the decoder got a block: nothing left to the fallback.
    assert "no fallback parameters" in str(registration), str(registration)
    assert math.isfinite(kfac_loss) and kfac_loss < first - 1.5
    assert kfac_loss < 1.02 * sgd_loss
