"""Several processes, one run: the few lines DistributedDataParallel needs around `fit`.

Launched by `torchrun --nproc_per_node N -m banet_lite train ...`, each process reads its rank from the
environment; rank 0 alone validates, prints and writes files, and shares the validation score and its
decision to stop, so that every rank leaves the loop after the same epoch (a rank that decided alone,
say on its own clock for a time budget, would wait forever in the next collective). On CPU the gloo
backend does the same (used by the tests).

Global batch and learning rate: each rank takes `batch_size` images per step, so a step sees
`batch_size x N` images and an epoch has 1/N of the steps; the learning rate is not scaled. To train
as one GPU would with batch B, pass `--batch-size B/N`, or raise `--lr` with the global batch if you
keep the per-rank one.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

# Rank 0 may download a dataset (ISIC 2018: about 10 GB) while the others wait at a barrier: far longer
# than the collectives' default timeout (10 minutes for NCCL).
GROUP_TIMEOUT = datetime.timedelta(hours=3)


def distributed_setup(device: torch.device) -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun. On CUDA each process
    first takes its own GPU (LOCAL_RANK), so that NCCL never puts two ranks on one device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=GROUP_TIMEOUT)
    return dist.get_rank(), world


def distributed_teardown(world: int) -> None:
    """The end of a run: every rank leaves together, and the process group is closed."""
    if world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


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
