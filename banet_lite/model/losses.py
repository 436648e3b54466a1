"""The boundary target and the joint segmentation + boundary loss.

Boundary target. From a mask y (B, 1, H, W) in {0, 1}:

    b = 1  where  |y - AvgPool_3x3(y)| > 0        (stride 1, padding 1)

A pixel whose 3x3 neighbourhood is not all one class lies on the contour, so b is a band two
pixels wide, one on each side of the boundary. The border rule (config.BORDER_RULES) says what
the window sees outside the image: with "exclude_padding" (the default) the padding does not
count, and a lesion touching the image frame has no boundary there; with "zero_padding" (the
paper preset, as the reference code) the zeros count, and every foreground pixel on the frame is
marked as boundary, though it is not a lesion boundary.

Joint loss. For the final logits and the 4 side outputs of each kind:

    L = L_main(out, y)
        + sum_i lambda_i * ( CE(side_mask_i, y) + w_boundary * CE_w(side_boundary_i, b) )
    L_main = CE(out, y) + w_dice * Dice(p_fg(out), y)
    CE_w: cross-entropy with the boundary class weighted w (boundary_pos_weight; None: w = 1)

CE is binary cross-entropy for a 1-channel output and softmax cross-entropy for K >= 2;
Dice(p, y) = 1 - (2 sum p y + 1) / (sum p + sum y + 1), per image, then averaged. The paper
uses lambda_i = 1, w_boundary = 1, w = 1 and BCE everywhere; the reference adds the Dice term
(w_dice = 1). Boundary pixels are few (a few percent of the image), so w > 1 up-weights them;
w_boundary = 0 trains without boundary supervision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BORDER_RULES
from .output import foreground_probabilities


def boundary_target(mask: Tensor, border_rule: str = "exclude_padding") -> Tensor:
    """(B, 1, H, W) labels -> (B, 1, H, W) float boundary band in {0, 1}."""
    if border_rule not in BORDER_RULES:
        raise ValueError(f"boundary_target: border_rule={border_rule!r}: choose one "
                         f"of {sorted(BORDER_RULES)}")
    y = mask.float()
    local_mean = F.avg_pool2d(y, 3, stride=1, padding=1,
                              count_include_pad=BORDER_RULES[border_rule])
    return ((y - local_mean).abs() > 1e-6).float()


def class_weights(logits: Tensor, pos_weight: float) -> Tensor:
    """The weight tensor `cross_entropy` applies for `pos_weight`, on the logits' device and dtype:
    the scalar pos_weight for K == 1, else [1, pos_weight, ..., pos_weight]
    (class 0 = background keeps 1)."""
    if logits.shape[1] == 1:
        return logits.new_tensor(pos_weight)
    return logits.new_tensor([1.0] + [pos_weight] * (logits.shape[1] - 1))


def cross_entropy(logits: Tensor, target: Tensor,
                  pos_weight: float | Tensor | None = None) -> Tensor:
    """BCE for K == 1, softmax CE for K >= 2; target (B, 1, H, W) integer-valued labels.
    `pos_weight`: a float, or the tensor `class_weights` made of it (JointLoss keeps that one, not
    one per step)."""
    if pos_weight is not None and not isinstance(pos_weight, Tensor):
        pos_weight = class_weights(logits, pos_weight)
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pos_weight)
    return F.cross_entropy(logits, target[:, 0].long(), weight=pos_weight)


def soft_dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """1 - soft Dice of the foreground probability, per image and foreground class, averaged."""
    prob = foreground_probabilities(logits)  # (B, max(K-1, 1), H, W): every foreground class
    if logits.shape[1] == 1:
        onehot = target.float()
    else:
        labels = torch.arange(1, logits.shape[1], device=logits.device).view(1, -1, 1, 1)
        onehot = (target.long() == labels).float()  # (B, K-1, H, W)
    inter = (prob * onehot).sum(dim=(2, 3))  # (B, K-1)
    total = prob.sum(dim=(2, 3)) + onehot.sum(dim=(2, 3))
    return (1 - (2 * inter + smooth) / (total + smooth)).mean()


class JointLoss(nn.Module):
    """The joint loss of the module docstring: `loss_fn(out, masks) -> (total, parts)`.

    Args:
        side_weights: lambda_i, one for all four stages or four values (paper: 1).
        dice_weight: w_dice, the soft Dice term on the final output (the reference's: 1).
        boundary_weight: w_boundary, the side boundary terms' weight; 0 switches boundary
            supervision off.
        boundary_pos_weight: w, the boundary class's weight in those terms; None is 1 (the paper's).
        border_rule: the boundary target's border rule; `fit` passes the model's own.

    Example:
        >>> loss_fn = JointLoss(boundary_pos_weight=10.0)
        >>> # parts: main_ce, main_dice, side_seg, side_boundary
        >>> total, parts = loss_fn(model(images), masks)
    """

    def __init__(self, side_weights: float | Sequence[float] = 1.0, dice_weight: float = 1.0,
                 boundary_weight: float = 1.0, boundary_pos_weight: float | None = None,
                 border_rule: str = "exclude_padding"):
        super().__init__()
        if border_rule not in BORDER_RULES:
            raise ValueError(f"JointLoss: border_rule={border_rule!r}: choose one "
                             f"of {sorted(BORDER_RULES)}")
        self.border_rule = border_rule  # of the boundary target; fit passes the model's own
        self.side_weights = ([float(side_weights)] * 4 if isinstance(side_weights, (int, float))
                             else list(side_weights))
        self.dice_weight, self.boundary_weight = dice_weight, boundary_weight
        self.boundary_pos_weight = boundary_pos_weight
        # per (device, dtype, K): built once, not per step
        self._boundary_class_weights: dict[tuple, Tensor] = {}

    def boundary_class_weights(self, logits: Tensor) -> Tensor | None:
        """`class_weights` for the side boundary loss, made once per device, dtype and class count
        (a tensor built each step would be a small host-to-device copy in every step)."""
        if self.boundary_pos_weight is None:
            return None
        key = (logits.device, logits.dtype, logits.shape[1])
        if key not in self._boundary_class_weights:
            self._boundary_class_weights[key] = class_weights(logits, self.boundary_pos_weight)
        return self._boundary_class_weights[key]

    def forward(self, out, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """out: SegmentationOutput; mask (B, 1, H, W) in {0, 1} -> (total, named parts)."""
        softmax = out.logits.shape[1] > 1
        if softmax:  # integer labels once here, not once per loss term (9 full-size copies)
            mask = mask.long()
        parts = {
            "main_ce": cross_entropy(out.logits, mask),
            "main_dice": soft_dice_loss(out.logits, mask),
        }
        total = parts["main_ce"] + self.dice_weight * parts["main_dice"]
        if out.side_masks:
            band = boundary_target(mask, self.border_rule)  # (B, 1, H, W)
            if softmax:
                band = band.long()
            seg = [cross_entropy(s, mask) for s in out.side_masks]
            bnd = [cross_entropy(b, band, self.boundary_class_weights(b))
                   for b in out.side_boundaries]
            parts["side_seg"] = sum(w * l for w, l in zip(self.side_weights, seg))
            parts["side_boundary"] = sum(w * l for w, l in zip(self.side_weights, bnd))
            total = total + parts["side_seg"] + self.boundary_weight * parts["side_boundary"]
        parts["total"] = total
        return total, {k: v.detach() for k, v in parts.items()}


def joint_loss_for(model: nn.Module, side_weights: float | Sequence[float] = 1.0,
                   boundary_pos_weight: float | None = None,
                   boundary_weight: float = 1.0) -> JointLoss:
    """The JointLoss `fit` trains `model` with: its boundary target follows the network's border
    rule (the paper preset: the reference's zero padding; a network without one, like the U-Net,
    the default)."""
    border_rule = getattr(getattr(model, "config", None), "border_rule", "exclude_padding")
    return JointLoss(side_weights=side_weights, boundary_weight=boundary_weight,
                     boundary_pos_weight=boundary_pos_weight, border_rule=border_rule)
