"""The command line under hostile input (issue 28): each input ends in one `error:` line and exit code 2, or in
the correct result, and no file that existed before it changes (every file in the folders involved is hashed
before and after). Tiny data made here (32-40 px, a dozen images); runs in-process through `main`, in a
subprocess where the exit code, stderr or the imports of a fresh interpreter are the point."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from banet_lite import data as bdata
from banet_lite.__main__ import main
from banet_lite.errors import CheckpointError, OutputError
from banet_lite.files import atomic_write

TRAIN = ["--img-size", "40", "--batch-size", "4", "--device", "cpu", "--no-progress"]


# ------------------------------------------------------------------------------------------------ helpers
def snapshot(*roots: Path) -> dict[str, str]:
    """{file: sha256} for every file under `roots` (a file root: itself)."""
    files = [p for root in roots if root.exists() for p in ([root] if root.is_file() else root.rglob("*"))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def refused(capsys, argv: list, *roots: Path, needle: str = "") -> str:
    """Run `argv`; assert exit code 2, one `error:` line holding `needle`, and every file under `roots` unchanged."""
    before = snapshot(*roots)
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    assert needle in err, err
    assert snapshot(*roots) == before
    return err


def synth(root: Path, n: int = 12, size: int = 40, split_csv: bool = True) -> Path:
    bdata.write_synthetic_dataset(root, n=n, size=size, seed=1)
    if not split_csv:
        (root / "split.csv").unlink()
    return root


def paint_masks(root: Path, values: tuple[int, ...]) -> None:
    """Rewrite every mask as a label mask: background values[0], the lesion split between the other values."""
    for path in sorted((root / "masks").glob("*.png")):
        lesion = np.asarray(Image.open(path)) > 127
        out = np.full(lesion.shape, values[0], np.uint8)
        for k, value in enumerate(values[1:]):
            out[lesion & (np.arange(lesion.shape[1])[None] % (len(values) - 1) == k)] = value
        Image.fromarray(out).save(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run stopped after epoch 1 of 2 (40 px, batch 4: not tiny's defaults) on a folder with split.csv."""
    root = tmp_path_factory.mktemp("trained")
    data = synth(root / "data")
    assert main(["train", "--data-dir", str(data), "--out", str(root / "run"), "--epochs", "2", "--stop-after", "1",
                 *TRAIN]) == 0
    return data, root / "run"


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the trained run, free to change."""
    data, run = trained
    return data, Path(shutil.copytree(run, tmp_path / "run"))


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder read-only: chmod 555, and where that binds nobody (root), refuse writes under it as the
    kernel would (EACCES), in the file-system calls Python and the package use."""
    folders: list[Path] = []

    def blocked(path) -> bool:
        p = Path(os.path.abspath(os.fspath(path)))
        return any(p == f or f in p.parents for f in folders)

    def denied(path):
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    if os.geteuid() == 0:
        real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

        def fake_open(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+") and blocked(file):
                raise denied(file)
            return real_open(file, mode, *args, **kwargs)

        def fake_os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and blocked(path):
                raise denied(path)
            return real_os_open(path, flags, *args, **kwargs)

        def fake_mkdir(path, *args, **kwargs):
            if blocked(path):
                raise FileExistsError(errno.EEXIST, "File exists", str(path)) if os.path.exists(path) else denied(path)
            return real_mkdir(path, *args, **kwargs)

        for module, name, fake in ((builtins, "open", fake_open), (io, "open", fake_open), (os, "open", fake_os_open),
                                   (os, "mkdir", fake_mkdir)):
            monkeypatch.setattr(module, name, fake)

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        folders.append(Path(os.path.abspath(folder)))
        return folder

    yield make
    for folder in folders:
        folder.chmod(0o755)


def no_inference(monkeypatch):
    """Fail the test if evaluate or predict segments an image."""
    import banet_lite.evaluate as bevaluate

    def boom(*args, **kwargs):
        raise AssertionError("an image was segmented before the check")

    monkeypatch.setattr(bevaluate, "image_logits", boom)


# ---------------------------------------------------------------------------------- silent wrong results
@pytest.mark.parametrize("values, shown", [((0, 1, 2), "{0, 1, 2}"), ((0, 100), "{0, 100}")])
def test_label_masks_are_refused_naming_their_values(tmp_path, capsys, values, shown):
    data = synth(tmp_path / "data")
    paint_masks(data, values)
    out = tmp_path / "run"
    refused(capsys, ["train", "--data-dir", data, "--out", out, "--epochs", "1", *TRAIN], data, needle=shown)
    assert not out.exists() or not any(out.iterdir())  # nothing trained, nothing written
    refused(capsys, ["check-data", data], data, needle=shown)


def test_foreground_binarises_label_masks_as_equal_to_it(tmp_path, capsys):
    data = synth(tmp_path / "data")
    paint_masks(data, (0, 1, 2))
    mask = next((data / "masks").glob("*.png"))
    values = np.asarray(Image.open(mask))
    assert np.array_equal(bdata.load_mask(mask, foreground=2), (values == 2).astype(np.uint8))
    assert main(["check-data", str(data), "--foreground", "2"]) == 0
    assert main(["train", "--data-dir", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--foreground", "2",
                 *TRAIN]) == 0
    from banet_lite.training.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run" / "best.pt")["train_config"]["foreground"] == 2
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--data-dir", str(data),
                 "--device", "cpu", "--no-progress"]) == 0  # the run's foreground, by default
    assert '"n_images"' in capsys.readouterr().out


