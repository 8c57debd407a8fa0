"""AdamW against the transformer presets (issue 28): char-lm with --preset char-lm-kfac and vit with --preset
vit-kfac, each against AdamW at its best rate from the same sweep (bench/sweep_transformers.py), at 300 steps and at
a longer horizon, same seed and batches. Prints per model and horizon: training loss (20-step mean) and validation
loss, steps and seconds to AdamW's final training loss as ratios to AdamW's, the step time ratio and the K-FAC step's
profile; draws loss against steps and against seconds (gnuplot) into the report folder.

    /usr/bin/python3 bench/transformers_presets.py [--horizons 300,1000] [--out reports/transformers-presets]
        [--variant="--eigenbasis-iterations 1" ...] [--repeats 3] [--seeds 0,1,2]

Each --variant is a row more: the preset with those flags added (same seed and batches). With --repeats R every row
runs R times, round robin; the times are medians and the ratios medians of each round's ratio to AdamW's run of the
same round: single runs on a shared 2-vCPU machine move by 10-40%, and a slow spell can start mid-round. The last
column measures each run in units of its own training forward and backward (the same work for every method), which
takes out the machine's speed during that run. With --seeds every seed (initialization and batches) is a round of
its own, with its own target (AdamW's final loss at that seed): the step at which a run crosses the target moves by
about 10% with any perturbation of the run, so one seed cannot tell two settings apart by less than that; the steps
are the median over seeds, their ratio the median of each seed's ratio, and the losses the medians.
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


def run(path, flags, seed):
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}  # the tool picks the best kernel
        cmd = [str(KFAC), "train", *flags, "--seed", str(seed), "--eval-examples", "1000", "--quiet", "--profile",
               "--metrics-json", str(path)]
        print(" ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return json.loads(path.read_text())


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def combine(by_seed, targets):
    """One row from its runs, {seed: [repeats]}: per seed, the steps to that seed's target from its first run (the
    repeats are the same trajectory; the spread of their final losses is printed) and the seconds there in each
    repeat; times per run, in the same (seed, repeat) order for every row, and the profile's medians."""
    runs = [r for seed in by_seed for r in by_seed[seed]]
    steps = {seed: first_reaching(by_seed[seed][0]["history"], targets[seed])[0] for seed in by_seed}
    reached = all(steps.values())
    keys = runs[0].get("profile_seconds_per_step", {}).keys()
    return {"run": by_seed[min(by_seed)][0], "steps": steps, "reached": reached,
            "final": median([smoothed(rs[0]["history"], len(rs[0]["history"]) - 1) for rs in by_seed.values()]),
            "validation": median([rs[0]["test_loss"] for rs in by_seed.values()]),
            "seconds_each": [r["history"][steps[seed] - 1]["seconds"] for seed in by_seed for r in by_seed[seed]]
            if reached else None,
            "step_time_each": [r["seconds_per_step"] for r in runs],
            "forward_backward_each": [r["profile_seconds_per_step"]["forward + backward"] for r in runs],
            "spread": max(max(r["train_loss"] for r in rs) - min(r["train_loss"] for r in rs) for rs in by_seed.values()),
            "profile": {k: median([r["profile_seconds_per_step"][k] for r in runs]) for k in keys}}


