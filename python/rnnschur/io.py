"""Network files: the package's own format (``.npz`` / ``.safetensors``) and foreign ones.

:func:`save_network` (also :meth:`rnnschur.Network.save`) writes

* ``.npz`` (any suffix but ``.safetensors``): the arrays by field name, a JSON entry
  ``__meta__`` (``"format": "rnnschur.network"``, ``"format_version": 1``, library
  version, leak, batch_first, the list of arrays with dtype and shape) and
  ``__sha256__`` over metadata and arrays — the conventions of the training
  checkpoints (:func:`rnnschur.save`);
* ``.safetensors``: the same arrays, with the same JSON and SHA-256 (hex) in the
  file's string metadata (keys ``__meta__`` and ``__sha256__``).

Both are written to a temporary file in the target directory, flushed and renamed.
:func:`load_network` reads those, training checkpoints (``"rnnschur.model"``), and
foreign files: ``.npz`` / ``.safetensors`` of named arrays (:func:`rnnschur.from_arrays`
names or torch state-dict keys) and ``.pt`` / ``.pth`` torch state dicts.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write, check_listed_arrays, content_digest
from .importers import from_torch
from .network import Network, UnsupportedNetworkError

# The one place that imports from the training module (checkpoint conventions); the
# training package's restructuring only has to re-point these names.
from .training import CheckpointError, TrainedModel
from .training import load as _load_trained_model

__all__ = [
    "NETWORK_FORMAT",
    "NETWORK_FORMAT_VERSION",
    "CheckpointError",
    "content_digest",
    "from_arrays",
    "load_network",
    "save_network",
]

#: Format name and version written into every saved network.
NETWORK_FORMAT = "rnnschur.network"
NETWORK_FORMAT_VERSION = 1
_TRAINED_FORMAT = "rnnschur.model"
_META = "__meta__"
_SHA = "__sha256__"
_FIELDS = ("W_xh", "W_hh", "W_hy", "b_h", "b_y", "h0")
_SAFETENSORS_EXTRA = 'pip install "rnnschur[safetensors]"'


def _meta_of(net: Network, arrays: dict[str, np.ndarray]) -> bytes:
    from . import __version__

    meta = {
        "format": NETWORK_FORMAT,
        "format_version": NETWORK_FORMAT_VERSION,
        "library_version": __version__,
        "leak": net.leak,
        "batch_first": net.batch_first,
        "arrays": {k: [v.dtype.str, list(v.shape)] for k, v in arrays.items()},
    }
    return json.dumps(meta, sort_keys=True).encode()


def save_network(net: Network, path: str | os.PathLike[str]) -> Path:
    """Write ``net`` to ``path`` (``.npz``, or ``.safetensors`` by suffix), atomically.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
        Written exactly at this path; its directory must exist.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ImportError
        A ``.safetensors`` path without the ``safetensors`` package.
    """
    if not isinstance(net, Network):
        msg = f"net must be a Network; got {type(net).__name__}"
        raise TypeError(msg)
    path = _check_save_path(path)
    arrays = net.arrays()
    meta_bytes = _meta_of(net, arrays)
    digest = content_digest(meta_bytes, arrays)
    if path.suffix == ".safetensors":
        st = _safetensors_numpy()
        meta = {_META: meta_bytes.decode(), _SHA: digest.hex()}
        data = st.save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta)
    else:
        payload = dict(arrays)
        payload[_META] = np.frombuffer(meta_bytes, dtype=np.uint8)
        payload[_SHA] = np.frombuffer(digest, dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **payload)  # type: ignore[arg-type]  # numpy stub: **kwds
        data = buf.getvalue()
    atomic_write(path, data)
    return path


def load_network(
    path: str | os.PathLike[str],
    *,
    leak: float | None = None,
    batch_first: bool | None = None,
    prefix: str | None = None,
    readout: str | None = None,
) -> Network:
    """Read a network file: rnnschur's own, a training checkpoint, or a foreign one.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz``, ``.safetensors``, ``.pt`` / ``.pth`` (see the module docstring).
    leak : float, optional
        Foreign files: the leak (default 1; files do not record it). Own files
        store it; a different value here is an error.
    batch_first : bool, optional
        The layout to record (foreign files default to False; own files keep theirs
        unless this is given).
    prefix, readout : str, optional
        For state-dict files: key prefixes of the recurrent layer and of the
        readout (see :func:`rnnschur.from_torch`).

    Returns
    -------
    Network

    Raises
    ------
    CheckpointError
        An own file that is truncated, tampered with, of an unknown version or
        inconsistent.
    UnsupportedNetworkError
        A foreign file holding something a Network cannot represent.
    """
    if not isinstance(path, (str, os.PathLike)):
        msg = f"path must be a str or os.PathLike; got {type(path).__name__}"
        raise TypeError(msg)
    suffix = Path(path).suffix.lower()
    if suffix in (".pt", ".pth"):
        return from_torch(
            path,
            readout,
            prefix=prefix,
            batch_first=batch_first,
            leak=1.0 if leak is None else leak,
        )
    if suffix == ".safetensors":
        entries, meta_bytes, sha = _read_safetensors(path)
    else:
        raw = Path(path).read_bytes()
        if not raw.startswith(b"PK\x03\x04"):
            why = "empty" if not raw else f"not an .npz (zip) file (suffix {suffix!r})"
            _fail(path, why)
        entries = _read_npz(path, raw)
        meta_arr, sha_arr = entries.pop(_META, None), entries.pop(_SHA, None)
        meta_bytes = None if meta_arr is None else meta_arr.tobytes()
        sha = None if sha_arr is None else sha_arr.tobytes()
    if meta_bytes is None:  # a foreign archive of named arrays
        if sha is not None:
            _fail(path, f"entry {_SHA!r} without {_META!r}")
        return _foreign(entries, leak, batch_first, prefix, readout)
    net = _own(path, meta_bytes, sha, entries)
    if leak is not None and float(leak) != net.leak:
        msg = f"leak={leak} contradicts the leak {net.leak} stored in {path!s}"
        raise ValueError(msg)
    if batch_first is not None:
        net = dataclasses.replace(net, batch_first=batch_first)
    return net


def _foreign(
    entries: dict[str, np.ndarray],
    leak: float | None,
    batch_first: bool | None,
    prefix: str | None,
    readout: str | None,
) -> Network:
    lk = 1.0 if leak is None else leak
    bf = False if batch_first is None else batch_first
    if prefix is not None or readout is not None:
        return from_torch(entries, readout, prefix=prefix, batch_first=bf, leak=lk)
    return from_arrays(leak=lk, batch_first=bf, **entries)


def _own(
    path: Any, meta_bytes: bytes, sha: bytes | None, entries: dict[str, np.ndarray]
) -> Network:
    """Verify and build a network from an own file's metadata and arrays."""
    try:
        meta = json.loads(meta_bytes.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(path, f"metadata is not valid JSON ({exc})")
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt == _TRAINED_FORMAT:
        return _from_trained(_load_trained_model(path))
    if fmt != NETWORK_FORMAT:
        _fail(path, f"format is {fmt!r}, not {NETWORK_FORMAT!r}")
    if meta.get("format_version") != NETWORK_FORMAT_VERSION:
        _fail(
            path,
            f"format version {meta.get('format_version')!r} is not supported "
            f"(this library reads version {NETWORK_FORMAT_VERSION})",
        )
    if sha is None or sha != content_digest(meta_bytes, entries):
        _fail(path, "checksum mismatch (the file was modified or corrupted)")
    try:
        return _network_from_meta(meta, entries)
    except (KeyError, TypeError, ValueError) as exc:
        _fail(path, f"inconsistent content ({type(exc).__name__}: {exc})")
    raise AssertionError  # pragma: no cover - _fail raises


def _network_from_meta(meta: dict[str, Any], entries: dict[str, np.ndarray]) -> Network:
    check_listed_arrays(meta["arrays"], entries)
    if not set(entries) <= set(_FIELDS):
        msg = f"arrays {sorted(set(entries) - set(_FIELDS))} are not network fields"
        raise ValueError(msg)
    leak = meta["leak"]
    if not isinstance(leak, float) or not math.isfinite(leak):
        msg = f"leak must be a finite float; got {leak!r}"
        raise TypeError(msg)
    if not isinstance(meta["batch_first"], bool):
        msg = "batch_first must be a bool"
        raise TypeError(msg)
    return Network(**entries, leak=leak, batch_first=meta["batch_first"])


def _from_trained(model: TrainedModel) -> Network:
    """The network of a training checkpoint (no biases, ``h_0 = 0``, leak 1)."""
    return model.network


# ---------------------------------------------------------------------------- arrays

_ALIASES = {
    "W_xh": ("W_xh", "W_in"),
    "W_hh": ("W_hh", "W_rec"),
    "W_hy": ("W_hy", "W_out"),
    "b_h": ("b_h", "b_rec"),
    "b_y": ("b_y", "b_out"),
    "h0": ("h0", "init_state"),
}
# PsychRNN stores masks next to the raw weights; the network it runs uses the
# masked (and, with Dale's law, rectified) matrices, which the raw ones are not.
_MASKS = ("rec_connectivity", "input_connectivity", "output_connectivity")
_DALE = ("Dale_rec", "Dale_out")


def _check_psychrnn_masks(arrays: dict[str, Any]) -> set[str]:
    for k in _MASKS:
        if k in arrays and not np.all(np.asarray(arrays[k]) == 1):
            msg = f"{k} is not all ones: W_* are not the effective weights; pass the masked matrices"
            raise UnsupportedNetworkError(msg)
    for k in _DALE:
        if k in arrays:
            d = np.asarray(arrays[k])
            if d.ndim != 2 or not np.array_equal(d, np.eye(d.shape[0])):
                msg = (
                    f"{k} is not the identity (Dale's law): pass the effective matrices"
                )
                raise UnsupportedNetworkError(msg)
    return {k for k in (*_MASKS, *_DALE) if k in arrays}


def _torch_style(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last.startswith(("weight_", "bias_")) or last in ("weight", "bias")


def from_arrays(
    *, leak: float = 1.0, batch_first: bool = False, **arrays: Any
) -> Network:
    """A :class:`~rnnschur.Network` from named arrays (e.g. the entries of an ``.npz``).

    Accepted names (one per field, shapes as in :class:`~rnnschur.Network`):
    ``W_xh|W_in``, ``W_hh|W_rec``, ``W_hy|W_out``, ``b_h|b_rec``, ``b_y|b_out``,
    ``h0|init_state`` (``init_state`` may be (1, Nh)). PsychRNN's mask entries
    (``*_connectivity``, ``Dale_*``) are accepted only when trivial (all ones /
    identity). Torch state-dict names (``weight_ih_l0``, ``rnn.weight_hh_l0``,
    ``readout.weight``, ...) are read as by :func:`from_torch`.

    Parameters
    ----------
    leak : float, default 1.0
        The leak ``a``: arrays alone do not say (PsychRNN's ``alpha = dt/tau``).
    batch_first : bool, default False
    **arrays : array_like

    Returns
    -------
    Network

    Raises
    ------
    UnsupportedNetworkError
        Unknown names, two names for one field, a missing weight, non-trivial masks.
    """
    if any(_torch_style(k) for k in arrays):
        return from_torch(arrays, batch_first=batch_first, leak=leak)
    used = _check_psychrnn_masks(arrays)
    fields: dict[str, Any] = {}
    for field, names in _ALIASES.items():
        present = [n for n in names if n in arrays]
        if len(present) > 1:
            msg = f"both {present[0]!r} and {present[1]!r} given for {field}"
            raise UnsupportedNetworkError(msg)
        if present:
            fields[field] = arrays[present[0]]
            used.add(present[0])
    extra = sorted(set(arrays) - used)
    if extra:
        known = [n for names in _ALIASES.values() for n in names]
        msg = f"unknown array names {extra}; expected among {known} or torch state-dict names"
        raise UnsupportedNetworkError(msg)
    for field in ("W_xh", "W_hh", "W_hy"):
        if field not in fields:
            msg = f"missing {field} (one of {list(_ALIASES[field])})"
            raise UnsupportedNetworkError(msg)
    h0 = fields.get("h0")
    if h0 is not None and np.ndim(h0) == 2 and np.shape(h0)[0] == 1:
        fields["h0"] = np.asarray(h0)[0]  # PsychRNN's init_state is (1, Nh)
    return Network(**fields, leak=leak, batch_first=batch_first)


# ------------------------------------------------------------------------ raw files


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy as st
    except ImportError:
        msg = f"safetensors files need the safetensors package: {_SAFETENSORS_EXTRA}"
        raise ImportError(msg) from None
    return st


def _read_safetensors(
    path: Any,
) -> tuple[dict[str, np.ndarray], bytes | None, bytes | None]:
    """Arrays and (own files) the metadata JSON bytes and SHA-256 digest."""
    st = _safetensors_numpy()
    from safetensors import SafetensorError, safe_open

    raw = Path(path).read_bytes()
    try:
        entries = dict(st.load(raw))
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, ValueError, OSError) as exc:
        _fail(path, f"unreadable safetensors file ({type(exc).__name__}: {exc})")
    meta_s, sha_s = meta.get(_META), meta.get(_SHA)
    try:
        sha = None if sha_s is None else bytes.fromhex(sha_s)
    except ValueError:
        _fail(path, f"{_SHA!r} is not a hex digest")
    if meta_s is None and sha is not None:
        _fail(path, f"metadata {_SHA!r} without {_META!r}")
    return entries, None if meta_s is None else meta_s.encode(), sha


def _read_npz(path: Any, raw: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        _fail(path, f"unreadable or truncated ({type(exc).__name__}: {exc})")
    raise AssertionError  # pragma: no cover


def _fail(path: Any, why: str) -> None:
    msg = f"{path!s}: not a valid network file: {why}"
    raise CheckpointError(msg)


def _check_save_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        msg = f"path must be a str or os.PathLike; got {type(path).__name__}"
        raise TypeError(msg)
    p = Path(path)
    if p.is_dir():
        msg = f"path {str(p)!r} is a directory; expected a file path"
        raise IsADirectoryError(msg)
    if not p.parent.is_dir():
        msg = f"cannot save to {str(p)!r}: directory {str(p.parent)!r} does not exist"
        raise FileNotFoundError(msg)
    return p
