"""Parity with the authors' code: given the reference's weights, the `paper` preset computes its function.

    python benchmarks/reference_parity.py --reference .bench/BA-Net [--size 64] [--seed 0]

Builds the authors' BA-Net (a checkout of github mathwrx/BA-Net at PATH, kept out of this repository
and imported from there, as `speed.py --vs-reference` does; its configuration is speed.py's
`build_reference`: 2 classes, ResNet-50, output stride 8, ASPP) and gives it random, seeded weights,
BatchNorm included (weight, bias, running mean and variance, so that no BN is an identity). Its
state_dict is converted into banet_lite's key names by `ours_from_reference` (an explicit table,
every banet_lite key filled exactly once, every reference key that takes part in the forward used
exactly once, else an error) and loaded with strict=True into `bl.build_model("paper")`. Both run
in eval mode, float32, on one random input (1, 3, size, size).

Compared: the final logits and the 4 side masks and 4 side edges (the reference's forward returns
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
from common import cpu_flags, record  # benchmarks/common.py: this folder is sys.path[0]
from speed import build_reference, import_reference
from torch import Tensor, nn

import banet_lite as bl
from banet_lite.teaching.exercise_answers import ours_from_reference as pee_squeeze_from_reference

# Reference parameters that take no part in its forward: the ResNet's 1000-class classifier, and
# the head's `up_conv4` (built, never called: d4 comes from `aspp_combine`, or is CFF_4 as is).
UNUSED_REFERENCE = ("pretrain_model.fc.", "head.up_conv4.")


def module_table() -> list[tuple[str, str, object]]:
    """(banet_lite prefix, reference prefix, conversion or None): every parameter and buffer under the
    reference prefix goes, under the same suffix, to the banet_lite prefix."""
    table = [("backbone.", "pretrain_model.", None)]  # the same torchvision names below: conv1, layer1.0.bn2, ...
    for i in range(4):  # stage i (from 0) is the reference's mtl{i+1} / cf{i+1}
        mtl = f"head.mtl{i + 1}."
        table += [
            (f"reduce.{i}.", mtl + "reduce_conv.", None),
            # reference fuse_conv: Conv1x1 (3R -> R), ReLU, DW3x3, BN, Conv1x1; ours: squeeze (the first
            # 1x1, its input [F, A_a F, A_b F] -> [F, E_a, E_b]), then fuse = ReLU, DW3x3, BN, 1x1
            (f"pee.{i}.squeeze.", mtl + "fuse_conv.0.", pee_squeeze_from_reference),
            (f"pee.{i}.fuse.1.", mtl + "fuse_conv.2.", None),
            (f"pee.{i}.fuse.2.", mtl + "fuse_conv.3.", None),
            (f"pee.{i}.fuse.3.", mtl + "fuse_conv.4.", None),
            (f"mtl.{i}.edge_branch.", mtl + "edge_conv.", None),
            (f"mtl.{i}.seg_branch.", mtl + "seg_conv.", None),
            (f"mtl.{i}.ia.attend_edge.", mtl + "att_edge.", None),
            (f"mtl.{i}.ia.attend_seg.", mtl + "att_seg.", None),
            (f"mtl.{i}.edge_head.", mtl + "edge_supervision.", None),
            (f"mtl.{i}.seg_head.", mtl + "seg_supervision.", None),
        ]
        # The reference calls cf{i+1}(S_own, then the other three stages in ascending order) and gates
        # its k-th argument with att_conv{k}; ours gates stage j with convs[j].
        others = [j for j in range(4) if j != i]
        table.append((f"cff.{i}.convs.{i}.", f"head.cf{i + 1}.att_conv1.", None))
        table += [(f"cff.{i}.convs.{j}.", f"head.cf{i + 1}.att_conv{k + 2}.", None) for k, j in enumerate(others)]
    table += [(f"aspp.branches.{k}.", f"aspp.b{k}.block.", None) for k in range(4)]  # conv, BN (ReLU at .2)
    table += [
        ("aspp.image_pool.1.", "aspp.b4.1.", None),  # AdaptiveAvgPool2d at .0 in both
        ("aspp.image_pool.2.", "aspp.b4.2.", None),
        ("aspp.project.", "aspp.project.", None),
        ("decoder.top.", "head.aspp_combine.", None),  # ReLU, DW3x3, BN, 1x1 in both
        ("decoder.up.0.", "head.up_conv3.", None),  # d3
        ("decoder.up.1.", "head.up_conv2.", None),  # d2
        ("decoder.up.2.", "head.up_conv1.", None),  # d1
        ("decoder.head.0.", "head.conv1.0.", None),  # 3x3 conv with bias
        ("decoder.head.1.", "head.conv1.1.", None),  # BN (ReLU at .2)
        ("decoder.head.3.", "head.conv2.", None),  # 1x1 conv R -> K with bias
    ]
    return table


def ours_from_reference(ref_state: dict[str, Tensor], our_keys) -> dict[str, Tensor]:
    """The reference's state_dict under banet_lite's key names; fails unless the conversion is one to one."""
    table = module_table()
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    problems = []
    for ref_key, value in ref_state.items():
        if any(ref_key.startswith(p) for p in UNUSED_REFERENCE):
            continue
        matches = [(ours, ref, conv) for ours, ref, conv in table if ref_key.startswith(ref)]
        if len(matches) != 1:
            problems.append(f"{ref_key}: {'no' if not matches else len(matches)} table entries")
            continue
        ours, ref, conv = matches[0]
        our_key = ours + ref_key[len(ref):]
        if our_key in out:
            problems.append(f"{our_key}: filled twice, from {source[our_key]} and {ref_key}")
            continue
        is_weight = conv is not None and ref_key.endswith("weight")
        out[our_key], source[our_key] = (conv(value) if is_weight else value.clone()), ref_key
    for prefix in UNUSED_REFERENCE:
        if not any(k.startswith(prefix) for k in ref_state):
            problems.append(f"{prefix}*: listed as unused but not in the reference")
    our_keys = set(our_keys)
    problems += [f"{k}: not filled" for k in sorted(our_keys - set(out))]
    problems += [f"{k}: no such banet_lite key (from {source[k]})" for k in sorted(set(out) - our_keys)]
    if problems:
        raise RuntimeError(f"state_dict conversion is not one to one ({len(problems)} problems):\n  "
                           + "\n  ".join(problems))
    return out


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
    return ["logits"] + [f"side {kind} {i}" for i in range(1, 5) for kind in ("mask", "edge")]


def ours_as_reference(out) -> list[Tensor]:
    """banet_lite's SegmentationOutput in the reference's order."""
    return [out.logits] + [t for pair in zip(out.side_masks, out.side_edges) for t in pair]


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
