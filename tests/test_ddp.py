"""DistributedDataParallel on two CPU processes (gloo) equals one process on the same global batch.

Two ranks each take half of a fixed global batch of 4 images; DDP averages their gradients. One process
takes all 4. Both start from the same weights and take two SGD steps on the joint loss; the weights
must agree to float rounding.

BatchNorm: in training mode each rank would normalise with the statistics of its own 2 images, the
single process with those of all 4, so the two runs would differ by design (SyncBatchNorm would fix
that, but it needs CUDA). The model is therefore put in eval mode: BN uses its running statistics,
gradients still flow through every layer, and each loss term is a per-image mean over equal-sized
images, so the mean over the global batch is exactly the average of the two ranks' means. SGD rather
than Adam: Adam divides by sqrt(v), which turns float-rounding differences of near-zero gradients into
full-size steps; SGD keeps the comparison linear.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import torch

import banet_lite as bl

WORKER = textwrap.dedent('''
    import os, sys
    import torch
    import torch.distributed as dist
    from torch import nn
    sys.path.insert(0, os.environ["TEST_DIR"])
    from test_ddp import global_batch, make_model, steps

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    images, masks = global_batch()
    per_rank = images.shape[0] // world
    shard = slice(rank * per_rank, (rank + 1) * per_rank)
    model = nn.parallel.DistributedDataParallel(make_model())
    steps(model, images[shard], masks[shard])
    torch.save(model.module.state_dict(), os.path.join(os.environ["OUT_DIR"], f"rank{rank}.pt"))
    dist.destroy_process_group()
''')


def global_batch():
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 32, 32, generator=gen)
    masks = torch.zeros(4, 1, 32, 32)
    for i in range(4):
        masks[i, :, 4 + i : 20 + i, 6 : 22 - i] = 1
    return images, masks


def make_model():
    torch.manual_seed(0)
    return bl.build_model("tiny").eval()  # BN on running statistics: see the module docstring


def steps(model, images, masks, n=2):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = bl.JointLoss()
    for _ in range(n):
        total, _ = loss_fn(model(images), masks)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()


def torchrun(worker: str, tmp_path, timeout: float) -> None:
    """Run `worker` (Python source) as 2 processes under torch.distributed.run on a free local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TEST_DIR": os.path.dirname(__file__), "OUT_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_ddp_two_processes_equal_one_process_on_the_global_batch(tmp_path):
    torchrun(WORKER, tmp_path, timeout=240)

    single = make_model()
    steps(single, *global_batch())
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    initial, moved = make_model().state_dict(), 0
    for name, value in single.state_dict().items():
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=name)  # DDP keeps ranks equal
        torch.testing.assert_close(rank0[name], value, rtol=1e-4, atol=1e-6, msg=name)
        moved += int(not torch.equal(value, initial[name]))
    assert moved > 10  # the steps did change the weights


FIT_WORKER = textwrap.dedent('''
    import json, os, sys
    import banet_lite as bl
    from banet_lite.training.train import TrainConfig, fit

    rank = int(os.environ["RANK"])
    # The ranks' clocks disagree: rank 0's budget is spent after the first epoch, rank 1's never is.
    # Deciding alone, rank 1 would start epoch 2 and wait forever for rank 0 in DDP's first all-reduce.
    budget = 1e-6 if rank == 0 else 1e9
    # No IA and no deep supervision: the edge branch takes no part in the loss (DDP must be told).
    cfg = TrainConfig(preset="tiny", epochs=3, batch_size=4, img_size=32, synthetic_train=16, seed=3,
                      out=os.environ["OUT_DIR"] + "/run", progress=False, time_budget=budget,
                      model_overrides={"use_ia": False, "deep_supervision": False})
    result = fit(cfg)
    with open(os.path.join(os.environ["OUT_DIR"], f"fit{rank}.json"), "w") as f:
        json.dump({"epochs": len(result.history), "stopped": result.stopped_early,
                   "lr": result.history[-1]["lr"] if rank == 0 else None}, f)
''')


def test_ddp_fit_stops_on_rank_0s_clock_and_trains_an_ablation_with_unused_modules(tmp_path):
    torchrun(FIT_WORKER, tmp_path, timeout=300)
    ranks = [json.loads((tmp_path / f"fit{r}.json").read_text()) for r in (0, 1)]
    assert [r["epochs"] for r in ranks] == [1, 1]  # both left after rank 0's first epoch
    assert "budget" in ranks[0]["stopped"] and ranks[1]["stopped"] == "stopped with rank 0"
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
