"""The claims table (teaching/claims.py): each claim's paired test per dataset and its verdict in words."""

from __future__ import annotations

import numpy as np
import pytest

from banet_lite.teaching import claims, results


def _runs(dataset: str, shifts: dict[str, float], sweep: str = "payoff", seeds=(0, 1, 2), n=60) -> list[dict]:
    """Records of a sweep whose variants differ from a shared per-image difficulty by `shifts`."""
    base = np.linspace(0.5, 0.95, n)
    out = []
    for variant, shift in shifts.items():
        for seed in seeds:
            noise = np.random.default_rng([seed, len(variant)]).normal(0, 0.01, n)
            scores = (base + shift + noise).tolist()
            out.append({"sweep": sweep, "dataset": dataset, "variant": variant, "seed": seed,
                        "recipe": {"epochs": 5}, "per_image": {"stem": [f"i{k}" for k in range(n)],
                                                              "dice": scores, "boundary_f": scores}})
    return out


PAYOFF = {"BA-Net": 0.03, "BA-Net, unweighted boundary": 0.0, "BA-Net, no boundary loss": 0.0, "U-Net": -0.02}


def test_each_claim_is_a_paired_test_per_dataset_and_a_verdict_in_words():
    everything = _runs("a", PAYOFF) + _runs("b", {**PAYOFF, "BA-Net": 0.0})
    budgets = {"payoff": {"a": 5, "b": 5}}
    weighted = claims.Claim("weighted", "payoff", "BA-Net", "BA-Net, no boundary loss")
    found = claims.check_claim(weighted, budgets, everything)
    assert set(found) == {"a", "b"} and found["a"].decided and not found["b"].decided
    assert claims.verdict(found) == "holds on a only"
    unweighted = claims.CLAIMS[0]
    assert claims.verdict(claims.check_claim(unweighted, budgets, everything)) == "not at this scale"
    unet = claims.CLAIMS[3]
    assert claims.verdict(claims.check_claim(unet, budgets, everything)) == "holds here"
    reverse = claims.Claim("U-Net better", "payoff", "U-Net", "BA-Net, no boundary loss")
    assert claims.verdict(claims.check_claim(reverse, budgets, everything)) == "the opposite here"
    assert claims.verdict({}) == "not tested"


def test_the_table_has_a_row_per_claim_with_its_figures():
    everything = _runs("a", PAYOFF) + _runs("a", {"BA-Net (full)": 0.0, "no IA": -0.05}, sweep="ablation")
    rows = claims.claims_table({"payoff": {"a": 5}, "ablation": {"a": 5}}, everything)
    assert [r["claim"] for r in rows] == [c.text for c in claims.CLAIMS]
    ia = next(r for r in rows if r["claim"] == "IA helps")
    assert ia["verdict"] == "holds here" and ia["measured"].startswith("a: +0.05") and "p < 0.001" in ia["measured"]
    assert next(r for r in rows if r["claim"] == "CFF helps")["verdict"] == "not tested"


def test_runs_without_per_image_scores_cannot_be_compared():
    old = [{**r, "per_image": None} for r in _runs("a", PAYOFF)]
    for r in old:
        del r["per_image"]
    with pytest.raises(FileNotFoundError, match="no payoff runs on a with per-image scores"):
        results.runs("payoff", "a", 5, old)
