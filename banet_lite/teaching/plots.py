"""Static pictures: mask overlays, batches, training curves, metric distributions.

Every plotting function returns a matplotlib `Figure` and never calls `plt.show()`, so the same code
serves notebooks, the command line and headless tests (Agg). Each figure is made by pyplot (so a
notebook's inline display knows how to draw it) and closed at once (so pyplot never shows it by
itself): in a notebook it shows once, as the cell's value or with `display(fig)`, and needs no
`plt.close`; many figures in a loop do not pile up in pyplot's registry.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..data.transforms import denormalize
from ..files import atomic_write, read_csv
from ..metrics import confusion, dice
from ..model.output import foreground_probability, logits_to_mask
from ..overlay import _to_mask, overlay

_MPL_VERSION = tuple(int(p) for p in matplotlib.__version__.split(".")[:2])

# --------------------------------------------------------------------------------------------------
# Conversions: normalised tensors -> uint8 images, anything mask-like -> (H, W) bool
# --------------------------------------------------------------------------------------------------


def _new_figure(**kwargs) -> Figure:
    """A figure from pyplot, closed at once: drawable and savable, never shown or kept by pyplot."""
    fig = plt.figure(**kwargs)
    plt.close(fig)
    return fig


def _denormalize(t: Tensor) -> np.ndarray:
    """ImageNet-normalised (3, H, W) or (B, 3, H, W) -> uint8 (H, W, 3) or (B, H, W, 3)
    (data.transforms)."""
    return np.asarray(denormalize(t))


def _to_images(images) -> list[np.ndarray]:
    """(B, 3, H, W) normalised tensor, (B, H, W, 3) uint8 array, or a list of (H, W, 3) uint8 ->
    list."""
    if isinstance(images, Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError("viz.py: images tensor must be (B, 3, H, W), "
                             f"got {tuple(images.shape)}")
        return list(_denormalize(images))
    out = [np.asarray(im) for im in images]
    for im in out:
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError("viz.py: images must be uint8 (H, W, 3) arrays, "
                             f"got {im.dtype} {im.shape}")
    return out


# --------------------------------------------------------------------------------------------------
# Overlays and batches
# --------------------------------------------------------------------------------------------------


def show_map(ax, picture, mask, cmap: str = "magma", vmin: float = 0.0, vmax: float = 1.0):
    """Draw an (h, w) map stretched over the (H, W) image extent of `mask` (each map pixel a block),
    with the true outline in green, on a matplotlib axes without ticks; returns the image, for
    a colorbar."""
    picture = (picture.detach().float().cpu().numpy() if isinstance(picture, Tensor)
               else np.asarray(picture))
    mask = _to_mask(mask)
    H, W = mask.shape
    im = ax.imshow(picture, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                   extent=(-0.5, W - 0.5, H - 0.5, -0.5))
    ax.contour(mask.astype(float), levels=[0.5], colors="lime", linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def show_batch(images, masks, preds=None, titles=None, ncols: int = 4) -> Figure:
    """A grid of overlays: ground truth in green, prediction (if given) in red, with per-image Dice.

    images: (B, 3, H, W) normalised tensor or B uint8 (H, W, 3) arrays; masks, preds: B masks of 0/1
    ((B, 1, H, W) tensors work). Turn logits into masks first with metrics.probabilities_to_mask.
    """
    images = _to_images(images)
    B = len(images)
    masks = [_to_mask(m, "masks") for m in masks]
    preds = None if preds is None else [_to_mask(p, "preds") for p in preds]
    if any(x is not None and len(x) != B for x in (masks, preds, titles)):
        raise ValueError(f"viz.py: show_batch needs as many masks / preds / titles as images ({B})")
    ncols = max(1, min(ncols, B))
    nrows = -(-B // ncols)
    fig = _new_figure(figsize=(3.2 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= B:
            fig.delaxes(ax)
            continue
        pred = None if preds is None else preds[i]
        ax.imshow(overlay(images[i], masks[i], pred))
        title = titles[i] if titles is not None else f"#{i}"
        if pred is not None and titles is None:
            title += f"  Dice {dice(*confusion(pred, masks[i])):.3f}"
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    legend = "green: ground truth" + ("   red: prediction" if preds is not None else "")
    fig.suptitle(legend, fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------------
# Curves and distributions
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def show_segmentation(model: nn.Module, images: Tensor, masks: Tensor, stage: int = 1,
                      titles: list[str] | None = None) -> Figure:
    """What a trained BA-Net does, one row per image: the image, the true mask, the predicted mask
    (with its Dice) and one stage's side boundary probability, the head BA-Net adds to a plain
    segmenter.

    images (B, 3, H, W) ImageNet-normalised, masks (B, 1, H, W) in {0, 1}; the model runs on its
    device."""
    device = next(model.parameters()).device
    out = model.eval()(images.to(device))
    pred = logits_to_mask(out.logits.float()).cpu().numpy()  # (B, H, W) bool
    # (B, H, W)
    boundary = foreground_probability(out.side_boundaries[stage - 1].float()).cpu().numpy()
    pictures, truth = _to_images(images), [_to_mask(m, "masks") for m in masks]
    fig = _new_figure(figsize=(10.4, 2.7 * len(pictures)), layout="constrained")
    axes = fig.subplots(len(pictures), 4, squeeze=False)
    for row, (picture, t, p, b) in enumerate(zip(pictures, truth, pred, boundary)):
        panels = ((picture, titles[row] if titles else "image", {}),
                  (t, "true mask", {"cmap": "gray"}),
                  (p, f"prediction (Dice {dice(*confusion(p, t)):.2f})", {"cmap": "gray"}),
                  (b, f"side boundary, stage {stage}", {"cmap": "magma", "vmin": 0, "vmax": 1}))
        for ax, (shown, title, style) in zip(axes[row], panels):
            ax.imshow(shown, **style)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    return fig


def _read_history(history) -> list[dict]:
    if isinstance(history, (str, os.PathLike)):
        path = Path(history)
        if not path.is_file():
            raise FileNotFoundError(f"viz.py: history file {path} does not exist")
        return read_csv(path)
    return list(history)


def plot_history(history) -> Figure:
    """Training curves from a list of dicts or a history.csv: losses per epoch, and val Dice /
    Jaccard.

    Columns used (those present): epoch, train_loss, val_loss, val_dice, val_jaccard.
    """
    import pandas as pd

    rows = _read_history(history)
    if not rows:
        raise ValueError("viz.py: plot_history got an empty history")
    df = pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce")
    if "epoch" not in df:
        df["epoch"] = np.arange(1, len(df) + 1)
    groups = [
        ("loss", [c for c in ("train_loss", "val_loss") if c in df and df[c].notna().any()]),
        ("score", [c for c in ("val_dice", "val_jaccard") if c in df and df[c].notna().any()]),
    ]
    groups = [(label, cols) for label, cols in groups if cols]
    if not groups:
        raise ValueError("viz.py: history has none of train_loss, val_loss, val_dice, val_jaccard")

    fig = _new_figure(figsize=(5.5 * len(groups), 3.8), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (label, cols) in zip(axes, groups):
        long = df.melt(id_vars="epoch", value_vars=cols, var_name="curve",
                       value_name=label).dropna()
        sns.lineplot(data=long, x="epoch", y=label, hue="curve",
                     marker="o" if len(df) <= 40 else None, ax=ax)
        ax.set_title("loss per epoch" if label == "loss" else "validation Dice / Jaccard per epoch")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title=None)
        # mark the best epoch of the first score (what a checkpoint would keep)
        if label == "score":
            best = df[cols[0]].idxmax()
            epoch, value = df["epoch"][best], df[cols[0]][best]
            ax.plot([epoch], [value], marker="*", markersize=13, color="gold", markeredgecolor="k",
                    zorder=5)
            ax.text(0.98, 0.04, f"best {cols[0]} {value:.3f} (epoch {epoch:g})",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=9)
    return fig


def plot_metric_distribution(rows: list[dict], metric: str = "dice") -> Figure:
    """Per-image spread of one metric: a histogram and a box plot with every image as a dot."""
    values = np.array([float(r[metric]) for r in rows if metric in r], dtype=np.float64)
    if len(values) == 0:
        raise ValueError(f"viz.py: no row has the metric {metric!r}")
    missing = int(np.isnan(values).sum())
    values = values[~np.isnan(values)]

    fig = _new_figure(figsize=(10, 3.6), layout="constrained")
    ax_hist, ax_box = fig.subplots(1, 2)
    sns.histplot(values, bins=min(30, max(5, len(values) // 3)), ax=ax_hist, color="C0")
    ax_hist.set_xlabel(metric)
    ax_hist.set_ylabel("images")
    ax_hist.set_title(f"{metric}: histogram")
    # horizontal box (matplotlib's own: seaborn's boxplot warns on matplotlib >= 3.11),
    # one dot per image
    horizontal = {"orientation": "horizontal"} if _MPL_VERSION >= (3, 10) else {"vert": False}
    ax_box.boxplot(values, positions=[0], widths=0.5, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#1f77b459"}, medianprops={"color": "C0"}, **horizontal)
    sns.stripplot(x=values, ax=ax_box, color="C3", size=3.5, jitter=0.2, alpha=0.7)
    ax_box.set_yticks([])
    ax_box.set_xlabel(metric)
    ax_box.set_title(f"{metric}: per image")
    summary = (f"{metric} over {len(values)} images: mean {values.mean():.3f}, "
               f"median {np.median(values):.3f}")
    if missing:
        summary += f"  ({missing} undefined, left out)"
    fig.suptitle(summary, fontsize=10)
    return fig


def figure_to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path, dpi: int = 120) -> Path:
    """Write a figure as PNG atomically (temporary file + os.replace); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
