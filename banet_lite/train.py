"""Training: the paper's recipe, checkpoints that resume exactly, and several GPUs.

The recipe (reference implementation): Adam, no weight decay, and a poly schedule

    lr_t = lr * (1 - t / T) ^ 0.9          t = step, T = epochs * steps per epoch

on the joint loss (losses.py). Every epoch ends with a validation pass; `best.pt` keeps the
model with the highest validation Dice, `last.pt` the latest state, `history.csv` one row per
epoch. Validation comes from the training split (a seeded tenth): the test split is never seen
here, so the test figures reported by `evaluate` are honest.

Resuming is exact: shuffling uses a generator seeded by (seed, epoch), augmentation draws from
(seed, epoch, index) (data.py), and the checkpoint holds model, optimizer, scheduler, AMP
scaler, epoch, best score and RNG states. Training 4 epochs equals training 2, stopping and
resuming for 2 more (bit for bit on a CPU; on a GPU cuDNN's autotuned kernels may differ in the
last bits).

Backbone weights: `pretrained="auto"` starts the `paper` preset from torchvision's ImageNet
ResNet-50 (the paper's and the reference's setting) and the other presets from random weights;
"imagenet", a URL or a local `.pth` file ask for weights explicitly (model.py, backbone.py).

On a GPU: channels_last, `cudnn.benchmark`, and mixed precision (`amp_settings`): bfloat16 where
the GPU computes it natively (compute capability 8.0+), float16 with a GradScaler below (a T4).

Several GPUs: run under `torchrun --nproc_per_node N -m banet_lite train ...`. Each process
trains on its shard (DistributedSampler) inside DistributedDataParallel; rank 0 alone
validates, prints and writes files. On CPU the gloo backend does the same (used by the tests).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from . import data as bdata
from .backbone import describe_weights, fetch_imagenet_weights, load_pretrained_backbone
from .config import BANetConfig, get_config
from .losses import JointLoss
from .metrics import batch_dice, probabilities_to_mask
from .model import build_model, check_unet_options, resolve_pretrained
from .utils import default_device, seed_everything


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
    workers: int = 0  # DataLoader worker processes (> 0: the images are decoded once, up front)
    augment: bool = True
    aug_strength: float = 1.0
    val_fraction: float = 0.1
    synthetic_train: int = 96  # the synthetic default: training images (validation: a quarter)
    synthetic_difficulty: float = 0.5
    side_weight: float = 1.0  # lambda_i of the joint loss
    edge_pos_weight: float | None = None
    # backbone init: None (random), "auto" (ImageNet where the preset has it: paper; else None),
    # "imagenet", a URL or a .pth file with torchvision key names. Ignored when resuming.
    pretrained: str | None = None
    resume: str | None = None  # a checkpoint to continue from (last.pt)
    time_budget: float | None = None  # seconds; stops after the epoch in progress
    stop_after: int | None = None  # end this run after N epochs; the schedule still spans `epochs`
    progress: bool = True
    model_overrides: dict = field(default_factory=dict)  # e.g. {"use_pee": False}

    def resolved(self) -> TrainConfig:
        """A copy with the preset's defaults filled in."""
        base = get_config("lite" if self.preset == "unet" else self.preset)
        d = asdict(self)
        for name in ("epochs", "batch_size", "img_size", "lr"):
            if d[name] is None:
                d[name] = getattr(base, name)
        # "auto" -> "imagenet" or None. Options or weights the network cannot take: a ValueError now,
        # before any data is read
        if self.preset == "unet":
            check_unet_options(self.model_overrides)
            d["pretrained"] = resolve_pretrained(self.pretrained, "unet")
        else:
            overrides = {"num_classes": self.num_classes, **self.model_overrides}
            d["pretrained"] = resolve_pretrained(self.pretrained, self.preset, **overrides)
        return TrainConfig(**d)


@dataclass
class FitResult:
    """What `fit` returns. `model` holds the weights after the last epoch, still in train mode;
    the best weights (by validation Dice) are in `best_path` (load with `load_checkpoint`)."""

    model: nn.Module
    history: list[dict]
    best_path: Path
    last_path: Path
    best_score: float
    stopped_early: str | None = None  # why the run ended before its last epoch, if it did


