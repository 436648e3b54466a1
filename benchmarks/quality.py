"""Quality: train variants of BA-Net from scratch, score each on the fixed test split, one JSON line per run.

    python benchmarks/quality.py train    --data-dir ../shared/data/kvasir_seg --epochs 30 --budget-min 30
    python benchmarks/quality.py ablation --data-dir ../shared/data/ph2 --seeds 0 1 --epochs 15 --img-size 128
    python benchmarks/quality.py tune     --data-dir ../shared/data/kvasir_seg --epochs 6
    python benchmarks/quality.py payoff   --dataset synthetic --seeds 0 1 2 --epochs 15 --img-size 96 --threads 1
    python benchmarks/quality.py budget   --data-dir ../shared/data/kvasir_seg --epochs 1000 --budget-min 30 --threads 2

A sweep is a named table of variants; a variant is a preset and the `TrainConfig` fields it changes
(`SWEEPS` below). Every variant of a sweep trains with one recipe (epochs, input size, batch size,
learning rate: the preset's unless given) for every seed, then `evaluate` scores its best checkpoint
on the split.csv test images at their original size. `--set FIELD=VALUE` changes any TrainConfig field
for every variant (e.g. `--set amp=false`).

Each run appends one line to benchmarks/results/quality.jsonl (`common.record`): sweep, dataset,
variant, seed, preset, overrides, the resolved recipe, parameters, epochs, minutes, the validation Dice
of every epoch (`val_dice_curve`: has it flattened?), every test metric, and `per_image`: each test
image's Dice and boundary F in the split's image order, so that two variants can be compared image by
image (a paired test), with the command, commit, date, torch, threads and CPU. A run whose line is already
there (same sweep, dataset, variant, seed, recipe and --set) with per-image scores is skipped, so an
interrupted call resumes where it stopped and several calls (one per dataset) can share the file; a run
cut off part-way goes on from its last epoch (each run writes last.pt after every epoch, `--runs` keeps
it), and its record says where (`resumed_at_epoch`) and counts the minutes of both parts; a run
recorded before records kept per-image scores is run again, and `benchmarks/report.py` (which makes the
RESULTS.md tables from the file) reads the newest line of each run.

`--dataset synthetic` writes the course's synthetic lesions first (400 at 96 px, seed 0: 320 to train,
of which a tenth validates, and 80 to test), and a second test set for the cases of notebook 00: 100
held-out lesions (seed 4242), each painted in all five cases (`write_synthetic_cases`); each run is
scored on both, and the record's `cases` holds the second one's per-image scores. Kvasir-SEG and PH2
come from ../shared/data, which is not part of the repository.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import read_records, record, results_dir  # benchmarks/common.py: this folder is sys.path[0]

from banet_lite.data import case_of_stem, write_synthetic_cases, write_synthetic_dataset
from banet_lite.evaluate import evaluate
from banet_lite.metrics import METRIC_NAMES
from banet_lite.model.config import ABLATIONS
from banet_lite.model.registry import count_parameters
from banet_lite.training.config import TrainConfig
from banet_lite.training.train import fit, read_history

SWEEPS: dict[str, dict[str, tuple[str, dict]]] = {  # sweep -> variant -> (preset, TrainConfig overrides)
    # one preset at its defaults: what a CPU budget reaches
    "train": {preset: (preset, {}) for preset in ("lite", "tiny", "paper", "unet")},
    # does each module help? the full lite model, one switch off at a time, and the U-Net of similar size
    "ablation": {
        "BA-Net (full)": ("lite", {}),
        **{f"no {label}": ("lite", {"model_overrides": {switch: False}}) for switch, label in ABLATIONS.items()},
        "U-Net": ("unet", {}),
    },
    # which training settings should lite default to? one change from the defaults at a time
    "tune": {
        "defaults": ("lite", {}),
        "lr 3e-4": ("lite", {"lr": 3e-4}),
        "lr 3e-3": ("lite", {"lr": 3e-3}),
        "augmentation x0.5": ("lite", {"aug_strength": 0.5}),
        "side losses x0.5": ("lite", {"side_weight": 0.5}),
        "batch 4": ("lite", {"batch_size": 4}),
        "input 160": ("lite", {"img_size": 160}),
    },
    # does a time budget's schedule pay off? lite within --budget-min either way: today's poly schedule spans
    # --epochs and the budget only stops it, the budgeted one spans the budget (TrainConfig.schedule)
    "budget": {
        "fixed epochs (today)": ("lite", {"schedule": "epochs"}),
        "budgeted schedule": ("lite", {"schedule": "budget"}),
    },
    # does boundary supervision pay off? (notebook 06 reads these runs)
    "payoff": {
        "BA-Net": ("lite", {"boundary_pos_weight": 10.0}),
        "BA-Net, unweighted boundary": ("lite", {"boundary_pos_weight": None}),
        "BA-Net, no boundary loss": ("lite", {"boundary_weight": 0.0}),
        "U-Net": ("unet", {}),
    },
}
DEFAULT_VARIANTS = {"train": ["lite"]}  # every other sweep runs all its variants by default
METRICS = METRIC_NAMES  # the evaluation summary's metrics (metrics.py), copied into each record
SYNTHETIC = {"n": 400, "size": 96, "seed": 0}  # the synthetic lesions a --dataset synthetic run trains on
SYNTHETIC_CASES = {"n": 100, "size": 96, "seed": 4242}  # and its case-by-case test set: 100 lesions x 5 cases
PER_IMAGE = ("dice", "boundary_f")  # the per-image scores a record keeps, for paired tests


def parse_set(items: list[str]) -> dict:
    """["amp=false", "boundary_pos_weight=10"] -> {"amp": False, "boundary_pos_weight": 10}: JSON values, else strings;
    every name must be a TrainConfig field."""
    fields = TrainConfig.__dataclass_fields__
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE with FIELD one of TrainConfig's: "
                             + ", ".join(fields))
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def run_config(sweep: str, variant: str, seed: int, data_dir, out: Path, recipe: dict, extra: dict,
               budget_min: float | None) -> TrainConfig:
    """The TrainConfig of one run: the recipe, then the variant's overrides, then --set."""
    preset, overrides = SWEEPS[sweep][variant]
    fields = {**{k: v for k, v in recipe.items() if v is not None}, **overrides, **extra}
    # last.pt after every epoch, and a run stopped part-way (a session's end) goes on from it: a resume
    # trains exactly what the whole run would have (train.py)
    last = out / "last.pt"
    return TrainConfig(preset=preset, data_dir=str(data_dir), out=str(out), seed=seed, progress=False,
                       time_budget=budget_min * 60 if budget_min else None, checkpoint_every=1,
                       resume=str(last) if last.is_file() else None, **fields)


