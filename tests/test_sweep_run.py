"""Sweep jobs and the results folder: rows, statuses, reruns, lost workers."""

from __future__ import annotations

import concurrent.futures
import copy
import json

import numpy as np
import pytest

from rnnschur import load
from rnnschur.sweep import (
    Executor,
    LocalExecutor,
    ResultStore,
    SpecError,
    backend,
    parse_spec,
    read_results,
    run_cell,
    run_sweep,
    runner,
)
from rnnschur.training import TrainConfig, evaluate, train

pa = pytest.importorskip("pyarrow")

SUBSETS = ["none", "RR", "CR", "CC", "RR+CR", "RR+CC", "CR+CC", "RR+CR+CC"]

TINY = {
    "seeds": 2,
    "train": {"epochs": 1, "batches_per_epoch": 4},
    "diagnose": {"eval_size": 32},
    "grid": [
        {
            "task": "flipflop",
            "construction": ["dense_orthogonal", "dense_default"],
            "hidden": 8,
            "task_params": {"pulse_prob": [0.2, 0.5]},
        }
    ],
}


def tiny(**changes):
    data = copy.deepcopy(TINY)
    data.update(changes)
    return parse_spec(data)


class SerialExecutor(Executor):
    """Runs each job at submit time in this process (monkeypatching reaches it)."""

    description = "serial"

    def __init__(self, lose=()):
        self.lose = dict.fromkeys(lose, 1)
        self.submitted: list[str] = []

    def submit(self, fn, arg, key):
        self.submitted.append(key)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if self.lose.get(arg["key"], 0) > 0:
            self.lose[arg["key"]] -= 1
            fut.set_exception(LostWorker("worker died"))
        else:
            fut.set_result(fn(arg))
        return fut

    def wait_any(self, futures):
        return {next(iter(futures))}

    def is_lost(self, exc):
        return isinstance(exc, LostWorker)

    def close(self):
        pass


class LostWorker(Exception):
    pass


def rows_by_key(table):
    out: dict[str, list] = {}
    for r in table.to_pylist():
        out.setdefault(r["key"], []).append(r)
    return out


# --------------------------------------------------------------------------- run_cell


def test_run_cell_trains_and_ablates_like_the_library():
    cell = tiny().cells[0]
    out = run_cell(cell.to_dict())
    assert out["status"] == "ok", out["message"]
    recs = out["records"]
    assert [r["subset"] for r in recs] == SUBSETS
    # the same model as training directly with the derived seed, one core thread
    ref = train(
        backend.task_from_dict(cell.task),
        cell.construction,
        cell.hidden,
        seed=cell.train_seed,
        config=TrainConfig.from_dict(cell.config),
        progress=False,
    )
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.npz"
        path.write_bytes(out["checkpoint"])
        model = load(path)
    np.testing.assert_array_equal(model.W_hh, ref.W_hh)
    np.testing.assert_array_equal(model.W_hy, ref.W_hy)
    # intact-model metric against the library's own held-out evaluation
    full = evaluate(ref, size=32, seed=cell.diagnose["eval_seed"], n_threads=1)
    assert recs[0]["metric"] == pytest.approx(full["fvu"], rel=1e-6)
    assert recs[0]["removed_mass"] == 0.0
    assert recs[0]["delta"] == 0.0
    assert np.isnan(recs[0]["delta_per_mass"])  # stored as null in the table
    for r in recs[1:]:
        assert r["delta"] == pytest.approx(r["metric"] - recs[0]["metric"], abs=1e-15)
        if r["removed_mass"] > 0:
            assert r["delta_per_mass"] == pytest.approx(r["delta"] / r["removed_mass"])
        assert r["accuracy"] is None
    assert out["summary"]["metric_name"] == "fvu"
    assert out["summary"]["n_R"] >= 1


def test_run_cell_copy_task_scores_accuracy():
    spec = parse_spec(
        {
            "train": {"epochs": 1, "batches_per_epoch": 2},
            "diagnose": {"eval_size": 16},
            "grid": [
                {
                    "task": "copy",
                    "construction": "dense_orthogonal",
                    "hidden": 12,
                    "task_params": {"lags": 8},
                }
            ],
        }
    )
    out = run_cell(spec.cells[0].to_dict())
    assert out["status"] == "ok", out["message"]
    assert out["summary"]["metric_name"] == "accuracy"
    assert all(r["metric"] == r["accuracy"] for r in out["records"])
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in out["records"])


