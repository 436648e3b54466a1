"""The benchmark runs the course reads, shipped inside the package: notebook 06 runs offline,
anywhere.

`benchmarks/quality.py` appends one record per training run to benchmarks/results/quality.jsonl:
its sweep (payoff, ablation, train, ...), dataset, variant, seed, recipe, test metrics and per-image
scores. `benchmarks/report.py` packs the records into `banet_lite/assets/quality_records.json`
(`pack`), next to RESULTS.md, and a test fails when the two differ; the notebooks read them back
with `records()`.

    payoff = runs("payoff", "kvasir-seg", epochs=12)  # dicts, as quality.py wrote them
    result = compare(payoff, "BA-Net", "BA-Net, no boundary loss")  # a stats.PairedResult
    print(result.summary("weighted", "none"))

`records` gives every shipped run, `runs` those of one sweep and dataset that carry per-image
scores; `compare` pairs two variants image by image on the same test images (their seeds averaged
per image) and runs `stats.paired_test`; with `key="cases"` and `case` it compares on one case of
the synthetic case-by-case test set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..errors import MissingFileError
from ..stats import PairedResult, aligned_scores, paired_test

RECORDS = Path(__file__).resolve().parents[1] / "assets" / "quality_records.json"
PACKED_SWEEPS = ("payoff", "ablation", "train")  # the sweeps the course reads
# the per-image score tables a record may hold: {"stem": [...], metric: [...]}
SCORE_KEYS = ("per_image", "cases")
# the provenance RESULTS.md keeps and the course does not need
DROPPED = ("command", "reproduce", "machine", "torch", "threads", "commit")


def pack(all_records: Iterable[dict]) -> dict:
    """The course's records in one JSON-able dict: the packed sweeps only, each image name stored
    once per test set (records refer to a stem list by its index)."""
    stems: list[list[str]] = []
    runs = []
    for r in all_records:
        if r.get("sweep") not in PACKED_SWEEPS:
            continue
        run = {k: v for k, v in r.items() if k not in DROPPED}
        for key in SCORE_KEYS:
            if key in run:
                table = dict(run[key])
                names = table.pop("stem")
                if names not in stems:
                    stems.append(names)
                run[key] = {"stems": stems.index(names), **table}
        runs.append(run)
    return {"about": "benchmarks/quality.py runs, packed by benchmarks/report.py; read with "
                     "banet_lite.teaching.results.records()", "stems": stems, "runs": runs}


def dumps(packed: dict) -> str:
    """`pack`'s dict as JSON text, one stem list and one run per line (readable diffs in git)."""
    lines = [f'{{"about": {json.dumps(packed["about"])},', '"stems": [']
    stems, rows = packed["stems"], packed["runs"]
    lines += [json.dumps(s) + ("," if i < len(stems) - 1 else "") for i, s in enumerate(stems)]
    lines += ["],", '"runs": [']
    lines += [json.dumps(r) + ("," if i < len(rows) - 1 else "") for i, r in enumerate(rows)]
    return "\n".join(lines + ["]}"]) + "\n"


def unpack(packed: dict) -> list[dict]:
    runs = []
    for run in packed["runs"]:
        run = dict(run)
        for key in SCORE_KEYS:
            if key in run:
                table = dict(run[key])
                run[key] = {"stem": packed["stems"][table.pop("stems")], **table}
        runs.append(run)
    return runs


def records(sweep: str | None = None, dataset: str | None = None,
            path: str | Path = RECORDS) -> list[dict]:
    """The shipped records (one dict per run), optionally of one sweep and one dataset."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: the benchmark records are missing from this installation; "
                               "reinstall banet-lite or run `python benchmarks/report.py`")
    runs = unpack(json.loads(path.read_text()))
    return [r for r in runs if (sweep is None or r["sweep"] == sweep)
            and (dataset is None or r["dataset"] == dataset)]


def of_variant(runs: Iterable[dict], variant: str) -> list[dict]:
    found = [r for r in runs if r["variant"] == variant]
    if not found:
        known = sorted({r["variant"] for r in runs})
        raise ValueError(f"results.py: no run of {variant!r}; variants: {known}")
    return found


def compare(runs: list[dict], a: str, b: str, metric: str = "dice", key: str = "per_image",
            case: str | None = None) -> PairedResult:
    """Variant `a` against variant `b` on the same test images, image by image (seeds averaged per
    image): `stats.paired_test` on `metric`. `key="cases"` with `case` compares on one case of the
    synthetic case-by-case test set."""
    runs_a, runs_b = of_variant(runs, a), of_variant(runs, b)
    if case is not None:
        runs_a, runs_b = _one_case(runs_a, key, case), _one_case(runs_b, key, case)
    sa, sb = aligned_scores(runs_a, runs_b, metric, key)
    return paired_test(sa, sb)


def _one_case(runs: list[dict], key: str, case: str) -> list[dict]:
    """The runs with their `key` table cut down to the images of one case."""
    out = []
    for r in runs:
        table = r[key]
        keep = [i for i, c in enumerate(table["case"]) if c == case]
        if not keep:
            raise ValueError(f"results.py: no image of case {case!r} in {key!r}")
        out.append({**r, key: {k: [v[i] for i in keep] for k, v in table.items()}})
    return out


def runs(sweep: str, dataset: str, epochs: int | None = None,
         all_runs: list[dict] | None = None) -> list[dict]:
    """The runs of one sweep on one dataset that carry per-image scores (the ones a paired test can
    use), at `epochs` when given; an error naming what exists when there are none."""
    found = [r for r in (records(sweep, dataset) if all_runs is None else all_runs)
             if r["sweep"] == sweep and r["dataset"] == dataset and "per_image" in r
             and (epochs is None or r["recipe"]["epochs"] == epochs)]
    if not found:
        raise MissingFileError(f"no {sweep} runs on {dataset} with per-image scores"
                               + (f" at {epochs} epochs" if epochs else "")
                               + "; run benchmarks/quality.py")
    return found


def runs_by_dataset(sweep: str, budgets: dict[str, dict[str, int]],
                    all_runs: list[dict] | None = None) -> dict[str, list[dict]]:
    """{dataset: its runs} for each dataset of `budgets[sweep]` ({sweep: {dataset: epochs}}) with
    runs that carry per-image scores at its budget; datasets without any are left out (`missing`
    names them)."""
    out = {}
    for dataset, epochs in budgets.get(sweep, {}).items():
        try:
            out[dataset] = runs(sweep, dataset, epochs, all_runs)
        except MissingFileError:
            continue
    return out


def missing(sweep: str, budgets: dict[str, dict[str, int]],
            all_runs: list[dict] | None = None) -> list[str]:
    """The datasets of `budgets[sweep]` without runs a paired test can use."""
    return [d for d in budgets.get(sweep, {}) if d not in runs_by_dataset(sweep, budgets, all_runs)]
