"""The dynamics section of the report, its figures and the fixed-points command."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnschur as rs
from rnnschur.cli import main
from rnnschur.paper.dynamics import Float64Net
from rnnschur.paper.dynamics_claims import ACCOUNTS, PREDICTOR_RULE, predictor_results
from rnnschur.paper.dynamics_figures import predictor_figure, trajectory_figure
from rnnschur.paper.report import write_report

FAST = ["--epochs", "2", "--batches", "3", "--batch-size", "8", "--threads", "1"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def flipflop_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("fp") / "ff.npz"
    args = ["train", "--task", "flipflop", "--construction", "dense_orthogonal",
            "--hidden", "10", "--seed", "1", "--out", str(path), "--quiet", *FAST]  # fmt: skip
    assert main(args) == 0
    return path


def test_fixed_points_command_matches_the_library(flipflop_ckpt, capsys):
    assert main(["fixed-points", str(flipflop_ckpt), "--n-starts", "40", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    model = rs.load(flipflop_ckpt)
    fp = rs.fixed_points(Float64Net(model), n_starts=40, rng=0)
    assert rep["summary"] == fp.summary()
    assert len(rep["points"]) == fp.h.shape[0]
    W_hy = np.asarray(model.W_hy, np.float64)
    for p, row in enumerate(rep["points"]):
        assert row["stable"] == bool(fp.stable[p])
        assert row["n_unstable"] == int(fp.n_unstable[p])
        np.testing.assert_allclose(row["readout"], W_hy @ fp.h[p], rtol=1e-12)
        assert row["q"] < 1e-20 or row["status"] == "slow"


def test_fixed_points_command_text_and_ablation(flipflop_ckpt, capsys):
    code = main(["fixed-points", str(flipflop_ckpt), "--n-starts", "24", "--ablate",
                 "--input", "1,0,0"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "x* = (1, 0, 0)" in text
    assert "continuation under ablation" in text
    tail = text.split("continuation under ablation")[1].splitlines()
    assert len(tail) == 2 + 8  # caption, header, one row per subset
    assert tail[2].startswith("full")


def test_fixed_points_command_rejects_bad_input(flipflop_ckpt, capsys):
    assert main(["fixed-points", str(flipflop_ckpt), "--input", "1,0"]) == 1
    assert "x_star must have shape (3,)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fixed-points", str(flipflop_ckpt), "--input", "a,b,c"])
    with pytest.raises(SystemExit):
        main(["fixed-points", str(flipflop_ckpt), "--n-starts", "0"])
    assert main(["fixed-points", str(flipflop_ckpt.parent / "missing.npz")]) == 1


def test_ablate_subspaces_flag(flipflop_ckpt, capsys):
    args = ["ablate", str(flipflop_ckpt), "--eval-size", "8"]
    assert main(args) == 0
    plain = capsys.readouterr().out
    assert "alignment" not in plain
    assert main([*args, "--subspaces"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(plain.rstrip("\n"))
    assert "| block | shape | rank | removed Schur mass" in text
    assert "participation ratio" in text


def _synthetic(n_models, rng, effect_of=None, tiny_mass_block=None):
    """Subspace rows and task rows of ``n_models`` flip-flop models."""
    subspaces, per_seed = [], []
    for m in range(n_models):
        for b in ("RR", "CR", "CC"):
            row = {"key": f"m{m}", "task": "flipflop", "construction": "x",
                   "hidden": 8, "seed": m, "block": b,
                   "removed_mass": float(rng.uniform(0.01, 1.0))}  # fmt: skip
            for p in ACCOUNTS["subspace"]:
                row[p] = float(rng.uniform(0.01, 1.0))
                row[p + "_null_mean"] = 0.5
            if b == tiny_mass_block:
                row["removed_mass"] = 1e-9
            subspaces.append(row)
            eff = effect_of(row) if effect_of else float(rng.normal())
            per_seed.append({"task": "flipflop", "seed": m, "block": b,
                             "delta_fvu": eff})  # fmt: skip
    return subspaces, per_seed


def test_verdict_names_the_account_that_drives_the_effect(rng):
    subs, per_seed = _synthetic(12, rng, lambda r: 3.0 * r["removed_mass"] ** 2)
    res = predictor_results(subs, [], per_seed)["tasks"]
    assert res["verdict"] == "better"
    assert res["verdict_text"].startswith("Schur predicts ΔFVU better than subspace")
    rho = {c["predictor"]: c["spearman_rho"] for c in res["correlations"]}
    assert rho["removed_mass"] == pytest.approx(1.0)
    subs, per_seed = _synthetic(
        12, rng, lambda r: r["readout_weighted_size"] + 0.01 * r["removed_mass"]
    )
    res = predictor_results(subs, [], per_seed)["tasks"]
    assert res["verdict"] == "better"
    assert res["verdict_text"].startswith("subspace predicts")


def test_verdict_excludes_rounding_level_blocks_and_can_be_inconclusive(rng):
    subs, per_seed = _synthetic(8, rng, tiny_mass_block="CC")
    res = predictor_results(subs, [], per_seed)["tasks"]
    assert res["n_excluded"] == 8
    assert res["n_obs"] == 16
    assert all(
        (o["excluded"] is not None) == (o["removed_mass"] <= 1e-6)
        for o in res["observations"]
    )
    assert PREDICTOR_RULE["min_removed_mass"] == 1e-6
    assert res["verdict"] in ("no_association", "undecided")
    assert res["verdict_text"].startswith("Inconclusive")
    subs, per_seed = _synthetic(3, rng)
    res = predictor_results(subs, [], per_seed)["tasks"]
    assert res["verdict"] == "too_few_models"


def test_constant_predictor_is_left_out_with_a_note(rng):
    subs, per_seed = _synthetic(10, rng, lambda r: r["activity_weighted_size"])
    for r in subs:
        r["align_col"] = 0.5
    res = predictor_results(subs, [], per_seed)["tasks"]
    assert [c["predictor"] for c in res["correlations"]] == [
        p for p in (*ACCOUNTS["Schur"], *ACCOUNTS["subspace"]) if p != "align_col"
    ]
    assert res["notes"] == [
        (
            "`align_col` (subspace account) is 0.5 for every observation and is "
            "left out: a constant has no rank correlation."
        )
    ]
    assert res["verdict"] == "better"
    assert res["verdict_text"].startswith("subspace predicts")
    # the Schur account's only predictor constant: no comparison, no crash
    for r in subs:
        r["removed_mass"] = 0.125
    res = predictor_results(subs, [], per_seed)["tasks"]
    assert res["verdict"] == "no_predictor"
    assert "Schur account has no non-constant predictor" in res["verdict_text"]
    assert len(res["notes"]) == 2 and len(res["correlations"]) == 5
    # a constant effect
    for r in per_seed:
        r["delta_fvu"] = 0.0
    res = predictor_results(subs, [], per_seed)["tasks"]
    assert res["verdict"] == "constant_effect" and res["correlations"] == []
    assert "ΔFVU is 0 for all 30 observations" in res["verdict_text"]


def test_report_states_left_out_predictors(tmp_path, rng):
    subs, per_seed = _synthetic(6, rng, lambda r: r["removed_mass"])
    for r in subs:
        r["overlap_row_pc90"] = 1.0
    results = {"settings": {"mode": "test"}, "subspaces": subs,
               "predictors": predictor_results(subs, [], per_seed)}  # fmt: skip
    text = write_report(results, tmp_path).read_text()
    assert "- `overlap_row_pc90` (subspace account) is 1 for every observation" in text


def _panel(rng, title, n_saddles):
    return {
        "title": title,
        "traj": rng.normal(size=(20, 3, 2)).cumsum(axis=0),
        "stable": rng.normal(size=(4, 2)),
        "saddle": rng.normal(size=(n_saddles, 2)),
        "modes": [rng.normal(size=(2, 2)) for _ in range(n_saddles)],
        "intact_stable": rng.normal(size=(4, 2)),
        "var": np.array([0.5, 0.3]),
    }


def test_figures_write_pngs(tmp_path, rng):
    pytest.importorskip("matplotlib")
    rows = [("a", [_panel(rng, "intact", 2), _panel(rng, "−T_CC", 0)])]
    path = trajectory_figure(rows, tmp_path / "t.png")
    assert path is not None
    assert path.read_bytes()[:8] == PNG
    subs, per_seed = _synthetic(6, rng, lambda r: r["removed_mass"])
    preds = predictor_results(subs, [], per_seed)
    path = predictor_figure(preds, tmp_path / "p.png")
    assert path is not None
    assert path.stat().st_size > 10_000
    assert trajectory_figure([], tmp_path / "none.png") is None


def test_report_section_from_synthetic_results(tmp_path, rng):
    pytest.importorskip("matplotlib")
    subs, per_seed = _synthetic(6, rng, lambda r: r["removed_mass"])
    results = {
        "settings": {"mode": "test"},
        "subspaces": subs,
        "predictors": predictor_results(subs, [], per_seed),
        "_trajectory_rows": [("ff", [_panel(rng, "intact", 1)])],
    }
    text = write_report(results, tmp_path).read_text()
    assert "## Why can a coupling be removed?" in text
    assert "**Across tasks (ΔFVU):** Schur predicts" in text
    for name in ("figure_predictors.png", "figure_dynamics.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    saved = json.loads((tmp_path / "results.json").read_text())
    assert "_trajectory_rows" not in saved
    assert (tmp_path / "predictors.csv").exists()
    # a later run without the section removes its files
    write_report({"settings": {"mode": "test"}}, tmp_path)
    assert not (tmp_path / "figure_predictors.png").exists()
    assert not (tmp_path / "subspaces.csv").exists()
