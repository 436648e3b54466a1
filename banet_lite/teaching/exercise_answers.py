"""The library's answers to the notebooks' exercises, and the inputs they are checked on.

`exercises.check` runs a reader's function (or module) and the answer here on the same inputs. Most answers
are one call into the library; the rest are written out below. The module answers are the library's modules
themselves, at most with a `forward` that returns plain tensors in the order the exercise asks for, so that
their state_dict is the library's own and its weights load into the reader's module.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..model.banet import BANet
from ..model.cff import CrossFeatureFusion
from ..model.layers import SeparableConv
from ..model.losses import JointLoss, edge_target
from ..model.mtl import InteractiveAttention, MiniMTL
from ..model.output import SegmentationOutput
from ..model.pee import PyramidEdgeExtraction, pyramid_edges

# --- inputs, each built from a fixed seed ---------------------------------------------------------------


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def masks(seed: int, n: int = 2, size: int = 24) -> Tensor:
    """(n, 1, size, size) random disc masks (one may touch the frame)."""
    g = generator(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for _ in range(n):
        cy, cx = torch.randint(0, size, (2,), generator=g)
        r = torch.randint(3, size // 2, (1,), generator=g)
        out.append((((yy - cy) ** 2 + (xx - cx) ** 2) <= r**2).float())
    return torch.stack(out)[:, None]


def features(seed: int, shapes) -> list[Tensor]:
    g = generator(seed)
    return [torch.randn(*s, generator=g) for s in shapes]


def np_mask_pairs(seed: int) -> list[tuple]:
    """(pred, target) boolean pairs, with the empty corner cases."""
    m = masks(seed, 4, 32)[:, 0].bool().numpy()
    empty = np.zeros_like(m[0])
    return [(m[0], m[1]), (m[2], m[2]), (m[3], m[0]), (empty, m[1]), (m[1], empty), (empty, empty)]


# --- function answers ------------------------------------------------------------------------------------


def reference_edges(f: Tensor, kernels: tuple[int, ...]) -> list[Tensor]:
    return pyramid_edges(f, kernels, "zero_padding")


def stage_sizes(img_size: int, output_stride: int) -> list[int]:
    from ..model.backbone import DilatedResNet

    net = DilatedResNet(18, 8, output_stride)
    with torch.no_grad():
        return [f.shape[-1] for f in net(torch.zeros(1, 3, img_size, img_size))]


def ours_from_reference(w: Tensor) -> Tensor:
    """Reference PEE squeeze weight on [F, A_a F, A_b F] -> ours on [F, F - A_a F, F - A_b F]."""
    w_f, w_a, w_b = w.chunk(3, dim=1)  # each (R, R, 1, 1)
    return torch.cat([w_f + w_a + w_b, -w_a, -w_b], dim=1)


def paper_ia(e: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    E, S, _, _ = InteractiveAttention(e.shape[1], attention_blocks=False)(e, s)
    return E, S


def separable_params(r: int) -> int:
    return sum(p.numel() for p in SeparableConv(r, r).parameters())


def ia_blocks_params(r: int) -> int:
    return sum(p.numel() for p in InteractiveAttention(r, attention_blocks=True).parameters())


def paper_cff(feats: list[Tensor], stage: int) -> Tensor:
    return CrossFeatureFusion(feats[0].shape[1], stage, gate_convs=False)(feats)[0]


def poly_lr(base_lr: float, step: int, total_steps: int) -> float:
    from ..training.train import poly_lr

    return base_lr * poly_lr(step, total_steps)


def dice_jaccard(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    from ..metrics import confusion, dice, jaccard

    c = confusion(pred, target)
    return dice(*c), jaccard(*c)


def boundary_f(pred: np.ndarray, target: np.ndarray) -> float:
    from ..metrics import boundary_f_score

    return boundary_f_score(pred, target, tolerance=2)


def balanced_pos_weight(masks: Tensor) -> float:
    p = edge_target(masks).mean().item()
    return (1 - p) / p


def joint_loss(logits: Tensor, side_masks: list[Tensor], side_edges: list[Tensor], mask: Tensor,
               edge_pos_weight: float | None) -> Tensor:
    out = SegmentationOutput(logits, tuple(side_masks), tuple(side_edges))
    return JointLoss(edge_pos_weight=edge_pos_weight)(out, mask)[0]


# --- module answers: the library's modules, returning plain tensors ----------------------------------------


class PEEAnswer(PyramidEdgeExtraction):
    def __init__(self, dim: int, kernels: tuple[int, int], border_rule: str):
        super().__init__(dim, kernels, border_rule=border_rule)


class MiniMTLStageAnswer(MiniMTL):
    """The reference form (attention blocks A_e, A_s) with side heads; returns (S, side_mask, side_edge)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = super().forward(x)
        return out["seg_features"], out["side_mask"], out["side_edge"]


class CFFAnswer(CrossFeatureFusion):
    """The reference form (a 3x3 conv W_j before each gate); returns out_i only."""

    def forward(self, feats: list[Tensor]) -> Tensor:
        return super().forward(feats)[0]


class TinyBANetAnswer(BANet):
    """The whole network; returns (logits, side_masks, side_edges)."""

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        out = super().forward(x)
        return out.logits, out.side_masks, out.side_edges

