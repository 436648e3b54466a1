"""Evaluation and inference with a trained checkpoint.

banet-lite's test protocol (the authors' code differs: it scores at the network's input size and
picks its epoch on the test split; notebook 06 compares them): each test image is resized to the
model's input size, segmented, and the prediction is resized back (bilinear on the logits) to the image's
original size, where DI, JA, AC, SE and SP (plus HD95 and the boundary F-score) are computed
against the original mask; the figures are then averaged over images (metrics.py states the
empty-prediction rule). `evaluate` writes `per_image.csv` and `summary.json`.

`predict` segments a folder of images without masks and writes, per image, a 0/255 PNG mask
at the original size and an overlay.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data as bdata
from .errors import ConfigError
from .files import atomic_write, save_png, write_csv
from .metrics import image_metrics, summarize
from .model.output import logits_to_mask
from .training.checkpoint import load_model

__all__ = ["evaluate", "load_model", "predict", "segment"]


@torch.no_grad()
def preprocess(image: np.ndarray, img_size: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (H, W, 3) image -> the (1, 3, S, S) tensor the network reads: resized and ImageNet-normalised,
    as in training."""
    return bdata.normalize(bdata.resize_image(image, img_size))[None].to(device)


def segment(model: nn.Module, image: np.ndarray, img_size: int) -> np.ndarray:
    """uint8 (H, W, 3) image -> bool (H, W) prediction at the image's own size."""
    x = preprocess(image, img_size, next(model.parameters()).device)  # (1, 3, S, S)
    logits = model(x).logits.float()  # (1, K, S, S)
    logits = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    return logits_to_mask(logits)[0].cpu().numpy()


def evaluate(checkpoint: str | os.PathLike, data_dir: str | os.PathLike, split: str | None = None,
             img_size: int | None = None, out_dir: str | os.PathLike | None = None, device: str = "auto",
             progress: bool = True) -> tuple[list[dict], dict]:
    """Per-image metrics and their summary for a folder, or for one split of it (`split.csv`'s, or
    without one the seeded split the checkpoint's training run drew)."""
    model, ckpt = load_model(checkpoint, device)
    img_size = img_size or ckpt["img_size"]
    root = Path(data_dir)
    if split is None:
        pairs = bdata.find_pairs(root)
    else:
        # split.csv when there is one; else the seeded split that fit() drew with the run's own settings
        if split not in bdata.SPLITS:
            raise ConfigError(f"--split {split}: must be one of {sorted(bdata.SPLITS)}")
        train_cfg = ckpt.get("train_config", {})
        pairs = bdata.load_splits(root, seed=train_cfg.get("seed", 0), val_fraction=train_cfg.get("val_fraction", 0.1),
                                  validate=False)[split]
        if not pairs:
            raise bdata.DatasetError(f"{root}: no images in split {split!r}")
    bdata.validate_pairs(pairs, root)  # only the pairs evaluated here

    rows = []
    for pair in tqdm(pairs, desc="evaluate", disable=not progress, leave=False):
        pred = segment(model, bdata.load_image(pair.image), img_size)
        rows.append({"stem": pair.stem, **image_metrics(pred, bdata.load_mask(pair.mask) > 0)})
    summary = {**summarize(rows), "checkpoint": str(checkpoint), "data_dir": str(root), "split": split or "all",
               "img_size": img_size}

    out = Path(out_dir) if out_dir else Path(checkpoint).parent / f"eval_{split or 'all'}"
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "per_image.csv", rows)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return rows, summary


def predict(checkpoint: str | os.PathLike, input_dir: str | os.PathLike, output_dir: str | os.PathLike,
            img_size: int | None = None, device: str = "auto", progress: bool = True) -> list[Path]:
    """Masks (`<stem>.png`, 0/255, original size) and overlays (`<stem>_overlay.png`)."""
    from .teaching.overlay import overlay  # numpy only: no plotting stack

    model, ckpt = load_model(checkpoint, device)
    img_size = img_size or ckpt["img_size"]
    src = Path(input_dir)
    if not src.is_dir():
        raise bdata.DatasetError(f"{src}: input folder not found")
    images = sorted(p for p in src.iterdir()
                    if p.suffix.lower() in bdata.IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not images:
        raise bdata.DatasetError(f"{src}: no images found (looked for {', '.join(sorted(bdata.IMAGE_EXTENSIONS))})")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in tqdm(images, desc="predict", disable=not progress, leave=False):
        image = bdata.load_image(path)
        pred = segment(model, image, img_size)
        mask_path, overlay_path = out / f"{path.stem}.png", out / f"{path.stem}_overlay.png"
        save_png((pred * 255).astype(np.uint8), mask_path)  # (H, W) uint8: a gray PNG
        save_png(overlay(image, np.zeros_like(pred), pred), overlay_path)
        written.append(mask_path)
    return written

