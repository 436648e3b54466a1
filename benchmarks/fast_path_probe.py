"""The CPU fast path (train.use_cpu_fast_path) against the plain path: a short training, Adam's step.

    python benchmarks/fast_path_probe.py train paper              # same data, same seed, both paths
    python benchmarks/fast_path_probe.py adam paper               # Adam's step alone, both kernels

The step time of either path: benchmarks/amp_probe.py (variants `fp32_fast`, `bf16_fast`).

`train`: fit on the synthetic lesions (64 px, 4 epochs, float32, random init) once per path; prints
the validation Dice of each epoch. The paths compute the same functions, so they differ the
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
    if mode == "adam":
        adam(preset)
    else:
        train(preset)
