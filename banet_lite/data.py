"""Data: synthetic lesions, folder datasets, preprocessing, augmentation and downloads.

Everything the model eats comes from here. A dataset item is a pair

    image: float32 (3, S, S), ImageNet-normalised        mask: float32 (1, S, S) in {0, 1}

The file reads top to bottom:

1. **Synthetic lesions**, the embedded default dataset. `synthetic_sample(seed)` paints a low-contrast,
   textured, fuzzy-edged blob (a skin lesion or a colon polyp) under uneven light, with sensor noise,
   hairs and specular spots. The boundary is hard to see on purpose, so that a boundary-aware model has
   something to gain. numpy only, a few milliseconds per 128 px sample.
2. **Folder datasets.** `find_pairs(root)` finds image/mask pairs in a generic `images/ + masks/` folder
   or in the native Kvasir-SEG, ISIC 2018 Task 1 and PH2 layouts. `validate_pairs` decodes every file up
   front and stops with one clear line (`DatasetError`) that names the bad file. `split.csv` fixes the
   train/val/test split; without it `split_pairs` draws a seeded one.
3. **Preprocessing and augmentation**, as in the BA-Net paper: resize (bilinear for images, nearest for
   masks), ImageNet normalisation, and, each with p = 0.5: vertical flip, horizontal flip, zoom
   (1.0-1.5x) or centre crop (0.5-1.0 of the side), rotation (+-10 degrees). All geometric steps are
   folded into one affine warp, applied identically to image and mask.
4. **Torch datasets.** `SyntheticLesions` and `FolderDataset`. The augmentation randomness of item i in
   epoch e comes from `np.random.default_rng([seed, e, i])`, so results do not depend on DataLoader
   workers.
5. **Downloads** of the public datasets into `data_root()` (`$BANET_DATA_DIR`, else the checkout's
   git-ignored `data/`, else a user cache folder), with resume, SHA-256 checks computed while streaming,
   atomic renames and archive extraction that refuses any path escaping the target folder.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm


class DatasetError(ValueError):
    """Bad or missing data. The message is one line: `"{path}: {what is wrong}"`."""


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary name, so no reader ever sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_save_png(image: Image.Image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------
# 1. Synthetic lesions
# ---------------------------------------------------------------------------------------------------------
#
# A sample is painted in float RGB in [0, 1], channel-first, layered like a photograph:
#
#   background colour, blended toward the lesion colour by a soft alpha (the fuzzy boundary)
#   -> hairs (dark curves) -> x texture (smooth noise) x uneven illumination -> specular spots
#   -> sensor noise
#
# The lesion outline is a star-shaped radial function r(theta) = r0 (1 + sum_k a_k cos(k theta + phi_k))
# plus a smooth noise wobble. The mask is exactly where the signed distance d = r(theta) - rho is positive;
# the image uses alpha = sigmoid(d / w), so the true boundary is the 50% level of a blurred edge.
# `difficulty` in [0, 1] lowers the contrast, widens the edge blur and adds noise.

# (background RGB, lesion target RGB) for each look; the lesion colour is pulled from the background
# toward its target by the contrast, so the two stay close.
_PALETTES = {
    "skin": ((0.86, 0.66, 0.56), (0.42, 0.26, 0.18)),   # dermoscopy: beige-pink skin, brown lesion
    "colon": ((0.80, 0.40, 0.34), (0.93, 0.62, 0.52)),  # colonoscopy: red mucosa, paler polyp
}


@functools.lru_cache(maxsize=64)
def _lerp_table(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `size` pixels: the grid cell to its left and a smoothstep weight toward the next one."""
    pos = np.linspace(0.0, cells, size)
    i0 = np.minimum(pos.astype(np.int64), cells - 1)
    f = pos - i0
    f = f * f * (3.0 - 2.0 * f)  # smoothstep hides the grid lines
    return i0, f.astype(np.float32)


