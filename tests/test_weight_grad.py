"""The CPU fast path computes the same functions: weight gradients as matrix products (weight_grad.py)
and fused Adam, only for the paper preset on CPU."""

import pytest
import torch
from torch import nn

import banet_lite as bl
from banet_lite.training import run as brun
from banet_lite.training import train as btrain
from banet_lite.training.weight_grad import eligible, gemm_weight_grad, gemm_weight_grads


def _grads(conv, x, g, fast, autocast=False):
    with gemm_weight_grads(conv, enabled=fast), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = conv(x)
        grads = torch.autograd.grad(y.float(), [x, *conv.parameters()], g)
    return y, grads


@pytest.mark.parametrize(
    "kernel, dilation, padding, size, channels_last, bias",
    [
        (1, 1, 0, 8, True, False),  # a bottleneck's 1x1
        (3, 1, 1, 9, False, True),  # plain 3x3, contiguous tensors, a bias
        (3, 6, 6, 16, True, False),  # ASPP-like: taps reach into the padding for many pixels
        (3, 18, 18, 16, True, True),  # rate above the map: the corner taps meet nothing but padding
        (3, 2, 0, 11, True, False),  # no padding: the output is smaller than the input
    ],
)
def test_forward_and_input_gradient_are_bit_identical_and_weight_gradient_equal_to_rounding(
        kernel, dilation, padding, size, channels_last, bias):
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = nn.Conv2d(256, 24, kernel, padding=padding, dilation=dilation, bias=bias).to(memory_format=fmt)
    x = torch.randn(2, 256, size, size).contiguous(memory_format=fmt).requires_grad_()
    g = torch.randn_like(conv(x))
    for autocast, rtol in ((False, 1e-5), (True, 2e-2)):  # float32, then bfloat16 autocast as on a native CPU
        y0, (gx0, gw0, *gb0) = _grads(conv, x, g, fast=False, autocast=autocast)
        y1, (gx1, gw1, *gb1) = _grads(conv, x, g, fast=True, autocast=autocast)
        assert y1.dtype == y0.dtype and torch.equal(y1, y0)  # the same oneDNN forward call
        assert torch.equal(gx1, gx0)  # the same oneDNN input-gradient call
        assert gw1.dtype == gw0.dtype == torch.float32 and gw1.shape == gw0.shape
        torch.testing.assert_close(gw1, gw0, rtol=0, atol=rtol * gw0.abs().max().item())
        if bias:
            torch.testing.assert_close(gb1[0], gb0[0], rtol=0, atol=rtol * gb0[0].abs().max().item())
    assert "forward" not in conv.__dict__  # the block leaves a plain nn.Conv2d behind


def test_a_tap_that_only_meets_padding_has_zero_gradient():
    x, g = torch.randn(1, 4, 5, 5), torch.randn(1, 3, 5, 5)
    dw = gemm_weight_grad(x, g, (3, 3), dilation=(5, 5), padding=(5, 5))  # rate 5 on a 5x5 map
    assert dw.shape == (3, 4, 3, 3)
    assert torch.count_nonzero(dw[:, :, [0, 0, 2, 2], [0, 2, 0, 2]]) == 0  # corners
    assert torch.count_nonzero(dw[:, :, 1, 1]) == 12  # the centre sees every pixel


def test_which_convolutions_switch_and_that_tiny_has_none():
    def count(model):
        with gemm_weight_grads(model) as n:
            assert sum("forward" in m.__dict__ for m in model.modules()) == n
        assert not any("forward" in m.__dict__ for m in model.modules())
        return n

    assert count(bl.build_model("tiny")) == 0  # the notebooks' preset: nothing changes there
    assert count(bl.build_model("paper")) == 53  # ResNet-50's wide layers, ASPP, the wide heads
    assert not eligible(nn.Conv2d(512, 8, 3, stride=2, padding=1))
    assert not eligible(nn.Conv2d(512, 8, 3, padding="same"))
    assert not eligible(nn.Conv2d(128, 8, 1))
    assert eligible(nn.Conv2d(128, 8, 1), min_in_channels=128)


