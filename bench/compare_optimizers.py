"""The comparison of issue 25: on the autoencoder, the CNN, the vision transformer and the character transformer,
SGD, AdamW, Muon, Shampoo, SOAP and the K-FAC family (kfac, ekfac, tkfac, tekfac), each at the best of the same
small learning-rate grid (two rates a method; SGD at its default), every run on the same seed and batches, all in
one go on one machine. Prints one table per model (reading against AdamW: step time, steps and seconds to its final
training loss, final training and validation loss) and draws loss_vs_step.png and loss_vs_seconds.png per model.

    /usr/bin/python3 bench/compare_optimizers.py [--models autoencoder,cnn,vit,char-lm] [--out reports/optimizers]

Each run is `kfac train --metrics-json`; a run already in the report folder is read, not run again. The cost
settings of the K-FAC methods are those of the main job (autoencoder, CNN) and of the transformer presets (vit,
char-lm; bench/sweep_transformers.py); char-lm warms every method up over its first 10% of steps.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from transformers_summary import first_reaching, plot, smoothed  # noqa: E402

KFAC = pathlib.Path(__file__).resolve().parent.parent / "build" / "tools" / "kfac" / "kfac"
# model: (steps, flags for every method, flags for the K-FAC methods, the K-FAC methods' rates)
MODELS = {
    "autoencoder": (60, ["--batch-size", "1000"], ["--stats-fraction", "0.125", "--refresh-period", "20"],
                    ["0.1", "0.3"]),
    "cnn": (60, ["--batch-size", "256"], [], ["0.05", "0.2"]),
    "vit": (150, ["--batch-size", "128"], ["--stats-period", "5", "--refresh-period", "10", "--kl-clip", "3e-4"],
            ["0.3", "1"]),
    "char-lm": (150, ["--dataset", "kjv", "--batch-size", "32", "--warmup-steps", "15"],
                ["--stats-period", "5", "--refresh-period", "10"], ["0.3", "1"]),
}
BASELINE_RATES = {"sgd": [None], "adamw": ["1e-3", "3e-3"], "muon": ["0.01", "0.03"], "shampoo": ["1e-3", "3e-3"],
                  "soap": ["1e-3", "3e-3"]}
KFAC_METHODS = ["kfac", "ekfac", "tkfac", "tekfac"]


def run(out, model, method, lr):
    steps, common, kfac_flags, _ = MODELS[model]
    name = f"{method}-lr{lr}" if lr else method
    path = out / model / f"{name}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(KFAC), "train", "--model", model, "--method", method, "--steps", str(steps), "--seed", "0",
               "--eval-examples", "2000", "--quiet", "--metrics-json", str(path), *common,
               *(kfac_flags if method in KFAC_METHODS else []), *(["--lr", lr] if lr else [])]
        print(" ".join(cmd), file=sys.stderr, flush=True)
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}  # the tool picks the best kernel
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, env=env)
        if not path.exists():
            return None
    r = json.loads(path.read_text())
    r["final"] = smoothed(r["history"], len(r["history"]) - 1) if r["history"] else float("inf")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default="reports/optimizers")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    for model in args.models.split(","):
        rates = dict(BASELINE_RATES, **{m: MODELS[model][3] for m in KFAC_METHODS})
        best = {}
        for method, grid in rates.items():
            runs = [r for r in (run(out, model, method, lr) for lr in grid) if r is not None]
            if runs:
                best[method] = min(runs, key=lambda r: r["final"])
        ref = best["adamw"]
        target = ref["final"]
        ref_steps, ref_seconds = first_reaching(ref["history"], target)
        print(f"\n## {model}: {MODELS[model][0]} steps; target AdamW's final training loss {target:.4f} "
              f"(20-step mean)\n")
        print("| method | lr | step time / AdamW | steps to target (x AdamW) | seconds to target (x AdamW) | "
              "final train loss | validation loss | skipped |")
        print("|---|---|---|---|---|---|---|---|")
        for method, r in best.items():
            steps, seconds = first_reaching(r["history"], target)
            reach = (f"{steps} ({steps / ref_steps:.2f}) | {seconds:.1f} ({seconds / ref_seconds:.2f})" if steps
                     else "not reached | not reached")
            print(f"| {method} | {r['lr']:g} | {r['seconds_per_step'] / ref['seconds_per_step']:.2f} | {reach} | "
                  f"{r['final']:.4f} | {r['test_loss']:.4f} | {r['skipped_steps']} |", flush=True)
        plot(out / model, best)
    first = next(iter(best.values()))["runtime"]
    print(f"\nRan with LibTorch {first['torch']['version']}, OpenBLAS kernel {first['blas']['kernel']}, "
          f"{first['threads']['intra_op']} threads, on {first['cpu']['model_name']} ({first['cpu']['logical_cores']} cores).")


if __name__ == "__main__":
    main()