def _fractal_noise(rng: np.random.Generator, size: int, cells: Sequence[int]) -> np.ndarray:
    """Smooth random field in [-1, 1], (size, size): value-noise octaves, each half the previous amplitude.

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


def _hair_map(rng: np.random.Generator, size: int) -> np.ndarray:
    """1-4 thin dark curves (quadratic Bezier), anti-aliased, as a coverage map in [0, 1]."""
    cover = np.zeros((size, size), np.float32)
    t = np.linspace(0.0, 1.0, 3 * size, dtype=np.float32)[:, None]  # (T, 1)
    width = max(1, round(size / 160))
    for _ in range(rng.integers(1, 5)):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * size
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # (T, 2) as (x, y)
        pts = pts[((pts >= 0) & (pts < size)).all(axis=1)].astype(np.int64)  # drop points off the image
        for dy in range(width):
            cover[np.minimum(pts[:, 1] + dy, size - 1), pts[:, 0]] = 1.0
    return np.clip(_blur3(cover) * 1.6, 0.0, 1.0)


def synthetic_sample(seed: int, size: int = 128, difficulty: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic lesion: `(image uint8 (H, W, 3), mask uint8 (H, W) in {0, 1})`, fixed by `seed`.

    The mask is never empty: the lesion's centre lies on a pixel inside the image.
    """
    if size < 8:
        raise ValueError(f"size: must be at least 8, got {size}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty: must be in [0, 1], got {difficulty}")
    rng = np.random.default_rng(seed)

    def uni(lo: float, hi: float) -> float:  # a Python float keeps the array maths in float32
        return float(rng.uniform(lo, hi))

    look = "skin" if rng.random() < 0.5 else "colon"
    bg_rgb, target_rgb = (np.asarray(c, np.float32).reshape(3, 1, 1) for c in _PALETTES[look])
    bg_rgb = np.clip(bg_rgb + rng.normal(0, 0.04, (3, 1, 1)).astype(np.float32), 0.05, 0.95)
    target_rgb = np.clip(target_rgb + rng.normal(0, 0.05, (3, 1, 1)).astype(np.float32), 0.05, 0.95)

    # Pixel coordinates, broadcastable: y down (H, 1), x right (1, W).
    y = np.arange(size, dtype=np.float32)[:, None]
    x = np.arange(size, dtype=np.float32)[None, :]

    # Lesion outline. The centre sits on a pixel, so that pixel has rho = 0 and is always inside.
    cy, cx = (int(rng.integers(round(0.25 * size), round(0.75 * size) + 1)) for _ in range(2))
    r0 = size * uni(0.10, 0.30)
    aspect, tilt = uni(0.6, 1.0), uni(0.0, math.pi)
    u = (x - cx) * math.cos(tilt) + (y - cy) * math.sin(tilt)  # rotate, then squash v: an ellipse
    v = ((y - cy) * math.cos(tilt) - (x - cx) * math.sin(tilt)) / aspect
    rho, theta = np.hypot(u, v), np.arctan2(v, u)  # (H, W)
    radius = np.ones_like(theta)
    for k in range(2, 6):  # a few low Fourier harmonics: lobes and dents
        radius += uni(0.0, 0.3 / k) * np.cos(k * theta + uni(0.0, 2 * math.pi))
    d = r0 * radius - rho  # signed distance-like in pixels, > 0 inside, (H, W)
    d += 0.12 * r0 * _fractal_noise(rng, size, (6, 12, 24))  # ragged, irregular border
    mask = (d > 0).astype(np.uint8)

    # Soft alpha: the blurred edge, wider with difficulty. The lesion also fades toward its border
    # (thinner pigment, flatter polyp), so the edge has less contrast than the centre.
    edge = size * (0.006 + 0.03 * difficulty) * uni(0.6, 1.4)
    alpha = 0.5 + 0.5 * np.tanh(d / (2.0 * edge))  # = sigmoid(d / edge), without overflow
    alpha *= 0.55 + 0.45 * np.clip(d / (0.5 * r0), 0.0, 1.0)  # (H, W)

    # Colour: the background pulled toward the lesion colour by alpha. The lesion colour itself is the
    # background moved toward the palette's lesion target by `contrast`, which falls with difficulty.
    # Painted channel-first, (3, H, W), which numpy broadcasts fastest.
    contrast = uni(0.4, 0.75) * (1.2 - 0.8 * difficulty)
    delta = contrast * (target_rgb - bg_rgb)  # (3, 1, 1)
    floor = 0.07 - 0.04 * difficulty  # but at least this much in one channel: faint, never invisible
    delta *= max(1.0, floor / max(float(np.abs(delta).max()), 1e-6))
    les_rgb = bg_rgb + delta
    img = bg_rgb + alpha * (les_rgb - bg_rgb)  # (3, H, W)

    # Hairs: dark curves, mostly on skin.
    if rng.random() < (0.45 if look == "skin" else 0.05):
        hair = _hair_map(rng, size) * uni(0.5, 0.85)  # (H, W)
        img += hair * (np.asarray([0.12, 0.08, 0.06], np.float32).reshape(3, 1, 1) - img)

    # Shading, one (H, W) factor: texture (smooth value noise; the lesion's is finer and stronger than
    # the background's) times uneven illumination (a linear gradient and an off-centre vignette).
    bg_tex = uni(0.06, 0.14) * _fractal_noise(rng, size, (3, 9, 27))  # (H, W)
    les_tex = uni(0.12, 0.25) * _fractal_noise(rng, size, (5, 16, 40))
    gy, gx = uni(-0.35, 0.35), uni(-0.35, 0.35)
    vy, vx, vig = uni(0.3, 0.7) * size, uni(0.3, 0.7) * size, uni(0.2, 0.9)
    vignette = vig * ((y - vy) ** 2 + (x - vx) ** 2) / size**2  # (H, W)
    light = 1.0 + gy * (y / size - 0.5) + gx * (x / size - 0.5) - vignette
    img *= (1.0 + bg_tex + alpha * (les_tex - bg_tex)) * np.clip(light, 0.3, 1.5)

    # Specular highlights: small bright spots, mostly in the colon, half of them on the lesion itself.
    if rng.random() < (0.55 if look == "colon" else 0.15):
        for _ in range(int(rng.integers(1, 7))):
            if rng.random() < 0.5:
                sy, sx = cy + uni(-0.7, 0.7) * r0, cx + uni(-0.7, 0.7) * r0
            else:
                sy, sx = uni(0, size), uni(0, size)
            sigma = size * uni(0.004, 0.015)
            r = int(3 * sigma) + 1
            y0, y1 = min(max(0, int(sy) - r), size), min(max(0, int(sy) + r + 1), size)
            x0, x1 = min(max(0, int(sx) - r), size), min(max(0, int(sx) + r + 1), size)
            g = np.exp(-((y[y0:y1] - sy) ** 2 + (x[:, x0:x1] - sx) ** 2) / (2 * sigma**2))  # (h, w)
            img[:, y0:y1, x0:x1] += g * (1.05 - img[:, y0:y1, x0:x1])

    # Sensor noise: uniform with standard deviation sigma (a third of the cost of Gaussian draws).
    sigma = 0.012 + 0.035 * difficulty
    img += (rng.random(img.shape, dtype=np.float32) - 0.5) * (sigma * math.sqrt(12.0))
    image = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)  # (H, W, 3)
    image = np.ascontiguousarray(image)
    return image, mask


def synthetic_seed(seed: int, i: int) -> int:
    """The `synthetic_sample` seed of item i in a synthetic dataset made with `seed`."""
    return seed * 100_003 + i


