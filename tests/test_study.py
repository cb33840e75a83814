"""The robustness study's report on a synthetic results table with known answers,
and end to end on the smoke sweep."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnschur.paper import values as pv
from rnnschur.paper.study import (
    BOOTSTRAP,
    REPRODUCE_TRAINING,
    bootstrap_interval,
    choose_defaults,
    claim_table,
    fvu_table,
    load_models,
    model_claims,
)
from rnnschur.paper.study_report import (
    paper_comparisons,
    robustness,
    write_study_report,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SUBSETS = ("none", "RR", "CR", "CC", "RR+CR", "RR+CC", "CR+CC", "RR+CR+CC")
P_FF = pv.FULL_FVU["flipflop"]


def _model_rows(key, task, construction, *, fvu, delta=None, acc=None, mass=0.1,
                pulse_prob=None, status="ok", seed=0, train=None,
                hidden=64):  # fmt: skip
    """Rows of one model as a sweep writes them (the columns the report reads)."""
    base = {
        "key": key, "task": task, "construction": construction, "hidden": hidden,
        "seed": seed, "status": status, "eval_seed": 1, "pulse_prob": pulse_prob,
        "task_params": json.dumps({"symbols": 8} if task == "copy" else {}),
        "train_config": json.dumps(train or REPRODUCE_TRAINING, sort_keys=True),
    }  # fmt: skip
    if status != "ok":
        return [{**base, "subset": None, **dict.fromkeys(_METRICS)}]
    rows = []
    for s in SUBSETS:
        blocks = [] if s == "none" else s.split("+")
        d = sum((delta or {}).get(b, 0.0) for b in blocks)
        m = 0.0 if s == "none" else mass * len(blocks)
        a = None if acc is None else acc.get(s, acc["none"])
        rows.append(
            {
                **base,
                "subset": s,
                "metric": a if task == "copy" else fvu + d,
                "delta": d if task != "copy" else a - acc["none"],
                "delta_per_mass": (d / m) if m else None,
                "removed_mass": m,
                "fvu": fvu + d,
                "accuracy": a,
            }
        )
    return rows


_METRICS = ("metric", "delta", "delta_per_mass", "removed_mass", "fvu", "accuracy")
CR_WINS = {"RR": 0.001, "CR": 0.1, "CC": 0.05}
CC_WINS = {"RR": 0.001, "CR": 0.05, "CC": 0.1}


def _write(tmp_path, rows):
    schema = pa.schema(
        [("key", pa.string()), ("task", pa.string()), ("construction", pa.string()),
         ("hidden", pa.int64()), ("seed", pa.int64()), ("subset", pa.string()),
         ("status", pa.string()), *[(m, pa.float64()) for m in _METRICS],
         ("eval_seed", pa.int64()), ("pulse_prob", pa.float64()),
         ("task_params", pa.string()), ("train_config", pa.string())]
    )  # fmt: skip
    pq.write_table(
        pa.Table.from_pylist(rows, schema=schema), tmp_path / "results.parquet"
    )
    return tmp_path


@pytest.fixture
def sweep(tmp_path):
    """Flip-flop at pulse 0.2: 7 models where T_C→R wins, 3 where T_CC wins, 2 that
    did not learn, 1 diverged; pulse 0.5: 5 models, all T_C→R; copy: 4 solved dense
    orthogonal models (one collapsing below chance under −T_C→R), 1 unsolved, and 3
    Cayley models."""
    rows = []
    for i in range(13):
        kind = "cr" if i < 7 else "cc" if i < 10 else "bad" if i < 12 else "div"
        rows += _model_rows(
            f"ff-a-{i:02d}", "flipflop", "dense_orthogonal", seed=i, pulse_prob=0.2,
            fvu=0.5 if kind == "bad" else P_FF * 1.5,
            delta=CC_WINS if kind == "cc" else CR_WINS,
            status="diverged" if kind == "div" else "ok",
        )  # fmt: skip
    for i in range(5):
        rows += _model_rows(f"ff-b-{i}", "flipflop", "dense_orthogonal", seed=i,
                            pulse_prob=0.5, fvu=P_FF / 16, delta=CR_WINS)  # fmt: skip
    good = {"none": 1.0, "CR": 0.64, "RR+CR": 0.62, "CR+CC": 0.64, "RR+CR+CC": 0.62}
    for i in range(5):
        acc = dict(good)
        if i == 0:
            acc.update({"CR": 0.31, "CR+CC": 0.31})
        if i == 4:
            acc = {"none": 0.9}
        rows += _model_rows(f"cp-o-{i}", "copy", "dense_orthogonal", fvu=0.1,
                            acc=acc, seed=i)  # fmt: skip
    for i in range(3):
        rows += _model_rows(f"cp-c-{i}", "copy", "cayley", fvu=0.1, acc={"none": 1.0},
                            mass=0.0, seed=i)  # fmt: skip
    return _write(tmp_path, rows)


def _row(table, condition_part, claim):
    (r,) = [
        r for r in table if condition_part in r["condition"] and r["claim"] == claim
    ]
    return r


def test_fractions_exclusions_and_intervals(sweep):
    models, varying = load_models(sweep)
    assert varying == {"flipflop": ["pulse_prob"], "copy": []}
    table = claim_table(models)
    a = _row(table, "pulse_prob=0.2", "flipflop_cr_largest")
    assert (a["models"], a["judged"], a["holds"]) == (13, 10, 7)
    assert (a["excluded"], a["not_trained"]) == (2, 1)
    assert a["fraction"] == pytest.approx(0.7)
    # A bootstrap of 10 Booleans draws Binomial(10, 0.7) counts: its 2.5 % / 97.5 %
    # quantiles are the reference (one count of slack for the finite resampling).
    binom = pytest.importorskip("scipy.stats").binom
    assert abs(a["ci_low"] - binom.ppf(0.025, 10, 0.7) / 10) <= 0.1
    assert abs(a["ci_high"] - binom.ppf(0.975, 10, 0.7) / 10) <= 0.1
    assert a["ci_low"] < 0.7 < a["ci_high"]
    b = _row(table, "pulse_prob=0.5", "flipflop_cr_largest")
    assert (b["judged"], b["fraction"], b["ci_low"], b["ci_high"]) == (5, 1.0, 1.0, 1.0)
    # The FVU claim has no exclusion: 2 unlearned models fail it, 10 hold.
    f = _row(table, "pulse_prob=0.2", "full_fvu_small")
    assert (f["judged"], f["holds"], f["excluded"]) == (12, 10, 0)
    assert _row(table, "pulse_prob=0.5", "full_fvu_small")["holds"] == 0  # 16× better


def test_copy_claims_chance_and_by_construction(sweep):
    models, _ = load_models(sweep)
    table = claim_table(models)
    cr = _row(table, "copy · dense_orthogonal", "copy_orth_cr_not")
    assert (cr["judged"], cr["holds"], cr["excluded"], cr["below_chance"]) == (
        4,
        4,
        1,
        1,
    )
    cc = _row(table, "copy · dense_orthogonal", "copy_orth_cc_preserving")
    assert cc["holds"] == 4
    for cid in (
        "copy_orth_cr_not",
        "copy_orth_cc_preserving",
        "copy_cayley_negligible",
    ):
        c = _row(table, "copy · cayley", cid)
        assert c["label"] == "decided by construction"
        assert (c["judged"], c["by_construction"]) == (0, 3)
        assert math.isnan(c["fraction"])


def test_bootstrap_interval_is_seeded_and_matches_the_binomial():
    holds = [True] * 13 + [False] * 7
    assert bootstrap_interval(holds) == bootstrap_interval(holds)
    rng = np.random.default_rng(BOOTSTRAP["seed"])
    idx = rng.integers(0, 20, size=(BOOTSTRAP["resamples"], 20))
    ref = np.quantile(np.asarray(holds, float)[idx].mean(axis=1), [0.025, 0.975])
    assert bootstrap_interval(holds) == pytest.approx(tuple(ref))
    assert all(math.isnan(v) for v in bootstrap_interval([]))
    assert bootstrap_interval([False] * 4) == (0.0, 0.0)


def test_default_rule_uses_intact_fvu_only(tmp_path):
    """Variant A has the paper's FVU within 1.5× but its ablations contradict the
    claim; variant B's ablations agree but its FVU is 16× better: A is chosen."""
    rows = []
    for i in range(3):
        rows += _model_rows(f"a{i}", "flipflop", "dense_orthogonal", pulse_prob=0.2,
                            fvu=P_FF * 1.5, delta=CC_WINS, seed=i)  # fmt: skip
        rows += _model_rows(f"b{i}", "flipflop", "dense_orthogonal", pulse_prob=0.5,
                            fvu=P_FF / 16, delta=CR_WINS, seed=i)  # fmt: skip
        # Another construction closer still: outside the paper's setting, not a candidate.
        rows += _model_rows(f"c{i}", "flipflop", "dense_normal", pulse_prob=0.5,
                            fvu=P_FF, delta=CR_WINS, seed=i)  # fmt: skip
    models, _ = load_models(_write(tmp_path, rows))
    fvus = fvu_table(models)
    chosen = choose_defaults(fvus)["flipflop"]
    assert (chosen["construction"], chosen["pulse_prob"]) == ("dense_orthogonal", 0.2)
    assert chosen["ratio"] == pytest.approx(1.5)
    assert all(r["reproduce_training"] for r in fvus)
    # Log-ratio symmetry: 2.5× worse is closer than 3× better.
    r = [dict(fvus[0], task="sine", construction="x", hidden=1, abs_log_ratio=abs(math.log(v)))
         for v in (1 / 3, 2.5)]  # fmt: skip
    assert choose_defaults(r)["sine"]["abs_log_ratio"] == pytest.approx(math.log(2.5))