def test_evaluation_takes_the_plain_convolution():
    conv = nn.Conv2d(256, 8, 3, padding=2, dilation=2)
    x = torch.randn(1, 256, 8, 8)
    with gemm_weight_grads(conv), torch.no_grad():
        assert torch.equal(conv(x), nn.Conv2d.forward(conv, x))


def test_a_model_step_on_the_fast_path_gives_the_same_gradients():
    torch.manual_seed(0)
    model = bl.build_model("lite").train()
    x, y = torch.randn(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.5).float()
    loss_fn = bl.losses.joint_loss_for(model)
    grads = []
    for fast in (False, True):
        torch.manual_seed(1)  # dropout, if any, draws the same
        with gemm_weight_grads(model, enabled=fast) as n:
            total, _ = loss_fn(model(x), y)
            grads.append(torch.autograd.grad(total, list(model.parameters())))
    assert n > 0
    for (name, _), a, b in zip(model.named_parameters(), *grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * a.abs().max().item() + 1e-12, msg=name)


@pytest.mark.parametrize(
    "device, preset, flag, compiled, expected",
    [
        ("cpu", "paper", True, False, True),
        ("cpu", "lite", True, False, False),  # measured no faster: keeps its numerics bit for bit
        ("cpu", "tiny", True, False, False),  # the notebooks' preset, likewise
        ("cpu", "unet", True, False, False),
        ("cpu", "paper", False, False, False),  # cpu_fast_path=False: the plain path
        ("cpu", "paper", True, True, False),  # torch.compile traces the plain convolution
        ("cuda", "paper", True, False, False),
    ],
)
def test_use_cpu_fast_path(device, preset, flag, compiled, expected):
    cfg = btrain.TrainConfig(preset=preset, cpu_fast_path=flag, compile=compiled)
    assert btrain.use_cpu_fast_path(device, cfg) is expected


def test_no_fast_path_on_a_torch_without_fused_cpu_adam(monkeypatch):
    monkeypatch.setattr(brun, "TORCH_HAS_CPU_FAST_PATH", False)  # torch 2.3, which pyproject allows
    assert not btrain.use_cpu_fast_path("cpu", btrain.TrainConfig(preset="paper"))


def test_fit_on_the_fast_path_uses_fused_adam_and_leaves_plain_convolutions(tmp_path):
    cfg = dict(preset="paper", pretrained=None, epochs=1, batch_size=4, img_size=32, synthetic_train=10,
               progress=False, amp=False)
    runs = {}
    for fast in (False, True):
        run = btrain.setup(btrain.TrainConfig(out=str(tmp_path / str(fast)), cpu_fast_path=fast, **cfg).resolved())
        assert bool(run.optimizer.param_groups[0]["fused"]) is fast
        runs[fast] = btrain.train_one_epoch(run, 0), run.model
    assert not any("forward" in m.__dict__ for m in runs[True][1].modules())
    assert runs[True][0]["train_loss"] == pytest.approx(runs[False][0]["train_loss"], rel=1e-3)


def test_guards_float64_under_autocast_nesting_and_a_wrong_output_size():
    torch.manual_seed(0)
    conv = nn.Conv2d(256, 8, 3, padding=2, dilation=2).double()
    x = torch.randn(1, 256, 6, 6, dtype=torch.float64, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast leaves float64 alone: so must the fast path
        y0 = conv(x)
        with gemm_weight_grads(conv) as outer:
            with gemm_weight_grads(conv) as inner:  # nested: the inner block switches nothing more
                assert (outer, inner) == (1, 0)
                y1 = conv(x)
            assert "forward" in conv.__dict__  # still the outer block's
    assert "forward" not in conv.__dict__
    assert y1.dtype == y0.dtype == torch.float64 and torch.equal(y1, y0)
    with pytest.raises(ValueError, match="grad_out is 5x6, but a stride-1 3x3 convolution .* gives 6x6"):
        gemm_weight_grad(x, torch.randn(1, 8, 5, 6, dtype=torch.float64), (3, 3), (2, 2), (2, 2))
