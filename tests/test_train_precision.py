"""The training step on a GPU's terms, checked on the CPU where possible: no host read inside a step
(torch's own included), bfloat16 autocast through `fit`, float16's skipped steps, the resume check that
GPU noise cannot trip; and, on a CUDA machine only (marked `cuda`), float16 and bfloat16 fits, steady-state
steps under `torch.cuda.set_sync_debug_mode("error")`, and a resume."""

import contextlib
import functools
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from resume_check import assert_resumed_like_straight, fit_traced
from train_configs import tiny_run

from banet_lite.errors import TrainingError
from banet_lite.training import precision
from banet_lite.training import run as brun
from banet_lite.training import step as bstep
from banet_lite.training import train as btrain


def small_config(tmp_path: Path, **kw) -> btrain.TrainConfig:
    return tiny_run(**{"out": tmp_path / "run", "device": "cpu", **kw})


def force_precision(monkeypatch, dtype, scaler: bool = False) -> None:
    """Make `fit` train under `dtype` autocast (with a GradScaler when `scaler`) whatever the machine."""
    monkeypatch.setattr(brun, "amp_settings", lambda *args, **kwargs: (dtype, scaler))


def flat_parameters(model) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in model.parameters()])


# ------------------------------------------------------------------- no host read inside a step
# Every way a tensor's value reaches Python: on a GPU each waits for the device.
READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu")


@contextlib.contextmanager
def host_reads(monkeypatch):
    """Every read of a tensor's value inside the block, by anyone (torch's own code included), as
    "name in file:line" of its caller."""
    reads = []
    with monkeypatch.context() as m:
        for name in READS:
            real = getattr(torch.Tensor, name)

            def spy(self, *args, _real=real, _name=name, **kwargs):
                frame = sys._getframe(1)
                reads.append(f"{_name} in {frame.f_code.co_filename}:{frame.f_lineno}")
                return _real(self, *args, **kwargs)

            m.setattr(torch.Tensor, name, spy)
        yield reads


def set_up_two_epochs(make_config, tmp_path: Path, resumed: bool) -> btrain.Run:
    """A 2-epoch run from `make_config`, set up fresh, or (resumed) after a first epoch and from its last.pt."""
    cfg = make_config(tmp_path, epochs=2)
    if resumed:
        btrain.fit(make_config(tmp_path, epochs=2, stop_after=1))
        cfg = make_config(tmp_path, epochs=2, resume=str(tmp_path / "run" / "last.pt"))
    return btrain.setup(cfg.resolved())


def as_on_cuda(monkeypatch, scaler: bool) -> None:
    """The optimizer and GradScaler `setup` builds on CUDA (optimizer.py), here on the CPU: fused Adam, and
    with `scaler` an enabled GradScaler (float32 numerics: the code path is what is tested; autocast reads
    nothing, and this CPU's bfloat16 may be emulated, slowly)."""
    real_adam, cpu_scaler = brun.adam, torch.amp.GradScaler
    monkeypatch.setattr(brun, "adam", lambda params, lr, wd, *_: real_adam(params, lr, wd, "cuda"))
    force_precision(monkeypatch, None, scaler)
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled: cpu_scaler("cpu", enabled=enabled))


def one_batch(run) -> tuple[torch.Tensor, torch.Tensor]:
    return next(iter(torch.utils.data.DataLoader(run.train_set, batch_size=4)))


@pytest.mark.parametrize("resumed", [False, True], ids=["fresh", "resumed"])
@pytest.mark.parametrize("scaler", [True, False], ids=["float16-path", "bfloat16-path"])
def test_steady_state_steps_read_nothing_back_to_the_host(tmp_path, monkeypatch, scaler, resumed):
    """The CUDA configuration's steps (fused Adam, with float16's GradScaler or without it as under
    bfloat16; float32 numerics here), fresh and resumed from last.pt, read no tensor value back to the
    host: not in banet_lite, not in torch (the GradScaler's `found_inf.item()` and non-fused Adam's
    `step.item()` are both caught where they occur, see the next test). A C++-side sync (a `nonzero`, a
    boolean index) shows only on a GPU: the CUDA test below runs the same steps under
    `torch.cuda.set_sync_debug_mode("error")`."""
    as_on_cuda(monkeypatch, scaler)
    run = set_up_two_epochs(small_config, tmp_path, resumed)
    assert all(group["fused"] for group in run.optimizer.param_groups)
    assert run.scaler.is_enabled() == scaler
    images, masks = one_batch(run)
    sums = {}
    if not resumed:  # a fresh Adam builds its state in its first step; a resumed one has it
        btrain._train_step(run, images, masks, sums)
    with host_reads(monkeypatch) as reads:
        for _ in range(2):
            btrain._train_step(run, images, masks, sums)
    assert reads == []
    for p, state in run.optimizer.state.items():  # fused: `step` on the parameter's device, never read
        assert state["step"].device == p.device and state["step"].dtype == torch.float32
    values = btrain._read_out(run, 0, sums)  # the one read, per log interval
    assert set(values) >= {"total", "dice", "main_ce", "main_dice", "side_seg", "side_boundary"}
    assert 0 <= values["dice"] <= 4 * 3


