"""The authors' weights in banet-lite: their BA-Net's state_dict under the `paper` preset's names.

The authors' code (github.com/mathwrx/BA-Net) and the `paper` preset compute the same function with
the same tensors, under other names and, in one place, another parametrisation:

  PEE   the reference fuses [F, AvgPool_a F, AvgPool_b F]; ours fuses [F, E_a, E_b] with
        E_k = F - AvgPool_k F. The first 1x1 conv is linear: with its weight split into
        [W_F, W_a, W_b],
            W_F F + W_a A_a + W_b A_b = (W_F + W_a + W_b) F - W_a (F - A_a) - W_b (F - A_b)
        so ours is V = [W_F + W_a + W_b, -W_a, -W_b] (`pee_squeeze_from_reference`; notebook 07's
        exercise).
  CFF   the reference calls cf{i+1}(S_own, then the other three stages in ascending order) and gates
        its k-th argument with att_conv{k}; ours gates stage j with convs[j].

Two reference modules take no part in its forward and are left out: ResNet's 1000-class classifier
and the head's `up_conv4` (`UNUSED_REFERENCE`).

    model = bl.build_model("paper")
    model.load_state_dict(ours_from_reference(their_state_dict, model.state_dict().keys()))

`benchmarks/reference_parity.py` checks the result against the authors' own network, output by
output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

# Reference parameters that take no part in its forward pass.
UNUSED_REFERENCE = ("pretrain_model.fc.", "head.up_conv4.")


def pee_squeeze_from_reference(w: Tensor) -> Tensor:
    """The reference's PEE squeeze weight on [F, A_a F, A_b F] -> ours on
    [F, F - A_a F, F - A_b F]."""
    w_f, w_a, w_b = w.chunk(3, dim=1)  # each (R, R, 1, 1)
    return torch.cat([w_f + w_a + w_b, -w_a, -w_b], dim=1)


def module_table() -> list[tuple[str, str, Callable[[Tensor], Tensor] | None]]:
    """(banet_lite prefix, reference prefix, conversion of its weight or None): every tensor under
    the reference prefix goes, under the same suffix, to the banet_lite prefix."""
    # torchvision's names on both sides: conv1, layer1.0.bn2, ...
    table = [("backbone.", "pretrain_model.", None)]
    for i in range(4):  # stage i (from 0) is the reference's mtl{i+1} / cf{i+1}
        mtl = f"head.mtl{i + 1}."
        table += [
            (f"reduce.{i}.", mtl + "reduce_conv.", None),
            # reference fuse_conv: Conv1x1 (3R -> R), ReLU, DW3x3, BN, Conv1x1; ours: squeeze, then
            # fuse = ReLU, DW3x3, BN, 1x1
            (f"pee.{i}.squeeze.", mtl + "fuse_conv.0.", pee_squeeze_from_reference),
            (f"pee.{i}.fuse.1.", mtl + "fuse_conv.2.", None),
            (f"pee.{i}.fuse.2.", mtl + "fuse_conv.3.", None),
            (f"pee.{i}.fuse.3.", mtl + "fuse_conv.4.", None),
            (f"mtl.{i}.boundary_branch.", mtl + "edge_conv.", None),
            (f"mtl.{i}.seg_branch.", mtl + "seg_conv.", None),
            (f"mtl.{i}.ia.attend_boundary.", mtl + "att_edge.", None),
            (f"mtl.{i}.ia.attend_seg.", mtl + "att_seg.", None),
            (f"mtl.{i}.boundary_head.", mtl + "edge_supervision.", None),
            (f"mtl.{i}.seg_head.", mtl + "seg_supervision.", None),
        ]
        # the order the reference passes the other stages in
        others = [j for j in range(4) if j != i]
        table.append((f"cff.{i}.convs.{i}.", f"head.cf{i + 1}.att_conv1.", None))
        table += [(f"cff.{i}.convs.{j}.", f"head.cf{i + 1}.att_conv{k + 2}.", None)
                  for k, j in enumerate(others)]
    # conv, BN (ReLU at .2)
    table += [(f"aspp.branches.{k}.", f"aspp.b{k}.block.", None) for k in range(4)]
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


def ours_from_reference(ref_state: dict[str, Tensor], our_keys: Iterable[str]) -> dict[str, Tensor]:
    """The reference's state_dict under banet_lite's names. Fails, listing every problem, unless the
    conversion is one to one: each of `our_keys` filled once, each reference tensor of the forward
    used once."""
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    problems = []
    for ref_key, value in ref_state.items():
        if ref_key.startswith(UNUSED_REFERENCE):
            continue
        matches = [(ours, ref, conv) for ours, ref, conv in module_table()
                   if ref_key.startswith(ref)]
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
    problems += [f"{k}: no such banet_lite key (from {source[k]})"
                 for k in sorted(set(out) - our_keys)]
    if problems:
        raise ValueError("reference.py: the state_dict conversion is not one to one "
                         f"({len(problems)} problems):\n  "
                         + "\n  ".join(problems))
    return out
