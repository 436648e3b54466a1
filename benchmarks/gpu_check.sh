#!/usr/bin/env bash
# The main job on a GPU, from nothing but this repository: the CUDA-only tests (a skip fails here), then
# notebook 05 through papermill with the `paper` preset (ResNet-50 from ImageNet weights, fetched where the
# network allows) within a time budget that its learning-rate schedule spans, then the test metrics; ONE
# summary line on stdout (device, precision, images/s, seconds per epoch, peak GPU memory, test Dice/Jaccard)
# and the record as a line in benchmarks/results/gpu_check.jsonl, written by benchmarks/common.py's `record`
# (benchmarks/report.py puts it in RESULTS.md).
#
#   benchmarks/gpu_check.sh [--device cuda|cpu] [DATA_DIR] [TIME_BUDGET_S]
#   BANET_IMAGENET_WEIGHTS=/path/to/resnet50-0676ba61.pth benchmarks/gpu_check.sh /data/kvasir_seg
#   benchmarks/gpu_check.sh --device cpu        # smoke test of this script (CI): about 30 s on 2 cores
#
# --device cuda   (default) needs a CUDA GPU; exits non-zero, with one line on stderr, without one.
# --device cpu    smoke mode: the current Python (no new environment), the tiny preset, 1 epoch on the
#                 repository's data/synthetic folder (16 images of 96 px) through the CLI; the CUDA tests
#                 skip themselves. The record goes to the run folder, not benchmarks/results/.
# DATA_DIR        an images/ + masks/ folder, ideally with a split.csv (default ../shared/data/kvasir_seg; if
#                 that is missing too, Kvasir-SEG from `python -m banet_lite download kvasir-seg`; smoke
#                 mode: data/synthetic)
# TIME_BUDGET_S   training seconds for the whole run (default 360): the poly schedule spans them
#                 (TrainConfig schedule="budget") and training stops after the epoch in progress
# Both ways of training (papermill, the CLI) get the same settings: the loss weights, checkpoint_every and
# the schedule at TrainConfig's defaults, and this script's own; the record step reads the settings the run
# trained back from last.pt and stops, naming them, where they differ.
# Environment:
#   PYTHON (python3)        the interpreter that builds the environment (or runs everything, see below)
#   GPU_CHECK_VENV          the virtual environment to create and reuse (default benchmarks/runs/gpu_check_venv,
#                           git-ignored; built with --system-site-packages so an installed torch is reused,
#                           then `pip install -e . pytest` and, if pip can get it, papermill + ipykernel; a build
#                           that fails is removed, one without its completion mark is built again)
#   GPU_CHECK_CURRENT_PYTHON=1  no environment: $PYTHON as it is (a machine without network access)
#   BANET_IMAGENET_WEIGHTS  torchvision's ImageNet ResNet-50 file (resnet50-0676ba61.pth). Without it the
#                           torch hub cache's copy, else a download into that cache; where neither works the
#                           backbone trains from random weights, and the record says so.
#   EPOCHS (None)           a cap on the epochs (None: the time budget alone sets the run's length)
#   BATCH_SIZE (preset's), WORKERS (None: the library's auto), SEED (0), OUT (run folder; default a
#   git-ignored benchmarks/runs/gpu_check_<UTC time>/). git is optional: without it the record's commit is null.
# Without papermill (or in smoke mode) notebook 05's training runs through `python -m banet_lite train`
# with the same settings, then `python -m banet_lite evaluate --split test`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
die() { echo "gpu_check.sh: $*" >&2; exit 1; }
last_line() { grep -v '^ *$' "$1" | tail -n 1 | cut -c1-300 || true; }
invocation="benchmarks/gpu_check.sh $*"

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
  data_arg=${1:-}; budget=${2:-360}; epochs=${EPOCHS:-None}; preset=paper
  batch_size=${BATCH_SIZE:-None}; img_size=None; workers=${WORKERS:-None}
fi
seed=${SEED:-0}
out=${OUT:-$repo/benchmarks/runs/gpu_check_$stamp}

