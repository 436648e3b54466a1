"""Evaluation and inference with a trained checkpoint.

banet-lite's test protocol (the authors' code differs: it scores at the network's input size and
picks its epoch on the test split; notebook 06 compares them): each test image is resized to the
model's input size, segmented, and the prediction is resized back (bilinear on the logits) to
the image's original size, where DI, JA, AC, SE and SP (plus HD95 and the boundary F-score) are
computed against the original mask; the figures are then averaged over images (metrics.py states the
empty-prediction rule). `evaluate` checks the folder first (data/checks.py), then writes
`per_image.csv` and `summary.json` (strict JSON: an undefined mean, e.g. HD95 with every prediction
empty, is null) to `eval_<data folder>_<split>` next to the checkpoint, unless told another folder.

Which images: `split="test"` (or "train", "val") takes split.csv's, or without one the seeded split
the checkpoint's run drew; `split="all"` every image. Without a split, the test split when
the folder has a split.csv or is the folder the checkpoint was trained on (so training images are
never mixed in silently), else every image (a separate test set).

`predict` segments an image or a folder of images without masks and writes, per image,
`<stem>_mask.png` (0/255 at the original size), `<stem>_overlay.png` and, when asked,
`<stem>_prob.png` (the foreground probability, 16-bit: p = value / 65535), never into the input
folder and never over an existing file unless told to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data as bdata
from .errors import ConfigError
from .files import atomic_write, check_writable, json_text, make_folder, save_png, write_csv
from .metrics import image_metrics, summarize
from .model.config import min_img_size
from .model.output import foreground_probability, logits_to_mask
from .model.weights import load_model

__all__ = ["evaluate", "load_model", "predict", "segment"]


@torch.no_grad()
def preprocess(image: np.ndarray, img_size: int,
               device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (H, W, 3) image -> the (1, 3, S, S) tensor the network reads: resized and
    ImageNet-normalised, as in training."""
    return bdata.normalize(bdata.resize_image(image, img_size))[None].to(device)


@torch.no_grad()
def image_logits(model: nn.Module, image: np.ndarray, img_size: int) -> torch.Tensor:
    """uint8 (H, W, 3) image -> float (1, K, H, W) logits at the image's own size."""
    x = preprocess(image, img_size, next(model.parameters()).device)  # (1, 3, S, S)
    logits = model(x).logits.float()  # (1, K, S, S)
    return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)


def segment(model: nn.Module, image: np.ndarray, img_size: int) -> np.ndarray:
    """uint8 (H, W, 3) image -> bool (H, W) prediction at the image's own size."""
    return logits_to_mask(image_logits(model, image, img_size))[0].cpu().numpy()


def segment_with_probability(model: nn.Module, image: np.ndarray,
                             img_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(bool (H, W) prediction, float32 (H, W) foreground probability), at the image's own size."""
    logits = image_logits(model, image, img_size)
    return logits_to_mask(logits)[0].cpu().numpy(), foreground_probability(logits)[0].cpu().numpy()


def checked_img_size(img_size: int | None, ckpt: dict, model: nn.Module) -> int:
    """The input size to run at: `img_size`, else the checkpoint's; one ConfigError line if
    the network cannot take it."""
    size = img_size if img_size is not None else ckpt["img_size"]
    smallest = min_img_size(model.config)
    if isinstance(size, bool) or not isinstance(size, int) or size < smallest:
        raise ConfigError(f"--img-size {size}: this network takes images of {smallest} px or more")
    return size


def choose_split(root: Path, split: str | None, train_cfg: dict) -> tuple[str, str]:
    """(split, why): `split` as asked, else "test" where the folder has split.csv or is
    the checkpoint's own training folder, else "all" (module docstring)."""
    names = (*bdata.SPLITS, "all")
    if split is not None:
        if split not in names:
            raise ConfigError(f"--split {split}: must be one of {', '.join(names)}")
        return split, "as asked"
    if (root / "split.csv").is_file():
        return "test", "the folder's split.csv; --split all for every image"
    trained_on = train_cfg.get("data_dir")
    if trained_on and os.path.abspath(trained_on) == os.path.abspath(root):
        return "test", "the checkpoint was trained on this folder; --split all for every image"
    return "all", "no split.csv, and not the checkpoint's training folder"


def results_folder(checkpoint, root: Path, split: str, out_dir=None) -> Path:
    """`out_dir`, else `eval_<data folder>_<split>` next to the checkpoint: two data sets or two
    splits never write over each other's results."""
    if out_dir:
        return Path(out_dir)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in root.resolve().name) or "data"
    return Path(checkpoint).parent / f"eval_{name}_{split}"


