"""The shipped robustness-study spec (sweeps/study.toml) expands to the planned grid."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from pathlib import Path

from rnnschur.sweep.spec import load_spec
from rnnschur.training import PAPER_CONFIG, TrainConfig, default_config

STUDY = Path(__file__).resolve().parents[1] / "sweeps" / "study.toml"

#: SHA-256 over "key:train_seed" lines of the 60 copy cells of the study's first
#: block, as expanded when the study started: the study's results are keyed by them,
#: so neither the copy block nor the key/seed derivation may change.
COPY_BLOCK_DIGEST = "168ad8f5c0c3a184dc8b1c4fb2dedcef2eb93c3ac5f79cd601ce4c161b82cc6f"
PAPER_FOUR = ("dense_default", "dense_orthogonal", "dense_normal", "cayley")


def _condition(cell):
    """The settings that distinguish conditions (everything but the replicate)."""
    t = cell.task
    extra = {
        "flipflop": ("pulse_prob", "input_noise"),
        "sine": ("eval_freqs",),
        "cdi": ("noise_std", "target"),
        "copy": (),
    }[t["name"]]
    return (
        t["name"],
        cell.construction,
        cell.hidden,
        *(t[k] for k in extra),
        cell.config["lr_schedule"],
    )


def test_study_spec_expands_to_the_planned_grid():
    spec = load_spec(STUDY)
    assert spec.name == "study"
    assert len(spec) == 195
    assert len({c.key for c in spec.cells}) == len({c.train_seed for c in spec.cells})
    conditions = collections.Counter(_condition(c) for c in spec.cells)
    expected = {}
    for h in (56, 64, 72):
        for c in (*PAPER_FOUR, "cayley_free"):
            expected[("copy", c, h, "cosine")] = 5
    # the variants, trained as `rnnschur reproduce` trains them (constant rate)
    for p in (0.2, 0.5):
        for noise in (0.0, 0.1):
            expected[("flipflop", "dense_orthogonal", 64, p, noise, "constant")] = 10
    for e in ("unseen", "train"):
        expected[("sine", "dense_orthogonal", 64, e, "constant")] = 10
    for noise in (0.1, 1.0):
        expected[("cdi", "dense_orthogonal", 64, noise, "integral", "constant")] = 10
    expected[("cdi", "dense_orthogonal", 64, 1.0, "drift", "constant")] = 10
    # the three default conditions with the package's default cosine schedule
    expected[("flipflop", "dense_orthogonal", 64, 0.2, 0.0, "cosine")] = 10
    expected[("sine", "dense_orthogonal", 64, "unseen", "cosine")] = 10
    expected[("cdi", "dense_orthogonal", 64, 1.0, "integral", "cosine")] = 10
    assert dict(conditions) == expected
    assert sorted({c.seed for c in spec.cells}) == list(range(10))
    for c in spec.cells:
        cfg = TrainConfig.from_dict(c.config)
        if cfg.lr_schedule == "constant":
            assert cfg == dataclasses.replace(PAPER_CONFIG, n_threads=1)
        else:
            assert cfg == dataclasses.replace(
                default_config(c.task["name"]), n_threads=1
            )
    varying = spec.varying
    for name in ("pulse_prob", "input_noise", "eval_freqs", "noise_std", "target"):
        assert name in varying["task"]
    assert {"lr_schedule", "lr_final"} <= set(varying["config"])


def test_study_copy_block_keys_are_those_the_running_study_uses():
    spec = load_spec(STUDY)
    copy = sorted(
        (c.key, c.train_seed)
        for c in spec.cells
        if c.task["name"] == "copy" and c.construction in PAPER_FOUR
    )
    assert len(copy) == 60
    lines = "\n".join(f"{k}:{s}" for k, s in copy)
    assert hashlib.sha256(lines.encode()).hexdigest() == COPY_BLOCK_DIGEST
