"""A folder checked before any work: the same checks for `python -m banet_lite check-data`, training
and evaluation, so that a bad folder costs one line, not an epoch, and never a silent wrong result.

    validate_pairs(pairs)   every file decodes, every image has a mask of its size, every mask is
                            binary ({0, 1} or {0, 255}; a label mask needs `foreground`): the first
                            problem is one DatasetError line naming the file. Returns each mask's
                            `MaskStats`.
    check_splits(splits)    no empty training or validation split, no split whose masks are all
                            empty or all full (nothing to learn, a Dice that means nothing)
    load_splits(root)       find, validate and split: the one way training, evaluation and notebooks
                            get splits
    check_data(root)        all of it as a report (`DataReport`) that lists every problem, not only
                            the first

Each file is decoded once (images at 1/8 scale for JPEGs: every byte is still read; masks in full,
for their values): a few ms per pair; `check-data` on the 1000 pairs of Kvasir-SEG took 6 s on
a busy 2-core machine.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .folders import (
    SPLITS,
    Pair,
    _decoded_size,
    find_pairs,
    mask_values,
    read_split_csv,
    split_pairs,
)

LOSSY = (".jpg", ".jpeg")  # masks saved as JPEG carry compression noise around 0 and 255
MID_GRAY_SHARE = 0.5  # a JPEG mask with more of its non-background pixels mid-gray is not binary


@dataclass(frozen=True)
class MaskStats:
    """One pair as the checks see it: image size, the mask's values and how many pixels hold each,
    the foreground share after binarisation, and what is wrong with the mask values
    (None: nothing)."""

    stem: str
    size: tuple[int, int]  # (width, height)
    values: tuple
    counts: tuple
    foreground: float  # share of lesion pixels, 0 (empty mask) .. 1 (full)
    problem: str | None = None


def _histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, pixel counts): a bincount for 8-bit masks (fast), np.unique for
    the rest."""
    if values.dtype == np.uint8:
        counts = np.bincount(values.ravel(), minlength=256)
        present = np.flatnonzero(counts)
        return present, counts[present]
    return np.unique(values, return_counts=True)


def describe_values(values: Sequence) -> str:
    """{0, 1, 2}, or {0, 1, 2, ..., 255} (37 values) when there are many."""
    shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    if len(shown) <= 8:
        return "{" + ", ".join(shown) + "}"
    return "{" + ", ".join(shown[:3]) + f", ..., {shown[-1]}}} ({len(shown)} values)"


def mask_problem(values: np.ndarray, counts: np.ndarray, lossy: bool = False) -> str | None:
    """Why a mask with these distinct `values` (sorted) and pixel `counts` is not binary, or None.

    Binary: the values lie in {0, 1} or in {0, 255} (16-bit: {0, 65535}). A JPEG (`lossy`) may also
    hold compression noise near both ends, as long as at most half of its non-background pixels are
    mid-gray (32..223). Anything else, e.g. labels {0, 1, 2} or a lesion painted 100, would be
    binarised wrongly (everything above 127 is lesion): it needs `foreground`, the one value that
    marks the lesion.
    """
    values, counts = np.asarray(values), np.asarray(counts)
    present = {float(v) for v in values}
    top = 255 if values.max() <= 255 else 65535
    if present <= {0.0, 1.0} or present <= {0.0, float(top)}:
        return None
    hint = "; give the value that marks the lesion: --foreground N (foreground=N in Python)"
    if lossy and values.max() > 1:
        low, high = values <= top // 8, values >= top - top // 8
        non_background = counts[~low].sum()
        mid = counts[~low & ~high].sum()
        if high.any() and mid <= MID_GRAY_SHARE * non_background:
            return None  # JPEG noise around 0 and 255
        return (f"mask values {describe_values(values.tolist())} are not binary ({{0, 1}} or "
                f"{{0, 255}}), even allowing for JPEG noise ({mid / max(non_background, 1):.0%} "
                f"of its non-background pixels are mid-gray){hint}")
    return (f"mask values {describe_values(values.tolist())} are not binary "
            f"({{0, 1}} or {{0, 255}}){hint}")


def _foreground_share(values: np.ndarray, counts: np.ndarray, foreground: int | None) -> float:
    """The share of pixels `folders.binarize` makes lesion, from the histogram alone."""
    if foreground is not None:
        lesion = counts[values == foreground].sum()
    else:
        lesion = counts[values > (0.5 if values.max() <= 1 else 127)].sum()
    return float(lesion / counts.sum())


