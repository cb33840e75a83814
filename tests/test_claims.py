"""The verdict rules of rnnschur.paper.claims, each exercised both ways."""

from __future__ import annotations

import math

import pytest

from rnnschur.ablation import DEFAULT_SUBSETS as SUBSETS
from rnnschur.paper import values as pv
from rnnschur.paper.claims import CRITERIA, beats, check_claims, fvu_ratio_check
from rnnschur.paper.report import write_report
from test_report import copy_rows, summary_rows

NAN = math.nan


def _verdicts(results):
    return {c["id"]: c for c in check_claims(results)}


# --- the one margin rule -------------------------------------------------------------


def test_beats_relative_margin_per_model():
    rel = CRITERIA["margin_rel"]
    # Without SEMs only the relative margin counts: gap just above / below rel × winner.
    assert beats([(1.0, NAN)], [(1.0 - rel * 1.01, NAN)])[0]
    assert not beats([(1.0, NAN)], [(1.0 - rel * 0.99, NAN)])[0]
    # The weakest winner against the strongest other.
    assert not beats([(1.0, NAN), (0.5, NAN)], [(0.49, NAN), (0.0, NAN)])[0]
    assert beats([(1.0, NAN), (0.5, NAN)], [(0.4, NAN)])[0]


def test_beats_combined_sem_when_larger():
    # Gap 0.3 beats 0.1 × 1 but not √(0.2² + 0.25²) ≈ 0.32; with SEMs 0.1 it does.
    assert not beats([(1.0, 0.2)], [(0.7, 0.25)])[0]
    assert beats([(1.0, 0.1)], [(0.7, 0.1)])[0]
    _, gap, margin = beats([(1.0, 0.2)], [(0.7, 0.25)])
    assert gap == pytest.approx(0.3)
    assert margin == pytest.approx(math.hypot(0.2, 0.25))


def test_largest_and_dominates_use_the_same_rule():
    """Flip-flop "largest" and CDI "dominated by": a 5 % lead fails both, 50 % passes."""
    close = {"RR": 0.01, "CR": 1.0, "CC": 0.95}
    clear = {"RR": 0.01, "CR": 1.0, "CC": 0.5}
    for dfvu, want in ((close, "not supported"), (clear, "supported")):
        cdi = {"RR": dfvu["RR"], "CR": dfvu["CC"], "CC": dfvu["CR"]}
        v = _verdicts(
            {"tasks_summary": summary_rows("flipflop", dfvu) + summary_rows("cdi", cdi)}
        )
        assert v["flipflop_cr_largest"]["verdict"] == want
        assert v["cdi_cc_dominates"]["verdict"] == want
        assert "margin" in v["flipflop_cr_largest"]["evidence"]


def test_sine_complement_blocks_both_beat_rr_and_sdt_needs_the_margin():
    dfvu = {"RR": 0.01, "CR": 1.73, "CC": 2.08}
    ok = _verdicts(
        {"tasks_summary": summary_rows("sine", dfvu, {"RR": 1, "CR": 21, "CC": 12})}
    )
    assert ok["sine_complement"]["verdict"] == "supported"
    # S_ΔT of T_C→R ahead by 2 %: inside the margin.
    close = summary_rows("sine", dfvu, {"RR": 1, "CR": 12.2, "CC": 12.0})
    assert _verdicts({"tasks_summary": close})["sine_complement"]["verdict"] == (
        "not supported"
    )


# --- the full-model FVU claim: means, both directions ---------------------------------


def _per_seed(task, values):
    return [{"task": task, "seed": s, "fvu_full": v} for s, v in enumerate(values)]


@pytest.mark.parametrize(
    ("factor", "verdict", "words"),
    [
        (1.0, "supported", ""),
        (1.9, "supported", ""),
        (1 / 16, "not supported", "better than the paper's"),
        (16.0, "not supported", "worse than the paper's"),
    ],
)
def test_full_fvu_compares_the_mean_both_ways(factor, verdict, words):
    p = pv.FULL_FVU["flipflop"]
    c = _verdicts({"tasks_per_seed": _per_seed("flipflop", [p * factor] * 3)})
    assert c["full_fvu_small"]["verdict"] == verdict
    assert words in c["full_fvu_small"]["evidence"]


