"""Tests for banet_lite.data.downloads: file:// URLs and a local HTTP server (offline), safe extraction, data_root."""

import contextlib
import hashlib
import http.server
import io
import os
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from datafiles import dataset_zip, files_under, make_zip, png_bytes, register, rgb, sha256

from banet_lite import data
from banet_lite.data import DatasetError, downloads

# ---------------------------------------------------------------------------------------------------------
# 4. Downloads
# ---------------------------------------------------------------------------------------------------------


def test_download_verifies_extracts_and_caches(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", sha256(archive))
    root = tmp_path / "data"
    folder = data.download("toy", root=root, progress=False)
    assert folder == root / "toy" and (folder / ".complete").is_file()
    pairs = data.find_pairs(folder)
    assert [p.stem for p in pairs] == ["t0", "t1", "t2"]
    data.validate_pairs(pairs, folder)
    assert not (folder / "toy.zip").exists() and not list(root.glob(".toy-extract-*"))

    archive.unlink()  # a second call does not touch the network
    assert data.download("toy", root=root, progress=False) == folder


def test_download_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", "0" * 64)
    root = tmp_path / "data"
    with pytest.raises(DatasetError) as err:
        data.download("toy", root=root, progress=False)
    message = str(err.value)
    assert archive.as_uri() in message and "0" * 64 in message and sha256(archive) in message
    assert not root.exists() or files_under(root) == []


def test_download_trust_on_first_use(tmp_path, monkeypatch, capsys):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", None)
    root = tmp_path / "data"
    folder = data.download("toy", root=root, progress=False)
    record = folder / "toy.zip.sha256"
    assert record.read_text().split()[0] == sha256(archive)
    assert sha256(archive) in capsys.readouterr().out

    # Later downloads must match the recorded hash.
    (folder / ".complete").unlink()
    dataset_zip(archive, n=2)  # the server now sends different bytes
    with pytest.raises(DatasetError, match="SHA-256 mismatch"):
        data.download("toy", root=root, progress=False)
    assert not list(root.rglob("*.part")) and not (folder / "toy.zip").exists()
    # ... unless the caller passes the new hash explicitly.
    data.download("toy", root=root, progress=False, sha256_override=sha256(archive))
    assert len(data.find_pairs(folder)) == 2


def test_download_uses_a_file_put_there_by_hand(tmp_path, monkeypatch):
    register(monkeypatch, (tmp_path / "nowhere.zip").as_uri(), "toy.zip", None)
    root = tmp_path / "data"
    (root / "toy").mkdir(parents=True)
    dataset_zip(root / "toy" / "toy.zip")
    assert len(data.find_pairs(data.download("toy", root=root, progress=False))) == 3


@pytest.mark.parametrize("url", ["file:///nonexistent/banet/toy.zip", "http://127.0.0.1:9/toy.zip"])
def test_download_unreachable_url_gives_a_hint(tmp_path, monkeypatch, url):
    register(monkeypatch, url, "toy.zip", None)
    with pytest.raises(DatasetError, match="download it by hand") as err:
        data.download("toy", root=tmp_path / "data", progress=False)
    assert "cannot reach" in str(err.value) and "--data-dir" in str(err.value)
    assert files_under(tmp_path) == []


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `payload` at any path; honours `Range: bytes=N-` unless `ignore_range` (416 past the end)."""

    payload = b""
    ignore_range = False

    def do_GET(self):
        start = 0
        if self.headers.get("Range") and not self.ignore_range:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        if start and start >= len(self.payload):
            self.send_response(416)  # Range Not Satisfiable: the client has it all
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(payload: bytes, ignore_range: bool = False):
    """A local HTTP server (127.0.0.1, a free port) that serves `payload`; yields its URL for toy.zip."""
    handler = type("Handler", (RangeHandler,), {"payload": payload, "ignore_range": ignore_range})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/toy.zip"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("ignore_range", [False, True])
def test_download_resumes_a_partial_file_over_http(tmp_path, monkeypatch, ignore_range):
    archive = dataset_zip(tmp_path / "toy.zip")
    payload = archive.read_bytes()
    with serving(payload, ignore_range) as url:
        register(monkeypatch, url, "toy.zip", sha256(archive))
        root = tmp_path / "data"
        (root / "toy").mkdir(parents=True)
        (root / "toy" / "toy.zip.part").write_bytes(payload[: len(payload) // 2])
        monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read into memory whole"))
        folder = data.download("toy", root=root, progress=False)
        assert len(data.find_pairs(folder)) == 3


def test_safe_extract_refuses_zip_escape(tmp_path):
    evil = make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", "../evil.txt": b"gotcha"})
    target = tmp_path / "out" / "target"
    with pytest.raises(DatasetError, match=r"evil\.txt"):
        data.safe_extract(evil, target)
    assert not (tmp_path / "out" / "evil.txt").exists() and not (target / "ok.txt").exists()


def test_download_refuses_zip_escape(tmp_path, monkeypatch):
    evil = make_zip(tmp_path / "evil.zip", {"Toy/images/a.png": png_bytes(rgb()), "../../evil.txt": b"x"})
    register(monkeypatch, evil.as_uri(), "evil.zip", sha256(evil))
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="outside"):
        data.download("toy", root=root, progress=False)
    assert not list(tmp_path.rglob("evil.txt")) and not (root / "toy" / ".complete").exists()
    assert not list(root.glob(".toy-extract-*"))


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            payload = b"payload" if info.isfile() else None
            if payload is not None:
                info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    "member",
    [
        tar_member("/tmp/banet_absolute_evil.txt"),
        tar_member("../evil.txt"),
        tar_member("dir/link", tarfile.SYMTYPE, "../../evil"),
        tar_member("link", tarfile.SYMTYPE, "/etc/passwd"),
        tar_member("hard", tarfile.LNKTYPE, "../outside.txt"),
    ],
    ids=["absolute", "dotdot", "symlink-up", "symlink-absolute", "hardlink-up"],
)
def test_safe_extract_refuses_tar_escape(tmp_path, member):
    archive = make_tar(tmp_path / "evil.tar.gz", [tar_member("ok.txt"), member])
    target = tmp_path / "target"
    with pytest.raises(DatasetError, match="refused"):
        data.safe_extract(archive, target)
    assert files_under(target) == [] and not Path("/tmp/banet_absolute_evil.txt").exists()


def test_safe_extract_tar_with_inner_symlink(tmp_path):
    members = [tar_member("dir/file.txt"), tar_member("dir/alias", tarfile.SYMTYPE, "file.txt")]
    archive = make_tar(tmp_path / "ok.tar.gz", members)
    data.safe_extract(archive, tmp_path / "target")
    assert (tmp_path / "target" / "dir" / "alias").read_bytes() == b"payload"
    with pytest.raises(DatasetError, match="not a zip or tar"):
        data.safe_extract(tmp_path / "target" / "dir" / "file.txt", tmp_path / "t2")


def test_manual_and_unknown_datasets(tmp_path):
    with pytest.raises(DatasetError, match="by hand") as err:
        data.download("ph2", root=tmp_path)
    assert "--data-dir" in str(err.value) and ".rar" in str(err.value)
    with pytest.raises(DatasetError, match="kvasir-seg") as err:
        data.download("nope", root=tmp_path)
    assert "unknown dataset" in str(err.value)


def test_data_root_and_resolve_data(tmp_path, monkeypatch):
    monkeypatch.delenv("BANET_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.data_root() != tmp_path / "data"  # never relative to the current folder
    monkeypatch.setenv("BANET_DATA_DIR", str(tmp_path / "elsewhere"))
    assert data.data_root() == tmp_path / "elsewhere"

    assert data.resolve_data("kvasir-seg", str(tmp_path)) == tmp_path  # data_dir wins, nothing downloaded
    with pytest.raises(DatasetError, match="not a folder"):
        data.resolve_data(None, str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="unknown dataset"):
        data.resolve_data("imagenet", None)

    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", sha256(archive))
    folder = data.resolve_data("toy", None)
    assert folder == tmp_path / "elsewhere" / "toy" and len(data.find_pairs(folder)) == 3
    assert os.path.isfile(folder / ".complete")


REPO = Path(data.__file__).resolve().parents[2]


def test_data_root_from_a_notebooks_folder_is_outside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("BANET_DATA_DIR", raising=False)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)
    root = data.data_root()
    assert root.is_absolute() and not root.is_relative_to(notebooks)
    assert root == REPO / "data"  # the tests run from a source checkout: its git-ignored data/

    # installed (no checkout around the package): a user cache folder, whatever the current folder
    monkeypatch.setattr(downloads, "_CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "banet-lite" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_root() == tmp_path / "home" / ".cache" / "banet-lite" / "data"

    monkeypatch.setenv("BANET_DATA_DIR", "~/drive/banet-data")  # the variable wins, ~ expanded
    assert data.data_root() == tmp_path / "home" / "drive" / "banet-data"


def test_a_download_from_a_notebook_lands_outside_it_and_is_git_ignored(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", sha256(archive))
    monkeypatch.delenv("BANET_DATA_DIR", raising=False)
    checkout = tmp_path / "checkout"  # a stand-in for the repository: pyproject.toml, data/, notebooks/
    (checkout / "data").mkdir(parents=True)
    (checkout / "notebooks").mkdir()
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(downloads, "_CHECKOUT", checkout)
    monkeypatch.chdir(checkout / "notebooks")
    folder = data.resolve_data("toy", None)
    assert folder == checkout / "data" / "toy" and len(data.find_pairs(folder)) == 3
    assert not any((checkout / "notebooks").iterdir())


@pytest.mark.parametrize(
    "path, ignored",
    [
        ("data/kvasir-seg/Kvasir-SEG/images/a.jpg", True),
        ("data/isic2018/ISIC2018_Task1-2_Training_Input.zip.part", True),
        ("data/kvasir-seg.zip", True),
        ("notebooks/data/kvasir-seg/Kvasir-SEG/images/a.jpg", True),
        ("notebooks/runs/05_train/best.pt", True),
        ("runs/banet/last.pt", True),
        ("benchmarks/runs/gpu_check/05_train.ipynb", True),
        ("data/README.md", False),
        ("data/synthetic/images/synth_0000.png", False),
        ("data/synthetic/split.csv", False),
        ("notebooks/05_train.ipynb", False),
    ],
)
def test_gitignore_covers_every_data_and_run_folder(path, ignored):
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    proc = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO)
    assert proc.returncode == (0 if ignored else 1), path


def test_a_complete_part_file_is_hashed_in_chunks_not_read_whole(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    payload = archive.read_bytes()
    real_read_bytes = Path.read_bytes

    def guarded_read_bytes(self):
        assert not self.name.endswith((".part", ".zip")), f"{self.name} read into memory whole"
        return real_read_bytes(self)

    with serving(payload) as url:
        register(monkeypatch, url, "toy.zip", sha256(archive))
        root = tmp_path / "data"
        (root / "toy").mkdir(parents=True)
        (root / "toy" / "toy.zip.part").write_bytes(payload)  # complete: the server answers 416
        monkeypatch.setattr(Path, "read_bytes", guarded_read_bytes)
        folder = data.download("toy", root=root, progress=False)
        assert len(data.find_pairs(folder)) == 3


def test_hash_while_streaming_equals_the_file_hash_over_several_chunks(tmp_path, monkeypatch):
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(0).integers(0, 256, 3 * (1 << 20) + 123, dtype=np.uint8).tobytes())
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    dest = tmp_path / "out" / "big.bin"
    dest.parent.mkdir()
    downloads._fetch(big.as_uri(), dest, expected, progress=False)  # raises on a mismatch
    assert downloads._sha256_file(dest) == expected and not dest.with_name("big.bin.part").exists()
