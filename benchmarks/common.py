"""What the benchmarks here share: one synthetic batch, one timer, one description of the CPU.

    images, masks = synthetic_batch(8, 256)          # (8, 3, 256, 256) channels_last, (8, 1, 256, 256)
    seconds = timed(step, device, warmup=2, repeats=3, calls=3)["median_s"]   # per call
    print(cpu_flags())
    record("speed", {"preset": "lite", "train_step_s": seconds})   # a line in benchmarks/results/speed.jsonl

The timer warms up first (allocator, kernel selection, torch.compile), synchronises a GPU around every
timing, and reports the median of `repeats` timings (the best is what a quiet machine gives; the median
is what a shared one gives most of the time, and moves less between runs). Training steps come from the
library itself (`banet_lite.training.step.train_step`), never a copy.
"""

from __future__ import annotations

import datetime
import fcntl
import functools
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch

from banet_lite.training.precision import cpu_has_native_bf16


def synthetic_batch(batch: int, size: int, device: str | torch.device = "cpu",
                    memory_format=torch.channels_last, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded normal images (B, 3, S, S) and masks (B, 1, S, S) holding one centred rectangle: a lesion
    shape for the loss, no data loading in the timing."""
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    masks = torch.zeros(batch, 1, size, size)
    masks[..., size // 4: 3 * size // 4, size // 3: 2 * size // 3] = 1
    return images.to(device, memory_format=memory_format), masks.to(device)


def sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str | torch.device = "cpu", warmup: int = 2, repeats: int = 3,
          calls: int = 1) -> dict:
    """Seconds per call of `fn`: `warmup` calls, then `repeats` timings of `calls` calls each.
    {"median_s": the median per call, "times_s": every timing per call}."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        times.append((time.perf_counter() - t0) / calls)
    return {"median_s": statistics.median(times), "times_s": times}


def cpu_flags() -> str:
    """The CPU's vector extensions that matter here, from /proc/cpuinfo (Linux), and torch's view."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        flags = set()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    have = [f for f in wanted if f in flags]
    return (f"CPU flags: {' '.join(have) or 'unknown'}; torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}; native bfloat16 for training: {cpu_has_native_bf16()}")


RESULTS = Path(__file__).resolve().parent / "results"


def results_dir(folder: str | os.PathLike | None = None) -> Path:
    """Where the records are: `folder`, else $BANET_RESULTS_DIR, else benchmarks/results/."""
    return Path(folder or os.environ.get("BANET_RESULTS_DIR") or RESULTS)


def read_records(name: str, folder: str | os.PathLike | None = None) -> list[dict]:
    """Every line of `<folder>/<name>.jsonl` (see results_dir), oldest first; none if there is no file."""
    path = results_dir(folder) / f"{name}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@functools.cache
def commit() -> str | None:
    """The checkout's commit when the benchmark started (with "+changes" when the working tree differed from
    it); None without git. Asked once, at import: a long run records the code it ran, not a later HEAD."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!benchmarks/results"],  # records arriving are no change of code
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


commit()  # now, while the code that runs is the checkout's


RUN_KEY = ("sweep", "dataset", "variant", "seed", "recipe", "set")  # what names one quality.py run


def newest_runs(records: list[dict]) -> list[dict]:
    """The newest record of each quality.py run (RUN_KEY), in the order the runs first appear: a run done
    again (say, to add per-image scores) replaces its older line."""
    newest: dict[str, dict] = {}
    for r in records:
        newest[json.dumps([r.get(k) for k in RUN_KEY], sort_keys=True)] = r
    return list(newest.values())


def record(name: str, row: dict, folder: str | os.PathLike | None = None) -> Path:
    """Append `row` to `<folder>/<name>.jsonl` (default benchmarks/results/, or $BANET_RESULTS_DIR), with
    what makes it reproducible: the command, the commit, the date, torch, the threads and the CPU. One JSON
    object per line, so runs accumulate and a report reads them all; several processes may append at once
    (a lock)."""
    folder = results_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"command": shlex.join(["python", *sys.argv]), "commit": commit(),
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "torch": torch.__version__, "threads": torch.get_num_threads(),
             "machine": f"{platform.machine()}; {cpu_flags()}", **row}
    path = folder / f"{name}.jsonl"
    with path.open("a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(entry) + "\n")
        f.flush()
    return path


# ------------------------------------------------------------------ the authors' network
def import_reference(path: str):
    """The reference's BANet class and SegmentationLoss, imported from a checkout at `path`."""
    try:
        import torchvision.models  # noqa: F401  (the reference imports resnet101 from it, never calls it)
    except Exception:  # missing, or a wheel built for another torch: a stand-in for that one name
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        stub, stub_models = types.ModuleType("torchvision"), types.ModuleType("torchvision.models")

        def resnet101(*args, **kwargs):
            raise NotImplementedError("torchvision stand-in (benchmarks/speed.py)")

        stub_models.resnet101, stub.models = resnet101, stub_models
        sys.modules["torchvision"], sys.modules["torchvision.models"] = stub, stub_models
        print("torchvision: not importable here; a stand-in provides torchvision.models.resnet101 (unused)")
    sys.path.insert(0, path)
    from encoding.models.BANet import BANet
    from encoding.models.criterion import SegmentationLoss

    return BANet, SegmentationLoss


def build_reference(RefBANet, size: int = 256):
    """The reference network in its paper configuration (experiment/main.py defaults): ResNet-50, output
    stride 8, multi-grid (4, 4, 4), ASPP (6, 12, 18) at 256 channels, reduce dim 128, 2 classes, plain
    BatchNorm2d, no download. `is_train=True`: its forward resizes every output to the input's size
    (with False, to a fixed `test_size`)."""
    return RefBANet(2, "resnet50", torch.nn.BatchNorm2d, aspp_rates=[6, 12, 18], pretrained=False, dilated=True,
                    deep_base=False, multi_grid=True, multi_dilation=[4, 4, 4], output_stride=8, high_rates=[2, 4],
                    aspp_out_dim=256, reduce_dim=128, pooling="max", is_train=True, img_size=[size, size])
