from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rnnschur.training as tr
from rnnschur.cli import build_parser, main
from rnnschur.tasks import CopyTask, FlipFlop

FAST = ["--epochs", "2", "--batches", "3", "--batch-size", "8", "--threads", "1"]


def test_train_writes_a_checkpoint_and_prints_the_summary(tmp_path, capsys):
    out = tmp_path / "m.npz"
    code = main(
        [
            "train",
            "--task",
            "flipflop",
            "--construction",
            "dense_orthogonal",
            "--hidden",
            "12",
            "--seed",
            "3",
            "--out",
            str(out),
            "--quiet",
            "--lr",
            "0.01",
            "--clip",
            "5",
            "--schedule",
            "constant",
            *FAST,
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    model = tr.load(out)
    assert model.task == FlipFlop()
    assert (model.construction, model.hidden, model.seed) == ("dense_orthogonal", 12, 3)
    c = model.config
    assert (c.epochs, c.batches_per_epoch, c.batch_size, c.lr, c.clip, c.n_threads) == (
        2,
        3,
        8,
        0.01,
        5.0,
        1,
    )
    assert c.lr_schedule == "constant"
    fvu = tr.evaluate(model)["fvu"]
    assert f"{fvu:.6g}" in text
    assert "FVU" in text
    assert "replay acc." not in text
    assert str(out) in text


def test_copy_summary_has_replay_accuracy_and_copy_defaults(tmp_path, capsys):
    out = tmp_path / "c.npz"
    assert (
        main(
            [
                "train",
                "--task",
                "copy",
                "--construction",
                "cayley",
                "--hidden",
                "8",
                "--seed",
                "0",
                "--out",
                str(out),
                "--quiet",
                *FAST,
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    model = tr.load(out)
    assert model.task == CopyTask()
    # not overridden: the copy defaults
    assert model.config.lr == tr.COPY_CONFIG.lr
    assert model.config.clip == tr.COPY_CONFIG.clip
    acc = tr.evaluate(model)["accuracy"]
    assert f"{acc:.6f}" in text


def test_progress_bar_unless_quiet(tmp_path, capsys):
    main(
        [
            "train",
            "--task",
            "sine",
            "--construction",
            "dense_default",
            "--hidden",
            "6",
            "--seed",
            "0",
            "--out",
            str(tmp_path / "s.npz"),
            *FAST,
        ]
    )
    assert "sine/dense_default" in capsys.readouterr().err


def test_divergence_exits_with_an_error(tmp_path, capsys):
    out = tmp_path / "d.npz"
    code = main(
        [
            "train",
            "--task",
            "flipflop",
            "--construction",
            "dense_default",
            "--hidden",
            "8",
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
            "--lr",
            "1e30",
            *FAST,
        ]
    )
    assert code == 1
    assert "diverged" in capsys.readouterr().err
    assert not out.exists()


def _train_argv(**opts):
    """``rnnschur train`` arguments: a valid base command with ``opts`` replacing or
    (value None) removing options."""
    base = {
        "task": "copy",
        "construction": "cayley",
        "hidden": "8",
        "seed": "0",
        "out": "x.npz",
    }
    base.update(opts)
    argv = ["train"]
    for k, v in base.items():
        if v is not None:
            argv += [f"--{k}", v]
    return argv


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["train"],
        _train_argv(task="maze"),
        _train_argv(task="flipflop:pulse=0.5"),
        _train_argv(task="flipflop:pulse_prob"),
        _train_argv(construction="dense"),
        _train_argv(hidden="0"),
        _train_argv(seed="-1"),
        _train_argv(lr="nan"),
        _train_argv(epochs="two"),
        _train_argv(out=None),
        _train_argv(out="/nonexistent-rnnschur-dir/m.npz"),
        _train_argv(out="."),
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    # all of these fail in argument parsing, before any training
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_train_task_takes_parameters_as_ablate_does(tmp_path, capsys):
    """``--task NAME:k=v`` (the syntax of ``rnnschur ablate --task``) trains that task."""
    out = tmp_path / "p.npz"
    argv = _train_argv(task="flipflop:pulse_prob=0.5,input_noise=0.1", out=str(out),
                       hidden="4", epochs="1", batches="2")  # fmt: skip
    assert main([*argv, "--batch-size", "4", "--threads", "1", "--quiet"]) == 0
    assert tr.load(out).task == FlipFlop(pulse_prob=0.5, input_noise=0.1)
    assert "pulse_prob=0.5" in capsys.readouterr().out


def test_copy_summary_states_the_lag_curriculum(tmp_path, capsys):
    out = tmp_path / "c.npz"
    argv = _train_argv(out=str(out), hidden="4", epochs="41", batches="1")
    assert main([*argv, "--batch-size", "2", "--threads", "1", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "replay lags by epoch: 16 from 0, 32 from 40" in text
    assert "128 from 80" not in text  # that phase lies beyond the 41 epochs


def test_subcommands_are_pluggable():
    parser = build_parser()
    args = parser.parse_args(
        [
            "train",
            "--task",
            "cdi",
            "--construction",
            "cayley",
            "--hidden",
            "4",
            "--seed",
            "1",
            "--out",
            "m.npz",
        ]
    )
    assert args.command == "train"
    assert callable(args.func)


def test_console_entry_point_runs(tmp_path):
    out = tmp_path / "m.npz"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnschur.cli",
            "train",
            "--task",
            "flipflop",
            "--construction",
            "cayley",
            "--hidden",
            "6",
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
            *FAST,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "FVU" in proc.stdout
    assert np.all(np.isfinite(tr.load(out).W_hh))
