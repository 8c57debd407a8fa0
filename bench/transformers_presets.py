"""AdamW against the transformer presets (issue 28): char-lm with --preset char-lm-kfac and vit with --preset
vit-kfac, each against AdamW at its best rate from the same sweep (bench/sweep_transformers.py), at 300 steps and at
a longer horizon, same seed and batches. Prints per model and horizon: training loss (20-step mean) and validation
loss, steps and seconds to AdamW's final training loss as ratios to AdamW's, the step time ratio and the K-FAC step's
profile; draws loss against steps and against seconds (gnuplot) into the report folder.

    /usr/bin/python3 bench/transformers_presets.py [--horizons 300,1000] [--out reports/transformers-presets]
        [--variant "--eigenbasis-iterations 1" ...]

Each --variant is a row more: the preset with those flags added (same seed and batches).
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
# model: (AdamW's flags at its best sweep rate, the preset)
SETUPS = {
    "char-lm": (["--dataset", "kjv", "--batch-size", "32", "--method", "adamw", "--lr", "3e-3"], "char-lm-kfac"),
    "vit": (["--batch-size", "128", "--method", "adamw", "--lr", "1e-3"], "vit-kfac"),
}


def run(path, flags):
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}  # the tool picks the best kernel
        cmd = [str(KFAC), "train", *flags, "--seed", "0", "--eval-examples", "1000", "--quiet", "--profile",
               "--metrics-json", str(path)]
        print(" ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return json.loads(path.read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--horizons", default="300,1000")
    ap.add_argument("--models", default="char-lm,vit")
    ap.add_argument("--out", default="reports/transformers-presets")
    ap.add_argument("--variant", action="append", default=[], help="flags added to the preset, one row each")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    for model in args.models.split(","):
        adamw_flags, preset = SETUPS[model]
        for steps in map(int, args.horizons.split(",")):
            folder = out / f"{model}-{steps}"
            ref = run(folder / "adamw.json", ["--model", model, *adamw_flags, "--steps", str(steps)])
            kf = run(folder / f"{preset}.json", ["--preset", preset, "--steps", str(steps)])
            variants = [(f"--preset {preset} {v}",
                         run(folder / f"{preset}{v.replace(' ', '').replace('-', '_')}.json",
                             ["--preset", preset, *v.split(), "--steps", str(steps)])) for v in args.variant]
            target = smoothed(ref["history"], len(ref["history"]) - 1)
            s0, t0 = first_reaching(ref["history"], target)
            s1, t1 = first_reaching(kf["history"], target)
            rt = kf["runtime"]
            print(f"\n### {model}, {steps} steps (BLAS {rt['blas']['library']} {rt['blas']['kernel']}, "
                  f"{rt['threads']['intra_op']} threads)\n")
            print(f"target: AdamW's (lr {ref['lr']:g}) final training loss {target:.4f}\n")
            print("| run | final loss | validation | steps to target (x AdamW) | seconds to target (x AdamW) |"
                  " s/step (x AdamW) |")
            print("|---|---|---|---|---|---|")
            rows = [("adamw", ref, s0, t0), (f"--preset {preset}", kf, s1, t1)]
            rows += [(name, r, *first_reaching(r["history"], target)) for name, r in variants]
            for name, r, s, t in rows:
                reach = f"{s} ({s / s0:.2f}) | {t:.1f} ({t / t0:.2f})" if s else "not reached | -"
                print(f"| {name} | {smoothed(r['history'], len(r['history']) - 1):.4f} | {r['test_loss']:.4f} | "
                      f"{reach} | {r['seconds_per_step'] * 1e3:.1f} ms "
                      f"({r['seconds_per_step'] / ref['seconds_per_step']:.2f}) |")
            for name, r in [(f"--preset {preset}", kf), *variants]:
                profile = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in r.get("profile_seconds_per_step", {}).items())
                print(f"\nprofile of {name}: {profile}")
            plot(folder, {"adamw": ref, preset: kf, **{name: r for name, r in variants}})


if __name__ == "__main__":
    main()
