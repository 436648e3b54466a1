"""Paired tests (stats.py): the sign-flip p-value against exact enumeration, the bootstrap interval against
its definition, seeds averaged image by image, and the verdict in words."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from banet_lite import stats


def exact_sign_flip_p(d: np.ndarray) -> float:
    """Every one of the 2^n sign patterns: the share whose |mean| reaches the observed one."""
    observed = abs(d.mean())
    means = [abs(np.dot(signs, d)) / d.size for signs in itertools.product((-1, 1), repeat=d.size)]
    return float(np.mean(np.array(means) >= observed - 1e-12))


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_sign_flip_p_value_matches_exact_enumeration(shift):
    d = np.random.default_rng(1).normal(shift, 1.0, 12)
    approx = stats.sign_flip_p(d, n_resamples=20_000, seed=0)
    assert approx == pytest.approx(exact_sign_flip_p(d), abs=0.01)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(2)
    small, large = rng.normal(0.1, 1.0, 30), rng.normal(0.1, 1.0, 3000)
    lo_s, hi_s = stats.bootstrap_interval(small)
    lo_l, hi_l = stats.bootstrap_interval(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < 0.2 * (hi_s - lo_s)  # width falls as 1 / sqrt(n): sqrt(100) = 10
    # the percentile interval of the mean is close to mean +- 1.96 standard errors for a normal sample
    se = large.std(ddof=1) / np.sqrt(large.size)
    assert lo_l == pytest.approx(large.mean() - 1.96 * se, abs=0.2 * se)


def test_a_verdict_reads_any_p_value_raw_or_holm_adjusted():
    """The words of a verdict come from the difference's sign and the p-value given: a Holm-adjusted p
    that reaches ALPHA undecides a difference the raw p had called."""
    assert stats.verdict(-0.032, 0.015, "full", "switched off") == "switched off better"
    assert stats.verdict(-0.032, 0.015, "full", "switched off", higher_is_better=False) == "full better"
    assert stats.verdict(0.03, stats.ALPHA) == "no difference detected"  # p must be below ALPHA
    raw, adjusted = 0.02, stats.holm([0.02, 0.5, 0.9])[0]
    assert stats.verdict(0.01, raw) == "A better" and stats.verdict(0.01, adjusted) == "no difference detected"


def test_paired_test_averages_seeds_image_by_image_and_decides():
    rng = np.random.default_rng(3)
    easy = rng.uniform(0.5, 0.95, 200)  # what the images share: an easy image is easy for both
    a = easy + 0.02 + rng.normal(0, 0.01, (3, 200))  # 3 seeds of A, 0.02 better everywhere
    b = easy + rng.normal(0, 0.01, (2, 200))  # 2 seeds of B
    result = stats.paired_test(a, b)
    assert result.seeds == (3, 2) and result.n_images == 200
    assert result.difference == pytest.approx((a.mean(0) - b.mean(0)).mean())
    assert result.decided and result.low > 0 and result.verdict("A", "B") == "A better"
    assert result.verdict("A", "B", higher_is_better=False) == "B better"  # e.g. HD95
    line = result.summary("weighted", "unweighted")
    assert line.startswith("weighted better: weighted - unweighted = +0.020") and "p < 0.001" in line


def test_no_difference_reports_the_interval_it_could_not_exclude():
    rng = np.random.default_rng(4)
    easy = rng.uniform(0.5, 0.95, 100)
    result = stats.paired_test(easy + rng.normal(0, 0.02, 100), easy + rng.normal(0, 0.02, 100))
    assert not result.decided and result.low < 0 < result.high
    assert result.summary().startswith("no difference detected: A - B = ")


def test_unpaired_inputs_and_nan_images():
    with pytest.raises(ValueError, match="same images"):
        stats.paired_test(np.zeros(5), np.zeros(6))
    a, b = np.array([0.9, np.nan, 0.8, 0.7]), np.array([0.8, 0.5, 0.7, 0.6])
    assert stats.paired_test(a, b).n_images == 3  # the NaN image is left out


def test_holm_adjusts_upward_and_keeps_order():
    p = [0.01, 0.04, 0.03, 0.5]
    adjusted = stats.holm(p)
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert all(q >= raw for q, raw in zip(adjusted, p))


def test_aligned_scores_pairs_images_by_stem():
    def record(seed, scores):
        return {"variant": "v", "seed": seed, "per_image": {"stem": list(scores), "dice": list(scores.values())}}

    a = [record(0, {"x": 0.9, "y": 0.8, "z": 0.1}), record(1, {"y": 0.7, "x": 1.0, "z": 0.2})]
    b = [record(0, {"z": 0.3, "x": 0.5, "y": 0.6})]
    sa, sb = stats.aligned_scores(a, b)
    np.testing.assert_allclose(sa, [[0.9, 0.8, 0.1], [1.0, 0.7, 0.2]])  # stems x, y, z
    np.testing.assert_allclose(sb, [[0.5, 0.6, 0.3]])
    with pytest.raises(ValueError, match="no 'cases' scores"):
        stats.aligned_scores(a, b, key="cases")
