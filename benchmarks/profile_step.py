"""Where a training step's time goes: FLOPs per component and the torch.profiler's top operators.

    python benchmarks/profile_step.py --preset paper --batch-size 2
    python benchmarks/profile_step.py --preset paper --batch-size 2 --memory-format contiguous

Profile before optimising: prints the forward FLOPs of each top-level component for one image
(torch.utils.flop_counter), the step time in the chosen memory format, and the operators that
take most of one profiled Adam step on the joint loss.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

import banet_lite as bl


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--memory-format", choices=["channels_last", "contiguous"], default="channels_last")
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = bl.build_model(args.preset)
    with FlopCounterMode(display=False, depth=1) as counter, torch.no_grad():
        model.eval()(torch.randn(1, 3, args.size, args.size))
    model.train()
    total = counter.get_total_flops()
    print(f"{args.preset}: {total / 1e9:.1f} GFLOP forward per {args.size}x{args.size} image")
    for name, ops in sorted(counter.get_flop_counts().items(), key=lambda kv: -sum(kv[1].values())):
        if name.count(".") == 1:
            print(f"  {name:<24} {sum(ops.values()) / 1e9:7.1f} GFLOP")

    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(args.batch_size, 3, args.size, args.size).contiguous(memory_format=fmt)
    y = torch.zeros(args.batch_size, 1, args.size, args.size)
    y[..., args.size // 4: 3 * args.size // 4, args.size // 3: 2 * args.size // 3] = 1
    loss_fn, opt = bl.JointLoss(), torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        total_loss, _ = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        total_loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(f"training step, batch {args.batch_size}, {args.memory_format}: best {min(times):.3f} s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
