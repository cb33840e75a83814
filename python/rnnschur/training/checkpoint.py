"""The checkpoint format: :func:`save` and :func:`load` of a :class:`TrainedModel`.

One ``.npz`` per model: the arrays, a JSON metadata entry (:data:`FORMAT_NAME`,
:data:`FORMAT_VERSION`, library version, task, construction, hidden size, seed,
config, array list) and a SHA-256 over metadata and arrays. Writes are atomic; reads
verify everything before a model is built.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from .._validation import check_path, is_integer
from ..constructions import CONSTRUCTIONS, W_from_cayley
from ..files import atomic_write, check_listed_arrays, content_digest
from ..tasks import task_from_dict
from .config import TrainConfig
from .model import TrainedModel

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "CheckpointError", "load", "save"]

#: Format name and version written into every checkpoint; :func:`load` reads only
#: this version.
FORMAT_NAME = "rnnschur.model"
FORMAT_VERSION = 1
_META = "__meta__"
# rnnschur.io.NETWORK_FORMAT (io imports this package, so the name is repeated here
# only to point a reader of the wrong file type at the right function)
_NETWORK_FORMAT = "rnnschur.network"
#: The Cayley parameters each Cayley construction stores (as ``cayley_<name>``).
_CAYLEY_ARRAYS = {"cayley": ("A", "D", "D_blocks"), "cayley_free": ("A", "D")}
_SHA = "__sha256__"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated, tampered with or of another format."""


