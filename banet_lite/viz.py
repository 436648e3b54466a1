"""Pictures: mask overlays, batches, training curves, metric distributions, and the map explorer.

Every plotting function returns a matplotlib `Figure` and never calls `plt.show()`, so the same code
serves notebooks, the command line and headless tests (Agg). Each figure is made by pyplot (so a
notebook's inline display knows how to draw it) and closed at once (so pyplot never shows it by
itself): in a notebook it shows once, as the cell's value or with `display(fig)`, and needs no
`plt.close`; many figures in a loop do not pile up in pyplot's registry.

The map explorer shows what BA-Net computes inside, per stage (stage 1 at 1/4 of the input, 2-4 at 1/8):
  PEE edge response   |F' - avg_k(F')|           (B, 2R, h, w)   how "edgy" each feature is
  IA seg->edge mask   1 - sigmoid(A_e(e))          (B, R, h, w)    what the seg branch may add to the edges
  IA edge->seg mask   1 - sigmoid(A_s(s))          (B, R, h, w)    what the edge branch may add to the seg
  CFF gate            1 - sigmoid(W_i S_i)         (B, R, h, w)    how much stage i takes from the others
  side outputs, final prediction: foreground probability
Channel maps are reduced to one (h, w) picture by mean, max or a single channel.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .metrics import boundary, confusion, dice, probabilities_to_mask

_MPL_VERSION = tuple(int(p) for p in matplotlib.__version__.split(".")[:2])
GT_COLOUR = (40, 220, 60)  # ground truth: green
PRED_COLOUR = (240, 50, 40)  # prediction: red
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ---------------------------------------------------------------------------------------------------------
# Conversions: normalised tensors -> uint8 images, anything mask-like -> (H, W) bool
# ---------------------------------------------------------------------------------------------------------


def _new_figure(**kwargs) -> Figure:
    """A figure from pyplot, closed at once: drawable and savable, never shown or kept by pyplot."""
    fig = plt.figure(**kwargs)
    plt.close(fig)
    return fig


def _denormalize_fallback(t: Tensor) -> np.ndarray:
    """ImageNet-normalised (3, H, W) or (B, 3, H, W) -> uint8 (H, W, 3) or (B, H, W, 3)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (t.detach().float().cpu() * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def _denormalize(t: Tensor) -> np.ndarray:
    """Prefer the data module's denormalize (one definition of the normalisation); fall back if absent."""
    try:
        from .data import denormalize
    except ImportError as e:  # data.py (or its denormalize) missing; a broken import elsewhere still raises
        if e.name != f"{__package__}.data":
            raise
        denormalize = _denormalize_fallback
    return np.asarray(denormalize(t))


def _to_images(images) -> list[np.ndarray]:
    """(B, 3, H, W) normalised tensor, (B, H, W, 3) uint8 array, or a list of (H, W, 3) uint8 -> list."""
    if isinstance(images, Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"viz.py: images tensor must be (B, 3, H, W), got {tuple(images.shape)}")
        return list(_denormalize(images))
    out = [np.asarray(im) for im in images]
    for im in out:
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"viz.py: images must be uint8 (H, W, 3) arrays, got {im.dtype} {im.shape}")
    return out


def _to_mask(m, name: str = "mask") -> np.ndarray:
    """(H, W) or (1, H, W) bool / 0-1 array or tensor -> (H, W) bool."""
    m = m.detach().cpu().numpy() if isinstance(m, Tensor) else np.asarray(m)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"viz.py: {name} must be (H, W) or (1, H, W), got shape {m.shape}")
    if m.dtype != bool and not np.all((m == 0) | (m == 1)):
        raise ValueError(f"viz.py: {name} must hold only 0/1; for logits use metrics.probabilities_to_mask")
    return m.astype(bool)


# ---------------------------------------------------------------------------------------------------------
# Overlays and batches
# ---------------------------------------------------------------------------------------------------------


