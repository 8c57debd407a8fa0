"""Step time of K-FAC with default options on two ordinary models nobody here wrote, against AdamW (issue 28, item 3).

Faithful equivalents of pytorch/examples:
  mnist-cnn   mnist/main.py's Net: Conv2d(1, 32, 3), Conv2d(32, 64, 3), max-pool, Linear(9216, 128), Linear(128, 10),
              batch 64, on the bundled MNIST-like images (Fashion-MNIST);
  word-lm     word_language_model's TransformerModel: Embedding(18328, 200), two nn.TransformerEncoderLayer (2 heads,
              feed-forward 200, dropout 0.2), Linear(200, 18328) over the WikiText-2 vocabulary (18,328 words), batch
              20 x bptt 35; token ids drawn uniformly (the step's cost does not depend on the words).
Both train through the ordinary loop (kronfac.KFACOptimizer in place of torch.optim.AdamW, nothing else changed). Each
step is timed on its own; the report gives the mean over steps 3..N (refresh steps included), the refresh steps'
mean, and the ratio to AdamW's mean, with the registration report (each block's structure and memory).

    PYTHONPATH=build/python /usr/bin/python3 bench/third_party_models.py [--steps 40] [--models mnist-cnn,word-lm]
        [--methods kfac,ekfac] [--options stats_positions=64,stats_period=2]   (keywords of the K-FAC runs)
"""
import argparse
import ast
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import kronfac
from kronfac.data import fashion_mnist


class MnistNet(nn.Module):  # pytorch/examples mnist/main.py
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        return self.fc2(self.dropout2(F.relu(self.fc1(x))))


class WordLM(nn.Module):  # pytorch/examples word_language_model/model.py TransformerModel, logits as [T·B, V]
    def __init__(self, ntoken=18328, ninp=200, nhead=2, nhid=200, nlayers=2, dropout=0.2):
        super().__init__()
        self.ntoken, self.ninp = ntoken, ninp
        self.encoder = nn.Embedding(ntoken, ninp)
        layer = nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
        self.transformer_encoder = nn.TransformerEncoder(layer, nlayers)
        self.decoder = nn.Linear(ninp, ntoken)
        position = torch.arange(5000).unsqueeze(1)
        div = torch.exp(torch.arange(0, ninp, 2) * (-math.log(10000.0) / ninp))
        pe = torch.zeros(5000, 1, ninp)
        pe[:, 0, 0::2], pe[:, 0, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("pe", pe)

    def forward(self, src):  # src [T, B]
        t = src.size(0)
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        x = self.encoder(src) * math.sqrt(self.ninp) + self.pe[:t]
        return self.decoder(self.transformer_encoder(x, mask)).view(-1, self.ntoken)


def batches(name, steps):
    g = torch.Generator().manual_seed(0)
    if name == "mnist-cnn":
        images, labels = fashion_mnist(10000)
        for _ in range(steps):
            i = torch.randint(0, images.size(0), (64,), generator=g)
            yield images[i].view(-1, 1, 28, 28), labels[i]
    else:
        for _ in range(steps):
            data = torch.randint(0, 18328, (36, 20), generator=g)
            yield data[:-1], data[1:].reshape(-1)


def timed_run(name, method, steps, options=None):
    torch.manual_seed(0)
    model = MnistNet() if name == "mnist-cnn" else WordLM()
    if method == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        report = ""
    else:
        opt = kronfac.KFACOptimizer(model, lr=0.05, loss="softmax-cross-entropy", method=method, **(options or {}))
        report = str(opt.preconditioner.registration) + "\n" + opt.preconditioner.registration.details()
    times, refreshed = [], []
    for x, y in batches(name, steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        refreshed.append(method != "adamw" and opt.last_stats.refreshed)
    timed = range(3, len(times))
    mean = sum(times[i] for i in timed) / len(timed)
    refresh = [times[i] for i in timed if refreshed[i]]
    return mean, (sum(refresh) / len(refresh) if refresh else float("nan")), loss.item(), report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--models", default="mnist-cnn,word-lm")
    ap.add_argument("--methods", default="kfac,ekfac")
    ap.add_argument("--options", default="", help="keywords of the K-FAC runs: name=value,...")
    args = ap.parse_args()
    options = {k: ast.literal_eval(v) for k, v in (kv.split("=", 1) for kv in args.options.split(",") if kv)}
    kronfac.configure_runtime()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps (mean from step 3), "
          f"K-FAC options {options or 'default'}\n")
    print("| model | method | s/step | refresh steps s/step | x AdamW | final loss |")
    print("|---|---|---|---|---|---|")
    reports = []
    for name in args.models.split(","):
        base, _, base_loss, _ = timed_run(name, "adamw", args.steps)
        print(f"| {name} | adamw | {base:.4f} | | 1.00 | {base_loss:.3f} |", flush=True)
        for method in args.methods.split(","):
            mean, refresh, loss, report = timed_run(name, method, args.steps, options)
            print(f"| {name} | {method} | {mean:.4f} | {refresh:.4f} | {mean / base:.2f} | {loss:.3f} |", flush=True)
            reports.append(f"{name} {method}: {report}")
    print()
    for r in reports:
        print(r)


if __name__ == "__main__":
    main()