def inspect_pair(pair: Pair, foreground: int | None = None) -> MaskStats:
    """Decode a pair once; DatasetError when a file is missing, does not decode, or the sizes
    differ."""
    if pair.mask is None:
        raise DatasetError(f"{pair.image}: no mask found for this image (stem {pair.stem!r})")
    image_size = _decoded_size(pair.image)
    mask = mask_values(pair.mask)
    mask_size = (mask.shape[1], mask.shape[0])
    if mask_size != image_size:
        raise DatasetError(f"{pair.mask}: mask is {mask_size[0]}x{mask_size[1]} but its image "
                           f"{pair.image.name} is {image_size[0]}x{image_size[1]}")
    values, counts = _histogram(mask)
    problem = (None if foreground is not None
               else mask_problem(values, counts, pair.mask.suffix.lower() in LOSSY))
    return MaskStats(pair.stem, image_size, tuple(values.tolist()), tuple(counts.tolist()),
                     _foreground_share(values, counts, foreground),
                     problem and f"{pair.mask}: {problem}")


def _no_pairs(root) -> DatasetError:
    return DatasetError(f"{root}: no image/mask pairs found; expected images/ + masks/ with "
                        "matching file stems (or a Kvasir-SEG, ISIC 2018 Task 1 or PH2 folder)")


def validate_pairs(pairs: Sequence[Pair], root: str | Path | None = None,
                   foreground: int | None = None) -> dict[str, MaskStats]:
    """Check every pair up front; raise DatasetError naming the first bad file. Returns
    {stem: MaskStats}.

    Checks: at least one pair; every image has a mask; every file decodes completely (truncated and
    non-image files fail); each mask has the size of its image; each mask is binary
    (`mask_problem`), unless `foreground` names the lesion's value.
    """
    pairs = list(pairs)
    if not pairs:
        raise _no_pairs(root)
    for pair in pairs:  # cheap checks first
        if pair.mask is None:
            raise DatasetError(f"{pair.image}: no mask found for this image (stem {pair.stem!r})")
    stats = {}
    for pair in pairs:
        stats[pair.stem] = inspect_pair(pair, foreground)
        if stats[pair.stem].problem:
            raise DatasetError(stats[pair.stem].problem)
    return stats


def _val_fix(n_train: int) -> str:
    """What makes an empty validation split non-empty."""
    if n_train < 2:
        return "add images"
    fraction = math.ceil(100 / n_train) / 100  # the smallest that rounds to one image
    return (f"add 'val' rows to split.csv, or raise --val-fraction to {fraction:g} or more "
            f"(val_fraction={fraction:g} in Python)" if fraction < 1 else "add images")


def split_problems(splits: dict[str, list[Pair]], stats: dict[str, MaskStats], root,
                   need: Sequence[str] = ("train", "val")) -> list[str]:
    """What stops training or evaluation on `splits` (the splits in `need` are used): an empty
    split, fewer than 2 training images (BatchNorm needs two per batch), a split whose masks are all
    empty or all full."""
    problems = []
    for name in need:
        pairs = splits.get(name, [])
        if not pairs:
            if name == "val":
                problems.append(f"{root}: the validation split is empty "
                                f"({len(splits.get('train', []))} training images); "
                                f"{_val_fix(len(splits.get('train', [])))}")
            else:
                problems.append(f"{root}: the {name} split is empty" + (
                    " (split.csv has no rows for it)" if read_split_csv(root) is not None else ""))
            continue
        if name == "train" and len(pairs) < 2:
            problems.append(f"{root}: 1 training image; training needs "
                            "at least 2 (BatchNorm needs two per batch)")
        shares = [stats[p.stem].foreground for p in pairs]
        for what, value in (("empty", 0.0), ("full (lesion everywhere)", 1.0)):
            if all(s == value for s in shares):
                problems.append(f"{root}: every mask of the {name} split ({len(pairs)}) is {what}: "
                                "nothing to learn or score; check the masks' values "
                                "(python -m banet_lite check-data) or --foreground")
    return problems


