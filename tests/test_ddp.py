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
import torch.nn.functional as F

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
    # No IA and no deep supervision: the boundary branch takes no part in the loss (DDP must be told).
    cfg = TrainConfig(preset="tiny", epochs=3, batch_size=4, img_size=32, synthetic_train=16, seed=3,
                      out=os.environ["OUT_DIR"] + "/run", progress=False, time_budget=budget, checkpoint_every=5,
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
    assert (tmp_path / "run" / "best.pt").is_file()
    assert bl.checkpoint.load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1  # due every 5, written at the stop


# --------------------------------------------------------------------- fit on 2 processes against 1
def batchnorm_on_running_statistics(self, x):
    """BatchNorm's forward as in eval mode: each image normalised by the running statistics, not by its
    rank's batch (SyncBatchNorm, which would share them, needs CUDA). See the test's docstring."""
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def fit_config(out, **kw):
    """4 synthetic images of 32 px, 2 epochs of one step each: all 4 images in the step, on either side."""
    from train_configs import tiny_run

    return tiny_run(**{"out": out, "epochs": 2, "synthetic_train": 4, **kw})


FIT_PAIR_WORKER = textwrap.dedent('''
    import os, sys
    import torch
    sys.path.insert(0, os.environ["TEST_DIR"])
    from test_ddp import fit_config
    from torch.nn.modules.batchnorm import _BatchNorm
    from banet_lite.training.train import fit
    from test_ddp import batchnorm_on_running_statistics

    out, rank = os.environ["OUT_DIR"], int(os.environ["RANK"])
    _BatchNorm.forward = batchnorm_on_running_statistics
    # Half of the global batch of 4 on each rank (the global batch of the 1-process run).
    result = fit(fit_config(out + "/ddp", batch_size=2))
    torch.save({"model": result.model.state_dict(), "lr": result.history[-1]["lr"], "epochs": len(result.history)},
               f"{out}/fit_rank{rank}.pt")
''')


def test_fit_on_two_processes_equals_fit_on_one(tmp_path, monkeypatch):
    """`fit` under torchrun with 2 gloo processes, batch 2 each, equals `fit` in one process with batch 4:
    the same 2 steps (one per epoch over 4 images), the same final learning rate, the same weights.

    Equivalence needs the same BatchNorm statistics on both sides: per-rank BN normalises each rank's 2
    images by their own mean and variance, the single process all 4 by theirs (measured: the weights then
    differ by more than the 2 steps moved them), and SyncBatchNorm, which would share them, runs on CUDA
    only. Both runs therefore normalise by BN's running statistics (`batchnorm_on_running_statistics`),
    which makes every loss term a per-image mean over equal-sized images: the global batch's mean is then
    exactly the average of the ranks' means, and DDP's gradient average is the one process's gradient.
    Measured difference: 4e-7 at most (float rounding, amplified by Adam's first steps, which divide by
    |g|); tolerance 1e-5. (A time budget ending a 2-process run mid-way: the test above.)"""
    from torch.nn.modules.batchnorm import _BatchNorm

    from banet_lite.training.checkpoint import load_checkpoint
    from banet_lite.training.train import fit, setup

    torchrun(FIT_PAIR_WORKER, tmp_path, timeout=300)
    monkeypatch.setattr(_BatchNorm, "forward", batchnorm_on_running_statistics)
    single = fit(fit_config(tmp_path / "single"))
    initial = dict(setup(fit_config(tmp_path / "initial").resolved()).model.named_parameters())  # fit's start
    rank0, rank1 = (torch.load(tmp_path / f"fit_rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["epochs"] == rank1["epochs"] == len(single.history) == 2
    assert rank0["lr"] == single.history[-1]["lr"] == 0.0  # the poly schedule ran its 2 steps on both sides
    steps_taken = [load_checkpoint(tmp_path / run / "last.pt")["scheduler"]["last_epoch"] for run in ("ddp", "single")]
    assert steps_taken == [2, 2]
    moved = 0
    for name, value in single.model.named_parameters():
        torch.testing.assert_close(rank0["model"][name], rank1["model"][name], rtol=0, atol=0, msg=name)
        torch.testing.assert_close(rank0["model"][name], value.detach(), rtol=0, atol=1e-5, msg=name)
        moved += int((value - initial[name]).abs().max() > 1e-3)
    assert moved > 10  # the 2 steps did move the weights, far beyond the tolerance


# --------------------------------------------------------------------- the process group, and the wrapping order
def one_rank_group(store):
    """A gloo process group of one rank in this process (DDP and SyncBatchNorm need a group to exist);
    `store`: a new file's path."""
    import datetime

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=60))


def test_the_process_group_is_destroyed_however_the_run_ends(tmp_path):
    """fit's frame (distributed.closing_process_group): destroyed after an error (no barrier, which would wait
    for ranks that may never come) and after a clean run; the group timeout is a setting, in minutes."""
    import pytest
    import torch.distributed as dist

    from banet_lite.training import distributed
    from banet_lite.training.train import TrainConfig

    one_rank_group(tmp_path / "store1")
    with pytest.raises(FloatingPointError):
        with distributed.closing_process_group():
            raise FloatingPointError("a rank's loss went non-finite")
    assert not dist.is_initialized()
    one_rank_group(tmp_path / "store2")
    with distributed.closing_process_group():
        pass
    assert not dist.is_initialized()
    assert TrainConfig().ddp_timeout_min == distributed.GROUP_TIMEOUT_MIN == 30


def test_syncbn_then_ddp_then_compile_and_the_steps_train(tmp_path, monkeypatch):
    """training_module: SyncBatchNorm conversion, the DDP wrapper, then torch.compile (the order PyTorch
    documents), on a one-rank gloo group. DDP refuses SyncBatchNorm layers on a CPU ("only work with GPU
    modules"), so the conversion is watched (a spy that records what it converts and returns it as is);
    DDP and torch.compile run for real, compile on Dynamo's eager backend (no C++ toolchain needed), which
    traces the DDP-wrapped module as inductor would. Three steps train through it, and the plain model
    (what checkpoints hold) keeps its own state keys."""
    import functools

    import torch.distributed as dist
    from torch import nn
    from torch._dynamo.utils import counters

    from banet_lite.training.distributed import training_module

    calls = []
    real_compile, real_ddp = torch.compile, nn.parallel.DistributedDataParallel
    monkeypatch.setattr(nn.SyncBatchNorm, "convert_sync_batchnorm",
                        classmethod(lambda cls, module, process_group=None: calls.append(("syncbn", module)) or module))
    monkeypatch.setattr(nn.parallel, "DistributedDataParallel",
                        lambda module, **kw: calls.append(("ddp", module)) or real_ddp(module, **kw))
    monkeypatch.setattr(torch, "compile", lambda module: calls.append(("compile", module)) or functools.partial(
        real_compile, backend="eager")(module))
    torch._dynamo.reset()
    counters.clear()
    one_rank_group(tmp_path / "store")
    try:
        torch.manual_seed(0)
        model = bl.build_model("tiny")
        keys = list(model.state_dict())
        module = training_module(model, torch.device("cpu"), world=2, sync_bn=True, compile=True)
        assert [what for what, _ in calls] == ["syncbn", "ddp", "compile"]
        assert calls[0][1] is model and calls[1][1] is model  # SyncBN on the plain model, DDP around it ...
        assert isinstance(calls[2][1], real_ddp) and module._orig_mod is calls[2][1]  # ... compiled last
        assert list(model.state_dict()) == keys
        images, masks = global_batch()
        before = [p.detach().clone() for p in model.parameters()]
        optimizer, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-3), bl.JointLoss()
        for _ in range(3):
            total, _ = loss_fn(module(images), masks)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
        assert torch.isfinite(total) and sum(not torch.equal(a, p) for a, p in zip(before, model.parameters())) > 10
        assert counters["stats"]["unique_graphs"] >= 1  # Dynamo did trace the network (no silent fallback)
    finally:
        dist.destroy_process_group()
        torch._dynamo.reset()
