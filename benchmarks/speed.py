"""Training and inference speed per preset, on CPU (and on CUDA when present).

    python benchmarks/speed.py                      # tiny, lite, paper, unet at 256x256
    python benchmarks/speed.py --presets paper --batch-size 2 --steps 3
    python benchmarks/speed.py --presets lite --compile   # torch.compile first (minutes to compile)
    python benchmarks/speed.py --presets lite paper --precision fp32 bf16 --path fit plain   # a row per setting
    python benchmarks/speed.py --vs-reference .bench/BA-Net   # paper step against the authors' code

Training: images/s of full Adam steps on the joint loss (forward, backward, update) at the
given batch size, channels_last, after warm-up steps, in the precision `fit` would choose on this
machine (`--precision auto`: bfloat16 autocast on a CPU with native bfloat16 for lite and paper,
else float32; `fp32` / `bf16` force one), on fit's path (`--path fit`: the CPU fast path where fit takes
it) or without the fast path (`plain`); several values of either give a row per combination. Inference:
ms per image at batch 1 in eval mode under torch.inference_mode. The median of `--repeats` timings is
reported (common.timed). Prints a Markdown table and appends each row to benchmarks/results/speed.jsonl (common.record).

`--vs-reference PATH` times the `paper` step side by side with the authors' reference network
(a checkout of github mathwrx/BA-Net at PATH, kept out of this repository and imported from
there): both in this process, interleaved step by step after warm-up, batch 2, 256x256, Adam
lr 1e-4, each on its own joint loss (the reference's: CE + Dice on the output, CE on the 4 side
segmentations and 4 side boundaries; every weight 1). The library step is the one `fit` runs by
default on this machine (channels_last, `amp_settings`, autocast around forward and loss, the
CPU fast path `use_cpu_fast_path` (weight gradients as matrix products, fused Adam),
scheduler step, the loss terms and Dice summed on the device). The reference runs as written:
contiguous tensors, float32,
plain BatchNorm2d in place of its SynchronizedBatchNorm2d (one process, so the same function),
no pretrained download. It imports torchvision only for a name it never uses; where torchvision
is missing or broken, a stand-in module with that one name is put in its place. Prints medians
per side and ends with `paper step vs reference: <ratio>x`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from common import build_reference, cpu_flags, import_reference, record, synthetic_batch, timed

import banet_lite as bl
from banet_lite.training.optimizer import adam
from banet_lite.training.precision import amp_settings
from banet_lite.training.schedule import PolySchedule
from banet_lite.training.step import dice_sum, train_step
from banet_lite.training.train import TrainConfig, use_cpu_fast_path
from banet_lite.training.weight_grad import gemm_weight_grads


def precision_for(preset: str, device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype (None: float32): `auto` is what fit chooses (amp_settings)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    return amp_settings(device.type, True, capability, preset=preset)[0]


def time_training(model, batch_size: int, size: int, steps: int, repeats: int, device,
                  amp_dtype: torch.dtype | None = None, fast_path: bool = False) -> float:
    """Seconds per training step (median of `repeats` timings of `steps` steps, after 2 warm-up steps);
    with `fast_path`, on fit's CPU fast path (weight_grad.py, fused Adam)."""
    model.train()
    loss_fn = bl.losses.joint_loss_for(model)
    opt = adam(model.parameters(), lr=1e-4, weight_decay=0.0, device_type=device.type, cpu_fast_path=fast_path)
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # float32 / bfloat16: a pass-through
    x, y = synthetic_batch(batch_size, size, device)
    with gemm_weight_grads(model, enabled=fast_path):
        return timed(lambda: train_step(model, x, y, opt, scaler, loss_fn, amp_dtype), device,
                     warmup=2, repeats=repeats, calls=steps)["median_s"]


@torch.inference_mode()
def time_inference(model, size: int, repeats: int, device) -> float:
    """Seconds per image at batch 1 (median of `repeats`, after 2 warm-up passes)."""
    model.eval()
    x, _ = synthetic_batch(1, size, device)
    return timed(lambda: model(x), device, warmup=2, repeats=repeats)["median_s"]


