"""A trained network back from its checkpoint file, for inference: evaluate, predict, the course
model.

    load_checkpoint(path)       the checkpoint dict, read with torch.load(weights_only=True): no
                                code runs from the file; a missing or foreign file is one clear
                                error; names from banet-lite 0.1 are brought up to date
    model_from_checkpoint(ckpt) the network it was trained with (its `config` entry names the
                                family), with its weights
    load_model(path, device)    both, the network in eval mode on the device

What a checkpoint holds, and how a training run writes one, is training/checkpoint.py's business;
this side only reads, so evaluation never imports the training room.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, MissingFileError
from ..renames import RENAMED_COLUMNS, RENAMED_SETTINGS, RENAMED_WEIGHTS  # 0.1's names -> today's
from ..utils import resolve_device
from .registry import build_model, config_from_dict


def _renamed(name: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        name = name.replace(old, new)
    return name


def _renamed_weights(state: dict) -> dict:
    """A state dict with RENAMED_WEIGHTS applied; its `_metadata` (per-module versions, keyed by
    module prefix) follows."""
    new = OrderedDict((_renamed(k, RENAMED_WEIGHTS), v) for k, v in state.items())
    if list(new) == list(state):
        return state
    meta = getattr(state, "_metadata", None)
    if meta is not None:
        new._metadata = OrderedDict((_renamed(k + ".", RENAMED_WEIGHTS)[:-1], v)
                                    for k, v in meta.items())
    return new


def upgrade_names(ckpt: dict) -> dict:
    """The checkpoint with today's names for its weights, settings and history (a no-op on one
    written by this version)."""
    if isinstance(ckpt.get("model"), dict):
        ckpt["model"] = _renamed_weights(ckpt["model"])
    if isinstance(ckpt.get("train_config"), dict):
        ckpt["train_config"] = {RENAMED_SETTINGS.get(k, k): v
                                for k, v in ckpt["train_config"].items()}
    if isinstance(ckpt.get("history"), list):
        ckpt["history"] = [{_renamed(k, RENAMED_COLUMNS): v for k, v in row.items()}
                           if isinstance(row, dict) else row for row in ckpt["history"]]
    return ckpt


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
    return upgrade_names(ckpt)


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