def write_synthetic_dataset(
    out: str | Path, n: int, size: int, seed: int = 0, difficulty: float = 0.5, test_fraction: float = 0.2
) -> Path:
    """Write `n` synthetic samples as a folder dataset and return `out`.

    Layout: `out/images/synth_0000.png` (RGB), `out/masks/synth_0000.png` (L, 0/255) and `out/split.csv`
    (`stem,split`, a seeded `test_fraction` is "test", the rest "train"). Sample i is
    `synthetic_sample(synthetic_seed(seed, i), size, difficulty)`, the same as `SyntheticLesions` item i.
    Every file is written atomically. `synth_*.png` files left over from an earlier, larger run are
    removed, so the folder always matches its split.csv.
    """
    if n < 1:
        raise ValueError(f"n: must be at least 1, got {n}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction: must be in [0, 1), got {test_fraction}")
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
        _atomic_save_png(Image.fromarray(image), out / "images" / f"{stem}.png")
        _atomic_save_png(Image.fromarray(mask * 255), out / "masks" / f"{stem}.png")
    test = set(np.random.default_rng(seed).permutation(n)[: round(test_fraction * n)].tolist())
    rows = "".join(f"{stem},{'test' if i in test else 'train'}\n" for i, stem in enumerate(stems))
    _atomic_write_bytes(out / "split.csv", ("stem,split\n" + rows).encode())
    return out


# ---------------------------------------------------------------------------------------------------------
# 2. Folder datasets: find pairs, read images and masks, validate, split
# ---------------------------------------------------------------------------------------------------------
#
# Supported layouts (`find_pairs` tries them in this order):
#
#   generic      root/images/<stem>.<ext> + root/masks/<stem>.<ext>  (a mask may also be <stem>_mask,
#                <stem>_segmentation or <stem>_lesion); also one level down, e.g. root/Kvasir-SEG/images
#   ISIC 2018    root/*Task1*Input*/ISIC_0000000.jpg + root/*Task1*GroundTruth*/ISIC_0000000_segmentation.png
#   PH2          root/**/PH2 Dataset images/IMD002/IMD002_Dermoscopic_Image/IMD002.bmp
#                                         .../IMD002/IMD002_lesion/IMD002_lesion.bmp
#
# Hidden files and files without an image extension (.DS_Store, Thumbs.db, LICENSE.txt) are ignored. A
# file *with* an image extension that does not decode is an error, found by `validate_pairs`.

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = ("_mask", "_segmentation", "_lesion")  # a mask's stem may be the image stem plus one
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Pair:
    """One image and its mask (None when no mask was found; `validate_pairs` reports it)."""

    stem: str
    image: Path
    mask: Path | None


