"""The training run's settings: one dataclass, every field a CLI flag
(`python -m banet_lite train --help`).

Fields left None take the preset's training defaults (`TRAINING_DEFAULTS` below); `resolved()`
fills them in and checks, before any data is read, every setting (`check_settings`: epochs, batch
size and learning rate above their minimum, an image size the network takes, fractions in
range, ...) and that the network can take the options and the backbone weights asked for.
`check_writable(cfg.out)` (files.py) checks the output folder. The CLI and notebook 05 take their
defaults from this class.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

from ..errors import ConfigError
from ..model.config import min_img_size
from .schedule import BUDGET_EPOCHS, SCHEDULES, spans_budget


@dataclass(frozen=True)
class TrainingDefaults:
    """What `fit` and the CLI use for a preset when not told otherwise."""

    img_size: int
    batch_size: int
    lr: float
    epochs: int


TRAINING_DEFAULTS: dict[str, TrainingDefaults] = {
    # the reference's recipe
    "paper": TrainingDefaults(img_size=256, batch_size=8, lr=1e-4, epochs=150),
    # lite trains from scratch (no ImageNet weights at its width), so a higher lr than
    # the paper's 1e-4; 192 px inputs buy about 1.8x the epochs of 256 px within a fixed CPU budget
    # (benchmarks/RESULTS.md)
    "lite": TrainingDefaults(img_size=192, batch_size=8, lr=1e-3, epochs=30),
    # 12 epochs: notebook 05's CPU run, a couple of minutes on a laptop
    "tiny": TrainingDefaults(img_size=96, batch_size=8, lr=3e-3, epochs=12),
}
# the U-Net baseline trains with lite's defaults
TRAINING_DEFAULTS["unet"] = TRAINING_DEFAULTS["lite"]


def training_defaults(preset: str) -> TrainingDefaults:
    if preset not in TRAINING_DEFAULTS:
        raise ConfigError(f"preset={preset!r}: unknown; choose one of {sorted(TRAINING_DEFAULTS)}")
    return TRAINING_DEFAULTS[preset]


def setting(default, help: str):
    """A TrainConfig field and its help text: the CLI's `--help` reads it from the field's
    metadata."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything a run needs; fields left None take the preset's defaults (config.py)."""

    preset: str = setting("tiny", "tiny, lite, paper, or unet "
                                  "(the baseline, trained with lite's defaults)")
    data_dir: str | None = setting(None, "a folder dataset (images/ + masks/, or a native layout)")
    dataset: str | None = setting(None, "or a registry name (kvasir-seg, isic2018, ...), "
                                        "downloaded if needed")
    foreground: int | None = setting(None, "the mask value that marks the lesion in label masks "
                                           "(e.g. 2 in {0, 1, 2}); None: binary masks only, "
                                           "{0, 1} or {0, 255}")
    out: str = setting("runs/banet", "any folder (created with its parents), "
                                     "e.g. a mounted Google Drive folder")
    epochs: int | None = setting(None, "length of the poly schedule "
                                       "(None: the preset's; with a time budget and "
                                       "schedule=budget, as many as the budget allows)")
    batch_size: int | None = setting(None, "images per step on each process, 2 or more "
                                           "(torchrun: N processes take N times this per step); "
                                           "None: the preset's")
    img_size: int | None = setting(None, "training images are resized to this square "
                                         "(None: the preset's); BA-Net takes 1 px or more, "
                                         "the U-Net baseline 16")
    lr: float | None = setting(None, "Adam's base learning rate (None: the preset's)")
    weight_decay: float = setting(0.0, "Adam's weight decay")
    poly_power: float = setting(0.9, "lr(t) = lr * (1 - t / T) ** poly_power")
    num_classes: int = setting(2, "1: sigmoid output, as the paper; "
                                  "2: softmax, as the authors' code")
    seed: int = setting(0, "the seed of the weights, the data order, "
                           "augmentation and a drawn split")
    device: str = setting("auto", "auto -> cuda if available, else cpu")
    amp: bool = setting(True, "mixed precision (amp_settings): CUDA bf16/fp16; "
                              "CPU bf16 where native, lite/paper only")
    compile: bool = setting(False, "torch.compile the model")
    channels_last: bool = setting(True, "train in the channels_last memory layout")
    cpu_fast_path: bool = setting(True, "CPU, paper: wide convs' weight gradients as GEMMs, "
                                        "fused Adam (train.py)")
    workers: int | None = setting(None, "DataLoader worker processes; None: auto "
                                        "(CUDA: min(4, CPUs per process); CPU: 0)")
    sync_bn: bool = setting(False, "several GPUs: BatchNorm over the global batch "
                                   "(for small per-rank batches)")
    ddp_timeout_min: float = setting(30.0, "several processes: minutes a collective waits for a "
                                           "missing rank before the run fails (distributed.py)")
    augment: bool = setting(True, "the paper's augmentation: flips, zoom or crop, "
                                  "rotation by up to 10 degrees")
    aug_strength: float = setting(1.0, "scales every augmentation's range")
    val_fraction: float = setting(0.1, "the validation share of the training images "
                                       "where the split has no val rows")
    synthetic_train: int = setting(96, "the synthetic default: training images "
                                       "(validation: a quarter)")
    synthetic_difficulty: float = setting(0.5, "the synthetic default: "
                                               "how hard its lesions are, 0 .. 1")
    side_weight: float = setting(1.0, "lambda_i of the joint loss")
    boundary_pos_weight: float | None = setting(None, "weight of the boundary class "
                                                  "in the side boundary loss (None: 1)")
    boundary_weight: float = setting(1.0, "weight of the side boundary loss; "
                                      "0 trains without boundary supervision")
    pretrained: str | None = setting(None, "backbone init: None (random), "
                                           "auto (ImageNet where the preset has it: paper), "
                                           "imagenet, a URL or a .pth file; ignored when resuming")
    resume: str | None = setting(None, "a checkpoint to continue from (last.pt)")
    time_budget: float | None = setting(None, "seconds for the whole run, resumes included; "
                                              "the run stops after the epoch in progress, "
                                              "and the schedule spans it (schedule.py)")
    schedule: str = setting("budget", "budget: with a time_budget the poly schedule spans it "
                                      "(re-estimated every epoch), ending at lr 0; "
                                      "epochs: it spans epochs, the budget only stops")
    stop_after: int | None = setting(None, "end this run after N epochs; "
                                           "the schedule still spans `epochs`")
    checkpoint_every: int = setting(5, "epochs between last.pt writes (paper: 513 MB each); "
                                       "also written at the end and at every early stop")
    copy_to: str | None = setting(None, "a second folder (e.g. on Google Drive) "
                                        "that gets a copy of last.pt, best.pt and history.csv "
                                        "at each last.pt write (copies.py)")
    progress: bool = setting(True, "progress bars (one line per epoch is printed either way)")
    model_overrides: dict = field(default_factory=dict,
                                  metadata={"help": "BANetConfig fields to change, "
                                                    "e.g. --model use_aspp=false reduce_dim=16"})

    def resolved(self) -> TrainConfig:
        """A copy with the preset's training defaults filled in, "auto" weights resolved and
        `data_dir` made absolute (a resumed run finds its data from any folder); every setting
        checked (`check_settings`)."""
        # torch: only once a run is being set up
        from ..model.registry import resolve_pretrained

        defaults = training_defaults(self.preset)
        d = asdict(self)
        if d["epochs"] is None and spans_budget(self.schedule, self.time_budget):
            d["epochs"] = BUDGET_EPOCHS  # the time budget alone sets the run's length
        for name in ("epochs", "batch_size", "img_size", "lr"):
            if d[name] is None:
                d[name] = getattr(defaults, name)
        if d["data_dir"]:
            d["data_dir"] = os.path.abspath(d["data_dir"])
        check_settings(d)
        # Options or weights the network cannot take: a ConfigError now, before any data is read
        network = self.network()
        smallest = min_img_size(network)
        if d["img_size"] < smallest:  # only the U-Net baseline has a minimum above 1 px
            raise ConfigError(f"img_size={d['img_size']}: preset {self.preset!r} takes images "
                              f"of {smallest} px or more (each of its max-pools halves the size)")
        # "auto" -> "imagenet"/None
        d["pretrained"] = resolve_pretrained(self.pretrained, network)
        return TrainConfig(**d)

    def network(self):
        """The config of the network this run trains: the preset with `num_classes` and
        `model_overrides` applied. The one place where a run's preset becomes a network (`resolved`
        checks it, `setup` builds it, a benchmark counts its parameters)."""
        from ..model.registry import make_config  # torch: only once a run is being set up

        overrides = self.model_overrides or {}
        return make_config(self.preset, num_classes=self.num_classes, **overrides)