@pytest.mark.parametrize("flags, needle", [
    (["--epochs", "-3"], "epochs=-3"), (["--epochs", "0"], "epochs=0"), (["--img-size", "0"], "img_size=0"),
    (["--img-size", "-8"], "img_size=-8"), (["--batch-size", "0"], "batch_size=0"), (["--lr", "-1"], "lr=-1"),
    (["--val-fraction", "1.5"], "val_fraction=1.5"), (["--preset", "unet", "--img-size", "8"], "16 px"),
    (["--lr", "nan"], "lr=nan"), (["--time-budget", "0"], "time_budget=0"),
])
def test_settings_out_of_range_are_one_line_before_any_work(tmp_path, capsys, flags, needle):
    data = synth(tmp_path / "data")
    out = tmp_path / "run"
    refused(capsys, ["train", "--data-dir", data, "--out", out, "--device", "cpu", *flags], data, needle=needle)
    assert not out.exists()  # nothing trained, not even the folder made


def test_resume_without_flags_continues_the_run_as_it_was(run_copy, capsys):
    data, run = run_copy
    capsys.readouterr()
    assert main(["train", "--resume", str(run / "last.pt"), "--device", "cpu", "--no-progress"]) == 0
    from banet_lite.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run / "last.pt")
    cfg = ckpt["train_config"]
    assert (cfg["img_size"], cfg["epochs"], cfg["batch_size"], ckpt["epoch"]) == (40, 2, 4, 2)  # not 96 / 12 / 8
    assert cfg["data_dir"] == str(data.resolve()) and len(ckpt["history"]) == 2
    out = capsys.readouterr().out
    assert "resumed from" in out and "epoch 2/2" in out


@pytest.mark.parametrize("flags, needle", [(["--preset", "lite"], "--preset lite"),
                                           (["--img-size", "64"], "--img-size 64"), (["--epochs", "5"], "epochs 2")])
def test_resume_with_a_contradicting_flag_is_one_line(run_copy, capsys, flags, needle):
    data, run = run_copy
    refused(capsys, ["train", "--resume", run / "last.pt", *flags], run, data, needle=needle)


