"""The course model: one trained tiny BA-Net, shipped with the package, behind every explorer.

    model, record = bl.course_model()     # offline; the file's SHA-256 is checked first

A network trained for a few epochs shows what an untrained network does: gates near 0.5, boundary
heads that mark nothing. So the notebooks keep their short runs to *teach* training, and *explore*
this model, trained once by `benchmarks/course_model.py` (fixed seed, recipe and budget in
`record["recipe"]`): the tiny preset on the synthetic lesions at 96 px, boundary pixels
weighted 10x. `banet_lite/assets/course_model.pt` holds its weights and config (a checkpoint without
optimizer state, about 1.2 MB), `course_model.json` its training record: command, validation curve,
the held-out side boundary F1 per stage, machine, date and the SHA-256 of the weights.

`held_out()` gives the images it is judged on: synthetic lesions from a seed that no training or
validation image uses (training draws seed 0, validation seed 1000).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, MissingFileError
from ..model.weights import load_checkpoint, model_from_checkpoint
from ..utils import resolve_device

ASSETS = Path(__file__).resolve().parents[1] / "assets"  # banet_lite/assets: package data
# a checkpoint: bl.evaluate.evaluate(COURSE_MODEL, ...) reads it too
COURSE_MODEL = ASSETS / "course_model.pt"
# SyntheticLesions(n, size, seed): never trained or validated on
HELD_OUT = {"n": 48, "size": 96, "seed": 7}


def course_model(device: str = "cpu") -> tuple[nn.Module, dict]:
    """(the course model in eval mode on `device`, its training record). Loads from the package,
    offline."""
    weights, record_path = COURSE_MODEL, COURSE_MODEL.with_suffix(".json")
    for path in (weights, record_path):
        if not path.is_file():
            raise MissingFileError(f"{path}: the course model is missing from this installation; "
                                   "reinstall banet-lite or run "
                                   "`python benchmarks/course_model.py`")
    record = json.loads(record_path.read_text())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != record["sha256"]:
        raise CheckpointError(f"{weights}: SHA-256 {digest[:12]}... does not match its record's "
                              f"{record['sha256'][:12]}...: the file is damaged or was replaced")
    ckpt = load_checkpoint(weights)  # weights_only=True
    model = model_from_checkpoint(ckpt).to(resolve_device(device)).eval()
    return model, record


def held_out(n: int | None = None) -> tuple[Tensor, Tensor]:
    """The held-out synthetic lesions: images (N, 3, 96, 96) ImageNet-normalised, masks
    (N, 1, 96, 96)."""
    from ..data import SyntheticLesions

    ds = SyntheticLesions(HELD_OUT["n"] if n is None else n, HELD_OUT["size"],
                          seed=HELD_OUT["seed"])
    images, masks = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(images), torch.stack(masks)


@torch.no_grad()
def held_out_side_f1(model: nn.Module, batch_size: int = 16) -> list[float]:
    """Side boundary F1 per stage (metrics.side_boundary_f_scores: p > 0.5 against the boundary
    band, 2 px tolerance) over the held-out images."""
    from ..metrics import side_boundary_f_scores

    images, masks = held_out()
    device = next(model.parameters()).device
    rule = model.config.border_rule
    sums = [0.0] * 4
    for i in range(0, len(images), batch_size):
        x, y = images[i : i + batch_size], masks[i : i + batch_size]
        scores = side_boundary_f_scores(model(x.to(device)).side_boundaries, y, rule)
        sums = [s + f * len(x) for s, f in zip(sums, scores)]
    return [s / len(images) for s in sums]
