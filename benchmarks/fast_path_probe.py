"""The CPU fast path (train.use_cpu_fast_path) against the plain path: step time, and a short training.

    python benchmarks/fast_path_probe.py speed paper bf16 10      # preset, precision, rounds
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python benchmarks/fast_path_probe.py speed paper fp32 8   # AVX2 kernels emulated on this CPU
    python benchmarks/fast_path_probe.py train paper              # same data, same seed, both paths
    python benchmarks/fast_path_probe.py adam paper               # Adam's step alone, both kernels

`speed`: two copies of the model from the same seed, one per path (weight gradients as matrix
products and fused Adam, or oneDNN's weight gradients and the for-loop Adam), channels_last, the
joint loss, 256 px (batch 2 for paper, 8 otherwise); the two alternate step by step (and which goes
first) so that the machine's drift hits both alike; prints the median of the rounds after 2 warm-up
rounds. `train`: fit on the synthetic lesions (64 px, 4 epochs, float32, random init) once per path;
prints the validation Dice of each epoch. The paths compute the same functions, so they differ the
way two summation orders do; a third run, the plain path on one thread (oneDNN then sums in another
order, nothing else changes), shows how far rounding alone moves such a short from-scratch run.
`adam`: one Adam step over the preset's parameters (random gradients), the for-loop kernel against
the fused one, median of 8 after 2 warm-up steps, and the largest difference between the two results.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import torch

import banet_lite as bl
from banet_lite.weight_grad import gemm_weight_grads


def speed(preset: str, precision: str, rounds: int) -> None:
    batch = 2 if preset == "paper" else 8
    x = torch.randn(batch, 3, 256, 256).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch, 1, 256, 256)
    y[..., 64:192, 80:170] = 1
    amp_dtype = torch.bfloat16 if precision == "bf16" else None
    sides = {}
    for fast in (False, True):
        torch.manual_seed(0)
        model = bl.build_model(preset).to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fast or None)
        sides[fast] = model, bl.losses.joint_loss_for(model), optimizer

    def step(fast: bool) -> float:
        model, loss_fn, optimizer = sides[fast]
        t0 = time.perf_counter()
        with gemm_weight_grads(model, enabled=fast):
            with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
                total, _ = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
        return time.perf_counter() - t0

    times = {False: [], True: []}
    for i in range(rounds + 2):
        for fast in (False, True) if i % 2 == 0 else (True, False):
            seconds = step(fast)
            if i >= 2:  # the first two rounds warm up the allocator and kernels
                times[fast].append(seconds)
    print(f"{preset}, {precision}, batch {batch}, 256 px, {torch.get_num_threads()} threads, {rounds} rounds")
    for fast, label in ((False, "plain path"), (True, "fast path")):
        print(f"  {label}: median {statistics.median(times[fast]):.3f} s per step "
              f"({' '.join(f'{t:.2f}' for t in times[fast])})")


def train(preset: str) -> None:
    threads = torch.get_num_threads()
    runs = [(False, threads, "plain path"), (True, threads, "fast path"),
            (False, 1, "plain path, 1 thread (control: oneDNN sums in another order, nothing else changes)")]
    for fast, n_threads, label in runs:
        torch.set_num_threads(n_threads)
        with tempfile.TemporaryDirectory() as out:
            result = bl.train.fit(bl.train.TrainConfig(
                preset=preset, pretrained=None, epochs=4, batch_size=4, img_size=64, synthetic_train=48,
                amp=False, cpu_fast_path=fast, progress=False, out=out, seed=0))
        dice = " ".join(f"{row['val_dice']:.4f}" for row in result.history)
        print(f"{preset}, {label}: validation Dice per epoch {dice}", flush=True)
    torch.set_num_threads(threads)


def adam(preset: str) -> None:
    torch.manual_seed(0)
    params = list(bl.build_model(preset).parameters())
    grads = [torch.randn_like(p) * 1e-3 for p in params]
    results = {}
    for fused in (False, True):
        copies = [p.detach().clone().requires_grad_() for p in params]
        for c, g in zip(copies, grads):
            c.grad = g.clone()
        optimizer = torch.optim.Adam(copies, lr=1e-4, fused=fused or None)
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            optimizer.step()
            times.append(time.perf_counter() - t0)
        results[fused] = copies
        print(f"{preset}, {sum(p.numel() for p in params):,} parameters, {'fused' if fused else 'for-loop'} Adam: "
              f"median {statistics.median(times[2:]) * 1000:.1f} ms per step")
    diff = max((a - b).abs().max().item() for a, b in zip(results[False], results[True]))
    print(f"largest difference after 10 steps: {diff:.1e}")


if __name__ == "__main__":
    mode, preset = sys.argv[1], sys.argv[2]
    if mode == "speed":
        speed(preset, sys.argv[3], int(sys.argv[4]))
    elif mode == "adam":
        adam(preset)
    else:
        train(preset)