def _whole(low: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(test):
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                      and test(v))


def _optional(rule):
    return lambda v: v is None or rule(v)


# field -> (rule, what a valid value is): checked by `check_settings`; img_size also by
# the network's minimum
SETTING_RULES = {
    "epochs": (_whole(1), "must be 1 or more (the length of the schedule)"),
    "batch_size": (_whole(2), "must be 2 or more "
                              "(BatchNorm needs two images; ASPP's pooling gives one value each)"),
    "img_size": (_whole(1), "must be a whole number of pixels, 1 or more"),
    "lr": (_number(lambda v: v > 0), "must be above 0 (Adam's learning rate)"),
    "weight_decay": (_number(lambda v: v >= 0), "must be 0 or more"),
    "poly_power": (_number(lambda v: v >= 0), "must be 0 or more (the poly schedule's exponent)"),
    "num_classes": (lambda v: v in (1, 2) and not isinstance(v, bool),
                    "must be 1 (sigmoid) or 2 (softmax)"),
    "seed": (_whole(0), "must be a whole number, 0 or more"),
    "aug_strength": (_number(lambda v: v >= 0), "must be 0 (no augmentation) or more"),
    "val_fraction": (_number(lambda v: 0 <= v < 1), "must be a fraction, 0 <= f < 1"),
    "synthetic_train": (_whole(2), "must be 2 or more (synthetic training images)"),
    "synthetic_difficulty": (_number(lambda v: 0 <= v <= 1),
                             "must be between 0 (easy) and 1 (hard)"),
    "side_weight": (_number(lambda v: v >= 0), "must be 0 or more"),
    "boundary_weight": (_number(lambda v: v >= 0), "must be 0 or more"),
    "boundary_pos_weight": (_optional(_number(lambda v: v > 0)), "must be above 0, or None (1)"),
    "time_budget": (_optional(_number(lambda v: v > 0)), "must be above 0 (seconds), or None"),
    "stop_after": (_optional(_whole(1)), "must be 1 or more (epochs), or None"),
    "checkpoint_every": (_whole(1), "must be 1 or more (epochs between last.pt writes)"),
    "workers": (_optional(_whole(0)),
                "must be 0 or more (DataLoader worker processes), or None (auto)"),
    "foreground": (_optional(_whole(0)), "must be a mask value, 0 or more, or None (binary masks)"),
    "schedule": (lambda v: v in SCHEDULES, f"must be one of {', '.join(SCHEDULES)} (schedule.py)"),
    "ddp_timeout_min": (_number(lambda v: v > 0), "must be above 0 (minutes a collective waits)"),
}


