"""A trained network back from its checkpoint file, for inference: evaluate, predict, the course
model.

    load_checkpoint(path)       the checkpoint dict, read with torch.load(weights_only=True): no
                                code runs from the file; a missing or foreign file is one clear
                                error
    model_from_checkpoint(ckpt) the network it was trained with (its `config` entry names the
                                family), with its weights
    load_model(path, device)    both, the network in eval mode on the device

What a checkpoint holds, and how a training run writes one, is training/checkpoint.py's business;
this side only reads, so evaluation never imports the training room.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, MissingFileError
from ..utils import resolve_device
from .registry import build_model, config_from_dict


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """torch.load with weights_only=True (no code runs from the file), with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not what it claims
        raise CheckpointError(f"{path}: not a readable banet-lite checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"{path}: not a banet-lite checkpoint (no 'model'/'config' entries)")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network a checkpoint was trained with (BA-Net or the U-Net baseline) and load its
    weights."""
    model = build_model(config_from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model


def load_model(checkpoint: str | os.PathLike, device: str = "auto") -> tuple[nn.Module, dict]:
    """(model in eval mode on the device, checkpoint dict)."""
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).to(resolve_device(device)).eval()
    return model, ckpt
