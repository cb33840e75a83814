"""Sweep executors: local processes, a Dask LocalCluster and a Dask scheduler with
workers started from the command line give the same results.parquet, also when a
worker is killed mid-sweep."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnschur.sweep import (
    DaskExecutor,
    LocalExecutor,
    make_executor,
    parse_spec,
    read_results,
    run_sweep,
)
from rnnschur.sweep.executors import DASK_WORKER_CONFIG

pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "seeds": 2,
    "train": {"epochs": 1, "batches_per_epoch": 4},
    "diagnose": {"eval_size": 32},
    "grid": [
        {
            "task": "flipflop",
            "construction": ["dense_orthogonal", "cayley"],
            "hidden": 8,
            "task_params": {"pulse_prob": [0.2, 0.5]},
        }
    ],
}

# 48 small models, about 0.3-0.5 s each on one core: long enough to kill a worker
# while it trains one.
SPEC48 = """
seeds = 6
[train]
epochs = 3
batches_per_epoch = 24
[diagnose]
eval_size = 128
[[grid]]
task = "flipflop"
construction = ["dense_orthogonal", "dense_default", "dense_normal", "cayley"]
hidden = 16
[grid.task_params]
pulse_prob = [0.2, 0.5]
"""


def test_executor_arguments_are_checked():
    with pytest.raises(ValueError, match="at most one"):
        make_executor(jobs=2, dask_local=2)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        LocalExecutor(0)
    with pytest.raises(ValueError, match="exactly one"):
        DaskExecutor()


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "rnnschur\[dask\]"'):
        DaskExecutor(n_workers=1)


def _worker_settings(_):
    import dask

    return {k: dask.config.get(k) for k in DASK_WORKER_CONFIG}


def test_local_cluster_workers_run_without_profiler_and_gil_monitor():
    pytest.importorskip("distributed")
    import dask

    before = {k: dask.config.get(k) for k in DASK_WORKER_CONFIG}
    with DaskExecutor(n_workers=1) as ex:
        got = ex.client.submit(_worker_settings, 0, pure=False).result()
    assert got == DASK_WORKER_CONFIG
    # the client process keeps its own configuration
    assert {k: dask.config.get(k) for k in DASK_WORKER_CONFIG} == before


def test_dask_local_cluster_gives_the_local_table(tmp_path):
    pytest.importorskip("distributed")
    spec = parse_spec(TINY)
    with LocalExecutor(2) as ex:
        run_sweep(spec, tmp_path / "local", ex, progress=False)
    with DaskExecutor(n_workers=2) as ex:
        assert "LocalCluster" in ex.description
        s = run_sweep(spec, tmp_path / "dask", ex, progress=False)
    assert s["ok"] == len(spec)
    a = read_results(tmp_path / "local")
    b = read_results(tmp_path / "dask")
    assert a.num_rows == 8 * len(spec)
    assert a.equals(b)
    assert (tmp_path / "local" / "results.parquet").read_bytes() == (
        tmp_path / "dask" / "results.parquet"
    ).read_bytes()


# --------------------------------------------------------------------------- CLI, slow


def sweep_cmd(spec: Path, out: Path, *where: str) -> list[str]:
    cli = [sys.executable, "-m", "rnnschur.cli", "sweep"]
    return [*cli, str(spec), "--out", str(out), *where, "--no-progress"]


def run_cli(spec: Path, out: Path, *where: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        sweep_cmd(spec, out, *where),
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def assert_complete(out: Path, n_models: int, reference: Path) -> None:
    table = read_results(out)
    pairs = list(
        zip(
            table.column("key").to_pylist(),
            table.column("subset").to_pylist(),
            strict=True,
        )
    )
    assert len(pairs) == 8 * n_models
    assert len(set(pairs)) == len(pairs)  # no duplicated row
    assert set(table.column("status").to_pylist()) == {"ok"}
    assert table.equals(read_results(reference))
    assert (out / "results.parquet").read_bytes() == (
        reference / "results.parquet"
    ).read_bytes()


@pytest.fixture(scope="module")
def spec48(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec48")
    path = d / "spec48.toml"
    path.write_text(SPEC48)
    ref = d / "jobs2"
    run_cli(path, ref, "--jobs", "2")
    return path, ref


@pytest.mark.slow
def test_smoke_spec_same_table_three_ways(tmp_path):
    pytest.importorskip("distributed")
    from dask_cluster import dask_cli_cluster

    smoke = ROOT / "sweeps" / "smoke.toml"
    n = len(parse_spec_file(smoke).cells)
    run_cli(smoke, tmp_path / "jobs", "--jobs", "2")
    run_cli(smoke, tmp_path / "local", "--dask-local", "2")
    with dask_cli_cluster(2, tmp_path / "cluster") as (address, _):
        run_cli(smoke, tmp_path / "sched", "--scheduler", address)
    for other in ("local", "sched"):
        assert_complete(tmp_path / other, n, tmp_path / "jobs")


def parse_spec_file(path: Path):
    from rnnschur.sweep import load_spec

    return load_spec(path)


@pytest.mark.slow
def test_48_models_same_table_three_ways(tmp_path, spec48):
    pytest.importorskip("distributed")
    from dask_cluster import dask_cli_cluster

    path, ref = spec48
    run_cli(path, tmp_path / "local", "--dask-local", "2")
    assert_complete(tmp_path / "local", 48, ref)
    with dask_cli_cluster(2, tmp_path / "cluster") as (address, _):
        run_cli(path, tmp_path / "sched", "--scheduler", address)
    assert_complete(tmp_path / "sched", 48, ref)


def wait_for_parts(out: Path, n: int, proc: subprocess.Popen, timeout=300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sweep ended early: {proc.communicate()}")
        parts = out / "parts"
        if parts.is_dir() and len(list(parts.glob("*.parquet"))) >= n:
            return
        time.sleep(0.05)
    pytest.fail("sweep made no progress")


@pytest.mark.slow
def test_killed_dask_worker_loses_nothing(tmp_path, spec48):
    pytest.importorskip("distributed")
    from dask_cluster import dask_cli_cluster, kill_worker

    path, ref = spec48
    out = tmp_path / "sched"
    with dask_cli_cluster(2, tmp_path / "cluster") as (address, workers):
        proc = subprocess.Popen(
            sweep_cmd(path, out, "--scheduler", address),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_parts(out, 6, proc)
        kill_worker(workers[0])  # nanny and worker, mid-model
        _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert "48 model(s) to run" in err
    log = (tmp_path / "cluster" / "scheduler.log").read_text()
    assert re.search(r"Remove worker addr: \S+ name: w0 ", log)
    # every model reported exactly once (the killed worker's job ran again elsewhere)
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in runs) == sorted({r["key"] for r in runs})
    assert len(runs) == 48
    assert_complete(out, 48, ref)


@pytest.mark.slow
def test_killed_local_worker_loses_nothing(tmp_path, spec48):
    psutil = pytest.importorskip("psutil")
    path, ref = spec48
    out = tmp_path / "jobs"
    proc = subprocess.Popen(
        sweep_cmd(path, out, "--jobs", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_parts(out, 6, proc)
    workers = [
        p
        for p in psutil.Process(proc.pid).children()
        if "resource_tracker" not in " ".join(p.cmdline())
    ]
    assert len(workers) == 2
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    lost = int(err.split(" lost to dead workers")[0].rsplit(", ", 1)[1])
    assert lost >= 1  # the jobs in flight were resubmitted
    assert_complete(out, 48, ref)


@pytest.mark.slow
@pytest.mark.parametrize("where", [("--jobs", "2"), ("--dask-local", "2")])
def test_terminated_sweep_resumes_without_duplicates(tmp_path, spec48, where):
    if where[0] == "--dask-local":
        pytest.importorskip("distributed")
    path, ref = spec48
    out = tmp_path / "out"
    proc = subprocess.Popen(
        sweep_cmd(path, out, *where),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_parts(out, 4, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 143, err
    assert "terminated; finished models are kept" in err
    done = len(list((out / "parts").glob("*.parquet")))
    assert 4 <= done < 48
    err = run_cli(path, out, *where).stderr
    assert f"{48 - done} model(s) to run, {done} already done" in err
    assert_complete(out, 48, ref)