def overlay(image: np.ndarray, mask, pred=None, alpha: float = 0.4) -> np.ndarray:
    """Draw masks on a uint8 (H, W, 3) image; returns a new uint8 (H, W, 3) image.

    Ground truth: 2-px green contour. Prediction: red fill at `alpha` plus a 2-px red contour.
    Without a prediction the ground truth is filled green at `alpha` as well. The contour is the
    inner band mask - erode(erode(mask)), drawn ground truth last so it stays on top.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"viz.py: overlay image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    mask = _to_mask(mask, "mask")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"viz.py: mask shape {mask.shape} does not match image {image.shape[:2]}")
    out = image.astype(np.float32)  # (H, W, 3)

    def fill(region: np.ndarray, colour) -> None:
        out[region] = (1 - alpha) * out[region] + alpha * np.asarray(colour, dtype=np.float32)

    if pred is None:
        fill(mask, GT_COLOUR)
    else:
        pred = _to_mask(pred, "pred")
        if pred.shape != mask.shape:
            raise ValueError(f"viz.py: pred shape {pred.shape} does not match mask {mask.shape}")
        fill(pred, PRED_COLOUR)
        out[boundary(pred, width=2)] = PRED_COLOUR
    out[boundary(mask, width=2)] = GT_COLOUR
    return out.round().astype(np.uint8)


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


# ---------------------------------------------------------------------------------------------------------
# Curves and distributions
# ---------------------------------------------------------------------------------------------------------


def _read_history(history) -> list[dict]:
    if isinstance(history, (str, os.PathLike)):
        path = Path(history)
        if not path.is_file():
            raise FileNotFoundError(f"viz.py: history file {path} does not exist")
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    return list(history)


def plot_history(history) -> Figure:
    """Training curves from a list of dicts or a history.csv: losses per epoch, and val Dice / Jaccard.

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
        long = df.melt(id_vars="epoch", value_vars=cols, var_name="curve", value_name=label).dropna()
        sns.lineplot(data=long, x="epoch", y=label, hue="curve", marker="o" if len(df) <= 40 else None, ax=ax)
        ax.set_title("loss per epoch" if label == "loss" else "validation Dice / Jaccard per epoch")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title=None)
        if label == "score":  # mark the best epoch of the first score (what a checkpoint would keep)
            best = df[cols[0]].idxmax()
            epoch, value = df["epoch"][best], df[cols[0]][best]
            ax.plot([epoch], [value], marker="*", markersize=13, color="gold", markeredgecolor="k", zorder=5)
            ax.text(0.98, 0.04, f"best {cols[0]} {value:.3f} (epoch {epoch:g})", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=9)
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
    # horizontal box (matplotlib's own: seaborn's boxplot warns on matplotlib >= 3.11), one dot per image
    horizontal = {"orientation": "horizontal"} if _MPL_VERSION >= (3, 10) else {"vert": False}
    ax_box.boxplot(values, positions=[0], widths=0.5, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#1f77b459"}, medianprops={"color": "C0"}, **horizontal)
    sns.stripplot(x=values, ax=ax_box, color="C3", size=3.5, jitter=0.2, alpha=0.7)
    ax_box.set_yticks([])
    ax_box.set_xlabel(metric)
    ax_box.set_title(f"{metric}: per image")
    summary = f"{metric} over {len(values)} images: mean {values.mean():.3f}, median {np.median(values):.3f}"
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------------------------------------------------
# Inside the network: which maps, and how to turn one into a picture
# ---------------------------------------------------------------------------------------------------------


def reduce_channels(t: Tensor, how: str | int = "mean") -> np.ndarray:
    """(C, h, w) -> (h, w) float32 by "mean" or "max" over channels, or an int channel index."""
    if not isinstance(t, Tensor) or t.ndim != 3:
        raise ValueError(f"viz.py: reduce_channels needs a (C, h, w) tensor, got {getattr(t, 'shape', t)}")
    t = t.detach().float().cpu()
    if how == "mean":
        r = t.mean(dim=0)
    elif how == "max":
        r = t.amax(dim=0)
    elif isinstance(how, (int, np.integer)) and not isinstance(how, bool):
        if not -t.shape[0] <= how < t.shape[0]:
            raise ValueError(f"viz.py: channel {how} out of range for {t.shape[0]} channels")
        r = t[int(how)]
    else:
        raise ValueError(f"viz.py: reduction must be 'mean', 'max' or a channel index, got {how!r}")
    return r.numpy().astype(np.float32)


def foreground_probability(logits: Tensor) -> Tensor:
    """(B, K, H, W) logits -> (B, H, W) foreground probability: sigmoid (K == 1) or softmax class 1."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)[:, 1]


@dataclass(frozen=True)
class MapChoice:
    source: str  # a key of out.maps, or "side_masks" / "side_edges" / "logits"
    absolute: bool = False  # show |value| (signed edge responses)
    channels: bool = True  # a (C, h, w) feature map (reduced) rather than a probability
    per_stage: bool = True


MAP_CHOICES: OrderedDict[str, MapChoice] = OrderedDict(
    [
        ("PEE edge response", MapChoice("pee_edge", absolute=True)),
        ("IA seg->edge mask", MapChoice("ia_seg_to_edge")),
        ("IA edge->seg mask", MapChoice("ia_edge_to_seg")),
        ("CFF gate", MapChoice("cff_gate")),
        ("Side segmentation", MapChoice("side_masks", channels=False)),
        ("Side boundary", MapChoice("side_edges", channels=False)),
        ("Final prediction", MapChoice("logits", channels=False, per_stage=False)),
    ]
)
_PROBABILITIES = {"side_masks", "side_edges", "logits"}  # drawn on a fixed 0..1 scale; other maps autoscale


def _in_ipython_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


@functools.cache
def _explorer_box_class():
    """The explorer's panel: an ipywidgets VBox (7.7 as on Colab, or 8) whose text form is one short,
    deterministic line (what nbval compares and a console shows) instead of a dump of its children."""
    import ipywidgets as widgets

    class MapExplorerBox(widgets.VBox):
        text = "MapExplorer widget"

        def __repr__(self) -> str:
            return self.text

    return MapExplorerBox


class MapExplorer:
    """Browse BA-Net's internal maps per image and stage; a static figure, or an ipywidgets panel.

        explorer = MapExplorer(model, images, masks)      # images (N, 3, H, W) normalised, masks (N, 1, H, W)
        explorer.figure(image_index=0, stage=2, map_name="CFF gate", reduction="max")
        explorer.display()                                # widget + a static picture in a notebook
    The model is moved to `device`, put in eval mode and run once per image (outputs are cached).
    """

    def __init__(self, model: torch.nn.Module, images: Tensor, masks: Tensor, device: str = "cpu"):
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            got = getattr(images, "shape", type(images))
            raise ValueError(f"viz.py: MapExplorer images must be a (N, 3, H, W) tensor, got {got}")
        if masks.ndim == 3:
            masks = masks[:, None]
        if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
            shapes = f"{tuple(masks.shape)} vs images {tuple(images.shape)}"
            raise ValueError(f"viz.py: MapExplorer masks must be (N, 1, H, W) like the images: {shapes}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.images, self.masks = images, masks
        self._cache: dict[int, object] = {}
        self.controls: dict = {}  # filled by widget(): name -> ipywidgets control

    def __len__(self) -> int:
        return self.images.shape[0]

    # --- model outputs ----------------------------------------------------------------------------------

    def _output(self, image_index: int):
        if not 0 <= image_index < len(self):
            raise IndexError(f"viz.py: image_index {image_index} out of range for {len(self)} images")
        if image_index not in self._cache:
            x = self.images[image_index : image_index + 1].to(self.device)  # (1, 3, H, W)
            with torch.no_grad():
                out = self.model(x, return_maps=True)
            self._cache[image_index] = out
        return self._cache[image_index]

    def available_maps(self) -> list[str]:
        """Names from MAP_CHOICES this model produces (modules switched off have no map)."""
        out = self._output(0)
        maps = out.maps or {}
        have = {k for k, v in maps.items() if len(v)} | {"logits"}
        have |= {name for name in ("side_masks", "side_edges") if len(getattr(out, name, ()))}
        return [name for name, choice in MAP_CHOICES.items() if choice.source in have]

    def _choice(self, map_name: str) -> MapChoice:
        if map_name not in self.available_maps():
            raise ValueError(f"viz.py: map {map_name!r} not available; choose from {self.available_maps()}")
        return MAP_CHOICES[map_name]

    def _stage_tensor(self, image_index: int, stage: int, map_name: str) -> Tensor:
        """The raw per-stage tensor for one image: (C, h, w) maps, or (K, H, W) logits."""
        choice, out = self._choice(map_name), self._output(image_index)
        if choice.source == "logits":
            return out.logits[0]
        if choice.source in ("side_masks", "side_edges"):
            stages = getattr(out, choice.source)  # 4 x (1, K, H, W)
        else:
            stages = out.maps[choice.source]  # 4 x (1, C, h, w)
        if not 1 <= stage <= len(stages):
            raise ValueError(f"viz.py: stage must be 1..{len(stages)}, got {stage}")
        return stages[stage - 1][0]

    def num_stages(self) -> int:
        out = self._output(0)
        lengths = [len(v) for v in (out.maps or {}).values()] + [len(out.side_masks), len(out.side_edges)]
        return max(lengths + [1])

    def num_channels(self, image_index: int, stage: int, map_name: str) -> int:
        """Channels the reduction runs over (1 for probability maps)."""
        if not MAP_CHOICES[map_name].channels:
            return 1
        return self._stage_tensor(image_index, stage, map_name).shape[0]

    def map_array(self, image_index: int = 0, stage: int = 1, map_name: str = "PEE edge response",
                  reduction: str | int = "mean") -> np.ndarray:
        """The (h, w) float32 picture `figure` draws in its third panel, at the map's own resolution."""
        choice = self._choice(map_name)
        t = self._stage_tensor(image_index, stage, map_name)
        if not choice.channels:  # logits (K, h, w) -> foreground probability, reduction not used
            return foreground_probability(t[None].float().cpu())[0].numpy().astype(np.float32)
        if choice.absolute:
            t = t.abs()
        return reduce_channels(t, reduction)

    # --- pictures ---------------------------------------------------------------------------------------

    def _title(self, image_index: int, stage: int, map_name: str, reduction) -> str:
        choice = MAP_CHOICES[map_name]
        where = f"stage {stage}" if choice.per_stage else "all stages"
        if not choice.channels:
            how = "boundary probability" if choice.source == "side_edges" else "foreground probability"
        else:
            is_channel = isinstance(reduction, (int, np.integer))
            how = f"channel {reduction}" if is_channel else f"{reduction} over channels"
            if choice.absolute:
                how = f"|response|, {how}"
        return f"image {image_index} · {where} · {map_name} · {how}"

    def figure(self, image_index: int = 0, stage: int = 1, map_name: str = "PEE edge response",
               reduction: str | int = "mean") -> Figure:
        """Three panels: the image, ground truth (green) and prediction (red), and the chosen map."""
        arr = self.map_array(image_index, stage, map_name, reduction)  # (h, w)
        image = _denormalize(self.images[image_index])  # (H, W, 3) uint8
        H, W = image.shape[:2]
        mask = self.masks[image_index, 0] > 0.5
        pred = probabilities_to_mask(self._output(image_index).logits)[0].cpu()

        fig = _new_figure(figsize=(12.5, 4.4), layout="constrained")
        ax_img, ax_gt, ax_map = fig.subplots(1, 3)
        ax_img.imshow(image)
        ax_img.set_title("image")
        ax_gt.imshow(overlay(image, mask.numpy(), pred.numpy()))
        ax_gt.set_title("ground truth (green), prediction (red)")
        # probabilities on a fixed 0..1 scale; gates and edge responses autoscale (an untrained gate sits
        # near 0.5 everywhere, and a fixed scale would hide its structure), the colorbar gives the range
        prob = MAP_CHOICES[map_name].source in _PROBABILITIES
        # the map at its own resolution, stretched over the image's extent (stage 1: 1/4, stages 2-4: 1/8)
        im = ax_map.imshow(
            arr, cmap="viridis" if prob else "magma", vmin=0 if prob else None, vmax=1 if prob else None,
            extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest",
        )
        ax_map.set_title(f"{map_name} ({arr.shape[0]}×{arr.shape[1]})")
        fig.colorbar(im, ax=ax_map, fraction=0.046, pad=0.02)
        for ax in (ax_img, ax_gt, ax_map):
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(self._title(image_index, stage, map_name, reduction), fontsize=11)
        return fig

    def widget(self):
        """An ipywidgets VBox: image, stage, map, reduction, channel controls and the rendered PNG."""
        import ipywidgets as widgets

        names = self.available_maps()
        c = self.controls = {
            "image": widgets.IntSlider(value=0, min=0, max=len(self) - 1, description="image",
                                       disabled=len(self) == 1, continuous_update=False),
            "stage": widgets.ToggleButtons(options=list(range(1, self.num_stages() + 1)), value=1,
                                           description="stage", style={"button_width": "3em"}),
            "map": widgets.Dropdown(options=names, value=names[0], description="map"),
            "reduction": widgets.Dropdown(options=["mean", "max", "channel"], value="mean",
                                          description="reduction"),
            "channel": widgets.IntSlider(value=0, min=0, max=0, description="channel", disabled=True,
                                         continuous_update=False),
            "caption": widgets.HTML(),
            "view": widgets.Image(format="png"),
        }
        for name, w in c.items():
            w.add_class(f"banet-{name}")
        busy = [False]  # re-entrancy guard: adjusting channel.max fires its own change event

        def render(_change=None) -> None:
            if busy[0]:
                return
            busy[0] = True
            try:
                choice = MAP_CHOICES[c["map"].value]
                idx, stage = c["image"].value, c["stage"].value
                c["stage"].disabled = not choice.per_stage
                c["reduction"].disabled = not choice.channels
                n = self.num_channels(idx, stage, c["map"].value)
                c["channel"].max = n - 1
                c["channel"].disabled = not choice.channels or c["reduction"].value != "channel"
                how = c["channel"].value if c["reduction"].value == "channel" else c["reduction"].value
                fig = self.figure(idx, stage, c["map"].value, how)
                c["view"].value = figure_to_png(fig, dpi=80)
                c["caption"].value = f"<b>{self._title(idx, stage, c['map'].value, how)}</b>"
            finally:
                busy[0] = False

        for name in ("image", "stage", "map", "reduction", "channel"):
            c[name].observe(render, names="value")
        render()
        row1 = widgets.HBox([c["image"], c["stage"]])
        row2 = widgets.HBox([c["map"], c["reduction"], c["channel"]])
        box = _explorer_box_class()([row1, row2, c["caption"], c["view"]])
        box.text = f"MapExplorer widget: {len(self)} images, {self.num_stages()} stages, {len(names)} maps"
        box.add_class("banet-explorer")
        return box

    def display(self) -> Figure | None:
        """In a notebook: show the widget and a static picture of its starting view (image 0, stage 1,
        the first map, channel mean; the picture survives on GitHub, nbval and papermill, where widgets
        do not render); returns None. Elsewhere: the Figure."""
        fig = self.figure(0, 1, self.available_maps()[0], "mean")
        if not _in_ipython_kernel():
            return fig
        from IPython.display import Image, display

        display(self.widget())  # the live widget (Colab: through its custom widget manager); text: its repr
        display(Image(data=figure_to_png(fig)))  # the static picture of the default view
        return None
