"""A convolution's weight gradient as matrix products: a CPU speed-up that keeps the function.

Backpropagation through a stride-1 convolution y = conv(x, W) (kernel k x k, dilation d, padding
p) needs two gradients. The input gradient is itself a convolution and oneDNN runs it well. The
weight gradient, one tap (ky, kx) of the kernel at a time, is a sum over every output pixel:

    dL/dW[:, :, ky, kx] = sum_{b, i, j} g[b, :, i, j] (x) x[b, :, i + dy, j + dx]
                          with (dy, dx) = (ky d - p, kx d - p),  g = dL/dy

that is, one matrix product (C_out x N) @ (N x C_in) over the N output pixels whose partner pixel
(i + dy, j + dx) lies inside the image: the others meet zero padding and add nothing. With
channels_last tensors, (B, H, W, C) in memory, both operands are plain row-major matrices.

Why bother: on CPU, oneDNN's weight-gradient kernels run at about half the rate of its forward
kernels, and ASPP's dilated convolutions are their worst case. At output stride 8 a 256 px image
gives 32 x 32 maps, where ASPP's rate-18 taps reach outside the map for most pixels: 61% of that
convolution's products multiply zero padding (rate 12: 44%, rate 6: 23%). Skipping them and
handing the rest to the matrix-multiply kernel took the weight gradients of the paper preset's 53
wide convolutions from 0.64 s to 0.50 s per step in bfloat16, and from 1.47 s to 0.88 s in float32
with AVX2 kernels; the whole step (with fused Adam) from 1.87 s to 1.72 s and from 3.92 s to 3.25 s
(benchmarks/RESULTS.md, "The CPU fast path"). `lite`'s convolutions are too narrow to gain.

Same function: the forward pass and the input gradient are the very same oneDNN calls as
nn.Conv2d's (bit-identical); only the weight gradient is summed in another order (float rounding,
about 1e-6 relative in float32). `fit` uses it when training the paper preset on CPU
(`train.use_cpu_fast_path`, `TrainConfig.cpu_fast_path`), for the stride-1 convolutions with at
least `MIN_IN_CHANNELS` input channels. The notebooks' `tiny` preset has none: its runs are
untouched. Needs torch 2.4+ (`torch.get_autocast_dtype`).
"""

from __future__ import annotations

import types
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MIN_IN_CHANNELS", "eligible", "gemm_weight_grad", "gemm_weight_grads"]

MIN_IN_CHANNELS = 256  # below, oneDNN's own kernel was as fast or faster (RESULTS.md)


def _valid(offset: int, out_size: int, in_size: int) -> tuple[int, int]:
    """Output rows [start, stop) whose partner input row (row + offset) lies inside [0, in_size)."""
    return max(0, -offset), min(out_size, in_size - offset)


def gemm_weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kernel_size: tuple[int, int],
                     dilation: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """dL/dW of a stride-1 convolution from its input x (B, C_in, H, W) and output gradient
    (B, C_out, H', W')."""
    (kh, kw), (d_h, d_w), (p_h, p_w) = kernel_size, dilation, padding
    c_out, c_in = grad_out.shape[1], x.shape[1]
    (H, W), (H_out, W_out) = x.shape[2:], grad_out.shape[2:]
    expected = (H + 2 * p_h - d_h * (kh - 1), W + 2 * p_w - d_w * (kw - 1))  # stride 1
    if (H_out, W_out) != expected:
        raise ValueError(f"gemm_weight_grad: grad_out is {H_out}x{W_out}, but a stride-1 {kh}x{kw} "
                         f"convolution (dilation {d_h, d_w}, padding {p_h, p_w}) of a {H}x{W} "
                         f"input gives {expected[0]}x{expected[1]}")
    x_rows = x.permute(0, 2, 3, 1)  # (B, H, W, C_in): a view when x is channels_last
    g_rows = grad_out.permute(0, 2, 3, 1)  # (B, H', W', C_out)
    dw = x.new_zeros(c_out, kh, kw, c_in)  # channels_last layout, as the model's weights
    for ky in range(kh):
        dy = ky * d_h - p_h
        i0, i1 = _valid(dy, H_out, H)
        for kx in range(kw):
            dx = kx * d_w - p_w
            j0, j1 = _valid(dx, W_out, W)
            if i0 >= i1 or j0 >= j1:
                continue  # every partner of this tap is padding: its gradient is zero
            # (N, C_out), the N pixels with a partner
            g = g_rows[:, i0:i1, j0:j1].reshape(-1, c_out)
            # (N, C_in), the partners
            xs = x_rows[:, i0 + dy:i1 + dy, j0 + dx:j1 + dx].reshape(-1, c_in)
            dw[:, ky, kx] = g.t() @ xs  # (C_out, C_in): the sum over b, i, j above
    return dw.permute(0, 3, 1, 2)  # (C_out, C_in, kh, kw)


class _ConvGemmWeightGrad(torch.autograd.Function):
    """F.conv2d forward; backward: oneDNN's input gradient, `gemm_weight_grad`'s weight gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation, ctx.has_bias = padding, dilation, bias is not None
        return F.conv2d(x, weight, bias, 1, padding, dilation)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # the same call autograd makes for nn.Conv2d, input half only
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1], list(ctx.padding), list(ctx.dilation), False,
                [0, 0], 1, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = gemm_weight_grad(x, grad_out, weight.shape[2:], ctx.dilation, ctx.padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


def _forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """nn.Conv2d.forward, with the weight gradient from `gemm_weight_grad` when one is needed."""
    if not (torch.is_grad_enabled() and conv.weight.requires_grad):
        return nn.Conv2d.forward(conv, x)  # evaluation, frozen weights: nothing changes
    weight, bias = conv.weight, conv.bias
    if torch.is_autocast_enabled(x.device.type) and x.dtype != torch.float64:
        # what autocast does for conv2d: cast to its dtype (float64 it leaves alone, and so do we)
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
    with torch.autocast(x.device.type, enabled=False):
        return _ConvGemmWeightGrad.apply(x, weight, bias, conv.padding, conv.dilation)


def eligible(module: nn.Module, min_in_channels: int = MIN_IN_CHANNELS) -> bool:
    """A plain stride-1 convolution (zero padding, no groups) with at least `min_in_channels`
    inputs."""
    return (type(module) is nn.Conv2d and module.stride == (1, 1) and module.groups == 1
            and module.padding_mode == "zeros" and isinstance(module.padding, tuple)
            and module.in_channels >= min_in_channels)


@contextmanager
def gemm_weight_grads(model: nn.Module, enabled: bool = True,
                      min_in_channels: int = MIN_IN_CHANNELS):
    """Within the block, the model's eligible convolutions compute their weight gradient as matrix
    products; afterwards they are plain nn.Conv2d again. Yields how many convolutions it switched.
    Blocks nest: an inner block leaves the convolutions an outer block switched to the outer one."""
    convs = [m for m in model.modules()
             if eligible(m, min_in_channels) and "forward" not in m.__dict__] if enabled else []
    for conv in convs:
        # this instance only; the class is untouched
        conv.forward = types.MethodType(_forward, conv)
    try:
        yield len(convs)
    finally:
        for conv in convs:
            del conv.forward  # back to nn.Conv2d.forward