def test_fit_resuming_into_another_network_is_one_line(run_copy):
    """From Python: a lite network resumed from a tiny checkpoint is a CheckpointError line, not 334 lines."""
    from banet_lite.training.train import TrainConfig, fit

    data, run = run_copy
    before = snapshot(run)
    with pytest.raises(CheckpointError) as err:
        fit(TrainConfig(preset="lite", data_dir=str(data), out=str(run), resume=str(run / "last.pt"), epochs=2,
                        img_size=40, batch_size=4, device="cpu", progress=False))
    assert "network differs" in str(err.value) and "\n" not in str(err.value)
    assert snapshot(run) == before


def test_a_second_run_into_an_existing_out_is_refused(run_copy, capsys):
    data, run = run_copy
    refused(capsys, ["train", "--data-dir", data, "--out", run, "--epochs", "1", *TRAIN], run, data,
            needle="holds another run")


def test_overwrite_replaces_the_old_run_whole(run_copy, capsys):
    data, run = run_copy
    before = snapshot(run)
    assert main(["train", "--data-dir", str(data), "--out", str(run), "--epochs", "1", "--overwrite", *TRAIN]) == 0
    assert "removed the earlier run's" in capsys.readouterr().out
    from banet_lite.training.train import read_history

    assert len(read_history(run / "history.csv")) == 1 and snapshot(run) != before
    assert (run / "run.log").read_text().count("# settings:") == 1  # the old run's log went with it


@pytest.mark.parametrize("where", ["same", "inside"])
def test_predict_into_its_input_folder_is_refused(trained, tmp_path, capsys, where):
    data, run = trained
    images = Path(shutil.copytree(data / "images", tmp_path / "images"))
    output = images if where == "same" else images / "predictions"
    refused(capsys, ["predict", "--checkpoint", run / "best.pt", "--input", images, "--output", output,
                     "--device", "cpu"], images, needle="input folder")
    assert not (images / "predictions").exists()


def test_predict_refuses_two_images_of_one_stem(trained, tmp_path, capsys):
    data, run = trained
    images = tmp_path / "images"
    images.mkdir()
    source = next((data / "images").glob("*.png"))
    shutil.copy(source, images / "a.png")
    Image.open(source).convert("RGB").save(images / "a.jpg")
    refused(capsys, ["predict", "--checkpoint", run / "best.pt", "--input", images, "--output", tmp_path / "pred",
                     "--device", "cpu"], images, needle="a.jpg")
    assert not (tmp_path / "pred").exists()


