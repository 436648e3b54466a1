"""Wrong answers to the exercises, written as a student would write them: the notebooks' solutions with one
slip each. test_exercises.py checks that each fails and that `check` prints the hint for its slip, and no other.

STUDENT_MISTAKES: (exercise, the known mistake's name) -> a wrong answer that makes it.
STRUCTURAL: (exercise, a wrong module whose weights do not fit, the start of the hint `check` must print).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

import banet_lite as bl

MEAN, STD = torch.tensor(bl.viz.IMAGENET_MEAN), torch.tensor(bl.viz.IMAGENET_STD)


# --- functions: the notebooks' solutions, one slip each ---------------------------------------------------------


def boundary_band(mask, border_rule, count_include_pad=None, absolute=True):
    y = mask.float()
    if count_include_pad is None:  # the student forgot the rule: F.avg_pool2d's default counts the padding
        local_mean = F.avg_pool2d(y, kernel_size=3, stride=1, padding=1)
    else:
        local_mean = F.avg_pool2d(y, 3, 1, 1, count_include_pad=count_include_pad)
    d = y - local_mean
    return ((d.abs() if absolute else d) > 0).float()


def stage_sizes(img_size, output_stride, halve=lambda n: (n + 1) // 2, dilated=True):
    size = halve(halve(img_size))
    sizes, stride = [size], 4
    for _ in range(3):
        if stride < output_stride or not dilated:
            size, stride = halve(size), 2 * stride
        sizes.append(size)
    return sizes


def soft_dice(logits, mask, smooth=1.0, dims=(2, 3), channel=1):
    p = logits.softmax(dim=1)[:, channel:channel + 1]
    inter = (p * mask).sum(dim=dims)
    total = p.sum(dim=dims) + mask.sum(dim=dims)
    return (1 - (2 * inter + smooth) / (total + smooth)).mean()


def joint(logits, side_masks, side_boundaries, mask, boundary_pos_weight, classes=(1.0, None), band=True, dice=True):
    y = mask[:, 0].long()
    b = bl.boundary_target(mask)[:, 0].long() if band else y
    w = None
    if boundary_pos_weight is not None and classes is not None:
        w = logits.new_tensor([boundary_pos_weight if c is None else c for c in classes])
    main = F.cross_entropy(logits, y) + (soft_dice(logits, mask) if dice else 0)
    return main + sum(F.cross_entropy(s, y) for s in side_masks) + sum(
        F.cross_entropy(e, b, weight=w) for e in side_boundaries)


def dice_jaccard_both_empty_zero(pred, target):
    tp = np.count_nonzero(pred & target)
    fp, fn = np.count_nonzero(pred & ~target), np.count_nonzero(~pred & target)
    return 2 * tp / max(2 * tp + fp + fn, 1), tp / max(tp + fp + fn, 1)


def dice_jaccard_swapped(pred, target):
    tp = np.count_nonzero(pred & target)
    fp, fn = np.count_nonzero(pred & ~target), np.count_nonzero(~pred & target)
    if tp + fp + fn == 0:
        return 1.0, 1.0
    return tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)


def boundary_f(pred, target, structure=None, strict=False, both_empty=1.0):
    pred, target = np.asarray(pred, dtype=bool), np.asarray(target, dtype=bool)
    if not pred.any() or not target.any():
        return both_empty if not pred.any() and not target.any() else 0.0

    def outline(m):  # scipy's default structure: the 4 neighbours
        return m & ~ndimage.binary_erosion(m, structure=structure, border_value=0)

    bp, bt = np.argwhere(outline(pred)), np.argwhere(outline(target))
    d = np.sqrt(((bp[:, None, :] - bt[None, :, :]) ** 2).sum(axis=-1))
    close = d < 2 if strict else d <= 2
    precision, recall = np.mean(close.any(axis=1)), np.mean(close.any(axis=0))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


# --- modules: the notebooks' solutions, one slip each ---------------------------------------------------------


def separable(c_in, c_out, pre_relu=False, bn=True):
    layers = [nn.ReLU()] if pre_relu else []
    layers += [nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)] + ([nn.BatchNorm2d(c_in)] if bn else [])
    return nn.Sequential(*layers, nn.Conv2d(c_in, c_out, 1, bias=False))


class PEE(nn.Module):
    edges_first, relu, count_padding, bn, squeeze_bias = False, True, None, True, False

    def __init__(self, dim, kernels, border_rule):
        super().__init__()
        self.kernels, self.include_pad = kernels, border_rule == "zero_padding"
        self.squeeze = nn.Conv2d(3 * dim, dim, 1, bias=self.squeeze_bias)
        self.fuse = separable(dim, dim, pre_relu=self.relu, bn=self.bn)

    def forward(self, f):
        pad = self.include_pad if self.count_padding is None else self.count_padding
        edges = torch.cat([f - F.avg_pool2d(f, k, 1, k // 2, count_include_pad=pad) for k in self.kernels], dim=1)
        return self.fuse(self.squeeze(torch.cat([edges, f] if self.edges_first else [f, edges], dim=1))), edges


class PEEEdgesFirst(PEE):
    edges_first = True


class PEENoReLU(PEE):
    relu = False


class PEEAlwaysCountsPadding(PEE):
    count_padding = True


class PEENoBatchNorm(PEE):
    bn = False


class PEESqueezeBias(PEE):
    squeeze_bias = True


class MiniMTLStage(nn.Module):
    gate, a_s_first, heads_swapped, head_bias = "1 - sigmoid", False, False, True

    def __init__(self, dim, num_classes):
        super().__init__()
        self.e, self.s = separable(dim, dim), separable(dim, dim)
        if self.a_s_first:  # created in the wrong order: A_s takes A_e's weights
            self.attend_s, self.attend_e = separable(dim, dim), separable(dim, dim)
        else:
            self.attend_e, self.attend_s = separable(dim, dim), separable(dim, dim)
        self.boundary_head = nn.Conv2d(dim, num_classes, 3, padding=1, bias=self.head_bias)
        self.seg_head = nn.Conv2d(dim, num_classes, 3, padding=1, bias=self.head_bias)

    def forward(self, x):
        e, s = self.e(x), self.s(x)
        g = (lambda z: 1 - torch.sigmoid(z)) if self.gate == "1 - sigmoid" else torch.sigmoid
        E = e + g(self.attend_e(e)) * s
        S = s + g(self.attend_s(s)) * e
        if self.heads_swapped:
            return S, self.seg_head(E), self.boundary_head(S)
        return S, self.seg_head(S), self.boundary_head(E)


class StageSigmoid(MiniMTLStage):
    gate = "sigmoid"


class StageAsFirst(MiniMTLStage):
    a_s_first = True


class StageHeadsSwapped(MiniMTLStage):
    heads_swapped = True


class StageHeadsWithoutBias(MiniMTLStage):
    head_bias = False


class CFF(nn.Module):
    resize, receiving, with_itself, bn = dict(mode="bilinear", align_corners=True), "1 - sigmoid", False, False

    def __init__(self, dim, stage):
        super().__init__()
        self.stage = stage
        self.W = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, bias=False), *([nn.BatchNorm2d(dim)] if self.bn else []))
            for _ in range(4))

    def forward(self, feats):
        i, S_i = self.stage, feats[self.stage]
        received = torch.zeros_like(S_i)
        for j, S_j in enumerate(feats):
            if j != i or self.with_itself:
                S_j = F.interpolate(S_j, size=S_i.shape[-2:], **self.resize)
                received = received + torch.sigmoid(self.W[j](S_j)) * S_j
        gate = torch.sigmoid(self.W[i](S_i))
        return S_i + (1 - gate if self.receiving == "1 - sigmoid" else gate) * received


class CFFAlignCornersFalse(CFF):
    resize = dict(mode="bilinear", align_corners=False)


class CFFNearest(CFF):
    resize = dict(mode="nearest")


class CFFSigmoidReceiving(CFF):
    receiving = "sigmoid"


class CFFWithItself(CFF):
    with_itself = True


class CFFWithBatchNorm(CFF):
    bn = True


class ASPP(nn.Module):
    view_relu, project_relu, pool = True, True, "avg"

    def __init__(self, c_in, dim, rates):
        super().__init__()

        def conv_bn(c, k=1, r=1):
            return nn.Sequential(nn.Conv2d(c, dim, k, padding=r * (k // 2), dilation=r, bias=False),
                                 nn.BatchNorm2d(dim))

        self.branch_1x1 = conv_bn(c_in)
        self.branch_atrous = nn.ModuleList(conv_bn(c_in, 3, r) for r in rates)
        self.branch_pool = conv_bn(c_in)
        self.project = conv_bn((len(rates) + 2) * dim)

    def forward(self, x):
        act = F.relu if self.view_relu else (lambda z: z)
        views = [act(self.branch_1x1(x))] + [act(b(x)) for b in self.branch_atrous]
        pooled = F.adaptive_avg_pool2d(x, 1) if self.pool == "avg" else F.adaptive_max_pool2d(x, 1)
        views.append(F.interpolate(act(self.branch_pool(pooled)), size=x.shape[-2:], mode="bilinear",
                                   align_corners=True))
        out = self.project(torch.cat(views, dim=1))
        return F.relu(out) if self.project_relu else out


class ASPPViewsWithoutReLU(ASPP):
    view_relu = False


class ASPPProjectWithoutReLU(ASPP):
    project_relu = False


class ASPPMaxPool(ASPP):
    pool = "max"


class TinyBANet(nn.Module):
    """Assembled from the library's blocks (notebooks 01-04 rebuilt them), with one slip each."""

    use_cff, up_sides, up_logits = True, True, True

    def __init__(self, config):
        super().__init__()
        R, K = config.reduce_dim, config.num_classes
        self.backbone = bl.DilatedResNet(config.depth, config.base_width, config.output_stride)
        self.reduce = nn.ModuleList(nn.Conv2d(c, R, 1, bias=False) for c in self.backbone.channels)
        self.pee = nn.ModuleList(bl.PyramidEdgeExtraction(R, k, border_rule=config.border_rule)
                                 for k in config.pee_kernels)
        self.mtl = nn.ModuleList(bl.MiniMTL(R, K) for _ in range(4))
        self.cff = nn.ModuleList(bl.CrossFeatureFusion(R, i) for i in range(4))
        self.aspp = bl.ASPP(self.backbone.channels[3], config.aspp_dim, config.aspp_rates)
        self.decoder = bl.Decoder(R, K, config.aspp_dim)

    def forward(self, x):
        def up(t):
            return F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=True)

        feats = self.backbone(x)
        S, side_masks, side_boundaries = [], [], []
        for i, f in enumerate(feats):
            out = self.mtl[i](self.pee[i](self.reduce[i](f))[0])
            S.append(out["seg_features"])
            side_masks.append(up(out["side_mask"]) if self.up_sides else out["side_mask"])
            side_boundaries.append(up(out["side_boundary"]) if self.up_sides else out["side_boundary"])
        fused = [cff(S)[0] for cff in self.cff] if self.use_cff else S
        logits = self.decoder(fused, self.aspp(feats[3]))
        return up(logits) if self.up_logits else logits, side_masks, side_boundaries