def versus_reference(path: str, steps: int, size: int = 256, batch_size: int = 2, precision: str = "auto",
                     warmup: int = 2, fast_path: bool = True):
    """Median seconds per training step, library and reference, interleaved; prints the ratio."""
    device = torch.device("cpu")
    RefBANet, RefLoss = import_reference(path)
    torch.manual_seed(0)
    ref = build_reference(RefBANet, size).train()
    ref_loss = RefLoss("banet", 1.0, 1.0, None, None, [1, 1, 1, 1, 1, 1, 1, 1])
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-4)

    lib = bl.build_model("paper").to(device, memory_format=torch.channels_last).train()  # as fit builds it
    amp_dtype = precision_for("paper", device, precision)
    loss_fn = bl.losses.joint_loss_for(lib)  # fit's defaults (the paper preset's border rule)
    fast_path = use_cpu_fast_path(device.type, TrainConfig(preset="paper", cpu_fast_path=fast_path))  # fit's rule
    opt = adam(lib.parameters(), lr=1e-4, weight_decay=0.0, device_type=device.type, cpu_fast_path=fast_path)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, PolySchedule(steps_per_epoch=100, epochs=100))  # fit's schedule
    scaler = torch.amp.GradScaler("cuda", enabled=False)  # as fit on a CPU: a pass-through

    images, masks = synthetic_batch(batch_size, size, memory_format=torch.contiguous_format)  # on the host

    sums = {}

    def lib_step():  # fit's step: the batch to the device, train_step, the loss terms and Dice summed on the device
        x = images.to(device, memory_format=torch.channels_last)
        y = masks.to(device)
        out, total, parts = train_step(lib, x, y, opt, scaler, loss_fn, amp_dtype, sched)
        for k, v in {**parts, "total": total, "dice": dice_sum(out.logits.detach().float(), y)}.items():
            sums[k] = sums.get(k, 0.0) + v.double()

    def ref_step():  # the reference's training step (experiment/main.py), minus the data loading
        ref_opt.zero_grad()
        loss = ref_loss(ref(images), masks[:, 0].long())[0]
        loss.backward()
        ref_opt.step()
        loss.item()

    with gemm_weight_grads(lib, enabled=fast_path) as n_convs:  # as fit's epochs
        print(cpu_flags())
        path = f"fast path ({n_convs} weight gradients as GEMMs, fused Adam)" if fast_path else "plain path"
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; library: paper preset, channels_last, "
              f"{'bfloat16 autocast' if amp_dtype is not None else 'float32'} ({precision}), {path}; "
              f"reference: float32, contiguous; batch {batch_size}, {size}x{size}, Adam; "
              f"{bl.count_parameters(lib):,} vs "
              f"{sum(p.numel() for p in ref.parameters()):,} parameters (the reference keeps an unused classifier)")
        for _ in range(warmup):  # warm-up: allocator, oneDNN kernels
            lib_step()
            ref_step()
        lib_times, ref_times = [], []
        for i in range(steps):
            pair = ((lib_step, lib_times), (ref_step, ref_times))
            for fn, times in pair if i % 2 == 0 else pair[::-1]:  # alternate which side goes first
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
    lib_s, ref_s = statistics.median(lib_times), statistics.median(ref_times)
    print(f"library step: median {lib_s:.3f} s ({' '.join(f'{t:.2f}' for t in lib_times)})")
    print(f"reference step: median {ref_s:.3f} s ({' '.join(f'{t:.2f}' for t in ref_times)})")
    print(f"paper step vs reference: {lib_s / ref_s:.2f}x")
    return lib_s, ref_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "lite", "paper", "unet"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="training batch (the paper preset uses 2)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (--vs-reference: per side, try 5+)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="--vs-reference: warm-up steps per side")
    parser.add_argument("--compile", action="store_true", help="torch.compile each model first (inductor)")
    parser.add_argument("--precision", nargs="+", choices=["auto", "fp32", "bf16"], default=["auto"],
                        help="auto: what fit chooses on this machine (amp_settings); several: a row each")
    parser.add_argument("--path", nargs="+", choices=["fit", "plain"], default=["fit"],
                        help="fit: fit's CPU fast path where it takes it; plain: without (cpu_fast_path=False)")
    parser.add_argument("--vs-reference", metavar="PATH",
                        help="a checkout of github mathwrx/BA-Net: time the paper step side by side with it")
    parser.add_argument("--no-record", action="store_true",
                        help="print only; by default each row is also appended to benchmarks/results/speed.jsonl")
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args = parser.parse_args()
    if args.vs_reference:
        for precision in args.precision:
            for path in args.path:
                lib_s, ref_s = versus_reference(args.vs_reference, args.steps, args.size, precision=precision,
                                                warmup=args.warmup, fast_path=path == "fit")
                if not args.no_record:
                    record("speed_vs_reference", {"size": args.size, "batch": 2, "precision": precision,
                                                  "fast_path": path == "fit", "library_step_s": lib_s,
                                                  "reference_step_s": ref_s, "ratio": lib_s / ref_s})
        return

    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads ({cpu}), input {args.size}x{args.size}")
    print(cpu_flags())
    print("| device | preset | params | precision | fast path | train batch | train step (s) | train images/s "
          "| inference ms/image |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|")
    for device_name in args.devices:
        device = torch.device(device_name)
        for preset in args.presets:
            torch.manual_seed(0)
            model = bl.build_model(preset).to(device, memory_format=torch.channels_last)
            params = bl.count_parameters(model)
            if args.compile:
                model = torch.compile(model)  # compiled during the warm-up steps (minutes on CPU)
            batch = 2 if preset == "paper" and device.type == "cpu" else args.batch_size
            infer = time_inference(model, args.size, max(args.repeats, 5), device)  # float32, no fast path: once
            timed_settings = set()  # (dtype, fast path): "auto" may be "fp32", and "fit" may be "plain"
            for precision in args.precision:
                for path in args.path:
                    amp_dtype = precision_for(preset, device, precision)
                    fast = use_cpu_fast_path(device.type, TrainConfig(preset=preset, compile=args.compile,
                                                                      cpu_fast_path=path == "fit"))
                    if (amp_dtype, fast) in timed_settings:
                        continue
                    timed_settings.add((amp_dtype, fast))
                    step = time_training(model, batch, args.size, args.steps, args.repeats, device, amp_dtype, fast)
                    dtype = "bf16 autocast" if amp_dtype is not None else "fp32"
                    print(f"| {device_name} | {preset} | {params:,} | {dtype} | {'yes' if fast else 'no'} | {batch} | "
                          f"{step:.3f} | {batch / step:.1f} | {infer * 1000:.0f} |", flush=True)
                    if not args.no_record:
                        record("speed", {"device": device_name, "preset": preset, "params": params,
                                         "precision": dtype, "fast_path": fast, "compile": args.compile,
                                         "size": args.size, "batch": batch, "train_step_s": step,
                                         "train_images_per_s": batch / step, "inference_ms_per_image": infer * 1000})


if __name__ == "__main__":
    main()
