"""The training step on a GPU's terms, checked on the CPU where possible: no host sync inside a step,
bfloat16 autocast through `fit`, float16's skipped steps; and, on a CUDA machine only (marked `cuda`),
float16 and bfloat16 fits and an exact resume."""

import sys
from pathlib import Path

import pytest
import torch

from banet_lite.errors import TrainingError
from banet_lite.training import precision
from banet_lite.training import train as btrain


def small_config(tmp_path: Path, **kw) -> btrain.TrainConfig:
    base = dict(preset="tiny", out=str(tmp_path / "run"), epochs=1, batch_size=4, img_size=32,
                synthetic_train=8, progress=False, seed=3, device="cpu")
    return btrain.TrainConfig(**{**base, **kw})


def force_precision(monkeypatch, dtype, scaler: bool = False) -> None:
    """Make `fit` train under `dtype` autocast (with a GradScaler when `scaler`) whatever the machine."""
    monkeypatch.setattr(btrain, "amp_settings", lambda *args, **kwargs: (dtype, scaler))


def flat_parameters(model) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in model.parameters()])


# ------------------------------------------------------------------- no host sync inside a step
def test_a_training_step_reads_nothing_back_to_the_host(tmp_path, monkeypatch):
    """No .item(), .tolist(), bool() or float() of a tensor from the package's code during `_train_step`:
    on a GPU each would wait for the device. (torch's own CPU-side bookkeeping is not counted.)"""
    run = btrain.setup(small_config(tmp_path).resolved())
    images, masks = next(iter(torch.utils.data.DataLoader(run.train_set, batch_size=4)))
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if f"{Path('banet_lite')}" in caller:
                reads.append(f"{_name} in {caller}:{sys._getframe(1).f_lineno}")
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    sums = {}
    btrain._train_step(run, images, masks, sums)
    btrain._train_step(run, images, masks, sums)
    monkeypatch.undo()
    assert reads == []
    values = btrain._read_out(run, 0, sums)  # the one read, per log interval
    assert set(values) >= {"total", "dice", "main_ce", "main_dice", "side_seg", "side_edge"}
    assert 0 <= values["dice"] <= 8


# ------------------------------------------------------------------- bfloat16 through fit
def test_bfloat16_fit_on_cpu_is_close_to_float32(tmp_path, monkeypatch):
    """One epoch (2 Adam steps) of the tiny preset on 8 synthetic 32 px images, float32 against bfloat16
    autocast (forced: amp_settings keeps tiny in float32 on a CPU). Measured on the project's CPU: train
    loss 0.25% apart, validation loss 0.02%, validation Dice equal; the weight updates' cosine 0.77 (Adam's
    first steps are about lr * sign(gradient), so bfloat16's rounding flips the steps of near-zero
    gradients). Tolerances: losses within 5% relative, validation Dice within 0.05, cosine above 0.5."""
    initial = flat_parameters(btrain.fit(small_config(tmp_path, out=str(tmp_path / "i"), lr=0.0)).model)
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
    initial = flat_parameters(btrain.fit(gpu_config(tmp_path, out=str(tmp_path / "i"), lr=0.0)).model)
    force_precision(monkeypatch, dtype, scaler)
    result = btrain.fit(gpu_config(tmp_path))
    row = result.history[0]
    assert torch.isfinite(torch.tensor([row["train_loss"], row["val_loss"]])).all()
    moved = (flat_parameters(result.model) - initial).abs().max()
    assert torch.isfinite(moved) and moved > 0
    if scaler:
        assert row["train_skipped_steps"] < 4  # a few while the scaler finds its scale, not every step


@pytest.mark.cuda
@needs_cuda
def test_resume_on_cuda_continues_the_run(tmp_path):
    """2 epochs straight against 1 epoch, stop, resume for 1 more: equal weights to 1e-4 (cuDNN may pick
    other kernels after a restart; bit-for-bit equality is promised on a CPU only, tests/test_train.py)."""
    straight = btrain.fit(gpu_config(tmp_path, out=str(tmp_path / "a"), epochs=2))
    btrain.fit(gpu_config(tmp_path, out=str(tmp_path / "b"), epochs=2, stop_after=1))
    resumed = btrain.fit(gpu_config(tmp_path, out=str(tmp_path / "b"), epochs=2,
                                    resume=str(tmp_path / "b" / "last.pt")))
    assert len(resumed.history) == 2
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-4, atol=1e-4, msg=name)
