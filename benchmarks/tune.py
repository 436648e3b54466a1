"""A small tuning sweep: which training settings should the lite preset default to?

    python benchmarks/tune.py --data-dir ../shared/data/kvasir_seg --epochs 6

Trains the lite preset from scratch once per setting below (one change from the current
defaults each, same seed, same short schedule) and evaluates every run on the fixed test split
at the images' original size. Writes RUN/tune.csv and RUN/tune.png and prints a Markdown table
for benchmarks/RESULTS.md. Short runs rank settings by how fast they learn, which is what a
fixed CPU budget rewards; confirm a winner with a full `train_real.py` run before adopting it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from banet_lite.evaluate import evaluate  # noqa: E402
from banet_lite.files import write_csv  # noqa: E402
from banet_lite.teaching.viz import save_figure  # noqa: E402
from banet_lite.training.train import TrainConfig, fit  # noqa: E402

SETTINGS = {  # name -> TrainConfig fields changed from the lite defaults
    "defaults": {},
    "lr 3e-4": {"lr": 3e-4},
    "lr 3e-3": {"lr": 3e-3},
    "augmentation x0.5": {"aug_strength": 0.5},
    "side losses x0.5": {"side_weight": 0.5},
    "batch 4": {"batch_size": 4},
    "input 160": {"img_size": 160},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--out", default="runs/tune")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.settings:
        run = out / name.replace(" ", "_")
        cfg = TrainConfig(preset="lite", data_dir=args.data_dir, out=str(run), epochs=args.epochs, seed=args.seed,
                          progress=False, **SETTINGS[name])
        result = fit(cfg)
        _, summary = evaluate(result.best_path, args.data_dir, split="test", out_dir=run / "eval_test", progress=False)
        rows.append({"setting": name, "epochs": len(result.history),
                     "train_minutes": round(sum(h["seconds"] for h in result.history) / 60, 1),
                     "best_val_dice": round(result.best_score, 4),
                     **{k: round(summary[k], 4) for k in ("dice", "jaccard", "boundary_f", "hd95")}})
        print(rows[-1], flush=True)
        write_csv(out / "tune.csv", rows)

    print("\n| setting | train min | best val Dice | test Dice | test Jaccard | boundary F | HD95 (px) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['setting']} | {r['train_minutes']} | {r['best_val_dice']:.3f} | {r['dice']:.3f} | "
              f"{r['jaccard']:.3f} | {r['boundary_f']:.3f} | {r['hd95']:.1f} |")

    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.2))
    sns.barplot(data={k: [r[k] for r in rows] for k in ("setting", "dice")}, x="dice", y="setting", ax=ax,
                color="#4c72b0")
    ax.set_xlabel(f"test Dice after {args.epochs} epochs (seed {args.seed})")
    ax.set_ylabel("")
    ax.set_title(f"lite on {Path(args.data_dir).resolve().name}: one change at a time")
    ax.set_xlim(max(0.0, min(r["dice"] for r in rows) - 0.1), 1.0)
    fig.tight_layout()
    save_figure(fig, out / "tune.png")


if __name__ == "__main__":
    main()
