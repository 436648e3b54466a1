"""The boundary target and the joint loss against hand computations."""

import math

import pytest
import torch
import torch.nn.functional as F

import banet_lite as bl
from banet_lite.model.banet import SegmentationOutput
from banet_lite.model.losses import cross_entropy, soft_dice_loss


def test_boundary_target_marks_exactly_the_contour_band_of_a_square():
    mask = torch.zeros(1, 1, 12, 12)
    mask[..., 3:9, 3:9] = 1  # a 6x6 square
    b = bl.boundary_target(mask)[0, 0]
    expected = torch.zeros(12, 12)
    expected[2:10, 2:10] = 1  # one pixel outside ...
    expected[4:8, 4:8] = 0  # ... and one pixel inside the contour
    torch.testing.assert_close(b, expected)


def test_boundary_target_ignores_the_image_frame_and_empty_masks():
    assert bl.boundary_target(torch.ones(1, 1, 8, 8)).sum() == 0
    assert bl.boundary_target(torch.zeros(2, 1, 8, 8)).sum() == 0


def test_boundary_target_border_rule_zero_padding_marks_the_frame_like_the_reference():
    y = torch.zeros(1, 1, 8, 8)
    y[..., :, :4] = 1  # a lesion cut by the left frame
    frame_free = bl.boundary_target(y)
    with_frame = bl.boundary_target(y, "zero_padding")
    reference = (y - F.avg_pool2d(y, 3, 1, 1)).abs() > 0  # the reference's criterion.py rule
    torch.testing.assert_close(with_frame.bool(), reference)
    extra = (with_frame - frame_free)[0, 0]
    assert (extra >= 0).all() and extra.sum() > 0
    # the lesion's frame pixels (column 3 is on the real contour under both rules)
    assert extra[:, 0].all() and extra[0, :3].all() and extra[-1, :3].all()
    assert extra[1:-1, 1:].sum() == 0  # nothing inside the image
    # the loss takes its rule from the network in fit; JointLoss refuses an unknown rule by name
    with pytest.raises(ValueError, match="border_rule"):
        bl.JointLoss(border_rule="reflect")


def test_cross_entropy_matches_hand_computation():
    logits = torch.tensor([[[[2.0, -1.0]]]])  # K = 1
    y = torch.tensor([[[[1.0, 0.0]]]])
    expected = (-math.log(1 / (1 + math.exp(-2))) - math.log(1 - 1 / (1 + math.exp(1)))) / 2
    assert abs(cross_entropy(logits, y).item() - expected) < 1e-6
    logits2 = torch.tensor([[[[0.0]], [[2.0]]]])  # K = 2, one pixel, foreground
    expected2 = -math.log(math.exp(2) / (1 + math.exp(2)))
    assert abs(cross_entropy(logits2, torch.ones(1, 1, 1, 1)).item() - expected2) < 1e-6
    # the boundary weight scales the positive term (BCE)
    weighted = cross_entropy(logits, y, pos_weight=3.0).item()
    expected_w = (-3 * math.log(1 / (1 + math.exp(-2))) - math.log(1 - 1 / (1 + math.exp(1)))) / 2
    assert abs(weighted - expected_w) < 1e-6


def test_soft_dice_matches_hand_computation():
    # K = 1, probabilities p = sigmoid(logits) = [0.5, 0.5, 1.0-, 0.0+]
    logits = torch.tensor([[[[0.0, 0.0, 50.0, -50.0]]]])
    y = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]])
    inter, total = 0.5 + 1.0, (0.5 + 0.5 + 1.0) + 2.0
    assert abs(soft_dice_loss(logits, y).item() - (1 - (2 * inter + 1) / (total + 1))) < 1e-5
    # K = 2 with the same foreground probabilities gives the same loss
    logits2 = torch.cat([torch.zeros_like(logits), logits], dim=1)
    assert abs(soft_dice_loss(logits2, y).item() - soft_dice_loss(logits, y).item()) < 1e-5


