"""Several processes, one run: the few lines DistributedDataParallel needs around `fit`.

Launched by `torchrun --nproc_per_node N -m banet_lite train ...`, each process reads its rank from
the environment; rank 0 alone validates, prints and writes files, and shares the validation score
and its decision to stop, so that every rank leaves the loop after the same epoch (a rank that
decided alone, say on its own clock for a time budget, would wait forever in the next collective).
On CPU the gloo backend does the same (used by the tests).

Global batch and learning rate: `batch_size` is per process. Each rank takes `batch_size` images per
step, so a step sees `batch_size x N` images and an epoch has 1/N of the steps; the learning rate is
not scaled. To train as one GPU would with batch B, pass `--batch-size B/N`, or raise `--lr` with
the global batch if you keep the per-rank one.

The group's timeout (`ddp_timeout_min`, 30 minutes by default) is how long a collective waits for a
rank that does not come: how long a real hang takes to show. Rank 0 may download a dataset while the
others wait at a barrier (Kvasir-SEG: 46 MB; ISIC 2018: about 10 GB); raise it for a large download
on a slow link, or download first (`python -m banet_lite download NAME`).

The network a rank trains (`training_module`): SyncBatchNorm conversion, then the DDP wrapper, then
torch.compile, the order PyTorch documents: SyncBatchNorm's docstring converts the BatchNorm layers
"before wrapping Network with DDP"; the DDP notes ("TorchDynamo DDPOptimizer") apply the DDP wrapper
before compiling, so that Dynamo splits the compiled graph at DDP's gradient buckets and the
all-reduces overlap the backward pass.
"""

from __future__ import annotations

import contextlib
import datetime
import os

import torch
import torch.distributed as dist
from torch import nn

GROUP_TIMEOUT_MIN = 30.0  # TrainConfig.ddp_timeout_min's default


def distributed_setup(device: torch.device,
                      timeout_min: float = GROUP_TIMEOUT_MIN) -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun. On CUDA each
    process first takes its own GPU (LOCAL_RANK), so that NCCL never puts two ranks on one
    device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=timeout_min))
    return dist.get_rank(), world


def distributed_teardown(clean: bool = True) -> None:
    """The end of a run: the process group is closed. After a clean run every rank leaves together
    (a barrier); after an error no barrier, which would wait for ranks that may never come."""
    if dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def closing_process_group():
    """`fit`'s frame: whatever the run's end (done, an error, Ctrl-C), the process group is
    destroyed."""
    try:
        yield
    except BaseException:
        distributed_teardown(clean=False)
        raise
    distributed_teardown(clean=True)


def training_module(model: nn.Module, device: torch.device, world: int, sync_bn: bool = False,
                    compile: bool = False, find_unused_parameters: bool = False) -> nn.Module:
    """The module a rank runs forward and backward through: `model` (whose weights checkpoints
    hold), converted to SyncBatchNorm (several processes, `sync_bn`), wrapped in DDP
    (several processes), compiled (`compile`), in this order. SyncBatchNorm replaces `model`'s
    BatchNorm layers in place (same state keys)."""
    module = model
    if world > 1:
        if sync_bn:  # BatchNorm statistics over the global batch, not each rank's few images
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        module = nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters)
    return torch.compile(module) if compile else module


def broadcast(value: float, device: torch.device, world: int) -> float:
    """Rank 0's `value` on every rank."""
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.item()


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