# ------------------------------------------------------------------------- data
def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    """(train, validation) datasets; the whole folder is validated before anything trains."""
    if cfg.data_dir or cfg.dataset:
        root = bdata.resolve_data(cfg.dataset, cfg.data_dir)
        pairs = bdata.find_pairs(root)
        bdata.validate_pairs(pairs, root)
        splits = bdata.split_pairs(pairs, bdata.read_split_csv(root), seed=cfg.seed, val_fraction=cfg.val_fraction)
        train = bdata.FolderDataset(splits["train"], cfg.img_size, augment=cfg.augment, seed=cfg.seed,
                                    aug_strength=cfg.aug_strength)
        val = bdata.FolderDataset(splits["val"], cfg.img_size, augment=False, seed=cfg.seed)
        return train, val
    n_val = max(4, cfg.synthetic_train // 4)
    train = bdata.SyntheticLesions(cfg.synthetic_train, cfg.img_size, seed=cfg.seed,
                                   difficulty=cfg.synthetic_difficulty, augment=cfg.augment)
    val = bdata.SyntheticLesions(n_val, cfg.img_size, seed=cfg.seed + 1_000, difficulty=cfg.synthetic_difficulty)
    return train, val


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) at or above AVX-512 with bfloat16: native bfloat16 kernels stay on
_NATIVE_BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX", "AVX10_1_512_AMX",
                     "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "ALL"}
# presets whose CPU training step measured faster under bfloat16 autocast (benchmarks/RESULTS.md, 2026-12-01)
CPU_BF16_PRESETS = ("lite", "paper")


def cpu_has_native_bf16() -> bool:
    """True where this CPU computes bfloat16 natively (AVX-512 BF16 or AMX) and the environment lets
    torch use it: False when ATEN_CPU_CAPABILITY caps torch's kernels below AVX-512 (`default`, `avx2`)
    or ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA caps oneDNN's below AVX512_CORE_BF16 (how CI emulates an
    older CPU). Elsewhere bfloat16 is emulated in float32 and is slower: never worth it."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        if not str(torch.backends.cpu.get_cpu_capability()).upper().startswith("AVX512"):
            return False  # also what ATEN_CPU_CAPABILITY=default/avx2 reports
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
        if isa and isa.strip().upper() not in _NATIVE_BF16_ISAS:
            return False
        probes = [getattr(torch._C._cpu, name, None) for name in
                  ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        if any(probe is not None and probe() for probe in probes):
            return True
        with open("/proc/cpuinfo") as f:  # older torch without the probes (Linux)
            flags = set(f.read().split())
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    except Exception:  # unknown platform: the safe answer
        return False


def amp_settings(device_type: str, enabled: bool = True, capability: tuple[int, int] | None = None,
                 preset: str | None = None,
                 cpu_native_bf16: bool | None = None) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for full precision, whether to use a GradScaler).

    CUDA: bfloat16 only where the GPU computes it natively, compute capability 8.0 and up (A100, L4,
    H100, RTX 30xx+). Below (T4 7.5, V100 7.0, P100 6.0) `torch.cuda.is_bf16_supported()` can still be
    true through emulation, which is slow, so those get float16 with loss scaling (a GradScaler), which
    their tensor cores run natively.

    CPU: bfloat16 autocast only where both hold: the CPU computes bfloat16 natively
    (`cpu_has_native_bf16()`, or `cpu_native_bf16` when given) and the preset is one whose step
    measured faster that way (`CPU_BF16_PRESETS`: lite about 1.8x, paper about 2x on an AVX-512 BF16
    CPU). The `tiny` preset (16-32 channels) trains faster in float32 even there (the casts cost more
    than its small convolutions save), so it, like every CPU without native bfloat16 (AVX2, or an
    environment capping the ISA), trains in float32. No GradScaler: bfloat16 has float32's range.
    """
    if not enabled:
        return None, False
    if device_type == "cpu":
        native = cpu_has_native_bf16() if cpu_native_bf16 is None else cpu_native_bf16
        return (torch.bfloat16 if native and preset in CPU_BF16_PRESETS else None), False
    if device_type != "cuda":
        return None, False
    if capability is not None and tuple(capability) >= (8, 0):
        return torch.bfloat16, False
    return torch.float16, True


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return default_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    return torch.device(device)


# ------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write never leaves a broken checkpoint behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with open(tmp, "wb") as f:
        f.write(buffer.getbuffer())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """torch.load with weights_only=True (no code runs from the file), with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable banet-lite checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a banet-lite checkpoint (no 'model'/'config' entries)")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network a checkpoint was trained with and load its weights."""
    cfg = ckpt["config"]
    if cfg.get("preset") == "unet":
        model = build_model("unet", **{k: v for k, v in cfg.items() if k != "preset"})
    else:
        model = build_model(BANetConfig.from_dict(cfg))
    model.load_state_dict(ckpt["model"])
    return model


def model_config_dict(model: nn.Module, preset: str) -> dict:
    if hasattr(model, "config"):
        return model.config.to_dict()
    return {"preset": preset, **model.hparams}  # the U-Net baseline


# ------------------------------------------------------------------ distributed
def distributed_setup(device: torch.device) -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


