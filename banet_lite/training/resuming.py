"""A run resumes as itself: its settings come from its checkpoint, never from today's defaults.

A checkpoint holds the run's whole `TrainConfig` (`train_config`). Two kinds of fields:

- the run's own (preset, data, image size, epochs, batch size, learning rate, the loss,
  the seed, ...): what the run *is*. Resuming takes them from the checkpoint; asking for another
  value is an error, because the schedule, the split and the weights all depend on them.
- the session's (`RESUME_MAY_CHANGE`): where and how this stretch of the run executes. They come
  from this command's flags (or their defaults), whatever the interrupted session used.

    settings_for_resume(given, ckpt, path)   the command line: the checkpoint's settings +
                                             the session's flags; a flag that contradicts the run is
                                             one ConfigError line
    check_resumable(cfg, ckpt, path, net)    `fit` from Python: a config (or network) that differs
                                             from the checkpoint's is one CheckpointError line, not
                                             a traceback
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from .config import TrainConfig

# The session's settings: these may differ from the interrupted session's (a GPU now, a new time
# budget, ...)
RESUME_MAY_CHANGE = ("resume", "out", "device", "progress", "workers", "time_budget", "stop_after",
                     "checkpoint_every", "compile", "channels_last", "cpu_fast_path", "amp",
                     "sync_bn", "pretrained")


def _same(name: str, a, b) -> bool:
    if name == "data_dir" and a and b:
        return os.path.abspath(a) == os.path.abspath(b)
    return a == b


def stored_settings(ckpt: dict, path) -> dict:
    """The run's TrainConfig fields as the checkpoint records them (a field it predates takes its
    default)."""
    stored = ckpt.get("train_config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{path}: records no training settings (not written by fit); "
                              "it cannot be resumed")
    known = {f.name for f in fields(TrainConfig)}
    return {**asdict(TrainConfig()), **{k: v for k, v in stored.items() if k in known}}


def conflicts(asked: dict, stored: dict) -> list[tuple[str, object, object]]:
    """(field, asked, the run's) for every field of the run's own that `asked` sets to another
    value."""
    return [(name, value, stored.get(name)) for name, value in asked.items()
            if name not in RESUME_MAY_CHANGE and not _same(name, value, stored.get(name))]


def settings_for_resume(given: dict, ckpt: dict, path: str | os.PathLike) -> dict:
    """TrainConfig fields for `train --resume path`: the run's own from the checkpoint,
    the session's from `given` (the flags on the command line) or their defaults; `out` defaults to
    the checkpoint's folder."""
    if "optimizer" not in ckpt:
        raise CheckpointError(f"{path}: holds the weights only (a best.pt); "
                              "resume from the run's last.pt")
    stored = stored_settings(ckpt, path)
    bad = conflicts(given, stored)
    if bad:
        asked = ", ".join(f"--{name.replace('_', '-')} {value}" for name, value, _ in bad)
        runs = ", ".join(f"{name} {ran}" for name, _, ran in bad)
        raise ConfigError(f"{asked}: contradicts the run in {path} ({runs}); "
                          "a resumed run keeps its own settings: "
                          "leave the flag out, or start a new run in another --out")
    if ckpt.get("epoch", 0) >= stored["epochs"]:
        raise ConfigError(f"{path}: this run finished all its {stored['epochs']} epochs; "
                          "nothing to resume "
                          "(a longer schedule is a new run: --epochs N --out another folder)")
    defaults = asdict(TrainConfig())
    settings = {**stored, **{name: defaults[name] for name in RESUME_MAY_CHANGE}}
    settings.update({k: v for k, v in given.items() if k in RESUME_MAY_CHANGE})
    settings["resume"] = str(path)
    settings["out"] = given.get("out") or str(Path(path).parent)
    return settings


def check_resumable(cfg: TrainConfig, ckpt: dict, path, network: dict) -> None:
    """Before a checkpoint's state goes into a run: the run's settings and its `network`
    (config dict) must be the checkpoint's, else a one-line CheckpointError naming what differs."""
    if ckpt.get("config") != network:
        theirs = ckpt.get("config") or {}
        diff = [f"{k} {theirs.get(k)!r} vs {network.get(k)!r}"
                for k in sorted(set(theirs) | set(network)) if theirs.get(k) != network.get(k)]
        raise CheckpointError(f"{path}: its network differs from this run's ({', '.join(diff[:4])}"
                              f"{', ...' if len(diff) > 4 else ''}); "
                              "resume with the checkpoint's settings "
                              f"(python -m banet_lite train --resume {path} takes them from it)")
    if "train_config" in ckpt:
        bad = conflicts(asdict(cfg), stored_settings(ckpt, path))
        if bad:
            said = ", ".join(f"{name}={asked!r} (the run's: {ran!r})"
                             for name, asked, ran in bad[:4])
            raise CheckpointError(f"{path}: this run asks for {said}; a resumed run keeps its own "
                                  f"settings (python -m banet_lite train --resume {path} takes "
                                  "them from the checkpoint)")
