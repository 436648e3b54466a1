"""Ablation on real data: does each BA-Net module help at this scale?

    python benchmarks/ablation.py --data-dir ../shared/data/ph2 --seeds 0 1 --epochs 12 --img-size 160
    python benchmarks/ablation.py --data-dir ../shared/data/ph2 --out runs/ablation --from-csv  # redraw only

Trains the full lite BA-Net and, with the same recipe and budget, five ablated variants
(no PEE, no IA, no CFF, no ASPP, no deep supervision) and the U-Net baseline, for every seed;
each is evaluated on the fixed test split (split.csv) at the images' original size. Writes
RUN/ablation.csv (one row per variant and seed) and RUN/ablation.png (mean and spread), and
prints a Markdown table of mean +- standard deviation for benchmarks/RESULTS.md. `--from-csv`
skips training and redraws the table and plot from an existing RUN/ablation.csv.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from banet_lite.evaluate import evaluate  # noqa: E402
from banet_lite.files import write_csv  # noqa: E402
from banet_lite.model.banet import build_model, count_parameters  # noqa: E402
from banet_lite.model.config import ABLATIONS  # noqa: E402
from banet_lite.teaching.viz import save_figure  # noqa: E402
from banet_lite.training.train import TrainConfig, fit  # noqa: E402

VARIANTS = {  # name -> (preset, switches turned off): the full model, one per ablation switch, the baseline
    "BA-Net (full)": ("lite", {}),
    **{f"no {label}": ("lite", {switch: False}) for switch, label in ABLATIONS.items()},
    "U-Net": ("unet", {}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--img-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--budget-min", type=float, default=None, help="per run; a safety stop")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--from-csv", action="store_true", help="no training: redraw from OUT/ablation.csv")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = _read_csv(out / "ablation.csv") if args.from_csv else train_variants(args, out)
    report(rows, args, out)


def train_variants(args, out: Path) -> list[dict]:
    rows = []
    for name in args.variants:
        preset, off = VARIANTS[name]
        params = count_parameters(build_model(preset, **off))
        for seed in args.seeds:
            run = out / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}_seed{seed}"
            cfg = TrainConfig(preset=preset, data_dir=args.data_dir, out=str(run), epochs=args.epochs,
                              img_size=args.img_size, batch_size=args.batch_size, lr=args.lr, seed=seed,
                              progress=False, model_overrides=off,
                              time_budget=args.budget_min * 60 if args.budget_min else None)
            result = fit(cfg)
            _, summary = evaluate(result.best_path, args.data_dir, split="test", out_dir=run / "eval_test",
                                  progress=False)
            row = {"variant": name, "seed": seed, "params": params, "epochs": len(result.history),
                   "img_size": args.img_size,
                   "minutes": round(sum(h["seconds"] for h in result.history) / 60, 1),
                   "dice": summary["dice"], "jaccard": summary["jaccard"], "boundary_f": summary["boundary_f"],
                   "hd95": summary["hd95"]}
            rows.append(row)
            print(row, flush=True)
            write_csv(out / "ablation.csv", rows)
    return rows


def report(rows: list[dict], args, out: Path) -> None:
    """Markdown table of mean +- sd per variant, and a seaborn bar plot with every seed's point."""
    print("\n| variant | params | test Dice | test Jaccard | boundary F | HD95 (px) |")
    print("|---|---:|---:|---:|---:|---:|")
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for name in variants:
        sel = [r for r in rows if r["variant"] == name]
        cells = [_mean_sd([r[k] for r in sel], 1 if k == "hd95" else 3)
                 for k in ("dice", "jaccard", "boundary_f", "hd95")]
        print(f"| {name} | {sel[0]['params']:,} | " + " | ".join(cells) + " |")

    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 4))
    table = {k: [r[k] for r in rows] for k in ("variant", "dice")}  # seaborn takes a column mapping
    sns.barplot(data=table, x="dice", y="variant", errorbar="sd", ax=ax, color="#4c72b0")
    sns.stripplot(data=table, x="dice", y="variant", ax=ax, color="black", size=4)
    seeds = sorted({int(r["seed"]) for r in rows})
    ax.set_xlabel(f"test Dice (bar: mean, line: sd over seeds {seeds}; dots: single runs)")
    ax.set_ylabel("")
    epochs = max(int(r["epochs"]) for r in rows)
    size = rows[0].get("img_size", args.img_size)  # CSVs written before img_size was a column: from --img-size
    ax.set_title(f"Ablation on {Path(args.data_dir).resolve().name}: up to {epochs} epochs at {size}px")
    lo = min(r["dice"] for r in rows)
    ax.set_xlim(max(0.0, lo - 0.1), 1.0)
    fig.tight_layout()
    save_figure(fig, out / "ablation.png")


def _mean_sd(values: list[float], digits: int) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ablation results to redraw (run without --from-csv first)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("dice", "jaccard", "boundary_f", "hd95", "minutes"):
            r[k] = float(r[k])
        for k in ("seed", "params", "epochs", "img_size"):
            if k in r:
                r[k] = int(r[k])
    return rows


if __name__ == "__main__":
    main()