def check_settings(settings: dict) -> None:
    """One ConfigError line for the first setting out of range (`SETTING_RULES`), before anything is
    built, read or written: `fit` would otherwise fail after an epoch, or worse, succeed at nothing
    (epochs=0)."""
    for name, (rule, what) in SETTING_RULES.items():
        value = settings.get(name)
        if not rule(value):
            raise ConfigError(f"{name}={value!r}: {what}")
    if settings.get("data_dir") and settings.get("dataset"):
        raise ConfigError("data_dir and dataset (--data-dir and --dataset): "
                          "give one of them, not both")
    copy_to, out = settings.get("copy_to"), settings.get("out")
    if copy_to is not None and out is not None and os.path.abspath(copy_to) == os.path.abspath(out):
        raise ConfigError(f"copy_to={copy_to!r}: the run's own folder; "
                          "give a second folder (e.g. on Drive)")


def resolve_workers(workers: int | None, device_type: str) -> int:
    """DataLoader workers: `workers` when given; None (auto) is 0 on a CPU, where workers would take
    cores from the training step itself, and on a GPU min(4, this process's share of the CPUs), so
    that decoding and augmentation run beside the GPU (torchrun's LOCAL_WORLD_SIZE processes share
    the machine)."""
    if workers is not None:
        return workers
    if device_type != "cuda":
        return 0
    per_process = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(4, per_process))
