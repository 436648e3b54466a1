"""Seeds and devices: the lines every notebook, test and run starts with."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def default_device() -> torch.device:
    """`cuda` when a GPU is available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> `default_device()`; else the named device, with a clear error where CUDA is
    missing."""
    from .errors import ConfigError

    device = str(device)
    if device == "auto":
        return default_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine; "
                          "use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:  # torch.device("gpu"): an unknown device string
        raise ConfigError(f"--device {device}: not a device ({exc}); "
                          "use auto, cpu, cuda or cuda:N") from exc
