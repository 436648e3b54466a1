#!/usr/bin/env bash
# The main job on a GPU, as the paper trains it: notebook 05 through papermill with the `paper` preset
# (ResNet-50, ImageNet weights when a file is at hand) on Kvasir-SEG, within a time budget; then the test
# metrics and the training speed are appended, dated, to benchmarks/RESULTS.md.
#
#   benchmarks/gpu_check.sh [DATA_DIR] [TIME_BUDGET_S]
#   BANET_IMAGENET_WEIGHTS=/path/to/resnet50-0676ba61.pth benchmarks/gpu_check.sh
#
# DATA_DIR        an images/ + masks/ folder with a split.csv (default ../shared/data/kvasir_seg)
# TIME_BUDGET_S   training seconds; training stops after the epoch in progress (default 360)
# Environment:
#   BANET_IMAGENET_WEIGHTS  torchvision's ImageNet ResNet-50 file (resnet50-0676ba61.pth). Without it the
#                           torch hub cache's copy is used if there is one; else the backbone trains from
#                           random weights (these machines cannot download), and the record says so.
#   EPOCHS (40)             length of the poly schedule; pick it so the run ends inside the budget
#   BATCH_SIZE (8), WORKERS (4), SEED (0), PYTHON (python), OUT (run folder; default a git-ignored
#   benchmarks/runs/gpu_check_<UTC time>/)
#
# Exits non-zero, with one line on stderr, when no CUDA GPU is visible or a step fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
PYTHON=${PYTHON:-python}
data_arg=${1:-../shared/data/kvasir_seg}
budget=${2:-360}
epochs=${EPOCHS:-40}
batch_size=${BATCH_SIZE:-None}
workers=${WORKERS:-4}
seed=${SEED:-0}

die() { echo "gpu_check.sh: $*" >&2; exit 1; }

# ---- the machine: a CUDA GPU, papermill, the data, notebook 05's parameters
"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
  || die "no CUDA GPU visible to torch ($("$PYTHON" -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1)); run this on a GPU machine"
"$PYTHON" -m papermill --version >/dev/null 2>&1 || die "papermill is not installed for $PYTHON (pip install papermill)"
[ -d "$data_arg" ] || die "$data_arg: data folder not found (pass DATA_DIR as the first argument)"
data_dir=$(cd "$data_arg" && pwd)
[ -f "$data_dir/split.csv" ] || echo "gpu_check.sh: note: $data_dir has no split.csv; a seeded 20% is the test split" >&2
"$PYTHON" - notebooks/05_train.ipynb <<'EOF' || die "notebooks/05_train.ipynb: its parameters cell lacks a parameter this script passes (see above)"
import json, re, sys
cells = json.load(open(sys.argv[1]))["cells"]
source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
names = set(re.findall(r"^(\w+)\s*=", source, flags=re.M))
missing = sorted({"data_dir", "preset", "pretrained", "epochs", "batch_size", "workers", "seed", "out_dir",
                  "time_budget"} - names)
if missing:
    print(f"missing parameters: {missing}", file=sys.stderr)
    sys.exit(1)
EOF

# ---- backbone weights: a given file, else the torch hub cache's, else none (and the record says so)
hub_file=$("$PYTHON" -c 'from banet_lite.model.backbone import imagenet_weights_path; print(imagenet_weights_path(50))')
if [ -n "${BANET_IMAGENET_WEIGHTS:-}" ]; then
  [ -f "$BANET_IMAGENET_WEIGHTS" ] || die "BANET_IMAGENET_WEIGHTS=$BANET_IMAGENET_WEIGHTS: file not found"
  pretrained=$(cd "$(dirname "$BANET_IMAGENET_WEIGHTS")" && pwd)/$(basename "$BANET_IMAGENET_WEIGHTS")
  weights_note="ImageNet ResNet-50 weights from \`$pretrained\` (BANET_IMAGENET_WEIGHTS)"
elif [ -f "$hub_file" ]; then
  pretrained=imagenet
  weights_note="ImageNet ResNet-50 weights from the torch hub cache (\`$hub_file\`)"
else
  pretrained=None
  weights_note="**none**: no ImageNet file at hand (this machine cannot download $(basename "$hub_file")), so the backbone trained from random weights: not the paper's setting"
fi

