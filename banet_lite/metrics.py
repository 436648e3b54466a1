"""Segmentation metrics, per image, as the paper reports them (then averaged over the test set).

Binary masks: foreground = lesion / polyp / organ, background = the rest. From the confusion counts
of one image (TP, FP, FN, TN; N = H * W pixels):

    DI (Dice)         = 2 TP / (2 TP + FP + FN)
    JA (Jaccard, IoU) =   TP / (TP + FP + FN)          <- the paper's main metric
    AC (accuracy)     = (TP + TN) / N
    SE (sensitivity)  =   TP / (TP + FN)
    SP (specificity)  =   TN / (TN + FP)

Empty masks (the paper's reference code and our choices; validation, which picks `best.pt`, the test
metrics and the notebooks all score with these functions):
  - prediction all background, target not empty  -> DI = JA = SE = 0 (as the reference does)
  - prediction and target both empty             -> DI = JA = SE = 1 (nothing to find, nothing
                                                    wrong; cannot happen in the paper's data, may
                                                    in yours)
  - target empty, prediction not                 -> DI = JA = 0, SE = 1 (no foreground to miss)
  - no background in the target (TN + FP = 0)     -> SP = 1

Two boundary metrics, not in the paper, for a closer look at the outline (what BA-Net is about):
  - HD95: 95th percentile of the symmetric boundary-to-boundary distances (pooled both ways, as
    MedPy does), exact Euclidean, in pixels times `spacing`. NaN when either mask is empty.
  - boundary F: F1 of boundary pixels matched within `tolerance` pixels.
Boundary pixels are the mask minus its 4-neighbour erosion (pixels outside the image count as
background).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
from torch import Tensor

from .model.output import logits_to_mask

METRIC_NAMES = ("dice", "jaccard", "accuracy", "sensitivity", "specificity", "hd95", "boundary_f")

# --------------------------------------------------------------------------------------------------
# Confusion counts and the five paper metrics
# --------------------------------------------------------------------------------------------------


def _as_mask(name: str, a) -> np.ndarray:
    """A (H, W) bool array from a bool or 0/1 array; one clear error otherwise."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"metrics.py: {name} must be a 2-D (H, W) mask, "
                         f"got shape {tuple(a.shape)}")
    if a.dtype == bool:
        return a
    if not (np.issubdtype(a.dtype, np.number) and np.all((a == 0) | (a == 1))):
        raise ValueError(f"metrics.py: {name} must be boolean or hold "
                         f"only 0 and 1 (dtype {a.dtype})")
    return a.astype(bool)


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _as_mask("pred", pred), _as_mask("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"metrics.py: pred shape {pred.shape} differs from "
                         f"target shape {target.shape}")
    return pred, target


def confusion(pred: np.ndarray, target: np.ndarray) -> tuple[int, int, int, int]:
    """(TP, FP, FN, TN) pixel counts of a (H, W) prediction against a (H, W) target."""
    pred, target = _pair(pred, target)
    tp = int(np.count_nonzero(pred & target))
    fp = int(np.count_nonzero(pred & ~target))
    fn = int(np.count_nonzero(~pred & target))
    tn = pred.size - tp - fp - fn
    return tp, fp, fn, tn


def dice(tp: int, fp: int, fn: int, tn: int = 0) -> float:
    """DI = 2TP / (2TP + FP + FN); 0 for an empty prediction, 1 when prediction and target are both
    empty."""
    if tp + fp == 0:  # empty prediction
        return 1.0 if fn == 0 else 0.0
    return 2 * tp / (2 * tp + fp + fn)


def jaccard(tp: int, fp: int, fn: int, tn: int = 0) -> float:
    """JA = TP / (TP + FP + FN); 0 for an empty prediction, 1 when prediction and target are both
    empty."""
    if tp + fp == 0:
        return 1.0 if fn == 0 else 0.0
    return tp / (tp + fp + fn)