def test_full_fvu_uses_the_mean_not_each_seed():
    p = pv.FULL_FVU["sine"]
    # One seed 2.6× the paper's, the mean 1.4×: the mean decides.
    c = _verdicts({"tasks_per_seed": _per_seed("sine", [0.8 * p, 0.8 * p, 2.6 * p])})
    assert c["full_fvu_small"]["verdict"] == "supported"
    ok, text = fvu_ratio_check("cdi", NAN)
    assert not ok and "no finite FVU" in text


# --- chance, tolerance, by construction ------------------------------------------------


def test_ablated_accuracy_below_chance_is_flagged():
    accs = dict(pv.COPY_DENSE_ORTHOGONAL_72)
    accs[("CR",)] = 0.31
    c = _verdicts({"copy": copy_rows("dense_orthogonal", accs)})["copy_orth_cr_not"]
    assert c["verdict"] == "supported"
    assert "below chance 0.5: −T_C→R 0.310" in c["evidence"]
    c = _verdicts({"copy": copy_rows("dense_orthogonal", pv.COPY_DENSE_ORTHOGONAL_72)})
    assert "below chance" not in c["copy_orth_cr_not"]["evidence"]


def _alpha_rows(cr_by_alpha, construction="dense_orthogonal"):
    return [
        {
            "alpha": a,
            "construction": construction,
            "hidden": 72,
            "seed": 0,
            "n_R": 64,
            "full": 1.0,
            "-CC": 1.0,
            "-CR": cr,
        }
        for a, cr in cr_by_alpha.items()
    ]


def test_alpha_profile_equal_within_the_accuracy_tolerance():
    # The paper's own 0.639 / 0.634 for one number: the same within 0.01.
    same = _alpha_rows({0.85: 0.639, 0.9: 0.634, 0.95: 0.636})
    assert _verdicts({"alpha": same})["alpha_insensitive"]["verdict"] == "supported"
    differ = _alpha_rows({0.85: 0.639, 0.9: 0.62, 0.95: 0.634})
    assert _verdicts({"alpha": differ})["alpha_insensitive"]["verdict"] == (
        "not supported"
    )


def test_cayley_rows_hold_by_construction_and_are_not_counted(tmp_path):
    cay = _alpha_rows({0.85: 1.0, 0.9: 1.0}, construction="cayley")
    c = _verdicts({"alpha": cay})["alpha_insensitive"]
    assert c["verdict"] == "holds by construction"
    # With dense orthogonal rows the verdict is theirs; the Cayley rows are named only.
    mixed = _alpha_rows({0.85: 0.639, 0.9: 0.5}) + cay
    c = _verdicts({"alpha": mixed})["alpha_insensitive"]
    assert c["verdict"] == "not supported"
    assert "Cayley left out" in c["evidence"]
    copy = copy_rows("cayley", dict.fromkeys(SUBSETS, 1.0), masses={("CR", "CC"): 0.0})
    c = _verdicts({"copy": copy})["copy_cayley_negligible"]
    assert c["verdict"] == "holds by construction"
    assert "not counted as support" in c["evidence"]
    text = write_report(
        {"settings": {"mode": "quick"}, "copy": copy}, tmp_path
    ).read_text()
    assert "this run supports 0," in text
    assert "finds 1 holding by construction (not counted as support)" in text


def test_free_cayley_is_judged_and_can_fail():
    accs = dict.fromkeys(SUBSETS, 1.0)
    big = copy_rows("cayley_free", accs, masses={("CR", "CC"): 0.3})
    c = _verdicts({"copy": big})["copy_cayley_negligible"]
    assert c["verdict"] == "not supported"
    unsolved = copy_rows("cayley_free", dict.fromkeys(SUBSETS, 0.9))
    assert _verdicts({"copy": unsolved})["copy_cayley_negligible"]["verdict"] == (
        "inconclusive"
    )