def test_run_cell_diverging_model_is_a_status_not_an_exception():
    spec = tiny(train={"epochs": 2, "batches_per_epoch": 4, "lr": 1e30})
    out = run_cell(spec.cells[0].to_dict())
    assert out["status"] == "diverged"
    assert "non-finite" in out["message"]
    assert out["records"] == []
    assert out["checkpoint"] is None


def test_run_cell_unexpected_error_is_a_status(monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("schur failed")

    monkeypatch.setattr(backend, "ablation_records", broken)
    out = run_cell(tiny().cells[0].to_dict())
    assert out["status"] == "error"
    assert out["message"] == "RuntimeError: schur failed"


# --------------------------------------------------------------------------- folder


def test_sweep_table_rows_columns_and_rerun(tmp_path):
    spec = tiny()
    s = run_sweep(spec, tmp_path, SerialExecutor(), progress=False)
    assert (s["ok"], s["skipped"], s["error"]) == (8, 0, 0)
    table = read_results(tmp_path)
    assert table.num_rows == 8 * 8
    for col in (
        "task",
        "construction",
        "hidden",
        "seed",
        "subset",
        "status",
        "key",
        "removed_mass",
        "metric",
        "delta",
        "delta_per_mass",
        "pulse_prob",
    ):
        assert col in table.column_names
    keys = table.column("key").to_pylist()
    pairs = list(zip(keys, table.column("subset").to_pylist(), strict=True))
    assert len(set(pairs)) == len(pairs)
    assert keys == sorted(keys)
    by_key = rows_by_key(table)
    assert set(by_key) == {c.key for c in spec.cells}
    for cell in spec.cells:
        rows = by_key[cell.key]
        assert [r["subset"] for r in rows] == SUBSETS
        assert {r["pulse_prob"] for r in rows} == {cell.task["pulse_prob"]}
        # undefined where nothing is removed (always the intact model)
        assert rows[0]["removed_mass"] == 0.0
        assert all(
            (r["delta_per_mass"] is None) == (r["removed_mass"] == 0) for r in rows
        )
        assert {r["train_seed"] for r in rows} == {cell.train_seed}
        assert json.loads(rows[0]["train_config"])["epochs"] == 1
    assert len(list((tmp_path / "checkpoints").glob("*.npz"))) == 8
    before = (tmp_path / "results.parquet").read_bytes()
    # rerun: nothing to do, same table
    ex = SerialExecutor()
    s = run_sweep(spec, tmp_path, ex, progress=False)
    assert (s["ok"], s["skipped"]) == (0, 8)
    assert ex.submitted == []
    assert (tmp_path / "results.parquet").read_bytes() == before
    # a model whose record is gone (killed before it was written) runs again, once
    victim = spec.cells[3].key
    (tmp_path / "parts" / f"{victim}.parquet").unlink()
    (tmp_path / "results.parquet").unlink()
    ex = SerialExecutor()
    s = run_sweep(spec, tmp_path, ex, progress=False)
    assert ex.submitted == [victim]
    assert (tmp_path / "results.parquet").read_bytes() == before


def test_growing_the_spec_keeps_finished_models(tmp_path):
    run_sweep(tiny(), tmp_path, SerialExecutor(), progress=False)
    bigger = tiny(seeds=3)
    ex = SerialExecutor()
    s = run_sweep(bigger, tmp_path, ex, progress=False)
    assert (s["ok"], s["skipped"]) == (4, 8)
    assert all("-r2-" in k for k in ex.submitted)
    assert read_results(tmp_path).num_rows == 12 * 8


def test_diverged_and_error_rows(tmp_path, monkeypatch):
    data = copy.deepcopy(TINY)
    data["grid"][0]["train"] = {"lr": [1e-3, 1e30]}
    spec = parse_spec(data)
    real = backend.ablation_records
    bad = next(c.key for c in spec.cells if c.config["lr"] == 1e-3)

    def flaky(model, **kw):
        if model.seed == next(c.train_seed for c in spec.cells if c.key == bad):
            raise RuntimeError("flaky")
        return real(model, **kw)

    monkeypatch.setattr(backend, "ablation_records", flaky)
    s = run_sweep(spec, tmp_path, SerialExecutor(), progress=False)
    assert (s["ok"], s["diverged"], s["error"]) == (7, 8, 1)
    by_key = rows_by_key(read_results(tmp_path))
    for cell in spec.cells:
        rows = by_key[cell.key]
        if cell.config["lr"] == 1e30:
            assert len(rows) == 1
            assert rows[0]["status"] == "diverged"
            assert rows[0]["subset"] is None
            assert rows[0]["metric"] is None
            assert rows[0]["diverged_epoch"] == 0
            assert rows[0]["lr"] == 1e30
    assert by_key[bad][0]["status"] == "error"
    assert by_key[bad][0]["message"] == "RuntimeError: flaky"
    # a rerun retries the error only; diverged models are final
    monkeypatch.setattr(backend, "ablation_records", real)
    ex = SerialExecutor()
    s = run_sweep(spec, tmp_path, ex, progress=False)
    assert ex.submitted == [bad]
    rows = rows_by_key(read_results(tmp_path))[bad]
    assert [r["status"] for r in rows] == ["ok"] * 8


def test_lost_worker_jobs_are_resubmitted_then_recorded_as_errors(tmp_path):
    spec = tiny()
    once, always = spec.cells[1].key, spec.cells[2].key
    ex = SerialExecutor(lose=[once])
    ex.lose[always] = 99
    s = run_sweep(spec, tmp_path, ex, progress=False)
    assert s["lost"] == 1 + runner.MAX_LOST
    assert (s["ok"], s["error"]) == (7, 1)
    # a resubmission is a new job (Dask would otherwise return the failed future)
    assert [k for k in ex.submitted if k.startswith(once)] == [once, f"{once}-retry1"]
    by_key = rows_by_key(read_results(tmp_path))
    assert [r["status"] for r in by_key[once]] == ["ok"] * 8
    assert by_key[always][0]["status"] == "error"
    assert "LostWorker" in by_key[always][0]["message"]
    assert read_results(tmp_path).num_rows == 7 * 8 + 1


def test_folder_written_with_other_diagnosis_settings_is_refused(tmp_path):
    ResultStore(tmp_path, tiny())
    with pytest.raises(SpecError, match="use another --out"):
        ResultStore(tmp_path, tiny(diagnose={"eval_size": 32, "alpha": 0.8}))


def test_local_processes_give_the_serial_table(tmp_path):
    spec = tiny()
    run_sweep(spec, tmp_path / "serial", SerialExecutor(), progress=False)
    with LocalExecutor(2) as ex:
        s = run_sweep(spec, tmp_path / "local", ex, progress=False)
    assert s["ok"] == 8
    a = read_results(tmp_path / "serial")
    b = read_results(tmp_path / "local")
    assert a.equals(b)
    assert (tmp_path / "serial" / "results.parquet").read_bytes() == (
        tmp_path / "local" / "results.parquet"
    ).read_bytes()


def test_executor_gets_at_most_max_in_flight_jobs(tmp_path):
    class Windowed(SerialExecutor):
        max_in_flight = 3
        seen = 0

        def wait_any(self, futures):
            self.seen = max(self.seen, len(futures))
            return super().wait_any(futures)

    ex = Windowed()
    s = run_sweep(tiny(), tmp_path, ex, progress=False)
    assert s["ok"] == 8
    assert ex.seen == 3


# --------------------------------------------------------------------------- CLI / API

TINY_TOML = """
seeds = 2
[train]
epochs = 1
batches_per_epoch = 4
[diagnose]
eval_size = 32
[[grid]]
task = "flipflop"
construction = ["dense_orthogonal", "dense_default"]
hidden = 8
"""


def test_cli_sweep_and_library_function_agree(tmp_path, capsys):
    from rnnschur.cli import main
    from rnnschur.sweep import sweep

    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_TOML)
    code = main(["sweep", str(spec), "--out", str(tmp_path / "cli"), "--jobs", "1"])
    assert code == 0
    err = capsys.readouterr().err
    assert "4 models in" in err
    assert "4 ok, 0 diverged, 0 errors, 0 skipped" in err
    lines = []
    s = sweep(spec, tmp_path / "api", jobs=1, progress=False, log=lines.append)
    assert s["ok"] == 4
    assert "running on 1 local process" in lines[0]
    assert (tmp_path / "cli" / "results.parquet").read_bytes() == (
        tmp_path / "api" / "results.parquet"
    ).read_bytes()


def test_cli_sweep_reports_bad_input(tmp_path, capsys):
    from rnnschur.cli import main

    spec = tmp_path / "bad.toml"
    spec.write_text(TINY_TOML.replace('task = "flipflop"', 'task = "flip"'))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "grid[0]: task must be one of" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", "o"]) == 2
    with pytest.raises(SystemExit):
        main(["sweep", str(spec), "--out", "o", "--jobs", "2", "--dask-local", "2"])
    assert "not allowed with argument" in capsys.readouterr().err
