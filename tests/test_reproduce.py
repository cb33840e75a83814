from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from rnnschur.paper import values as pv
from rnnschur.paper.profile import ablation_table
from rnnschur.paper.reproduce import reproduce
from rnnschur.paper.settings import RunSettings, model_specs


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
        "## Why can a coupling be removed?",
    ):
        assert heading in text
    for fig in ("figure1.png", "figure2.png", "figure_predictors.png"):
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
    assert {c["id"] for c in results["claims"]} == set(pv.CLAIMS)
    for c in results["claims"]:
        assert c["verdict"] in (
            "supported",
            "not supported",
            "holds by construction",
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
    # dynamics section: every (copy or task) model × block, fixed points of task models
    n_task_models = len(settings.tasks) * len(settings.task_seeds)
    assert len(results["subspaces"]) == 3 * (n_copy_models + n_task_models)
    assert len(results["continuation"]) == 8 * n_task_models
    assert {r["key"] for r in results["fixed_points"]} == {
        r["key"] for r in results["subspaces"] if r["task"] != "copy"
    }
    for r in results["fixed_points"]:
        assert r["status"] == "slow" or r["q"] < 1e-20
    assert set(results["predictors"]) == {"tasks", "copy"}
    assert results["timing"]["dynamics_seconds"] > 0


def test_rerun_reuses_checkpoints(tiny_run):
    out, _path, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.npz")}
    lines: list[str] = []
    reproduce(out, settings=tiny_settings(), progress=False, log=lines.append)
    assert "0 without a checkpoint" in lines[0]
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
    assert f"{total - n_done} without a checkpoint" in lines[0]


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


def test_full_settings_are_the_papers():
    from rnnschur.training import PAPER_CONFIG

    full = RunSettings.full()
    assert full.copy_widths == (56, 64, 72)
    assert set(full.copy_constructions) == {
        "dense_default",
        "dense_orthogonal",
        "dense_normal",
        "cayley",
    }
    assert full.alpha == 0.9
    assert full.alphas == (0.85, 0.90, 0.95)
    assert full.alpha_width == 72
    assert set(full.alpha_constructions) == {"dense_orthogonal", "cayley"}
    assert full.tasks == ("flipflop", "sine", "cdi")
    assert len(full.task_seeds) == 3
    assert full.task_hidden == 64
    assert full.task_construction == "dense_orthogonal"
    assert full.task_config == PAPER_CONFIG
    assert not full.notes
    assert "QUICK MODE" in RunSettings.quick().notes[0]


def test_only_removes_stale_outputs(tmp_path):
    settings = tiny_settings()
    reproduce(tmp_path, settings=settings, progress=False, log=lambda _: None)
    assert (tmp_path / "figure2.png").exists()
    reproduce(tmp_path, settings=settings, only=["copy"], progress=False, log=print)
    assert (tmp_path / "figure1.png").exists()
    assert (tmp_path / "copy.csv").exists()
    for stale in (
        "figure2.png",
        "tasks_summary.csv",
        "tasks_per_seed.csv",
        "alpha.csv",
    ):
        assert not (tmp_path / stale).exists()
    results = json.loads((tmp_path / "results.json").read_text())
    assert "tasks_summary" not in results


def test_corrupt_checkpoint_is_set_aside_and_retrained(tmp_path):
    settings = tiny_settings()
    reproduce(tmp_path, settings=settings, only=["tasks"], progress=False, log=print)
    victim = min((tmp_path / "models").glob("sine_*.npz"))
    victim.write_bytes(victim.read_bytes()[:100])
    lines: list[str] = []
    reproduce(
        tmp_path, settings=settings, only=["tasks"], progress=False, log=lines.append
    )
    assert any("warning" in line and victim.name in line for line in lines)
    assert "1 to train" in lines[0] or any("training 1 model" in line for line in lines)
    assert victim.with_name(victim.name + ".corrupt").exists()
    assert victim.exists()


def test_parallel_training_matches_the_model_list(tmp_path):
    settings = dataclasses.replace(
        tiny_settings(), task_seeds=(0,), tasks=("flipflop", "cdi")
    )
    lines: list[str] = []
    reproduce(
        tmp_path,
        settings=settings,
        only=["tasks"],
        jobs=2,
        progress=False,
        log=lines.append,
    )
    trained = [line for line in lines if line.startswith("trained ")]
    assert len(trained) == 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert {m["n_threads"] for m in results["models"]} == {1}
    assert results["jobs"] == 2


def test_cli_reproduce_quick(tmp_path, monkeypatch, capsys):
    from rnnschur.cli import main
    from rnnschur.paper.settings import RunSettings as RS

    tiny = tiny_settings()
    monkeypatch.setattr(RS, "quick", classmethod(lambda _cls: tiny))
    assert (
        main(
            [
                "reproduce",
                "--quick",
                "--out",
                str(tmp_path),
                "--quiet",
                "--only",
                "tasks",
            ]
        )
        == 0
    )
    assert "estimated training time" in capsys.readouterr().out
    assert "QUICK MODE" in (tmp_path / "report.md").read_text()


def test_cli_reproduce_interrupted(tmp_path, monkeypatch, capsys):
    from rnnschur.cli import main
    from rnnschur.paper import reproduce as rep

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rep, "reproduce", interrupted)
    assert main(["reproduce", "--out", str(tmp_path)]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_report_names_the_task_variants_it_ran(tiny_run):
    """The tasks run with STUDY_DEFAULTS, and the report's settings table says so."""
    from rnnschur.paper.settings import STUDY_DEFAULTS

    out, path, _ = tiny_run
    text = path.read_text()
    for task, params in STUDY_DEFAULTS:
        row = next(
            line for line in text.splitlines() if line.startswith(f"| {task} task")
        )
        for name, value in params:
            assert f"{name} = {value}" in row
        assert "STUDY_DEFAULTS" in row
    import rnnschur

    for task, params in STUDY_DEFAULTS:
        ckpt = min((out / "models").glob(f"{task}_*.npz"))
        trained = rnnschur.load(ckpt).task
        for name, value in params:
            assert getattr(trained, name) == value
