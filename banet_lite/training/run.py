"""A training run's set-up: devices and processes, data, the model (and its backbone weights),
the optimizer, the schedule and the precision, the resumed state; all of it held in one `Run`, which
train.py's epochs advance.

    setup(cfg) -> Run     cfg: a resolved TrainConfig (TrainConfig.resolved(): the preset's defaults
                          in place)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from .. import data as bdata
from ..model.backbone import describe_weights, fetch_imagenet_weights, load_pretrained_backbone
from ..model.losses import JointLoss, joint_loss_for
from ..model.registry import build_model
from ..utils import resolve_device, seed_everything
from .checkpoint import resume
from .config import TrainConfig, resolve_workers
from .distributed import barrier, distributed_setup, training_module
from .optimizer import adam
from .precision import SkippedSteps, amp_settings
from .schedule import PolySchedule, steps_per_epoch

CPU_FAST_PATH_PRESETS = ("paper",)  # use_cpu_fast_path: where it measured faster
# the fast path needs torch 2.4+: fused Adam on CPU and torch.get_autocast_dtype arrived
# together there
TORCH_HAS_CPU_FAST_PATH = hasattr(torch, "get_autocast_dtype")


# ------------------------------------------------------------------------- data
def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    """(train, validation) datasets; the whole folder is checked (data/checks.py) before anything
    trains."""
    if cfg.data_dir or cfg.dataset:
        splits = bdata.load_splits(bdata.resolve_data(cfg.dataset, cfg.data_dir), cfg.seed,
                                   cfg.val_fraction, foreground=cfg.foreground)
        train = bdata.FolderDataset(splits["train"], cfg.img_size, augment=cfg.augment,
                                    seed=cfg.seed, aug_strength=cfg.aug_strength,
                                    foreground=cfg.foreground)
        val = bdata.FolderDataset(splits["val"], cfg.img_size, augment=False, seed=cfg.seed,
                                  foreground=cfg.foreground)
        return train, val
    n_val = max(4, cfg.synthetic_train // 4)
    train = bdata.SyntheticLesions(cfg.synthetic_train, cfg.img_size, seed=cfg.seed,
                                   difficulty=cfg.synthetic_difficulty, augment=cfg.augment)
    val = bdata.SyntheticLesions(n_val, cfg.img_size, seed=cfg.seed + 1_000,
                                 difficulty=cfg.synthetic_difficulty)
    return train, val


@dataclass
class Run:
    """Everything one training run holds, built by `setup` and advanced epoch by epoch."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    out: Path
    model: nn.Module  # the plain network (what checkpoints hold)
    train_model: nn.Module  # the same, compiled and/or wrapped in DDP for the forward pass
    train_set: Dataset
    val_set: Dataset
    sampler: DistributedSampler | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: JointLoss
    amp_dtype: torch.dtype | None
    memory_format: torch.memory_format
    drop_last: bool
    start_epoch: int = 0
    best_score: float = -1.0
    history: list | None = None
    skips: SkippedSteps | None = None  # float16 with a GradScaler: the steps it skipped

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def best_path(self) -> Path:
        return self.out / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    @property
    def schedule(self) -> PolySchedule:
        """The learning-rate schedule and its plan (schedule.py); its state is the scheduler's."""
        return self.scheduler.lr_lambdas[0]


def _load_backbone_weights(model: nn.Module, cfg: TrainConfig, main: bool, world: int) -> None:
    depth = model.backbone.depth
    if world > 1 and cfg.pretrained == "imagenet":  # rank 0 downloads; the others find it cached
        if main:
            fetch_imagenet_weights(depth)
        barrier(world)
    unused = load_pretrained_backbone(model, cfg.pretrained)
    if main:
        n = len(model.backbone.state_dict())
        print(f"backbone: loaded {n} tensors from {describe_weights(cfg.pretrained, depth)}"
              + (f" (unused: {', '.join(unused)})" if unused else ""))


