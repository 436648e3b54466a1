"""What every network returns, and the one place that knows the two output conventions.

`SegmentationOutput` is what BA-Net and the U-Net baseline both return, so training, evaluation and
plots treat them alike. From logits to probabilities and masks:

    K == 1   one logit per pixel        p_fg = sigmoid(z)               mask = z > 0   (p_fg > 0.5)
    K >= 2   one logit per class        p    = softmax(z) over classes  mask = argmax_k z_k >= 1
                                        (class 0 = background; every other class is foreground)

Losses, metrics, evaluation and plots all call these, so no file repeats the sigmoid-else-softmax
rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SegmentationOutput:
    logits: Tensor  # (B, K, H, W)
    side_masks: tuple[Tensor, ...] = ()  # 4 x (B, K, H, W), or () without deep supervision
    side_boundaries: tuple[Tensor, ...] = ()  # 4 x (B, K, H, W)
    # with return_maps=True: name -> 4 per-stage maps: stages (x_i), reduced (F'), pee_edge,
    # boundary_branch (e), seg_branch (s), ia_seg_to_boundary, ia_boundary_to_seg (the IA gates),
    # ia_borrowed_by_seg, ia_borrowed_by_boundary, seg_features (S), boundary_features (E),
    # cff_gate, cff_sent (B, 3, R, h, w), cff_added, decoder_steps (d4, d3, d2, d1)
    maps: dict[str, tuple[Tensor, ...]] | None = None


def _check(logits: Tensor, where: str) -> None:
    if logits.ndim != 4 or logits.shape[1] < 1:
        raise ValueError(f"{where}: logits must be (B, K, H, W), got shape {tuple(logits.shape)}")


def foreground_probabilities(logits: Tensor) -> Tensor:
    """(B, K, H, W) logits -> (B, max(K - 1, 1), H, W): the probability of each foreground class."""
    _check(logits, "foreground_probabilities")
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)  # (B, 1, H, W)
    return torch.softmax(logits, dim=1)[:, 1:]  # (B, K-1, H, W)


def foreground_probability(logits: Tensor) -> Tensor:
    """(B, K, H, W) logits -> (B, H, W) probability of class 1 (the lesion): sigmoid or softmax."""
    return foreground_probabilities(logits)[:, 0]


def logits_to_mask(logits: Tensor) -> Tensor:
    """(B, K, H, W) logits -> (B, H, W) bool foreground: logit > 0 (K == 1), else argmax over
    classes >= 1."""
    _check(logits, "logits_to_mask")
    if logits.shape[1] == 1:
        return logits[:, 0] > 0
    return logits.argmax(dim=1) >= 1
