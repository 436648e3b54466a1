"""Parity with the authors' code: given the reference's weights, the `paper` preset computes its function.

    python benchmarks/reference_parity.py --reference .bench/BA-Net [--size 64] [--seed 0]

Builds the authors' BA-Net (a checkout of github mathwrx/BA-Net at PATH, kept out of this repository
and imported from there by `common.import_reference`, as `speed.py --vs-reference` does; its configuration
is `common.build_reference`: 2 classes, ResNet-50, output stride 8, ASPP) and gives it random, seeded weights,
BatchNorm included (weight, bias, running mean and variance, so that no BN is an identity). Its
state_dict is converted into banet_lite's key names by the library's `model/reference.py` (an explicit
table, every banet_lite key filled exactly once, every reference key that takes part in the forward
used exactly once, else an error) and loaded with strict=True into `bl.build_model("paper")`. Both run
in eval mode, float32, on one random input (1, 3, size, size).

Compared: the final logits and the 4 side masks and 4 side boundaries (the reference's forward returns
them as out, seg1, edge1, ..., seg4, edge4, every one resized to the input's size, as ours). For
each: max |difference| and that relative to the range (max - min) of the reference's output. The
closing line gives the largest of each over the nine outputs; the script exits non-zero when the
relative one exceeds `--tolerance`. Two controls load the same weights with one plausible mapping
mistake each (PEE's squeeze weight copied unconverted; CFF's gate convs taken in argument order),
to show that the comparison would expose such a mistake. The figures are also appended to
benchmarks/results/parity.jsonl (common.record).

Then the same weights in banet_lite's model with `border_rule="exclude_padding"` (PEE averages over
the pixels that exist; the reference, like `paper`, counts the zero padding): how much each output
differs from the reference, in a band of 8 px along the image frame and in the centre.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import sys

import torch
from common import build_reference, cpu_flags, import_reference, record  # this folder is sys.path[0]
from torch import Tensor, nn

import banet_lite as bl
from banet_lite.model.reference import ours_from_reference


def wrong_conversions(ref_state: dict[str, Tensor], state: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """Controls: `state` with one plausible mistake each, which the comparison must expose."""
    raw_pee = dict(state)  # the reference's PEE squeeze weight copied as is, as if it saw [F, E_a, E_b]
    naive_cff = dict(state)  # att_conv{k} -> convs[k - 1], ignoring the order the reference passes the stages in
    for i in range(4):
        raw_pee[f"pee.{i}.squeeze.weight"] = ref_state[f"head.mtl{i + 1}.fuse_conv.0.weight"]
        for k in range(4):
            naive_cff[f"cff.{i}.convs.{k}.weight"] = ref_state[f"head.cf{i + 1}.att_conv{k + 1}.weight"]
    return {"PEE squeeze weight not converted": raw_pee, "CFF gate convs in argument order": naive_cff}


@torch.no_grad()
def randomise(model: nn.Module, seed: int) -> None:
    """Seeded random BatchNorm affine parameters and running statistics (conv weights and biases keep the
    reference's own seeded random initialisation)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0.0, 0.2, generator=g)
            m.running_mean.normal_(0.0, 0.2, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)


def output_names() -> list[str]:
    """In the reference's order: out, seg1, edge1, ..., seg4, edge4."""
    return ["logits"] + [f"side {kind} {i}" for i in range(1, 5) for kind in ("mask", "boundary")]


def ours_as_reference(out) -> list[Tensor]:
    """banet_lite's SegmentationOutput in the reference's order."""
    return [out.logits] + [t for pair in zip(out.side_masks, out.side_boundaries) for t in pair]


def frame_band(size: tuple[int, int], width: int) -> Tensor:
    """(H, W) bool: True within `width` pixels of the image frame."""
    h, w = size
    band = torch.ones(h, w, dtype=torch.bool)
    band[width:h - width, width:w - width] = False
    return band


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, metavar="PATH", help="a checkout of github mathwrx/BA-Net")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--band", type=int, default=8, help="width in px of the frame band (exclude_padding)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest max |diff| / range accepted with zero_padding (exit 1 above it)")
    args = parser.parse_args()

    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"command: {shlex.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads "
          f"({platform.processor() or platform.machine()}), Python {platform.python_version()}")
    print(cpu_flags())

    RefBANet, _ = import_reference(args.reference)
    torch.manual_seed(args.seed)
    ref = build_reference(RefBANet, args.size)
    randomise(ref, args.seed)
    ref.eval()
    ref_state = ref.state_dict()
    state = ours_from_reference(ref_state, bl.build_model("paper").state_dict().keys())

    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed + 1))
    with torch.no_grad():
        expected = list(ref(x))
    names = output_names()
    print(f"input (1, 3, {args.size}, {args.size}), seed {args.seed}; reference output ranges: "
          + ", ".join(f"{n} [{t.min():.3g}, {t.max():.3g}]" for n, t in zip(names, expected)))

    def run(weights: dict[str, Tensor], border_rule: str = "zero_padding") -> list[Tensor]:
        lib = bl.build_model("paper", border_rule=border_rule)
        lib.load_state_dict(weights, strict=True)
        with torch.no_grad():
            got = ours_as_reference(lib.eval()(x))
        for n, a, b in zip(names, got, expected):
            if a.shape != b.shape:
                raise RuntimeError(f"{border_rule}, {n}: shape {tuple(a.shape)} vs reference {tuple(b.shape)}")
        return got

    def worst(got: list[Tensor]) -> tuple[float, float]:
        """The largest max |diff| and max |diff| / range over the nine outputs."""
        diffs = [((a - b).abs().max().item(), (b.max() - b.min()).item()) for a, b in zip(got, expected)]
        return max(d for d, _ in diffs), max(d / span for d, span in diffs)

    results = {rule: run(state, rule) for rule in ("zero_padding", "exclude_padding")}

    print(f"\nzero_padding (the paper preset), {len(state)} tensors loaded with strict=True:")
    for n, a, b in zip(names, results["zero_padding"], expected):
        diff, span = (a - b).abs().max().item(), (b.max() - b.min()).item()
        print(f"  {n:<12} max |diff| {diff:.2e}  range {span:.3g}  ({100 * diff / span:.1e}% of range)")
    controls = {}  # what each deliberate mapping mistake gives, as a share of the range
    for name, weights in wrong_conversions(ref_state, state).items():
        d_abs, d_rel = controls[name] = worst(run(weights))
        caught = "caught: above" if d_rel > args.tolerance else "NOT caught: within"
        print(f"  control, a wrong conversion ({name}): max |diff| {d_abs:.2e} ({100 * d_rel:.2g}% of range; "
              f"{caught} --tolerance)")
    worst_abs, worst_rel = worst(results["zero_padding"])
    print(f"paper preset vs reference (zero_padding): max |diff| {worst_abs:.2e} ({100 * worst_rel:.1e}% of range)")

    band = frame_band((args.size, args.size), args.band)
    print(f"\nexclude_padding (same weights) vs reference: max |diff| (% of the reference output's range) "
          f"in the {args.band} px band along the frame and in the centre:")
    for n, a, b in zip(names, results["exclude_padding"], expected):
        diff, span = (a - b).abs()[0].amax(dim=0), (b.max() - b.min()).item()  # (H, W): max over classes
        d_band, d_centre = diff[band].max().item(), diff[~band].max().item()
        print(f"  {n:<12} band {d_band:.3g} ({100 * d_band / span:.1f}%), centre {d_centre:.3g} "
              f"({100 * d_centre / span:.1f}%), mean |diff| band {diff[band].mean():.3g}, "
              f"centre {diff[~band].mean():.3g}")
    record("parity", {"size": args.size, "seed": args.seed, "tensors_loaded": len(state),
                      "zero_padding_max_abs_diff": worst_abs, "zero_padding_max_diff_of_range": worst_rel,
                      "controls_max_diff_of_range": {k: rel for k, (_, rel) in controls.items()},
                      "tolerance": args.tolerance, "passed": worst_rel <= args.tolerance
                      and all(rel > args.tolerance for _, rel in controls.values())})
    if worst_rel > args.tolerance:
        sys.exit(f"FAILED: zero_padding max |diff| is {worst_rel:.1e} of the range, above --tolerance "
                 f"{args.tolerance:g}")


if __name__ == "__main__":
    main()
