"""The resume check a GPU cannot trip with its own noise, shared by the CPU tests and the CUDA one.

On a CPU a resumed run equals the straight one bit for bit (tests/test_train.py). On a GPU it cannot:
bilinear upsampling's backward sums with atomics in no fixed order, cuDNN's autotuned kernels differ
run to run, and `torch.use_deterministic_algorithms(True)` refuses the upsampling backward (and
NLLLoss) on CUDA rather than fix it. So the check compares two things apart:

1. What a GPU keeps exact, compared exactly: the epochs and the learning rate of every epoch, the
   scheduler's step count and plan, Adam's step counts, the GradScaler's state, the RNG states, the
   data order (the training indices drawn, epoch by epoch). Noise cannot touch these; a resume that
   restores the wrong epoch, schedule, scaler or shuffle fails here.
2. The weights, within a tolerance. The straight run writes a snapshot of its state after `after`
   epochs (its last.pt, copied), and the resumed run continues from that very snapshot: both start the
   remaining epochs from the same bytes, so the only noise between them is that of those epochs' own
   steps, not the earlier epochs' (which Adam's first, sign-like steps amplify without bound). The
   measure: the weights' distance between the two runs over the distance the straight run moved
   after the snapshot, ||w_resumed - w_straight|| / ||w_straight - w_snapshot||, for the parameters
   and for the BatchNorm statistics.

Measured on the CPU (tiny, float32, 2 epochs, the resume after the first), with noise injected into the
gradient leaving every upsampling and into every parameter's gradient (a relative Gaussian, independent
in the two runs), the parameters' drift:

    16 images of 64 px (the CUDA test's run)   1e-6: 0.0026-0.0039   1e-5: 0.0079   1e-3: 0.0085-0.010
    12 images of 48 px (the CPU test's run)    1e-5: 0.0026          1e-3: 0.014
    a resume that loses Adam's moments         1.04 (48 px) and 1.42-1.44 (64 px), with or without noise

(the issue's measurement, 1e-7 relative noise on the upsampling gradients alone, compared the runs
from their start: 233 of 322 tensors apart by more than 1e-4). The limit, 0.1, is seven times the
worst noise (1e-3: float16 or TF32 rounding everywhere, far beyond a float32 GPU's atomics) and a
tenth of that failure. The BatchNorm statistics drift less (5e-5 to 9e-5 under noise).
tests/test_train_precision.py runs this check on the CPU under injected noise (it passes) and against
broken resumes (it fails), and on a GPU as `test_resume_on_cuda_continues_the_run`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch.utils.data import RandomSampler

from banet_lite.training import train as btrain
from banet_lite.training.checkpoint import load_checkpoint

WEIGHT_DRIFT_LIMIT = 0.1


def fit_traced(cfg: btrain.TrainConfig, monkeypatch, snapshot: Path | None = None,
               after: int = 1) -> tuple[btrain.FitResult, list[list[int]]]:
    """`fit(cfg)`, with the training indices each epoch drew; with `snapshot`, last.pt after `after` epochs
    is copied there (cfg.checkpoint_every must write it then)."""
    order: list[list[int]] = []
    real_iter, real_save = RandomSampler.__iter__, btrain.save_epoch

    def recording_iter(sampler):  # the training loader's shuffle (validation's loader does not shuffle)
        indices = list(real_iter(sampler))
        order.append(indices)
        return iter(indices)

    def save_and_snapshot(run, epoch, score, last=True):
        real_save(run, epoch, score, last)
        if snapshot is not None and epoch == after:
            shutil.copyfile(run.last_path, snapshot)

    with monkeypatch.context() as m:
        m.setattr(RandomSampler, "__iter__", recording_iter)
        m.setattr(btrain, "save_epoch", save_and_snapshot)
        result = btrain.fit(cfg)
    if snapshot is not None:
        assert snapshot.is_file(), f"no last.pt after epoch {after}: checkpoint_every must write one there"
    return result, order


def drift(resumed: dict, straight: dict, start: dict, names) -> float:
    """||resumed - straight|| / ||straight - start|| over the tensors `names` (float64)."""
    flat = {k: torch.cat([d[n].detach().double().cpu().flatten() for n in names]) for k, d in
            (("r", resumed), ("s", straight), ("0", start))}
    return ((flat["r"] - flat["s"]).norm() / (flat["s"] - flat["0"]).norm()).item()


def assert_resumed_like_straight(straight: btrain.FitResult, straight_order: list[list[int]],
                                 resumed: btrain.FitResult, resumed_order: list[list[int]], snapshot: Path,
                                 after: int, limit: float = WEIGHT_DRIFT_LIMIT) -> dict[str, float]:
    """The check (module docstring); returns the two drifts measured."""
    # 1. exact
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in straight.history]
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in straight.history], "learning rates"
    assert resumed_order == straight_order[after:], "the data order of the resumed epochs"
    a, b = load_checkpoint(straight.last_path), load_checkpoint(resumed.last_path)
    assert a["epoch"] == b["epoch"]
    (plan_a,), (plan_b,) = a["scheduler"]["lr_lambdas"], b["scheduler"]["lr_lambdas"]
    measured_times = "epoch_seconds"  # the clock's readings: measured, not computed
    assert len(plan_a[measured_times]) == len(plan_b[measured_times])
    assert ({k: v for k, v in a["scheduler"].items() if k != "lr_lambdas"}
            == {k: v for k, v in b["scheduler"].items() if k != "lr_lambdas"}), "the scheduler's step count"
    assert ({k: v for k, v in plan_a.items() if k != measured_times}
            == {k: v for k, v in plan_b.items() if k != measured_times}), "the schedule's plan"
    assert a["scaler"] == b["scaler"], "the GradScaler's scale and growth tracker"
    steps = [[s["step"].item() for s in ckpt["optimizer"]["state"].values()] for ckpt in (a, b)]
    assert steps[0] == steps[1], "Adam's step counts"
    for name, state in a["rng"].items():
        assert torch.equal(state, b["rng"][name]), f"the {name} RNG state"
    # 2. the weights, up to the noise of the steps after the snapshot
    start = load_checkpoint(snapshot)["model"]
    mine, theirs = resumed.model.state_dict(), straight.model.state_dict()
    params = [n for n, _ in straight.model.named_parameters()]
    stats = [n for n, v in theirs.items() if n not in params and v.is_floating_point()]
    measured = {"parameters": drift(mine, theirs, start, params), "batchnorm": drift(mine, theirs, start, stats)}
    for what, value in measured.items():
        assert value <= limit, f"the resumed run's {what} drifted {value:.3g} of the way the run moved (> {limit})"
    return measured
