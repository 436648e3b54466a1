"""Metrics: hand-computed counts, each formula, the empty-mask rules, HD95, boundary F, summaries."""

import math

import numpy as np
import pytest
import torch

from banet_lite import metrics

# pred and target on a 2 x 3 image; counted by hand: TP at (0,0), (1,1); FP at (0,1); FN at (1,0)
PRED = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)
TARGET = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)


def square(top, left, size=20, shape=(64, 64)):
    m = np.zeros(shape, dtype=bool)
    m[top : top + size, left : left + size] = True
    return m


def test_confusion_by_hand():
    assert metrics.confusion(PRED, TARGET) == (2, 1, 1, 2)
    assert metrics.confusion(PRED.astype(np.uint8), TARGET.astype(float)) == (2, 1, 1, 2)  # 0/1 arrays work


def test_formulas():
    c = metrics.confusion(PRED, TARGET)  # (2, 1, 1, 2)
    assert metrics.dice(*c) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert metrics.jaccard(*c) == pytest.approx(2 / (2 + 1 + 1))
    assert metrics.accuracy(*c) == pytest.approx((2 + 2) / 6)
    assert metrics.sensitivity(*c) == pytest.approx(2 / (2 + 1))
    assert metrics.specificity(*c) == pytest.approx(2 / (2 + 1))


def test_empty_prediction_rule():
    empty, target = np.zeros((8, 8), bool), square(2, 2, 4, (8, 8))
    r = metrics.image_metrics(empty, target)
    assert (r["dice"], r["jaccard"], r["sensitivity"]) == (0.0, 0.0, 0.0)
    assert r["specificity"] == 1.0 and math.isnan(r["hd95"]) and r["boundary_f"] == 0.0
    both = metrics.image_metrics(empty, empty)  # our documented choice: nothing to find, nothing wrong
    assert (both["dice"], both["jaccard"], both["sensitivity"], both["boundary_f"]) == (1.0, 1.0, 1.0, 1.0)
    only_pred = metrics.image_metrics(target, empty)
    assert only_pred["dice"] == 0.0 and only_pred["sensitivity"] == 1.0
    full = np.ones((8, 8), bool)
    assert metrics.specificity(*metrics.confusion(full, full)) == 1.0  # no background at all


def test_boundary_is_mask_minus_erosion():
    b = metrics.boundary(square(0, 0, 4, (6, 6)))
    assert b.sum() == 12  # 4x4 square: 16 pixels minus the 2x2 inside
    assert not b[1:3, 1:3].any()
    assert metrics.boundary(square(0, 0, 4, (6, 6)), width=2).sum() == 16


def test_distance_to_set_is_exact():
    rng = np.random.default_rng(0)
    target = rng.random((23, 31)) < 0.05
    points = np.argwhere(rng.random((23, 31)) < 0.3)
    brute = np.sqrt(((points[:, None, :] - np.argwhere(target)[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(metrics.distance_to_set(points, target), brute)


def test_hd95():
    a = square(10, 10)
    assert metrics.hd95(a, a) == 0.0
    assert metrics.hd95(a, square(10, 13)) == pytest.approx(3.0)  # offset by 3 px
    assert metrics.hd95(a, square(10, 13), spacing=0.5) == pytest.approx(1.5)
    assert math.isnan(metrics.hd95(a, np.zeros_like(a)))


def test_boundary_f_score():
    a = square(10, 10)
    assert metrics.boundary_f_score(a, a) == 1.0
    assert metrics.boundary_f_score(a, square(11, 10), tolerance=2) == 1.0  # within tolerance
    assert metrics.boundary_f_score(a, square(16, 16), tolerance=2) < 0.6  # 6 px away, beyond tolerance


def test_image_metrics_keys_and_bad_input():
    r = metrics.image_metrics(square(10, 10), square(12, 12))
    assert tuple(r) == metrics.METRIC_NAMES
    assert all(isinstance(v, float) for v in r.values())
    with pytest.raises(ValueError, match="shape"):
        metrics.confusion(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="0 and 1"):
        metrics.confusion(np.full((4, 4), 0.5), np.zeros((4, 4)))


def test_summarize_with_nan():
    rows = [
        {"image": "a.png", "dice": 0.5, "hd95": 1.0},
        {"image": "b.png", "dice": 1.0, "hd95": math.nan},
        {"image": "c.png", "dice": 0.0, "hd95": 3.0},
    ]
    s = metrics.summarize(rows)
    assert s == {"dice": 0.5, "hd95": 2.0, "hd95_nan": 1, "n_images": 3}  # the name column is skipped
    assert math.isnan(metrics.summarize([{"hd95": math.nan}])["hd95"])
    with pytest.raises(ValueError):
        metrics.summarize([])


def test_probabilities_to_mask():
    k1 = torch.tensor([-1.0, 0.0, 2.0]).view(1, 1, 1, 3)
    assert metrics.probabilities_to_mask(k1).tolist() == [[[False, False, True]]]
    k2 = torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 1.0]]).view(1, 2, 1, 3)  # class 1 wins in the middle
    assert metrics.probabilities_to_mask(k2).tolist() == [[[False, True, False]]]
    k3 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).view(1, 3, 1, 2)  # classes 1 and 2: foreground
    assert metrics.probabilities_to_mask(k3).tolist() == [[[True, True]]]
    with pytest.raises(ValueError, match="logits"):
        metrics.probabilities_to_mask(torch.zeros(2, 3, 4))


def test_batch_dice_matches_image_metrics():
    target = torch.from_numpy(np.stack([square(10, 10), square(30, 30), np.zeros((64, 64), bool)]))
    pred = torch.from_numpy(np.stack([square(12, 12), np.zeros((64, 64), bool), np.zeros((64, 64), bool)]))
    logits = torch.where(pred, 5.0, -5.0)[:, None]  # (3, 1, 64, 64), K = 1
    mask = target[:, None].float()  # (3, 1, 64, 64)
    rows = metrics.batch_image_metrics(logits, mask)
    assert len(rows) == 3 and rows[1]["dice"] == 0.0 and rows[2]["dice"] == 1.0
    assert metrics.batch_dice(logits, mask) == pytest.approx(np.mean([r["dice"] for r in rows]))