def test_default_rule_ignores_other_training_schedules(tmp_path):
    """A cosine-trained condition with exactly the paper's FVU is not a candidate:
    the rule chooses a task detail, not a training schedule."""
    cosine = {**REPRODUCE_TRAINING, "lr_schedule": "cosine", "lr_final": 0.1}
    rows = []
    for i in range(3):
        rows += _model_rows(f"a{i}", "flipflop", "dense_orthogonal", pulse_prob=0.2,
                            fvu=P_FF * 3, delta=CR_WINS, seed=i)  # fmt: skip
        rows += _model_rows(f"b{i}", "flipflop", "dense_orthogonal", pulse_prob=0.5,
                            fvu=P_FF, delta=CR_WINS, seed=i, train=cosine)  # fmt: skip
        rows += _model_rows(f"s{i}", "sine", "dense_orthogonal", fvu=0.01, seed=i,
                            delta=CR_WINS, train=cosine)  # fmt: skip
    models, _ = load_models(_write(tmp_path, rows))
    fvus = fvu_table(models)
    assert [r["reproduce_training"] for r in fvus if r["task"] == "flipflop"] == [
        True,
        False,
    ]
    chosen = choose_defaults(fvus)
    assert chosen["flipflop"]["pulse_prob"] == 0.2
    assert chosen["flipflop"]["ratio"] == pytest.approx(3.0)
    assert "sine" not in chosen  # no condition trained as the reproduction trains