def ratio(row, base, key, per_forward_backward=False):
    """The median over the rounds of the row's time over AdamW's in the same round: the machine's speed moves
    between rounds (a slow spell can start mid-run), and a ratio of medians would then mix rounds. Per forward +
    backward: each run's time in units of its own training forward and backward, the work every method does alike,
    so that a run that fell in a slow spell of the machine is measured by that spell's speed."""
    unit = (lambda r, i: r["forward_backward_each"][i]) if per_forward_backward else (lambda r, i: 1.0)
    return median([(a / unit(row, i)) / (b / unit(base, i)) for i, (a, b) in enumerate(zip(row[key], base[key]))])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--horizons", default="300,1000")
    ap.add_argument("--models", default="char-lm,vit")
    ap.add_argument("--out", default="reports/transformers-presets")
    ap.add_argument("--variant", action="append", default=[], help="flags added to the preset, one row each")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of every row, interleaved (round robin), so that a slow spell of the machine falls on "
                         "every row alike; times are the medians")
    ap.add_argument("--seeds", default="0",
                    help="seeds (initialization and batches), each with its own target (AdamW's final loss at that "
                         "seed); steps to target are medians of each seed's ratio to AdamW's: the crossing step moves "
                         "by about 10%% with any perturbation of a run")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    for model in args.models.split(","):
        adamw_flags, preset = SETUPS[model]
        for steps in map(int, args.horizons.split(",")):
            folder = out / f"{model}-{steps}"
            rows = [("adamw", "adamw", ["--model", model, *adamw_flags]), (f"--preset {preset}", preset, ["--preset", preset])]
            rows += [(f"--preset {preset} {v}", preset + v.replace(" ", "").replace("-", "_"),
                      ["--preset", preset, *v.split()]) for v in args.variant]
            seeds = [int(x) for x in args.seeds.split(",")]
            runs = {name: {seed: [] for seed in seeds} for name, _, _ in rows}
            for r in range(args.repeats):
                for seed in seeds:
                    for name, file, flags in rows:
                        suffix = ("" if r == 0 else f"-r{r}") + ("" if seed == 0 else f"-s{seed}")
                        runs[name][seed].append(run(folder / f"{file}{suffix}.json", [*flags, "--steps", str(steps)],
                                                    seed))
            targets = {seed: smoothed(h, len(h) - 1) for seed, h in
                       ((seed, runs["adamw"][seed][0]["history"]) for seed in seeds)}
            ref = runs["adamw"][seeds[0]][0]
            table = {name: combine(runs[name], targets) for name, _, _ in rows}
            base = table["adamw"]
            rt = ref["runtime"]
            print(f"\n### {model}, {steps} steps (BLAS {rt['blas']['library']} {rt['blas']['kernel']}, "
                  f"{rt['threads']['intra_op']} threads; times: medians of {args.repeats} interleaved rounds, "
                  "ratios: medians of each round's ratio to AdamW's)\n")
            print(f"target: AdamW's (lr {ref['lr']:g}) final training loss "
                  + ", ".join(f"{t:.4f} (seed {seed})" for seed, t in targets.items()) + "\n")
            print("| run | final loss | validation | steps to target (x AdamW) | seconds to target (x AdamW) |"
                  " s/step (x AdamW) | per forward + backward: seconds to target, s/step (x AdamW) |")
            print("|---|---|---|---|---|---|---|")
            for name, row in table.items():
                s = row["steps"]
                steps_ratio = median([s[seed] / base["steps"][seed] for seed in seeds]) if row["reached"] else 0
                reach = (f"{median(list(s.values()))} ({steps_ratio:.2f}) | {median(row['seconds_each']):.1f} "
                         f"({ratio(row, base, 'seconds_each'):.2f})") if row["reached"] else "not reached | -"
                spread = f" (±{row['spread']:.1e} over repeats)" if row["spread"] > 1e-6 else ""
                print(f"| {name} | {row['final']:.4f}{spread} | {row['validation']:.4f} | "
                      f"{reach} | {median(row['step_time_each']) * 1e3:.1f} ms "
                      f"({ratio(row, base, 'step_time_each'):.2f}) | "
                      + (f"{ratio(row, base, 'seconds_each', True):.2f}, " if row["reached"] else "-, ")
                      + f"{ratio(row, base, 'step_time_each', True):.2f} |")
            if len(seeds) > 1:
                print("\nsteps to target per seed " + ", ".join(map(str, seeds)) + ": "
                      + "; ".join(f"{name} " + "/".join(str(v) if v else "-" for v in row["steps"].values())
                                  for name, row in table.items()))
            for name, row in list(table.items())[1:]:
                profile = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in row["profile"].items())
                print(f"\nprofile of {name}: {profile}")
            plot(folder, {("adamw" if name == "adamw" else name.replace("--preset ", "")): runs[name][seeds[0]][0]
                          for name, _, _ in rows})


if __name__ == "__main__":
    main()
