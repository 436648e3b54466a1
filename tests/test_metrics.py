"""Metrics: hand-computed counts, each formula, the empty-mask rules, HD95, boundary F, summaries."""

import math

import numpy as np
import pytest
import torch

import banet_lite as bl
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


# ---------------------------------------------------------------------------------------------------------
# One Dice rule everywhere, and the boundary metrics against an independent computation (scipy)
# ---------------------------------------------------------------------------------------------------------


def test_one_empty_mask_rule_for_batches_and_images():
    """Both empty -> DI = JA = 1; empty prediction on a lesion -> 0: per image and per batch alike."""
    empty, lesion = np.zeros((8, 8), bool), square(2, 2, size=4, shape=(8, 8))
    assert metrics.image_metrics(empty, empty)["dice"] == metrics.image_metrics(empty, empty)["jaccard"] == 1.0
    assert metrics.image_metrics(empty, lesion)["dice"] == metrics.image_metrics(empty, lesion)["jaccard"] == 0.0
    logits = torch.full((2, 1, 8, 8), -5.0)  # predicts nothing, for both images
    mask = torch.from_numpy(np.stack([empty, lesion])).float()[:, None]
    assert metrics.batch_scores(logits, mask) == [{"dice": 1.0, "jaccard": 1.0}, {"dice": 0.0, "jaccard": 0.0}]
    assert metrics.batch_dice(logits, mask) == 0.5


def random_shape(rng, size=48):
    """A blob or two of smooth random noise, thresholded: irregular, sometimes with holes."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=rng.uniform(2, 5))
    return field > np.quantile(field, rng.uniform(0.5, 0.85))


def scipy_boundary_distances(pred, target):
    """Boundary = mask minus its 4-neighbour erosion (outside = background); distances by scipy's EDT."""
    from scipy import ndimage

    cross = ndimage.generate_binary_structure(2, 1)
    bp = pred & ~ndimage.binary_erosion(pred, cross, border_value=0)
    bt = target & ~ndimage.binary_erosion(target, cross, border_value=0)
    d_to_t = ndimage.distance_transform_edt(~bt)  # distance of every pixel to the target boundary
    d_to_p = ndimage.distance_transform_edt(~bp)
    return d_to_t[bp], d_to_p[bt]  # pred -> target, target -> pred


@pytest.mark.parametrize("seed", range(6))
def test_hd95_and_boundary_f_match_scipy_on_random_shapes(seed):
    pytest.importorskip("scipy")
    rng = np.random.default_rng(seed)
    pred, target = random_shape(rng), random_shape(rng)
    p2t, t2p = scipy_boundary_distances(pred, target)
    pooled = np.concatenate([p2t, t2p])  # both directions in one pool (MedPy's hd95)
    assert metrics.hd95(pred, target) == pytest.approx(np.percentile(pooled, 95), abs=1e-9)
    assert metrics.hd95(pred, target, spacing=0.5) == pytest.approx(0.5 * np.percentile(pooled, 95), abs=1e-9)
    for tol in (1, 2, 3.5):
        precision, recall = np.mean(p2t <= tol), np.mean(t2p <= tol)
        expected = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        assert metrics.boundary_f_score(pred, target, tolerance=tol) == pytest.approx(expected, abs=1e-12)


def test_hd95_pools_both_directions_and_takes_the_95th_percentile():
    """A large prediction overlapping a small target off-centre: the two directions have different
    distances and different pixel counts, so pooling, the maximum, the larger of the two one-way
    percentiles and another percentile all give different numbers."""
    pytest.importorskip("scipy")
    pred, target = square(10, 10, size=30), square(16, 14, size=12)
    p2t, t2p = scipy_boundary_distances(pred, target)
    pooled = np.percentile(np.concatenate([p2t, t2p]), 95)
    wrong = {"max": max(p2t.max(), t2p.max()), "max of each p95": max(np.percentile(p2t, 95), np.percentile(t2p, 95)),
             "one way": np.percentile(p2t, 95), "p90": np.percentile(np.concatenate([p2t, t2p]), 90)}
    got = metrics.hd95(pred, target)
    assert got == pytest.approx(pooled)
    for name, value in wrong.items():
        assert abs(got - value) > 1e-6, f"hd95 would also pass as {name}: the test shape does not tell them apart"


def test_band_f_score_of_side_boundary_bands():
    target = np.zeros((20, 20), bool)
    target[5:15, 5] = True
    same = bl.metrics.band_f_score(target, target)
    shifted = bl.metrics.band_f_score(np.roll(target, 2, axis=1), target)  # 2 px off: within tolerance
    far = bl.metrics.band_f_score(np.roll(target, 6, axis=1), target)
    half = target.copy()
    half[10:15, 5] = False  # precision 1, recall 7/10 (3 removed pixels lie within 2 px of the kept ones)
    assert same == shifted == 1.0 and far == 0.0
    assert bl.metrics.band_f_score(half, target) == pytest.approx(2 * 1 * 0.7 / 1.7)
    assert bl.metrics.band_f_score(np.zeros_like(target), np.zeros_like(target)) == 1.0
    assert bl.metrics.band_f_score(np.zeros_like(target), target) == 0.0
    # per stage, from logits: a head that says "boundary" exactly on boundary_target scores 1, a silent one 0
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    band = bl.boundary_target(mask)
    perfect = torch.cat([-band, band], 1) * 10  # (1, 2, 16, 16) logits: class 1 on the band
    silent = torch.cat([torch.ones_like(band), -torch.ones_like(band)], 1)
    assert bl.metrics.side_boundary_f_scores([perfect, silent], mask) == [1.0, 0.0]


def test_the_training_dice_and_the_evaluation_dice_are_one_rule():
    """step.dice_sum (on the device, no host read) and metrics.dice (per image, on the host) agree, empty
    predictions and empty targets included: both go through metrics.batch_counts."""
    import torch

    from banet_lite.metrics import batch_confusion, dice
    from banet_lite.training.step import dice_sum

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 2, 16, 16, generator=g)
    logits[0, 1] = -10  # image 0: an empty prediction
    masks = (torch.rand(6, 1, 16, 16, generator=g) > 0.6).float()
    masks[1] = 0  # image 1: an empty target
    logits[2, 1], masks[2] = -10, 0  # image 2: both empty (Dice 1)
    expected = sum(dice(*counts) for counts in batch_confusion(logits, masks))
    assert abs(dice_sum(logits, masks).item() - expected) < 1e-9
