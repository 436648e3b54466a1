"""Small building blocks shared by every BA-Net module.

The reference builds almost everything from one unit, a depthwise-separable convolution:

    SeparableConv(x) = Conv1x1( BN( DWConv3x3( [ReLU](x) ) ) )

A depthwise 3x3 conv filters each channel on its own (C * 9 weights) and the 1x1 conv mixes
channels (C_in * C_out weights): far fewer parameters and FLOPs than a full 3x3 conv
(C_in * C_out * 9). None of the three has a bias (BN's shift plays that part before the 1x1).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def conv1x1(c_in: int, c_out: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, bias=bias)


def conv3x3(c_in: int, c_out: int, bias: bool = False, dilation: int = 1,
            stride: int = 1) -> nn.Conv2d:
    # padding = dilation keeps the size ("same") for a dilated 3x3 kernel (divided by the stride)
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=bias)


class SeparableConv(nn.Sequential):
    """[ReLU] -> depthwise 3x3 (c_in) -> BN(c_in) -> 1x1 (c_in -> c_out); no biases."""

    def __init__(self, c_in: int, c_out: int, pre_relu: bool = False):
        layers = [nn.ReLU()] if pre_relu else []
        layers += [
            # depthwise: one filter per channel
            nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
            nn.BatchNorm2d(c_in),
            conv1x1(c_in, c_out),  # pointwise: mixes channels
        ]
        super().__init__(*layers)


def resize_to(x: Tensor, size: tuple[int, int] | Tensor) -> Tensor:
    """Bilinear resize of (B, C, h, w) to `size` (or to the spatial size of a reference tensor).

    align_corners=True, as the reference does for every resize; a no-op when sizes match.
    """
    if isinstance(size, Tensor):
        size = size.shape[-2:]
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
