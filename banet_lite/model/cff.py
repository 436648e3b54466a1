"""CFF: cross feature fusion.

Each stage i takes what it lacks from every other stage j, through two gates:

    out_i = S_i + (1 - sigmoid(W_i * S_i)) * sum_{j != i} sigmoid(W_j * S_j') * S_j'

S_j' is stage j's segmentation feature resized (bilinear) to stage i's size; every W is a
3x3 conv R -> R without bias, so one CFF module holds four of them. sigmoid(W_j S_j') selects
the useful part of stage j ("what is worth sending"); 1 - sigmoid(W_i S_i) opens where stage
i itself is weak ("what is worth receiving"). That second gate is what the map explorer shows
as the CFF gate.

The paper writes the gates without convolutions, sigmoid(S_j') and 1 - sigmoid(S_i); the authors'
code (and the default here) learns W first. `gate_convs=False` (config `cff_gate_convs=False`)
builds the paper's parameter-free form: each W is the identity, and CFF has no parameters at all.

With `use_cff=False` the model skips CFF: out_i = S_i.

Every S_j' depends only on j and on stage i's size, and stages 2-4 share one size (output stride
8), so the model resizes each S_j once per target size (`resize_for_fusion`) and hands each module
its list: stage 1 is resized once, not three times. The outputs are the same, bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import conv3x3, resize_to


class CrossFeatureFusion(nn.Module):
    def __init__(self, dim: int, stage: int, n_stages: int = 4, gate_convs: bool = True):
        super().__init__()
        self.stage = stage  # i, counted from 0
        # W_1 .. W_4 (the paper's form: identities, no parameters)
        self.convs = nn.ModuleList(conv3x3(dim, dim) if gate_convs else nn.Identity()
                                   for _ in range(n_stages))

    def forward(self, feats: list[Tensor], resized: list[Tensor] | None = None,
                details: dict | None = None) -> tuple[Tensor, Tensor]:
        """feats: S_1..S_4, each (B, R, h_j, w_j) -> out_i and its gate, both (B, R, h_i, w_i).

        `resized`, when given: S_1'..S_4', already at stage i's size (from `resize_for_fusion`).
        `details`, when given a dict, receives what the explorer shows: "sent", each sender's
        sigmoid(W_j S_j') * S_j' stacked in stage order (B, 3, R, h_i, w_i), and "added",
        gate * their sum."""
        i, s_i = self.stage, feats[self.stage]
        received, sent = 0, []
        for j, s_j in enumerate(feats if resized is None else resized):
            if j == i:
                continue
            s_j = resize_to(s_j, s_i)  # S_j' (B, R, h_i, w_i); a no-op when already resized
            sent.append(torch.sigmoid(self.convs[j](s_j)) * s_j)  # sigmoid(W_j S_j') * S_j'
            received = received + sent[-1]
        gate = 1 - torch.sigmoid(self.convs[i](s_i))  # 1 - sigmoid(W_i S_i)
        added = gate * received
        if details is not None:
            details.update(sent=torch.stack(sent, dim=1), added=added)
        return s_i + added, gate


def resize_for_fusion(feats: list[Tensor]) -> list[list[Tensor]]:
    """[i][j] = S_j resized to stage i's size, each (j, size) resized once and shared."""
    cache: dict[tuple[int, tuple[int, ...]], Tensor] = {}
    out = []
    for s_i in feats:
        size = tuple(s_i.shape[-2:])
        row = []
        for j, s_j in enumerate(feats):
            if (j, size) not in cache:
                cache[(j, size)] = resize_to(s_j, size)
            row.append(cache[(j, size)])
        out.append(row)
    return out
