#!/usr/bin/env bash
# The main job on a GPU, from nothing but this repository and a data folder: the CUDA-only tests, then
# notebook 05 through papermill with the `paper` preset (ResNet-50, ImageNet weights when a file is at
# hand) within a time budget, then the test metrics; ONE summary line on stdout (device, precision,
# images/s, seconds per epoch, peak GPU memory, test Dice/Jaccard) and the record as
# a line in benchmarks/results/gpu_check.jsonl (benchmarks/report.py puts it in RESULTS.md).
#
#   benchmarks/gpu_check.sh [--device cuda|cpu] [DATA_DIR] [TIME_BUDGET_S]
#   BANET_IMAGENET_WEIGHTS=/path/to/resnet50-0676ba61.pth benchmarks/gpu_check.sh /data/kvasir_seg
#   benchmarks/gpu_check.sh --device cpu        # smoke test of this script (CI): about 30 s on 2 cores
#
# --device cuda   (default) needs a CUDA GPU; exits non-zero, with one line on stderr, without one.
# --device cpu    smoke mode: the current Python (no new environment), the tiny preset, 1 epoch on the
#                 repository's data/synthetic folder (16 images of 96 px) through the CLI; the CUDA tests
#                 skip themselves. The record goes to the run folder, not benchmarks/results/.
# DATA_DIR        an images/ + masks/ folder, ideally with a split.csv (default ../shared/data/kvasir_seg;
#                 smoke mode: data/synthetic)
# TIME_BUDGET_S   training seconds; training stops after the epoch in progress (default 360)
# Environment:
#   PYTHON (python3)        the interpreter that builds the environment (or runs everything, see below)
#   GPU_CHECK_VENV          the virtual environment to create and reuse (default benchmarks/runs/gpu_check_venv,
#                           git-ignored; built with --system-site-packages so an installed torch is reused,
#                           then `pip install -e . pytest` and, if pip can get it, papermill + ipykernel)
#   GPU_CHECK_CURRENT_PYTHON=1  no environment: $PYTHON as it is (a machine without network access)
#   BANET_IMAGENET_WEIGHTS  torchvision's ImageNet ResNet-50 file (resnet50-0676ba61.pth). Without it the
#                           torch hub cache's copy is used if there is one; else the backbone trains from
#                           random weights, and the record says so.
#   EPOCHS (40)             length of the poly schedule; pick it so the run ends inside the budget
#   BATCH_SIZE (preset's), WORKERS (auto), SEED (0), OUT (run folder; default a git-ignored
#   benchmarks/runs/gpu_check_<UTC time>/)
# Without papermill (or in smoke mode) notebook 05's training runs through `python -m banet_lite train`
# with the same settings, then `python -m banet_lite evaluate --split test`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
die() { echo "gpu_check.sh: $*" >&2; exit 1; }

device=cuda
if [ "${1:-}" = --device ]; then
  device=${2:-}; shift 2 || die "--device needs a value: cuda or cpu"
fi
case $device in cuda|cpu) ;; *) die "--device $device: choose cuda or cpu" ;; esac
stamp=$(date -u +%Y%m%dT%H%M%SZ)
PYTHON=${PYTHON:-python3}
if [ "$device" = cpu ]; then
  data_arg=${1:-data/synthetic}; budget=${2:-60}; epochs=${EPOCHS:-1}; preset=tiny
  batch_size=${BATCH_SIZE:-4}; img_size=48; workers=${WORKERS:-0}
else
  data_arg=${1:-../shared/data/kvasir_seg}; budget=${2:-360}; epochs=${EPOCHS:-40}; preset=paper
  batch_size=${BATCH_SIZE:-None}; img_size=None; workers=${WORKERS:-None}
fi
seed=${SEED:-0}
out=${OUT:-$repo/benchmarks/runs/gpu_check_$stamp}

# ---- the environment: the current Python in smoke mode or when asked, else a reused virtual environment
if [ "$device" = cuda ] && [ "${GPU_CHECK_CURRENT_PYTHON:-0}" != 1 ]; then
  venv=${GPU_CHECK_VENV:-$repo/benchmarks/runs/gpu_check_venv}
  if [ ! -x "$venv/bin/python" ]; then
    echo "gpu_check.sh: building $venv (set GPU_CHECK_CURRENT_PYTHON=1 to use $PYTHON as it is)" >&2
    "$PYTHON" -m venv --system-site-packages "$venv" || die "$PYTHON -m venv failed"
    "$venv/bin/python" -m pip install -q -e . pytest \
      || { rm -rf "$venv"; die "pip install -e . pytest failed (no network? set GPU_CHECK_CURRENT_PYTHON=1)"; }
    "$venv/bin/python" -m pip install -q papermill ipykernel \
      || echo "gpu_check.sh: note: no papermill; notebook 05's training runs through the CLI" >&2
  fi
  PYTHON=$venv/bin/python
