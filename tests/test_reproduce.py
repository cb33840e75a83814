from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from rnnschur import report
from rnnschur.experiments import RunSettings, model_specs
from rnnschur.reproduce import ablation_table, reproduce


def tiny_settings() -> RunSettings:
    quick = RunSettings.quick()
    return dataclasses.replace(
        quick,
        mode="test",
        copy_widths=(12,),
        alpha_width=12,
        copy_config=dataclasses.replace(
            quick.copy_config, epochs=1, batches_per_epoch=3, batch_size=8, eval_size=8
        ),
        task_hidden=10,
        task_seeds=(0, 1),
        task_config=dataclasses.replace(
            quick.task_config, epochs=1, batches_per_epoch=3, batch_size=8, eval_size=8
        ),
        eval_size=16,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    lines: list[str] = []
    path = reproduce(out, settings=tiny_settings(), progress=False, log=lines.append)
    return out, path, lines


def test_pipeline_writes_every_file(tiny_run):
    out, path, lines = tiny_run
    assert path == out / "report.md"
    assert "estimated training time" in lines[0]
    text = path.read_text()
    for heading in (
        "## Claims",
        "## Copy task",
        "## Threshold sensitivity",
        "## Across tasks",
    ):
        assert heading in text
    for fig in ("figure1.png", "figure2.png"):
        data = (out / fig).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000
    results = json.loads((out / "results.json").read_text())
    settings = tiny_settings()
    n_copy_models = len(settings.copy_constructions)
    assert len(results["copy"]) == n_copy_models * 8
    assert len(results["alpha"]) == 2 * len(settings.alphas)
    assert len(results["tasks_per_seed"]) == 3 * 2 * 3
    assert len(results["tasks_summary"]) == 3 * 3
    assert {c["id"] for c in results["claims"]} == set(report.pv.CLAIMS)
    for c in results["claims"]:
        assert c["verdict"] in (
            "supported",
            "not supported",
            "inconclusive",
            "not tested",
        )
    with (out / "copy.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(results["copy"])
    for r in results["copy"]:
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["removed_mass"] >= 0.0
        if r["removed"] == "":
            assert r["removed_mass"] == 0.0
    models = list((out / "models").glob("*.npz"))
    assert len(models) == len(model_specs(settings))


def test_rerun_reuses_checkpoints(tiny_run):
    out, _path, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.npz")}
    lines: list[str] = []
    reproduce(out, settings=tiny_settings(), progress=False, log=lines.append)
    assert "0 to train" in lines[0]
    after = {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.npz")}
    assert before == after


def test_interrupted_run_resumes(tmp_path):
    settings = tiny_settings()
    # Pretend an earlier run stopped after the copy models: train those only.
    reproduce(
        tmp_path, settings=settings, only=["copy"], progress=False, log=lambda _: None
    )
    n_done = len(list((tmp_path / "models").glob("*.npz")))
    lines: list[str] = []
    reproduce(tmp_path, settings=settings, progress=False, log=lines.append)
    total = len(model_specs(settings))
    assert f"{total - n_done} to train" in lines[0]


def test_ablate_command_table(tiny_run):
    out, _, _ = tiny_run
    ckpt = min((out / "models").glob("copy_dense_orthogonal*.npz"))
    text = ablation_table(ckpt, alpha=0.9, eval_size=8)
    lines = text.splitlines()
    assert "n_R =" in lines[0]
    assert len(lines) == 2 + 8
    assert lines[2].startswith("full")
    with pytest.raises(ValueError, match="inputs"):
        ablation_table(ckpt, task="sine")


def test_only_rejects_unknown_experiment(tmp_path):
    with pytest.raises(ValueError, match="only"):
        reproduce(tmp_path, settings=tiny_settings(), only=["nope"], log=lambda _: None)


def test_cli_ablate(tiny_run, capsys):
    from rnnschur.cli import main

    out, _, _ = tiny_run
    ckpt = min((out / "models").glob("sine_*.npz"))
    assert main(["ablate", str(ckpt), "--alpha", "0.8", "--eval-size", "8"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "α = 0.8" in printed[0]
    assert "ΔFVU" in printed[1]
    assert len(printed) == 10


def test_cli_ablate_errors(tmp_path, capsys):
    from rnnschur.cli import main

    assert main(["ablate", str(tmp_path / "missing.npz")]) == 1
    assert "rnnschur ablate:" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    assert main(["ablate", str(bad)]) == 1
    assert "rnnschur ablate:" in capsys.readouterr().err
    for argv in (["ablate", str(bad), "--alpha", "1.5"], ["reproduce", "--only", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