class TinyNoCFF(TinyBANet):
    use_cff = False


class TinySidesAtStageSize(TinyBANet):
    up_sides = False


class TinyLogitsAtQuarterSize(TinyBANet):
    up_logits = False


# --- the training step ---------------------------------------------------------------------------------------


def step_without_zero_grad(model, images, masks, optimizer, loss_fn):
    out = model(images)
    loss, parts = loss_fn(out, masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_zero_grad_after_backward(model, images, masks, optimizer, loss_fn):
    loss, _ = loss_fn(model(images), masks)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss


def step_without_step(model, images, masks, optimizer, loss_fn):
    optimizer.zero_grad()
    loss, _ = loss_fn(model(images), masks)
    loss.backward()
    return loss


def good_step(model, images, masks, optimizer, loss_fn):  # another right answer: model.zero_grad, a float
    model.zero_grad()
    loss, _ = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def _channels_last(image):
    return (torch.tensor(image).float() / 255 - MEAN) / STD


STUDENT_MISTAKES = {
    ("normalize", "no /255"): lambda image: (torch.tensor(image).permute(2, 0, 1).float() - MEAN.view(3, 1, 1))
    / STD.view(3, 1, 1),
    ("normalize", "reshape, not permute"): lambda image: (
        torch.tensor(image).float().view(3, *image.shape[:2]) / 255 - MEAN.view(3, 1, 1)) / STD.view(3, 1, 1),
    ("normalize", "channels last"): _channels_last,
    ("normalize", "no mean and std"): lambda image: torch.tensor(image).permute(2, 0, 1).float() / 255,
    ("boundary_target", "padding counted"): lambda mask, rule: boundary_band(mask, rule),
    ("boundary_target", "padding never counted"): lambda mask, rule: boundary_band(mask, rule, count_include_pad=False),
    ("boundary_target", "one side only"): lambda mask, rule: boundary_band(mask, rule, rule == "zero_padding", False),
    ("stage_sizes", "rounding down"): lambda size, stride: stage_sizes(size, stride, halve=lambda n: n // 2),
    ("stage_sizes", "no dilation"): lambda size, stride: stage_sizes(size, stride, dilated=False),
    ("pee_reference_form", "padding not counted"): lambda f, kernels: [
        f - nn.AvgPool2d(k, stride=1, padding=k // 2, count_include_pad=False)(f) for k in kernels],
    ("pee_reference_form", "averages, not edges"): lambda f, kernels: [
        nn.AvgPool2d(k, stride=1, padding=k // 2)(f) for k in kernels],
    ("reference_to_ours", "unchanged"): lambda w: w,
    ("reference_to_ours", "F's block unchanged"): lambda w: torch.cat(
        [w.chunk(3, 1)[0], -w.chunk(3, 1)[1], -w.chunk(3, 1)[2]], 1),
    ("reference_to_ours", "no minus sign"): lambda w: torch.cat([sum(w.chunk(3, 1)), *w.chunk(3, 1)[1:]], 1),
    ("paper_ia", "sigma gate"): lambda e, s: (e + torch.sigmoid(e) * s, s + torch.sigmoid(s) * e),
    ("paper_ia", "gate of the other branch"): lambda e, s: (e + (1 - torch.sigmoid(s)) * s,
                                                            s + (1 - torch.sigmoid(e)) * e),
    ("paper_ia", "E and S swapped"): lambda e, s: (s + (1 - torch.sigmoid(s)) * e, e + (1 - torch.sigmoid(e)) * s),
    ("separable_params", "no BatchNorm"): lambda R: 9 * R + R * R,
    ("separable_params", "BatchNorm buffers counted"): lambda R: 9 * R + 2 * R + 2 * R + R * R,
    ("separable_params", "full depthwise conv"): lambda R: 9 * R * R + 2 * R + R * R,
    ("soft_dice_loss", "no smoothing"): lambda logits, mask: soft_dice(logits, mask, smooth=0.0),
    ("soft_dice_loss", "one Dice for the batch"): lambda logits, mask: soft_dice(logits, mask, dims=(0, 1, 2, 3)),
    ("soft_dice_loss", "background channel"): lambda logits, mask: soft_dice(logits, mask, channel=0),
    ("joint_loss", "boundary_pos_weight ignored"): lambda *a: joint(*a, classes=None),
    ("joint_loss", "background weighted"): lambda *a: joint(*a, classes=(None, 1.0)),
    ("joint_loss", "side boundaries against the mask"): lambda *a: joint(*a, band=False),
    ("joint_loss", "no Dice term"): lambda *a: joint(*a, dice=False),
    ("poly_lr", "linear"): lambda base_lr, step, total: base_lr * (1 - step / total),
    ("poly_lr", "one step ahead"): lambda base_lr, step, total: base_lr * max(0, 1 - (step + 1) / total) ** 0.9,
    ("dice_jaccard", "both empty scores 0"): dice_jaccard_both_empty_zero,
    ("dice_jaccard", "swapped"): dice_jaccard_swapped,
    ("boundary_f", "8-neighbour erosion"): lambda p, t: boundary_f(p, t, structure=np.ones((3, 3), bool)),
    ("boundary_f", "strict tolerance"): lambda p, t: boundary_f(p, t, strict=True),
    ("boundary_f", "both empty scores 0"): lambda p, t: boundary_f(p, t, both_empty=0.0),
    ("build_pee", "edges first"): PEEEdgesFirst,
    ("build_pee", "no ReLU"): PEENoReLU,
    ("build_pee", "padding counted"): PEEAlwaysCountsPadding,
    ("build_mtl_stage", "sigma gate"): StageSigmoid,
    ("build_mtl_stage", "A_e and A_s swapped"): StageAsFirst,
    ("build_mtl_stage", "E and S swapped in the heads"): StageHeadsSwapped,
    ("build_cff", "align_corners=False"): CFFAlignCornersFalse,
    ("build_cff", "nearest"): CFFNearest,
    ("build_cff", "sigmoid receiving gate"): CFFSigmoidReceiving,
    ("build_cff", "sends to itself"): CFFWithItself,
    ("build_aspp", "views without ReLU"): ASPPViewsWithoutReLU,
    ("build_aspp", "projection without ReLU"): ASPPProjectWithoutReLU,
    ("build_aspp", "max pooling"): ASPPMaxPool,
    ("assemble_tiny", "CFF unused"): TinyNoCFF,
    ("assemble_tiny", "side outputs not upsampled"): TinySidesAtStageSize,
    ("assemble_tiny", "logits not upsampled"): TinyLogitsAtQuarterSize,
    ("train_step", "no zero_grad"): step_without_zero_grad,
    ("train_step", "no update"): step_zero_grad_after_backward,
}

# the same slip written another way must get the same hint
MORE_STUDENT_MISTAKES = [(("train_step", "no update"), step_without_step)]

STRUCTURAL = [
    ("build_pee", PEENoBatchNorm, "a missing BatchNorm: the library has a BatchNorm2d(4), fuse.2, right after "
                                  "fuse.1.weight, and your module has none there"),
    ("build_pee", PEESqueezeBias, "a bias too many: your squeeze has one"),
    ("build_cff", CFFWithBatchNorm, "a BatchNorm too many: your W.0.1 is a BatchNorm"),
    ("build_mtl_stage", StageHeadsWithoutBias, "a missing bias: the library's boundary_head has one (bias=True)"),
]