def test_reproduce_training_is_the_reproductions_task_config():
    from rnnschur.paper.settings import RunSettings

    cfg = RunSettings.full().task_config
    assert cfg.lr_schedule == "constant"
    assert REPRODUCE_TRAINING["lr_schedule"] == "constant"
    assert REPRODUCE_TRAINING["lr"] == cfg.lr and "n_threads" not in REPRODUCE_TRAINING


def test_missing_numbers_are_not_compared_and_quantities_are_named(tmp_path):
    """Pulse 0.5: no model learned, so its ΔFVU / S_ΔT means are missing: not
    compared, and not counted as disagreements."""
    rows = []
    for i in range(3):
        rows += _model_rows(f"a{i}", "flipflop", "dense_orthogonal", pulse_prob=0.2,
                            fvu=P_FF, delta=CR_WINS, seed=i)  # fmt: skip
        rows += _model_rows(f"b{i}", "flipflop", "dense_orthogonal", pulse_prob=0.5,
                            fvu=0.5, delta=CR_WINS, seed=i)  # fmt: skip
    sweep_dir = _write(tmp_path, rows)
    cmp = paper_comparisons(load_models(sweep_dir)[0])
    quantities = {c["quantity"] for c in cmp}
    assert quantities == {"intact FVU", "ΔFVU(T_C→R)", "ΔFVU(T_CC)"}
    assert not any("delta_fvu" in q or "s_delta_t" in q for q in quantities)
    bad = [c for c in cmp if "pulse_prob=0.5" in c["condition"]]
    assert [c["agrees"] for c in bad if c["quantity"] == "intact FVU"] == [False]
    missing = [c for c in bad if c["quantity"] != "intact FVU"]
    assert missing and all(c["agrees"] is None for c in missing)
    text = write_study_report(sweep_dir, tmp_path / "r").read_text()
    (line,) = [
        ln for ln in text.splitlines() if ln.startswith("- flipflop") and "0.5" in ln
    ]
    assert "differs on 1 of 1 numbers (intact FVU" in line
    assert "not compared (no value of ours): ΔFVU(T_C→R), ΔFVU(T_CC)." in line


