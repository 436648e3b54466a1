"""Several processes, one run: the few lines DistributedDataParallel needs around `fit`.

Launched by `torchrun --nproc_per_node N -m banet_lite train ...`, each process reads its rank from the
environment; rank 0 alone validates, prints and writes files, and shares the validation score so every
rank agrees on when to stop. On CPU the gloo backend does the same (used by the tests).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def distributed_setup(device: torch.device) -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


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
