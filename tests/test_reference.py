"""model/reference.py: the authors' state_dict under banet-lite's names, one to one (the parity benchmark checks
the function against their network; here the bookkeeping)."""

from __future__ import annotations

import pytest
import torch

import banet_lite as bl
from banet_lite.model import reference


def as_reference(state: dict) -> dict:
    """banet-lite's state_dict under the reference's names: module_table read backwards."""
    out = {}
    for key, value in state.items():
        (ours, ref, conv), = [row for row in reference.module_table() if key.startswith(row[0])]
        if conv is not None and key.endswith("weight"):  # V = [W_F + W_a + W_b, -W_a, -W_b] -> W
            v_f, v_a, v_b = value.chunk(3, dim=1)
            value = torch.cat([v_f + v_a + v_b, -v_a, -v_b], dim=1)
        out[ref + key[len(ours):]] = value
    out["pretrain_model.fc.weight"] = torch.zeros(10, 4)  # built by the reference, never called
    out["head.up_conv4.weight"] = torch.zeros(3, 3)
    return out


def test_the_reference_names_map_one_to_one_and_pee_weights_are_translated():
    model = bl.build_model("tiny")  # the same module names as `paper`, smaller
    state = model.state_dict()
    converted = reference.ours_from_reference(as_reference(state), state.keys())
    assert converted.keys() == state.keys()
    for key, value in state.items():
        torch.testing.assert_close(converted[key], value)


def test_a_conversion_that_is_not_one_to_one_is_refused_with_every_problem():
    state = bl.build_model("tiny").state_dict()
    theirs = as_reference(state)
    del theirs["head.mtl1.reduce_conv.weight"]
    theirs["head.mystery.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="2 problems") as error:
        reference.ours_from_reference(theirs, state.keys())
    assert "head.mystery.weight: no table entries" in str(error.value)
    assert "reduce.0.weight: not filled" in str(error.value)
