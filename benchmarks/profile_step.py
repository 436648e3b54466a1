"""Where a training step's time goes: FLOPs per component and the torch.profiler's top operators.

    python benchmarks/profile_step.py --preset paper --batch-size 2
    python benchmarks/profile_step.py --preset paper --batch-size 2 --memory-format contiguous
    python benchmarks/profile_step.py --preset paper --batch-size 2 --conv-passes
    python benchmarks/profile_step.py --preset paper --precision bf16 --weight-grads

Profile before optimising: prints the forward FLOPs of each top-level component for one image
(torch.utils.flop_counter), the step time in the chosen memory format, and the operators that
take most of one profiled Adam step on the joint loss. `--conv-passes` also times every
convolution of the model alone, at the shape it sees in the step, in its three passes (forward,
input gradient, weight gradient), and prints the GFLOP/s each pass reaches: the ceiling that no
change outside the convolution kernels can lift. `--weight-grads` times the weight gradients the CPU
fast path computes as matrix products (banet_lite/training/weight_grad.py) both ways.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from common import synthetic_batch, timed  # benchmarks/common.py: this folder is sys.path[0]
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

import banet_lite as bl
from banet_lite.training.step import train_step
from banet_lite.training.weight_grad import MIN_IN_CHANNELS, eligible, gemm_weight_grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--memory-format", choices=["channels_last", "contiguous"], default="channels_last")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: autocast around forward and loss, as fit does on a CPU with native bfloat16")
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--conv-passes", action="store_true", help="time each conv's three passes alone")
    parser.add_argument("--weight-grads", action="store_true",
                        help="time each wide conv's weight gradient, oneDNN's against weight_grad.py's matrix products")
    parser.add_argument("--min-in-channels", type=int, default=MIN_IN_CHANNELS,
                        help="--weight-grads: the convolutions with at least this many input channels")
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
    x, y = synthetic_batch(args.batch_size, args.size, memory_format=fmt)
    loss_fn, opt = bl.losses.joint_loss_for(model), torch.optim.Adam(model.parameters(), lr=1e-4)

    amp_dtype = torch.bfloat16 if args.precision == "bf16" else None

    scaler = torch.amp.GradScaler("cpu", enabled=False)

    def step():
        train_step(model, x, y, opt, scaler, loss_fn, amp_dtype)

    seconds = timed(step, warmup=1, repeats=3)["median_s"]
    print(f"training step, batch {args.batch_size}, {args.memory_format}, {args.precision}: median {seconds:.3f} s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if args.weight_grads:
        weight_grads(model, x, dtype=amp_dtype or torch.float32, min_in_channels=args.min_in_channels)
    if args.conv_passes:
        conv_passes(model, x, dtype=amp_dtype or torch.float32, top=args.rows)


def conv_inputs(model: torch.nn.Module, x: torch.Tensor, dtype, which) -> dict:
    """{module: the input it sees in one forward of x, cast to dtype} for the modules `which` picks."""
    inputs = {}

    def keep_input(module, args, output):  # returns None: the forward pass is left unchanged
        inputs[module] = args[0].detach().to(dtype)

    hooks = [m.register_forward_hook(keep_input) for m in model.modules() if which(m)]
    model(x)
    for h in hooks:
        h.remove()
    return inputs


def conv_passes(model: torch.nn.Module, x: torch.Tensor, repeats: int = 3, dtype=torch.float32, top=0) -> None:
    """Seconds and GFLOP/s of every conv's forward, input-gradient and weight-gradient pass."""
    inputs = conv_inputs(model, x, dtype, lambda m: isinstance(m, torch.nn.Conv2d))
    names = {m: n for n, m in model.named_modules()}
    slowest = []
    totals = {p: [0.0, 0.0] for p in ("forward", "input grad", "weight grad")}
    for conv, inp in inputs.items():
        w = conv.weight.detach().to(dtype)
        out = F.conv2d(inp, w, None, conv.stride, conv.padding, conv.dilation, conv.groups)
        flops = 2 * out.numel() * conv.weight[0].numel()  # one multiply-add per weight per output element
        for name in totals:
            if name == "input grad" and conv is model.backbone.conv1:
                continue  # the image needs no gradient: autograd skips this pass
            seconds = min(_time_pass(conv, w, inp, out, name) for _ in range(repeats + 1))  # first: warm-up
            totals[name][0] += seconds
            totals[name][1] += flops
            slowest.append((seconds, names[conv], name, tuple(inp.shape), flops))
    print(f"\n{len(inputs)} convolutions in {str(dtype).removeprefix('torch.')}, each timed alone (best of {repeats}):")
    for name, (seconds, flops) in totals.items():
        print(f"  {name:<12} {seconds:6.3f} s  {flops / 1e9:6.1f} GFLOP  {flops / seconds / 1e9:6.1f} GFLOP/s")
    seconds = sum(t for t, _ in totals.values())
    flops = sum(f for _, f in totals.values())
    print(f"  {'all passes':<12} {seconds:6.3f} s  {flops / 1e9:6.1f} GFLOP  {flops / seconds / 1e9:6.1f} GFLOP/s")
    if top:
        print(f"\nthe {top} slowest passes:")
        for seconds, name, pass_name, shape, flops in sorted(slowest, reverse=True)[:top]:
            print(f"  {seconds:6.3f} s  {flops / seconds / 1e9:6.1f} GFLOP/s  {pass_name:<12} {name} {shape}")


@torch.no_grad()
def weight_grads(model: torch.nn.Module, x: torch.Tensor, dtype=torch.float32, repeats: int = 3,
                 min_in_channels: int = MIN_IN_CHANNELS) -> None:
    """Every convolution the CPU fast path switches (weight_grad.eligible): its weight gradient by
    oneDNN (what autograd calls) and by `gemm_weight_grad`, each timed alone, best of `repeats`."""
    inputs = conv_inputs(model, x, dtype, lambda m: eligible(m, min_in_channels))
    totals = [0.0, 0.0]
    for conv, inp in inputs.items():
        w = conv.weight.detach().to(dtype)
        g = torch.randn_like(F.conv2d(inp, w, None, 1, conv.padding, conv.dilation))
        onednn = _best_of(repeats, torch.ops.aten.convolution_backward, g, inp, w, None, [1, 1],
                          list(conv.padding), list(conv.dilation), False, [0, 0], 1, [False, True, False])
        ours = _best_of(repeats, gemm_weight_grad, inp, g, conv.kernel_size, conv.dilation, conv.padding)
        totals[0], totals[1] = totals[0] + onednn, totals[1] + ours
    print(f"\nweight gradients of the {len(inputs)} convolutions with at least {min_in_channels} input channels, "
          f"{str(dtype).removeprefix('torch.')}, each timed alone (best of {repeats}): "
          f"oneDNN {totals[0]:.3f} s, matrix products {totals[1]:.3f} s")


def _best_of(repeats: int, fn, *args) -> float:
    """The least seconds of `repeats` calls of fn(*args), after one warm-up call."""
    fn(*args)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def _time_pass(conv: torch.nn.Conv2d, w: torch.Tensor, inp: torch.Tensor, out: torch.Tensor, name: str) -> float:
    t0 = time.perf_counter()
    if name == "forward":
        F.conv2d(inp, w, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    else:  # the two halves of autograd's ConvolutionBackward, one at a time
        mask = [name == "input grad", name == "weight grad", False]
        torch.ops.aten.convolution_backward(out, inp, w, None, list(conv.stride), list(conv.padding),
                                            list(conv.dilation), False, [0, 0], conv.groups, mask)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
