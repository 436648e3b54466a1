"""Downloads of the public datasets into `data_root()`.

`data_root()` is `$BANET_DATA_DIR`, else the checkout's git-ignored `data/`, else a user cache
folder. Downloads resume, SHA-256 checks are computed while streaming, renames are atomic, and
archive extraction refuses any path escaping the target folder. (The file is `downloads.py`, not
`download.py`: `banet_lite.data.download` is the function, and a module of that name would shadow
it.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError, DatasetError
from ..files import atomic_write
from .folders import find_pairs

#
# data_root()/<name>/ holds one dataset. `download(name)` fetches each archive to <name>/<file>.part
# (resuming an HTTP download with a Range header), checks its SHA-256 and only then renames it to
# <name>/<file>. It extracts the archives into a temporary folder inside data_root(), moves
# the result into <name>/, deletes the archives and writes <name>/.complete; a later call returns at
# once.
#
# Checksums. No publisher of these datasets lists a SHA-256 for its files, and none could be found
# elsewhere, so the registry holds sha256=None. In that case the first download is trusted: its hash
# is printed and recorded in <name>/<file>.sha256, and any later download of that file must match
# it. A registry hash (or `sha256_override`), when given, is always checked. This guards against
# corrupt and changed downloads after the first one, not against a first download that was already
# wrong.


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
        files=(RemoteFile("https://datasets.simula.no/downloads/kvasir-seg.zip", None,
                          "kvasir-seg.zip"),),
        homepage="https://datasets.simula.no/kvasir-seg/",
        licence="Research and education use without prior permission; commercial use needs "
                "the authors' permission; cite the paper.",
        citation="D. Jha et al., Kvasir-SEG: A Segmented Polyp Dataset. "
                 "MultiMedia Modeling (MMM), 2020.",
        layout_note="1000 polyp images (about 46 MB): Kvasir-SEG/images/*.jpg + "
                    "Kvasir-SEG/masks/*.jpg (JPEG masks, binarised at > 127 when read).",
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
        citation="N. Codella et al., Skin Lesion Analysis Toward Melanoma "
                 "Detection 2018, arXiv:1902.03368; P. Tschandl et al., "
                 "The HAM10000 dataset, Scientific Data 5, 180161, 2018.",
        layout_note="2594 dermoscopy images (the input zip is about 10 GB): "
                    "ISIC2018_Task1-2_Training_Input/ISIC_*.jpg + "
                    "ISIC2018_Task1_Training_GroundTruth/ISIC_*_segmentation.png.",
    ),
    "ph2": DatasetSource(
        name="PH2",
        files=(),
        homepage="https://www.fc.up.pt/addi/ph2%20database.html",
        licence="Free for research and benchmarking; cite the paper.",
        citation="T. Mendonca et al., PH2 - A dermoscopic image database for research and "
                 "benchmarking. IEEE EMBC 2013.",
        layout_note="200 dermoscopy images: "
                    "'PH2 Dataset images/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp' "
                    "+ '.../IMDxxx_lesion/IMDxxx_lesion.bmp'. The official release is a .rar "
                    "archive, which the Python standard library cannot unpack.",
    ),
}


# the source checkout, when the package is used from one
_CHECKOUT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Where datasets live, the same from a notebook, a shell and the CLI (never relative to
    the current folder, so a download started from `notebooks/` does not land there):

    1. `$BANET_DATA_DIR` when set (e.g. a mounted Google Drive folder on Colab);
    2. else the checkout's `data/` (git-ignored but for its README and `synthetic/`) when
       the package runs from a source checkout (`pyproject.toml` and `data/` next to `banet_lite/`);
    3. else a user cache folder: `$XDG_CACHE_HOME/banet-lite/data`, default
       `~/.cache/banet-lite/data`.
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
    """The hash `dest` must have: the given one, else the one recorded at its first download, else
    None."""
    if sha256:
        return sha256.lower()
    record = _record_path(dest)
    return record.read_text().split()[0].lower() if record.is_file() else None


def _accept(dest: Path, digest: str, expected: str | None) -> None:
    """Record a first download's hash (trust on first use)."""
    if expected is None:
        atomic_write(_record_path(dest), f"{digest}  {dest.name}\n".encode())
        print(f"{dest.name}: SHA-256 {digest} (first download, recorded in {_record_path(dest)})")


def _fetch(url: str, dest: Path, sha256: str | None, progress: bool) -> None:
    """Download `url` to `dest`: via dest.part, resumable, SHA-256 checked before the atomic rename.

    The hash is computed while the bytes stream in (and, when resuming, over the existing `.part`
    read in 1 MiB chunks): no file is ever read into memory whole.
    """
    expected = _expected_sha256(dest, sha256)
    if dest.is_file():  # downloaded earlier, or put there by hand
        digest = _sha256_file(dest)
        if expected is not None and digest != expected:
            raise DatasetError(f"{dest}: SHA-256 mismatch: expected "
                               f"{expected}, got {digest}; delete it")
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
        raise DatasetError(f"{url}: SHA-256 mismatch: expected "
                           f"{expected}, got {digest}; download deleted")
    os.replace(part, dest)
    _accept(dest, digest, expected)


def _check_member(archive: Path, name: str, folder: Path, target: Path) -> None:
    """Refuse an archive member path that is absolute or resolves outside `target`."""
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"{archive}: member {name!r} has an absolute path; refused")
    if not (folder / name).resolve().is_relative_to(target):
        raise DatasetError(f"{archive}: member {name!r} points outside the target folder; refused")


def safe_extract(archive: str | Path, target: str | Path) -> None:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into `target`, refusing members that would escape
    it.

    Every member is checked before anything is written: absolute paths, `..` that climbs out, and
    tar symlinks/hard links whose target lies outside are refused with a DatasetError, as are tar
    devices.
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
    """Download and extract dataset `name` (a DATASETS key) into `root/<name>` and return that
    folder.

    Returns at once when `root/<name>/.complete` exists. `sha256_override` replaces the registry
    hash: a string for a one-file dataset, or {filename: sha256}. Raises DatasetError when offline
    (with a hint to download by hand), on a checksum mismatch, or for a dataset that must be fetched
    by hand.
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
            raise ConfigError(f"sha256_override: {name} has several files; "
                              "pass {filename: sha256}")
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
    atomic_write(target / ".complete", f"{source.name}\n".encode())
    return target


def resolve_data(dataset: str | None, data_dir: str | Path | None) -> Path:
    """The dataset folder to use: `data_dir` if given, else `download(dataset)` (cached after
    the first)."""
    if data_dir:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DatasetError(f"{path}: --data-dir is not a folder")
        return path
    if dataset:
        _source(dataset)
        return download(dataset)
    raise DatasetError("dataset: give a dataset name "
                       f"({', '.join(sorted(DATASETS))}) or --data-dir DIR")