def check_splits(splits: dict[str, list[Pair]], stats: dict[str, MaskStats], root,
                 need: Sequence[str] = ("train", "val")) -> None:
    """Raise DatasetError with the first of `split_problems`."""
    problems = split_problems(splits, stats, root, need)
    if problems:
        raise DatasetError(problems[0])


def load_splits(root: str | Path, seed: int = 0, val_fraction: float = 0.1, validate: bool = True,
                foreground: int | None = None,
                need: Sequence[str] = ("train", "val")) -> dict[str, list[Pair]]:
    """{"train", "val", "test"} pairs of the folder dataset at `root`: split.csv's split when there
    is one, else the seeded one. Training, evaluation and the notebooks all get their splits here,
    so a checkpoint's test split is the one its run never saw. `validate` checks every pair first
    (`validate_pairs`) and then the splits in `need` (`check_splits`)."""
    root = Path(root)
    pairs = find_pairs(root)
    stats = validate_pairs(pairs, root, foreground) if validate else None
    splits = split_pairs(pairs, read_split_csv(root), seed=seed, val_fraction=val_fraction)
    if validate:
        check_splits(splits, stats, root, need)
    return splits


@dataclass
class DataReport:
    """What `check_data` found: counts, sizes, mask values, empty and full masks, splits, and every
    problem."""

    root: Path
    n_pairs: int = 0
    sizes: Counter = field(default_factory=Counter)
    value_sets: Counter = field(default_factory=Counter)
    empty: list[str] = field(default_factory=list)
    full: list[str] = field(default_factory=list)
    split_source: str = ""
    split_sizes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as printed by `python -m banet_lite check-data`."""
        out = [f"{self.root}: {self.n_pairs} image/mask pairs"]
        if self.sizes:
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.sizes.most_common(3))
            more = f", and {len(self.sizes) - 3} other sizes" if len(self.sizes) > 3 else ""
            out.append(f"sizes: {common}{more}")
        if self.value_sets:
            out.append("mask values: "
                       + "; ".join(f"{v} in {n}" for v, n in self.value_sets.most_common(4))
                       + (f"; and {len(self.value_sets) - 4} other sets"
                          if len(self.value_sets) > 4 else ""))
        for what, stems in (("empty", self.empty), ("full", self.full)):
            if stems:
                out.append(f"{what} masks: {len(stems)} "
                           f"({', '.join(stems[:5])}{', ...' if len(stems) > 5 else ''})")
        if self.split_sizes:
            out.append(f"split ({self.split_source}): "
                       + ", ".join(f"{k} {n}" for k, n in self.split_sizes.items()))
        out += [f"problem: {p}" for p in self.problems]
        out.append("ok" if not self.problems else f"{len(self.problems)} problem(s)")
        return out


def check_data(root: str | Path, foreground: int | None = None, seed: int = 0,
               val_fraction: float = 0.1, need: Sequence[str] = SPLITS) -> DataReport:
    """Check a folder as training and evaluation will, and report everything (problems included)
    instead of stopping at the first: pairs, sizes, mask value sets, empty and full masks, duplicate
    stems (find_pairs refuses them), split.csv's consistency and each split's size."""
    root = Path(root)
    report = DataReport(root)
    pairs = find_pairs(root)  # a missing folder, duplicate stems: one line at once
    if not pairs:
        raise _no_pairs(root)
    report.n_pairs, stats = len(pairs), {}
    for pair in pairs:
        try:
            s = stats[pair.stem] = inspect_pair(pair, foreground)
        except DatasetError as exc:
            report.problems.append(str(exc))
            continue
        report.sizes[s.size] += 1
        report.value_sets[describe_values(s.values)] += 1
        if s.problem:
            report.problems.append(s.problem)
        (report.empty if s.foreground == 0 else report.full if s.foreground == 1
         else []).append(s.stem)
    try:
        split_map = read_split_csv(root, [p.stem for p in pairs])
        splits = split_pairs(pairs, split_map, seed=seed, val_fraction=val_fraction)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    report.split_source = ("split.csv" if split_map is not None
                           else f"seeded draw: seed {seed}, val fraction "
                                f"{val_fraction:g}, test fraction 0.2")
    report.split_sizes = {name: len(splits[name]) for name in SPLITS}
    if len(stats) == len(pairs):  # every pair read: the splits can be judged
        report.problems += split_problems(splits, stats, root,
                                          [n for n in need if n != "test" or splits[n]])
    return report