def test_orth_copy_claims_generalise_and_cayley_free_is_judged(tmp_path):
    good = {"none": 1.0, "CR": 0.6, "RR+CR": 0.6, "CR+CC": 0.6, "RR+CR+CC": 0.6}
    rows = []
    for i in range(5):
        rows += _model_rows(f"o{i}", "copy", "dense_orthogonal", fvu=0.1, acc=good,
                            seed=i, hidden=72)  # fmt: skip
        rows += _model_rows(f"n{i}", "copy", "dense_normal", fvu=0.1, acc=good,
                            seed=i, hidden=72)  # fmt: skip
        rows += _model_rows(f"f{i}", "copy", "cayley_free", fvu=0.1, hidden=72,
                            acc={"none": 1.0}, mass=0.001, seed=i)  # fmt: skip
    models, _ = load_models(_write(tmp_path, rows))
    table = claim_table(models)
    for cid in ("copy_orth_cc_preserving", "copy_orth_cr_not"):
        orth = _row(table, "dense_orthogonal", cid)
        assert orth["label"] == "judged"
        assert robustness(orth) == "holds in most solutions"
        normal = _row(table, "dense_normal", cid)
        assert normal["label"] == "generalisation" and normal["holds"] == 5
        assert robustness(normal) == "generalisation: holds in most solutions"
        assert _row(table, "cayley_free", cid)["label"] == "generalisation"
    free = _row(table, "cayley_free", "copy_cayley_negligible")
    assert (free["label"], free["judged"], free["holds"]) == ("judged", 5, 5)
    # cayley_free has no published numbers: the paper's cayley row is not its own.
    cmp = paper_comparisons(models)
    assert not [c for c in cmp if "cayley_free" in c["condition"]]
    assert any(c["quantity"] == "accuracy −T_C→R" for c in cmp)


def test_model_claims_unknown_task_and_not_trained():
    m = {"task": "copy", "construction": "dense_orthogonal", "status": "diverged",
         "metric": {}}  # fmt: skip
    assert set(model_claims(m).values()) == {"not trained"}
    assert model_claims({**m, "task": "other"}) == {}