def check_results_folder(out: Path, summary: dict, overwrite: bool = False) -> None:
    """Refuse to replace the results of another evaluation (another checkpoint, data folder or
    split) in `out` unless `overwrite`; the same evaluation run again replaces its own."""
    files = [name for name in ("per_image.csv", "summary.json") if (out / name).exists()]
    if not files or overwrite:
        return
    try:
        earlier = json.loads((out / "summary.json").read_text())
        same = all(earlier.get(k) == summary[k] for k in ("checkpoint", "data_dir", "split"))
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        raise ConfigError(f"{out}: holds the results of another evaluation ({', '.join(files)}); "
                          "choose another --out, or pass --overwrite to replace them")


def evaluate(checkpoint: str | os.PathLike, data_dir: str | os.PathLike, split: str | None = None,
             img_size: int | None = None, out_dir: str | os.PathLike | None = None,
             device: str = "auto", progress: bool = True, foreground: int | None = None,
             overwrite: bool = True,
             show: Callable[[dict], None] | None = None) -> tuple[list[dict], dict]:
    """Per-image metrics and their summary for a folder or one split of it (module docstring: which
    images, where the results go). The folder is checked before any inference, as training checks
    it; `foreground` (default: the checkpoint's run's) names the lesion's value in label masks.
    `show(summary)` is called before anything is written (the CLI prints it there).
    `overwrite=False` (the CLI's default, unless `--overwrite`) refuses to replace another
    evaluation's results; from Python, results go where told.

    Args:
        checkpoint: a best.pt or last.pt written by `fit`.
        data_dir: an images/ + masks/ folder.
        split: "test", "val", "train" or "all" (None: the test split where there is one, else all).
        img_size: the input size (default: the checkpoint's training size).
        out_dir: where per_image.csv and summary.json go (None: nowhere).

    Returns:
        (rows, summary): one dict per image (stem, every metric of metrics.py), and their means
        with the split, image count and checkpoint.

    Example:
        >>> rows, summary = evaluate("runs/a/best.pt", "data/synthetic", split="test")
        >>> summary["dice"], summary["hd95"]
    """
    model, ckpt = load_model(checkpoint, device)
    img_size = checked_img_size(img_size, ckpt, model)
    train_cfg = ckpt.get("train_config") or {}
    foreground = foreground if foreground is not None else train_cfg.get("foreground")
    root = Path(data_dir)
    split, why = choose_split(root, split, train_cfg)
    if split == "all":
        pairs = bdata.find_pairs(root)
    else:
        # split.csv when there is one; else the seeded split that fit() drew with the run's own
        # settings
        pairs = bdata.load_splits(root, seed=train_cfg.get("seed", 0),
                                  val_fraction=train_cfg.get("val_fraction", 0.1),
                                  validate=False)[split]
        if not pairs:
            raise bdata.DatasetError(f"{root}: no images in split {split!r}")
    stats = bdata.validate_pairs(pairs, root, foreground)  # only the pairs evaluated here
    bdata.check_splits({split: pairs}, stats, root, need=[split])
    out = results_folder(checkpoint, root, split, out_dir)
    identity = {"checkpoint": os.path.abspath(checkpoint), "data_dir": os.path.abspath(root),
                "split": split}
    check_results_folder(out, identity, overwrite)
    check_writable(out)  # before the inference, not after it

    rows = []
    for pair in tqdm(pairs, desc="evaluate", disable=not progress, leave=False):
        pred = segment(model, bdata.load_image(pair.image), img_size)
        rows.append({"stem": pair.stem,
                     **image_metrics(pred, bdata.load_mask(pair.mask, foreground=foreground) > 0)})
    summary = {**summarize(rows), **identity, "split_chosen_by": why, "img_size": img_size,
               "results": str(out)}
    if show is not None:
        show(summary)
    make_folder(out)
    write_csv(out / "per_image.csv", rows)
    atomic_write(out / "summary.json", json_text(summary) + "\n")
    return rows, summary


# ------------------------------------------------------------------------------------------ predict
OUTPUT_SUFFIXES = {"mask": "_mask.png", "overlay": "_overlay.png", "probability": "_prob.png"}


