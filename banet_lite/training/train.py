"""Training: the paper's recipe, checkpoints that resume exactly, and several GPUs
(the set-up: run.py).

The recipe (reference implementation): Adam, no weight decay, and a poly schedule

    lr_t = lr * (1 - t / T) ^ 0.9          t = step, T = epochs (or what a time budget allows)
                                           * steps per epoch

on the joint loss (losses.py; the schedule: schedule.py). Every epoch ends with a validation pass;
`best.pt` keeps the model with the highest validation Dice, `last.pt` the latest state (every
`checkpoint_every` epochs and at every stop), `history.csv` one row per epoch. Validation comes from
the training split (a seeded tenth): the test split is never seen here, so the test figures reported
by `evaluate` are honest.

Resuming is exact: shuffling uses a generator seeded by (seed, epoch), augmentation draws from
(seed, epoch, index) (data/datasets.py), and the checkpoint holds model, optimizer, scheduler (with
the schedule's plan), AMP scaler, epoch, best score and RNG states. Training 4 epochs equals
training 2, stopping and resuming for 2 more: bit for bit on a CPU; on a GPU, where some kernels
(bilinear upsampling's backward, cuDNN's autotuned ones) sum in no fixed order, up to that noise.

Backbone weights: `pretrained="auto"` starts the `paper` preset from torchvision's ImageNet
ResNet-50 (the paper's and the reference's setting) and the other presets from random weights;
"imagenet", a URL or a local `.pth` file ask for weights explicitly (model/registry.py,
model/backbone.py).

On a GPU: channels_last, `cudnn.benchmark`, mixed precision (`amp_settings`: bfloat16 from compute
capability 8.0, float16 with a GradScaler below), fused Adam, no host read inside a step
(optimizer.py). On a CPU: channels_last, bfloat16 autocast where the CPU computes it natively
(lite, paper), and for paper the CPU fast path (`use_cpu_fast_path`: wide convolutions' weight
gradients as matrix products, Adam's fused kernel).

Several GPUs: run under `torchrun --nproc_per_node N -m banet_lite train ...`. Each process
trains on its shard (DistributedSampler) inside DistributedDataParallel; rank 0 alone
validates, prints and writes files. On CPU the gloo backend does the same (used by the tests).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import TrainingError
from ..files import read_csv
from ..metrics import batch_scores
from ..model.losses import JointLoss
from . import schedule
from .checkpoint import save_epoch
from .config import TrainConfig
from .copies import RunCopies
from .distributed import broadcast, closing_process_group
from .precision import check_skipped
from .progress import end_line, epoch_bar, epoch_line
from .run import Run, setup, use_cpu_fast_path
from .run_folder import run_log

# bl.train.poly_lr, bl.train.steps_per_epoch
from .schedule import poly_lr, steps_per_epoch  # noqa: F401
from .step import dice_sum, train_step
from .weight_grad import gemm_weight_grads

# Steps between read-outs of the running loss sums (progress bar, non-finite check): the training
# loop's one wait for the device; within a step nothing is read back to the host.
LOG_EVERY = 20


@dataclass
class FitResult:
    """What `fit` returns. `model` holds the weights after the last epoch, still in train mode;
    the best weights (by validation Dice) are in `best_path` (load with `load_checkpoint`)."""

    model: nn.Module
    history: list[dict]
    best_path: Path
    last_path: Path
    best_score: float
    stopped_early: str | None = None  # why the run ended before its last epoch, if it did


# ------------------------------------------------------------------------- epochs
def train_one_epoch(run: Run, epoch: int) -> dict[str, float]:
    """One pass over the training set; the mean of each loss term, the batch Dice, images/s and,
    under float16, the steps the GradScaler skipped. The sums stay on the device, read every
    LOG_EVERY steps and at the end (`_read_out`): the GPU never waits for the host inside a step."""
    cfg, device = run.cfg, run.device
    if hasattr(run.train_set, "set_epoch"):
        run.train_set.set_epoch(epoch)  # augmentation draws from (seed, epoch, index)
    if run.sampler is not None:
        run.sampler.set_epoch(epoch)
    loader = DataLoader(run.train_set, batch_size=cfg.batch_size, sampler=run.sampler,
                        shuffle=run.sampler is None,
                        generator=torch.Generator().manual_seed(cfg.seed * 1_000 + epoch),
                        num_workers=cfg.workers, drop_last=run.drop_last,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    run.train_model.train()
    if run.skips is not None:
        run.skips.new_epoch()
    started, sums, n_seen = time.perf_counter(), {}, 0
    bar = epoch_bar(loader, run.main and cfg.progress,
                    f"epoch {epoch + 1}/{run.schedule.planned_epochs}")
    with gemm_weight_grads(run.model, enabled=use_cpu_fast_path(device.type, cfg)):
        for step, (images, masks) in enumerate(bar, 1):
            _train_step(run, images, masks, sums)
            n_seen += images.shape[0]
            if step % LOG_EVERY == 0 and hasattr(bar, "set_postfix"):
                sofar = _read_out(run, epoch, sums)
                bar.set_postfix(loss=f"{sofar['total'] / sofar.get('counted', n_seen):.3f}",
                                dice=f"{sofar['dice'] / n_seen:.3f}")
    sums = _read_out(run, epoch, sums)  # waits for the device: the time below is the epoch's
    seconds = time.perf_counter() - started
    # float16: the steps taken
    skipped, counted = sums.pop("skipped", None), sums.pop("counted", n_seen)
    row = {"train_loss": sums["total"] / counted if counted else math.nan,
           "train_dice": sums["dice"] / n_seen,
           **{f"train_{k}": v / counted if counted else math.nan for k, v in sums.items()
              if k not in ("total", "dice")},
           "train_images_per_s": n_seen * run.world / seconds}  # all ranks; data loading included
    return row if skipped is None else {**row, "train_skipped_steps": int(skipped)}


def _read_out(run: Run, epoch: int, sums: dict[str, torch.Tensor]) -> dict[str, float]:
    """The running sums on the host, in one sync, checked. A non-finite loss sum means some step's
    loss was not finite: in float32 and bfloat16 training stops here, before the epoch's checkpoint;
    under float16 the GradScaler skipped such steps (they are left out of the sums, `_train_step`),
    and training stops only after MAX_SKIPPED_IN_A_ROW skipped steps in a row (precision.py)."""
    tensors = dict(sums)
    if run.skips is not None:
        tensors.update(skipped=run.skips.epoch, skipped_in_a_row=run.skips.in_a_row)
    values = dict(zip(tensors, torch.stack([t.double() for t in tensors.values()]).tolist()))
    why = check_skipped(int(values.pop("skipped_in_a_row"))) if run.skips is not None else None
    if why is None and not math.isfinite(values["total"]):
        parts = {k: round(v, 4) for k, v in values.items()
                 if k not in ("dice", "counted", "skipped")}
        why = (f"non-finite loss at epoch {epoch + 1} "
               f"(its loss terms summed over the steps so far: {parts})")
    if why:
        raise TrainingError(f"{why}; stopped. The last good checkpoint is "
                            f"{run.last_path if run.last_path.exists() else 'not written yet'}; "
                            "try a lower --lr")
    return values


def _train_step(run: Run, images: torch.Tensor, masks: torch.Tensor,
                sums: dict[str, torch.Tensor]) -> None:
    """`train_step` on a batch; adds the batch's loss terms and Dice (times its size) to `sums`, on
    the device (float64, as the host's floats before): nothing here waits for the GPU."""
    images = images.to(run.device, non_blocking=True, memory_format=run.memory_format)
    masks = masks.to(run.device, non_blocking=True)
    out, total, parts = train_step(run.train_model, images, masks, run.optimizer, run.scaler,
                                   run.loss_fn, run.amp_dtype, run.scheduler, run.skips)
    b = images.shape[0]
    parts = {**parts, "total": total}  # the loss trained on: a non-finite one shows in the sums
    if run.skips is not None:  # float16: the means are over the steps the GradScaler took
        finite = torch.isfinite(parts["total"])
        parts = {k: torch.where(finite, v, 0.0) for k, v in parts.items()}
        sums["counted"] = sums.get("counted", 0.0) + finite.double() * b
    for k, v in parts.items():
        sums[k] = sums.get(k, 0.0) + v.double() * b
    sums["dice"] = sums.get("dice", 0.0) + dice_sum(out.logits.detach().float(), masks)


@torch.no_grad()
def evaluate_loss(model: nn.Module, dataset: Dataset, loss_fn: JointLoss, device: torch.device,
                  batch_size: int, memory_format=torch.contiguous_format,
                  amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Mean loss, Dice and Jaccard over a dataset at the model's input size (under autocast to
    `amp_dtype` when given, as in training). Dice and Jaccard are the test metrics' own
    (metrics.py), empty-mask rule included."""
    was_training = model.training
    model.eval()
    loss_sum, dice_sum, jac_sum, n = 0.0, 0.0, 0.0, 0
    for images, masks in DataLoader(dataset, batch_size=batch_size):
        images = images.to(device, memory_format=memory_format)
        masks = masks.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(images)
            total, _ = loss_fn(out, masks)
        scores = batch_scores(out.logits.float(), masks)  # B x {"dice", "jaccard"}
        loss_sum += total.item() * images.shape[0]
        dice_sum += sum(s["dice"] for s in scores)
        jac_sum += sum(s["jaccard"] for s in scores)
        n += images.shape[0]
    model.train(was_training)
    return {"loss": loss_sum / n, "dice": dice_sum / n, "jaccard": jac_sum / n}


def fit(cfg: TrainConfig) -> FitResult:
    """Train `cfg` (see TrainConfig): epochs of training and validation, checkpoints after each.
    Every setting and the output folder are checked first; what the run prints is kept in
    `<out>/run.log` too (run_folder.py).

    Args:
        cfg: the run's settings; fields left None take the preset's training defaults
            (`TrainConfig.resolved`). `resume="<out>/last.pt"` continues a run exactly.

    Returns:
        a `FitResult`: the trained model, one history row per epoch, the paths of best.pt and
        last.pt, the best validation Dice, and why the run stopped early (None if it did not).

    Example:
        >>> result = fit(TrainConfig(preset="tiny", data_dir="data/synthetic", out="runs/a",
        ...                          epochs=4))
        >>> result.best_path  # runs/a/best.pt: weights, network config and training settings
    """
    cfg = cfg.resolved()
    with closing_process_group():  # several processes: the group is destroyed however the run ends
        with run_log(cfg) as main:  # rank 0 prints the settings and keeps every printed line
            result = _epochs(setup(cfg))
            if main:
                print(end_line(result, Path(cfg.out)))
    return result


def _epochs(run: Run) -> FitResult:
    """The run's epochs, each: train, validate, let the schedule plan (or stop) on the time spent,
    write."""
    cfg, stopped_early, mark, started = run.cfg, None, schedule.clock(), time.perf_counter()
    # a schedule's end
    end = cfg.epochs if run.start_epoch < run.schedule.planned_epochs else run.start_epoch
    with RunCopies(run.out, cfg.copy_to if run.main else None) as copies:
        for epoch in range(run.start_epoch, end):
            epoch_start = time.perf_counter()
            train = train_one_epoch(run, epoch)
            # validation on rank 0, then every rank learns the score
            val = evaluate_loss(run.model, run.val_set, run.loss_fn, run.device, cfg.batch_size,
                                run.memory_format, run.amp_dtype) if run.main else {}
            row = {"epoch": epoch + 1,
                   **{k: v for k, v in train.items() if k != "train_images_per_s"},
                   **{f"val_{k}": v for k, v in val.items()},
                   "lr": run.optimizer.param_groups[0]["lr"],
                   "seconds": time.perf_counter() - epoch_start,
                   "train_images_per_s": train["train_images_per_s"]}
            run.history.append(row)
            score = broadcast(val.get("dice", 0.0), run.device, run.world)
            # the time since the last epoch ended (its checkpoint writes included), rank 0's for
            # every rank
            now = schedule.clock()
            seconds, mark = broadcast(now - mark, run.device, run.world), now
            stopped_early = _stop_reason(cfg, run, epoch, seconds)
            # rank 0's clock decides for all
            if broadcast(float(bool(stopped_early)), run.device, run.world):
                stopped_early = stopped_early or "stopped with rank 0"
            else:
                stopped_early = None
            if run.main:  # last.pt every checkpoint_every epochs, and always when the run ends
                last = (stopped_early is not None or epoch + 1 == cfg.epochs
                        or (epoch + 1) % cfg.checkpoint_every == 0)
                save_epoch(run, epoch + 1, score, last=last)
                if last:
                    # copy_to: a copy of the run's files, in the background (copies.py)
                    copies.submit()
                # with or without bars; the run's length is the schedule's plan
                # (a budget re-plans it)
                print(epoch_line(cfg, row, run.start_epoch, time.perf_counter() - started,
                                 run.schedule.planned_epochs))
            if stopped_early:
                if run.main:
                    print(stopped_early)
                break
    return FitResult(run.model, run.history, run.best_path, run.last_path, run.best_score,
                     stopped_early)


def _stop_reason(cfg: TrainConfig, run: Run, epoch: int, seconds: float) -> str | None:
    """Why to stop after `epoch` (which took `seconds`) before the last one: the time budget
    (the schedule counts the epoch and plans, schedule.py), or stop_after."""
    budget = run.schedule.epoch_done(epoch + 1, seconds, cfg)
    if epoch + 1 >= cfg.epochs:
        return None
    if budget:
        return budget
    if cfg.stop_after is not None and epoch + 1 - run.start_epoch >= cfg.stop_after:
        return f"stopped after {cfg.stop_after} epoch(s) as asked; resume from {run.last_path}"
    return None


def read_history(path: str | os.PathLike) -> list[dict]:
    """history.csv back as rows: the epoch an int, every other column a float."""
    return [{k: int(v) if k == "epoch" else float(v) for k, v in row.items()}
            for row in read_csv(path)]
