"""The usual mistakes in the build-it exercises (modules) and in the training step, made on purpose.

Each wrong module is the library's answer module with one slip in `forward`, so that it creates
the same tensors and takes the library's weights; `exercises.check` compares a failing reader's
output with each. (The structural slips, a missing BatchNorm or a bias too many, show before any
output: the weights do not fit, and exercise_weights.py names them.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.aspp import ASPP
from ..model.layers import resize_to
from ..model.pee import pyramid_edges
from . import exercise_answers as answers
from .exercise_mistakes import Mistake

# --- 01: PEE --------------------------------------------------------------------------------------


class _PEE(answers.PEEAnswer):
    order, relu, border_rule_used = "f_first", True, None

    def forward(self, f: Tensor) -> tuple[Tensor, Tensor]:
        edges = torch.cat(pyramid_edges(f, self.kernels, self.border_rule_used or self.border_rule),
                          dim=1)
        x = self.squeeze(torch.cat([f, edges] if self.order == "f_first" else [edges, f], dim=1))
        return (self.fuse if self.relu else nn.Sequential(*list(self.fuse)[1:]))(x), edges


class PEEEdgesFirst(_PEE):
    order = "edges_first"


class PEEWithoutReLU(_PEE):
    relu = False


class PEEPaddingCounted(_PEE):
    border_rule_used = "zero_padding"


# --- 02: a mini-MTL stage -------------------------------------------------------------------------


class _Stage(answers.MiniMTLStageAnswer):
    gate, blocks, heads = "1 - sigmoid", "A_e on e", "right"

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e, s = self.boundary_branch(x), self.seg_branch(x)
        a_e, a_s = (self.ia.attend_boundary, self.ia.attend_seg) if self.blocks == "A_e on e" else (
            self.ia.attend_seg, self.ia.attend_boundary)

        def gate(z: Tensor) -> Tensor:
            return 1 - torch.sigmoid(z) if self.gate == "1 - sigmoid" else torch.sigmoid(z)

        E, S = e + gate(a_e(e)) * s, s + gate(a_s(s)) * e
        if self.heads == "swapped":
            return S, self.seg_head(E), self.boundary_head(S)
        return S, self.seg_head(S), self.boundary_head(E)


class StageSigmoidGate(_Stage):
    gate = "sigmoid"


class StageBlocksSwapped(_Stage):
    blocks = "swapped"


class StageHeadsSwapped(_Stage):
    heads = "swapped"


# --- 03: CFF --------------------------------------------------------------------------------------


class _CFF(answers.CFFAnswer):
    mode, align_corners, receiving, senders = "bilinear", True, "1 - sigmoid", "others"

    def forward(self, feats: list[Tensor]) -> Tensor:
        i, s_i = self.stage, feats[self.stage]
        received = 0
        for j, s_j in enumerate(feats):
            if j == i and self.senders == "others":
                continue
            if s_j.shape[-2:] != s_i.shape[-2:]:
                corners = {} if self.mode == "nearest" else {"align_corners": self.align_corners}
                s_j = F.interpolate(s_j, size=s_i.shape[-2:], mode=self.mode, **corners)
            received = received + torch.sigmoid(self.convs[j](s_j)) * s_j
        g = torch.sigmoid(self.convs[i](s_i))
        return s_i + (1 - g if self.receiving == "1 - sigmoid" else g) * received


class CFFAlignCornersFalse(_CFF):
    align_corners = False


class CFFNearest(_CFF):
    mode = "nearest"


class CFFSigmoidReceiving(_CFF):
    receiving = "sigmoid"


class CFFIncludesItself(_CFF):
    senders = "all"


# --- 04: ASPP and the whole network ---------------------------------------------------------------


class _ASPP(ASPP):
    relu_views, relu_project, pool = True, True, "average"

    def forward(self, x: Tensor) -> Tensor:
        def unit(seq: nn.Sequential, z: Tensor, relu: bool) -> Tensor:
            conv, bn = seq[-3], seq[-2]  # (pool,) conv, BN, ReLU
            z = bn(conv(z))
            return F.relu(z) if relu else z

        views = [unit(b, x, self.relu_views) for b in self.branches]
        pooled = (x.mean((2, 3), keepdim=True) if self.pool == "average"
                  else x.amax((2, 3), keepdim=True))
        views.append(unit(self.image_pool, pooled, self.relu_views).expand(-1, -1, *x.shape[-2:]))
        return unit(self.project, torch.cat(views, dim=1), self.relu_project)


class ASPPViewsWithoutReLU(_ASPP):
    relu_views = False


class ASPPProjectionWithoutReLU(_ASPP):
    relu_project = False


class ASPPMaxPool(_ASPP):
    pool = "max"


class _Tiny(answers.TinyBANetAnswer):
    fuse, up_sides, up_logits = True, True, True

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        feats = self.backbone(x)
        S, side_masks, side_boundaries = [], [], []
        for i, f in enumerate(feats):
            stage = self.mtl[i](self.pee[i](self.reduce[i](f))[0])
            S.append(stage["seg_features"])
            side_masks.append(resize_to(stage["side_mask"], x) if self.up_sides
                              else stage["side_mask"])
            side_boundaries.append(resize_to(stage["side_boundary"], x) if self.up_sides
                              else stage["side_boundary"])
        fused = [m(S)[0] for m in self.cff] if self.fuse else S
        logits = self.decoder(fused, self.aspp(feats[3]))
        return (resize_to(logits, x) if self.up_logits else logits, tuple(side_masks),
                tuple(side_boundaries))


class TinyWithoutCFF(_Tiny):
    fuse = False  # CFF built (its weights are there) but its output not used


class TinySidesNotUpsampled(_Tiny):
    up_sides = False


class TinyLogitsNotUpsampled(_Tiny):
    up_logits = False


# --- 05: the training step ------------------------------------------------------------------------


def step_without_zero_grad(model, images, masks, optimizer, loss_fn):
    loss, _ = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss


def step_without_update(model, images, masks, optimizer, loss_fn):
    loss, _ = loss_fn(model(images), masks)
    loss.backward()
    # between backward and step: the step sees no gradient (or the step is missing)
    optimizer.zero_grad()
    optimizer.step()
    return loss


_IA_GATE = ("the gate is 1 - sigmoid(.), open where a branch is unsure: "
            "E = e + (1 - sigmoid(A_e(e))) * s; "
            "yours looks like sigmoid(A_e(e)), which opens where e is already confident")
_PADDING = ("F.avg_pool2d counts the zero padding by default: border_rule='exclude_padding' needs "
            "count_include_pad=False (the edge maps differ along the frame)")
MODULE_MISTAKES: dict[str, tuple[Mistake, ...]] = {
    "build_pee": (
        Mistake("edges first", PEEEdgesFirst,
                "the first 1x1 conv reads [F', E_a, E_b], F' first (the library's weights are laid "
                "out so); yours looks like [E_a, E_b, F']"),
        Mistake("no ReLU", PEEWithoutReLU,
                "the fusion unit starts with a ReLU: ReLU, depthwise 3x3, BatchNorm, 1x1"),
        Mistake("padding counted", PEEPaddingCounted, _PADDING),
    ),
    "build_mtl_stage": (
        Mistake("sigma gate", StageSigmoidGate, _IA_GATE),
        Mistake("A_e and A_s swapped", StageBlocksSwapped,
                "A_e and A_s swapped: E's gate is 1 - sigmoid(A_e(e)), S's is 1 - sigmoid(A_s(s)); "
                "create A_e before A_s (the weights load in creation order)"),
        Mistake("E and S swapped in the heads", StageHeadsSwapped,
                "E and S swapped in the heads: side_mask = seg_head(S), "
                "side_boundary = boundary_head(E)"),
    ),
    "build_cff": (
        Mistake("align_corners=False", CFFAlignCornersFalse,
                "resize with align_corners=True, as the library (bl.layers.resize_to) and the "
                "authors' code do; "
                "align_corners=False samples the map at slightly different points"),
        Mistake("nearest", CFFNearest,
                "S_j' is a bilinear resize, F.interpolate(..., mode='bilinear', "
                "align_corners=True), not nearest-neighbour"),
        Mistake("sigmoid receiving gate", CFFSigmoidReceiving,
                "the receiving gate is 1 - sigmoid(W_i S_i): "
                "stage i takes where it is itself weak"),
        Mistake("sends to itself", CFFIncludesItself, "the sum runs over the other stages, j != i"),
    ),
    "build_aspp": (
        Mistake("views without ReLU", ASPPViewsWithoutReLU,
                "every view is conv, BatchNorm, ReLU: yours leaves out the ReLU of the five views"),
        Mistake("projection without ReLU", ASPPProjectionWithoutReLU,
                "the projection is conv, BatchNorm, ReLU too: yours ends without the ReLU"),
        Mistake("max pooling", ASPPMaxPool,
                "image pooling is a global average (AdaptiveAvgPool2d(1)), not a maximum"),
    ),
    "assemble_tiny": (
        Mistake("CFF unused", TinyWithoutCFF,
                "the decoder reads CFF's outputs C_1..C_4, not the stage features S"),
        Mistake("side outputs not upsampled", TinySidesNotUpsampled,
                "the side outputs are upsampled to the input size "
                "(bilinear, align_corners=True), like the logits"),
        Mistake("logits not upsampled", TinyLogitsNotUpsampled,
                "the decoder's logits are at 1/4 of the input: upsample them to the input size "
                "(bilinear, align_corners=True)"),
    ),
    "train_step": (
        Mistake("no zero_grad", step_without_zero_grad,
                "zero the gradients in every step (optimizer.zero_grad()) before loss.backward(): "
                "backward adds to the .grad left by the step before, so your second step used "
                "the sum of both steps' gradients"),
        Mistake("no update", step_without_update,
                "your parameters did not move: optimizer.step() must come after loss.backward(), "
                "with no zero_grad() between them"),
    ),
}