# ---- the environment: the current Python in smoke mode or when asked, else a reused virtual environment
if [ "$device" = cuda ] && [ "${GPU_CHECK_CURRENT_PYTHON:-0}" != 1 ]; then
  venv=${GPU_CHECK_VENV:-$repo/benchmarks/runs/gpu_check_venv}
  ready=$venv/.gpu_check_ready  # written last: a venv without it stopped half-way and is not trusted
  if [ -e "$venv" ] && [ ! -f "$ready" ]; then
    echo "gpu_check.sh: $venv is incomplete (an earlier build stopped); building it again" >&2
    rm -rf "$venv"
  fi
  if [ ! -f "$ready" ]; then
    echo "gpu_check.sh: building $venv (set GPU_CHECK_CURRENT_PYTHON=1 to use $PYTHON as it is)" >&2
    mkdir -p "$(dirname "$venv")"
    log=$(mktemp)
    if ! "$PYTHON" -m venv --system-site-packages "$venv" >"$log" 2>&1; then
      rm -rf "$venv"
      reason=$(last_line "$log")
      if grep -q ensurepip "$log" || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
        rm -f "$log"
        die "$PYTHON -m venv failed: this Python has no ensurepip. On Debian/Ubuntu: sudo apt-get install python3-venv (python3.X-venv for Python 3.X), then run this again; or set GPU_CHECK_CURRENT_PYTHON=1 to use $PYTHON as it is"
      fi
      rm -f "$log"
      die "$PYTHON -m venv failed ($reason); set GPU_CHECK_CURRENT_PYTHON=1 to use $PYTHON as it is"
    fi
    rm -f "$log"
    "$venv/bin/python" -m pip install -q -e . pytest \
      || { rm -rf "$venv"; die "pip install -e . pytest failed (no network? set GPU_CHECK_CURRENT_PYTHON=1)"; }
    "$venv/bin/python" -m pip install -q papermill ipykernel \
      || echo "gpu_check.sh: note: no papermill; notebook 05's training runs through the CLI" >&2
    touch "$ready"
  fi
  PYTHON=$venv/bin/python
fi
"$PYTHON" -c 'import banet_lite, pytest' 2>/dev/null \
  || die "$PYTHON cannot import banet_lite and pytest (pip install -e . pytest)"
if [ "$device" = cuda ]; then
  "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || die "no CUDA GPU visible to torch ($("$PYTHON" -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1)); run this on a GPU machine, or --device cpu for the smoke test"
fi
# the commit that runs, asked now rather than after the run (empty without git or outside a checkout)
commit=$("$PYTHON" -c 'import sys; sys.path.insert(0, "benchmarks"); from common import commit; print(commit() or "")' \
  2>/dev/null || true)

# ---- the data: DATA_DIR, else ../shared/data/kvasir_seg, else the library's Kvasir-SEG download
if [ -z "$data_arg" ]; then
  if [ -d ../shared/data/kvasir_seg ]; then
    data_arg=../shared/data/kvasir_seg
  else
    echo "gpu_check.sh: no DATA_DIR and no ../shared/data/kvasir_seg: python -m banet_lite download kvasir-seg" >&2
    log=$(mktemp)
    if ! "$PYTHON" -m banet_lite download kvasir-seg >"$log" 2>&1; then
      reason=$(last_line "$log"); rm -f "$log"
      die "Kvasir-SEG could not be downloaded (${reason#error: }). Offline? Pass DATA_DIR, a folder of images/ + masks/"
    fi
    data_arg=$(sed -n 's/^kvasir-seg is ready in //p' "$log" | tail -n 1); rm -f "$log"
    [ -n "$data_arg" ] || die "the Kvasir-SEG download did not say where it put the data"
  fi
fi
[ -d "$data_arg" ] || die "$data_arg: data folder not found (pass DATA_DIR)"
data_dir=$(cd "$data_arg" && pwd)
[ -f "$data_dir/split.csv" ] || echo "gpu_check.sh: note: $data_dir has no split.csv; a seeded 20% is the test split" >&2
mkdir -p "$out"
out=$(cd "$out" && pwd)
run_dir=$out/run