fi
"$PYTHON" -c 'import banet_lite, pytest' 2>/dev/null \
  || die "$PYTHON cannot import banet_lite and pytest (pip install -e . pytest)"
if [ "$device" = cuda ]; then
  "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || die "no CUDA GPU visible to torch ($("$PYTHON" -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1)); run this on a GPU machine, or --device cpu for the smoke test"
fi
[ -d "$data_arg" ] || die "$data_arg: data folder not found (pass DATA_DIR)"
data_dir=$(cd "$data_arg" && pwd)
[ -f "$data_dir/split.csv" ] || echo "gpu_check.sh: note: $data_dir has no split.csv; a seeded 20% is the test split" >&2
mkdir -p "$out"
out=$(cd "$out" && pwd)
run_dir=$out/run

# ---- 1. the CUDA-only tests (they skip themselves without a GPU)
cuda_tests=$(grep -l "pytest.mark.cuda" tests/*.py || true)
[ -n "$cuda_tests" ] || die "no test file under tests/ carries the cuda marker"
# shellcheck disable=SC2086
"$PYTHON" -m pytest -q -m cuda $cuda_tests -p no:cacheprovider >"$out/cuda_tests.log" 2>&1 \
  || { tail -n 30 "$out/cuda_tests.log" >&2; die "the CUDA tests failed; see $out/cuda_tests.log"; }
cuda_tests_result=$(tail -n 1 "$out/cuda_tests.log" | tr -d '=' | sed 's/^ *//; s/ *$//')
echo "gpu_check.sh: CUDA tests: $cuda_tests_result" >&2

# ---- backbone weights (paper preset only): a given file, else the torch hub cache's, else none
pretrained=None
weights_note="none (the $preset preset trains from random weights)"
if [ "$preset" = paper ]; then
  hub_file=$("$PYTHON" -c 'from banet_lite.model.backbone import imagenet_weights_path; print(imagenet_weights_path(50))')
  if [ -n "${BANET_IMAGENET_WEIGHTS:-}" ]; then
    [ -f "$BANET_IMAGENET_WEIGHTS" ] || die "BANET_IMAGENET_WEIGHTS=$BANET_IMAGENET_WEIGHTS: file not found"
    pretrained=$(cd "$(dirname "$BANET_IMAGENET_WEIGHTS")" && pwd)/$(basename "$BANET_IMAGENET_WEIGHTS")
    weights_note="ImageNet ResNet-50 weights from $pretrained (BANET_IMAGENET_WEIGHTS)"
  elif [ -f "$hub_file" ]; then
    pretrained=imagenet
    weights_note="ImageNet ResNet-50 weights from the torch hub cache ($hub_file)"
  else
    weights_note="none: no ImageNet file at hand, so the backbone trained from random weights (not the paper's setting)"
  fi
fi

# ---- 2. the training: notebook 05 under papermill (GPU, papermill installed), else the CLI
if [ "$device" = cuda ] && "$PYTHON" -m papermill --version >/dev/null 2>&1; then
  cmd=("$PYTHON" -m papermill notebooks/05_train.ipynb "$out/05_train.ipynb" --cwd notebooks --log-output
       -p data_dir "$data_dir" -p preset "$preset" -p pretrained "$pretrained" -p epochs "$epochs"
       -p batch_size "$batch_size" -p workers "$workers" -p seed "$seed" -p time_budget "$budget"
       -p device "$device" -p out_dir "$run_dir")
else
  cmd=("$PYTHON" -m banet_lite train --data-dir "$data_dir" --preset "$preset" --epochs "$epochs"
       --seed "$seed" --time-budget "$budget" --device "$device" --out "$run_dir" --no-progress)
  [ "$pretrained" = None ] || cmd+=(--pretrained "$pretrained")
  [ "$batch_size" = None ] || cmd+=(--batch-size "$batch_size")
  [ "$img_size" = None ] || cmd+=(--img-size "$img_size")
  [ "$workers" = None ] || cmd+=(--workers "$workers")
fi
echo "gpu_check.sh: ${cmd[*]}" >&2
memory_log=$out/gpu_memory.csv
sampler=
if [ "$device" = cuda ] && command -v nvidia-smi >/dev/null; then  # peak memory of the whole GPU, every 0.5 s
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 500 >"$memory_log" 2>/dev/null &
  sampler=$!
fi
started=$(date -u +%s)
status=0
timeout $((budget + 1800)) "${cmd[@]}" >"$out/train.log" 2>&1 || status=$?
wall=$(( $(date -u +%s) - started ))
[ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
[ "$status" = 0 ] || { tail -n 30 "$out/train.log" >&2; die "the training failed or ran past $((budget + 1800)) s; see $out/train.log"; }
[ -f "$run_dir/history.csv" ] && [ -f "$run_dir/best.pt" ] || die "$run_dir: no history.csv/best.pt after the run"
if [ "$pretrained" != None ]; then
  grep -q "backbone: loaded" "$out/train.log" || die "the log does not say the backbone weights were loaded ($out/train.log)"
fi
TQDM_DISABLE=1 "$PYTHON" -m banet_lite evaluate --checkpoint "$run_dir/best.pt" --data-dir "$data_dir" --split test \
  --device "$device" --out "$run_dir/eval_test" >/dev/null || die "evaluation of $run_dir/best.pt failed"

# ---- 3. the record (JSON) and the one summary line
if [ "$device" = cuda ]; then mkdir -p benchmarks/results; record=benchmarks/results/gpu_check.jsonl
else record=$out/gpu_check.jsonl; fi
printf -v command_line '%q ' "${cmd[@]}"
RUN_DIR=$run_dir DEVICE=$device WEIGHTS_NOTE=$weights_note COMMAND_LINE=$command_line WALL=$wall BUDGET=$budget \
  MEMORY_LOG=$memory_log CUDA_TESTS=$cuda_tests_result RECORD=$record "$PYTHON" - <<'EOF'
import csv, datetime, json, os, statistics, subprocess

import torch

from banet_lite.training.checkpoint import load_checkpoint
from banet_lite.training.precision import amp_settings

run, device = os.environ["RUN_DIR"], os.environ["DEVICE"]
rows = list(csv.DictReader(open(f"{run}/history.csv")))
summary = json.load(open(f"{run}/eval_test/summary.json"))
cfg = load_checkpoint(f"{run}/last.pt")["train_config"]
if device == "cuda":
    cap = torch.cuda.get_device_capability(0)
    name = f"{torch.cuda.get_device_name(0)} (compute capability {cap[0]}.{cap[1]})"
    dtype, scaler = amp_settings("cuda", cfg["amp"], cap)
else:
    name, (dtype, scaler) = "CPU", amp_settings("cpu", cfg["amp"], preset=cfg["preset"])
precision = (f"{str(dtype).removeprefix('torch.')} autocast" + (" + GradScaler" if scaler else "")) if dtype else "float32"
memory = [int(x) for x in open(os.environ["MEMORY_LOG"]).read().split() if x.isdigit()] \
    if os.path.exists(os.environ["MEMORY_LOG"]) else []
speeds = [float(r["train_images_per_s"]) for r in rows]
steady = speeds[1:] or speeds  # epoch 1 includes cuDNN autotuning
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
record = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
    "command": os.environ["COMMAND_LINE"].strip(), "device": name, "torch": torch.__version__,
    "cuda": torch.version.cuda, "precision": precision, "cuda_tests": os.environ["CUDA_TESTS"],
    "backbone_weights": os.environ["WEIGHTS_NOTE"], "preset": cfg["preset"], "data_dir": cfg["data_dir"],
    "epochs_run": len(rows), "epochs_planned": cfg["epochs"], "time_budget_s": float(os.environ["BUDGET"]),
    "batch_size": cfg["batch_size"], "img_size": cfg["img_size"], "lr": cfg["lr"], "workers": cfg["workers"],
    "seed": cfg["seed"], "wall_s": int(os.environ["WALL"]), "images_per_s": statistics.median(steady),
    "images_per_s_epoch1": speeds[0], "seconds_per_epoch": statistics.median(float(r["seconds"]) for r in rows),
    "peak_gpu_memory_mib": max(memory) if memory else None,
    "best_val_dice": max(float(r["val_dice"]) for r in rows),
    "test": {k: summary[k] for k in ("n_images", "split", "dice", "jaccard", "accuracy", "sensitivity",
                                     "specificity", "hd95", "boundary_f")},
}
with open(os.environ["RECORD"], "a") as f:  # one JSON line per check, as every benchmark records
    f.write(json.dumps(record) + "\n")
peak = f"{record['peak_gpu_memory_mib']} MiB" if memory else "n/a"
print(f"gpu_check: device {name}; precision {precision}; {record['images_per_s']:.1f} images/s; "
      f"{record['seconds_per_epoch']:.1f} s/epoch; peak GPU memory {peak}; "
      f"test Dice {summary['dice']:.4f} Jaccard {summary['jaccard']:.4f} ({len(rows)} epochs, {cfg['preset']}; "
      f"CUDA tests: {os.environ['CUDA_TESTS']})")
EOF
echo "gpu_check.sh: record $record; run folder $out" >&2
