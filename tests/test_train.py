"""Training: exact resume, time budget, non-finite loss, checkpoints, and DDP on 2 CPU processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_configs import tiny_run

import banet_lite as bl
from banet_lite.data import write_synthetic_dataset
from banet_lite.training import train as btrain


def small_config(tmp_path: Path, **kw) -> btrain.TrainConfig:
    return tiny_run(**{"out": tmp_path / "run", "epochs": 4, "img_size": 48, "synthetic_train": 12, **kw})


def test_resume_continues_exactly(tmp_path):
    straight = btrain.fit(small_config(tmp_path, out=str(tmp_path / "a")))
    first = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b"), stop_after=2))
    assert len(first.history) == 2 and "resume" in first.stopped_early
    resumed = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b"), resume=str(tmp_path / "b" / "last.pt")))
    assert len(resumed.history) == 4
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0, msg=name)
    for a, b in zip(straight.history, resumed.history):
        assert a["train_loss"] == b["train_loss"] and a["val_dice"] == b["val_dice"]
    rows = btrain.read_history(tmp_path / "b" / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]


def test_checkpoint_holds_the_whole_state_and_loads_weights_only(tmp_path):
    result = btrain.fit(small_config(tmp_path, epochs=1))
    ckpt = bl.checkpoint.load_checkpoint(result.last_path)  # weights_only=True inside
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "best_score", "config", "rng",
            "history", "img_size"} <= set(ckpt)
    assert ckpt["epoch"] == 1 and ckpt["img_size"] == 48
    model = bl.checkpoint.model_from_checkpoint(ckpt)
    key = "decoder.head.3.bias"
    torch.testing.assert_close(model.state_dict()[key], result.model.state_dict()[key])
    assert not list(Path(result.last_path).parent.glob("*.tmp"))


def test_unreadable_checkpoint_is_named(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt"):
        bl.checkpoint.load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        bl.checkpoint.load_checkpoint(tmp_path / "nope.pt")


def test_time_budget_stops_after_the_epoch_in_progress(tmp_path):
    result = btrain.fit(small_config(tmp_path, epochs=5, time_budget=0.01))
    assert len(result.history) == 1
    assert "time budget" in result.stopped_early
    assert result.last_path.exists() and result.best_path.exists()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    first = btrain.fit(small_config(tmp_path, stop_after=1))
    before = first.last_path.read_bytes()

    class ExplodingLoss(bl.JointLoss):
        def forward(self, out, mask):
            total, parts = super().forward(out, mask)
            return total * float("nan"), parts

    monkeypatch.setattr(bl.losses, "JointLoss", ExplodingLoss)  # what joint_loss_for builds
    with pytest.raises(FloatingPointError, match="last good checkpoint is .*last.pt"):
        btrain.fit(small_config(tmp_path, resume=str(first.last_path)))
    assert first.last_path.read_bytes() == before


def test_train_on_a_folder_then_evaluate_and_predict(tmp_path):
    root = write_synthetic_dataset(tmp_path / "synth", n=20, size=56, seed=1)
    result = btrain.fit(small_config(tmp_path, data_dir=str(root), epochs=2))
    from banet_lite.evaluate import evaluate, predict

    rows, summary = evaluate(result.best_path, root, split="test", progress=False, out_dir=tmp_path / "ev")
    n_test = sum(1 for line in (root / "split.csv").read_text().splitlines()[1:] if line.endswith(",test"))
    assert len(rows) == summary["n_images"] == n_test
    assert (tmp_path / "ev" / "per_image.csv").exists() and (tmp_path / "ev" / "summary.json").exists()
    from banet_lite.metrics import METRIC_NAMES

    assert set(METRIC_NAMES) <= set(summary)
    written = predict(result.best_path, root / "images", tmp_path / "pred", progress=False)
    assert len(written) == 20
    from PIL import Image

    with Image.open(written[0]) as im:
        assert im.size == (56, 56) and im.mode == "L"
    assert written[0].name.endswith("_mask.png")  # <stem>_mask.png, beside <stem>_overlay.png
    assert (tmp_path / "pred" / written[0].name.replace("_mask.png", "_overlay.png")).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_cpu_processes_with_gloo(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "banet_lite", "train", "--preset", "tiny", "--epochs", "2",
           "--batch-size", "2", "--img-size", "48", "--synthetic-train", "8", "--out", str(out), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("best val Dice") == 1  # rank 0 alone prints
    rows = btrain.read_history(out / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    ckpt = bl.checkpoint.load_checkpoint(out / "last.pt")
    assert ckpt["train_config"]["batch_size"] == 2
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved without the DDP wrapper


def test_a_progress_bar_does_not_change_the_result(tmp_path):
    quiet = btrain.fit(small_config(tmp_path, out=str(tmp_path / "q"), epochs=1))
    shown = btrain.fit(small_config(tmp_path, out=str(tmp_path / "p"), epochs=1, progress=True))
    for name, value in quiet.model.state_dict().items():
        torch.testing.assert_close(shown.model.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_unet_checkpoint_rebuilds_its_own_width(tmp_path):
    result = btrain.fit(small_config(tmp_path, preset="unet", epochs=1, model_overrides={"base_width": 4}))
    model = bl.checkpoint.model_from_checkpoint(bl.checkpoint.load_checkpoint(result.best_path))
    assert bl.count_parameters(model) == bl.count_parameters(bl.build_model("unet", base_width=4))


def test_evaluate_without_split_csv_uses_the_runs_seeded_test_split(tmp_path):
    from banet_lite import data as bdata
    from banet_lite.evaluate import evaluate

    root = write_synthetic_dataset(tmp_path / "synth", n=15, size=40, seed=2)
    (root / "split.csv").unlink()
    result = btrain.fit(small_config(tmp_path, data_dir=str(root), epochs=1, seed=5))
    rows, _ = evaluate(result.best_path, root, split="test", progress=False)
    expected = bdata.split_pairs(bdata.find_pairs(root), None, seed=5)["test"]
    assert [r["stem"] for r in rows] == [p.stem for p in expected]


# ------------------------------------------------------------------- backbone weights
def test_pretrained_auto_resolves_per_preset_and_misuse_fails_before_any_data(tmp_path):
    assert btrain.TrainConfig(preset="paper", pretrained="auto").resolved().pretrained == "imagenet"
    assert btrain.TrainConfig(preset="lite", pretrained="auto").resolved().pretrained is None
    assert btrain.TrainConfig(preset="unet", pretrained="auto").resolved().pretrained is None
    assert btrain.TrainConfig(preset="paper").resolved().pretrained is None  # the default: random weights
    with pytest.raises(ValueError, match="U-Net baseline"):
        btrain.fit(small_config(tmp_path, preset="unet", pretrained="imagenet", data_dir=str(tmp_path / "none")))
    with pytest.raises(ValueError, match="use_pee"):
        btrain.fit(small_config(tmp_path, preset="unet", model_overrides={"use_pee": False}))
    assert not (tmp_path / "run").exists()


def test_fit_loads_a_weights_file_says_so_and_a_resume_does_not_need_it(tmp_path, capsys):
    from banet_lite.model.backbone import DilatedResNet

    torch.manual_seed(7)
    state = {k: torch.randn_like(v.float()).to(v.dtype) if v.dtype.is_floating_point else v
             for k, v in DilatedResNet(18, base_width=8).state_dict().items()}  # the tiny preset's backbone
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 64), torch.randn(1000)
    weights = tmp_path / "tiny_backbone.pth"
    torch.save(state, weights)
    run = tmp_path / "drive" / "MyDrive" / "banet" / "run"  # any new folder, e.g. on a mounted Google Drive
    first = btrain.fit(small_config(tmp_path, out=str(run), pretrained=str(weights), stop_after=1, epochs=2))
    assert first.last_path == run / "last.pt" and (run / "history.csv").exists()
    log = capsys.readouterr().out
    assert f"backbone: loaded 120 tensors from {weights} (unused: fc.bias, fc.weight)" in log
    assert bl.checkpoint.load_checkpoint(first.last_path)["train_config"]["pretrained"] == str(weights)

    # the weights were trained from the file's values (one epoch moves them only a little)
    start, trained = state["layer1.0.conv1.weight"], first.model.backbone.layer1[0].conv1.weight.detach()
    assert (trained - start).abs().mean() < 0.1 * start.abs().mean()

    weights.unlink()  # resuming takes every weight from the checkpoint
    resumed = btrain.fit(small_config(tmp_path, out=str(run), pretrained=str(weights), epochs=2,
                                      resume=str(first.last_path)))
    assert len(resumed.history) == 2 and "backbone: loaded" not in capsys.readouterr().out


# ------------------------------------------------------------------- DataLoader workers
def test_workers_decode_every_image_once_across_epochs(tmp_path, monkeypatch):
    from banet_lite import data as bdata
    from banet_lite.data import datasets

    root = write_synthetic_dataset(tmp_path / "synth", n=14, size=40, seed=1)
    log = tmp_path / "decoded.txt"
    real_load_image = bdata.load_image

    def counting_load_image(path, *args, **kwargs):  # appends to a file: counts in worker processes too
        with open(log, "a") as f:
            f.write(f"{Path(path).name}\n")
        return real_load_image(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_image", counting_load_image)  # where FolderDataset looks it up
    result = btrain.fit(small_config(tmp_path, data_dir=str(root), epochs=2, workers=1))
    assert len(result.history) == 2
    decoded = log.read_text().splitlines()
    splits = bdata.split_pairs(bdata.find_pairs(root), bdata.read_split_csv(root), seed=3)
    assert sorted(decoded) == sorted(p.image.name for p in splits["train"] + splits["val"])  # once each
    assert all(row["train_images_per_s"] > 0 for row in result.history)


def test_workers_do_not_change_the_result(tmp_path):
    root = write_synthetic_dataset(tmp_path / "synth", n=14, size=40, seed=1)
    plain = btrain.fit(small_config(tmp_path, out=str(tmp_path / "w0"), data_dir=str(root), epochs=2))
    workers = btrain.fit(small_config(tmp_path, out=str(tmp_path / "w2"), data_dir=str(root), epochs=2, workers=2))
    for name, value in plain.model.state_dict().items():
        torch.testing.assert_close(workers.model.state_dict()[name], value, rtol=0, atol=0, msg=name)


# ------------------------------------------------------------------- checkpoints: how often, and how written
def test_last_pt_every_n_epochs_at_an_early_stop_and_at_the_end(tmp_path, monkeypatch):
    from banet_lite import checkpoint

    written, real_save = [], checkpoint.save_checkpoint
    monkeypatch.setattr(checkpoint, "save_checkpoint",
                        lambda path, state: written.append((Path(path).name, state["epoch"])) or real_save(path, state))
    first = btrain.fit(small_config(tmp_path, epochs=5, checkpoint_every=2, stop_after=3))
    assert [e for name, e in written if name == "last.pt"] == [2, 3]  # every 2nd epoch, and at the stop
    written.clear()
    resumed = btrain.fit(small_config(tmp_path, epochs=5, checkpoint_every=2, resume=str(first.last_path)))
    assert [e for name, e in written if name == "last.pt"] == [4, 5]  # and at the end
    assert len(resumed.history) == 5 and bl.checkpoint.load_checkpoint(resumed.last_path)["epoch"] == 5


def test_save_checkpoint_writes_locally_then_replaces_atomically(tmp_path, monkeypatch):
    import tempfile

    from banet_lite.training.checkpoint import save_checkpoint

    local, dest = tmp_path / "local", tmp_path / "drive" / "last.pt"
    local.mkdir()
    dest.parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(local))
    save_checkpoint(dest, {"model": {"w": torch.ones(3)}, "config": {}})
    assert torch.load(dest, weights_only=True)["model"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert list(local.iterdir()) == [] and [p.name for p in dest.parent.iterdir()] == ["last.pt"]

    def broken_save(state, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(dest, {"model": {}, "config": {}})
    assert torch.load(dest, weights_only=True)["model"]["w"].tolist() == [1.0, 1.0, 1.0]  # the old one, whole
    assert list(local.iterdir()) == [] and [p.name for p in dest.parent.iterdir()] == ["last.pt"]


def test_workers_auto_and_bad_settings_named(monkeypatch):
    from banet_lite.training.config import resolve_workers

    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert resolve_workers(None, "cpu") == 0  # workers would take the training step's cores
    assert resolve_workers(None, "cuda") == min(4, os.cpu_count())
    assert resolve_workers(2, "cpu") == 2 and resolve_workers(0, "cuda") == 0  # explicit numbers honoured
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(os.cpu_count()))
    assert resolve_workers(None, "cuda") == 1  # torchrun's processes share the CPUs
    assert btrain.TrainConfig().workers is None
    with pytest.raises(ValueError, match="checkpoint_every=0"):
        btrain.TrainConfig(checkpoint_every=0).resolved()
    with pytest.raises(ValueError, match="workers=-1"):
        btrain.TrainConfig(workers=-1).resolved()
