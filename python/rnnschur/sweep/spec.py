"""Sweep specifications: a TOML grid expanded into cells, one per trained model.

A spec is a list of grid blocks (``[[grid]]``); each block is the Cartesian product of
its axes, and the sweep is the union of the blocks (a cell listed by two blocks is one
cell). Top-level ``[train]`` and ``[diagnose]`` tables and ``seeds`` are defaults that
every block may override::

    seeds = 4                      # replicates 0..3 (or a list: [0, 5, 7])

    [train]                        # TrainConfig overrides for every block
    epochs = 5

    [diagnose]                     # held-out ablation table (defaults shown)
    alpha = 0.9
    eval_size = 512
    eval_seed = 918457

    [[grid]]
    task = "flipflop"
    construction = ["dense_orthogonal", "dense_default"]
    hidden = [16, 24]
    [grid.task_params]
    pulse_prob = [0.2, 0.5]        # a list is an axis, a scalar a fixed value
    [grid.train]
    lr = [1e-3, 3e-3]

Parameters whose value is itself a sequence (``betas``, ``copy_curriculum``,
``coherences``) are always written as a list of candidate values, e.g.
``coherences = [[0.05, 0.15, 0.5]]``.

Every cell gets a stable key from its resolved task, construction, width, training
configuration and replicate (not from its position in the grid), and its training seed
is drawn from a :class:`numpy.random.SeedSequence` seeded with a digest of that key, so
results do not depend on the order of the grid, the order of execution or the worker.
The core runs one thread per model (``n_threads = 1``), fixed by the sweep.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import numbers
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backend import CONSTRUCTIONS, TASKS, TrainConfig, default_config, make_task

__all__ = [
    "DEFAULT_DIAGNOSE",
    "Cell",
    "SpecError",
    "SweepSpec",
    "derive_seed",
    "load_spec",
    "parse_spec",
]

#: Held-out ablation settings used when a spec gives none. The evaluation seed differs
#: from the training-time monitor set, so the ablation scores unseen sequences.
DEFAULT_DIAGNOSE: dict[str, Any] = {
    "alpha": 0.9,
    "eval_size": 512,
    "eval_seed": 918_457,
}

_TOP_KEYS = {"name", "seeds", "base_seed", "train", "diagnose", "grid"}
_BLOCK_KEYS = {"task", "construction", "hidden", "seeds", "task_params", "train"}
#: Fixed by the sweep (one core thread per model keeps results bitwise reproducible).
_FIXED_TRAIN = {"n_threads": 1}


class SpecError(ValueError):
    """A sweep specification is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class Cell:
    """One model of a sweep: what to train and how to diagnose it.

    Attributes
    ----------
    key : str
        Stable identifier, e.g. ``"flipflop-dense_orthogonal-h16-r0-1a2b3c4d5e"``.
    task : dict
        Resolved task description (``Task.to_dict()``).
    construction : str
    hidden : int
    seed : int
        Replicate label from the spec.
    train_seed : int
        Seed passed to training, derived from ``key``.
    config : dict
        Resolved ``TrainConfig.to_dict()`` (``n_threads`` = 1).
    diagnose : dict
        ``alpha``, ``eval_size``, ``eval_seed``.
    """

    key: str
    task: dict[str, Any]
    construction: str
    hidden: int
    seed: int
    train_seed: int
    config: dict[str, Any]
    diagnose: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, lists, dicts) for a worker process."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SweepSpec:
    """An expanded sweep: its cells in a deterministic order, keys unique."""

    name: str
    cells: tuple[Cell, ...]
    diagnose: dict[str, Any]

    def __len__(self) -> int:
        return len(self.cells)

    @functools.cached_property
    def varying(self) -> dict[str, list[str]]:
        """Task and training parameters whose value differs between cells."""
        out: dict[str, list[str]] = {}
        for part in ("task", "config"):
            names = sorted({k for c in self.cells for k in getattr(c, part)} - {"name"})
            out[part] = [
                n
                for n in names
                if len({_canon(getattr(c, part).get(n)) for c in self.cells}) > 1
            ]
        return out


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def derive_seed(key_material: dict[str, Any], base_seed: int = 0) -> int:
    """Training seed of a cell: a ``SeedSequence`` seeded with a digest of its identity.

    Parameters
    ----------
    key_material : dict
        JSON-serialisable identity of the cell (task, construction, width, config
        without thread count, replicate).
    base_seed : int
        Spec-wide salt (``base_seed`` in the spec); 0 by default.

    Returns
    -------
    int in [0, 2**63)
    """
    blob = _canon({"cell": key_material, "base_seed": base_seed}).encode()
    entropy = int.from_bytes(hashlib.sha256(blob).digest(), "big")
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def _axis(where: str, name: str, value: Any, sequence_valued: bool) -> list[Any]:
    """Candidate values of one parameter: a list is an axis, a scalar one value."""
    if sequence_valued:
        if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
            msg = (
                f"{where}: {name!r} takes sequence values, so write a list of "
                f"candidates (e.g. {name} = [[...]]); got {value!r}"
            )
            raise SpecError(msg)
    elif not isinstance(value, list):
        value = [value]
    if not value:
        msg = f"{where}: {name!r} has an empty list of values"
        raise SpecError(msg)
    if isinstance(value[0], dict) or any(isinstance(v, dict) for v in value):
        msg = f"{where}: {name!r} must be a value or a list of values, not a table"
        raise SpecError(msg)
    return list(value)


