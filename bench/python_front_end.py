#!/usr/bin/env python3
"""The Python front end's cost: seconds per K-FAC step through `import kronfac` against the C++ tool's, measured in one
run on the K-FAC paper's autoencoder (batch 1000, the main job's settings: statistics on 1/8 of the batch, refresh
every 20 steps), with SGD's step beside each.

    /usr/bin/python3 bench/python_front_end.py [--steps 60] [--repeats 2]     (after scripts/build.sh)

Rounds of four runs, each in a fresh process: `kfac train --method kfac`, the same in Python (kronfac.KFACOptimizer on
a torch.nn.Sequential of the same shapes and sparse initialization, with the options the tool's run resolved, read
from its metrics JSON), `kfac train --method sgd`, and torch.optim.SGD in Python. The loop is the tool's: batch
selection, zero_grad, the statistics pass, forward, loss, backward, loss.item(), step. s/step is the mean over every
step from step 2 on (refresh steps included), as the tool reports it; each configuration's fastest round counts (the
noise of a shared machine only adds time). Both sides run on the same threads with subnormals flushed
(kronfac.configure_runtime, as the tool does). Prints a Markdown table with the BLAS kernel and thread counts.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KFAC = os.path.join(ROOT, "build", "tools", "kfac", "kfac")
PYTHONPATH = os.path.join(ROOT, "build", "python")
SETTINGS = ["--stats-fraction", "0.125", "--refresh-period", "20"]
SIZES = [784, 1000, 500, 250, 30, 250, 500, 1000, 784]


def tool_run(method, steps, path):
    cmd = [KFAC, "train", "--model", "autoencoder", "--method", method, "--steps", str(steps), "--batch-size",
           "1000", "--seed", "0", "--quiet", "--metrics-json", path] + (SETTINGS if method != "sgd" else [])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


def python_run(method, steps, tool_json, path):
    env = dict(os.environ, PYTHONPATH=PYTHONPATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, __file__, "--worker", method, "--steps", str(steps), "--tool-json", tool_json,
                    "--json", path], check=True, env=env)
    with open(path) as f:
        return json.load(f)


def flat_options(nested):
    out = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value
    return out


def worker(args):
    import torch
    import kronfac
    from kronfac.data import fashion_mnist

    tool = json.load(open(args.tool_json))
    report = kronfac.configure_runtime()
    torch.manual_seed(0)
    layers = []
    for i in range(len(SIZES) - 1):
        fc = torch.nn.Linear(SIZES[i], SIZES[i + 1])
        with torch.no_grad():  # the paper's sparse initialization, as the tool's: 15 nonzero inputs per unit
            fc.weight.zero_()
            for row in fc.weight:
                cols = torch.randperm(SIZES[i])[:15]
                row[cols] = torch.randn(15)
            fc.bias.zero_()
        layers.append(fc)
        if i + 2 < len(SIZES) and i != len(SIZES) // 2 - 1:
            layers.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*layers)
    images = fashion_mnist()[0].view(-1, 784)
    if args.worker == "kfac":
        opt = kronfac.KFACOptimizer(model, lr=tool["lr"], momentum=tool["momentum"], kl_clip=tool["kl_clip"],
                                 loss="sigmoid-cross-entropy", **flat_options(tool["preconditioner_options"]))
    else:
        opt = torch.optim.SGD(model.parameters(), lr=tool["lr"], momentum=tool["momentum"])
    order = torch.randperm(images.shape[0])
    seconds, losses = [], []
    for step in range(args.steps):
        t0 = time.perf_counter()
        x = images.index_select(0, order[(step * 1000) % 59000:][:1000])
        opt.zero_grad()
        if args.worker == "kfac":
            opt.update_statistics(x)
        loss = kronfac.loss(model(x), x, "sigmoid-cross-entropy")
        loss.backward()
        losses.append(loss.item())
        opt.step()
        seconds.append(time.perf_counter() - t0)
    timed = seconds[2:]
    json.dump({"seconds_per_step": statistics.mean(timed), "median": statistics.median(timed), "losses": losses,
               "runtime": report}, open(args.json, "w"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", choices=["kfac", "sgd"])
    parser.add_argument("--tool-json")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    best = {}
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.repeats):
            for method in ("kfac", "sgd"):
                t = tool_run(method, args.steps, os.path.join(out, f"tool_{method}_{r}.json"))
                p = python_run(method, args.steps, os.path.join(out, f"tool_{method}_{r}.json"),
                               os.path.join(out, f"py_{method}_{r}.json"))
                for key, s, med, run in ((("C++ tool", method), t["seconds_per_step"], t["timing"]["median"], t),
                                         (("Python", method), p["seconds_per_step"], p["median"], p)):
                    if key not in best or s < best[key][0]:
                        best[key] = (s, med, run)
    runtime = best[("C++ tool", "kfac")][2]["runtime"]
    print(f"Autoencoder, batch 1000, {args.steps} steps, statistics on 1/8 of the batch, refresh every 20; fastest of "
          f"{args.repeats} rounds. BLAS: {runtime['blas']['library']} kernel {runtime['blas']['kernel']}, "
          f"{runtime['threads']['intra_op']} intra-op threads, subnormals flushed: {runtime['flush_denormal']}.\n")
    print("| front end | kfac s/step | median | sgd s/step | median | kfac / sgd |")
    print("|---|---|---|---|---|---|")
    for front in ("C++ tool", "Python"):
        k, s = best[(front, "kfac")], best[(front, "sgd")]
        print(f"| {front} | {k[0]:.4f} | {k[1]:.4f} | {s[0]:.4f} | {s[1]:.4f} | {k[0] / s[0]:.2f} |")
    ratio = best[("Python", "kfac")][0] / best[("C++ tool", "kfac")][0]
    print(f"\nPython K-FAC step / C++ tool's: {ratio:.3f}")
    print(f"final minibatch loss, kfac: C++ {best[('C++ tool', 'kfac')][2]['history'][-1]['train_loss']:.1f}, Python "
          f"{best[('Python', 'kfac')][2]['losses'][-1]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
