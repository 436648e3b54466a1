"""A checkpoint written by banet-lite 0.1, which called the boundary side "edge", still loads and
resumes as itself (model/weights.py: upgrade_names). The course model shipped in the package is
such a checkpoint too, so every test that loads it goes through the same path."""

from __future__ import annotations

import csv
from dataclasses import replace

import torch
from train_configs import tiny_run

from banet_lite.model.weights import (
    RENAMED_COLUMNS,
    RENAMED_SETTINGS,
    RENAMED_WEIGHTS,
    load_checkpoint,
    model_from_checkpoint,
)
from banet_lite.training.config import TrainConfig
from banet_lite.training.resuming import settings_for_resume
from banet_lite.training.train import fit


def _back(name: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        name = name.replace(new, old)
    return name


def as_written_by_0_1(ckpt: dict) -> dict:
    """The checkpoint with the old names: what a 0.1 run left on disk."""
    old_setting = {new: old for old, new in RENAMED_SETTINGS.items()}
    return {**ckpt,
            "model": {_back(k, RENAMED_WEIGHTS): v for k, v in ckpt["model"].items()},
            "train_config": {old_setting.get(k, k): v for k, v in ckpt["train_config"].items()},
            "history": [{_back(k, RENAMED_COLUMNS): v for k, v in row.items()} for row in ckpt["history"]]}


def test_a_checkpoint_with_the_old_edge_names_loads_and_resumes_with_its_own_loss_weights(tmp_path):
    cfg = tiny_run(tmp_path / "run", epochs=2, boundary_weight=0.0, boundary_pos_weight=3.0)
    fit(replace(cfg, stop_after=1))
    last = tmp_path / "run" / "last.pt"
    old = as_written_by_0_1(torch.load(last, weights_only=True))
    assert any(".edge_head." in k for k in old["model"]) and "edge_weight" in old["train_config"]
    assert "train_side_edge" in old["history"][0]
    torch.save(old, last)

    ckpt = load_checkpoint(last)
    assert not any("edge" in k for k in ckpt["model"]), "every weight name is today's"
    model_from_checkpoint(ckpt)  # strict load_state_dict: no missing or unexpected key
    # today's default is boundary_weight 1.0: a resume that dropped the old field would train
    # with boundary supervision the run never had
    settings = settings_for_resume({}, ckpt, last)
    assert (settings["boundary_weight"], settings["boundary_pos_weight"]) == (0.0, 3.0)

    fit(TrainConfig(**settings))  # the second epoch
    with open(tmp_path / "run" / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and "train_side_boundary" in rows[0]
    assert not any("edge" in column for column in rows[0])
