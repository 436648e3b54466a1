"""Train a preset from scratch on a real dataset within a wall-time budget; report test metrics.

    python benchmarks/train_real.py --data-dir ../shared/data/kvasir_seg --budget-min 30
    python benchmarks/train_real.py --data-dir ../shared/data/ph2 --budget-min 30

The folder's `split.csv` fixes the test images (Kvasir-SEG 880/120, PH2 160/40); validation for
model selection is a seeded tenth of the training split, so the test images are only seen by
the final evaluation. `--epochs` sets the length of the poly schedule; choose it so that the
run ends inside the budget (the budget is a safety stop after the epoch in progress). The test
figures are computed at each image's original size (evaluate.py). Prints one Markdown row for
benchmarks/RESULTS.md and writes RUN/result.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch

from banet_lite.evaluate import evaluate
from banet_lite.training.train import TrainConfig, fit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--budget-min", type=float, default=30.0)
    parser.add_argument("--epochs", type=int, help="schedule length (default: the preset's)")
    parser.add_argument("--img-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--aug-strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="run folder (default: runs/bench_<dataset>_<preset>)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                        help="mixed precision as fit chooses it (CPU: bfloat16 where native, lite/paper); "
                             "--no-amp: float32")
    parser.add_argument("--cpu-fast-path", action=argparse.BooleanOptionalAction, default=True,
                        help="fit's CPU fast path for paper (weight gradients as matrix products, fused Adam)")
    parser.add_argument("--ablate", nargs="*", default=[], help="config switches to turn off, e.g. use_pee")
    args = parser.parse_args()

    name = Path(args.data_dir).resolve().name
    out = Path(args.out or f"runs/bench_{name}_{args.preset}")
    cfg = TrainConfig(preset=args.preset, data_dir=args.data_dir, out=str(out), epochs=args.epochs,
                      img_size=args.img_size, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      device=args.device, amp=args.amp, cpu_fast_path=args.cpu_fast_path,
                      aug_strength=args.aug_strength,
                      time_budget=args.budget_min * 60, progress=False, model_overrides={k: False for k in args.ablate})
    started = time.perf_counter()
    result = fit(cfg)
    train_minutes = (time.perf_counter() - started) / 60
    _, summary = evaluate(result.best_path, args.data_dir, split="test", out_dir=out / "eval_test", progress=False,
                          device=args.device)
    resolved = cfg.resolved()
    record = {
        "dataset": name, "preset": args.preset, "ablate": args.ablate, "seed": args.seed,
        "epochs_run": len(result.history), "epochs_planned": resolved.epochs, "img_size": resolved.img_size,
        "batch_size": resolved.batch_size, "lr": resolved.lr, "amp": args.amp,
        "cpu_fast_path": args.cpu_fast_path, "train_minutes": round(train_minutes, 1),
        "best_val_dice": round(result.best_score, 4),
        **{f"test_{k}": round(v, 4) for k, v in summary.items() if isinstance(v, float)},
        "n_test": summary["n_images"], "torch": torch.__version__,
        "device": str(torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu"
                      else f"CPU, {torch.get_num_threads()} threads ({platform.machine()})"),
        "date": datetime.date.today().isoformat(), "stopped_early": result.stopped_early,
    }
    (out / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"| {name} | {args.preset} | {resolved.img_size} | {record['epochs_run']}/{record['epochs_planned']} | "
          f"{record['train_minutes']} | {record['test_dice']:.3f} | {record['test_jaccard']:.3f} | "
          f"{record['test_boundary_f']:.3f} | {record['test_hd95']:.1f} |")


if __name__ == "__main__":
    main()