# ---- the run: notebook 05, executed from notebooks/ as a user would, into a git-ignored folder
out=${OUT:-$repo/benchmarks/runs/gpu_check_$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
run_dir=$out/run
cmd=("$PYTHON" -m papermill notebooks/05_train.ipynb "$out/05_train.ipynb" --cwd notebooks --log-output
     -p data_dir "$data_dir" -p preset paper -p pretrained "$pretrained" -p epochs "$epochs"
     -p batch_size "$batch_size" -p workers "$workers" -p seed "$seed" -p time_budget "$budget"
     -p out_dir "$run_dir")
echo "gpu_check.sh: ${cmd[*]}" >&2
started=$(date -u +%s)
timeout $((budget + 1800)) "${cmd[@]}" 2>&1 | tee "$out/papermill.log" >&2 \
  || die "notebook 05 failed or ran past $((budget + 1800)) s; see $out/papermill.log and $out/05_train.ipynb"
wall=$(( $(date -u +%s) - started ))

[ -f "$run_dir/history.csv" ] && [ -f "$run_dir/best.pt" ] || die "$run_dir: no history.csv/best.pt after the run"
if [ "$pretrained" != None ]; then
  grep -q "backbone: loaded" "$out/05_train.ipynb" \
    || die "the notebook's log does not say the backbone weights were loaded ($out/05_train.ipynb)"
fi
if [ ! -f "$run_dir/eval_test/summary.json" ]; then  # the notebook writes it; if not, evaluate here
  "$PYTHON" -m banet_lite evaluate --checkpoint "$run_dir/best.pt" --data-dir "$data_dir" --split test \
    --out "$run_dir/eval_test" >/dev/null
fi

# ---- the record
printf -v command_line '%q ' "${cmd[@]}"
RUN_DIR=$run_dir WEIGHTS_NOTE=$weights_note COMMAND_LINE=$command_line WALL=$wall BUDGET=$budget \
  "$PYTHON" - >> benchmarks/RESULTS.md <<'EOF'
import csv, datetime, json, os, shutil, statistics, subprocess

import torch

from banet_lite.training.train import amp_settings, load_checkpoint

run = os.environ["RUN_DIR"]
rows = list(csv.DictReader(open(f"{run}/history.csv")))
summary = json.load(open(f"{run}/eval_test/summary.json"))
cfg = load_checkpoint(f"{run}/last.pt")["train_config"]
smi = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader", "-i", "0"]
gpu = subprocess.run(smi, capture_output=True, text=True).stdout.strip().splitlines() if shutil.which(smi[0]) else []
cap = torch.cuda.get_device_capability(0)
dtype, scaler = amp_settings("cuda", cfg["amp"], cap)
precision = f"{str(dtype).removeprefix('torch.')} autocast" + (" + GradScaler" if scaler else "") if dtype else "float32"
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
speeds = [float(r["train_images_per_s"]) for r in rows if r.get("train_images_per_s")]
steady = speeds[1:] or speeds  # epoch 1 includes cuDNN autotuning
best = max(rows, key=lambda r: float(r["val_dice"]))
epoch_s = statistics.median(float(r["seconds"]) for r in rows)
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
m = {k: summary[k] for k in ("dice", "jaccard", "accuracy", "sensitivity", "specificity", "hd95", "boundary_f")}
print(f"""
## GPU check: notebook 05, `{cfg['preset']}` preset on {os.path.basename(cfg['data_dir'].rstrip('/'))} ({now})

`benchmarks/gpu_check.sh` (commit {commit}) ran

    {os.environ['COMMAND_LINE'].strip()}

- machine: {gpu[0] if gpu else torch.cuda.get_device_name(0)} (compute capability {cap[0]}.{cap[1]}),
  torch {torch.__version__} (CUDA {torch.version.cuda}); mixed precision: {precision}
- backbone weights: {os.environ['WEIGHTS_NOTE']}
- schedule: {len(rows)} of {cfg['epochs']} planned epochs run in a {os.environ['BUDGET']} s training budget
  (the poly schedule spans all {cfg['epochs']}; the paper trains 150), batch {cfg['batch_size']},
  {cfg['img_size']} px, lr {cfg['lr']:g}, workers {cfg['workers']}, seed {cfg['seed']};
  notebook wall time {int(os.environ['WALL']) / 60:.1f} min
- training speed: {statistics.median(steady):.1f} images/s (median of epochs {'2' if len(speeds) > 1 else '1'}-{len(speeds)};
  epoch 1: {speeds[0]:.1f}), {epoch_s:.1f} s per epoch with validation
- best validation Dice {float(best['val_dice']):.4f} (epoch {best['epoch']})
- test, {summary['n_images']} images of the split `{summary['split']}`, at each image's original size:

| DI | JA | AC | SE | SP | HD95 (px) | BF |
|---:|---:|---:|---:|---:|---:|---:|
| {m['dice']:.4f} | {m['jaccard']:.4f} | {m['accuracy']:.4f} | {m['sensitivity']:.4f} | {m['specificity']:.4f} | {m['hd95']:.2f} | {m['boundary_f']:.4f} |
""")
EOF
echo "gpu_check.sh: record appended to benchmarks/RESULTS.md; run folder $out" >&2
tail -n 22 benchmarks/RESULTS.md