def test_predict_never_replaces_a_file_unless_told(trained, tmp_path, capsys):
    data, run = trained
    argv = ["predict", "--checkpoint", str(run / "best.pt"), "--input", str(data / "images"), "--output",
            str(tmp_path / "pred"), "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    names = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert len(names) == 24 and all(n.endswith(("_mask.png", "_overlay.png")) for n in names)
    refused(capsys, argv, tmp_path / "pred", data, needle="exists already")
    assert main([*argv, "--overwrite"]) == 0


def test_predict_one_image_with_probabilities(trained, tmp_path, capsys):
    data, run = trained
    image = next((data / "images").glob("*.png"))
    before = snapshot(data)
    assert main(["predict", "--checkpoint", str(run / "best.pt"), "--input", str(image), "--output",
                 str(tmp_path / "pred"), "--probabilities", "--device", "cpu", "--no-progress"]) == 0
    assert "p = value / 65535" in capsys.readouterr().out and snapshot(data) == before
    stem = image.stem
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == [f"{stem}_mask.png", f"{stem}_overlay.png",
                                                                     f"{stem}_prob.png"]
    pred = tmp_path / "pred"
    with Image.open(pred / f"{stem}_prob.png") as prob, Image.open(pred / f"{stem}_mask.png") as mask:
        assert prob.mode.startswith("I;16") and prob.size == mask.size
        p = np.asarray(prob, dtype=np.float64) / 65535
        agree = ((p > 0.5) == (np.asarray(mask) > 0)).mean()
    assert 0.0 <= p.min() <= p.max() <= 1.0 and agree > 0.999


# ----------------------------------------------------------------------------- tracebacks -> one line
def test_few_pairs_without_split_csv_name_the_validation_fix(tmp_path, capsys):
    data = synth(tmp_path / "data", n=6, split_csv=False)
    out = tmp_path / "run"
    refused(capsys, ["train", "--data-dir", data, "--out", out, "--epochs", "1", *TRAIN], data,
            needle="validation split is empty")
    err = refused(capsys, ["check-data", data], data, needle="--val-fraction")
    assert "0.2" in err  # 5 training images: a fifth is one
    assert not (out / "last.pt").exists()
    assert main(["check-data", str(data), "--val-fraction", "0.2"]) == 0


@pytest.mark.parametrize("where", ["is", "under"])
def test_out_that_is_a_file_or_lies_under_one(tmp_path, capsys, where):
    data = synth(tmp_path / "data")
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    out = blocker if where == "is" else blocker / "run"
    refused(capsys, ["train", "--data-dir", data, "--out", out, "--epochs", "1", *TRAIN], blocker, data,
            needle="a file stands where a folder should be")


def test_read_only_out_is_one_line_before_an_epoch(tmp_path, capsys, read_only):
    data = synth(tmp_path / "data")
    locked = read_only(tmp_path / "locked")
    err = refused(capsys, ["train", "--data-dir", data, "--out", locked / "run", "--epochs", "1", *TRAIN], data,
                  needle="permission denied")
    assert str(locked / "run") in err


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_read_only_outputs_of_evaluate_and_predict_before_any_inference(trained, tmp_path, capsys, read_only,
                                                                       monkeypatch, command):
    data, run = trained
    locked = read_only(tmp_path / "locked")
    no_inference(monkeypatch)
    argv = (["evaluate", "--checkpoint", run / "best.pt", "--data-dir", data, "--out", locked / "eval"]
            if command == "evaluate" else
            ["predict", "--checkpoint", run / "best.pt", "--input", data / "images", "--output", locked / "pred"])
    refused(capsys, [*argv, "--device", "cpu"], data, run, needle="permission denied")


def test_atomic_write_never_hides_the_first_error(tmp_path, monkeypatch):
    """Disk full while writing, and the clean-up failing too: the error is the first one, naming the path."""
    target = tmp_path / "summary.json"
    target.write_text("the old results")

    def full(tmp):
        Path(tmp).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    real_unlink = Path.unlink

    def stuck(self, missing_ok=False):
        if self.name.endswith(".tmp"):
            raise PermissionError(errno.EROFS, "Read-only file system", str(self))
        return real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", stuck)
    with pytest.raises(OutputError) as err:
        atomic_write(target, full)
    assert str(err.value) == f"{target}: cannot write (no space left on the device)"
    assert target.read_text() == "the old results"


def test_disk_full_while_training_is_one_line_and_the_checkpoints_survive(run_copy, capsys, monkeypatch):
    import banet_lite.training.checkpoint as bcheckpoint
    from banet_lite.training.checkpoint import load_checkpoint

    data, run = run_copy
    checkpoints = snapshot(run / "best.pt", run / "last.pt", run / "history.csv")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(bcheckpoint, "_copy_to_disk", full)
    err = refused(capsys, ["train", "--resume", run / "last.pt", "--device", "cpu", "--no-progress"], data,
                  needle="no space left on the device")
    assert str(run) in err and snapshot(run / "best.pt", run / "last.pt", run / "history.csv") == checkpoints
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
    assert "error: " in (run / "run.log").read_text().splitlines()[-1]  # the run's log says how it ended


# ----------------------------------------------------------------------------------------- friction
def test_help_answers_without_torch_with_examples_and_a_version():
    code = ("import sys, contextlib, io\nfrom banet_lite.__main__ import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n    for argv in (['--help'], ['--version'], ['train', '--help']):\n"
            "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
            "print(buf.getvalue()); print('torch imported:', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert "torch imported: False" in out
    assert "examples" in out and "banet-lite 0." in out and "--resume" in out and "--overwrite" in out


def test_no_progress_keeps_one_line_per_epoch_and_run_log_keeps_them(trained):
    data, run = trained
    log = (run / "run.log").read_text()
    assert "# settings:" in log and "train: preset tiny, 40 px, 2 epochs of batch 4" in log
    assert "epoch 1/2:" in log and "ETA" in log and "stopped after 1 epoch(s)" in log and "done: best val Dice" in log


def test_a_refusal_in_a_real_process_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "banet_lite", "train", "--epochs", "-3", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: epochs=-3: must be 1 or more (the length of the schedule)"
    assert proc.stdout == "" and not (tmp_path / "r").exists()


def test_summary_json_holds_null_never_nan(trained, tmp_path, capsys, monkeypatch):
    import banet_lite.evaluate as bevaluate

    data, run = trained
    real = bevaluate.image_metrics
    monkeypatch.setattr(bevaluate, "image_metrics", lambda pred, target: {**real(pred, target), "hd95": float("nan")})
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data-dir", str(data), "--out",
                 str(tmp_path / "e"), "--device", "cpu", "--no-progress"]) == 0

    def no_constants(name):
        raise AssertionError(f"{name} in JSON")

    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "e" / "summary.json").read_text(), parse_constant=no_constants)
    assert summary["hd95"] is None and "NaN" not in printed


