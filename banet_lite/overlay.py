"""Masks drawn on an image, with numpy alone: `evaluate` writes overlays without loading matplotlib.

Ground truth: a 2-px green contour; prediction: a red fill plus a 2-px red contour.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .metrics import boundary

GT_COLOUR = (40, 220, 60)  # ground truth: green
PRED_COLOUR = (240, 50, 40)  # prediction: red


def _to_mask(m, name: str = "mask") -> np.ndarray:
    """(H, W) or (1, H, W) bool / 0-1 array or tensor -> (H, W) bool."""
    m = m.detach().cpu().numpy() if isinstance(m, Tensor) else np.asarray(m)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"viz.py: {name} must be (H, W) or (1, H, W), got shape {m.shape}")
    if m.dtype != bool and not np.all((m == 0) | (m == 1)):
        raise ValueError(f"viz.py: {name} must hold only 0/1; for logits use "
                         "metrics.probabilities_to_mask")
    return m.astype(bool)



def overlay(image: np.ndarray, mask, pred=None, alpha: float = 0.4) -> np.ndarray:
    """Draw masks on a uint8 (H, W, 3) image; returns a new uint8 (H, W, 3) image.

    Ground truth: 2-px green contour. Prediction: red fill at `alpha` plus a 2-px red contour.
    Without a prediction the ground truth is filled green at `alpha` as well. The contour is the
    inner band mask - erode(erode(mask)), drawn ground truth last so it stays on top.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("viz.py: overlay image must be uint8 (H, W, 3), got "
                         f"{image.dtype} {image.shape}")
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