def test_the_read_spy_sees_torch_side_reads(tmp_path, monkeypatch):
    """Not fused (CPU Adam's default) and with a GradScaler, the same step reads the host once per
    parameter (Adam's CPU-hosted `step`, torch/optim) and once more (`found_inf`, torch/amp): the spy
    above sees reads made inside torch, so its empty list means something."""
    force_precision(monkeypatch, None, scaler=True)
    cpu_scaler = torch.amp.GradScaler
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled: cpu_scaler("cpu", enabled=enabled))
    run = btrain.setup(small_config(tmp_path).resolved())
    images, masks = one_batch(run)
    btrain._train_step(run, images, masks, {})
    with host_reads(monkeypatch) as reads:
        btrain._train_step(run, images, masks, {})
    where = {read.split(" in ")[1].rsplit(":", 1)[0] for read in reads}
    assert any(Path(f).match("torch/amp/grad_scaler.py") for f in where), where
    assert sum(Path(r.split(" in ")[1].rsplit(":", 1)[0]).match("torch/optim/*.py") for r in reads) \
        == len(run.optimizer.state)


# ------------------------------------------------------------------- bfloat16 through fit
def test_bfloat16_fit_on_cpu_is_close_to_float32(tmp_path, monkeypatch):
    """One epoch (2 Adam steps) of the tiny preset on 8 synthetic 32 px images, float32 against bfloat16
    autocast (forced: amp_settings keeps tiny in float32 on a CPU). Measured on the project's CPU: train
    loss 0.25% apart, validation loss 0.02%, validation Dice equal; the weight updates' cosine 0.77 (Adam's
    first steps are about lr * sign(gradient), so bfloat16's rounding flips the steps of near-zero
    gradients). Tolerances: losses within 5% relative, validation Dice within 0.05, cosine above 0.5."""
    initial = flat_parameters(btrain.setup(small_config(tmp_path, out=str(tmp_path / "i")).resolved()).model)
    fp32 = btrain.fit(small_config(tmp_path, out=str(tmp_path / "f")))
    force_precision(monkeypatch, torch.bfloat16)
    bf16 = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b")))
    a, b = fp32.history[0], bf16.history[0]
    for key in ("train_loss", "val_loss"):
        assert b[key] == pytest.approx(a[key], rel=0.05), key
    assert abs(b["val_dice"] - a["val_dice"]) <= 0.05
    step_a, step_b = flat_parameters(fp32.model) - initial, flat_parameters(bf16.model) - initial
    assert torch.nn.functional.cosine_similarity(step_a, step_b, dim=0) > 0.5
    assert torch.isfinite(step_b).all() and step_b.abs().max() > 0


# ------------------------------------------------------------------- float16: skipped steps
def test_skipped_steps_are_counted_on_the_device_from_the_scalers_scale():
    """A GradScaler (here on the CPU, float32 weights) skips a step with non-finite gradients and halves
    its scale; scaler_step counts exactly those steps, per epoch and in a row."""
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    skips = precision.SkippedSteps(torch.device("cpu"))
    pattern = [False, True, True, False, True, True, True]  # True: poison this step's gradients
    for poison in pattern:
        optimizer.zero_grad()
        scaler.scale(model(torch.ones(2, 3)).sum()).backward()
        if poison:
            model.weight.grad[0, 0] = float("inf")
        before = model.weight.detach().clone()
        precision.scaler_step(scaler, optimizer, skips)
        assert torch.equal(model.weight, before) == poison  # a skipped step leaves the weights alone
    assert int(skips.epoch) == 5 and int(skips.in_a_row) == 3
    skips.new_epoch()
    assert int(skips.epoch) == 0 and int(skips.in_a_row) == 3  # a run of skips carries across epochs


def test_many_skipped_steps_in_a_row_stop_training_a_few_do_not():
    assert precision.check_skipped(0) is None and precision.check_skipped(99) is None
    assert "100 steps in a row" in precision.check_skipped(100)
    assert precision.check_skipped(3, limit=3)


