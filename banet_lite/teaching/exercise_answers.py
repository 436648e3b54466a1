"""The library's answers to the notebooks' exercises, and the inputs they are checked on
(`*_cases`).

`exercises.check` runs a reader's function (or module) and the answer here on the same inputs. Most
answers are one call into the library; the rest are written out below. The module answers are
the library's modules themselves, at most with a `forward` that returns plain tensors in the order
the exercise asks for, so that their state_dict is the library's own and its weights load into
the reader's module. The training-step answer is the library's `train_step` in float32; its cases
(`TrainStepCase`) build the same tiny BA-Net, batch, optimiser and loss each time they are asked, so
that two answers start from the same point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..model import losses
from ..model.banet import BANet
from ..model.cff import CrossFeatureFusion
from ..model.layers import SeparableConv
from ..model.losses import JointLoss
from ..model.mtl import InteractiveAttention, MiniMTL
from ..model.output import SegmentationOutput
from ..model.pee import PyramidEdgeExtraction, pyramid_edges
from ..model.reference import pee_squeeze_from_reference
from ..model.registry import build_model, make_config

# --- inputs, each built from a fixed seed ---------------------------------------------------------


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


# --- function answers -----------------------------------------------------------------------------


def reference_edges(f: Tensor, kernels: tuple[int, ...]) -> list[Tensor]:
    return pyramid_edges(f, kernels, "zero_padding")


def stage_sizes(img_size: int, output_stride: int) -> list[int]:
    from ..model.backbone import DilatedResNet

    with torch.device("meta"):  # shapes only: nothing is computed
        net = DilatedResNet(18, 8, output_stride)
        return [f.shape[-1] for f in net(torch.zeros(1, 3, img_size, img_size))]


# the exercise checks the student against the library's converter
ours_from_reference = pee_squeeze_from_reference


def paper_ia(e: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    E, S, _, _ = InteractiveAttention(e.shape[1], attention_blocks=False)(e, s)
    return E, S


def separable_params(R: int) -> int:
    return sum(p.numel() for p in SeparableConv(R, R).parameters())


def poly_lr(base_lr: float, step: int, total_steps: int) -> float:
    from ..training.schedule import poly_lr

    return base_lr * poly_lr(step, total_steps)


def dice_jaccard(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    from ..metrics import confusion, dice, jaccard

    c = confusion(pred, target)
    return dice(*c), jaccard(*c)


def boundary_f(pred: np.ndarray, target: np.ndarray) -> float:
    from ..metrics import boundary_f_score

    return boundary_f_score(pred, target, tolerance=2)


def soft_dice_loss(logits: Tensor, mask: Tensor) -> Tensor:
    return losses.soft_dice_loss(logits, mask)


def joint_loss(logits: Tensor, side_masks: list[Tensor], side_boundaries: list[Tensor],
               mask: Tensor, boundary_pos_weight: float | None) -> Tensor:
    out = SegmentationOutput(logits, tuple(side_masks), tuple(side_boundaries))
    return JointLoss(boundary_pos_weight=boundary_pos_weight)(out, mask)[0]


def train_step(model: nn.Module, images: Tensor, masks: Tensor, optimizer: torch.optim.Optimizer,
               loss_fn: nn.Module) -> Tensor:
    """The library's step (`training.step.train_step`) in float32: no autocast, no loss scaling, no
    scheduler."""
    from ..training.step import train_step as library_step

    scaler = torch.amp.GradScaler(images.device.type, enabled=False)  # a pass-through
    return library_step(model, images, masks, optimizer, scaler, loss_fn)[1]


# --- module answers: the library's modules, returning plain tensors -------------------------------


class PEEAnswer(PyramidEdgeExtraction):
    def __init__(self, dim: int, kernels: tuple[int, int], border_rule: str):
        super().__init__(dim, kernels, border_rule=border_rule)


class MiniMTLStageAnswer(MiniMTL):
    """The reference form (attention blocks A_e, A_s) with side heads; returns
    (S, side_mask, side_boundary)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = super().forward(x)
        return out["seg_features"], out["side_mask"], out["side_boundary"]


class CFFAnswer(CrossFeatureFusion):
    """The reference form (a 3x3 conv W_j before each gate); returns out_i only."""

    def forward(self, feats: list[Tensor]) -> Tensor:
        return super().forward(feats)[0]


class TinyBANetAnswer(BANet):
    """The whole network; returns (logits, side_masks, side_boundaries)."""

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        out = super().forward(x)
        return out.logits, out.side_masks, out.side_boundaries


# --- the inputs each exercise is checked on: function exercises, argument tuples; module exercises,
# (constructor arguments, forward arguments). Fixed seeds, several shapes, and the corner cases.
# stage 1 at twice the others' size
_CFF_SHAPES = [(1, 3, 16, 16), (1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8)]