# ------------------------------------------------------------------------- fit
def fit(cfg: TrainConfig) -> FitResult:
    cfg = cfg.resolved()
    device = resolve_device(cfg.device)
    rank, world = distributed_setup(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    main = rank == 0
    out = Path(cfg.out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    if world > 1 and cfg.dataset:  # rank 0 downloads; the others wait, then find it in place
        if main:
            bdata.resolve_data(cfg.dataset, cfg.data_dir)
        dist.barrier()

    train_set, val_set = build_datasets(cfg)
    sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=cfg.seed) if world > 1 else None
    model = build_model(cfg.preset, num_classes=cfg.num_classes, **cfg.model_overrides)
    if cfg.pretrained and not cfg.resume:  # a resumed run takes every weight from its checkpoint
        depth = model.backbone.depth
        if world > 1 and cfg.pretrained == "imagenet":  # rank 0 downloads; the others find it cached
            if main:
                fetch_imagenet_weights(depth)
            dist.barrier()
        unused = load_pretrained_backbone(model, cfg.pretrained)
        if main:
            n = len(model.backbone.state_dict())
            print(f"backbone: loaded {n} tensors from {describe_weights(cfg.pretrained, depth)}"
                  + (f" (unused: {', '.join(unused)})" if unused else ""))
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)

    per_rank = math.ceil(len(train_set) / world)  # DistributedSampler pads to equal shards
    drop_last = per_rank > cfg.batch_size  # no lone 1-image batch for BatchNorm
    steps_per_epoch = per_rank // cfg.batch_size if drop_last else math.ceil(per_rank / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(  # poly: (1 - t/T)^0.9
        optimizer, lambda t: max(0.0, 1 - t / total_steps) ** cfg.poly_power)
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    amp_dtype, use_scaler = amp_settings(device.type, cfg.amp, capability, preset=cfg.preset)
    use_amp = amp_dtype is not None
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
        if main:
            precision = f"{str(amp_dtype).removeprefix('torch.')} autocast" if use_amp else "float32"
            print(f"device: {torch.cuda.get_device_name(device)} (compute capability "
                  f"{capability[0]}.{capability[1]}), {precision}{' with a GradScaler' if use_scaler else ''}")
    elif use_amp and main and cfg.progress:  # CPU with native bfloat16 (amp_settings)
        print("device: CPU with native bfloat16, bfloat16 autocast (amp=False for float32)")
    loss_fn = JointLoss(side_weights=cfg.side_weight, edge_pos_weight=cfg.edge_pos_weight)

    start_epoch, best_score, history = 0, -1.0, []
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt["scaler"] and use_scaler:  # empty when saved without float16 (CPU, bfloat16)
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, best_score, history = ckpt["epoch"], ckpt["best_score"], list(ckpt["history"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if "cuda" in ckpt["rng"] and device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), device)
        if main:
            print(f"resumed from {cfg.resume} at epoch {start_epoch} (best val Dice {best_score:.4f})")

    train_model = model
    if cfg.compile:
        train_model = torch.compile(model)
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None)

    def checkpoint_state(epoch: int) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                "best_score": best_score, "config": model_config_dict(model, cfg.preset),
                "train_config": asdict(cfg), "img_size": cfg.img_size, "history": history, "rng": rng}

    if cfg.workers > 0 and hasattr(train_set, "preload"):
        # Each epoch's DataLoader starts fresh worker processes, and a cache filled inside a worker dies
        # with it: decode everything once here (in parallel), so that every worker starts with it.
        train_set.preload(progress=main and cfg.progress, workers=cfg.workers)

    best_path, last_path = out / "best.pt", out / "last.pt"
    started, stopped_early = time.perf_counter(), None
    for epoch in range(start_epoch, cfg.epochs):
        epoch_start = time.perf_counter()
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)  # augmentation draws from (seed, epoch, index)
        if sampler is not None:
            sampler.set_epoch(epoch)
        loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, shuffle=sampler is None,
                            generator=torch.Generator().manual_seed(cfg.seed * 1_000 + epoch),
                            num_workers=cfg.workers, drop_last=drop_last,
                            pin_memory=device.type == "cuda", persistent_workers=False)
        train_model.train()
        sums, n_seen = {}, 0
        bar = _progress(loader, main and cfg.progress, f"epoch {epoch + 1}/{cfg.epochs}")
        for images, masks in bar:
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            masks = masks.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):  # float32 when amp_dtype is None
                out_ = train_model(images)
                total, parts = loss_fn(out_, masks)
            if not torch.isfinite(total):
                raise FloatingPointError(
                    f"non-finite loss at epoch {epoch + 1} ({ {k: round(v.item(), 4) for k, v in parts.items()} }); "
                    f"stopped. The last good checkpoint is {last_path if last_path.exists() else 'not written yet'}; "
                    f"try a lower --lr")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            b = images.shape[0]
            n_seen += b
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v.item() * b
            sums["dice"] = sums.get("dice", 0.0) + batch_dice(out_.logits.detach().float(), masks) * b
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{sums['total'] / n_seen:.3f}", dice=f"{sums['dice'] / n_seen:.3f}")

        train_seconds = time.perf_counter() - epoch_start  # every step ends in .item(): the GPU is done

        # ---- validation (rank 0), then every rank learns the score
        val = evaluate_loss(model, val_set, loss_fn, device, cfg.batch_size, memory_format, amp_dtype) if main else {}
        row = {"epoch": epoch + 1, "train_loss": sums["total"] / n_seen, "train_dice": sums["dice"] / n_seen,
               **{f"train_{k}": v / n_seen for k, v in sums.items() if k not in ("total", "dice")},
               **{f"val_{k}": v for k, v in val.items()},
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - epoch_start,
               "train_images_per_s": n_seen * world / train_seconds}  # all ranks; data loading included
        history.append(row)
        score = _broadcast(val.get("dice", 0.0), device, world)
        if main:
            if score > best_score:
                best_score = score
                save_checkpoint(best_path, checkpoint_state(epoch + 1))
            save_checkpoint(last_path, checkpoint_state(epoch + 1))
            write_csv(out / "history.csv", history)
            if cfg.progress:
                print(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f}  val loss {val['loss']:.4f}  "
                      f"val Dice {val['dice']:.4f}  ({row['seconds']:.1f}s)")
        elapsed = time.perf_counter() - started
        if cfg.stop_after is not None and epoch + 1 - start_epoch >= cfg.stop_after and epoch + 1 < cfg.epochs:
            stopped_early = f"stopped after {cfg.stop_after} epoch(s) as asked; resume from {last_path}"
            break
        if cfg.time_budget is not None and epoch + 1 < cfg.epochs and elapsed + row["seconds"] > cfg.time_budget:
            stopped_early = f"time budget of {cfg.time_budget:.0f}s reached after epoch {epoch + 1}"
            if main and cfg.progress:
                print(stopped_early)
            break
    if world > 1:
        dist.barrier()
    return FitResult(model, history, best_path, last_path, best_score, stopped_early)