def test_joint_loss_sums_its_named_parts():
    torch.manual_seed(0)
    y = torch.zeros(2, 1, 16, 16)
    y[:, :, 4:12, 5:11] = 1
    out = SegmentationOutput(torch.randn(2, 2, 16, 16), tuple(torch.randn(2, 2, 16, 16) for _ in range(4)),
                             tuple(torch.randn(2, 2, 16, 16) for _ in range(4)))
    loss = bl.JointLoss(side_weights=[1.0, 0.5, 0.25, 0.0])
    total, parts = loss(out, y)
    b = bl.boundary_target(y)
    seg = sum(w * cross_entropy(s, y) for w, s in zip([1, 0.5, 0.25, 0], out.side_masks))
    bnd = sum(w * cross_entropy(o, b) for w, o in zip([1, 0.5, 0.25, 0], out.side_boundaries))
    torch.testing.assert_close(parts["side_seg"], seg)
    torch.testing.assert_close(parts["side_boundary"], bnd)
    expected = cross_entropy(out.logits, y) + soft_dice_loss(out.logits, y) + seg + bnd
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(parts["total"], expected)
    assert all(v.ndim == 0 and not v.requires_grad for v in parts.values())


def test_joint_loss_without_side_outputs_is_the_main_loss():
    out = SegmentationOutput(torch.randn(1, 1, 8, 8))
    y = (torch.rand(1, 1, 8, 8) > 0.5).float()
    total, parts = bl.JointLoss()(out, y)
    assert set(parts) == {"main_ce", "main_dice", "total"}
    torch.testing.assert_close(total, parts["main_ce"] + parts["main_dice"])


@pytest.mark.parametrize("num_classes", [1, 2])
def test_perfect_prediction_has_near_zero_loss(num_classes):
    y = torch.zeros(1, 1, 16, 16)
    y[..., 4:12, 4:12] = 1
    b = bl.boundary_target(y)

    def logits_for(t):
        return (t * 2 - 1) * 30 if num_classes == 1 else torch.cat([(1 - t) * 30, t * 30], 1)

    out = SegmentationOutput(logits_for(y), (logits_for(y),) * 4, (logits_for(b),) * 4)
    total, _ = bl.JointLoss()(out, y)
    assert total.item() < 1e-2


def test_boundary_pos_weight_scale_two_classes_and_one():
    """K = 2: F.cross_entropy's class weight, whose mean divides by the total weight (notebook 04's formula)
    sum_n w_{b_n} (-log p_{n,b_n}) / sum_n w_{b_n}; K = 1: BCE's pos_weight, divided by the pixel count."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, generator=gen)
    target = (torch.rand(2, 1, 8, 8, generator=gen) > 0.8).long()
    w = 5.0
    nll = -torch.log_softmax(logits, dim=1).gather(1, target)  # (B, 1, H, W)
    weights = torch.where(target == 1, w, 1.0)
    expected = (weights * nll).sum() / weights.sum()
    assert cross_entropy(logits, target, w).item() == pytest.approx(expected.item(), rel=1e-6)
    assert abs(cross_entropy(logits, target, w).item() - (weights * nll).mean().item()) > 1e-3  # not the other scale

    z = logits[:, 1:] - logits[:, :1]  # the same model as one logit: sigmoid(z) = softmax(...)[1]
    y = target.float()
    bce = -(w * y * torch.nn.functional.logsigmoid(z) + (1 - y) * torch.nn.functional.logsigmoid(-z)).mean()
    assert cross_entropy(z, y, w).item() == pytest.approx(bce.item(), rel=1e-6)

    # JointLoss passes the weight to the four boundary terms only
    out = SegmentationOutput(logits, side_masks=(logits,) * 4, side_boundaries=(logits,) * 4)
    mask = target.float()
    _, parts = bl.JointLoss(boundary_pos_weight=w)(out, mask)
    boundary = bl.boundary_target(mask).long()
    assert parts["side_boundary"].item() == pytest.approx(4 * cross_entropy(logits, boundary, w).item(), rel=1e-6)
    _, plain = bl.JointLoss()(out, mask)
    assert parts["side_seg"].item() == pytest.approx(plain["side_seg"].item(), rel=1e-6)