def test_float16_fit_records_skipped_steps_and_stops_only_when_every_step_is_skipped(tmp_path, monkeypatch):
    """fit under a GradScaler (float32 numerics on the CPU: the scaler is what is tested): a healthy run
    records 0 skipped steps; a loss that is always NaN skips every step and stops with the limit's error."""
    force_precision(monkeypatch, None, scaler=True)
    cpu_scaler = torch.amp.GradScaler
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled: cpu_scaler("cpu", enabled=enabled))
    healthy = btrain.fit(small_config(tmp_path, out=str(tmp_path / "ok")))
    assert healthy.history[0]["train_skipped_steps"] == 0 and healthy.history[0]["train_loss"] > 0

    monkeypatch.setattr(precision, "MAX_SKIPPED_IN_A_ROW", 3)
    monkeypatch.setattr(btrain, "check_skipped", lambda n: precision.check_skipped(n, limit=3))
    from banet_lite.model import losses

    class NaNLoss(losses.JointLoss):
        def forward(self, out, mask):
            total, parts = super().forward(out, mask)
            return total * float("nan"), parts

    monkeypatch.setattr(losses, "JointLoss", NaNLoss)
    with pytest.raises(TrainingError, match="skipped the last [0-9]+ steps in a row"):
        btrain.fit(small_config(tmp_path, out=str(tmp_path / "nan"), epochs=3))
    # Under the limit, the NaN steps are skipped, recorded, and left out of the loss means
    nan_run = btrain.fit(small_config(tmp_path, out=str(tmp_path / "nan2"), epochs=1, synthetic_train=4))
    row = nan_run.history[0]
    assert row["train_skipped_steps"] == 1 and row["train_loss"] != row["train_loss"]  # NaN: no step counted


# ------------------------------------------------------------------- on a CUDA GPU only
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gpu_config(tmp_path: Path, **kw) -> btrain.TrainConfig:
    return small_config(tmp_path, device="cuda", synthetic_train=16, img_size=64, workers=0, **kw)


@pytest.mark.parametrize("dtype, scaler", [(torch.float16, True), (torch.bfloat16, False)])
@pytest.mark.cuda
@needs_cuda
def test_fit_on_cuda_under_autocast(tmp_path, monkeypatch, dtype, scaler):
    """One short epoch under float16 + GradScaler (a T4's setting) and bfloat16 (A100 and later): the
    loss is finite and the weights move."""
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    initial = flat_parameters(btrain.setup(gpu_config(tmp_path, out=str(tmp_path / "i")).resolved()).model)
    force_precision(monkeypatch, dtype, scaler)
    result = btrain.fit(gpu_config(tmp_path))
    row = result.history[0]
    assert torch.isfinite(torch.tensor([row["train_loss"], row["val_loss"]])).all()
    moved = (flat_parameters(result.model) - initial).abs().max()
    assert torch.isfinite(moved) and moved > 0
    if scaler:
        assert row["train_skipped_steps"] < 4  # a few while the scaler finds its scale, not every step


@pytest.mark.parametrize("dtype, scaler", [(torch.float16, True), (torch.bfloat16, False)])
@pytest.mark.parametrize("resumed", [False, True], ids=["fresh", "resumed"])
@pytest.mark.cuda
@needs_cuda
def test_steady_state_steps_on_cuda_never_wait_for_the_host(tmp_path, monkeypatch, dtype, scaler, resumed):
    """float16 + GradScaler (a T4's setting) and bfloat16, fresh and resumed from last.pt: after two warm-up
    steps (Adam's lazy state, cuDNN's autotuning), three steps under `set_sync_debug_mode("error")`, where
    any synchronising call (an .item(), a device-to-host copy, a nonzero) raises."""
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    force_precision(monkeypatch, dtype, scaler)
    run = set_up_two_epochs(gpu_config, tmp_path, resumed)
    assert all(group["fused"] for group in run.optimizer.param_groups)
    if resumed:  # as load_state_dict placed them: on the parameter's device, float32, never read
        assert all(s["step"].device == p.device and s["step"].dtype == torch.float32
                   for p, s in run.optimizer.state.items())
    images, masks = (t.pin_memory() for t in one_batch(run))  # as fit's DataLoader hands them (pin_memory)
    sums = {}
    for _ in range(2):
        btrain._train_step(run, images, masks, sums)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            btrain._train_step(run, images, masks, sums)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    values = btrain._read_out(run, 0, sums)  # the one read per log interval, outside the steps
    assert torch.isfinite(torch.tensor(values["total"])) and 0 <= values["dice"] <= 5 * 4


# ------------------------------------------------------------------- resuming, up to a GPU's noise
def noise_config(tmp_path: Path, out: str, **kw) -> btrain.TrainConfig:
    """2 epochs of 3 steps (12 images of 48 px), last.pt after every epoch: the snapshot resume_check needs."""
    return small_config(tmp_path, out=str(tmp_path / out), epochs=2, synthetic_train=12, img_size=48,
                        checkpoint_every=1, amp=False, workers=0, **kw)