def _seeds(where: str, value: Any) -> list[int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            msg = f"{where}: seeds must be >= 1 (a count) or a list; got {value}"
            raise SpecError(msg)
        return list(range(int(value)))
    if isinstance(value, list) and value:
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if ok and all(v >= 0 for v in value) and len(set(value)) == len(value):
            return list(value)
    msg = f"{where}: seeds must be a count or a list of distinct integers >= 0; got {value!r}"
    raise SpecError(msg)


def _param_axes(
    where: str, table: Any, fields: dict[str, Any], fixed: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """``[(name, candidates), ...]`` for a table of task or training parameters."""
    if not isinstance(table, dict):
        msg = f"{where} must be a table; got {type(table).__name__}"
        raise SpecError(msg)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        msg = f"{where}: unknown parameter(s) {unknown}; known: {sorted(fields)}"
        raise SpecError(msg)
    axes = []
    for name in sorted(table):
        if name in fixed:
            msg = f"{where}: {name!r} is fixed to {fixed[name]} by the sweep"
            raise SpecError(msg)
        seq = isinstance(fields[name], tuple)
        axes.append((name, _axis(where, name, table[name], seq)))
    return axes


_TRAIN_FIELDS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
# Real-valued settings: TOML's ``lr = 1`` and ``lr = 1.0`` must be the same model
# (same key, same seed), so integers are made floats before the key is formed.
_TRAIN_FLOATS = {
    f.name
    for f in dataclasses.fields(TrainConfig)
    if f.type in ("float", "float | None", float)
}


def _task_fields(task: str) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(TASKS[task])}


#: What one [[grid]] block varies: task name, constructions, hidden sizes, seeds, and
#: the ``(name, candidates)`` axes of task and training parameters.
_BlockAxes = tuple[
    str, list[Any], list[Any], list[int], list[tuple[Any, ...]], list[tuple[Any, ...]]
]


def _block_axes(where: str, block: dict[str, Any], top: dict[str, Any]) -> _BlockAxes:
    unknown = sorted(set(block) - _BLOCK_KEYS)
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; known: {sorted(_BLOCK_KEYS)}"
        raise SpecError(msg)
    task = block.get("task")
    if not isinstance(task, str) or task not in TASKS:
        msg = f"{where}: task must be one of {sorted(TASKS)}; got {task!r}"
        raise SpecError(msg)
    where = f"{where} (task {task!r})"
    cons = _axis(where, "construction", block.get("construction"), False)
    bad = [c for c in cons if c not in CONSTRUCTIONS]
    if bad or "construction" not in block:
        msg = f"{where}: construction must be among {list(CONSTRUCTIONS)}; got {bad or None}"
        raise SpecError(msg)
    hidden = _axis(where, "hidden", block.get("hidden"), False)
    if "hidden" not in block or not all(
        isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden
    ):
        msg = f"{where}: hidden must be a positive integer or a list of them"
        raise SpecError(msg)
    seeds = _seeds(where, block.get("seeds", top.get("seeds", 1)))
    task_axes = _param_axes(
        f"{where}.task_params", block.get("task_params", {}), _task_fields(task), {}
    )
    block_train = block.get("train", {})
    if not isinstance(block_train, dict):
        msg = f"{where}.train must be a table; got {type(block_train).__name__}"
        raise SpecError(msg)
    train_table = {**top.get("train", {}), **block_train}
    train_axes = _param_axes(f"{where}.train", train_table, _TRAIN_FIELDS, _FIXED_TRAIN)
    return task, cons, hidden, seeds, task_axes, train_axes


def _resolve(
    where: str,
    task_name: str,
    task_params: dict[str, Any],
    train_over: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the task and the config of one combination; errors name ``where``."""
    try:
        task = make_task(task_name, **task_params)
    except (TypeError, ValueError) as exc:
        msg = f"{where}: invalid task parameters {task_params}: {exc}"
        raise SpecError(msg) from exc
    base = default_config(task).to_dict()
    over = {
        k: float(v)
        if k in _TRAIN_FLOATS and isinstance(v, int) and not isinstance(v, bool)
        else v
        for k, v in train_over.items()
    }
    try:
        cfg = TrainConfig.from_dict({**base, **over, **_FIXED_TRAIN})
    except (TypeError, ValueError) as exc:
        msg = f"{where}: invalid training settings {train_over}: {exc}"
        raise SpecError(msg) from exc
    if cfg.copy_curriculum and task.name != "copy":
        msg = f"{where}: copy_curriculum applies to the copy task only"
        raise SpecError(msg)
    return task.to_dict(), cfg.to_dict()


def _expand_block(
    where: str,
    block: dict[str, Any],
    top: dict[str, Any],
    diagnose: dict[str, Any],
    base_seed: int,
) -> list[Cell]:
    task, cons, hidden, seeds, task_axes, train_axes = _block_axes(where, block, top)
    cells = []
    names_t = [n for n, _ in task_axes]
    names_c = [n for n, _ in train_axes]
    for tv in itertools.product(*(v for _, v in task_axes)):
        for cv in itertools.product(*(v for _, v in train_axes)):
            combo = f"{where} (task {task!r}, {dict(zip(names_t + names_c, tv + cv, strict=True))})"
            tdict, cdict = _resolve(
                combo,
                task,
                dict(zip(names_t, tv, strict=True)),
                dict(zip(names_c, cv, strict=True)),
            )
            for c, h, s in itertools.product(cons, hidden, seeds):
                cells.append(_make_cell(tdict, c, h, s, cdict, diagnose, base_seed))
    return cells


def _make_cell(
    tdict: dict[str, Any],
    construction: str,
    hidden: int,
    seed: int,
    cdict: dict[str, Any],
    diagnose: dict[str, Any],
    base_seed: int,
) -> Cell:
    ident_cfg = {k: v for k, v in cdict.items() if k != "n_threads"}
    material = {
        "task": tdict,
        "construction": construction,
        "hidden": hidden,
        "config": ident_cfg,
        "replicate": seed,
    }
    digest = hashlib.sha256(_canon({**material, "base_seed": base_seed}).encode())
    key = f"{tdict['name']}-{construction}-h{hidden}-r{seed}-{digest.hexdigest()[:10]}"
    return Cell(
        key=key,
        task=tdict,
        construction=construction,
        hidden=hidden,
        seed=seed,
        train_seed=derive_seed(material, base_seed),
        config=cdict,
        diagnose=dict(diagnose),
    )


def _diagnose(table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        msg = f"[diagnose] must be a table; got {type(table).__name__}"
        raise SpecError(msg)
    unknown = sorted(set(table) - set(DEFAULT_DIAGNOSE))
    if unknown:
        msg = f"[diagnose]: unknown key(s) {unknown}; known: {sorted(DEFAULT_DIAGNOSE)}"
        raise SpecError(msg)
    out = {**DEFAULT_DIAGNOSE, **table}
    a = out["alpha"]
    real = isinstance(a, numbers.Real) and not isinstance(a, bool)
    if not (real and 0 < float(a) <= 1):
        msg = f"[diagnose]: alpha must be a number in (0, 1]; got {a!r}"
        raise SpecError(msg)
    for name, least in (("eval_size", 1), ("eval_seed", 0)):
        v = out[name]
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= least):
            msg = f"[diagnose]: {name} must be an integer >= {least}; got {v!r}"
            raise SpecError(msg)
    out["alpha"] = float(a)
    return out


def parse_spec(data: dict[str, Any], *, name: str = "sweep") -> SweepSpec:
    """Expand a parsed TOML document (a dict) into a :class:`SweepSpec`.

    Raises
    ------
    SpecError
        Naming the block (``grid[i]``), task, parameter or combination at fault.
    """
    if not isinstance(data, dict):
        msg = f"a sweep spec must be a table; got {type(data).__name__}"
        raise SpecError(msg)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        msg = f"unknown top-level key(s) {unknown}; known: {sorted(_TOP_KEYS)}"
        raise SpecError(msg)
    blocks = data.get("grid")
    if not isinstance(blocks, list) or not blocks:
        msg = "a sweep spec needs at least one [[grid]] block"
        raise SpecError(msg)
    base_seed = data.get("base_seed", 0)
    if not isinstance(base_seed, int) or isinstance(base_seed, bool) or base_seed < 0:
        msg = f"base_seed must be an integer >= 0; got {base_seed!r}"
        raise SpecError(msg)
    if not isinstance(data.get("train", {}), dict):
        msg = "[train] must be a table"
        raise SpecError(msg)
    diagnose = _diagnose(data.get("diagnose", {}))
    cells: dict[str, Cell] = {}
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            msg = f"grid[{i}] must be a table"
            raise SpecError(msg)
        for cell in _expand_block(f"grid[{i}]", block, data, diagnose, base_seed):
            cells.setdefault(cell.key, cell)
    ordered = tuple(sorted(cells.values(), key=lambda c: c.key))
    return SweepSpec(name=str(data.get("name", name)), cells=ordered, diagnose=diagnose)


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and expand a TOML sweep spec (see the module docstring for the format)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise SpecError(msg) from exc
    return parse_spec(data, name=path.stem)
