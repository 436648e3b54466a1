"""Torch datasets: `SyntheticLesions` and `FolderDataset`.

An item is a pair

    image: float32 (3, S, S), ImageNet-normalised        mask: float32 (1, S, S) in {0, 1}

The augmentation randomness of item i in epoch e comes from `np.random.default_rng([seed, e, i])`,
so results do not depend on DataLoader workers, and a resumed run draws what the uninterrupted one
drew.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..errors import ConfigError, DatasetError
from .folders import Pair, _header_size, load_image, load_mask
from .synthetic import synthetic_sample, synthetic_seed
from .transforms import augment_pair, normalize, resize_image, resize_mask


def _make_item(image: np.ndarray, mask: np.ndarray, augment: bool, strength: float, key: list[int]):
    """uint8 image (S, S, 3) and mask (S, S) -> (float32 (3, S, S) normalised,
    float32 (1, S, S))."""
    x = normalize(image)
    # (1, S, S), a copy
    m = torch.from_numpy(np.require(mask, requirements=["C", "W"])).float()[None]
    if augment:
        x, m = augment_pair(x, m, np.random.default_rng(key), strength)
    return x, m


class SyntheticLesions(Dataset):
    """`n` synthetic lesions of `size` px: item i is `synthetic_sample(synthetic_seed(seed, i))`.

    Samples are generated on first access and kept (uint8, about 65 kB each at 128 px). Items are
    `(image float32 (3, S, S) normalised, mask float32 (1, S, S))`, augmented when `augment` is set.
    """

    def __init__(self, n: int, size: int = 128, seed: int = 0, difficulty: float = 0.5,
                 augment: bool = False, aug_strength: float = 1.0):
        if n < 1:
            raise ConfigError(f"n: must be at least 1, got {n}")
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
            self._cache[i] = synthetic_sample(synthetic_seed(self.seed, i), self.size,
                                              self.difficulty)
        return self._cache[i]

    def preload(self, progress: bool = True, workers: int = 0) -> SyntheticLesions:
        """Generate and keep every sample now (in `workers` processes when > 0); see
        `FolderDataset.preload`."""
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
    uint8 (196 kB per pair at 256 px), so later epochs cost only augmentation. Construction is
    cheap. DataLoader workers fill caches of their own, lost when the workers end (every epoch):
    call `preload()` first to decode everything into this process's cache, which the workers then
    start with (`fit` does so whenever `workers > 0`). Large JPEGs are decoded at a reduced DCT
    scale that still has at least `img_size` pixels per side. `foreground`: the mask value that
    marks the lesion in label masks (`folders.binarize`); None for binary masks.
    """

    def __init__(self, pairs: Sequence[Pair], img_size: int, augment: bool = False, seed: int = 0,
                 cache: bool = True, aug_strength: float = 1.0, foreground: int | None = None):
        self.pairs = list(pairs)
        for pair in self.pairs:
            if pair.mask is None:
                raise DatasetError(f"{pair.image}: no mask found for "
                                   f"this image (stem {pair.stem!r})")
        self.img_size, self.augment, self.seed, self.cache = img_size, augment, seed, cache
        self.aug_strength, self.epoch, self.foreground = aug_strength, 0, foreground
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
        image = load_image(pair.image, draft_size=size)
        mask = load_mask(pair.mask, draft_size=size, foreground=self.foreground)
        if image.shape[:2] != mask.shape and _header_size(pair.image) != _header_size(pair.mask):
            raise DatasetError(f"{pair.mask}: mask size differs from its image {pair.image.name}")
        item = (resize_image(image, size), resize_mask(mask, size))
        if self.cache:
            self._cache[i] = item
        return item

    def preload(self, progress: bool = True, workers: int = 0) -> FolderDataset:
        """Decode and cache every pair now, with a progress bar; in `workers` processes when > 0
        (the decoded pairs come back into this process's cache). A no-op with `cache=False`."""
        if self.cache:
            _preload(self, [i for i, item in enumerate(self._cache) if item is None],
                     self._cache.__setitem__, progress, workers, "decoding")
        return self

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        i = range(len(self.pairs))[i]
        image, mask = self.sample(i)
        return _make_item(image, mask, self.augment, self.aug_strength, [self.seed, self.epoch, i])


class _Samples(Dataset):
    """(i, dataset.sample(i)) for the listed indices: lets DataLoader workers decode for
    `_preload`."""

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
    """Call `store(i, dataset.sample(i))` for every index, decoding in `workers` processes
    when > 0."""
    if not indices:
        return
    if workers > 0:  # its own generator: the global torch RNG (saved in checkpoints) is left alone
        items = torch.utils.data.DataLoader(_Samples(dataset, indices), batch_size=None,
                                            num_workers=workers, collate_fn=_as_is,
                                            generator=torch.Generator().manual_seed(0))
    else:
        items = ((i, dataset.sample(i)) for i in indices)
    # iter() first: tqdm.auto would otherwise start the loader (and its workers) twice
    for i, item in tqdm(iter(items), total=len(indices), desc=desc, unit="img",
                        disable=not progress):
        store(i, item)