def _image_files(folder: Path) -> list[Path]:
    """Visible files with an image extension directly in `folder`, sorted by name."""
    return sorted(
        p for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def _by_stem(files: Iterable[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            raise DatasetError(f"{p}: another file has the same stem {p.stem!r} ({out[p.stem].name})")
        out[p.stem] = p
    return out


def _match(images: dict[str, Path], masks: dict[str, Path]) -> list[Pair]:
    """Pair each image with the mask of the same stem (or the stem plus a MASK_SUFFIXES entry)."""
    pairs = []
    for stem, image in sorted(images.items()):
        candidates = [stem] + [stem + suffix for suffix in MASK_SUFFIXES]
        mask = next((masks[c] for c in candidates if c in masks), None)
        pairs.append(Pair(stem, image, mask))
    return pairs


def _visible_dirs(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _has_images_and_masks(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def find_pairs(root: str | Path) -> list[Pair]:
    """All image/mask pairs under `root`, sorted by stem; [] when no known layout matches."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")

    # Generic images/ + masks/, in root itself or in exactly one subfolder (Kvasir-SEG/ from the zip).
    folders = [root] if _has_images_and_masks(root) else [
        d for d in _visible_dirs(root) if _has_images_and_masks(d)
    ]
    if len(folders) > 1:
        names = ", ".join(d.name for d in folders)
        raise DatasetError(f"{root}: several subfolders hold images/ + masks/ ({names}); pass one of them")
    if folders:
        images = _by_stem(_image_files(folders[0] / "images"))
        return _match(images, _by_stem(_image_files(folders[0] / "masks")))

    # ISIC 2018 Task 1: input and ground-truth folders side by side (training, validation and test).
    inputs, truths = _visible_dirs(root, "*Task1*Input*"), _visible_dirs(root, "*Task1*GroundTruth*")
    if inputs:
        images = _by_stem(p for d in inputs for p in _image_files(d))
        return _match(images, _by_stem(p for d in truths for p in _image_files(d)))

    # PH2: one folder per case, somewhere at most three levels down.
    name = "PH2 Dataset images"
    found = [root] if root.name == name else []
    found += [d for depth in ("", "*/", "*/*/") for d in sorted(root.glob(depth + name)) if d.is_dir()]
    pairs = []
    for case in _visible_dirs(found[0]) if found else []:
        stem = case.name
        image = _find_file(case / f"{stem}_Dermoscopic_Image", stem)
        if image is not None:
            pairs.append(Pair(stem, image, _find_file(case / f"{stem}_lesion", f"{stem}_lesion")))
    return pairs


def _find_file(folder: Path, stem: str) -> Path | None:
    """The image file named `stem` (any image extension) in `folder`, if there is one."""
    if not folder.is_dir():
        return None
    return next((p for p in _image_files(folder) if p.stem == stem), None)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow image -> uint8 (H, W, 3): 16-bit scaled to 8-bit, alpha dropped, palette expanded."""
    if im.mode.startswith("I"):  # 16-bit ("I;16", "I;16B") or 32-bit int ("I"): full range -> 0..255
        gray = (np.asarray(im, dtype=np.float32) / 257.0).clip(0, 255).round().astype(np.uint8)
    elif im.mode == "F":  # float: [0, 1] or [0, 255]
        a = np.asarray(im, dtype=np.float32)
        gray = (a * (255.0 if a.max() <= 1.0 else 1.0)).clip(0, 255).round().astype(np.uint8)
    else:
        if im.mode in ("P", "PA"):
            im = im.convert("RGBA")  # expands the palette, keeps palette transparency out of the way
        return np.array(im.convert("RGB"), dtype=np.uint8)  # RGBA/LA: alpha dropped; L/1: replicated
    return np.repeat(gray[..., None], 3, axis=2)


def _open(path: Path, draft_size: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Open and fully decode an image, or raise a one-line DatasetError; also return its (width, height).

    Truncated files fail here, in `load()`. With `draft_size`, a JPEG is decoded at the smallest 1/2,
    1/4 or 1/8 DCT scale that keeps both sides >= draft_size: several times faster, and still every
    byte is read. The size returned is the file's own size, before any such scaling.
    """
    try:
        im = Image.open(path)
        size = im.size
        try:
            if draft_size and im.format == "JPEG":
                im.draft(None, (draft_size, draft_size))
            im.load()
        except BaseException:
            im.close()
            raise
        return im, size
    except UnidentifiedImageError as e:
        raise DatasetError(f"{path}: not an image file (Pillow cannot identify it)") from e
    except FileNotFoundError as e:
        raise DatasetError(f"{path}: file not found") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{path}: cannot decode image, truncated or corrupt ({e})") from e


def load_image(path: str | Path, draft_size: int | None = None) -> np.ndarray:
    """Read an image as uint8 (H, W, 3): RGB, grayscale, RGBA, palette and 16-bit files all work."""
    im, _ = _open(Path(path), draft_size)
    with im:
        return _to_rgb(im)


def load_mask(path: str | Path, draft_size: int | None = None) -> np.ndarray:
    """Read a mask as uint8 (H, W) in {0, 1}.

    Colour masks are converted to grayscale first. If the largest value is <= 1 the values are labels
    (0/1, also palette indices); otherwise the mask is binarised at > 127 (0/255 masks, JPEG masks).
    """
    im, _ = _open(Path(path), draft_size)
    with im:
        if im.mode == "P":
            a = np.asarray(im)  # palette indices
            if a.max() > 1:
                a = np.asarray(im.convert("L"))
        elif im.mode in ("L", "F") or im.mode.startswith("I"):
            a = np.asarray(im)
        else:  # "1", RGB, RGBA, LA, CMYK, ...
            a = np.asarray(im.convert("L"))
    return (a > (0.5 if a.max() <= 1 else 127)).astype(np.uint8)


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding."""
    with Image.open(path) as im:
        return im.size


def _decoded_size(path: Path) -> tuple[int, int]:
    """(width, height) of a file that fully decodes (JPEGs at 1/8 scale: same bytes, less work)."""
    im, size = _open(path, draft_size=1)
    im.close()
    return size


def validate_pairs(pairs: Sequence[Pair], root: str | Path | None = None) -> None:
    """Check every pair up front; raise DatasetError naming the first bad file.

    Checks: at least one pair; every image has a mask; every file decodes completely (truncated and
    non-image files fail); each mask has the size of its image. A few ms per pair (JPEGs are decoded at
    1/8 scale: every byte is still read).
    """
    pairs = list(pairs)
    if not pairs:
        raise DatasetError(
            f"{root}: no image/mask pairs found; expected images/ + masks/ with matching file stems "
            "(or a Kvasir-SEG, ISIC 2018 Task 1 or PH2 folder)"
        )
    for pair in pairs:  # cheap checks first
        if pair.mask is None:
            raise DatasetError(f"{pair.image}: no mask found for this image (stem {pair.stem!r})")
    for pair in pairs:
        image_size, mask_size = _decoded_size(pair.image), _decoded_size(pair.mask)
        if mask_size != image_size:
            raise DatasetError(
                f"{pair.mask}: mask is {mask_size[0]}x{mask_size[1]} but its image {pair.image.name} is "
                f"{image_size[0]}x{image_size[1]}"
            )


def read_split_csv(root: str | Path, stems: Iterable[str] | None = None) -> dict[str, str] | None:
    """`root/split.csv` as {stem: "train" | "val" | "test"}, or None if there is no such file.

    The file has the header `stem,split`. Bad values, duplicate stems and (when `stems` is given) stems
    that are not in the dataset raise DatasetError naming split.csv and the line.
    """
    path = Path(root) / "split.csv"
    if not path.is_file():
        return None
    known = set(stems) if stems is not None else None
    split_map: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["stem", "split"]:
            raise DatasetError(f"{path}: line 1: header must be 'stem,split', got {','.join(header)!r}")
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise DatasetError(f"{path}: line {line}: expected 'stem,split', got {','.join(row)!r}")
            stem, split = row[0].strip(), row[1].strip()
            if split not in SPLITS:
                raise DatasetError(f"{path}: line {line}: split must be train, val or test, got {split!r}")
            if stem in split_map:
                raise DatasetError(f"{path}: line {line}: stem {stem!r} is listed twice")
            if known is not None and stem not in known:
                raise DatasetError(f"{path}: line {line}: stem {stem!r} has no image/mask pair")
            split_map[stem] = split
    return split_map


def _take(pairs: list[Pair], fraction: float, rng: np.random.Generator) -> tuple[list[Pair], list[Pair]]:
    """Split off a random `fraction` of `pairs`: (rest, taken), both kept in stem order."""
    chosen = set(rng.permutation(len(pairs))[: round(fraction * len(pairs))].tolist())
    rest = [p for i, p in enumerate(pairs) if i not in chosen]
    return rest, [p for i, p in enumerate(pairs) if i in chosen]


def split_pairs(
    pairs: Sequence[Pair],
    split_map: dict[str, str] | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> dict[str, list[Pair]]:
    """Split pairs into {"train", "val", "test"}, deterministically.

    With `split_map` (from split.csv) its train/val/test assignment is used; every pair needs a row. If
    it has no "val" rows, val is a seeded `val_fraction` of train (never taken from test). Without a
    split map, a seeded `test_fraction` of all pairs is test, then `val_fraction` of the rest is val.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise ValueError(f"val_fraction/test_fraction: must be in [0, 1), got {val_fraction}/{test_fraction}")
    pairs = sorted(pairs, key=lambda p: p.stem)
    rng = np.random.default_rng(seed)
    if split_map is None:
        train, test = _take(pairs, test_fraction, rng)
        train, val = _take(train, val_fraction, rng)
        return {"train": train, "val": val, "test": test}

    missing = [p.stem for p in pairs if p.stem not in split_map]
    if missing:
        raise DatasetError(f"split.csv: {len(missing)} pairs have no row, e.g. {missing[0]!r}")
    unknown = sorted(set(split_map) - {p.stem for p in pairs})
    if unknown:
        raise DatasetError(f"split.csv: {len(unknown)} rows have no image/mask pair, e.g. {unknown[0]!r}")
    parts = {split: [p for p in pairs if split_map[p.stem] == split] for split in SPLITS}
    if not parts["val"]:
        parts["train"], parts["val"] = _take(parts["train"], val_fraction, rng)
    return parts


# ---------------------------------------------------------------------------------------------------------
# 3. Preprocessing and augmentation
# ---------------------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> (size, size, 3), bilinear (Pillow's, which also antialiases when shrinking)."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W) in {0, 1} -> (size, size), nearest neighbour (stays binary)."""
    if mask.shape == (size, size):
        return mask
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))


def normalize(image: np.ndarray) -> Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W): scaled to [0, 1], then (x - mean) / std per channel."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {tuple(image.shape)}")
    image = np.require(image, requirements=["C", "W"])  # torch wants a writable array (Pillow's are not)
    x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)  # (3, H, W), a new tensor
    return x.sub_(_MEAN).div_(_STD)


def denormalize(x: Tensor) -> np.ndarray:
    """float (3, H, W) or (B, 3, H, W), normalised -> uint8 (H, W, 3) or (B, H, W, 3) for display."""
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"x: expected (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
    x = x.detach().float().cpu() * _STD + _MEAN
    x = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return x.movedim(-3, -1).contiguous().numpy()


def augment_pair(
    image: Tensor, mask: Tensor, rng: np.random.Generator, strength: float = 1.0
) -> tuple[Tensor, Tensor]:
    """The paper's augmentation on image (3, S, S) and mask (1, S, S), identically.

    Each with p = 0.5: vertical flip; horizontal flip; either zoom by 1.0-1.5 and centre-crop back to
    S, or centre-crop 0.5-1.0 of the side and resize back; rotation by +-10 degrees. `strength` scales
    the zoom, crop and rotation ranges; strength <= 0 switches augmentation off (flips too).

    The steps compose into one affine map from output to input coordinates (normalised to [-1, 1]):

        p_in = scale * R(angle) @ diag(flip_x, flip_y) @ p_out

    sampled once with `grid_sample`: bilinear for the image, nearest for the mask, reflection at the
    border for both (so labels follow the reflected content). Flips alone are exact `torch.flip`s.
    """
    if image.dim() != 3 or mask.dim() != 3 or image.shape[-2:] != mask.shape[-2:]:
        shapes = f"{tuple(image.shape)} and {tuple(mask.shape)}"
        raise ValueError(f"image, mask: expected (3, S, S) and (1, S, S), got {shapes}")
    u = rng.random(7)  # always 7 draws, so the stream does not depend on which steps fire
    if strength <= 0:
        return image, mask
    flip_y, flip_x = u[0] < 0.5, u[1] < 0.5
    scale = 1.0
    if u[2] < 0.5:
        if u[3] < 0.5:
            scale = 1.0 / (1.0 + 0.5 * strength * u[4])  # zoom in by 1.0-1.5: see 1/zoom of the field
        else:
            scale = 1.0 - 0.5 * strength * u[4]  # centre crop of 0.5-1.0 of the side, resized back
        scale = min(max(scale, 0.05), 1.0)
    angle = math.radians(10.0 * strength * (2.0 * u[6] - 1.0)) if u[5] < 0.5 else 0.0

    if scale == 1.0 and angle == 0.0:  # flips only: exact and cheap
        dims = [d for d, flip in ((-2, flip_y), (-1, flip_x)) if flip]
        return (image.flip(dims), mask.flip(dims)) if dims else (image, mask)

    # The sampling grid, built directly (F.affine_grid is a batched matmul, 10x slower on CPU).
    fx, fy = (-1.0 if flip_x else 1.0), (-1.0 if flip_y else 1.0)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    h, w = image.shape[-2:]
    xs = torch.linspace(-1.0 + 1.0 / w, 1.0 - 1.0 / w, w, dtype=image.dtype) * fx  # pixel centres, (W,)
    ys = torch.linspace(-1.0 + 1.0 / h, 1.0 - 1.0 / h, h, dtype=image.dtype)[:, None] * fy  # (H, 1)
    grid = torch.stack([c * xs - s * ys, s * xs + c * ys], dim=-1)[None]  # (1, H, W, 2) as (x, y)
    image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    mask = F.grid_sample(mask[None].to(grid.dtype), grid, mode="nearest", padding_mode="reflection",
                         align_corners=False)
    return image[0], mask[0]


def _make_item(image: np.ndarray, mask: np.ndarray, augment: bool, strength: float, key: list[int]):
    """uint8 image (S, S, 3) and mask (S, S) -> (float32 (3, S, S) normalised, float32 (1, S, S))."""
    x = normalize(image)
    m = torch.from_numpy(np.require(mask, requirements=["C", "W"])).float()[None]  # (1, S, S), a copy
    if augment:
        x, m = augment_pair(x, m, np.random.default_rng(key), strength)
    return x, m


# ---------------------------------------------------------------------------------------------------------
# 4. Torch datasets
# ---------------------------------------------------------------------------------------------------------


class SyntheticLesions(Dataset):
    """`n` synthetic lesions of `size` px: item i is `synthetic_sample(synthetic_seed(seed, i))`.

    Samples are generated on first access and kept (uint8, about 65 kB each at 128 px). Items are
    `(image float32 (3, S, S) normalised, mask float32 (1, S, S))`, augmented when `augment` is set.
    """

    def __init__(self, n: int, size: int = 128, seed: int = 0, difficulty: float = 0.5,
                 augment: bool = False, aug_strength: float = 1.0):
        if n < 1:
            raise ValueError(f"n: must be at least 1, got {n}")
        self.n, self.size, self.seed, self.difficulty = n, size, seed, difficulty
        self.augment, self.aug_strength, self.epoch = augment, aug_strength, 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of `epoch` (call it at the start of every epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item i before preprocessing: (uint8 (S, S, 3), uint8 (S, S) in {0, 1})."""
        i = range(self.n)[i]  # IndexError when out of range; negative indices count from the end
        if i not in self._cache:
            self._cache[i] = synthetic_sample(synthetic_seed(self.seed, i), self.size, self.difficulty)
        return self._cache[i]

    def preload(self, progress: bool = True, workers: int = 0) -> SyntheticLesions:
        """Generate and keep every sample now (in `workers` processes when > 0); see `FolderDataset.preload`."""
        _preload(self, [i for i in range(self.n) if i not in self._cache], self._cache.__setitem__,
                 progress, workers, "generating")
        return self

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        i = range(self.n)[i]
        image, mask = self.sample(i)
        return _make_item(image, mask, self.augment, self.aug_strength, [self.seed, self.epoch, i])


class FolderDataset(Dataset):
    """Image/mask pairs from disk, resized to `img_size` x `img_size`.

    With `cache=True` each pair is decoded and resized once, on first access, and kept in memory as
    uint8 (196 kB per pair at 256 px), so later epochs cost only augmentation. Construction is cheap.
    DataLoader workers fill caches of their own, lost when the workers end (every epoch): call
    `preload()` first to decode everything into this process's cache, which the workers then start
    with (`fit` does so whenever `workers > 0`). Large JPEGs are decoded at a reduced DCT scale that
    still has at least `img_size` pixels per side.
    """

    def __init__(self, pairs: Sequence[Pair], img_size: int, augment: bool = False, seed: int = 0,
                 cache: bool = True, aug_strength: float = 1.0):
        self.pairs = list(pairs)
        for pair in self.pairs:
            if pair.mask is None:
                raise DatasetError(f"{pair.image}: no mask found for this image (stem {pair.stem!r})")
        self.img_size, self.augment, self.seed = img_size, augment, seed
        self.cache, self.aug_strength, self.epoch = cache, aug_strength, 0
        self._cache: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of `epoch` (call it at the start of every epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair i, resized: (uint8 (S, S, 3), uint8 (S, S) in {0, 1})."""
        i = range(len(self.pairs))[i]
        if self._cache[i] is not None:
            return self._cache[i]
        pair, size = self.pairs[i], self.img_size
        image, mask = load_image(pair.image, draft_size=size), load_mask(pair.mask, draft_size=size)
        if image.shape[:2] != mask.shape and _header_size(pair.image) != _header_size(pair.mask):
            raise DatasetError(f"{pair.mask}: mask size differs from its image {pair.image.name}")
        item = (resize_image(image, size), resize_mask(mask, size))
        if self.cache:
            self._cache[i] = item
        return item

    def preload(self, progress: bool = True, workers: int = 0) -> FolderDataset:
        """Decode and cache every pair now, with a progress bar; in `workers` processes when > 0 (the
        decoded pairs come back into this process's cache). A no-op with `cache=False`."""
        if self.cache:
            _preload(self, [i for i, item in enumerate(self._cache) if item is None], self._cache.__setitem__,
                     progress, workers, "decoding")
        return self

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        i = range(len(self.pairs))[i]
        image, mask = self.sample(i)
        return _make_item(image, mask, self.augment, self.aug_strength, [self.seed, self.epoch, i])


class _Samples(Dataset):
    """(i, dataset.sample(i)) for the listed indices: lets DataLoader workers decode for `_preload`."""

    def __init__(self, dataset, indices: list[int]):
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        return i, self.dataset.sample(i)


def _as_is(item):
    return item  # numpy arrays stay numpy arrays (the default collate would make tensors)


def _preload(dataset, indices: list[int], store, progress: bool, workers: int, desc: str) -> None:
    """Call `store(i, dataset.sample(i))` for every index, decoding in `workers` processes when > 0."""
    if not indices:
        return
    if workers > 0:  # its own generator: the global torch RNG (saved in checkpoints) is left alone
        items = torch.utils.data.DataLoader(_Samples(dataset, indices), batch_size=None, num_workers=workers,
                                            collate_fn=_as_is, generator=torch.Generator().manual_seed(0))
    else:
        items = ((i, dataset.sample(i)) for i in indices)
    # iter() first: tqdm.auto would otherwise start the loader (and its workers) twice
    for i, item in tqdm(iter(items), total=len(indices), desc=desc, unit="img", disable=not progress):
        store(i, item)


# ---------------------------------------------------------------------------------------------------------
# 5. Downloads
# ---------------------------------------------------------------------------------------------------------
#
# data_root()/<name>/ holds one dataset. `download(name)` fetches each archive to <name>/<file>.part
# (resuming an HTTP download with a Range header), checks its SHA-256 and only then renames it to
# <name>/<file>. It extracts the archives into a temporary folder inside data_root(), moves the result
# into <name>/, deletes the archives and writes <name>/.complete; a later call returns at once.
#
# Checksums. No publisher of these datasets lists a SHA-256 for its files, and none could be found
# elsewhere, so the registry holds sha256=None. In that case the first download is trusted: its hash is
# printed and recorded in <name>/<file>.sha256, and any later download of that file must match it. A
# registry hash (or `sha256_override`), when given, is always checked. This guards against corrupt and
# changed downloads after the first one, not against a first download that was already wrong.


@dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str | None  # None: trust on first use (see above)
    filename: str


@dataclass(frozen=True)
class DatasetSource:
    name: str
    files: tuple[RemoteFile, ...]  # empty: no automatic download, get it by hand
    homepage: str
    licence: str
    citation: str
    layout_note: str


_ISIC = "https://isic-challenge-data.s3.amazonaws.com/2018/"
DATASETS: dict[str, DatasetSource] = {
    "kvasir-seg": DatasetSource(
        name="Kvasir-SEG",
        files=(RemoteFile("https://datasets.simula.no/downloads/kvasir-seg.zip", None, "kvasir-seg.zip"),),
        homepage="https://datasets.simula.no/kvasir-seg/",
        licence="Research and education use without prior permission; commercial use needs the authors' "
                "permission; cite the paper.",
        citation="D. Jha et al., Kvasir-SEG: A Segmented Polyp Dataset. MultiMedia Modeling (MMM), 2020.",
        layout_note="1000 polyp images (about 46 MB): Kvasir-SEG/images/*.jpg + Kvasir-SEG/masks/*.jpg "
                    "(JPEG masks, binarised at > 127 when read).",
    ),
    "isic2018": DatasetSource(
        name="ISIC 2018 Task 1",
        files=(
            RemoteFile(_ISIC + "ISIC2018_Task1-2_Training_Input.zip", None,
                       "ISIC2018_Task1-2_Training_Input.zip"),
            RemoteFile(_ISIC + "ISIC2018_Task1_Training_GroundTruth.zip", None,
                       "ISIC2018_Task1_Training_GroundTruth.zip"),
        ),
        homepage="https://challenge.isic-archive.com/data/#2018",
        licence="CC-BY-NC 4.0 (per the ISIC 2018 challenge).",
        citation="N. Codella et al., Skin Lesion Analysis Toward Melanoma Detection 2018, arXiv:1902.03368; "
                 "P. Tschandl et al., The HAM10000 dataset, Scientific Data 5, 180161, 2018.",
        layout_note="2594 dermoscopy images (the input zip is about 10 GB): "
                    "ISIC2018_Task1-2_Training_Input/ISIC_*.jpg + "
                    "ISIC2018_Task1_Training_GroundTruth/ISIC_*_segmentation.png.",
    ),
    "ph2": DatasetSource(
        name="PH2",
        files=(),
        homepage="https://www.fc.up.pt/addi/ph2%20database.html",
        licence="Free for research and benchmarking; cite the paper.",
        citation="T. Mendonca et al., PH2 - A dermoscopic image database for research and benchmarking. "
                 "IEEE EMBC 2013.",
        layout_note="200 dermoscopy images: 'PH2 Dataset images/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp' "
                    "+ '.../IMDxxx_lesion/IMDxxx_lesion.bmp'. The official release is a .rar archive, "
                    "which the Python standard library cannot unpack.",
    ),
}


_CHECKOUT = Path(__file__).resolve().parents[1]  # the source checkout, when the package is used from one


def data_root() -> Path:
    """Where datasets live, the same from a notebook, a shell and the CLI (never relative to the current
    folder, so a download started from `notebooks/` does not land there):

    1. `$BANET_DATA_DIR` when set (e.g. a mounted Google Drive folder on Colab);
    2. else the checkout's `data/` (git-ignored but for its README and `synthetic/`) when the package
       runs from a source checkout (`pyproject.toml` and `data/` next to `banet_lite/`);
    3. else a user cache folder: `$XDG_CACHE_HOME/banet-lite/data`, default `~/.cache/banet-lite/data`.
    """
    env = os.environ.get("BANET_DATA_DIR")
    if env:
        return Path(env).expanduser().absolute()
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "data").is_dir():
        return _CHECKOUT / "data"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser().absolute() / "banet-lite" / "data"


def _source(name: str) -> DatasetSource:
    if name not in DATASETS:
        raise DatasetError(f"{name}: unknown dataset; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def _hash_file_into(h, path: Path):
    """Feed a file to the hash `h` in 1 MiB chunks (archives can be 10 GB: never read whole)."""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h


def _sha256_file(path: Path) -> str:
    return _hash_file_into(hashlib.sha256(), path).hexdigest()


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _expected_sha256(dest: Path, sha256: str | None) -> str | None:
    """The hash `dest` must have: the given one, else the one recorded at its first download, else None."""
    if sha256:
        return sha256.lower()
    record = _record_path(dest)
    return record.read_text().split()[0].lower() if record.is_file() else None


def _accept(dest: Path, digest: str, expected: str | None) -> None:
    """Record a first download's hash (trust on first use)."""
    if expected is None:
        _atomic_write_bytes(_record_path(dest), f"{digest}  {dest.name}\n".encode())
        print(f"{dest.name}: SHA-256 {digest} (first download, recorded in {_record_path(dest)})")


def _fetch(url: str, dest: Path, sha256: str | None, progress: bool) -> None:
    """Download `url` to `dest`: via dest.part, resumable, SHA-256 checked before the atomic rename.

    The hash is computed while the bytes stream in (and, when resuming, over the existing `.part` read in
    1 MiB chunks): no file is ever read into memory whole.
    """
    expected = _expected_sha256(dest, sha256)
    if dest.is_file():  # downloaded earlier, or put there by hand
        digest = _sha256_file(dest)
        if expected is not None and digest != expected:
            raise DatasetError(f"{dest}: SHA-256 mismatch: expected {expected}, got {digest}; delete it")
        _accept(dest, digest, expected)
        return

    part = dest.with_name(dest.name + ".part")
    resumable = urllib.parse.urlsplit(url).scheme in ("http", "https")
    if part.exists() and not resumable:
        part.unlink()
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "banet-lite"} | ({"Range": f"bytes={start}-"} if start else {})
    hint = f"download it by hand and pass --data-dir DIR, or put the file at {dest}"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        if not (e.code == 416 and start):  # 416: the .part is already complete
            raise DatasetError(f"{url}: HTTP {e.code} {e.reason}; {hint}") from e
        response = None
    except (urllib.error.URLError, OSError) as e:
        raise DatasetError(f"cannot reach {url} ({getattr(e, 'reason', e)}); {hint}") from e

    h = hashlib.sha256()
    if response is not None:
        with response:
            if start and getattr(response, "status", None) != 206:
                start = 0  # the server ignored the Range header: start over
            if start:
                _hash_file_into(h, part)  # the bytes already there, then the rest as it streams in
            length = response.headers.get("Content-Length")
            total = start + int(length) if length else None
            try:
                with part.open("ab" if start else "wb") as f, tqdm(
                    total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=dest.name, disable=not progress,
                ) as bar:
                    while chunk := response.read(1 << 20):
                        f.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
            except OSError as e:
                raise DatasetError(f"{url}: download interrupted ({e}); run again to resume") from e
    else:  # HTTP 416: the .part is already complete
        _hash_file_into(h, part)

    digest = h.hexdigest()
    if expected is not None and digest != expected:
        part.unlink()
        raise DatasetError(f"{url}: SHA-256 mismatch: expected {expected}, got {digest}; download deleted")
    os.replace(part, dest)
    _accept(dest, digest, expected)


def _check_member(archive: Path, name: str, folder: Path, target: Path) -> None:
    """Refuse an archive member path that is absolute or resolves outside `target`."""
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"{archive}: member {name!r} has an absolute path; refused")
    if not (folder / name).resolve().is_relative_to(target):
        raise DatasetError(f"{archive}: member {name!r} points outside the target folder; refused")


def safe_extract(archive: str | Path, target: str | Path) -> None:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into `target`, refusing members that would escape it.

    Every member is checked before anything is written: absolute paths, `..` that climbs out, and tar
    symlinks/hard links whose target lies outside are refused with a DatasetError, as are tar devices.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    base = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(archive, info.filename, base, base)
            zf.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                _check_member(archive, m.name, base, base)
                if m.issym():  # relative to the link's own folder
                    _check_member(archive, m.linkname, (base / m.name).parent, base)
                elif m.islnk():  # relative to the archive root
                    _check_member(archive, m.linkname, base, base)
                elif not (m.isfile() or m.isdir()):
                    raise DatasetError(f"{archive}: member {m.name!r} is a device or pipe; refused")
            tf.extractall(target, members=members, filter="data")
    else:
        raise DatasetError(f"{archive}: not a zip or tar archive")


def download(name: str, root: str | Path | None = None, progress: bool = True,
             sha256_override: str | dict[str, str] | None = None) -> Path:
    """Download and extract dataset `name` (a DATASETS key) into `root/<name>` and return that folder.

    Returns at once when `root/<name>/.complete` exists. `sha256_override` replaces the registry hash:
    a string for a one-file dataset, or {filename: sha256}. Raises DatasetError when offline (with a
    hint to download by hand), on a checksum mismatch, or for a dataset that must be fetched by hand.
    """
    source = _source(name)
    root = Path(root) if root is not None else data_root()
    target = root / name
    if (target / ".complete").is_file():
        return target
    if not source.files:  # e.g. PH2: accept a folder unpacked there by hand, otherwise explain
        if target.is_dir() and find_pairs(target):
            return target
        raise DatasetError(
            f"{name}: no automatic download. {source.layout_note} Download it by hand from "
            f"{source.homepage}, unpack it and pass --data-dir DIR, or unpack it into {target}"
        )
    if isinstance(sha256_override, str):
        if len(source.files) != 1:
            raise ValueError(f"sha256_override: {name} has several files; pass {{filename: sha256}}")
        sha256_override = {source.files[0].filename: sha256_override}
    overrides = sha256_override or {}

    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        archives = []
        for remote in source.files:
            dest = target / remote.filename
            _fetch(remote.url, dest, overrides.get(remote.filename) or remote.sha256, progress)
            archives.append(dest)
    except BaseException:
        if created and not any(target.iterdir()):
            target.rmdir()  # leave nothing behind after a failed first attempt
        raise

    # Extract everything into a temporary folder next to the target, then move it into place.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-extract-", dir=root))
    try:
        for archive in archives:
            safe_extract(archive, tmp)
        for entry in sorted(tmp.iterdir()):
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(entry, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for archive in archives:
        archive.unlink()
    _atomic_write_bytes(target / ".complete", f"{source.name}\n".encode())
    return target


def resolve_data(dataset: str | None, data_dir: str | Path | None) -> Path:
    """The dataset folder to use: `data_dir` if given, else `download(dataset)` (cached after the first)."""
    if data_dir:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DatasetError(f"{path}: --data-dir is not a folder")
        return path
    if dataset:
        _source(dataset)
        return download(dataset)
    raise DatasetError(f"dataset: give a dataset name ({', '.join(sorted(DATASETS))}) or --data-dir DIR")
