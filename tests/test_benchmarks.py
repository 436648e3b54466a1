"""The benchmark suite's plumbing: quality.py's sweeps write records, report.py turns records into RESULTS.md.

No figure is measured here; the committed RESULTS.md must be what the committed records make.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    """benchmarks/NAME.py as a module (the scripts import their sibling `common` as a script would)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


report = _load("report")
quality = _load("quality")


def test_results_md_and_the_readme_table_are_what_the_records_make():
    assert report.main(["--check"]) == 0, "run: python benchmarks/report.py"


def _run(variant: str, seed: int, dice: float, sweep: str = "ablation", per_image=None) -> dict:
    return {"command": "python benchmarks/quality.py ablation", "date": "2026-12-03T00:00:00+00:00",
            "torch": "2.13.0", "threads": 2, "machine": "x86_64", "sweep": sweep, "dataset": "toy",
            "variant": variant, "seed": seed, "recipe": {"epochs": 3, "img_size": 64, "batch_size": 8, "lr": 1e-3,
                                                         "budget_min": None},
            "set": {}, "preset": "lite", "overrides": {}, "params": 1000, "epochs_trained": 3, "minutes": 1.0,
            "n_test": 10, "dice": dice, "jaccard": dice - 0.1, "boundary_f": 0.5, "hd95": 4.0,
            **({"per_image": per_image} if per_image else {})}


def _scores(shift: float, seed: int) -> dict:
    """Per-image scores of 40 test images: what the images share, plus `shift`, plus a little noise."""
    import numpy as np

    base = np.linspace(0.5, 0.95, 40)
    noise = np.random.default_rng(seed).normal(0, 0.005, 40)
    dice = (base + shift + noise).round(6).tolist()
    return {"stem": [f"img{i:02d}" for i in range(40)], "dice": dice, "boundary_f": dice}


