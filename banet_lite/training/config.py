"""The training run's settings: one dataclass, every field a CLI flag (`python -m banet_lite train --help`).

Fields left None take the preset's training defaults (config.py `TRAINING_DEFAULTS`); `resolved()`
fills them in and checks, before any data is read, that the network can take the options and the
backbone weights asked for.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from ..errors import ConfigError
from ..model.banet import make_config, resolve_pretrained
from ..model.config import training_defaults
from .schedule import BUDGET_EPOCHS, check_settings, spans_budget


def setting(default, help: str):
    """A TrainConfig field and its help text: the CLI's `--help` reads it from the field's metadata."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything a run needs; fields left None take the preset's defaults (config.py)."""

    preset: str = setting("tiny", "tiny, lite, paper, or unet (the baseline, trained with lite's defaults)")
    data_dir: str | None = setting(None, "a folder dataset (images/ + masks/, or a native layout)")
    dataset: str | None = setting(None, "or a registry name (kvasir-seg, isic2018, ...), downloaded if needed")
    out: str = setting("runs/banet", "any folder (created with its parents), e.g. a mounted Google Drive folder")
    epochs: int | None = setting(None, "length of the poly schedule (None: the preset's; with a time budget and "
                                        "schedule=budget, as many as the budget allows)")
    batch_size: int | None = setting(None, "images per step on each process (torchrun: N processes take N times "
                                           "this per step); None: the preset's")
    img_size: int | None = setting(None, "training images are resized to this square (None: the preset's)")
    lr: float | None = setting(None, "Adam's base learning rate (None: the preset's)")
    weight_decay: float = setting(0.0, "Adam's weight decay")
    poly_power: float = setting(0.9, "lr(t) = lr * (1 - t / T) ** poly_power")
    num_classes: int = setting(2, "1: sigmoid output, as the paper; 2: softmax, as the authors' code")
    seed: int = setting(0, "the seed of the weights, the data order, augmentation and a drawn split")
    device: str = setting("auto", "auto -> cuda if available, else cpu")
    amp: bool = setting(True, "mixed precision (amp_settings): CUDA bf16/fp16; CPU bf16 where native, lite/paper only")
    compile: bool = setting(False, "torch.compile the model")
    channels_last: bool = setting(True, "train in the channels_last memory layout")
    cpu_fast_path: bool = setting(True, "CPU, paper: wide convs' weight gradients as GEMMs, fused Adam (train.py)")
    workers: int | None = setting(None, "DataLoader worker processes; None: auto (CUDA: min(4, CPUs per process); "
                                        "CPU: 0)")
    sync_bn: bool = setting(False, "several GPUs: BatchNorm over the global batch (for small per-rank batches)")
    ddp_timeout_min: float = setting(30.0, "several processes: minutes a collective waits for a missing rank "
                                           "before the run fails (distributed.py)")
    augment: bool = setting(True, "the paper's augmentation: flips, zoom or crop, rotation by up to 10 degrees")
    aug_strength: float = setting(1.0, "scales every augmentation's range")
    val_fraction: float = setting(0.1, "the validation share of the training images where the split has no val rows")
    synthetic_train: int = setting(96, "the synthetic default: training images (validation: a quarter)")
    synthetic_difficulty: float = setting(0.5, "the synthetic default: how hard its lesions are, 0 .. 1")
    side_weight: float = setting(1.0, "lambda_i of the joint loss")
    edge_pos_weight: float | None = setting(None, "weight of the boundary class in the side edge loss (None: 1)")
    edge_weight: float = setting(1.0, "weight of the side edge loss; 0 trains without boundary supervision")
    pretrained: str | None = setting(None, "backbone init: None (random), auto (ImageNet where the preset has it: "
                                           "paper), imagenet, a URL or a .pth file; ignored when resuming")
    resume: str | None = setting(None, "a checkpoint to continue from (last.pt)")
    time_budget: float | None = setting(None, "seconds for the whole run, resumes included; the run stops after "
                                              "the epoch in progress, and the schedule spans it (schedule.py)")
    schedule: str = setting("budget", "budget: with a time_budget the poly schedule spans it (re-estimated "
                                      "every epoch), ending at lr 0; epochs: it spans epochs, the budget only stops")
    stop_after: int | None = setting(None, "end this run after N epochs; the schedule still spans `epochs`")
    checkpoint_every: int = setting(5, "epochs between last.pt writes (paper: 513 MB each); also written at the "
                                       "end and at every early stop")
    copy_to: str | None = setting(None, "a second folder (e.g. on Google Drive) that gets a copy of last.pt, best.pt "
                                        "and history.csv at each last.pt write (copies.py)")
    progress: bool = setting(True, "progress bars")
    model_overrides: dict = field(default_factory=dict, metadata={"help": "BANetConfig fields to change, e.g. "
                                                                          "--model use_aspp=false reduce_dim=16"})

    def resolved(self) -> TrainConfig:
        """A copy with the preset's training defaults filled in; "auto" weights resolved."""
        if not (isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1):
            raise ConfigError(f"checkpoint_every={self.checkpoint_every!r}: epochs between last.pt writes, 1 or more")
        if self.workers is not None and not (isinstance(self.workers, int) and self.workers >= 0):
            raise ConfigError(f"workers={self.workers!r}: DataLoader worker processes, 0 or more (None: auto)")
        check_run_settings(self)  # the schedule, the time budget, copy_to, the group timeout
        defaults = training_defaults(self.preset)
        d = asdict(self)
        if d["epochs"] is None and spans_budget(self.schedule, self.time_budget):
            d["epochs"] = BUDGET_EPOCHS  # the time budget alone sets the run's length
        for name in ("epochs", "batch_size", "img_size", "lr"):
            if d[name] is None:
                d[name] = getattr(defaults, name)
        # Options or weights the network cannot take: a ConfigError now, before any data is read
        overrides = {"num_classes": self.num_classes, **self.model_overrides}
        make_config(self.preset, **overrides)
        d["pretrained"] = resolve_pretrained(self.pretrained, self.preset, **overrides)  # "auto" -> "imagenet"/None
        return TrainConfig(**d)


def resolve_workers(workers: int | None, device_type: str) -> int:
    """DataLoader workers: `workers` when given; None (auto) is 0 on a CPU, where workers would take cores
    from the training step itself, and on a GPU min(4, this process's share of the CPUs), so that decoding
    and augmentation run beside the GPU (torchrun's LOCAL_WORLD_SIZE processes share the machine)."""
    if workers is not None:
        return workers
    if device_type != "cuda":
        return 0
    per_process = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(4, per_process))


def check_run_settings(cfg: TrainConfig) -> None:
    """A ConfigError for a schedule, time budget, copy_to or group timeout no run can follow."""
    check_settings(cfg.schedule, cfg.time_budget)
    if not (isinstance(cfg.ddp_timeout_min, (int, float)) and cfg.ddp_timeout_min > 0):
        raise ConfigError(f"ddp_timeout_min={cfg.ddp_timeout_min!r}: minutes, more than 0")
    if cfg.copy_to is not None and os.path.abspath(cfg.copy_to) == os.path.abspath(cfg.out):
        raise ConfigError(f"copy_to={cfg.copy_to!r}: the run's own folder; give a second folder (e.g. on Drive)")
