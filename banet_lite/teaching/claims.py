"""BA-Net's claims, tested one by one on the course's benchmark runs (notebook 06, README,
RESULTS.md).

The paper says its parts help. Each claim here names the two variants that test it, trained alike
and scored on the same test images: the BA-Net part switched on (A) and off (B). `check_claim` runs
the paired test of stats.py on every dataset that has both (seeds averaged per image), and
`verdict` puts the datasets' answers into words:

    holds here            A better on every dataset tested
    holds on X only       A better on some datasets, no difference detected on the others
    not at this scale     no difference detected anywhere (the interval says how large one could
                          hide)
    the opposite here     B better somewhere, A better nowhere
    mixed                 A better on some datasets, B on others

"At this scale": CPU budgets, networks of a few million parameters trained from scratch, one to
three seeds. The paper trains 42.8 M parameters from ImageNet weights for 150 epochs; its own
ablation figures were not available to this project, so nothing here is compared with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..stats import PairedResult, format_p
from .results import compare, runs_by_dataset

# The runs the course compares ({sweep: {dataset: epochs}}): the payoff near the plateau of its
# validation curves (benchmarks/quality.py payoff ...), the module ablation at the budgets of
# benchmarks/RESULTS.md.
COURSE_BUDGETS = {"payoff": {"synthetic": 40, "kvasir-seg": 12, "ph2": 15},
                  "ablation": {"kvasir-seg": 4, "ph2": 15}}


@dataclass(frozen=True)
class Claim:
    """A claim of the paper and the comparison that tests it: variant `a` (with) against `b`
    (without)."""

    text: str
    sweep: str
    a: str
    b: str
    metric: str = "dice"


CLAIMS = (
    Claim("boundary supervision improves the mask (the paper's loss: boundary pixels unweighted)",
          "payoff", "BA-Net, unweighted boundary", "BA-Net, no boundary loss"),
    Claim("boundary supervision improves the mask (the course's loss: boundary pixels weighted "
          "10x)", "payoff", "BA-Net", "BA-Net, no boundary loss"),
    Claim("boundary supervision sharpens the outline (boundary F, the paper's loss)", "payoff",
          "BA-Net, unweighted boundary", "BA-Net, no boundary loss", "boundary_f"),
    Claim("BA-Net beats a U-Net of similar size", "payoff", "BA-Net, unweighted boundary", "U-Net"),
    Claim("PEE helps", "ablation", "BA-Net (full)", "no PEE"),
    Claim("IA helps", "ablation", "BA-Net (full)", "no IA"),
    Claim("CFF helps", "ablation", "BA-Net (full)", "no CFF"),
    Claim("ASPP helps", "ablation", "BA-Net (full)", "no ASPP"),
    Claim("deep supervision helps", "ablation", "BA-Net (full)", "no deep supervision"),
)


def check_claim(claim: Claim, budgets: dict[str, dict[str, int]],
                all_runs: list[dict] | None = None) -> dict[str, PairedResult]:
    """{dataset: the paired test of the claim} for every dataset in `budgets[claim.sweep]`
    ({sweep: {dataset: epochs}}) whose runs hold both variants."""
    out = {}
    for dataset, found in runs_by_dataset(claim.sweep, budgets, all_runs).items():
        if {claim.a, claim.b} <= {r["variant"] for r in found}:
            out[dataset] = compare(found, claim.a, claim.b, claim.metric)
    return out


def verdict(results: dict[str, PairedResult]) -> str:
    """The datasets' answers in words (this module's docstring)."""
    if not results:
        return "not tested"
    better = [d for d, r in results.items() if r.decided and r.difference > 0]
    worse = [d for d, r in results.items() if r.decided and r.difference < 0]
    if better and worse:
        return "mixed"
    if worse:
        return "the opposite here"
    if not better:
        return "not at this scale"
    if len(better) == len(results):
        return "holds here"
    return f"holds on {', '.join(better)} only"


def claims_table(budgets: dict[str, dict[str, int]],
                 all_runs: list[dict] | None = None) -> list[dict]:
    """One row per claim: what was compared, each dataset's difference, interval and p-value, the
    verdict."""
    rows = []
    for claim in CLAIMS:
        results = check_claim(claim, budgets, all_runs)
        measured = "; ".join(f"{d}: {r.difference:+.3f} [{r.low:+.3f}, {r.high:+.3f}], "
                             f"{format_p(r.p_value)}" for d, r in results.items())
        rows.append({"claim": claim.text,
                     "test": f"{claim.a} minus {claim.b}, {claim.metric}, paired over test images",
                     "measured": measured or "no runs with per-image scores",
                     "verdict": verdict(results)})
    return rows
