"""Synthetic lesions: the embedded default dataset, painted with numpy in a few milliseconds.

`synthetic_sample(seed)` paints a low-contrast, textured blob with a fuzzy outline (a skin lesion
or a colon polyp) under uneven light, with sensor noise, hairs and specular spots. Each sample is
one of five *cases* (`CASES`): an easy lesion, or one where the outline is what decides:

    easy       the base lesion
    faint_rim  along one stretch of the rim (an arc of 90-160 degrees) the lesion fades into the
               background: the outline there must be inferred from the rest of the shape
    decoy      a patch outside the lesion with the lesion's texture and 70% of its colour, but no
               outline of its own: texture alone would take it for lesion
    occluded   hairs drawn across the rim and specular highlights on it break the outline up
    irregular  a ragged outline (harmonics up to the 11th), with lobes a smooth blob would cut off

The case is drawn from the seed (`synthetic_case`), or asked for with `case=`; the base lesion is
the same whatever the case, so `synthetic_sample(s, case=c)` for each c shows one lesion five ways.
Only `irregular` changes the mask. `write_synthetic_dataset` writes n samples as an
`images/ + masks/ + split.csv` folder that the folder code reads like any real dataset;
`write_synthetic_cases` writes n held-out lesions, each painted in every case, for a comparison case
by case.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import atomic_write, save_png

#
# A sample is painted in float RGB in [0, 1], channel-first, layered like a photograph:
#
#   background colour, blended toward the lesion colour by a soft alpha (the fuzzy boundary)
#   -> hairs (dark curves) -> x texture (smooth noise) x uneven illumination -> specular spots
#   -> sensor noise
#
# The lesion outline is a star-shaped radial function
# r(theta) = r0 (1 + sum_k a_k cos(k theta + phi_k)) plus a smooth noise wobble. The mask is exactly
# where the signed distance d = r(theta) - rho is positive; the image uses alpha = sigmoid(d / w),
# so the true boundary is the 50% level of a blurred outline. `difficulty` in [0, 1] lowers the
# contrast, widens the outline's blur and adds noise.

# (background RGB, lesion target RGB) for each look; the lesion colour is pulled from the background
# toward its target by the contrast, so the two stay close.
_PALETTES = {
    "skin": ((0.86, 0.66, 0.56), (0.42, 0.26, 0.18)),   # dermoscopy: beige-pink skin, brown lesion
    "colon": ((0.80, 0.40, 0.34), (0.93, 0.62, 0.52)),  # colonoscopy: red mucosa, paler polyp
}


# case -> probability of a sample drawing it (`synthetic_case`)
CASES: dict[str, float] = {"easy": 0.3, "faint_rim": 0.2, "decoy": 0.2, "occluded": 0.15,
                           "irregular": 0.15}


def synthetic_case(seed: int) -> str:
    """The case that `synthetic_sample(seed)` paints when no `case` is given."""
    # its own stream: the base lesion's draws stay the same
    u = np.random.default_rng([seed, 7]).random()
    for name, p in CASES.items():
        if u < p:
            return name
        u -= p
    return name


@functools.lru_cache(maxsize=64)
def _lerp_table(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `size` pixels: the grid cell to its left and a smoothstep weight toward the next
    one."""
    pos = np.linspace(0.0, cells, size)
    i0 = np.minimum(pos.astype(np.int64), cells - 1)
    f = pos - i0
    f = f * f * (3.0 - 2.0 * f)  # smoothstep hides the grid lines
    return i0, f.astype(np.float32)


def _fractal_noise(rng: np.random.Generator, size: int, cells: Sequence[int]) -> np.ndarray:
    """Smooth random field in [-1, 1], (size, size): value-noise octaves, each half the previous
    amplitude.

    One octave is a random (c+1) x (c+1) grid interpolated up to (size, size), rows then columns.
    (Gathers, not matrix products: BLAS thread start-up costs more than the whole sample.)
    """
    out = np.zeros((size, size), np.float32)
    amp = 1.0
    for c in cells:
        i0, f = _lerp_table(size, c)
        grid = rng.uniform(-1.0, 1.0, (c + 1, c + 1)).astype(np.float32)
        rows = (grid[i0] + f[:, None] * (grid[i0 + 1] - grid[i0])).T  # (c+1, size)
        out += amp * (rows[i0] + f[:, None] * (rows[i0 + 1] - rows[i0])).T  # (size, size)
        amp *= 0.5
    return out / (2.0 - 2.0 * amp)  # the amplitudes sum to 2 - 2 * amp