def test_write_study_report(sweep, tmp_path):
    out = tmp_path / "report"
    path = write_study_report(sweep, out)
    text = path.read_text()
    assert "decided by construction (not counted)" in text
    assert "`alpha_insensitive`: not judged per model" in text
    assert "Chosen per task" in text and "flipflop · dense_orthogonal" in text
    assert (out / "study_claims.csv").read_text().count("\n") == len(
        claim_table(load_models(sweep)[0])
    ) + 1
    assert (out / "study_flipflop_delta.png").stat().st_size > 5_000
    assert (out / "study_copy_accuracy.png").stat().st_size > 5_000


def test_panel_titles_drop_shared_parts_and_wrap():
    from rnnschur.paper.study_figures import panel_titles

    base = (("task", "flipflop"), ("construction", "dense_orthogonal"), ("hidden", 64))
    conds = [
        (*base, ("pulse_prob", 0.2), ("input_noise", 0.1), ("lr_schedule", "constant")),
        (*base, ("pulse_prob", 0.5), ("input_noise", 0.0), ("lr_schedule", "constant")),
        (*base, ("pulse_prob", None), ("input_noise", None), ("lr_schedule", None)),
    ]
    shared, titles = panel_titles(conds, width=30)
    assert shared == "flipflop · dense_orthogonal · Nh 64"
    assert titles[0] == "pulse_prob=0.2 ·\ninput_noise=0.1 ·\nlr_schedule=constant"
    assert all(len(line) <= 30 for t in titles for line in t.splitlines())
    assert titles[2] == "defaults"
    one_shared, one_titles = panel_titles(conds[:1])
    assert one_titles == [""] and one_shared.endswith("lr_schedule=constant")


def test_figures_leave_the_matplotlib_backend_alone(sweep, tmp_path):
    mpl = pytest.importorskip("matplotlib")
    before = mpl.get_backend()
    mpl.use("pdf")
    try:
        write_study_report(sweep, tmp_path / "r")
        assert mpl.get_backend() == "pdf"
        assert (tmp_path / "r" / "study_flipflop_delta.png").stat().st_size > 5_000
    finally:
        mpl.use(before)


def test_cli_reports_a_missing_table(tmp_path, capsys):
    from rnnschur.cli import main

    assert main(["study-report", str(tmp_path)]) == 2
    assert "no results table" in capsys.readouterr().err


def test_cli_takes_the_results_file_and_reports_next_to_it(sweep, capsys):
    from rnnschur.cli import main

    assert main(["study-report", str(sweep / "results.parquet")]) == 0
    assert (sweep / "report" / "study.md").exists()
    assert capsys.readouterr().out.strip() == str(sweep / "report" / "study.md")


def test_cli_without_pyarrow_names_the_extra(sweep, capsys, monkeypatch):
    from rnnschur.cli import main

    # A None entry makes the import raise ImportError, as an absent package does.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(["study-report", str(sweep)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "rnnschur[sweep]" in err


@pytest.mark.slow
def test_cli_end_to_end_on_the_smoke_sweep(tmp_path):
    """``rnnschur sweep sweeps/smoke.toml`` then ``rnnschur study-report`` (about a
    minute with a cold Numba cache)."""
    spec = Path(__file__).resolve().parents[1] / "sweeps" / "smoke.toml"
    exe = [sys.executable, "-m", "rnnschur.cli"]
    run = tmp_path / "smoke"
    subprocess.run([*exe, "sweep", str(spec), "--out", str(run), "--jobs", "1"],
                   check=True, capture_output=True)  # fmt: skip
    done = subprocess.run([*exe, "study-report", str(run), "--out", str(run / "r")],
                          check=True, capture_output=True, text=True)  # fmt: skip
    assert done.stdout.strip().endswith("study.md")
    text = (run / "r" / "study.md").read_text()
    assert "12 models (12 trained" in text
    assert "flipflop: pulse_prob" in text
    assert (run / "r" / "study_claims.csv").exists()
    shutil.rmtree(run / "checkpoints")
