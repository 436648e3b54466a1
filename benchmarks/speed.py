"""Training and inference speed per preset, on CPU (and on CUDA when present).

    python benchmarks/speed.py                      # tiny, lite, paper, unet at 256x256
    python benchmarks/speed.py --presets paper --batch-size 2 --steps 3
    python benchmarks/speed.py --presets lite --compile   # torch.compile first (minutes to compile)

Training: images/s of full Adam steps on the joint loss (forward, backward, update) at the
given batch size, channels_last, after warm-up steps. Inference: ms per image at batch 1 in
eval mode under torch.inference_mode. The best of `--repeats` timings is reported (the least
disturbed by other work on the machine). Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import banet_lite as bl


def time_training(model, batch_size: int, size: int, steps: int, repeats: int, device) -> float:
    """Seconds per training step (best of `repeats` runs of `steps` steps)."""
    model.train()
    loss_fn = bl.JointLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch_size, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch_size, 1, size, size, device=device)
    y[..., size // 4: 3 * size // 4, size // 3: 2 * size // 3] = 1

    def step():
        total, _ = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    for _ in range(2):  # warm-up: allocator, kernels
        step()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


@torch.inference_mode()
def time_inference(model, size: int, repeats: int, device) -> float:
    """Seconds per image at batch 1."""
    model.eval()
    x = torch.randn(1, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    for _ in range(2):
        model(x)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        model(x)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "lite", "paper", "unet"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="training batch (the paper preset uses 2)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile each model first (inductor)")
    parser.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args = parser.parse_args()

    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads ({cpu}), input {args.size}x{args.size}")
    print("| device | preset | params | train batch | train step (s) | train images/s | inference ms/image |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for device_name in args.devices:
        device = torch.device(device_name)
        for preset in args.presets:
            torch.manual_seed(0)
            model = bl.build_model(preset).to(device, memory_format=torch.channels_last)
            params = bl.count_parameters(model)
            if args.compile:
                model = torch.compile(model)  # compiled during the warm-up steps (minutes on CPU)
            batch = 2 if preset == "paper" and device.type == "cpu" else args.batch_size
            step = time_training(model, batch, args.size, args.steps, args.repeats, device)
            infer = time_inference(model, args.size, max(args.repeats, 5), device)
            print(f"| {device_name} | {preset} | {params:,} | {batch} | {step:.3f} | "
                  f"{batch / step:.1f} | {infer * 1000:.0f} |", flush=True)


if __name__ == "__main__":
    main()
