"""Checkpoints: what a run writes (`last.pt`, `best.pt`) and how a network comes back from one.

A checkpoint is a dict of plain types and tensors, so it loads with `torch.load(weights_only=True)`
(no code runs from the file):

    model        state_dict of the network
    config       the network's architecture (its config's to_dict(); `preset` names the family)
    img_size     the input size it was trained at (evaluation resizes to it)
    train_config the run's TrainConfig as a dict (seed and val_fraction rebuild its split)
    optimizer, scheduler, scaler, epoch, best_score, history, rng: what an exact resume needs
                 (last.pt only: best.pt keeps the weights, not the optimizer's state)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError, MissingFileError
from .files import atomic_write
from .model import build_model, config_from_dict
from .utils import resolve_device


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write atomically and to disk (fsync): a crash mid-write never leaves a broken checkpoint behind."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getbuffer(), fsync=True)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """torch.load with weights_only=True (no code runs from the file), with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not what it claims
        raise CheckpointError(f"{path}: not a readable banet-lite checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"{path}: not a banet-lite checkpoint (no 'model'/'config' entries)")
    return ckpt


def model_config_dict(model: nn.Module, preset: str | None = None) -> dict:
    """The architecture of `model` as plain types, for the checkpoint's `config` entry (the input size
    is not part of it: that is the checkpoint's own `img_size`)."""
    return model.config.to_dict()


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network a checkpoint was trained with (BA-Net or the U-Net baseline) and load its weights."""
    model = build_model(config_from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model


def load_model(checkpoint: str | os.PathLike, device: str = "auto") -> tuple[nn.Module, dict]:
    """(model in eval mode on the device, checkpoint dict)."""
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).to(resolve_device(device)).eval()
    return model, ckpt
