"""Paired comparisons: is variant A better than variant B on the same test images, or is it noise?

Two variants scored on the same n test images, each trained with one or more seeds, give per-image
scores a[s, i] and b[t, i] (seed s or t, image i). The seeds are noise in training, not new images,
so they are averaged first, image by image:

    d_i = mean_s a[s, i] - mean_t b[t, i]          one difference per test image
    d   = mean_i d_i                               the effect: how much better A is, on average

Two ways to ask whether d could be noise, both over images (the n images are the sample):

  sign-flip permutation   under "no difference", each d_i was as likely to come out as -d_i; flip
                          the signs at random many times and count how often the mean is at least as
                          far from 0 as d (two-sided): that share is the p-value.
  paired bootstrap        draw n images with replacement many times and take the mean of their d_i
                          each time; the middle 95% of those means is an interval for d.

A p-value below 0.05 (the interval excludes 0) says "A better" or "B better"; otherwise the interval
says how large a difference the test could have missed: "no difference detected" is not "equal".
Pairing removes what the images share (an easy image is easy for both variants), so it detects far
smaller differences than comparing two means of seeds.

    result = paired_test(a, b)                 # (seeds, images) arrays, or (images,)
    print(result.summary("weighted", "unweighted"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05  # the level at which a difference is called


@dataclass(frozen=True)
class PairedResult:
    """The outcome of `paired_test`: the mean difference A - B over images, its 95% bootstrap
    interval, the sign-flip p-value, and how many images and seeds went in."""

    difference: float
    low: float
    high: float
    p_value: float
    n_images: int
    seeds: tuple[int, int]

    @property
    def decided(self) -> bool:
        return self.p_value < ALPHA

    def verdict(self, a: str = "A", b: str = "B", higher_is_better: bool = True) -> str:
        """"A better", "B better" or "no difference detected", in words."""
        return verdict(self.difference, self.p_value, a, b, higher_is_better)

    def summary(self, a: str = "A", b: str = "B", higher_is_better: bool = True,
                digits: int = 3) -> str:
        """One line: the verdict, the difference with its interval, the p-value and the sample."""
        f = f"{{:+.{digits}f}}"
        return (f"{self.verdict(a, b, higher_is_better)}: {a} - {b} = {f.format(self.difference)} "
                f"(95% interval {f.format(self.low)} to {f.format(self.high)}; "
                f"{format_p(self.p_value)}; {self.n_images} images, "
                f"{self.seeds[0]} + {self.seeds[1]} seeds)")


def verdict(difference: float, p_value: float, a: str = "A", b: str = "B",
            higher_is_better: bool = True) -> str:
    """A difference A - B and its p-value (raw, or Holm-adjusted by `holm`) in words: "A better",
    "B better", or "no difference detected" where p >= ALPHA."""
    if p_value >= ALPHA:
        return "no difference detected"
    a_ahead = (difference > 0) == higher_is_better
    return f"{a if a_ahead else b} better"


def format_p(p: float) -> str:
    """'p = 0.031' or 'p < 0.001': two significant digits, and no false precision below 0.001."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def seed_mean(scores) -> np.ndarray:
    """(seeds, images) or (images,) scores -> (images,): the mean over seeds, image by image."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        return s
    if s.ndim != 2:
        raise ValueError("stats.py: scores must be (seeds, images) or (images,), "
                         f"got shape {s.shape}")
    return s.mean(axis=0)


def sign_flip_p(d: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value of mean(d) = 0, with the observed signs counted once:
    (1 + #{|mean of flipped d| >= |mean d|}) / (1 + n_resamples)."""
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(n_resamples, d.size))  # (R, n)
    flipped = np.abs(signs @ d) / d.size  # (R,) |mean| of each flipped sample
    observed = abs(d.mean())
    return float((1 + np.count_nonzero(flipped >= observed - 1e-12)) / (1 + n_resamples))


def bootstrap_interval(d: np.ndarray, n_resamples: int = 10_000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(d): images drawn with replacement."""
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)  # (R,)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_test(a, b, n_resamples: int = 10_000, seed: int = 0) -> PairedResult:
    """Compare variant A with variant B on the same test images (`a`, `b`: (seeds, images) or
    (images,), images in the same order). Images where either score is NaN are left out."""
    a_seeds = 1 if np.ndim(a) == 1 else np.shape(a)[0]
    b_seeds = 1 if np.ndim(b) == 1 else np.shape(b)[0]
    a, b = seed_mean(a), seed_mean(b)
    if a.shape != b.shape:
        raise ValueError(f"stats.py: paired scores need the same images: {a.size} vs {b.size}")
    d = a - b  # (images,) one difference per image
    d = d[np.isfinite(d)]
    if d.size < 2:
        raise ValueError("stats.py: a paired test needs at least 2 images "
                         f"with scores, got {d.size}")
    low, high = bootstrap_interval(d, n_resamples, seed)
    return PairedResult(float(d.mean()), low, high, sign_flip_p(d, n_resamples, seed), int(d.size),
                        (a_seeds, b_seeds))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: p-values that can be read at ALPHA together, however many tests
    a table holds (each one is at least its raw p-value)."""
    order = np.argsort(p_values)
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[k]))
        adjusted[k] = running
    return adjusted


def aligned_scores(records_a: Sequence[dict], records_b: Sequence[dict], metric: str = "dice",
                   key: str = "per_image") -> tuple[np.ndarray, np.ndarray]:
    """(seeds, images) score arrays of two variants from benchmark records (`benchmarks/quality.py`:
    each record's `per_image` holds `stem` and one list per metric), on the images both were scored
    on, in one order. `key="cases"` reads the synthetic case-by-case test set instead."""
    def table(records):
        if not records:
            raise ValueError("stats.py: no records to compare")
        rows = []
        for r in records:
            if key not in r:
                raise ValueError(f"stats.py: a record of {r.get('variant')!r} "
                                 f"(seed {r.get('seed')}) has no {key!r} scores; "
                                 "rerun it with benchmarks/quality.py")
            rows.append(dict(zip(r[key]["stem"], r[key][metric])))
        return rows

    rows_a, rows_b = table(records_a), table(records_b)
    stems = sorted(set.intersection(*(set(r) for r in rows_a + rows_b)))
    if not stems:
        raise ValueError("stats.py: the two variants share no scored image")
    return (np.array([[r[s] for s in stems] for r in rows_a], dtype=np.float64),
            np.array([[r[s] for s in stems] for r in rows_b], dtype=np.float64))
