#!/usr/bin/env python3
"""End-to-end benchmark: seconds per step of every method divided by SGD's, measured in one run.

    python3 bench/e2e.py [--steps N] [--out bench/results] [--methods "sgd,kfac,kfac --background-refresh"]

For each configuration (the autoencoder at batch 1000, the CNN at batch 128; statistics every step with refresh
every 10 steps, and the paper's setting: statistics on 1/8 of the batch, refresh every 20) it runs `kfac train`
for sgd, adam and each K-FAC method with the same seed and batches, and prints a Markdown table of seconds per
step, the ratio to SGD, peak resident memory, the final training loss, and the wall time each method needs to
reach Adam's final minibatch loss (losses smoothed over 10 steps, as `kfac compare` reads them). s/step is the mean
over every step from step 2 on, refresh steps included; the median and the refresh steps' mean stand beside it. The
header names the BLAS kernel, the thread counts and the subnormal mode the figures ran with. A method entry may carry its own flags after the name (compared in one run).
With --repeats N every method runs N times, in rounds (sgd, adam, kfac, ..., sgd, adam, ...), and the table reports
each method's fastest run: on a shared machine the noise only ever adds time. Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KFAC = os.path.join(ROOT, "build", "tools", "kfac", "kfac")
METHODS = ["sgd", "adam", "kfac", "ekfac", "tkfac", "tekfac"]
CONFIGS = [
    ("autoencoder", 1000, "stats 1, refresh 10", ["--stats-period", "1", "--refresh-period", "10"]),
    ("autoencoder", 1000, "paper: stats 1/8, refresh 20", ["--stats-fraction", "0.125", "--refresh-period", "20"]),
    ("cnn", 128, "stats 1, refresh 10", ["--stats-period", "1", "--refresh-period", "10"]),
    ("cnn", 128, "stats on 1/4, refresh 10", ["--stats-fraction", "0.25", "--refresh-period", "10"]),
]


def run(model, batch, entry, steps, extra, out, repeat):
    method, *own = entry.split()
    tag = abs(hash(tuple(extra + own))) % 10000
    path = os.path.join(out, f"{model}_{batch}_{method}_{tag}_{repeat}.json")
    cmd = [KFAC, "train", "--model", model, "--method", method, "--steps", str(steps), "--batch-size", str(batch),
           "--seed", "0", "--quiet", "--metrics-json", path] + own
    if method not in ("sgd", "adam"):
        cmd += extra
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


def smoothed(history, i, window=10):
    """The minibatch loss averaged over the `window` steps ending at i, as `kfac compare` reads it."""
    part = history[max(0, i + 1 - window):i + 1]
    return sum(h["train_loss"] for h in part) / len(part)


def time_to(history, target):
    for i, h in enumerate(history):
        if smoothed(history, i) <= target:
            return h["seconds"]
    return None


def runtime_header():
    """What the figures ran with, from `kfac info --json` (the BLAS kernel, threads, subnormal mode)."""
    info = json.loads(subprocess.run([KFAC, "info", "--json"], check=True, capture_output=True, text=True).stdout)
    blas, threads = info["blas"], info["threads"]
    line = (f"LibTorch {info['torch']['version']}, {blas['library']} kernel {blas['kernel'] or 'unknown'} "
            f"({blas['config']}), {threads['intra_op']} intra-op / {threads['blas']} BLAS threads, subnormals "
            f"{'flushed' if info['flush_denormal'] else 'kept'}, CPU {info['cpu']['model_name']}")
    return line, info["warnings"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--extra", default="", help="more flags for the K-FAC methods, e.g. '--inverse cholesky'")
    ap.add_argument("--configs", default="0,1,2", help="which configurations to run (indices of CONFIGS)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per method, interleaved; the fastest is reported")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    methods = args.methods.split(",")
    line, warnings = runtime_header()
    print(f"Command: python3 bench/e2e.py {' '.join(sys.argv[1:])}\nRan with: {line}")
    for w in warnings:
        print(f"Warning: {w['what']} (fix: {w['fix']})")
    for index in [int(i) for i in args.configs.split(",")]:
        model, batch, label, extra = CONFIGS[index]
        extra = extra + args.extra.split()
        if args.extra:
            label += ", " + args.extra
        runs = {m: [] for m in methods}
        for repeat in range(args.repeats):
            for m in methods:
                runs[m].append(run(model, batch, m, args.steps, extra, args.out, repeat))
        results = {m: min(r, key=lambda x: x["seconds_per_step"]) for m, r in runs.items()}
        sgd = results["sgd"]["seconds_per_step"]
        adam = results["adam"]["history"] if "adam" in results else None
        target = smoothed(adam, len(adam) - 1) if adam else None
        best = f", fastest of {args.repeats}" if args.repeats > 1 else ""
        print(f"\n### {model}, batch {batch}, {label}, {args.steps} steps{best}\n")
        print("| method | s/step | median | refresh steps | / SGD | peak RSS MiB | final train loss | "
              "s to Adam's final loss |")
        print("|---|---|---|---|---|---|---|---|")
        for m, r in results.items():
            t = time_to(r["history"], target) if target is not None else None
            timing = r.get("timing", {})
            refresh = timing.get("refresh_step_mean")
            print(f"| {m} | {r['seconds_per_step']:.4f} | {timing.get('median', float('nan')):.4f} | "
                  f"{'%.4f' % refresh if refresh is not None else '–'} | {r['seconds_per_step'] / sgd:.2f} | "
                  f"{r.get('peak_rss_mib', float('nan')):.0f} | {r['train_loss']:.4g} | "
                  f"{'%.1f' % t if t is not None else 'not reached'} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