def accuracy(tp: int, fp: int, fn: int, tn: int) -> float:
    """AC = (TP + TN) / N with N = TP + FP + FN + TN."""
    n = tp + fp + fn + tn
    if n == 0:
        raise ValueError("metrics.py: accuracy of an image with no pixels")
    return (tp + tn) / n


def sensitivity(tp: int, fp: int, fn: int, tn: int = 0) -> float:
    """SE = TP / (TP + FN) (recall); 0 for an empty prediction, 1 when the target is empty."""
    if tp + fn == 0:  # no foreground to find (covers "both empty")
        return 1.0
    if tp + fp == 0:  # empty prediction, the reference's rule
        return 0.0
    return tp / (tp + fn)


def specificity(tp: int, fp: int, fn: int, tn: int) -> float:
    """SP = TN / (TN + FP); 1 when the target has no background."""
    if tn + fp == 0:
        return 1.0
    return tn / (tn + fp)


# --------------------------------------------------------------------------------------------------
# Boundaries and exact distances between them
# --------------------------------------------------------------------------------------------------


def erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour binary erosion: a pixel survives if it and its up/down/left/right neighbours are
    set."""
    p = np.pad(mask, 1, constant_values=False)  # outside the image = background
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def boundary(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Inner boundary band: mask minus its erosion applied `width` times. (H, W) bool."""
    mask = _as_mask("mask", mask)
    inner = mask
    for _ in range(width):
        inner = erode(inner)
    return mask & ~inner


