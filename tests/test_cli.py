"""The command line: the documented commands work, and bad input ends in one clear line."""

import subprocess
import sys

import pytest

from banet_lite.__main__ import main


def test_synth_writes_a_folder_dataset(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "s"), "--n", "6", "--size", "32"]) == 0
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 6
    assert len(list((tmp_path / "s" / "masks").glob("*.png"))) == 6
    assert (tmp_path / "s" / "split.csv").exists()
    assert "wrote 6" in capsys.readouterr().out


def test_train_evaluate_predict_round_trip(tmp_path, capsys):
    data = tmp_path / "s"
    main(["synth", "--out", str(data), "--n", "12", "--size", "40"])
    run = tmp_path / "run"
    assert main(["train", "--data-dir", str(data), "--preset", "tiny", "--epochs", "1", "--batch-size", "4",
                 "--out", str(run), "--device", "cpu", "--pretrained", "auto"]) == 0  # auto: tiny has none
    assert "backbone: loaded" not in capsys.readouterr().out
    assert (run / "last.pt").exists() and (run / "best.pt").exists() and (run / "history.csv").exists()
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data-dir", str(data), "--split", "test"]) == 0
    assert '"dice"' in capsys.readouterr().out
    assert main(["predict", "--checkpoint", str(run / "best.pt"), "--input", str(data / "images"),
                 "--output", str(tmp_path / "pred")]) == 0
    assert len(list((tmp_path / "pred").glob("*_overlay.png"))) == 12


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--data-dir", "{tmp}/nowhere", "--epochs", "1", "--out", "{tmp}/run"], "nowhere"),
        (["evaluate", "--checkpoint", "{tmp}/missing.pt", "--data-dir", "{tmp}"], "missing.pt"),
        (["predict", "--checkpoint", "{tmp}/missing.pt", "--input", "{tmp}", "--output", "{tmp}/o"], "missing.pt"),
        (["download", "no-such-dataset"], "kvasir-seg"),
        (["diagram", "{tmp}/net.png", "--highlight", "nose"], "nose"),
        (["diagram", "{tmp}/net.png", "--preset", "unet"], "U-Net baseline"),
        (["train", "--preset", "huge", "--epochs", "1", "--out", "{tmp}/run"], "huge"),
        (["train", "--preset", "unet", "--pretrained", "imagenet", "--epochs", "1", "--out", "{tmp}/run"],
         "U-Net baseline"),
        (["train", "--preset", "unet", "--no-pee", "--epochs", "1", "--out", "{tmp}/run"], "use_pee"),
        (["train", "--preset", "lite", "--pretrained", "imagenet", "--epochs", "1", "--out", "{tmp}/run"],
         "no ImageNet weights"),
        (["train", "--preset", "tiny", "--pretrained", "{tmp}/missing.pth", "--epochs", "1", "--synthetic-train", "8",
          "--img-size", "32", "--out", "{tmp}/run"], "missing.pth"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err


@pytest.mark.parametrize("old, new", [("--edge-pos-weight", "--boundary-pos-weight"),
                                      ("--edge-weight", "--boundary-weight")])
def test_a_flag_from_banet_lite_0_1_names_its_new_name_in_one_line(tmp_path, capsys, old, new):
    with pytest.raises(SystemExit) as stop:
        main(["train", old, "10", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {old} is now {new} ") and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_diagram_writes_a_png_atomically(tmp_path, capsys):
    out = tmp_path / "docs" / "network.png"
    assert main(["diagram", str(out), "--preset", "tiny", "--highlight", "pee", "loss", "--no-cff", "--dpi", "50"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["network.png"]  # no temporary file left behind
    assert f"wrote {out}" in capsys.readouterr().out


def test_a_truncated_image_stops_training_before_it_starts_without_traceback(tmp_path):
    data = tmp_path / "s"
    main(["synth", "--out", str(data), "--n", "6", "--size", "32"])
    victim = sorted((data / "images").glob("*.png"))[2]
    victim.write_bytes(victim.read_bytes()[:60])  # cut the file short
    proc = subprocess.run([sys.executable, "-m", "banet_lite", "train", "--data-dir", str(data), "--epochs", "1",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert victim.name in proc.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


def test_every_train_config_field_is_a_flag():
    """The train flags are generated from TrainConfig: each field can be set, and no flag means its default."""
    import dataclasses

    from banet_lite.__main__ import build_parser, train_config_from_args
    from banet_lite.training.train import TrainConfig

    parser = build_parser()
    assert train_config_from_args(parser.parse_args(["train"]), TrainConfig) == TrainConfig()
    argv, expected = ["train"], {}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type).split("|")[0].strip()
        if kind == "bool":
            argv.append(flag if not f.default else "--no-" + f.name.replace("_", "-"))
            expected[f.name] = not f.default
        elif kind == "dict":
            argv += ["--model", "use_aspp=false", "reduce_dim=16", "--no-ia"]
            expected[f.name] = {"use_aspp": False, "reduce_dim": 16, "use_ia": False}
        elif kind in ("int", "float"):
            argv += [flag, "3"]
            expected[f.name] = 3
        else:
            argv += [flag, f"x-{f.name}"]
            expected[f.name] = f"x-{f.name}"
    cfg = train_config_from_args(parser.parse_args(argv), TrainConfig)
    assert {name: getattr(cfg, name) for name in expected} == expected
    assert len(expected) == len(dataclasses.fields(TrainConfig))


def test_a_bug_is_not_swallowed_as_a_user_error(monkeypatch):
    """Only the package's BANetError family becomes one line; a KeyError from a bug keeps its traceback."""
    from banet_lite import __main__ as cli

    def buggy(args):
        raise KeyError("an internal bug")

    monkeypatch.setattr(cli, "run", buggy)
    with pytest.raises(KeyError):
        cli.main(["synth", "--out", "x"])