def test_a_sweep_table_gives_mean_sd_and_the_paired_verdict(tmp_path, monkeypatch):
    runs = [_run("BA-Net (full)", 0, 0.80, per_image=_scores(0.0, 0)), _run("BA-Net (full)", 1, 0.82,
                                                                            per_image=_scores(0.0, 1)),
            _run("no PEE", 0, 0.70, per_image=_scores(-0.03, 2)), _run("no PEE", 1, 0.72,
                                                                      per_image=_scores(-0.03, 3)),
            _run("no IA", 0, 0.79, per_image=_scores(0.0, 4)), _run("no IA", 1, 0.84, per_image=_scores(0.0, 5))]
    (tmp_path / "quality.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    text = report.quality("ablation")
    assert "| BA-Net (full) | lite | 1,000 | 2 | 3/3 | 1.0 | 0.810 ± 0.014 |" in text
    assert "| no PEE | test Dice | -0.030 | " in text and "| p < 0.001 | BA-Net (full) better |" in text
    no_ia = next(line for line in text.splitlines() if line.startswith("| no IA | test Dice"))
    assert no_ia.endswith("| no difference detected |"), no_ia
    del runs[-1]["per_image"]  # one seed of "no IA" without per-image scores: that variant gets no verdict
    (tmp_path / "quality.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    text = report.quality("ablation")
    assert "| no PEE | test Dice | -0.030 | " in text and "| no IA | test Dice" not in text
    assert "No paired verdict for no IA: its records predate per-image scores." in text
    for r in runs[:-1]:
        del r["per_image"]
    (tmp_path / "quality.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert "No paired verdict: these records carry no per-image scores" in report.quality("ablation")
    assert report.quality("tune").startswith("No run yet")


def test_the_template_names_only_known_sections():
    with pytest.raises(SystemExit, match="unknown section"):
        report.render("{{ nonsense }}\n")
    with pytest.raises(SystemExit, match="markers"):
        report.with_readme_table("# a README without the markers\n", "| table |")


def test_a_quality_sweep_writes_one_record_per_run_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--dataset", "synthetic", "--variants", "tiny", "--epochs", "1", "--img-size", "48",
            "--results", str(tmp_path / "results"), "--set", "augment=false"]
    quality.main(args)
    lines = (tmp_path / "results" / "quality.jsonl").read_text().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert (r["sweep"], r["dataset"], r["variant"], r["preset"], r["set"]) == ("train", "synthetic", "tiny", "tiny",
                                                                            {"augment": False})
    assert r["recipe"]["epochs"] == 1 and r["epochs_trained"] == 1 and r["n_test"] == 80
    assert 0.0 <= r["dice"] <= 1.0 and r["command"].startswith("python ")
    quality.main(args)  # the same run again: already recorded, skipped
    assert "already in" in capsys.readouterr().out
    assert len((tmp_path / "results" / "quality.jsonl").read_text().splitlines()) == 1


def test_a_quality_run_cut_off_part_way_goes_on_from_its_last_epoch(tmp_path, monkeypatch, capsys):
    """A session that ends mid-run (here: stop_after=1 of 2 epochs) leaves last.pt; the next call resumes it
    and records both parts: 2 epochs trained, resumed at epoch 1, the minutes of both."""
    from dataclasses import replace

    from banet_lite.data import write_synthetic_dataset
    from banet_lite.training.train import fit

    monkeypatch.chdir(tmp_path)
    args = ["train", "--dataset", "synthetic", "--variants", "tiny", "--epochs", "2", "--img-size", "48",
            "--results", str(tmp_path / "results"), "--set", "augment=false"]
    data = write_synthetic_dataset(tmp_path / "runs" / "quality" / "synthetic_data", **quality.SYNTHETIC)
    out = tmp_path / "runs" / "quality" / "train" / "synthetic" / "tiny_seed0"
    cfg = quality.run_config("train", "tiny", 0, data, out, {"epochs": 2, "img_size": 48}, {"augment": False},
                             None)
    assert cfg.resume is None and cfg.checkpoint_every == 1
    first = fit(replace(cfg, stop_after=1))
    assert len(first.history) == 1 and (out / "last.pt").is_file()
    quality.main(args)
    assert "resumed from" in capsys.readouterr().out
    r = json.loads((tmp_path / "results" / "quality.jsonl").read_text())
    assert (r["epochs_trained"], r["resumed_at_epoch"]) == (2, 1)
    assert r["minutes"] * 60 >= first.history[0]["seconds"]


def test_quality_refuses_what_it_cannot_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="augmnt=false"):
        quality.main(["train", "--dataset", "synthetic", "--set", "augmnt=false"])
    with pytest.raises(SystemExit):
        quality.main(["ablation", "--dataset", "synthetic", "--variants", "no such thing"])
    assert "--variants ['no such thing']: the ablation sweep has BA-Net (full)" in capsys.readouterr().err
    (tmp_path / "images").mkdir()
    with pytest.raises(SystemExit):
        quality.main(["train", "--data-dir", str(tmp_path)])
    assert f"--data-dir {tmp_path}: no split.csv" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_the_budget_sweep_compares_two_real_schedules_and_needs_a_budget(tmp_path, monkeypatch, capsys):
    """Both variants are TrainConfig settings of the library (schedule="epochs": today's, the budget only
    stops; "budget": the schedule spans it); without --budget-min there is nothing to compare."""
    from banet_lite.training.config import TrainConfig

    variants = quality.SWEEPS["budget"]
    assert {v: o["schedule"] for v, (_, o) in variants.items()} == {"fixed epochs (today)": "epochs",
                                                                    "budgeted schedule": "budget"}
    for variant, (_, overrides) in variants.items():
        cfg = quality.run_config("budget", variant, 0, tmp_path, tmp_path / "run", {"epochs": 1000}, {}, 30)
        assert isinstance(cfg, TrainConfig) and cfg.schedule == overrides["schedule"]
        assert cfg.time_budget == 1800 and cfg.resolved().epochs == 1000
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        quality.main(["budget", "--dataset", "synthetic", "--epochs", "1"])
    assert "give --budget-min" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