def boundary_target_cases() -> list[tuple]:
    rules = ("exclude_padding", "zero_padding")
    return [(masks(s), rule) for s in (0, 1) for rule in rules] + [
        (torch.ones(1, 1, 8, 8), "zero_padding"), (torch.zeros(1, 1, 8, 8), "exclude_padding")]


def normalize_cases() -> list[tuple]:
    return [(torch.randint(0, 256, (h, w, 3), generator=generator(h)).numpy().astype(np.uint8),)
            for h, w in ((4, 5), (16, 16))]


def pee_reference_form_cases() -> list[tuple]:
    maps = features(0, [(1, 3, 9, 9), (2, 4, 12, 7), (1, 2, 16, 16)])
    return list(zip(maps, [(5, 7), (3, 5), (5, 7)])) + [(torch.full((1, 2, 10, 10), 3.0), (3, 5))]


def stage_sizes_cases() -> list[tuple]:
    return [(s, o) for s in (64, 96, 100) for o in (8, 16, 32)]


def reference_to_ours_cases() -> list[tuple]:
    return [(w,) for w in features(1, [(4, 12, 1, 1), (8, 24, 1, 1)])]


def build_pee_cases() -> list[tuple]:
    return [((4, (5, 7), "exclude_padding"), tuple(features(2, [(2, 4, 12, 12)]))),
            ((3, (3, 5), "zero_padding"), tuple(features(3, [(1, 3, 9, 7)])))]


def paper_ia_cases() -> list[tuple]:
    return [tuple(features(s, [(2, 4, 6, 6)] * 2)) for s in (0, 1)]


def separable_params_cases() -> list[tuple]:
    return [(r,) for r in (1, 16, 32, 128)]


def build_mtl_stage_cases() -> list[tuple]:
    return [((4, 2), tuple(features(4, [(2, 4, 10, 10)]))),
            ((3, 1), tuple(features(5, [(1, 3, 7, 9)])))]


def build_cff_cases() -> list[tuple]:
    return [((3, i), (features(6 + i, _CFF_SHAPES),)) for i in (0, 2)]


def build_aspp_cases() -> list[tuple]:
    return [((8, 4, (2, 4, 6)), tuple(features(8, [(2, 8, 12, 12)]))),
            ((5, 3, (1, 2, 3)), tuple(features(9, [(1, 5, 9, 7)])))]


def soft_dice_loss_cases() -> list[tuple]:
    return [(features(s, [(2, 2, 12, 12)])[0], masks(s, 2, 12)) for s in (0, 1)] + [
        (torch.zeros(1, 2, 6, 6), torch.zeros(1, 1, 6, 6))]


def joint_loss_cases() -> list[tuple]:
    shape = (2, 2, 16, 16)
    return [(features(s, [shape])[0], features(s + 1, [shape] * 4), features(s + 2, [shape] * 4),
             masks(s, 2, 16), w)
            for s, w in ((0, None), (1, 10.0))]


def assemble_tiny_cases() -> list[tuple]:
    return [((make_config("tiny"),), tuple(features(10, [(1, 3, 64, 64)])))]


def poly_lr_cases() -> list[tuple]:
    return [(1e-4, s, 100) for s in (0, 1, 50, 99, 100)] + [(3e-3, 7, 64)]


def dice_jaccard_cases() -> list[tuple]:
    return np_mask_pairs(0)


def boundary_f_cases() -> list[tuple]:
    return np_mask_pairs(1)


@dataclass(frozen=True)
class TrainStepCase:
    """Two steps of a reader's training step from one start: a `preset` BA-Net built after
    manual_seed(seed), in train mode, Adam(lr), JointLoss(boundary_pos_weight), and one fixed batch
    of `batch` synthetic images."""

    preset: str
    seed: int
    lr: float
    boundary_pos_weight: float | None
    batch: int = 2
    size: int = 64

    def build(self) -> tuple[nn.Module, Tensor, Tensor, torch.optim.Optimizer, nn.Module]:
        """(model, images, masks, optimizer, loss_fn), the same each call."""
        torch.manual_seed(self.seed)
        model = build_model(self.preset).train()
        images = features(self.seed, [(self.batch, 3, self.size, self.size)])[0]
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        loss_fn = JointLoss(boundary_pos_weight=self.boundary_pos_weight)
        return model, images, masks(self.seed, self.batch, self.size), optimizer, loss_fn

    def describe(self, step_name: str) -> str:
        s, b = self.size, self.batch
        return (f"{step_name}(model=build_model({self.preset!r}) in train mode, "
                f"images=float32 tensor ({b}, 3, {s}, {s}), "
                f"masks=float32 tensor ({b}, 1, {s}, {s}), "
                f"optimizer=Adam(lr={self.lr!r}), "
                f"loss_fn=JointLoss(boundary_pos_weight={self.boundary_pos_weight!r})), "
                "twice from the same start")


def train_step_cases() -> list[tuple]:
    return [(TrainStepCase("tiny", 0, 1e-3, None),), (TrainStepCase("tiny", 1, 1e-3, 10.0),)]
