"""CPU training-step variants, interleaved in one process: float32 against bfloat16 autocast, and
the plain path against the CPU fast path.

    python benchmarks/amp_probe.py tiny 96 8 8            # preset, input size, batch, timed rounds
    python benchmarks/amp_probe.py lite 256 8 4 fp32,bf16_all,bf16_fwd
    python benchmarks/amp_probe.py paper 256 2 10 bf16_all,bf16_fast

Variants (one model and optimiser each, same seed): `fp32`; `bf16_all`, autocast around forward and
loss (what fit does where bfloat16 is native); `bf16_fwd`, autocast around the forward only, outputs
cast to float32 for the loss; `fp32_fast` and `bf16_fast`, `fp32` and `bf16_all` on the CPU fast path
(train.use_cpu_fast_path: weight gradients as matrix products, fused Adam). Two warm-up steps per
variant, then the variants alternate; medians. This is the measurement behind the tiny/lite rule in
banet_lite/training/precision.py and the paper-only rule of the fast path (benchmarks/RESULTS.md).
"""

import dataclasses
import statistics
import sys
import time

import torch

import banet_lite as bl
from banet_lite.training.weight_grad import gemm_weight_grads


def to_float32(out):
    return dataclasses.replace(out, logits=out.logits.float(), side_masks=tuple(t.float() for t in out.side_masks),
                               side_edges=tuple(t.float() for t in out.side_edges))


def main() -> None:
    preset, size, batch, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    modes = sys.argv[5].split(",") if len(sys.argv) > 5 else ["fp32", "bf16_all", "bf16_fwd"]
    unknown = set(modes) - {"fp32", "bf16_all", "bf16_fwd", "fp32_fast", "bf16_fast"}
    if unknown:
        sys.exit(f"amp_probe.py: unknown variant(s) {sorted(unknown)}")
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)  # (B, 3, S, S)
    y = torch.zeros(batch, 1, size, size)
    y[..., size // 4: 3 * size // 4, size // 3: 2 * size // 3] = 1  # a box lesion
    setups = {}
    for mode in modes:
        torch.manual_seed(0)
        model = bl.build_model(preset).to(memory_format=torch.channels_last)
        fused = mode.endswith("_fast") or None  # the fast path's fused Adam
        setups[mode] = (model, torch.optim.Adam(model.parameters(), 1e-4, fused=fused))
    loss_fn = bl.losses.joint_loss_for(model)  # the same for every mode: fit's loss for this preset

    def step(mode: str) -> None:
        model, optimizer = setups[mode]
        with gemm_weight_grads(model, enabled=mode.endswith("_fast")):
            if mode in ("fp32", "fp32_fast"):
                total, _ = loss_fn(model(x), y)
            elif mode in ("bf16_all", "bf16_fast"):
                with torch.autocast("cpu", torch.bfloat16):
                    total, _ = loss_fn(model(x), y)
            else:  # bf16_fwd
                with torch.autocast("cpu", torch.bfloat16):
                    out = model(x)
                total, _ = loss_fn(to_float32(out), y)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()

    for mode in modes:  # warm-up
        step(mode)
        step(mode)
    times = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            start = time.perf_counter()
            step(mode)
            times[mode].append(time.perf_counter() - start)
    for mode in modes:
        median = statistics.median(times[mode])
        print(f"{preset} {size}px batch {batch} {mode}: {median:.3f} s/step, {batch / median:.1f} images/s")


if __name__ == "__main__":
    main()
