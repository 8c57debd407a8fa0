"""Summarizes bench/transformers.sh: one table per model from the runs' metrics JSON (reports/transformers/MODEL/)."""
import json
import pathlib
import shutil
import subprocess
import sys


def smoothed(history, i, window=20):
    """Mean training loss over the `window` steps ending at step i (the curves are noisy minibatch losses)."""
    part = history[max(0, i - window + 1): i + 1]
    return sum(h["train_loss"] for h in part) / len(part)


def first_reaching(history, target):
    for i in range(len(history)):
        if smoothed(history, i) <= target:
            return history[i]["step"] + 1, history[i]["seconds"]
    return None, None


def plot(model_dir, best):
    """loss_vs_step.png and loss_vs_seconds.png of the best run of each method (20-step means), with gnuplot."""
    if shutil.which("gnuplot") is None:
        return
    names = []
    for key, r in best.items():
        name = key.replace(" ", "-")
        with open(model_dir / f"{name}.dat", "w") as f:
            for i, h in enumerate(r["history"]):
                f.write(f"{h['step'] + 1} {h['seconds']} {smoothed(r['history'], i)}\n")
        names.append((name, f"{key} (lr {r['lr']:g})"))
    for column, label, out in ((1, "step", "loss_vs_step.png"), (2, "seconds", "loss_vs_seconds.png")):
        lines = ", ".join(f"'{model_dir / n}.dat' using {column}:3 with lines title '{t}'" for n, t in names)
        script = (f"set terminal pngcairo size 800,500; set output '{model_dir / out}'; set xlabel '{label}'; "
                  f"set ylabel 'training loss (20-step mean)'; set title '{model_dir.name}'; plot {lines}")
        subprocess.run(["gnuplot", "-e", script], check=False)


def main(root):
    for model_dir in sorted(pathlib.Path(root).iterdir()):
        runs = [json.loads(p.read_text()) | {"file": p.stem} for p in sorted(model_dir.glob("*.json"))]
        if not runs:
            continue
        best = {}
        for r in runs:
            key = r["method"] + ("" if r["method"] == "adamw" else " " + r["file"].split("-")[1])
            r["final"] = smoothed(r["history"], len(r["history"]) - 1)
            if key not in best or r["final"] < best[key]["final"]:
                best[key] = r
        reference = best["adamw"]
        target = reference["final"]
        steps_ref, seconds_ref = first_reaching(reference["history"], target)
        rt = reference["runtime"]
        print(f"\n## {model_dir.name}: {reference['steps']} steps, batch {reference['batch_size']}, seed 0"
              f" (BLAS {rt['blas']['library']} {rt['blas']['kernel']}, {rt['threads']['intra_op']} threads)")
        print(f"target: AdamW's final training loss {target:.4f} (20-step mean)\n")
        print("| method | best lr | lrs tried: final loss | final loss | steps to target (x AdamW) |"
              " seconds to target (x AdamW) | s/step (x AdamW) | slowest K-FAC phase |")
        print("|---|---|---|---|---|---|---|---|")
        for key, r in best.items():
            tried = ", ".join(f"{x['lr']:g}: {x['final']:.3f}" for x in runs
                              if (x["method"] + ("" if x["method"] == "adamw" else " " + x["file"].split("-")[1])) == key)
            steps, seconds = first_reaching(r["history"], target)
            ratio = (lambda a, b: f"{a} ({a / b:.2f})" if a else "not reached")
            sec = f"{seconds:.1f} ({seconds / seconds_ref:.2f})" if seconds else "not reached"
            phases = {k: v for k, v in r.get("profile_seconds_per_step", {}).items()
                      if k not in ("forward + backward", "optimizer step")}
            slow = max(phases.items(), key=lambda kv: kv[1]) if phases and r["method"] != "adamw" else None
            slow_text = f"{slow[0]} {1000 * slow[1]:.1f} ms" if slow else ""
            print(f"| {key} | {r['lr']:g} | {tried} | {r['final']:.4f} | {ratio(steps, steps_ref)} | {sec} |"
                  f" {r['seconds_per_step'] * 1000:.1f} ms ({r['seconds_per_step'] / reference['seconds_per_step']:.2f})"
                  f" | {slow_text} |")
        plot(model_dir, best)
        print(f"\nplots: {model_dir}/loss_vs_step.png, loss_vs_seconds.png")
        print(f"\nregistration ({best.get('kfac expand', reference).get('registration', '')})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "reports/transformers")
