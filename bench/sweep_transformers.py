"""The sweep behind the presets vit-kfac and char-lm-kfac (issue 28): AdamW on its learning-rate grid, then K-FAC and
EKFAC (expand) over the cost levers (statistics period, refresh period) and the learning rate, every run on the same
seed and batches. Prints one table per model, sorted by seconds to AdamW's final training loss.

    /usr/bin/python3 bench/sweep_transformers.py [--models char-lm,vit] [--steps 300] [--out reports/sweep]

Each run is `kfac train` with --metrics-json; a run already in the report folder is read, not run again, so the sweep
can be extended or resumed. Timings are ratios taken in this one sweep on this machine (no other load), with the
OpenBLAS kernel the tool chooses (OPENBLAS_CORETYPE is removed from the runs' environment).
"""
import argparse
import itertools
import json
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from transformers_summary import first_reaching, smoothed  # noqa: E402

KFAC = pathlib.Path(__file__).resolve().parent.parent / "build" / "tools" / "kfac" / "kfac"
MODELS = {"char-lm": ["--dataset", "kjv", "--batch-size", "32"], "vit": ["--batch-size", "128"]}
ADAMW_LRS = ["1e-3", "3e-3"]
# The K-FAC grid: method, statistics period, refresh period, lr; EKFAC also with the per-position spectrum. Warm-up over the first 10% of the steps
# and the cosine decay are tried on the best cost setting only (the schedule is orthogonal to the cost levers).
GRID = {
    "method": ["kfac", "ekfac"],
    "stats_period": ["1", "5"],
    "refresh_period": ["10", "50"],
    "lr": ["0.3", "1"],
}


def run(out, model, name, flags, steps):
    path = out / model / f"{name}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(KFAC), "train", "--model", model, *MODELS[model], "--steps", str(steps), "--seed", "0",
               "--eval-examples", "1000", "--quiet", "--metrics-json", str(path), *flags]
        print(" ".join(cmd), file=sys.stderr, flush=True)
        # The tool picks OpenBLAS's best kernel for this CPU unless OPENBLAS_CORETYPE forces one: let it choose.
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    r = json.loads(path.read_text())
    r["name"] = name
    r["final"] = smoothed(r["history"], len(r["history"]) - 1)
    return r


def table(model, runs, reference):
    target = reference["final"]
    steps_ref, seconds_ref = first_reaching(reference["history"], target)
    rows = []
    for r in runs:
        steps, seconds = first_reaching(r["history"], target)
        rows.append((seconds / seconds_ref if seconds else float("inf"), r, steps, seconds))
    rows.sort(key=lambda row: row[0])
    print(f"\n## {model}: target AdamW's final training loss {target:.4f} (lr {reference['lr']:g}, "
          f"validation {reference['test_loss']:.4f}, {reference['seconds_per_step'] * 1e3:.1f} ms/step)\n")
    print("| run | final loss | validation | steps to target (x) | seconds to target (x) | s/step (x) |")
    print("|---|---|---|---|---|---|")
    for ratio, r, steps, seconds in rows:
        reach = f"{steps} ({steps / steps_ref:.2f}) | {seconds:.1f} ({ratio:.2f})" if steps else "not reached | -"
        print(f"| {r['name']} | {r['final']:.4f} | {r['test_loss']:.4f} | {reach} | "
              f"{r['seconds_per_step'] * 1e3:.1f} ms ({r['seconds_per_step'] / reference['seconds_per_step']:.2f}) |")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="char-lm,vit")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="reports/sweep")
    for key, values in GRID.items():
        ap.add_argument("--" + key.replace("_", "-"), default=",".join(values), help="comma-separated grid values")
    args = ap.parse_args()
    for key in GRID:
        GRID[key] = getattr(args, key).split(",")
    out = pathlib.Path(args.out)
    for model in args.models.split(","):
        adamw = [run(out, model, f"adamw-lr{lr}", ["--method", "adamw", "--lr", lr], args.steps) for lr in ADAMW_LRS]
        reference = min(adamw, key=lambda r: r["final"])
        runs = []
        for method, stats, refresh, lr in itertools.product(*GRID.values()):
            name = f"{method}-stats{stats}-refresh{refresh}-lr{lr}"
            flags = ["--method", method, "--stats-period", stats, "--refresh-period", refresh, "--lr", lr]
            runs.append(run(out, model, name, flags, args.steps))
            if method == "ekfac":  # the spectrum over positions: one product instead of per-example gradients
                runs.append(run(out, model, name.replace("ekfac", "ekfac_pos"), flags + ["--per-position-spectrum"],
                                args.steps))
        rows = table(model, runs, reference)
        best = rows[0][1]
        flags = ["--method", best["method"], *(["--per-position-spectrum"] if "_pos" in best["name"] else []), "--stats-period", best["name"].split("stats")[1].split("-")[0],
                 "--refresh-period", best["name"].split("refresh")[1].split("-")[0], "--lr", f"{best['lr']:g}"]
        warm = str(max(1, args.steps // 10))
        schedule = [run(out, model, f"{best['name']}-warmup", flags + ["--warmup-steps", warm], args.steps),
                    run(out, model, f"{best['name']}-cosine", flags + ["--warmup-steps", warm, "--lr-schedule",
                                                                      "cosine"], args.steps)]
        adamw_schedule = [run(out, model, f"adamw-lr{reference['lr']:g}-cosine",
                              ["--method", "adamw", "--lr", f"{reference['lr']:g}", "--warmup-steps", warm,
                               "--lr-schedule", "cosine"], args.steps)]
        print(f"\nschedules on the best setting ({best['name']}) and on AdamW, against the same target:")
        table(model, [best, *schedule, *adamw_schedule], reference)


if __name__ == "__main__":
    main()
