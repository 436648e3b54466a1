"""benchmarks/gpu_check.sh on a bare machine: a virtual environment that cannot be built is removed and the
fix named; a half-built one is not trusted. (Its smoke mode, `--device cpu`, runs end to end in CI: .ci/run.)"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"

# A stock Ubuntu python3 without python3-venv: `-m venv` leaves bin/python behind, then fails.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = venv ]; then
  dir="${@: -1}"; mkdir -p "$dir/bin"; printf '#!/bin/sh\\nexit 0\\n' >"$dir/bin/python"; chmod +x "$dir/bin/python"
  echo "The virtual environment was not created successfully because ensurepip is not available.  On" >&2
  echo "Debian/Ubuntu systems, you need to install the python3-venv package using the following command." >&2
  exit 1
fi
exit 1  # import ensurepip, anything else: not here
"""


def run_check(tmp_path: Path) -> subprocess.CompletedProcess:
    python = tmp_path / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "GPU_CHECK_VENV": str(tmp_path / "venv"), "OUT": str(tmp_path / "out")}
    env.pop("GPU_CHECK_CURRENT_PYTHON", None)
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)


def test_a_venv_that_cannot_be_built_is_removed_and_the_fix_named(tmp_path):
    proc = run_check(tmp_path)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "no ensurepip" in last and "apt-get install python3-venv" in last and "GPU_CHECK_CURRENT_PYTHON=1" in last
    assert not (tmp_path / "venv").exists()  # nothing half-built for the next run to trust


def test_a_half_built_venv_is_built_again(tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "venv" / "bin" / "python").chmod(0o755)
    proc = run_check(tmp_path)
    assert "is incomplete (an earlier build stopped); building it again" in proc.stderr
    assert proc.returncode == 1 and not (tmp_path / "venv").exists()


def test_records_go_through_common_record_and_the_cuda_tests_are_required():
    text = SCRIPT.read_text()
    assert "from common import record" in text and 'open(os.environ["RECORD"], "a")' not in text
    assert "BANET_REQUIRE=$require" in text and "git rev-parse" not in text


def record_step() -> str:
    """The script's last step (the Python between `<<'EOF'` and `EOF`): the settings check and the record."""
    text = SCRIPT.read_text()
    return text.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]


def fake_run(run: Path, **trained) -> None:
    """What a finished run leaves for the record step: last.pt's settings and plan, history, test summary."""
    from dataclasses import asdict

    import torch

    from banet_lite.files import write_csv
    from banet_lite.training.config import TrainConfig

    (run / "eval_test").mkdir(parents=True)
    cfg = asdict(TrainConfig(preset="tiny", seed=0, time_budget=60, **trained).resolved())
    torch.save({"model": {}, "config": {}, "train_config": cfg, "scheduler": {"lr_lambdas": [{"planned_epochs": 1}]}},
               run / "last.pt")
    write_csv(run / "history.csv",
              [{"epoch": 1, "lr": 0.0, "seconds": 2.0, "train_images_per_s": 5.0, "val_dice": 0.5}])
    from banet_lite.metrics import METRIC_NAMES as metrics
    (run / "eval_test" / "summary.json").write_text(
        '{"n_images": 3, "split": "test", ' + ", ".join(f'"{k}": 0.5' for k in metrics) + "}")


@pytest.mark.parametrize("trained, fails", [({}, False), ({"boundary_pos_weight": 10.0}, True)])
def test_the_record_step_checks_the_settings_trained_and_records_through_common(tmp_path, trained, fails):
    """Both ways of training were given TrainConfig's loss weights: a run whose last.pt says it trained another
    loss (05's old boundary_pos_weight 10.0) stops the check, naming the setting; a run that trained them is
    recorded by common.record (its machine and threads fields)."""
    import json
    import sys

    fake_run(tmp_path / "run", **trained)
    env = {**os.environ, "RUN_DIR": str(tmp_path / "run"), "DEVICE": "cpu", "WEIGHTS_NOTE": "none", "COMMAND_LINE": "x",
           "WALL": "3", "BUDGET": "60", "MEMORY_LOG": str(tmp_path / "none.csv"), "CUDA_TESTS": "8 skipped",
           "RECORD_DIR": str(tmp_path), "COMMIT": "", "INVOCATION": "benchmarks/gpu_check.sh --device cpu",
           "PRESET": "tiny", "SEED": "0"}
    proc = subprocess.run([sys.executable, "-"], input=record_step(), capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    if fails:
        assert proc.returncode == 1
        said = 'other settings than it was given: {"boundary_pos_weight": {"asked": null, "trained": 10.0}}'
        assert said in proc.stderr
        assert not (tmp_path / "gpu_check.jsonl").exists()
    else:
        assert proc.returncode == 0, proc.stderr
        record = json.loads((tmp_path / "gpu_check.jsonl").read_text())
        assert {"machine", "threads", "date"} <= set(record) and record["commit"] is None
        assert record["loss"] == {"side_weight": 1.0, "boundary_weight": 1.0, "boundary_pos_weight": None}
        assert record["final_lr"] == 0.0 and "test Dice 0.5000" in proc.stdout
