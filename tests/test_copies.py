"""copy_to (training/copies.py): a run's files copied, atomically and in the background, into a second folder
(the Colab recipe: checkpoints written on the local disk, copies on Drive) at each last.pt write."""

from pathlib import Path

import pytest
import torch

from banet_lite.errors import CopyError
from banet_lite.training import copies
from banet_lite.training import train as btrain
from banet_lite.training.checkpoint import load_checkpoint


def test_copies_only_what_changed_atomically_and_reports_a_failed_copy(tmp_path, monkeypatch):
    out, drive = tmp_path / "local", tmp_path / "drive" / "MyDrive" / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"epoch 1")
    (out / "history.csv").write_text("epoch\n1\n")
    copied, real_copy = [], copies.copy_file
    monkeypatch.setattr(copies, "copy_file", lambda src, dst: copied.append(Path(src).name) or real_copy(src, dst))
    with copies.RunCopies(out, drive) as mirror:
        mirror.submit()
        mirror.wait()
        assert sorted(copied) == ["history.csv", "last.pt"]  # no best.pt yet: nothing to copy
        (out / "last.pt").write_bytes(b"epoch 2, longer")
        (out / "best.pt").write_bytes(b"best")
        mirror.submit()
    assert sorted(copied) == ["best.pt", "history.csv", "last.pt", "last.pt"]  # history.csv unchanged: once
    assert (drive / "last.pt").read_bytes() == b"epoch 2, longer" and (drive / "best.pt").read_bytes() == b"best"
    assert sorted(p.name for p in drive.iterdir()) == ["best.pt", "history.csv", "last.pt"]  # no .tmp left

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(copies, "copy_file", full_disk)
    (out / "last.pt").write_bytes(b"epoch 3")
    with pytest.raises(CopyError, match=f"{drive / 'last.pt'}: could not copy last.pt there .*No space left"):
        with copies.RunCopies(out, drive) as mirror:
            mirror.submit()
    assert (drive / "last.pt").read_bytes() == b"epoch 2, longer"  # the earlier copy, whole

    with pytest.raises(ValueError, match="the run is failing"):  # a failing run keeps its own error
        with copies.RunCopies(out, drive) as mirror:
            mirror.submit()
            raise ValueError("the run is failing")
    with copies.RunCopies(out, None) as mirror:  # no copy_to: nothing happens
        mirror.submit()


def test_fit_copies_the_run_at_each_last_pt_write(tmp_path, monkeypatch):
    """checkpoint_every=2 over 3 epochs: last.pt after epochs 2 and 3, and a copy of the run's files after
    each; at the end the copies are the run's files, byte for byte, and resume like them."""
    written, real_copy = [], copies.copy_file
    monkeypatch.setattr(copies, "copy_file", lambda src, dst: written.append(
        (Path(src).name, load_checkpoint(src)["epoch"] if Path(src).suffix == ".pt" else None)) or real_copy(src, dst))
    out, drive = tmp_path / "local", tmp_path / "drive"
    result = btrain.fit(btrain.TrainConfig(preset="tiny", out=str(out), copy_to=str(drive), epochs=3, batch_size=4,
                                           img_size=32, synthetic_train=8, progress=False, seed=3,
                                           checkpoint_every=2))
    assert [epoch for name, epoch in written if name == "last.pt"] == [2, 3]
    assert {name for name, _ in written} == {"last.pt", "best.pt", "history.csv"}
    for name in ("last.pt", "best.pt", "history.csv"):
        assert (drive / name).read_bytes() == (out / name).read_bytes(), name
    ckpt = load_checkpoint(drive / "last.pt")
    assert ckpt["epoch"] == 3 and ckpt["train_config"]["copy_to"] == str(drive)
    torch.testing.assert_close(ckpt["model"]["decoder.head.3.bias"], result.model.state_dict()["decoder.head.3.bias"],
                               rtol=0, atol=0)
