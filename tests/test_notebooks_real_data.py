"""Notebooks 05 and 06 on a real-data layout, as a researcher runs them: papermill with `data_dir`.

The folder is made here, laid out like the Kvasir-SEG download (`Kvasir-SEG/images/*.jpg`,
`Kvasir-SEG/masks/*.jpg`, no split.csv), from synthetic lesions: no licensed image is used. 05 trains
one short epoch on it; 06 evaluates and explores that checkpoint end to end. Every cell must run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from banet_lite import data

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
papermill = pytest.importorskip("papermill", reason="papermill is in the [notebooks] extra")


def kvasir_like(root: Path, n: int = 24, size: int = 80) -> Path:
    for i in range(n):
        image, mask = data.synthetic_sample(data.synthetic_seed(3, i), size)
        for sub, array in (("images", image), ("masks", mask * 255)):
            path = root / "Kvasir-SEG" / sub / f"case{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path, quality=95)
    return root


def outputs_text(path: Path) -> str:
    nb = json.loads(path.read_text())
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            out.append("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.slow
def test_05_then_06_on_a_kvasir_layout_folder(tmp_path):
    folder = kvasir_like(tmp_path / "kvasir")
    run = tmp_path / "run05"
    papermill.execute_notebook(
        str(NOTEBOOKS / "05_train.ipynb"), str(tmp_path / "05.ipynb"), cwd=str(tmp_path), progress_bar=False,
        parameters={"data_dir": str(folder), "epochs": 1, "img_size": 64, "out_dir": str(run)},
    )
    assert (run / "best.pt").is_file()
    papermill.execute_notebook(
        str(NOTEBOOKS / "06_evaluate_and_explore.ipynb"), str(tmp_path / "06.ipynb"), cwd=str(tmp_path),
        progress_bar=False, parameters={"data_dir": str(folder), "checkpoint": str(run / "best.pt")},
    )
    text = outputs_text(tmp_path / "06.ipynb")
    assert "checkpoint: best.pt" in text and "data: kvasir" in text
    assert "test images" in text  # the evaluation ran on the folder's seeded test split
    assert "course model" not in text.split("model:")[0]  # not the synthetic default


def test_06_without_data_says_in_one_line_how_to_get_it(tmp_path, monkeypatch):
    # PH2 has no automatic download: the notebook stops at once with the one-line DatasetError.
    monkeypatch.setenv("BANET_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(
            str(NOTEBOOKS / "06_evaluate_and_explore.ipynb"), str(tmp_path / "06.ipynb"), cwd=str(tmp_path),
            progress_bar=False, parameters={"dataset": "ph2"},
        )
    assert err.value.ename == "DatasetError"
    assert "Download it by hand" in err.value.evalue
    assert err.value.traceback == [f"DatasetError: {err.value.evalue}"]  # one line, no library insides


def test_course_model_loads_offline_and_checks_its_hash(tmp_path, monkeypatch):
    import banet_lite as bl
    from banet_lite.errors import CheckpointError
    from banet_lite.teaching import course

    model, record = bl.course_model()
    assert record["recipe"]["preset"] == "tiny" and len(record["history"]) >= record["best_epoch"]
    assert bl.count_parameters(model) == bl.count_parameters(bl.build_model("tiny"))
    assert course.COURSE_MODEL.stat().st_size <= 2 * 1024 * 1024
    damaged = tmp_path / "course_model.pt"
    blob = bytearray(course.COURSE_MODEL.read_bytes())
    blob[-10] ^= 0xFF
    damaged.write_bytes(bytes(blob))
    damaged.with_suffix(".json").write_text(course.COURSE_MODEL.with_suffix(".json").read_text())
    monkeypatch.setattr(course, "COURSE_MODEL", damaged)
    with pytest.raises(CheckpointError, match="SHA-256"):
        bl.course_model()


def test_course_model_traces_the_outline_on_held_out_lesions():
    import banet_lite as bl
    from banet_lite.teaching import course

    model, record = bl.course_model()
    f1 = course.held_out_side_f1(model)
    assert min(f1) >= 0.70, f1  # the issue's bar, on images no training or validation used
    np.testing.assert_allclose(f1, record["held_out_side_f1"], atol=0.02)  # what the record says, on any CPU


def test_the_course_records_ship_in_the_package_and_read_back_whole(tmp_path):
    """Notebook 06 reads the benchmark records from the installed package (report.py packs them): every
    packed run reads back as quality.py wrote it, minus its provenance fields."""
    from banet_lite.teaching import results

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(benchmarks))
    try:
        from common import newest_runs, read_records
    finally:
        sys.path.remove(str(benchmarks))
    written = newest_runs(read_records("quality", benchmarks / "results"))
    shipped = results.records()
    wanted = [{k: v for k, v in r.items() if k not in results.DROPPED} for r in written
              if r["sweep"] in results.PACKED_SWEEPS]
    assert shipped == wanted
    assert {r["sweep"] for r in results.records("payoff")} == {"payoff"}
    copy = tmp_path / "records.json"
    copy.write_text(results.dumps(results.pack(written)))
    assert results.records(path=copy) == shipped
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        results.records(path=tmp_path / "nowhere.json")