def distance_to_set(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance from each (row, col) in `points` (n, 2) to the nearest True pixel
    of `target`.

    Separable, like a distance transform, numpy only:
      g(y, x')  = rows from y to the nearest target pixel in column x'      (H, W)
      d(y, x)^2 = min over columns x' of  g(y, x')^2 + (x - x')^2
    Cost O(H W + n W) instead of O(n m) for m target pixels.
    """
    H, W = target.shape
    if not target.any():
        raise ValueError("metrics.py: distance_to_set needs a target with at least one pixel")
    rows = np.arange(H)[:, None]  # (H, 1)
    big = H + W  # farther than any real distance: big^2 > H^2 + W^2
    # last target row at or above y
    above = np.maximum.accumulate(np.where(target, rows, -big), axis=0)
    # first at or below
    below = np.minimum.accumulate(np.where(target, rows, 2 * big)[::-1], axis=0)[::-1]
    g = np.minimum(rows - above, below - rows).clip(max=big).astype(np.int64)  # (H, W)
    g2 = g * g

    cols = np.arange(W)
    out = np.empty(len(points), dtype=np.float64)
    step = max(1, (1 << 20) // W)  # keep each (step, W) block ~1M entries
    for start in range(0, len(points), step):
        y, x = points[start : start + step, 0], points[start : start + step, 1]
        d2 = g2[y] + (x[:, None] - cols[None, :]) ** 2  # (step, W)
        out[start : start + step] = np.sqrt(d2.min(axis=1))
    return out


def boundary_distances(pred: np.ndarray,
                       target: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances (in pixels) pred boundary -> target boundary and target -> pred; None if a mask is
    empty."""
    pred, target = _pair(pred, target)
    if not pred.any() or not target.any():
        return None
    bp, bt = boundary(pred), boundary(target)
    return distance_to_set(np.argwhere(bp), bt), distance_to_set(np.argwhere(bt), bp)


def _check_spacing(spacing) -> float:
    if isinstance(spacing, bool) or not (isinstance(spacing, Real) and spacing > 0):
        raise ValueError(f"metrics.py: spacing must be a positive number, got {spacing!r}")
    return float(spacing)


def _hd95(dists, spacing: float) -> float:
    if dists is None:
        return math.nan
    return float(np.percentile(np.concatenate(dists), 95)) * spacing


def _boundary_f(dists, pred_empty: bool, target_empty: bool, tolerance: float) -> float:
    if dists is None:
        return 1.0 if pred_empty and target_empty else 0.0
    # predicted boundary that lies near the true one
    precision = float(np.mean(dists[0] <= tolerance))
    recall = float(np.mean(dists[1] <= tolerance))  # true boundary that the prediction reaches
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def hd95(pred: np.ndarray, target: np.ndarray, spacing: float = 1.0) -> float:
    """95th percentile symmetric Hausdorff distance between boundaries, times `spacing`
    (pixel size).

    NaN when either mask is empty (undefined); `summarize` averages with nanmean and counts
    the NaNs.
    """
    return _hd95(boundary_distances(pred, target), _check_spacing(spacing))


def boundary_f_score(pred: np.ndarray, target: np.ndarray, tolerance: float = 2) -> float:
    """Boundary F1: precision = share of predicted boundary pixels within `tolerance` px
    of the target boundary, recall = the reverse; F = 2PR / (P + R). 1 if both masks are empty, 0 if
    only one is."""
    pred, target = _pair(pred, target)
    return _boundary_f(boundary_distances(pred, target), not pred.any(), not target.any(),
                       tolerance)


def band_f_score(pred_band: np.ndarray, target_band: np.ndarray, tolerance: float = 2) -> float:
    """Boundary F1 of a predicted boundary *band* (the side boundary heads' p > 0.5) against
    the boundary target band (`boundary_target`): precision = share of predicted band pixels within
    `tolerance` px of the target band, recall = the reverse. Unlike `boundary_f_score` the inputs
    are the bands themselves, not masks whose outlines are taken. 1 if both are empty, 0 if only one
    is."""
    pred_band, target_band = _pair(pred_band, target_band)
    if not pred_band.any() or not target_band.any():
        return 1.0 if not pred_band.any() and not target_band.any() else 0.0
    dists = (distance_to_set(np.argwhere(pred_band), target_band),
             distance_to_set(np.argwhere(target_band), pred_band))
    return _boundary_f(dists, False, False, tolerance)


def side_boundary_f_scores(side_boundaries, masks, border_rule: str = "exclude_padding",
                           tolerance: float = 2) -> list:
    """Mean band F1 per stage of the side boundary heads (4 x (B, K, H, W) logits) against
    the boundary target of `masks` (B, 1, H, W): does each head trace the lesion outline?"""
    from .model.losses import boundary_target
    from .model.output import logits_to_mask

    target = boundary_target(masks.float().cpu(), border_rule)[:, 0].bool().numpy()  # (B, H, W)
    scores = []
    for logits in side_boundaries:
        pred = logits_to_mask(logits.detach().float().cpu()).numpy()  # (B, H, W): p > 0.5 (argmax)
        scores.append(float(np.mean([band_f_score(p, t, tolerance) for p, t in zip(pred, target)])))
    return scores


# --------------------------------------------------------------------------------------------------
# One image, many images
# --------------------------------------------------------------------------------------------------


def image_metrics(pred: np.ndarray, target: np.ndarray, spacing: float = 1.0,
                  tolerance: float = 2) -> dict:
    """All metrics of one image: {dice, jaccard, accuracy, sensitivity, specificity, hd95,
    boundary_f}."""
    pred, target = _pair(pred, target)
    counts = confusion(pred, target)
    dists = boundary_distances(pred, target)  # computed once, shared by HD95 and boundary F
    return {
        "dice": dice(*counts),
        "jaccard": jaccard(*counts),
        "accuracy": accuracy(*counts),
        "sensitivity": sensitivity(*counts),
        "specificity": specificity(*counts),
        "hd95": _hd95(dists, _check_spacing(spacing)),
        "boundary_f": _boundary_f(dists, not pred.any(), not target.any(), tolerance),
    }


def summarize(rows: list[dict]) -> dict[str, float]:
    """Mean of every numeric column over images (nanmean for hd95), plus n_images and hd95_nan
    (count).

    Non-numeric columns (an image name, say) are skipped.
    """
    if not rows:
        raise ValueError("metrics.py: summarize needs at least one row")
    out: dict[str, float] = {}
    for key, first in rows[0].items():
        if not isinstance(first, Real) or isinstance(first, bool):
            continue
        values = np.array([float(r[key]) for r in rows], dtype=np.float64)
        if key == "hd95":
            finite = values[~np.isnan(values)]
            out[key] = float(finite.mean()) if len(finite) else math.nan
            out["hd95_nan"] = int(len(values) - len(finite))
        else:
            out[key] = float(values.mean())
    out["n_images"] = len(rows)
    return out


# --------------------------------------------------------------------------------------------------
# From model logits (torch)
# --------------------------------------------------------------------------------------------------


def probabilities_to_mask(logits: Tensor) -> Tensor:
    """(B, K, H, W) logits -> (B, H, W) bool foreground (output.py: logit > 0 for K == 1, else
    argmax >= 1)."""
    return logits_to_mask(logits)


def _mask_batch(mask: Tensor, like: Tensor) -> Tensor:
    """(B, 1, H, W) or (B, H, W) 0/1 mask -> (B, H, W) bool matching `like`."""
    if mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.shape != like.shape:
        raise ValueError(f"metrics.py: mask {tuple(mask.shape)} does not fit "
                         f"logits {tuple(like.shape)}")
    return mask > 0.5


@torch.no_grad()
def batch_counts(logits: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(TP, FP, FN, TN), each (B,), of every image of a batch, on the device: logits (B, K, H, W),
    mask (B, 1, H, W)."""
    pred = logits_to_mask(logits)  # (B, H, W)
    target = _mask_batch(mask, pred)
    tp = (pred & target).flatten(1).sum(1)  # (B,)
    fp = (pred & ~target).flatten(1).sum(1)
    fn = (~pred & target).flatten(1).sum(1)
    return tp, fp, fn, pred[0].numel() - tp - fp - fn


def dice_of_counts(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    """`dice`'s rule on (B,) count tensors, in float64 on their device (training sums it without
    a host read)."""
    tp, fp, fn = tp.double(), fp.double(), fn.double()
    return torch.where(tp + fp == 0, (fn == 0).double(), 2 * tp / (2 * tp + fp + fn).clamp_min(1))


def batch_confusion(logits: Tensor, mask: Tensor) -> list[tuple[int, int, int, int]]:
    """(TP, FP, FN, TN) of every image of a batch -> B tuples: counted on the device in one pass
    (`batch_counts`); only 4 B integers travel to the CPU."""
    return [tuple(row) for row in torch.stack(batch_counts(logits, mask), dim=1).tolist()]


def batch_scores(logits: Tensor, mask: Tensor) -> list[dict[str, float]]:
    """{"dice", "jaccard"} of every image of a batch, by `dice` and `jaccard` above (the same
    empty-mask rule as the test metrics): what validation scores and `best.pt` is chosen by."""
    return [{"dice": dice(*c), "jaccard": jaccard(*c)} for c in batch_confusion(logits, mask)]


def batch_dice(logits: Tensor, mask: Tensor) -> float:
    """Mean per-image hard Dice of a batch, for quick checks while training
    (same empty-mask rules)."""
    scores = batch_scores(logits, mask)
    return sum(s["dice"] for s in scores) / len(scores)


@torch.no_grad()
def batch_image_metrics(logits: Tensor, mask: Tensor, spacing: float = 1.0,
                        tolerance: float = 2) -> list:
    """image_metrics for every image of a batch: logits (B, K, H, W), mask (B, 1, H, W)
    -> B rows."""
    pred = logits_to_mask(logits)
    target = _mask_batch(mask, pred)
    pred, target = pred.cpu().numpy(), target.cpu().numpy()
    return [image_metrics(p, t, spacing, tolerance) for p, t in zip(pred, target)]