def _model_arrays(model: TrainedModel) -> dict[str, np.ndarray]:
    arrays = {"W_xh": model.W_xh, "W_hh": model.W_hh, "W_hy": model.W_hy}
    if model.cayley is not None:
        arrays.update({f"cayley_{k}": v for k, v in model.cayley.items()})
    for k, v in model.history.items():
        arrays[f"history_{k}"] = np.asarray(v, dtype=np.float64)
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def save(path: str | os.PathLike[str], model: TrainedModel) -> Path:
    """Write ``model`` to ``path`` (one ``.npz``, exactly at ``path``), atomically.

    The file holds the arrays, a JSON metadata entry (format name and version, library
    version, task, construction, hidden size, seed, config, array list) and a SHA-256
    of metadata and arrays. It is written to a temporary file in the same directory,
    flushed to disk and renamed over ``path``, so a crash leaves the previous file
    intact.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(model, TrainedModel):
        msg = f"model must be a TrainedModel; got {type(model).__name__}"
        raise TypeError(msg)
    path = check_path("path", path)
    directory = path.parent
    if path.is_dir():
        msg = f"path {str(path)!r} is a directory; expected a file path"
        raise IsADirectoryError(msg)
    if not directory.is_dir():
        msg = (
            f"cannot save to {str(path)!r}: directory {str(directory)!r} does not exist"
        )
        raise FileNotFoundError(msg)
    arrays = _model_arrays(model)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": model.version,
        "task": model.task.to_dict(),
        "construction": model.construction,
        "hidden": model.hidden,
        "seed": model.seed,
        "config": model.config.to_dict(),
        "history_keys": list(model.history),
        "arrays": {k: [v.dtype.str, list(v.shape)] for k, v in arrays.items()},
    }
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    payload = dict(arrays)
    payload[_META] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload[_SHA] = np.frombuffer(content_digest(meta_bytes, arrays), dtype=np.uint8)

    def write(fh: IO[bytes]) -> None:
        np.savez(fh, **payload)  # type: ignore[arg-type]  # numpy stubs: kwargs

    return atomic_write(path, write)


def _fail(path: str | os.PathLike[str], why: str) -> NoReturn:
    msg = f"{path}: not a valid rnnschur checkpoint: {why}"
    raise CheckpointError(msg)


def load(path: str | os.PathLike[str]) -> TrainedModel:
    """Read a model written by :func:`save`.

    Everything is read and verified (format name and version, SHA-256, array dtypes and
    shapes, finite weights, task and config, for Cayley models the form of ``A`` and
    ``D`` (block form for ``cayley``, dense for ``cayley_free``) and ``W_hh =
    W_from_cayley(A, D)``) before a model is built; any problem with
    the content raises :class:`CheckpointError` (a ``ValueError``) and nothing is
    returned. A missing or unreadable path raises the usual ``OSError``.
    """
    raw = check_path("path", path).read_bytes()
    if not raw.startswith(b"PK\x03\x04"):
        _fail(path, "not an .npz (zip) file" + (" (empty)" if not raw else ""))
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            entries = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        _fail(path, f"unreadable or truncated ({type(exc).__name__}: {exc})")
    for key in (_META, _SHA):
        if key not in entries:
            _fail(path, f"missing entry {key!r}")
    meta_arr = entries.pop(_META)
    sha = entries.pop(_SHA)
    if meta_arr.dtype != np.uint8 or meta_arr.ndim != 1:
        _fail(path, "metadata entry has the wrong type")
    meta_bytes = meta_arr.tobytes()
    try:
        meta = json.loads(meta_bytes.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(path, f"metadata is not valid JSON ({exc})")
    if isinstance(meta, dict) and meta.get("format") == _NETWORK_FORMAT:
        _fail(
            path,
            "this is a saved network (rnnschur.save_network / Network.save), not a "
            "trained model: read it with rnnschur.load_network",
        )
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        _fail(path, f"format is not {FORMAT_NAME!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        _fail(
            path,
            f"format version {meta.get('format_version')!r} is not supported "
            f"(this library reads version {FORMAT_VERSION})",
        )
    if sha.dtype != np.uint8 or sha.tobytes() != content_digest(meta_bytes, entries):
        _fail(path, "checksum mismatch (the file was modified or corrupted)")
    try:
        return _model_from(meta, entries)
    except (KeyError, TypeError, ValueError) as exc:
        _fail(path, f"inconsistent content ({type(exc).__name__}: {exc})")
    raise AssertionError  # pragma: no cover - _fail always raises


def _check_cayley(
    cayley: dict[str, np.ndarray], W_hh: np.ndarray, hidden: int, dtype: np.dtype[Any]
) -> None:
    """Stored ``A``, ``D`` (and, for ``cayley``, ``D_blocks``) are of the trained form
    and give ``W_hh``; without ``D_blocks`` (``cayley_free``) ``D`` is dense."""
    for k in ("A", "D"):
        a = cayley[k]
        if a.shape != (hidden, hidden) or a.dtype != dtype:
            msg = (
                f"cayley_{k} must be {dtype}{(hidden, hidden)}; got {a.dtype}{a.shape}"
            )
            raise ValueError(msg)
    blocks = cayley.get("D_blocks")
    if blocks is not None and blocks.dtype != np.int64:
        msg = f"cayley_D_blocks must be int64; got {blocks.dtype}"
        raise ValueError(msg)
    # checks: A exactly skew, D exactly in the block form of D_blocks, all finite
    W = W_from_cayley(
        cayley["A"].astype(np.float64),
        cayley["D"].astype(np.float64),
        block_sizes=blocks,
        free_D=blocks is None,
    )
    # W_hh is W rounded to dtype; allow for another machine's rounding of W
    tol = 16 * hidden * np.finfo(dtype).eps * max(1.0, float(np.abs(W).max()))
    if not np.abs(W_hh.astype(np.float64) - W).max() <= tol:
        msg = "W_hh does not equal W_from_cayley(cayley_A, cayley_D)"
        raise ValueError(msg)


def _model_from(meta: dict[str, Any], entries: dict[str, np.ndarray]) -> TrainedModel:
    check_listed_arrays(meta["arrays"], entries)
    task = task_from_dict(meta["task"])
    config = TrainConfig.from_dict(meta["config"])
    construction = meta["construction"]
    if construction not in CONSTRUCTIONS:
        msg = f"unknown construction {construction!r}"
        raise ValueError(msg)
    hidden, seed = meta["hidden"], meta["seed"]
    if not (is_integer(hidden) and is_integer(seed)):
        msg = "hidden and seed must be integers"
        raise TypeError(msg)
    dtype = np.dtype(config.dtype)
    expect = {
        "W_xh": (hidden, task.n_inputs),
        "W_hh": (hidden, hidden),
        "W_hy": (task.n_outputs, hidden),
    }
    for k, shape in expect.items():
        if entries[k].shape != shape or entries[k].dtype != dtype:
            msg = (
                f"{k} must be {dtype}{shape}; got {entries[k].dtype}{entries[k].shape}"
            )
            raise ValueError(msg)
    for k in expect:
        if not np.all(np.isfinite(entries[k])):
            msg = f"{k} contains non-finite values"
            raise ValueError(msg)
    cayley = None
    stored = {k for k in entries if k.startswith("cayley_")}
    if construction in _CAYLEY_ARRAYS:
        names = _CAYLEY_ARRAYS[construction]
        if stored != {f"cayley_{k}" for k in names}:
            msg = f"{construction!r} stores cayley_{names}; got {sorted(stored)}"
            raise ValueError(msg)
        cayley = {k: entries[f"cayley_{k}"] for k in names}
        _check_cayley(cayley, entries["W_hh"], hidden, dtype)
    elif stored:
        msg = f"Cayley arrays {sorted(stored)} stored for construction {construction!r}"
        raise ValueError(msg)
    keys = meta["history_keys"]
    if not isinstance(keys, list) or {f"history_{k}" for k in keys} != {
        k for k in entries if k.startswith("history_")
    }:
        msg = "history_keys do not match the stored history arrays"
        raise ValueError(msg)
    history = {k: entries[f"history_{k}"] for k in keys}
    if len({v.shape for v in history.values()}) > 1 or any(
        v.ndim != 1 for v in history.values()
    ):
        msg = "history arrays must be 1-D and of equal length (one entry per epoch)"
        raise ValueError(msg)
    history_lists = {k: v.tolist() for k, v in history.items()}
    if not isinstance(meta["library_version"], str):
        msg = "library_version must be a string"
        raise TypeError(msg)
    return TrainedModel(
        W_xh=entries["W_xh"],
        W_hh=entries["W_hh"],
        W_hy=entries["W_hy"],
        task=task,
        construction=construction,
        hidden=hidden,
        config=config,
        seed=seed,
        history=history_lists,
        version=meta["library_version"],
        cayley=cayley,
    )