def setup(cfg: TrainConfig) -> Run:
    """Devices, processes, data, model, optimizer, schedule and precision; the resumed state if
    asked."""
    device = resolve_device(cfg.device)
    cfg = replace(cfg, workers=resolve_workers(cfg.workers, device.type))  # None (auto) -> a number
    rank, world = distributed_setup(device, cfg.ddp_timeout_min)
    if device.type == "cuda" and world > 1:
        # set by distributed_setup
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    main, out = rank == 0, Path(cfg.out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    if world > 1 and cfg.dataset:  # rank 0 downloads; the others wait, then find it in place
        if main:
            bdata.resolve_data(cfg.dataset, cfg.data_dir)
        barrier(world)

    train_set, val_set = build_datasets(cfg)
    sampler = (DistributedSampler(train_set, world, rank, shuffle=True, seed=cfg.seed) if world > 1
               else None)
    model = build_model(cfg.network())
    if cfg.pretrained and not cfg.resume:  # a resumed run takes every weight from its checkpoint
        _load_backbone_weights(model, cfg, main, world)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)

    steps, drop_last = steps_per_epoch(len(train_set), cfg.batch_size, world)
    # fused on CUDA: no host read per step (optimizer.py)
    optimizer = adam(model.parameters(), cfg.lr, cfg.weight_decay, device.type,
                     use_cpu_fast_path(device.type, cfg))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  PolySchedule(steps, cfg.epochs, cfg.poly_power))
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    amp_dtype, use_scaler = amp_settings(device.type, cfg.amp, capability, preset=cfg.preset)
    use_amp = amp_dtype is not None
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    if device.type == "cuda":
        # fixed input size: let cuDNN pick the fastest kernels
        torch.backends.cudnn.benchmark = True
        if main:
            precision = (f"{str(amp_dtype).removeprefix('torch.')} autocast" if use_amp
                         else "float32")
            print(f"device: {torch.cuda.get_device_name(device)} (compute capability "
                  f"{capability[0]}.{capability[1]}), "
                  f"{precision}{' with a GradScaler' if use_scaler else ''}")
    elif use_amp and main and cfg.progress:  # CPU with native bfloat16 (amp_settings)
        print("device: CPU with native bfloat16, bfloat16 autocast (amp=False for float32)")
    loss_fn = joint_loss_for(model, side_weights=cfg.side_weight,
                             boundary_pos_weight=cfg.boundary_pos_weight,
                             boundary_weight=cfg.boundary_weight)

    run = Run(cfg, device, rank, world, out, model, model, train_set, val_set, sampler, optimizer,
              scheduler, scaler, loss_fn, amp_dtype, memory_format, drop_last, history=[],
              skips=SkippedSteps(device) if use_scaler else None)
    if cfg.resume:
        resume(run, cfg.resume)
    # SyncBatchNorm, DDP, then torch.compile (distributed.py). An ablation can leave modules out
    # of the forward pass (no IA and no deep supervision: the boundary branch); DDP must then look
    # for parameters without gradients, which costs a pass per step.
    run.train_model = training_module(
        model, device, world, cfg.sync_bn, cfg.compile,
        find_unused_parameters=any(v is False for v in cfg.model_overrides.values()))
    if cfg.workers > 0 and hasattr(train_set, "preload"):
        # Each epoch's DataLoader starts fresh worker processes, and a cache filled inside a worker
        # dies with it: decode everything once here (in parallel), so that every worker starts with
        # it.
        train_set.preload(progress=main and cfg.progress, workers=cfg.workers)
    return run


def use_cpu_fast_path(device_type: str, cfg: TrainConfig) -> bool:
    """Whether this run takes the CPU fast path: wide convolutions' weight gradients as matrix
    products (weight_grad.py) and Adam's fused kernel, the same functions summed in another order
    (float rounding, as between two CPUs; tests/test_weight_grad.py). Only on a CPU, only for
    `paper`, the one preset where it measured faster (`lite` within noise; `tiny` has no wide
    convolution: both keep their numerics bit for bit), not under torch.compile (it traces the plain
    convolution), and not on torch < 2.4 (no fused CPU Adam)."""
    return (cfg.cpu_fast_path and device_type == "cpu" and cfg.preset in CPU_FAST_PATH_PRESETS
            and not cfg.compile and TORCH_HAS_CPU_FAST_PATH)
