"""What a training run prints: its settings, one line per epoch with the whole run's progress and
ETA, the end.

These lines are printed with or without progress bars (`progress=False`, `--no-progress`), so that
a log (`nohup ... > train.log`, and the run's own run.log) holds them all; the bars
(tqdm, on stderr) only add the steps within an epoch.

    train: preset tiny, 96 px, 12 epochs of batch 8, lr 0.003; data data/synthetic;
           out runs/quickstart
    epoch 3/12: train loss 0.8123  val loss 0.7011  val Dice 0.4410  (4.1s) | 25% of the run,
                0:12 elapsed, ETA 0:37
    done: best val Dice 0.6203 (epoch 11); runs/quickstart: best.pt, last.pt, history.csv, run.log
"""

from __future__ import annotations

import math

from .config import TrainConfig
from .schedule import BUDGET_EPOCHS, spans_budget

EPOCH_LINE_START = "epoch "  # run_folder.py begins run.log at the first such line


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss or m:ss."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def settings_line(cfg: TrainConfig) -> str:
    """The run in one line (a resolved config: the preset's defaults filled in)."""
    data = (cfg.data_dir or cfg.dataset
            or f"synthetic lesions ({cfg.synthetic_train} training images)")
    resume = f"; resuming {cfg.resume}" if cfg.resume else ""
    length = (f"as many epochs as {clock(cfg.time_budget)} allow"
              if spans_budget(cfg.schedule, cfg.time_budget) and cfg.epochs == BUDGET_EPOCHS
              else f"{cfg.epochs} epochs")
    return (f"train: preset {cfg.preset}, {cfg.img_size} px, {length} of batch {cfg.batch_size}, "
            f"lr {cfg.lr:g}; data {data}; out {cfg.out}{resume}")


def last_epoch(cfg: TrainConfig, start_epoch: int, planned: int | None = None) -> int:
    """The epoch this session will end after (`planned`: the schedule's plan, else cfg.epochs),
    unless a time budget ends it sooner."""
    planned = cfg.epochs if planned is None else planned
    return planned if cfg.stop_after is None else min(planned, start_epoch + cfg.stop_after)


def eta(cfg: TrainConfig, epoch: int, start_epoch: int, elapsed: float,
        planned: int | None = None) -> float:
    """Seconds left after `epoch` (0-based) at this session's mean epoch time, capped by the time
    budget."""
    done = epoch + 1 - start_epoch
    left = elapsed / max(done, 1) * (last_epoch(cfg, start_epoch, planned) - epoch - 1)
    if cfg.time_budget is not None:
        left = min(left, max(0.0, cfg.time_budget - elapsed))
    return left


def epoch_line(cfg: TrainConfig, row: dict, start_epoch: int, elapsed: float,
               planned: int | None = None) -> str:
    """One epoch's line: losses, validation Dice, its seconds, and the whole run's progress and ETA;
    `planned`: the run's length in epochs as the schedule now plans it
    (a time budget re-plans it)."""
    epoch = row["epoch"] - 1
    planned = cfg.epochs if planned is None else planned
    share = (epoch + 1) / planned  # of the whole run; the ETA is to the end of this session
    return (f"epoch {epoch + 1}/{planned}: train loss {row['train_loss']:.4f}  "
            f"val loss {row['val_loss']:.4f}  val Dice {row['val_dice']:.4f}  "
            f"({row['seconds']:.1f}s) | {math.floor(100 * share)}% of the run, "
            f"{clock(elapsed)} elapsed, "
            f"ETA {clock(eta(cfg, epoch, start_epoch, elapsed, planned))}")


def end_line(result, out) -> str:
    """The end of a run (train.py's FitResult): the best validation Dice and the files that
    exist."""
    best = max(result.history, key=lambda r: r.get("val_dice", -1.0), default=None)
    at = f" (epoch {best['epoch']})" if best and "val_dice" in best else ""
    files = [name for name in ("best.pt", "last.pt", "history.csv", "run.log")
             if (out / name).exists()]
    return (f"done: best val Dice {result.best_score:.4f}{at}; "
            f"{out}: {', '.join(files) or 'no files'}")


def epoch_bar(loader, enabled: bool, desc: str):
    """`loader` inside a tqdm bar for the steps of one epoch (on stderr, gone when the epoch ends),
    or as is."""
    if not enabled:
        return loader
    from tqdm.auto import tqdm

    # iter() here, once: a tqdm that iterated the loader itself would draw a second shuffle from the
    # seeded generator, and a run with a progress bar would then differ from one without.
    return tqdm(iter(loader), total=len(loader), desc=desc, leave=False, dynamic_ncols=True)