@torch.no_grad()
def evaluate_loss(model: nn.Module, dataset: Dataset, loss_fn: JointLoss, device: torch.device,
                  batch_size: int, memory_format=torch.contiguous_format,
                  amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Mean loss, Dice and Jaccard over a dataset at the model's input size (under autocast to
    `amp_dtype` when given, as in training)."""
    was_training = model.training
    model.eval()
    loss_sum, dice_sum, jac_sum, n = 0.0, 0.0, 0.0, 0
    for images, masks in DataLoader(dataset, batch_size=batch_size):
        images = images.to(device, memory_format=memory_format)
        masks = masks.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(images)
            total, _ = loss_fn(out, masks)
        pred = probabilities_to_mask(out.logits.float())  # (B, H, W) bool
        target = masks[:, 0] > 0.5
        inter = (pred & target).sum((1, 2)).float()
        p, t = pred.sum((1, 2)).float(), target.sum((1, 2)).float()
        empty = p == 0  # the paper's rule: an empty prediction scores 0
        dice = torch.where(empty, torch.zeros_like(p), 2 * inter / (p + t).clamp(min=1))
        jac = torch.where(empty, torch.zeros_like(p), inter / (p + t - inter).clamp(min=1))
        loss_sum += total.item() * images.shape[0]
        dice_sum += dice.sum().item()
        jac_sum += jac.sum().item()
        n += images.shape[0]
    model.train(was_training)
    return {"loss": loss_sum / n, "dice": dice_sum / n, "jaccard": jac_sum / n}


def write_csv(path: Path, history: list[dict]) -> None:
    """Rows of a table (history.csv: one per epoch; per_image.csv: one per image), written atomically."""
    columns = list(dict.fromkeys(k for row in history for k in row))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp, path)


def read_history(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: float(v) if k != "epoch" else int(v) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]


def _progress(loader, enabled: bool, desc: str):
    if not enabled:
        return loader
    from tqdm.auto import tqdm

    # iter() here, once: a tqdm that iterated the loader itself would draw a second shuffle from the
    # seeded generator, and a run with a progress bar would then differ from one without.
    return tqdm(iter(loader), total=len(loader), desc=desc, leave=False, dynamic_ncols=True)


def _broadcast(value: float, device: torch.device, world: int) -> float:
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.item()