def predict_inputs(src: Path) -> list[Path]:
    """The images to segment: `src` itself when it is an image file, else the images in the folder
    `src`; two files of one stem (a.jpg, a.png) would write one a_mask.png, so they are refused."""
    if src.is_file():
        if src.suffix.lower() not in bdata.IMAGE_EXTENSIONS:
            raise bdata.DatasetError(f"{src}: not an image file (expected "
                                     f"{', '.join(bdata.IMAGE_EXTENSIONS)})")
        return [src]
    if not src.is_dir():
        raise bdata.DatasetError(f"{src}: no such image or folder")
    images = sorted(p for p in src.iterdir()
                    if p.suffix.lower() in bdata.IMAGE_EXTENSIONS and not p.name.startswith(".")
                    and p.is_file())
    if not images:
        raise bdata.DatasetError(f"{src}: no images found (looked for "
                                 f"{', '.join(sorted(bdata.IMAGE_EXTENSIONS))})")
    seen: dict[str, Path] = {}
    for path in images:
        if path.stem in seen:
            raise bdata.DatasetError(f"{path}: another image has the same stem {path.stem!r} "
                                     f"({seen[path.stem].name}); their outputs would share one "
                                     "name: rename or move one of them")
        seen[path.stem] = path
    return images


def prediction_targets(images: list[Path], src: Path, out: Path, probabilities: bool,
                       overwrite: bool) -> list[dict[str, Path]]:
    """{kind: path} per image (`<stem>_mask.png`, `<stem>_overlay.png`, `<stem>_prob.png`), once
    the output folder is known to be safe: not the input folder nor inside it (outputs would be read
    as inputs next time, or replace them), and no file there replaced unless `overwrite`."""
    folder = src if src.is_dir() else None
    if folder is not None and (out.resolve() == folder.resolve()
                               or folder.resolve() in out.resolve().parents):
        raise ConfigError(f"--output {out}: is the input folder {folder} or inside it; write "
                          "the predictions to another folder")
    kinds = [k for k in OUTPUT_SUFFIXES if k != "probability" or probabilities]
    targets = [{k: out / f"{image.stem}{OUTPUT_SUFFIXES[k]}" for k in kinds} for image in images]
    inputs = {image.resolve() for image in images}
    clash = [p for t in targets for p in t.values()
             if p.exists() and (p.resolve() in inputs or not overwrite)]
    if clash:
        raise ConfigError(f"{clash[0]}: exists already ({len(clash)} of the files predict would "
                          "write do); choose another --output"
                          + ("" if clash[0].resolve() in inputs else ", or pass --overwrite"))
    return targets


def predict(checkpoint: str | os.PathLike, input_dir: str | os.PathLike,
            output_dir: str | os.PathLike, img_size: int | None = None, device: str = "auto",
            progress: bool = True, probabilities: bool = False,
            overwrite: bool = True) -> list[Path]:
    """Segment an image, or every image in a folder; per image `<stem>_mask.png`
    (0/255, the image's size), `<stem>_overlay.png` and, with `probabilities`, `<stem>_prob.png`:
    the foreground probability as a 16-bit grayscale PNG, p = value / 65535. Returns the mask paths.
    Everything is checked before the first image is segmented (`predict_inputs`,
    `prediction_targets`, the output folder writable). `overwrite=False` (the CLI's default, unless
    `--overwrite`) refuses to replace files an earlier prediction wrote; an input file is never
    replaced, and the output folder is never the input folder or inside it.

    Args:
        checkpoint: a best.pt or last.pt written by `fit`.
        input_dir: one image, or a folder of images.
        output_dir: where the PNGs go (not the input folder, nor inside it).
        img_size: the input size (default: the checkpoint's training size).

    Returns:
        the paths of the written masks, one per image.

    Example:
        >>> predict("runs/a/best.pt", "my_images/", "runs/a/predictions", probabilities=True)
    """
    from .overlay import overlay  # numpy only: no plotting stack

    model, ckpt = load_model(checkpoint, device)
    img_size = checked_img_size(img_size, ckpt, model)
    src, out = Path(input_dir), Path(output_dir)
    images = predict_inputs(src)
    targets = prediction_targets(images, src, out, probabilities, overwrite)
    check_writable(out)
    # every image decodes (JPEGs at 1/8 scale), or one line before anything is written
    for path in images:
        bdata.load_image(path, draft_size=1)
    make_folder(out)
    for path, target in tqdm(list(zip(images, targets)), desc="predict", disable=not progress,
                             leave=False):
        image = bdata.load_image(path)
        pred, prob = segment_with_probability(model, image, img_size)
        save_png((pred * 255).astype(np.uint8), target["mask"])  # (H, W) uint8: a gray PNG
        save_png(overlay(image, np.zeros_like(pred), pred), target["overlay"])
        if probabilities:
            save_png(np.round(prob * 65535).astype(np.uint16), target["probability"])  # 16-bit gray
    return [t["mask"] for t in targets]
