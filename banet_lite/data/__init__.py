"""Data: everything the model eats, one concept per file.

    synthetic.py   the embedded default dataset: low-contrast synthetic lesions, painted with numpy
    folders.py     image/mask pairs on disk (generic, Kvasir-SEG, ISIC 2018, PH2), reading them,
                   splits
    checks.py      a folder checked before any work: files, sizes, mask values, empty masks, splits
    transforms.py  resize, ImageNet normalisation (and its inverse), the paper's augmentation
    datasets.py    the torch datasets `SyntheticLesions` and `FolderDataset`
    downloads.py   the public datasets: registry, `data_root()`, resumable checked downloads

A dataset item is a pair

    image: float32 (3, S, S), ImageNet-normalised        mask: float32 (1, S, S) in {0, 1}

Every public name is re-exported here, so `bl.data.find_pairs` and friends are one name away.
The two files that need torch (datasets.py, transforms.py) load on first use of one of their names,
so that the command line can list datasets and check a folder (`check-data`) without importing
torch.
"""

import importlib

from ..errors import DatasetError
from .checks import DataReport, check_data, check_splits, load_splits, mask_problem, validate_pairs
from .downloads import (
    DATASETS,
    DatasetSource,
    RemoteFile,
    data_root,
    download,
    resolve_data,
    safe_extract,
)
from .folders import (
    IMAGE_EXTENSIONS,
    MASK_SUFFIXES,
    SPLITS,
    Pair,
    find_pairs,
    load_image,
    load_mask,
    read_split_csv,
    split_pairs,
)
from .synthetic import (
    CASES,
    case_of_stem,
    synthetic_case,
    synthetic_sample,
    synthetic_seed,
    write_synthetic_cases,
    write_synthetic_dataset,
)

_TORCH_NAMES = {
    **dict.fromkeys(("FolderDataset", "SyntheticLesions"), "datasets"),
    **dict.fromkeys(("IMAGENET_MEAN", "IMAGENET_STD", "augment_pair", "denormalize", "normalize",
                     "resize_image", "resize_mask"), "transforms"),
}


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        value = getattr(importlib.import_module(f".{_TORCH_NAMES[name]}", __name__), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CASES", "DATASETS", "IMAGENET_MEAN", "IMAGENET_STD", "IMAGE_EXTENSIONS", "MASK_SUFFIXES",
    "SPLITS", "DatasetError", "DataReport", "DatasetSource", "FolderDataset", "Pair", "RemoteFile",
    "SyntheticLesions", "augment_pair", "case_of_stem", "check_data", "check_splits", "data_root",
    "denormalize", "download", "find_pairs", "load_image", "load_mask", "load_splits",
    "mask_problem", "normalize", "read_split_csv", "resize_image", "resize_mask", "resolve_data",
    "safe_extract", "split_pairs", "synthetic_case", "synthetic_sample", "synthetic_seed",
    "validate_pairs", "write_synthetic_cases", "write_synthetic_dataset",
]