def _blur3(a: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur of a 2-D array (edges replicated)."""
    p = np.pad(a, 1, mode="edge")
    a = 0.25 * p[:-2, 1:-1] + 0.5 * p[1:-1, 1:-1] + 0.25 * p[2:, 1:-1]
    p = np.pad(a, 1, mode="edge")
    return 0.25 * p[1:-1, :-2] + 0.5 * p[1:-1, 1:-1] + 0.25 * p[1:-1, 2:]


def _hair_map(rng: np.random.Generator, size: int,
              through: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """1-4 thin dark curves (quadratic Bezier), anti-aliased, as a coverage map in [0, 1]. With
    `through` (x, y) points: one curve per point instead, each bent through its point."""
    cover = np.zeros((size, size), np.float32)
    t = np.linspace(0.0, 1.0, 3 * size, dtype=np.float32)[:, None]  # (T, 1)
    width = max(1, round(size / 160))
    n = len(through) if through else int(rng.integers(1, 5))
    for k in range(n):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * size
        if through:  # the curve's midpoint (t = 1/2) is (p0 + 2 p1 + p2) / 4: solve for p1
            p1 = 2.0 * np.asarray(through[k], np.float64) - 0.5 * (p0 + p2)
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # (T, 2) as (x, y)
        # drop points off the image
        pts = pts[((pts >= 0) & (pts < size)).all(axis=1)].astype(np.int64)
        for dy in range(width):
            cover[np.minimum(pts[:, 1] + dy, size - 1), pts[:, 0]] = 1.0
    return np.clip(_blur3(cover) * 1.6, 0.0, 1.0)


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A Python float keeps the array maths in float32."""
    return float(rng.uniform(lo, hi))


@dataclass
class _Lesion:
    """What the painting steps share: the coordinates, the outline and where the lesion shows."""

    size: int
    y: np.ndarray  # (H, 1) pixel rows
    x: np.ndarray  # (1, W) pixel columns
    cy: int
    cx: int
    r0: float  # base radius in pixels
    theta: np.ndarray  # (H, W) angle around the centre
    d: np.ndarray  # (H, W) signed distance-like, > 0 inside
    mask: np.ndarray  # (H, W) uint8
    alpha: np.ndarray | None = None  # (H, W) how much the lesion shows
    decoy: np.ndarray | None = None  # (H, W) the decoy patch (zero outside the decoy case)


def _outline(rng, extra, size: int, case: str) -> _Lesion:
    """The lesion's outline: an ellipse with low Fourier harmonics (higher ones in the irregular
    case) and a ragged border. The centre sits on a pixel, so that pixel has rho = 0 and is always
    inside."""
    y = np.arange(size, dtype=np.float32)[:, None]  # y down (H, 1), x right (1, W)
    x = np.arange(size, dtype=np.float32)[None, :]
    cy, cx = (int(rng.integers(round(0.25 * size), round(0.75 * size) + 1)) for _ in range(2))
    r0 = size * _uniform(rng, 0.10, 0.30)
    aspect, tilt = _uniform(rng, 0.6, 1.0), _uniform(rng, 0.0, math.pi)
    u = (x - cx) * math.cos(tilt) + (y - cy) * math.sin(tilt)  # rotate, then squash v: an ellipse
    v = ((y - cy) * math.cos(tilt) - (x - cx) * math.sin(tilt)) / aspect
    rho, theta = np.hypot(u, v), np.arctan2(v, u)  # (H, W)
    radius = np.ones_like(theta)
    for k in range(2, 6):  # a few low Fourier harmonics: lobes and dents
        radius += _uniform(rng, 0.0, 0.3 / k) * np.cos(k * theta + _uniform(rng, 0.0, 2 * math.pi))
    # higher harmonics: fingers and notches (their amplitudes sum to < 0.35)
    if case == "irregular":
        for k in range(6, 12):
            radius += (_uniform(extra, 0.2 / k, 0.4 / k)
                       * np.cos(k * theta + _uniform(extra, 0.0, 2 * math.pi)))
    d = r0 * radius - rho  # signed distance-like in pixels, > 0 inside, (H, W)
    d += 0.12 * r0 * _fractal_noise(rng, size, (6, 12, 24))  # ragged, irregular border
    return _Lesion(size, y, x, cy, cx, r0, theta, d, (d > 0).astype(np.uint8))


def _visibility(rng, extra, les: _Lesion, difficulty: float, case: str) -> None:
    """Soft alpha: the blurred outline, wider with difficulty; the lesion also fades toward its
    border (thinner pigment, flatter polyp). The faint_rim case fades one arc of the rim; the decoy
    case adds a patch."""
    d, r0, theta = les.d, les.r0, les.theta
    blur = les.size * (0.006 + 0.03 * difficulty) * _uniform(rng, 0.6, 1.4)
    alpha = 0.5 + 0.5 * np.tanh(d / (2.0 * blur))  # = sigmoid(d / blur), without overflow
    alpha *= 0.55 + 0.45 * np.clip(d / (0.5 * r0), 0.0, 1.0)  # (H, W)
    if case == "faint_rim":  # one arc of the rim fades out: near the outline alpha drops to 10%
        centre, half = _uniform(extra, -math.pi, math.pi), _uniform(extra, 0.8, 1.4)
        # 1 on the arc, 0 away, (H, W)
        arc = np.exp(-((np.angle(np.exp(1j * (theta - centre))) / half) ** 2))
        # 1 at (and outside) the outline, 0 deep inside
        rim = 1.0 - np.clip(d / (0.6 * r0), 0.0, 1.0)
        alpha *= (1.0 - 0.9 * arc * rim).astype(np.float32)
    decoy = np.zeros_like(alpha)  # lesion-like texture and most of its colour, outside the lesion
    if case == "decoy":
        size, y, x = les.size, les.y, les.x
        angle, dist = _uniform(extra, 0.0, 2 * math.pi), r0 * _uniform(extra, 1.15, 1.6)
        dy = float(np.clip(les.cy + dist * math.sin(angle), 0.1 * size, 0.9 * size))
        dx = float(np.clip(les.cx + dist * math.cos(angle), 0.1 * size, 0.9 * size))
        r_decoy = r0 * _uniform(extra, 0.45, 0.8)
        # no sharp outline
        soft = 0.5 + 0.5 * np.tanh((r_decoy - np.hypot(y - dy, x - dx)) / (0.25 * r_decoy))
        # (H, W), fading out where the lesion begins
        decoy = (soft * (1.0 - alpha)).astype(np.float32)
    les.alpha, les.decoy = alpha, decoy


def _hairs(rng, extra, les: _Lesion, look: str, case: str, img: np.ndarray) -> list[np.ndarray]:
    """Dark curves, mostly on skin; in the occluded case two or three more, across the rim. Paints
    `img` in place; returns the rim points the occluded case's hairs cross (for its highlights)."""
    dark = np.asarray([0.12, 0.08, 0.06], np.float32).reshape(3, 1, 1)
    if rng.random() < (0.45 if look == "skin" else 0.05):
        hair = _hair_map(rng, les.size) * _uniform(rng, 0.5, 0.85)  # (H, W)
        img += hair * (dark - img)
    if case != "occluded":
        return []
    m = np.pad(les.mask, 1)
    inner = m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    outline = np.argwhere(les.mask & (1 - inner))  # (n, 2) as (y, x): the mask's outline pixels
    # (n,) their direction from the centre
    bearing = np.arctan2(outline[:, 0] - les.cy, outline[:, 1] - les.cx)
    start = _uniform(extra, 0.0, 2 * math.pi)
    rim_points = []  # three outline points about 120 degrees apart, as (x, y)
    for k in range(3):
        gap = np.angle(np.exp(1j * (bearing - start - k * 2 * math.pi / 3)))
        rim_points.append(outline[int(np.abs(gap).argmin())][::-1].astype(np.float64))
    through = [tuple(p) for p in rim_points[: int(extra.integers(2, 4))]]
    hair = _hair_map(extra, les.size, through) * _uniform(extra, 0.6, 0.85)
    img += hair * (dark - img)
    return rim_points


def _shading(rng, les: _Lesion, img: np.ndarray) -> None:
    """One (H, W) factor: texture (smooth value noise; the lesion's is finer and stronger than the
    background's) times uneven illumination (a linear gradient and an off-centre vignette)."""
    size, y, x = les.size, les.y, les.x
    bg_tex = _uniform(rng, 0.06, 0.14) * _fractal_noise(rng, size, (3, 9, 27))  # (H, W)
    les_tex = _uniform(rng, 0.12, 0.25) * _fractal_noise(rng, size, (5, 16, 40))
    gy, gx = _uniform(rng, -0.35, 0.35), _uniform(rng, -0.35, 0.35)
    vy, vx, vig = (_uniform(rng, 0.3, 0.7) * size, _uniform(rng, 0.3, 0.7) * size,
                   _uniform(rng, 0.2, 0.9))
    vignette = vig * ((y - vy) ** 2 + (x - vx) ** 2) / size**2  # (H, W)
    light = 1.0 + gy * (y / size - 0.5) + gx * (x / size - 0.5) - vignette
    texture_mix = np.maximum(les.alpha, les.decoy)  # the decoy carries the lesion's texture in full
    img *= (1.0 + bg_tex + texture_mix * (les_tex - bg_tex)) * np.clip(light, 0.3, 1.5)


def _highlights(rng, extra, les: _Lesion, look: str, rim_points: list, img: np.ndarray) -> None:
    """Small bright spots, mostly in the colon, half of them on the lesion itself; in the occluded
    case also two to four on the rim."""
    size, r0, spots = les.size, les.r0, []
    if rng.random() < (0.55 if look == "colon" else 0.15):
        for _ in range(int(rng.integers(1, 7))):
            if rng.random() < 0.5:
                spots.append((les.cy + _uniform(rng, -0.7, 0.7) * r0,
                              les.cx + _uniform(rng, -0.7, 0.7) * r0,
                              size * _uniform(rng, 0.004, 0.015)))
            else:
                spots.append((_uniform(rng, 0, size), _uniform(rng, 0, size),
                              size * _uniform(rng, 0.004, 0.015)))
    for k in range(int(extra.integers(2, 5)) if rim_points else 0):
        px, py = rim_points[k % len(rim_points)]
        spots.append((py + _uniform(extra, -2, 2), px + _uniform(extra, -2, 2),
                      size * _uniform(extra, 0.012, 0.025)))
    for sy, sx, sigma in spots:
        r = int(3 * sigma) + 1
        y0, y1 = min(max(0, int(sy) - r), size), min(max(0, int(sy) + r + 1), size)
        x0, x1 = min(max(0, int(sx) - r), size), min(max(0, int(sx) + r + 1), size)
        # (h, w)
        g = np.exp(-((les.y[y0:y1] - sy) ** 2 + (les.x[:, x0:x1] - sx) ** 2) / (2 * sigma**2))
        img[:, y0:y1, x0:x1] += g * (1.05 - img[:, y0:y1, x0:x1])


def synthetic_sample(seed: int, size: int = 128, difficulty: float = 0.5,
                     case: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic lesion: `(image uint8 (H, W, 3), mask uint8 (H, W) in {0, 1})`, fixed by
    `seed`.

    `case`: one of `CASES`, or None for the seed's own (`synthetic_case(seed)`).
    The mask is never empty: the lesion's centre lies on a pixel inside the image.
    """
    if size < 8:
        raise ConfigError(f"size: must be at least 8, got {size}")
    if not 0.0 <= difficulty <= 1.0:
        raise ConfigError(f"difficulty: must be in [0, 1], got {difficulty}")
    case = synthetic_case(seed) if case is None else case
    if case not in CASES:
        raise ConfigError(f"case={case!r}: unknown; choose one of {list(CASES)}")
    rng = np.random.default_rng(seed)
    # the case's own draws, so the base lesion stays the same
    extra = np.random.default_rng([seed, 11])

    look = "skin" if rng.random() < 0.5 else "colon"
    bg_rgb, target_rgb = (np.asarray(c, np.float32).reshape(3, 1, 1) for c in _PALETTES[look])
    bg_rgb = np.clip(bg_rgb + rng.normal(0, 0.04, (3, 1, 1)).astype(np.float32), 0.05, 0.95)
    target_rgb = np.clip(target_rgb + rng.normal(0, 0.05, (3, 1, 1)).astype(np.float32), 0.05, 0.95)
    les = _outline(rng, extra, size, case)
    _visibility(rng, extra, les, difficulty, case)

    # Colour: the background pulled toward the lesion colour by alpha. The lesion colour itself is
    # the background moved toward the palette's lesion target by `contrast`, which falls with
    # difficulty. Painted channel-first, (3, H, W), which numpy broadcasts fastest.
    contrast = _uniform(rng, 0.4, 0.75) * (1.2 - 0.8 * difficulty)
    delta = contrast * (target_rgb - bg_rgb)  # (3, 1, 1)
    # but at least this much in one channel: faint, never invisible
    floor = 0.07 - 0.04 * difficulty
    delta *= max(1.0, floor / max(float(np.abs(delta).max()), 1e-6))
    les_rgb = bg_rgb + delta
    img = bg_rgb + (les.alpha + 0.7 * les.decoy) * (les_rgb - bg_rgb)  # (3, H, W)

    rim_points = _hairs(rng, extra, les, look, case, img)
    _shading(rng, les, img)
    _highlights(rng, extra, les, look, rim_points, img)

    # Sensor noise: uniform with standard deviation sigma (a third of the cost of Gaussian draws).
    sigma = 0.012 + 0.035 * difficulty
    img += (rng.random(img.shape, dtype=np.float32) - 0.5) * (sigma * math.sqrt(12.0))
    image = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)  # (H, W, 3)
    return np.ascontiguousarray(image), les.mask


def synthetic_seed(seed: int, i: int) -> int:
    """The `synthetic_sample` seed of item i in a synthetic dataset made with `seed`."""
    return seed * 100_003 + i


def write_synthetic_dataset(
    out: str | Path, n: int, size: int, seed: int = 0, difficulty: float = 0.5,
    test_fraction: float = 0.2
) -> Path:
    """Write `n` synthetic samples as a folder dataset and return `out`.

    Layout: `out/images/synth_0000.png` (RGB), `out/masks/synth_0000.png` (L, 0/255) and
    `out/split.csv` (`stem,split`, a seeded `test_fraction` is "test", the rest "train"). Sample i
    is `synthetic_sample(synthetic_seed(seed, i), size, difficulty)`, the same as `SyntheticLesions`
    item i. Every file is written atomically. `synth_*.png` files left over from an earlier, larger
    run are removed, so the folder always matches its split.csv.
    """
    if n < 1:
        raise ConfigError(f"n: must be at least 1, got {n}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"test_fraction: must be in [0, 1), got {test_fraction}")
    out = Path(out)
    width = max(4, len(str(n - 1)))
    stems = [f"synth_{i:0{width}d}" for i in range(n)]
    keep = set(stems)
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob("synth_*.png"):
            if old.stem not in keep:
                old.unlink()
    for i, stem in enumerate(stems):
        image, mask = synthetic_sample(synthetic_seed(seed, i), size, difficulty)
        save_png(image, out / "images" / f"{stem}.png")
        save_png(mask * 255, out / "masks" / f"{stem}.png")
    test = set(np.random.default_rng(seed).permutation(n)[: round(test_fraction * n)].tolist())
    rows = "".join(f"{stem},{'test' if i in test else 'train'}\n" for i, stem in enumerate(stems))
    atomic_write(out / "split.csv", ("stem,split\n" + rows).encode())
    return out


def write_synthetic_cases(out: str | Path, n: int, size: int, seed: int = 4242,
                          difficulty: float = 0.5) -> Path:
    """Write n held-out base lesions, each painted in every case of `CASES`, as a folder whose
    split.csv marks all of them "test": `out/images/<case>_0000.png` is
    `synthetic_sample(synthetic_seed(seed, i), size, difficulty, case)`. The same lesion appears
    once per case, so two models can be compared case by case, image by image. `seed` must differ
    from the training set's so that no lesion was seen."""
    if n < 1:
        raise ConfigError(f"n: must be at least 1, got {n}")
    out = Path(out)
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    stems = []
    for case in CASES:
        for i in range(n):
            stem = f"{case}_{i:04d}"
            image, mask = synthetic_sample(synthetic_seed(seed, i), size, difficulty, case=case)
            save_png(image, out / "images" / f"{stem}.png")
            save_png(mask * 255, out / "masks" / f"{stem}.png")
            stems.append(stem)
    atomic_write(out / "split.csv",
                 ("stem,split\n" + "".join(f"{s},test\n" for s in stems)).encode())
    return out


def case_of_stem(stem: str) -> str:
    """The case of a `write_synthetic_cases` file: "faint_rim_0012" -> "faint_rim"."""
    case = stem.rsplit("_", 1)[0]
    if case not in CASES:
        raise ConfigError(f"{stem!r}: not a write_synthetic_cases stem (<case>_<number>)")
    return case