def per_image(rows: list[dict]) -> dict[str, list]:
    """evaluate's rows as columns: {"stem": [...], "dice": [...], "boundary_f": [...]}, in the rows' order."""
    return {"stem": [r["stem"] for r in rows], **{k: [round(r[k], 6) for r in rows] for k in PER_IMAGE}}


def train_and_score(cfg: TrainConfig, cases_dir: Path | None = None) -> dict:
    """Train one run, score its best checkpoint on the test split (and on the synthetic case-by-case test
    set, `cases_dir`); the measured part of its record."""
    earlier = read_history(Path(cfg.out) / "history.csv") if cfg.resume else []  # the epochs done before
    started = time.perf_counter()
    result = fit(cfg)
    minutes = (time.perf_counter() - started + sum(row["seconds"] for row in earlier)) / 60
    rows, summary = evaluate(result.best_path, cfg.data_dir, split="test", out_dir=Path(cfg.out) / "eval_test",
                             progress=False, device=cfg.device)
    measured = {"params": count_parameters(result.model), "epochs_trained": len(result.history),
                "minutes": round(minutes, 2), "resumed_at_epoch": len(earlier),
                "stopped_early": result.stopped_early,
                "final_lr": result.history[-1]["lr"],  # a budgeted schedule ends at 0, a stopped one above
                "best_val_dice": result.best_score,
                "val_dice_curve": [round(row["val_dice"], 4) for row in result.history],
                "n_test": summary["n_images"], **{k: summary[k] for k in METRICS}, "per_image": per_image(rows)}
    if cases_dir is not None:
        rows, _ = evaluate(result.best_path, cases_dir, split="test", out_dir=Path(cfg.out) / "eval_cases",
                           progress=False, device=cfg.device)
        measured["cases"] = {**per_image(rows), "case": [case_of_stem(r["stem"]) for r in rows]}
    return measured


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", choices=list(SWEEPS))
    parser.add_argument("--data-dir", help="images/ + masks/ + split.csv (not needed for --dataset synthetic)")
    parser.add_argument("--dataset", help="the name recorded (default: the data folder's, '_' as '-'); "
                                          "'synthetic' writes the course's synthetic lesions first")
    parser.add_argument("--variants", nargs="+", help="a subset of the sweep's variants (default: all; train: lite)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, help="schedule length (default: the preset's)")
    parser.add_argument("--img-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--budget-min", type=float, help="per run, TrainConfig.time_budget: a stop after the epoch in "
                                                         "progress, and the span of the schedule where --epochs would "
                                                         "not fit in it (schedule=budget, the default)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="TrainConfig fields for every run")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--runs", default="runs/quality", help="where the runs' checkpoints go")
    parser.add_argument("--results", help="the folder of quality.jsonl (default: $BANET_RESULTS_DIR, else "
                                          "benchmarks/results)")
    args = parser.parse_args(argv)

    variants = args.variants or DEFAULT_VARIANTS.get(args.sweep, list(SWEEPS[args.sweep]))
    unknown = [v for v in variants if v not in SWEEPS[args.sweep]]
    if unknown:
        parser.error(f"--variants {unknown}: the {args.sweep} sweep has " + ", ".join(SWEEPS[args.sweep]))
    if args.dataset != "synthetic" and not args.data_dir:
        parser.error("--data-dir is required unless --dataset synthetic")
    if args.sweep == "budget" and not args.budget_min:
        parser.error("the budget sweep compares schedules under a time budget: give --budget-min")
    extra = parse_set(args.set)
    dataset = args.dataset or Path(args.data_dir).resolve().name.replace("_", "-")
    data_dir = Path(args.runs) / "synthetic_data" if dataset == "synthetic" else Path(args.data_dir)
    cases_dir = Path(args.runs) / "synthetic_cases" if dataset == "synthetic" else None
    if dataset == "synthetic":
        write_synthetic_dataset(data_dir, **SYNTHETIC)
        write_synthetic_cases(cases_dir, **SYNTHETIC_CASES)
    elif not (data_dir / "split.csv").is_file():
        parser.error(f"--data-dir {data_dir}: no split.csv (the fixed test split every run is scored on)")
    if args.threads:
        torch.set_num_threads(args.threads)
    asked = {"epochs": args.epochs, "img_size": args.img_size, "batch_size": args.batch_size, "lr": args.lr}

    for variant in variants:
        for seed in args.seeds:
            slug = "".join(c if c.isalnum() else "_" for c in variant)
            out = Path(args.runs) / args.sweep / dataset / f"{slug}_seed{seed}"
            cfg = run_config(args.sweep, variant, seed, data_dir, out, asked, extra, args.budget_min)
            # the sweep's recipe, before the variant changes it (tune's "batch 4"): what its variants share
            shared = TrainConfig(preset=cfg.preset, **{k: v for k, v in asked.items() if v is not None}).resolved()
            recipe = {k: getattr(shared, k) for k in asked} | {"budget_min": args.budget_min}
            key = {"sweep": args.sweep, "dataset": dataset, "variant": variant, "seed": seed, "recipe": recipe,
                   "set": extra}
            done = [r for r in read_records("quality", args.results) if all(r.get(k) == v for k, v in key.items())]
            if any("per_image" in r for r in done):  # a record without per-image scores is run again
                print(f"{args.sweep} / {dataset} / {variant} / seed {seed}: already in "
                      f"{results_dir(args.results) / 'quality.jsonl'}", flush=True)
                continue
            measured = train_and_score(cfg, cases_dir)
            preset, overrides = SWEEPS[args.sweep][variant]
            record("quality", {**key, "preset": preset, "overrides": overrides, **measured}, args.results)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in
                              {"variant": variant, "seed": seed, "minutes": measured["minutes"],
                               **{m: measured[m] for m in ("dice", "boundary_f", "hd95")}}.items()}), flush=True)


if __name__ == "__main__":
    main()
