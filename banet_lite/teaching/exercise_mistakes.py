"""The usual mistakes in each exercise: a wrong implementation and the hint that explains it.

When a reader's answer fails on an input, `exercises.check` runs every known mistake of that
exercise on the same input; where the reader's result matches a mistake's (within the usual
tolerance), it prints the hint. A wrong implementation takes the reader's arguments (a module
mistake is a module class, see exercise_mistake_modules.py). Each hint is tested on a wrong answer
written as a student would write it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..model.losses import boundary_target, soft_dice_loss
from ..model.pee import local_average, pyramid_edges


@dataclass(frozen=True)
class Mistake:
    name: str  # short, for tests and the table in the docs
    wrong: Callable  # the mistake, made on purpose: a function, or a module class
    hint: str  # what `check` prints, after "hint: ", when the reader's result matches `wrong`'s


# --- 00: data and boundaries ----------------------------------------------------------------------


def _boundary_target(mask: Tensor, border_rule: str, count_include_pad: bool | None = None,
                 absolute: bool = True) -> Tensor:
    y = mask.float()
    include = border_rule == "zero_padding" if count_include_pad is None else count_include_pad
    d = y - F.avg_pool2d(y, 3, stride=1, padding=1, count_include_pad=include)
    return ((d.abs() if absolute else d) > 1e-6).float()


def _normalize(image: np.ndarray, scale: float = 255.0, layout: str = "permute",
               standardise: bool = True) -> Tensor:
    x = torch.from_numpy(np.ascontiguousarray(image)).float() / scale  # (H, W, 3)
    if layout == "permute":
        x = x.permute(2, 0, 1)
    elif layout == "reshape":
        x = x.reshape(3, *image.shape[:2])  # the right shape, the pixels scrambled
    if not standardise:
        return x
    shape = (3, 1, 1) if layout != "channels_last" else (3,)
    return (x - torch.tensor(IMAGENET_MEAN).view(shape)) / torch.tensor(IMAGENET_STD).view(shape)


# --- 01 and 07: the backbone, PEE and the authors' code -------------------------------------------


def _stage_sizes(img_size: int, output_stride: int, round_up: bool = True,
                 dilation: bool = True) -> list[int]:
    def halve(n: int) -> int:
        return (n + 1) // 2 if round_up else n // 2

    size, stride = halve(halve(img_size)), 4
    sizes = [size]
    for _ in range(3):
        if stride < output_stride or not dilation:
            size, stride = halve(size), 2 * stride
        sizes.append(size)
    return sizes


def _ours_from_reference(w: Tensor, sum_into_f: bool = True, sign: float = -1.0) -> Tensor:
    w_f, w_a, w_b = w.chunk(3, dim=1)
    return torch.cat([w_f + w_a + w_b if sum_into_f else w_f, sign * w_a, sign * w_b], dim=1)


# --- 02: interactive attention --------------------------------------------------------------------


def _ia_sigma_gate(e: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    return e + torch.sigmoid(e) * s, s + torch.sigmoid(s) * e


def _ia_other_gate(e: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    return e + (1 - torch.sigmoid(s)) * s, s + (1 - torch.sigmoid(e)) * e


def _ia_swapped(e: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    return s + (1 - torch.sigmoid(s)) * e, e + (1 - torch.sigmoid(e)) * s


# --- 04: the loss ---------------------------------------------------------------------------------


def _soft_dice(logits: Tensor, mask: Tensor, smooth: float = 1.0, per_image: bool = True,
               channel: int = 1) -> Tensor:
    p, y = logits.softmax(dim=1)[:, channel:channel + 1], mask.float()
    dims = (1, 2, 3) if per_image else (0, 1, 2, 3)
    inter, total = (p * y).sum(dims), p.sum(dims) + y.sum(dims)
    return (1 - (2 * inter + smooth) / (total + smooth)).mean()


def _joint_loss(logits: Tensor, side_masks: list[Tensor], side_boundaries: list[Tensor],
                mask: Tensor, boundary_pos_weight: float | None, weighted: str | None = "boundary",
                boundary_target_of: str = "band", dice: bool = True) -> Tensor:
    y = mask[:, 0].long()
    b = boundary_target(mask)[:, 0].long() if boundary_target_of == "band" else y
    w = None
    if boundary_pos_weight is not None and weighted is not None:
        w = logits.new_tensor([1.0, boundary_pos_weight] if weighted == "boundary"
                              else [boundary_pos_weight, 1.0])
    main = F.cross_entropy(logits, y) + (soft_dice_loss(logits, mask) if dice else 0)
    return (main + sum(F.cross_entropy(s, y) for s in side_masks)
            + sum(F.cross_entropy(e, b, weight=w) for e in side_boundaries))


# --- 05: training ---------------------------------------------------------------------------------


def _poly_lr(base_lr: float, step: int, total_steps: int, power: float = 0.9,
             shift: int = 0) -> float:
    return base_lr * max(0.0, 1 - (step + shift) / total_steps) ** power


# --- 06: metrics ----------------------------------------------------------------------------------


def _dice_jaccard(pred: np.ndarray, target: np.ndarray, both_empty: float = 1.0,
                  swapped: bool = False) -> tuple[float, float]:
    pred, target = np.asarray(pred, dtype=bool), np.asarray(target, dtype=bool)
    tp, fp, fn = (int(np.count_nonzero(a & b))
                  for a, b in ((pred, target), (pred, ~target), (~pred, target)))
    di, ja = ((2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)) if tp + fp + fn
              else (both_empty, both_empty))
    return (ja, di) if swapped else (di, ja)


def _outline(mask: np.ndarray, neighbours: int) -> np.ndarray:
    p = np.pad(mask, 1, constant_values=False)
    h, w = mask.shape
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if neighbours == 8 or dy * dx == 0]
    inner = np.logical_and.reduce([p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in offsets])
    return mask & ~inner


def _boundary_f(pred: np.ndarray, target: np.ndarray, neighbours: int = 4, strict: bool = False,
                both_empty: float = 1.0) -> float:
    pred, target = np.asarray(pred, dtype=bool), np.asarray(target, dtype=bool)
    if not pred.any() or not target.any():
        return both_empty if not pred.any() and not target.any() else 0.0
    bp, bt = np.argwhere(_outline(pred, neighbours)), np.argwhere(_outline(target, neighbours))
    d = np.sqrt(((bp[:, None, :] - bt[None, :, :]) ** 2).sum(axis=-1))
    close = d < 2 if strict else d <= 2
    precision, recall = close.any(axis=1).mean(), close.any(axis=0).mean()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


_FRAME = "a lesion touching the image frame shows the difference"
FUNCTION_MISTAKES: dict[str, tuple[Mistake, ...]] = {
    "normalize": (
        Mistake("no /255", partial(_normalize, scale=1.0),
                "divide by 255 first: the image is uint8 (0..255), and the ImageNet mean and "
                "std are for values in 0..1"),
        Mistake("reshape, not permute", partial(_normalize, layout="reshape"),
                "reshape or view to (3, H, W) keeps the memory order of (H, W, 3) and scrambles "
                "the pixels: move the channel axis with permute(2, 0, 1)"),
        Mistake("channels last", partial(_normalize, layout="channels_last"),
                "the channels are still last: the network takes (3, H, W), so permute(2, 0, 1)"),
        Mistake("no mean and std", partial(_normalize, standardise=False),
                "scaled to 0..1 but not standardised: subtract the ImageNet mean and divide by "
                "the std, per channel (bl.viz.IMAGENET_MEAN, bl.viz.IMAGENET_STD)"),
    ),
    "boundary_target": (
        Mistake("padding counted", partial(_boundary_target, count_include_pad=True),
                "your band is the 'zero_padding' one on an 'exclude_padding' input: "
                "that rule averages only the pixels inside the image, "
                "F.avg_pool2d(..., count_include_pad=False); F.avg_pool2d counts "
                f"the zero padding by default ({_FRAME})"),
        Mistake("padding never counted", partial(_boundary_target, count_include_pad=False),
                "your band is the 'exclude_padding' one on a 'zero_padding' input: that rule "
                "counts the zeros outside the frame (count_include_pad=True), so lesion pixels on "
                f"the frame are boundary ({_FRAME})"),
        Mistake("one side only", partial(_boundary_target, absolute=False),
                "b marks both sides of the outline, |y - AvgPool_3x3(y)| > 0: without the absolute "
                "value only the lesion's side is marked"),
    ),
    "stage_sizes": (
        Mistake("rounding down", partial(_stage_sizes, round_up=False),
                "a stride-2 step with 'same' padding turns n pixels into ceil(n / 2), "
                "(n + 1) // 2, not n // 2: an odd size rounds up"),
        Mistake("no dilation", partial(_stage_sizes, dilation=False),
                "once the output stride is reached, the later layers are dilated "
                "instead of strided and keep the size: with output stride 8, layer3 and "
                "layer4 stay at layer2's size"),
    ),
    "pee_reference_form": (
        Mistake("padding not counted",
                lambda f, kernels: pyramid_edges(f, kernels, "exclude_padding"),
                "nn.AvgPool2d left at its defaults counts the zero padding "
                "(count_include_pad=True), as the authors' code does: near the frame its average "
                "drops, and a constant map gets an edge there"),
        Mistake("averages, not edges",
                lambda f, kernels: [local_average(f, k, "zero_padding") for k in kernels],
                "return the edge maps E_k = F - AvgPool_k(F), not the averages themselves"),
    ),
    "reference_to_ours": (
        Mistake("unchanged", lambda w: w.clone(),
                "the authors' weight acts on [F, A_a F, A_b F]; ours reads "
                "[F, F - A_a F, F - A_b F], so the blocks must change: write A_k F = F - E_k and "
                "collect the coefficients of F, E_a and E_b"),
        Mistake("F's block unchanged", partial(_ours_from_reference, sum_into_f=False),
                "F appears in every term once A_k F = F - E_k: its block is W_F + W_a + W_b"),
        Mistake("no minus sign", partial(_ours_from_reference, sign=1.0),
                "A_k F = F - E_k brings a minus: the blocks on E_a and E_b are -W_a and -W_b"),
    ),
    "paper_ia": (
        Mistake("sigma gate", _ia_sigma_gate,
                "the gate is 1 - sigmoid(.), open where a branch is unsure: "
                "E = e + (1 - sigmoid(e)) * s; "
                "yours looks like sigmoid(e), which opens where e is already confident"),
        Mistake("gate of the other branch", _ia_other_gate,
                "each gate reads the branch it guards: E = e + (1 - sigmoid(e)) * s; yours gates s "
                "by its own confidence, 1 - sigmoid(s)"),
        Mistake("E and S swapped", _ia_swapped,
                "E and S swapped: return (E, S), the boundary feature first, "
                "with E = e + (1 - sigmoid(e)) * s"),
    ),
    "separable_params": (
        Mistake("no BatchNorm", lambda R: 9 * R + R * R,
                "BatchNorm has learnt parameters too: a scale and a shift per channel, 2R"),
        Mistake("BatchNorm buffers counted", lambda R: 9 * R + 4 * R + R * R,
                "BatchNorm's running mean and variance are buffers, not parameters "
                "(no gradient trains them): BatchNorm adds 2R parameters, not 4R"),
        Mistake("full depthwise conv", lambda R: 9 * R * R + 2 * R + R * R,
                "the depthwise 3x3 conv has one 3x3 filter per channel "
                "(groups=R): 9R weights, not 9R^2"),
    ),
    "soft_dice_loss": (
        Mistake("no smoothing", partial(_soft_dice, smooth=0.0),
                "L_Dice adds its smoothing term 1 above and below: "
                "1 - (2 sum(p y) + 1) / (sum(p) + sum(y) + 1)"),
        Mistake("one Dice for the batch", partial(_soft_dice, per_image=False),
                "the Dice loss is per image, then the mean over the batch; yours sums over "
                "the whole batch at once"),
        Mistake("background channel", partial(_soft_dice, channel=0),
                "p is the foreground probability: channel 1 of the softmax "
                "(channel 0 is the background)"),
    ),
    "joint_loss": (
        Mistake("boundary_pos_weight ignored", partial(_joint_loss, weighted=None),
                "boundary_pos_weight weights the boundary class in the four side boundary terms: "
                "F.cross_entropy(side_boundary, b, "
                "weight=torch.tensor([1.0, boundary_pos_weight]))"),
        Mistake("background weighted", partial(_joint_loss, weighted="background"),
                "the weight goes on class 1, the boundary: weight=[1, boundary_pos_weight], "
                "not [boundary_pos_weight, 1]"),
        Mistake("side boundaries against the mask", partial(_joint_loss, boundary_target_of="mask"),
                "the side boundary heads learn the boundary band "
                "b = bl.boundary_target(mask), not the mask"),
        Mistake("no Dice term", partial(_joint_loss, dice=False),
                "the final output's loss is cross-entropy plus the soft Dice loss (the side terms "
                "are cross-entropy alone)"),
    ),
    "poly_lr": (
        Mistake("linear", partial(_poly_lr, power=1.0),
                "a straight line (power 1): the poly schedule raises "
                "(1 - step / total_steps) to the power 0.9"),
        Mistake("one step ahead", partial(_poly_lr, shift=1),
                "one step off: at step 0 the rate is base_lr itself, "
                "lr = base_lr * (1 - step / total_steps) ** 0.9"),
    ),
    "dice_jaccard": (
        Mistake("both empty scores 0", partial(_dice_jaccard, both_empty=0.0),
                "when both masks are empty there is nothing to find and nothing wrong: "
                "Dice = Jaccard = 1"),
        Mistake("swapped", partial(_dice_jaccard, swapped=True),
                "return (dice, jaccard), in this order"),
    ),
    "boundary_f": (
        Mistake("8-neighbour erosion", partial(_boundary_f, neighbours=8),
                "the outline is the mask minus its 4-neighbour erosion "
                "(up, down, left, right); an 8-neighbour erosion also removes diagonal "
                "neighbours and makes a thicker outline"),
        Mistake("strict tolerance", partial(_boundary_f, strict=True),
                "an outline pixel is matched within the tolerance, "
                "distance <= 2 px; yours looks like < 2"),
        Mistake("both empty scores 0", partial(_boundary_f, both_empty=0.0),
                "when both masks are empty the boundary F-score is 1 "
                "(nothing to find, nothing wrong)"),
    ),
}
