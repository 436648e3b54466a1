"""Does boundary supervision pay off? Four variants, several seeds, one dataset per call.

    python benchmarks/payoff.py --dataset ph2 --data-dir ../shared/data/ph2 --epochs 15 --img-size 128 --threads 1
    python benchmarks/payoff.py --dataset kvasir-seg --data-dir ../shared/data/kvasir_seg --epochs 4 --img-size 128 \
        --threads 1
    python benchmarks/payoff.py --dataset synthetic --epochs 15 --img-size 96 --threads 1  # writes its data first
    python benchmarks/payoff.py --report                                                    # the tables only

(the three runs that made benchmarks/results/payoff.json, side by side on the 2-core machine, one
thread each; Kvasir-SEG and PH2 from ../shared/data, which is not part of the repository)

Every variant trains the `lite` layout (the U-Net: a baseline of similar size) with the same recipe and
the same fixed budget (epochs at a given input size), seeds 0, 1, 2 by default:

| variant                        | what changes                                                   |
|--------------------------------|----------------------------------------------------------------|
| BA-Net                         | boundary pixels weighted 10x in the side edge loss (the course) |
| BA-Net, unweighted boundary    | the paper's and the authors' unweighted side edge loss          |
| BA-Net, no boundary loss       | side edge loss off (edge_weight=0): the edge branches learn     |
|                                | only what the segmentation losses ask of them                  |
| U-Net                          | none of BA-Net's modules                                        |

Each run is scored on the fixed test split (split.csv) at the images' original size: the final mask's
Dice, Jaccard, boundary F (2 px tolerance) and HD95. Results go to benchmarks/results/payoff.json, one
record per (dataset, variant, seed) with the command, recipe, machine and date; a record already
there is skipped, so an interrupted call resumes where it stopped. `--report` prints mean ± sd per
variant and dataset (what notebook 06 shows).
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from banet_lite.data import write_synthetic_dataset
from banet_lite.evaluate import evaluate
from banet_lite.files import atomic_write
from banet_lite.model.banet import build_model, count_parameters
from banet_lite.training.train import TrainConfig, fit

RESULTS = Path(__file__).resolve().parent / "results" / "payoff.json"

VARIANTS = {  # name -> (preset, TrainConfig overrides)
    "BA-Net": ("lite", {"edge_pos_weight": 10.0}),
    "BA-Net, unweighted boundary": ("lite", {"edge_pos_weight": None}),
    "BA-Net, no boundary loss": ("lite", {"edge_weight": 0.0}),
    "U-Net": ("unet", {}),
}
METRICS = ("dice", "jaccard", "boundary_f", "hd95")

# The course's synthetic data for this benchmark: the same generator as notebook 05, more images
# (400 lesions at 96 px: 320 for training, of which 32 validate, and 80 test images).
SYNTHETIC = {"n": 400, "size": 96, "seed": 0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="name recorded with the results (synthetic, ph2, kvasir-seg, ...)")
    parser.add_argument("--data-dir", help="images/ + masks/ + split.csv (not needed for --dataset synthetic)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--runs", default="runs/payoff", help="where the runs' checkpoints go")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--report", action="store_true", help="print the tables from --results; no training")
    parser.add_argument("--into", help="with --report: replace the payoff section of this Markdown file (RESULTS.md)")
    args = parser.parse_args()

    results = Path(args.results)
    if args.report:
        text = report(load(results))
        if args.into:
            write_section(Path(args.into), text)
        print(text)
        return
    if not args.dataset:
        parser.error("--dataset is required (or --report)")
    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = Path(args.runs) / "synthetic_data" if args.dataset == "synthetic" else args.data_dir
    if data_dir is None:
        parser.error("--data-dir is required for a dataset other than synthetic")
    if args.dataset == "synthetic":
        write_synthetic_dataset(data_dir, **SYNTHETIC)
    recipe = {"epochs": args.epochs, "img_size": args.img_size, "batch_size": args.batch_size, "lr": args.lr}
    for name in args.variants:
        for seed in args.seeds:
            if any(r["dataset"] == args.dataset and r["variant"] == name and r["seed"] == seed
                   and r["recipe"] == recipe for r in load(results)):
                print(f"{args.dataset} / {name} / seed {seed}: already in {results}", flush=True)
                continue
            record = train_and_score(args.dataset, data_dir, name, seed, recipe, Path(args.runs))
            add(results, record)
            print(json.dumps({k: record[k] for k in ("dataset", "variant", "seed", "minutes", *METRICS)}), flush=True)


def train_and_score(dataset: str, data_dir, variant: str, seed: int, recipe: dict, runs: Path) -> dict:
    preset, overrides = VARIANTS[variant]
    slug = "".join(c if c.isalnum() else "_" for c in variant)
    out = runs / dataset / f"{slug}_seed{seed}"
    cfg = TrainConfig(preset=preset, data_dir=str(data_dir), out=str(out), seed=seed, progress=False,
                      **recipe, **overrides)
    started = time.perf_counter()
    result = fit(cfg)
    minutes = (time.perf_counter() - started) / 60
    _, summary = evaluate(result.best_path, data_dir, split="test", progress=False)
    return {
        "dataset": dataset, "variant": variant, "seed": seed, "recipe": recipe,
        "preset": preset, "overrides": overrides, "params": count_parameters(build_model(preset)),
        "epochs_trained": len(result.history), "minutes": round(minutes, 2),
        "n_test": summary["n_images"], **{k: summary[k] for k in METRICS},
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
                   + f", {torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": datetime.date.today().isoformat(),
    }


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text())["runs"] if path.is_file() else []


def add(path: Path, record: dict) -> None:
    """Append one record; several calls (one per dataset) may run at once, so under a lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = load(path) + [record]
        runs.sort(key=lambda r: (r["dataset"], list(VARIANTS).index(r["variant"]), r["seed"]))
        atomic_write(path, (json.dumps({"about": __doc__.splitlines()[0], "runs": runs}, indent=1) + "\n").encode())


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (dataset, variant): n seeds and mean ± sd of every metric."""
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        for variant in VARIANTS:
            sel = [r for r in runs if r["dataset"] == dataset and r["variant"] == variant]
            if not sel:
                continue
            row = {"dataset": dataset, "variant": variant, "seeds": len(sel)}
            for k in METRICS:
                values = [r[k] for r in sel]
                row[k] = statistics.mean(values)
                row[f"{k}_sd"] = statistics.stdev(values) if len(values) > 1 else float("nan")
            rows.append(row)
    return rows


BEGIN, END = "<!-- payoff.py --report: begin -->", "<!-- payoff.py --report: end -->"


def write_section(path: Path, text: str) -> None:
    """Put `text` between the BEGIN and END markers of a Markdown file (appended with them if absent)."""
    old = path.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write(path, new.encode())


def report(runs: list[dict]) -> str:
    """Each dataset's command, budget and machine, then mean ± sd per variant (Markdown)."""
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        sel = [r for r in runs if r["dataset"] == dataset]
        recipe = sel[0]["recipe"]
        commands = sorted({r["command"] for r in sel})
        minutes = {v: statistics.mean(r["minutes"] for r in sel if r["variant"] == v)
                   for v in dict.fromkeys(r["variant"] for r in sel)}
        lines += [f"- **{dataset}**: {recipe['epochs']} epochs at {recipe['img_size']} px, "
                  f"batch {recipe['batch_size']}, lr {recipe['lr']:g}, {sel[0]['n_test']} test images; "
                  f"{sel[0]['machine']}; "
                  f"{min(r['date'] for r in sel)}; wall minutes per run (shared CPU): "
                  + ", ".join(f"{v} {m:.1f}" for v, m in minutes.items()) + "; "
                  + "; ".join(f"`{c}`" for c in commands)]
    lines += ["", "| dataset | variant | seeds | Dice | boundary F (2 px) | HD95 (px) |",
              "|---|---|---:|---:|---:|---:|"]
    for row in summarize(runs):
        cells = [f"{row[k]:.{1 if k == 'hd95' else 3}f} ± {row[k + '_sd']:.{1 if k == 'hd95' else 3}f}"
                 for k in ("dice", "boundary_f", "hd95")]
        lines.append(f"| {row['dataset']} | {row['variant']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
