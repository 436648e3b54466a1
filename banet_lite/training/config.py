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


@dataclass
class TrainConfig:
    """Everything a run needs; fields left None take the preset's defaults (config.py)."""

    preset: str = "tiny"  # tiny, lite, paper, or unet (the baseline, trained with lite's defaults)
    data_dir: str | None = None  # a folder dataset (images/ + masks/, or a native layout)
    dataset: str | None = None  # or a registry name (kvasir-seg, isic2018, ...), downloaded if needed
    out: str = "runs/banet"  # any folder (created with its parents), e.g. a mounted Google Drive folder
    epochs: int | None = None
    batch_size: int | None = None
    img_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    poly_power: float = 0.9
    num_classes: int = 2
    seed: int = 0
    device: str = "auto"  # auto -> cuda if available, else cpu
    amp: bool = True  # mixed precision (amp_settings): CUDA bf16/fp16; CPU bf16 where native, lite/paper only
    compile: bool = False  # torch.compile the model
    channels_last: bool = True
    cpu_fast_path: bool = True  # CPU, paper: wide convs' weight gradients as GEMMs, fused Adam (train.py)
    workers: int | None = None  # DataLoader worker processes; None: auto (CUDA: min(4, CPUs per process); CPU: 0)
    sync_bn: bool = False  # several GPUs: BatchNorm over the global batch (for small per-rank batches)
    augment: bool = True
    aug_strength: float = 1.0
    val_fraction: float = 0.1
    synthetic_train: int = 96  # the synthetic default: training images (validation: a quarter)
    synthetic_difficulty: float = 0.5
    side_weight: float = 1.0  # lambda_i of the joint loss
    edge_pos_weight: float | None = None  # weight of the boundary class in the side edge loss (None: 1)
    edge_weight: float = 1.0  # weight of the side edge loss; 0 trains without boundary supervision
    # backbone init: None (random), "auto" (ImageNet where the preset has it: paper; else None),
    # "imagenet", a URL or a .pth file with torchvision key names. Ignored when resuming.
    pretrained: str | None = None
    resume: str | None = None  # a checkpoint to continue from (last.pt)
    time_budget: float | None = None  # seconds; stops after the epoch in progress
    stop_after: int | None = None  # end this run after N epochs; the schedule still spans `epochs`
    checkpoint_every: int = 1  # epochs between last.pt writes; also written at the end and when the run stops early
    progress: bool = True
    model_overrides: dict = field(default_factory=dict)  # e.g. {"use_pee": False}

    def resolved(self) -> TrainConfig:
        """A copy with the preset's training defaults filled in; "auto" weights resolved."""
        if not (isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1):
            raise ConfigError(f"checkpoint_every={self.checkpoint_every!r}: epochs between last.pt writes, 1 or more")
        if self.workers is not None and not (isinstance(self.workers, int) and self.workers >= 0):
            raise ConfigError(f"workers={self.workers!r}: DataLoader worker processes, 0 or more (None: auto)")
        defaults = training_defaults(self.preset)
        d = asdict(self)
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
