"""One training step, the lines every trainer here shares: `fit`, the speed benchmarks and
notebook 05.

    with autocast(amp_dtype):                (None: float32)
        out = model(images)
        total, parts = loss_fn(out, masks)
    scaler.scale(total).backward()           (float16: scaled against underflow; otherwise
                                             a pass-through)
    scaler.step(optimizer); scaler.update()  (float16: a step with non-finite gradients is
                                             skipped, counted)
    scheduler.step()                         (the poly learning rate, once per step)

Nothing here reads a value back to the host, so a GPU never waits for Python inside a step;
the caller sums the returned tensors and reads them when it reports.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..metrics import batch_counts, dice_of_counts
from ..model.output import SegmentationOutput
from .precision import SkippedSteps, scaler_step


def train_step(model: nn.Module, images: Tensor, masks: Tensor, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, loss_fn: nn.Module,
               amp_dtype: torch.dtype | None = None,
               scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
               skips: SkippedSteps | None = None
               ) -> tuple[SegmentationOutput, Tensor, dict[str, Tensor]]:
    """One optimiser step on a batch already on the model's device: (the output, the total loss, its
    named terms), all detached from the graph except `out`, which the caller may use for a running
    Dice."""
    with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        out = model(images)
        total, parts = loss_fn(out, masks)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    # float16: skips a non-finite step, and counts it in `skips`
    scaler_step(scaler, optimizer, skips)
    if scheduler is not None:
        scheduler.step()
    return out, total.detach(), parts


def dice_sum(logits: Tensor, masks: Tensor) -> Tensor:
    """The sum of a batch's per-image hard Dice, on the device: metrics.dice's rule (an empty
    prediction scores 1 when the target is empty too, else 0), in float64 as batch_scores computes
    it on the host."""
    tp, fp, fn, _ = batch_counts(logits, masks)
    return dice_of_counts(tp, fp, fn).sum()