def inject_gpu_noise(monkeypatch, relative: float, seed: int) -> None:
    """What a GPU's nondeterministic kernels do, on the CPU: relative Gaussian noise on the gradient leaving
    every bilinear upsampling (whose CUDA backward sums with atomics) and on every parameter's gradient
    (cuDNN's kernels, other reduction orders). Its own generator: the runs' RNG streams stay untouched."""
    gen = torch.Generator().manual_seed(seed)

    class NoisyGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return grad * (1 + relative * torch.randn(grad.shape, generator=gen, dtype=grad.dtype))

    real_interpolate, real_scaler_step = F.interpolate, bstep.scaler_step

    def noisy_scaler_step(scaler, optimizer, skips):
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.mul_(1 + relative * torch.randn(p.grad.shape, generator=gen, dtype=p.grad.dtype))
        return real_scaler_step(scaler, optimizer, skips)

    monkeypatch.setattr(F, "interpolate", lambda *a, **k: NoisyGradient.apply(real_interpolate(*a, **k)))
    monkeypatch.setattr(bstep, "scaler_step", noisy_scaler_step)


def lose_adams_moments(run, path):
    """A broken resume: the step counts come back, Adam's moment estimates do not."""
    real_resume(run, path)
    for state in run.optimizer.state.values():
        state["exp_avg"].zero_()
        state["exp_avg_sq"].zero_()


def replay_an_earlier_shuffle(run, epoch):
    """A broken resume: the resumed epochs draw the previous epoch's data order."""
    return real_train_one_epoch(run, epoch - 1)


real_resume, real_train_one_epoch = brun.resume, btrain.train_one_epoch


def test_the_resume_check_passes_gpu_noise_and_fails_a_broken_resume(tmp_path, monkeypatch):
    """resume_check.py, on the CPU: with noise 10 to 100 times a float32 GPU's (1e-5 relative, independent
    in the two runs) a correct resume passes, far below the drift limit; a resume that loses Adam's moments
    fails on the weights (drift about 1.0 against the limit 0.1), one that replays another epoch's shuffle
    fails on the data order."""
    snapshot = tmp_path / "snapshot.pt"
    inject_gpu_noise(monkeypatch, 1e-5, seed=1)
    straight, order = fit_traced(noise_config(tmp_path, "a"), monkeypatch, snapshot)
    for seed, broken in enumerate((None, "moments", "data order"), 2):
        with monkeypatch.context() as m:
            inject_gpu_noise(m, 1e-5, seed=seed)
            if broken == "moments":
                m.setattr(brun, "resume", lose_adams_moments)
            elif broken == "data order":
                m.setattr(btrain, "train_one_epoch", replay_an_earlier_shuffle)
            resumed, resumed_order = fit_traced(noise_config(tmp_path, f"b{seed}", resume=str(snapshot)), m)
        if broken is None:
            drifts = assert_resumed_like_straight(straight, order, resumed, resumed_order, snapshot, 1)
            assert 0 < drifts["parameters"] < 0.05, drifts  # the noise acted, and stayed far below the limit
        else:
            with pytest.raises(AssertionError, match="drifted" if broken == "moments" else "data order"):
                assert_resumed_like_straight(straight, order, resumed, resumed_order, snapshot, 1)


@pytest.mark.parametrize("dtype, scaler", [(None, False), (torch.float16, True)], ids=["float32", "float16"])
@pytest.mark.cuda
@needs_cuda
def test_resume_on_cuda_continues_the_run(tmp_path, monkeypatch, dtype, scaler):
    """2 epochs straight (last.pt after epoch 1 kept as a snapshot) against a resume from that snapshot for
    the second epoch, compared by resume_check.py: exactly on the epochs, learning rates, scheduler, Adam
    step counts, GradScaler, RNG states and data order; the weights within the drift limit measured there
    (GPU kernels sum in no fixed order; bit-for-bit equality is promised on a CPU only, tests/test_train.py)."""
    force_precision(monkeypatch, dtype, scaler)
    config = functools.partial(gpu_config, tmp_path, epochs=2, checkpoint_every=1)
    straight, order = fit_traced(config(out=str(tmp_path / "a")), monkeypatch, tmp_path / "snapshot.pt")
    resumed, resumed_order = fit_traced(config(out=str(tmp_path / "b"), resume=str(tmp_path / "snapshot.pt")),
                                        monkeypatch)
    assert len(resumed.history) == 2
    assert_resumed_like_straight(straight, order, resumed, resumed_order, tmp_path / "snapshot.pt", 1)