def test_evaluate_without_split_never_mixes_training_images_in(trained, tmp_path, capsys):
    data, run = trained
    test_stems = [line.split(",")[0] for line in (data / "split.csv").read_text().splitlines()[1:]
                  if line.endswith(",test")]
    for extra, split, n in (([], "test", len(test_stems)), (["--split", "all"], "all", 12)):
        assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data-dir", str(data), "--device", "cpu",
                     "--no-progress", *extra]) == 0
        summary = json.loads((run / f"eval_data_{split}" / "summary.json").read_text())
        assert summary["split"] == split and summary["n_images"] == n
    # the checkpoint's own training folder without split.csv: the seeded test split its run held out
    plain = synth(tmp_path / "plain", split_csv=False)
    assert main(["train", "--data-dir", str(plain), "--out", str(tmp_path / "run"), "--epochs", "1", *TRAIN]) == 0
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--data-dir", str(plain),
                 "--device", "cpu", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "run" / "eval_plain_test" / "summary.json").read_text())
    assert summary["split"] == "test" and summary["n_images"] == len(bdata.load_splits(plain, 0, 0.1)["test"])


def test_two_data_folders_keep_their_own_results(trained, tmp_path, capsys):
    data, run = trained
    other = synth(tmp_path / "other", split_csv=False)
    for folder in (data, other):
        assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data-dir", str(folder), "--device", "cpu",
                     "--no-progress"]) == 0
    first = json.loads((run / "eval_data_test" / "summary.json").read_text())
    second = json.loads((run / "eval_other_all" / "summary.json").read_text())
    assert first["data_dir"] != second["data_dir"] and second["n_images"] == 12
    refused(capsys, ["evaluate", "--checkpoint", run / "best.pt", "--data-dir", other, "--out", run / "eval_data_test",
                     "--device", "cpu"], run, needle="another evaluation")


def test_ctrl_c_prints_the_exact_resume_command_and_it_continues_the_run(tmp_path, capsys, monkeypatch):
    import banet_lite.training.train as btrain

    data = synth(tmp_path / "data")
    run = tmp_path / "run"
    real, calls = btrain.train_one_epoch, []

    def interrupted_in_epoch_2(r, epoch):
        calls.append(epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(r, epoch)

    monkeypatch.setattr(btrain, "train_one_epoch", interrupted_in_epoch_2)
    assert main(["train", "--data-dir", str(data), "--out", str(run), "--epochs", "2", "--checkpoint-every", "1",
                 *TRAIN]) == 130  # last.pt after epoch 1 (the default writes it every 5 epochs)
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted; continue the run with: python -m banet_lite train --resume")
    command = shlex.split(err.split("continue the run with: ")[1])
    assert command[:4] == ["python", "-m", "banet_lite", "train"] and "--device" in command
    assert main(command[3:]) == 0
    from banet_lite.training.train import read_history

    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1, 2]


