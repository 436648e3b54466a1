"""Checkpoints: what a run writes (`last.pt`, `best.pt`) and how a network comes back from one.

A checkpoint is a dict of plain types and tensors, so it loads with `torch.load(weights_only=True)`
(no code runs from the file):

    model        state_dict of the network
    config       the network's architecture (its config's to_dict(); `preset` names the family)
    img_size     the input size it was trained at (evaluation resizes to it)
    train_config the run's TrainConfig as a dict (seed and val_fraction rebuild its split)
    optimizer, scheduler, scaler, epoch, best_score, history, rng: what an exact resume needs
                 (last.pt only: best.pt keeps the weights, not the optimizer's state;
                 the scheduler's state holds the schedule's plan, schedule.py)

`fit` writes them through `save_epoch` (best.pt when validation improves; last.pt every
`checkpoint_every` epochs and when the run ends) and `save_checkpoint` (torch.save to a local
temporary file, then one copy and an atomic rename into the output folder); `resume` reads last.pt
back into a run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import CheckpointError, OutputError
from ..files import atomic_write, reason, write_csv

# read back: model side
from ..model.weights import load_checkpoint, load_model, model_from_checkpoint  # noqa: F401
from .resuming import check_resumable

if TYPE_CHECKING:  # for the annotations only: train.py imports this module
    from .train import Run


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write `state` to `path` atomically and to disk: a crash mid-write never leaves a broken
    checkpoint.

    One rule wherever `path` is: `torch.save` writes a file in the local temporary folder
    (`tempfile.gettempdir()`), which is then copied in one sequential pass to `.<name>.<pid>.tmp`
    next to `path`, fsynced and renamed over `path` (`files.atomic_write`). torch.save writes many
    small pieces; on a slow or mounted output folder (a Google Drive mount, a network disk) that is
    far slower than one copy, and the training process would wait on it. A reader of `path` sees
    the old file or the new one.
    """
    local = _save_locally(state, path)
    try:
        atomic_write(path, lambda tmp: _copy_to_disk(local, tmp))
    finally:
        Path(local).unlink(missing_ok=True)


def _save_locally(state: dict, path: str | os.PathLike) -> str:
    """torch.save `state` to a new file in the local temporary folder; a full or read-only temporary
    folder is one OutputError line naming both paths (torch reports a failed write as
    a RuntimeError)."""
    local = None
    try:
        fd, local = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".local")
        os.close(fd)
        torch.save(state, local)
    except (OSError, RuntimeError) as exc:
        if local:
            Path(local).unlink(missing_ok=True)
        if isinstance(exc, RuntimeError) and "write" not in str(exc):
            raise  # not a failed write: a bug, with its traceback
        why = reason(exc) if isinstance(exc, OSError) else str(exc).splitlines()[-1].strip()
        raise OutputError(f"{path}: cannot write the checkpoint: saving it to "
                          f"{local or tempfile.gettempdir()} failed ({why})") from exc
    return local


def _copy_to_disk(src: str | os.PathLike, dst: Path) -> None:
    """Copy `src` to `dst` and fsync it: its bytes are on the disk before atomic_write renames
    it."""
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())


def model_config_dict(model: nn.Module, preset: str | None = None) -> dict:
    """The architecture of `model` as plain types, for the checkpoint's `config` entry (the input
    size is not part of it: that is the checkpoint's own `img_size`)."""
    return model.config.to_dict()


# ------------------------------------------------------------------- a training run's checkpoints
def checkpoint_state(run: Run, epoch: int) -> dict:
    """The whole state of a training run (train.py's Run) after `epoch` epochs: what `resume` needs
    to continue bit for bit."""
    rng = {"torch": torch.get_rng_state()}
    if run.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(run.device)
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
            "epoch": epoch, "best_score": run.best_score,
            "config": model_config_dict(run.model, run.cfg.preset), "train_config": asdict(run.cfg),
            "img_size": run.cfg.img_size, "history": run.history, "rng": rng}


def weights_state(run: Run, epoch: int) -> dict:
    """What `best.pt` holds: what evaluate and predict need (weights, config, input size, the run's
    settings and record), not the optimizer's state (two thirds of `last.pt` for Adam)."""
    full = checkpoint_state(run, epoch)
    return {k: full[k] for k in ("model", "epoch", "best_score", "config", "train_config",
                                 "img_size", "history")}


def resume(run: Run, path: str | os.PathLike) -> None:
    """Put a freshly set-up run back into the state `last.pt` at `path` holds. Loaded onto the CPU:
    each `load_state_dict` places its state where its owner keeps it (Adam's `step` counts:
    optimizer.py)."""
    ckpt = load_checkpoint(path, map_location="cpu")
    if "optimizer" not in ckpt:
        raise CheckpointError(f"{path}: holds the weights only (a best.pt); "
                              "resume from the run's last.pt")

    # another network or recipe: one line
    check_resumable(run.cfg, ckpt, path, model_config_dict(run.model))
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    # empty when saved without float16 (CPU, bfloat16)
    if ckpt["scaler"] and run.scaler.is_enabled():
        run.scaler.load_state_dict(ckpt["scaler"])
    run.start_epoch, run.best_score, run.history = (ckpt["epoch"], ckpt["best_score"],
                                                    list(ckpt["history"]))
    torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    if "cuda" in ckpt["rng"] and run.device.type == "cuda":
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), run.device)
    if run.main:
        print(f"resumed from {path} at epoch {run.start_epoch} "
              f"(best val Dice {run.best_score:.4f})")


def save_epoch(run: Run, epoch: int, score: float, last: bool = True) -> None:
    """Rank 0, after each epoch: best.pt (weights) when the validation Dice beats every earlier one,
    last.pt (the whole state) when `last` (every `checkpoint_every` epochs, and when the run ends),
    history.csv."""
    if score > run.best_score:
        run.best_score = score
        save_checkpoint(run.best_path, weights_state(run, epoch))
    if last:
        save_checkpoint(run.last_path, checkpoint_state(run, epoch))
    write_csv(run.out / "history.csv", run.history)
