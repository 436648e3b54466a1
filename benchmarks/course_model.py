"""Train the course model: the one trained BA-Net behind every explorer in notebooks 01-06.

    python benchmarks/course_model.py            # trains (fixed seed and budget), measures, packs

The recipe (`RECIPE`) is the tiny preset on the synthetic lesions at 96 px, the notebooks' size, with
the boundary class weighted 10x in the side boundary loss (the course's default, notebook 05), trained
longer than any notebook can afford. The script then measures the side boundary F1 per stage on
held-out synthetic images (a seed no training or validation image uses) and packs what the notebooks
load into the package (`banet_lite/assets/`):

    course_model.pt    weights, network config and input size: a checkpoint that `bl.evaluate.load_model`
                       reads too (no optimizer state), about 1.2 MB
    course_model.json  the training record: command, recipe, machine, date, the validation curve,
                       the held-out side boundary F1, and the SHA-256 of course_model.pt

`bl.course_model()` loads it offline and checks the SHA-256 first. The record's figures are what this
machine measured; the notebooks re-measure them on the machine that runs them, with tolerances.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from banet_lite.files import atomic_write
from banet_lite.model.weights import load_checkpoint, model_from_checkpoint
from banet_lite.teaching.course import ASSETS, HELD_OUT, held_out_side_f1
from banet_lite.training.train import TrainConfig, fit, read_history

RECIPE = dict(preset="tiny", img_size=96, epochs=60, synthetic_train=480, batch_size=8, lr=3e-3, seed=0,
              boundary_pos_weight=10.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/course_model", help="the training run's folder")
    parser.add_argument("--assets", default=str(ASSETS), help="where course_model.pt/.json go")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"], help="(for a quick try only)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--pack-only", action="store_true", help="no training: pack OUT/best.pt as it is")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    recipe = {**RECIPE, "epochs": args.epochs}
    if args.pack_only:  # a run that already trained (or is still training): pack its best.pt as it is
        history, minutes = read_history(Path(args.out) / "history.csv"), float("nan")
    else:
        started = time.perf_counter()
        history = fit(TrainConfig(out=args.out, progress=False, **recipe)).history
        minutes = (time.perf_counter() - started) / 60
    pack(Path(args.out) / "best.pt", recipe, history, minutes, Path(args.assets))


def pack(best: Path, recipe: dict, history: list[dict], minutes: float, assets: Path) -> None:
    """Write course_model.pt (weights, config, input size; no optimizer state) and its record."""
    ckpt = load_checkpoint(best)
    packed = {"model": ckpt["model"], "config": ckpt["config"], "img_size": ckpt["img_size"],
              "train_config": ckpt["train_config"], "epoch": ckpt["epoch"]}
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    weights = bytes(buffer.getbuffer())
    side_f1 = held_out_side_f1(model_from_checkpoint(packed).eval())
    record = {
        "about": "banet-lite's course model: tiny BA-Net on the synthetic lesions (benchmarks/course_model.py)",
        "command": shlex.join(["python", "benchmarks/course_model.py", *sys.argv[1:]]),
        "recipe": recipe, "best_epoch": ckpt["epoch"], "epochs_trained": len(history),
        "minutes": round(minutes, 1), "held_out": HELD_OUT, "held_out_side_f1": [round(f, 4) for f in side_f1],
        "history": [{k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()} for row in history],
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": datetime.date.today().isoformat(),
        "sha256": hashlib.sha256(weights).hexdigest(), "bytes": len(weights),
    }
    assets.mkdir(parents=True, exist_ok=True)
    atomic_write(assets / "course_model.pt", weights)
    atomic_write(assets / "course_model.json", (json.dumps(record, indent=1) + "\n").encode())
    best_val = max(row["val_dice"] for row in history)
    print(f"best epoch {ckpt['epoch']} of {len(history)}, val Dice {best_val:.4f}, {minutes:.1f} min; "
          f"held-out side boundary F1 per stage: {[round(f, 3) for f in side_f1]}")
    print(f"wrote {assets / 'course_model.pt'} ({len(weights):,} bytes, sha256 {record['sha256'][:12]}...)")


if __name__ == "__main__":
    main()