def test_defaults_come_from_train_config():
    from banet_lite.__main__ import build_parser
    from banet_lite.training.config import TrainConfig

    parser, defaults = build_parser(), TrainConfig()
    for argv in (["evaluate", "--checkpoint", "c", "--data-dir", "d"], ["predict", "--checkpoint", "c", "--input", "i",
                                                                      "--output", "o"]):
        args = parser.parse_args(argv)
        assert (args.device, args.progress) == (defaults.device, defaults.progress)
    args = parser.parse_args(["check-data", "d"])
    assert (args.seed, args.val_fraction) == (defaults.seed, defaults.val_fraction)
    assert parser.parse_args(["train", "--boundary-pos-weight", "none"]).boundary_pos_weight is None


def test_check_data_reports_and_refuses_a_split_of_empty_masks(tmp_path, capsys):
    data = synth(tmp_path / "data")
    capsys.readouterr()
    assert main(["check-data", str(data)]) == 0
    report = capsys.readouterr().out
    assert "12 image/mask pairs" in report and "40x40 (12)" in report and "{0, 255} in 12" in report
    assert "split (split.csv): train" in report and report.rstrip().endswith("ok")
    for path in (data / "masks").glob("*.png"):  # every lesion erased
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(path)
    refused(capsys, ["check-data", data], data, needle="is empty: nothing to learn")
    refused(capsys, ["train", "--data-dir", data, "--out", tmp_path / "run", "--epochs", "1", *TRAIN], data,
            needle="is empty: nothing to learn")


def test_synth_into_a_folder_with_files_is_refused(trained, capsys):
    data, _ = trained
    refused(capsys, ["synth", "--out", data, "--n", "4", "--size", "32"], data, needle="holds files already")


@pytest.mark.parametrize("preset, smallest", [("tiny", 1), ("unet", 16)])
def test_the_stated_minimum_image_size_is_the_real_one(preset, smallest):
    """model/config.py `min_img_size`: a training step works at the minimum (batch 2), and one pixel less fails."""
    import torch

    from banet_lite.model.config import min_img_size
    from banet_lite.model.losses import joint_loss_for
    from banet_lite.model.registry import build_model

    model = build_model(preset).train()
    assert min_img_size(model.config) == smallest
    x, m = torch.randn(2, 3, smallest, smallest), (torch.rand(2, 1, smallest, smallest) > 0.5).float()
    joint_loss_for(model)(model(x), m)[0].backward()
    if smallest > 1:
        with pytest.raises(RuntimeError):
            model(torch.randn(2, 3, smallest - 1, smallest - 1))


def test_mask_values_rule():
    from banet_lite.data.checks import mask_problem

    def problem(values, counts, lossy=False):
        return mask_problem(np.array(values), np.array(counts), lossy)

    for values in ([0, 1], [0, 255], [0], [255], [1], [0, 65535]):
        assert problem(values, [10] * len(values)) is None, values
    assert problem([0, 3, 250, 255], [900, 2, 3, 95], lossy=True) is None  # JPEG noise
    for values, lossy in (([0, 1, 2], False), ([0, 100], False), ([0, 128, 255], False), ([0, 100], True),
                          ([0, 4, 250], False)):
        assert "--foreground" in problem(values, [10] * len(values), lossy), values


def test_predict_with_a_broken_image_is_one_line_before_anything_is_written(trained, tmp_path, capsys):
    data, run = trained
    images = Path(shutil.copytree(data / "images", tmp_path / "images"))
    victim = sorted(images.glob("*.png"))[5]
    victim.write_bytes(victim.read_bytes()[:60])  # cut short
    refused(capsys, ["predict", "--checkpoint", run / "best.pt", "--input", images, "--output", tmp_path / "pred",
                     "--device", "cpu"], images, needle=victim.name)
    assert not (tmp_path / "pred").exists()
