"""Host synchronizations per optimizer step on CUDA (issue 26): torch.cuda.set_sync_debug_mode("warn") makes every
synchronizing call (.item(), .cpu(), a nonzero, cuSOLVER's info read, ...) warn, also from the C++ core; each step's
warnings are counted by kind of step: steady (no statistics, no refresh), statistics only, statistics and refresh.

    PYTHONPATH=build/python python3 bench/cuda_syncs.py [--json out.json]

Models: an MLP of Linear layers, and a small transformer block (Embedding, LayerNorm, attention, Linear head).
Skipped (exit 0, a message) without CUDA."""
import argparse
import json
import sys
import warnings

import torch

import kronfac


class Block(torch.nn.Module):
    def __init__(self, width=64, vocab=96):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.norm = torch.nn.LayerNorm(width)
        self.attn = torch.nn.MultiheadAttention(width, 4, batch_first=True)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, ids):
        h = self.norm(self.embed(ids))
        return self.head(h + self.attn(h, h, h, need_weights=False)[0])


def model_and_batch(name):
    g = torch.Generator().manual_seed(0)
    if name == "mlp":
        model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Tanh(), torch.nn.Linear(256, 10))
        return model, torch.randn(128, 256, generator=g), torch.randint(0, 10, (128,), generator=g)
    model = Block()
    kronfac.nn.replace_attention(model)
    return model, torch.randint(0, 96, (16, 64), generator=g), torch.randint(0, 96, (16, 64), generator=g)


def count(name, method, steps=12):
    torch.manual_seed(0)
    model, x, y = model_and_batch(name)
    model, x, y = model.cuda(), x.cuda(), y.cuda()
    opt = kronfac.KFACOptimizer(model, lr=0.05, loss="softmax-cross-entropy", method=method, stats_period=3,
                             refresh_period=6, kl_clip=1e-3)
    per_kind = {}
    for step in range(steps):
        stats_step = opt.preconditioner.is_statistics_step()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            opt.zero_grad()
            if stats_step:
                opt.update_statistics(x)
            torch.nn.functional.cross_entropy(model(x).flatten(0, -2), y.flatten()).backward()
            opt.step()
            torch.cuda.set_sync_debug_mode("default")
        syncs = sum("synchroniz" in str(w.message) for w in caught)
        if step < 6:
            continue  # the first refresh period sets up every block
        stats = opt.last_stats
        kind = "steady" if not stats.statistics_updated else ("refresh" if stats.refreshed else "statistics")
        per_kind.setdefault(kind, []).append(syncs)
    return {k: max(v) for k, v in per_kind.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("cuda_syncs: no CUDA device; nothing measured")
        return 0
    rows = []
    print("| model | method | steady step | statistics step | statistics + refresh step |")
    print("|---|---|---|---|---|")
    for name in ("mlp", "block"):
        for method in ("kfac", "ekfac"):
            c = count(name, method)
            rows.append({"model": name, "method": method, **c})
            print(f"| {name} | {method} | {c.get('steady', '-')} | {c.get('statistics', '-')} | "
                  f"{c.get('refresh', '-')} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "syncs": rows}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