# ---- 1. the CUDA-only tests (they skip themselves without a GPU; on one, BANET_REQUIRE=cuda fails a skip)
cuda_tests=$(grep -l "pytest.mark.cuda" tests/*.py || true)
[ -n "$cuda_tests" ] || die "no test file under tests/ carries the cuda marker"
require=
[ "$device" = cpu ] || require=cuda
# shellcheck disable=SC2086
BANET_REQUIRE=$require "$PYTHON" -m pytest -q -m cuda $cuda_tests -p no:cacheprovider >"$out/cuda_tests.log" 2>&1 \
  || { tail -n 30 "$out/cuda_tests.log" >&2; die "the CUDA tests failed; see $out/cuda_tests.log"; }
cuda_tests_result=$(tail -n 1 "$out/cuda_tests.log" | tr -d '=' | sed 's/^ *//; s/ *$//')
echo "gpu_check.sh: CUDA tests${require:+ (BANET_REQUIRE=$require)}: $cuda_tests_result" >&2

# ---- backbone weights (paper preset only): a given file, else the torch hub cache's, else a download into it
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
  elif "$PYTHON" -c 'from banet_lite.model.backbone import fetch_imagenet_weights as f; f(50, progress=False)' \
       >"$out/weights.log" 2>&1; then
    pretrained=imagenet
    weights_note="ImageNet ResNet-50 weights, downloaded into the torch hub cache ($hub_file)"
  else
    weights_note="none: the ImageNet weights could not be downloaded, so the backbone trained from random weights (not the paper's setting)"
    echo "gpu_check.sh: note: no ImageNet ResNet-50 weights ($(last_line "$out/weights.log")); the backbone trains from random weights. Put resnet50-0676ba61.pth at $hub_file or set BANET_IMAGENET_WEIGHTS" >&2
  fi
fi

# ---- 2. the training: notebook 05 under papermill (GPU, papermill installed), else the CLI. The loss weights,
# checkpoint_every and the schedule are TrainConfig's defaults (the library's, whatever the notebook's are)
read -r side_weight boundary_weight boundary_pos_weight checkpoint_every schedule <<<"$("$PYTHON" -c '
from banet_lite.training.config import TrainConfig as T
t = T(); print(t.side_weight, t.boundary_weight, t.boundary_pos_weight, t.checkpoint_every, t.schedule)')"
if [ "$device" = cuda ] && "$PYTHON" -m papermill --version >/dev/null 2>&1; then
  cmd=("$PYTHON" -m papermill notebooks/05_train.ipynb "$out/05_train.ipynb" --cwd notebooks --log-output
       -p data_dir "$data_dir" -p preset "$preset" -p pretrained "$pretrained" -p epochs "$epochs"
       -p batch_size "$batch_size" -p workers "$workers" -p seed "$seed" -p time_budget "$budget"
       -p side_weight "$side_weight" -p boundary_weight "$boundary_weight" -p boundary_pos_weight "$boundary_pos_weight"
       -p checkpoint_every "$checkpoint_every" -p schedule "$schedule" -p device "$device" -p out_dir "$run_dir")
else
  cmd=("$PYTHON" -m banet_lite train --data-dir "$data_dir" --preset "$preset" --seed "$seed" --time-budget "$budget"
       --side-weight "$side_weight" --boundary-weight "$boundary_weight" --checkpoint-every "$checkpoint_every"
       --schedule "$schedule" --device "$device" --out "$run_dir" --no-progress)
  [ "$boundary_pos_weight" = None ] || cmd+=(--boundary-pos-weight "$boundary_pos_weight")
  [ "$epochs" = None ] || cmd+=(--epochs "$epochs")
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
[ -f "$run_dir/history.csv" ] && [ -f "$run_dir/best.pt" ] && [ -f "$run_dir/last.pt" ] \
  || die "$run_dir: no history.csv/best.pt/last.pt after the run"
if [ "$pretrained" != None ]; then
  grep -q "backbone: loaded" "$out/train.log" || die "the log does not say the backbone weights were loaded ($out/train.log)"
fi
TQDM_DISABLE=1 "$PYTHON" -m banet_lite evaluate --checkpoint "$run_dir/best.pt" --data-dir "$data_dir" --split test \
  --device "$device" --out "$run_dir/eval_test" >/dev/null || die "evaluation of $run_dir/best.pt failed"

# ---- 3. the settings the run trained, checked; the record (common.record) and the one summary line
if [ "$device" = cuda ]; then record_dir=$repo/benchmarks/results; else record_dir=$out; fi
printf -v command_line '%q ' "${cmd[@]}"
RUN_DIR=$run_dir DEVICE=$device WEIGHTS_NOTE=$weights_note COMMAND_LINE=$command_line WALL=$wall BUDGET=$budget \
  MEMORY_LOG=$memory_log CUDA_TESTS=$cuda_tests_result RECORD_DIR=$record_dir COMMIT=$commit INVOCATION=$invocation \
  PRESET=$preset SEED=$seed "$PYTHON" - <<'EOF'
import json, os, statistics, sys

import torch

sys.path.insert(0, "benchmarks")
from common import record  # noqa: E402  (benchmarks/common.py: how every benchmark writes its records)

from banet_lite.files import read_csv
from banet_lite.metrics import METRIC_NAMES
from banet_lite.training.checkpoint import load_checkpoint
from banet_lite.training.config import TrainConfig
from banet_lite.training.precision import amp_settings

run, device = os.environ["RUN_DIR"], os.environ["DEVICE"]
rows = read_csv(f"{run}/history.csv")
summary = json.load(open(f"{run}/eval_test/summary.json"))
ckpt = load_checkpoint(f"{run}/last.pt")
cfg = ckpt["train_config"]
# what both ways of training were given (TrainConfig's defaults and this script's settings) against what ran
defaults = TrainConfig()
asked = {"preset": os.environ["PRESET"], "seed": int(os.environ["SEED"]), "time_budget": float(os.environ["BUDGET"]),
         **{k: getattr(defaults, k) for k in ("side_weight", "boundary_weight", "boundary_pos_weight", "checkpoint_every",
                                             "schedule")}}
differs = {k: {"asked": v, "trained": cfg.get(k)} for k, v in asked.items() if cfg.get(k) != v}
if differs:
    sys.exit(f"gpu_check.sh: the run trained other settings than it was given: {json.dumps(differs)}")
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
(plan,) = ckpt["scheduler"]["lr_lambdas"]
row = {
    "command": os.environ["INVOCATION"].strip(), "train_command": os.environ["COMMAND_LINE"].strip(),
    "commit": os.environ["COMMIT"] or None, "device": name, "cuda": torch.version.cuda, "precision": precision,
    "cuda_tests": os.environ["CUDA_TESTS"], "backbone_weights": os.environ["WEIGHTS_NOTE"], "preset": cfg["preset"],
    "data_dir": cfg["data_dir"], "epochs_run": len(rows), "epochs_planned": plan["planned_epochs"],
    "epochs_cap": cfg["epochs"], "time_budget_s": float(os.environ["BUDGET"]), "schedule": cfg["schedule"],
    "final_lr": float(rows[-1]["lr"]), "loss": {k: cfg[k] for k in ("side_weight", "boundary_weight", "boundary_pos_weight")},
    "checkpoint_every": cfg["checkpoint_every"], "batch_size": cfg["batch_size"], "img_size": cfg["img_size"],
    "lr": cfg["lr"], "workers": cfg["workers"], "seed": cfg["seed"], "wall_s": int(os.environ["WALL"]),
    "images_per_s": statistics.median(steady), "images_per_s_epoch1": speeds[0],
    "seconds_per_epoch": statistics.median(float(r["seconds"]) for r in rows),
    "peak_gpu_memory_mib": max(memory) if memory else None,
    "best_val_dice": max(float(r["val_dice"]) for r in rows),
    "test": {k: summary[k] for k in ("n_images", "split", *METRIC_NAMES)},
}
path = record("gpu_check", row, os.environ["RECORD_DIR"])
peak = f"{row['peak_gpu_memory_mib']} MiB" if memory else "n/a"
print(f"gpu_check: device {name}; precision {precision}; {row['images_per_s']:.1f} images/s; "
      f"{row['seconds_per_epoch']:.1f} s/epoch; peak GPU memory {peak}; "
      f"test Dice {summary['dice']:.4f} Jaccard {summary['jaccard']:.4f} ({len(rows)} epochs, {cfg['preset']}, "
      f"final lr {row['final_lr']:.2g}; CUDA tests: {os.environ['CUDA_TESTS']})")
print(f"gpu_check.sh: record {path}", file=sys.stderr)
EOF
echo "gpu_check.sh: run folder $out" >&2
