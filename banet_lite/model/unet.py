"""The baseline: a plain U-Net (Ronneberger et al., 2015) of about the lite preset's size.

    encoder: DoubleConv at widths w, 2w, 4w, 8w, 16w, each after a 2x2 max-pool (but the first)
    decoder: bilinear upsample -> concat with the encoder skip -> DoubleConv, back to width w
    head:    1x1 conv w -> K

DoubleConv = (3x3 conv -> BN -> ReLU) x 2. No edges, no attention, no fusion gates: what is
left when every BA-Net idea is taken away. It returns the same `SegmentationOutput` (with no
side outputs), so training, evaluation and plots treat both models alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from .layers import conv1x1, conv3x3, resize_to
from .output import SegmentationOutput


@dataclass
class UNetConfig:
    """What a U-Net is built from, and what its checkpoint records."""

    num_classes: int = 2
    base_width: int = 20  # w: the widths are w, 2w, 4w, 8w, 16w
    in_channels: int = 3
    depth: int = 4  # pooling steps
    preset: str = "unet"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        return cls(**d)


class DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            conv3x3(c_in, c_out), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            conv3x3(c_out, c_out), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """Built from its config, as BANet is (`build_model("unet", base_width=16)` makes both)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        cfg = self.config = config  # what a checkpoint rebuilds it from
        w, depth = cfg.base_width, cfg.depth
        widths = [w * 2**i for i in range(depth + 1)]  # w, 2w, 4w, 8w, 16w
        self.num_classes = cfg.num_classes
        self.down = nn.ModuleList(DoubleConv(c_in, c)
                                  for c_in, c in zip([cfg.in_channels] + widths[:-1], widths))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(DoubleConv(widths[i] + widths[i + 1], widths[i])
                                for i in reversed(range(depth)))
        self.head = conv1x1(widths[0], cfg.num_classes, bias=True)

    def forward(self, x: Tensor, return_maps: bool = False) -> SegmentationOutput:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))  # (B, w_i, H/2^i, W/2^i)
            skips.append(x)
        x = skips.pop()  # the bottleneck
        for block in self.up:
            skip = skips.pop()
            # upsample to the skip's size, fuse
            x = block(torch.cat([skip, resize_to(x, skip)], dim=1))
        return SegmentationOutput(self.head(x), maps={} if return_maps else None)  # (B, K, H, W)
