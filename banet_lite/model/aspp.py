"""ASPP: atrous spatial pyramid pooling (DeepLab v3), on the deepest backbone feature.

Five parallel views of the same map x4, each conv (no bias) -> BN -> ReLU, concatenated and
projected:

    ASPP(x) = P( [ 1x1(x), 3x3_r1(x), 3x3_r2(x), 3x3_r3(x), up(1x1(GAP(x))) ] )

3x3_r is a 3x3 conv with dilation r (rates 6, 12, 18 in the paper: context at three ranges);
GAP is global average pooling (the whole image as context), broadcast back to the map size;
P is 1x1 (5D -> D) -> BN -> ReLU. The paper preset: 2048 -> 5 x 256 -> 256.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import conv1x1, conv3x3


def conv_bn_relu(conv: nn.Conv2d) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    def __init__(self, c_in: int, dim: int = 256, rates: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(conv1x1(c_in, dim))]
            + [conv_bn_relu(conv3x3(c_in, dim, dilation=r)) for r in rates]
        )
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(conv1x1(c_in, dim)))
        self.project = conv_bn_relu(conv1x1((len(rates) + 2) * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C4, h, w) -> (B, D, h, w)."""
        views = [branch(x) for branch in self.branches]  # 4 x (B, D, h, w)
        pooled = self.image_pool(x)  # (B, D, 1, 1): one value per channel for the whole image
        # bilinear upsampling of a 1x1 map = broadcast
        views.append(pooled.expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(views, dim=1))  # (B, 5D, h, w) -> (B, D, h, w)
