"""Networks trained elsewhere as :class:`rnnschur.Network`: torch and Flax.

Each importer accepts exactly what a :class:`~rnnschur.Network` can represent — one
tanh layer ``h_t = (1 − a) h_{t−1} + a tanh(W_xh x_t + W_hh h_{t−1} + b_h)`` and a
linear readout ``y_t = W_hy h_t + b_y`` — and raises
:class:`~rnnschur.network.UnsupportedNetworkError` (a ``ValueError``) naming the key or
attribute of anything else: ReLU nonlinearity, several layers, bidirectional layers,
projections, gated cells (GRU/LSTM), parameters it cannot place, a missing readout.

What the weights alone cannot tell
----------------------------------
A state dict or a Flax parameter tree does not record the nonlinearity, the time
layout or a leak. They are taken to be tanh, time-major for torch (``batch_first``
argument, recorded from the module when a module is given) and batch-major for Flax
(``flax.linen.RNN``'s default), and leak 1 unless ``leak=`` says otherwise.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .network import Network, UnsupportedNetworkError

__all__ = ["from_flax", "from_torch"]

_TORCH_EXTRA = 'pip install "rnnschur[torch]"'
_RNN_KEY = re.compile(
    r"^(?P<p>(?:.*\.)?)(?P<w>weight|bias)_(?P<k>ih|hh|hr)(?P<l>_l\d+)?(?P<r>_reverse)?$"
)


def _to_numpy(value: Any, key: str) -> np.ndarray:
    """A float32/float64 ndarray from a NumPy/torch/JAX array, or TypeError naming ``key``."""
    if hasattr(value, "detach"):  # torch.Tensor
        if str(getattr(value, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            msg = (
                f"{key} has dtype {value.dtype}; convert the model with .float() first"
            )
            raise TypeError(msg)
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        msg = f"{key} must be a float32 or float64 array; got dtype {a.dtype}"
        raise TypeError(msg)
    return a


def _one_dtype(arrays: dict[str, np.ndarray]) -> None:
    dts = {k: a.dtype for k, a in arrays.items()}
    if len(set(dts.values())) > 1:
        listing = ", ".join(f"{k}: {d}" for k, d in dts.items())
        msg = f"the arrays have different dtypes ({listing}); cast them to one dtype"
        raise TypeError(msg)


def _flatten(tree: Mapping[str, Any], sep: str, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one flat dict with joined keys (non-array leaves dropped)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, sep, key + sep))
        elif hasattr(v, "shape") and hasattr(v, "dtype"):
            out[key] = v
    return out


# ----------------------------------------------------------------------------- torch


def _check_torch_module(mod: Any, where: str) -> None:
    """Refuse torch RNN modules that a Network cannot represent."""
    from torch import nn

    cls = type(mod).__name__
    if isinstance(mod, (nn.GRU, nn.LSTM, nn.GRUCell, nn.LSTMCell)):
        msg = f"{where}: {cls} is a gated cell; only tanh nn.RNN / nn.RNNCell are supported"
        raise UnsupportedNetworkError(msg)
    nl = getattr(mod, "nonlinearity", "tanh")
    if nl != "tanh" or getattr(mod, "mode", "RNN_TANH") != "RNN_TANH":
        msg = f"{where}.nonlinearity is {nl!r}; only 'tanh' is supported"
        raise UnsupportedNetworkError(msg)
    for attr, ok in (("num_layers", 1), ("bidirectional", False), ("proj_size", 0)):
        v = getattr(mod, attr, ok)
        if v != ok:
            msg = f"{where}.{attr} is {v!r}; only {ok!r} is supported"
            raise UnsupportedNetworkError(msg)


def _torch_module_state(obj: Any) -> tuple[dict[str, Any], str | None, bool]:
    """State dict, RNN prefix and batch_first of an nn.Module holding one RNN."""
    from torch import nn

    rnn_types = (nn.RNNBase, nn.RNNCellBase)
    found = [(n, m) for n, m in obj.named_modules() if isinstance(m, rnn_types)]
    if not found:
        msg = f"{type(obj).__name__} holds no nn.RNN / nn.RNNCell module"
        raise UnsupportedNetworkError(msg)
    if len(found) > 1:
        names = [n or "<root>" for n, _ in found]
        msg = f"the module holds {len(found)} recurrent modules {names}; only one is supported"
        raise UnsupportedNetworkError(msg)
    name, mod = found[0]
    _check_torch_module(mod, name or type(obj).__name__)
    prefix = f"{name}." if name else ""
    return dict(obj.state_dict()), prefix, bool(getattr(mod, "batch_first", False))


def _rnn_prefix(keys: list[str], prefix: str | None) -> tuple[str, str]:
    """(prefix, layer suffix) of the one tanh layer among state-dict ``keys``."""
    hits = []
    for k in keys:
        m = _RNN_KEY.match(k)
        if (
            m
            and (m["w"], m["k"]) == ("weight", "hh")
            and m["l"] in (None, "_l0")
            and not m["r"]
            and (prefix is None or m["p"] == prefix)
        ):
            hits.append((m["p"], m["l"] or ""))
    if not hits:
        where = "" if prefix is None else f" with prefix {prefix!r}"
        msg = f"no recurrent weight 'weight_hh_l0' or 'weight_hh'{where} among the keys {keys[:12]}"
        raise UnsupportedNetworkError(msg)
    if len(hits) > 1:
        msg = f"several recurrent layers {[p + 'weight_hh' + s for p, s in hits]}; pass prefix="
        raise UnsupportedNetworkError(msg)
    return hits[0]


def _rnn_arrays(
    sd: dict[str, Any], p: str, s: str
) -> tuple[dict[str, np.ndarray], set[str]]:
    """W_xh, W_hh, summed b_h of the layer at prefix ``p``, and the keys used."""
    for k in sd:
        m = _RNN_KEY.match(k)
        if not m or m["p"] != p:
            continue
        if m["r"]:
            msg = f"{k}: bidirectional layers are not supported"
            raise UnsupportedNetworkError(msg)
        if m["k"] == "hr":
            msg = f"{k}: projections (proj_size) are not supported"
            raise UnsupportedNetworkError(msg)
        if (m["l"] or "") != s:
            msg = f"{k}: only a single layer is supported (num_layers must be 1)"
            raise UnsupportedNetworkError(msg)
    used = {f"{p}weight_ih{s}", f"{p}weight_hh{s}"}
    for k in used:
        if k not in sd:
            msg = f"missing key {k!r}"
            raise UnsupportedNetworkError(msg)
    W_hh = _to_numpy(sd[f"{p}weight_hh{s}"], f"{p}weight_hh{s}")
    W_xh = _to_numpy(sd[f"{p}weight_ih{s}"], f"{p}weight_ih{s}")
    if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
        gated = W_hh.ndim == 2 and W_hh.shape[0] in (
            3 * W_hh.shape[1],
            4 * W_hh.shape[1],
        )
        why = " (a GRU/LSTM gate stack: gated cells are not supported)" if gated else ""
        msg = f"{p}weight_hh{s} has shape {tuple(W_hh.shape)}, not (Nh, Nh){why}"
        raise UnsupportedNetworkError(msg)
    out = {"W_xh": W_xh, "W_hh": W_hh}
    biases = [k for k in (f"{p}bias_ih{s}", f"{p}bias_hh{s}") if k in sd]
    if biases:
        bs = {k: _to_numpy(sd[k], k) for k in biases}
        _one_dtype({**bs, f"{p}weight_hh{s}": W_hh})
        for k, b in bs.items():
            if b.shape != (W_hh.shape[0],):
                msg = f"{k} has shape {tuple(b.shape)}, expected ({W_hh.shape[0]},)"
                raise UnsupportedNetworkError(msg)
        out["b_h"] = sum(bs.values())  # type: ignore[assignment]
        used |= set(biases)
    return out, used


def _readout_candidates(sd: dict[str, Any], skip: set[str], nh: int) -> list[str]:
    cands = []
    for k, v in sd.items():
        if k in skip or not (k == "weight" or k.endswith(".weight")):
            continue
        shape = tuple(getattr(v, "shape", ()))
        if len(shape) == 2 and shape[1] == nh:
            cands.append(k[: -len("weight")])
    return cands


def _readout_from(
    readout: Any, sd: dict[str, Any], skip: set[str], nh: int
) -> tuple[dict[str, np.ndarray], set[str]]:
    """W_hy, b_y from ``readout`` (module, dict, tuple, key prefix, or None = detect)."""
    if readout is None or isinstance(readout, str):
        if readout is None:
            cands = _readout_candidates(sd, skip, nh)
            if not cands:
                msg = f"no readout: no '<name>.weight' of shape (Ny, {nh}) in the state dict; pass readout= (an nn.Linear, its state dict or (weight, bias))"
                raise UnsupportedNetworkError(msg)
            if len(cands) > 1:
                msg = f"several possible readouts {[c + 'weight' for c in cands]}; pass readout= (one of these prefixes)"
                raise UnsupportedNetworkError(msg)
            q = cands[0]
        else:
            q = readout if readout == "" or readout.endswith(".") else readout + "."
            if q + "weight" not in sd:
                msg = f"readout={readout!r}: no key {q + 'weight'!r} in the state dict"
                raise UnsupportedNetworkError(msg)
        parts = {"weight": sd[q + "weight"]}
        if q + "bias" in sd:
            parts["bias"] = sd[q + "bias"]
        return _readout_arrays(parts, q), {q + k for k in parts}
    if hasattr(readout, "state_dict") and hasattr(readout, "weight"):
        if type(readout).__name__ != "Linear":
            msg = f"readout must be an nn.Linear; got {type(readout).__name__}"
            raise UnsupportedNetworkError(msg)
        return _readout_arrays(dict(readout.state_dict()), "readout."), set()
    if isinstance(readout, Mapping):
        extra = set(readout) - {"weight", "bias"}
        if extra or "weight" not in readout:
            msg = f"readout dict must have keys 'weight' and optionally 'bias'; got {sorted(readout)}"
            raise UnsupportedNetworkError(msg)
        return _readout_arrays(dict(readout), "readout."), set()
    if isinstance(readout, (tuple, list)) and len(readout) in (1, 2):
        return _readout_arrays(
            dict(zip(("weight", "bias"), readout, strict=False)), "readout."
        ), set()
    msg = f"readout must be an nn.Linear, a state dict, (weight, bias) or a key prefix; got {type(readout).__name__}"
    raise TypeError(msg)


def _readout_arrays(parts: dict[str, Any], q: str) -> dict[str, np.ndarray]:
    out = {"W_hy": _to_numpy(parts["weight"], q + "weight")}
    if parts.get("bias") is not None:
        out["b_y"] = _to_numpy(parts["bias"], q + "bias")
    return out


def _network_from_state(
    sd: dict[str, Any],
    readout: Any,
    prefix: str | None,
    *,
    strict: bool,
    batch_first: bool,
    leak: float,
) -> Network:
    """A Network from a flat torch-style state dict (tensors or arrays)."""
    keys = list(sd)
    if prefix and not prefix.endswith("."):
        prefix += "."
    p, s = _rnn_prefix(keys, prefix)
    arrays, used = _rnn_arrays(sd, p, s)
    nh = arrays["W_hh"].shape[0]
    ro, ro_used = _readout_from(readout, sd, used, nh)
    used |= ro_used
    arrays.update(ro)
    # a learned initial state stored as a parameter named h0 (any prefix)
    h0 = [k for k in keys if k not in used and k.rsplit(".", 1)[-1] in ("h0", "h_0")]
    if len(h0) == 1:
        a = _to_numpy(sd[h0[0]], h0[0])
        if a.size == nh and a.shape[-1] == nh:
            arrays["h0"] = a.reshape(nh)
            used.add(h0[0])
    if strict:
        extra = [k for k in keys if k not in used]
        if extra:
            msg = (
                f"keys {extra} are neither the tanh layer nor the readout (the network "
                "is more than one tanh layer + a linear readout?); pass prefix= (and "
                "readout=) to import only those parts"
            )
            raise UnsupportedNetworkError(msg)
    _one_dtype(arrays)
    return Network(**arrays, leak=leak, batch_first=batch_first)


def from_torch(
    obj: Any,
    readout: Any = None,
    *,
    prefix: str | None = None,
    batch_first: bool | None = None,
    leak: float = 1.0,
) -> Network:
    """A :class:`~rnnschur.Network` from a torch RNN, its state dict or a ``.pt`` file.

    Parameters
    ----------
    obj : nn.RNN, nn.RNNCell, nn.Module, dict, str or os.PathLike
        An ``nn.RNN`` (one layer, tanh, unidirectional), an ``nn.RNNCell`` (tanh), a
        module holding exactly one of them (and usually its ``nn.Linear`` readout),
        a state dict (keys with any prefix: ``rnn.weight_hh_l0``, ``readout.weight``;
        nested dicts are flattened with ``.``), or a ``.pt``/``.pth`` file of such a
        state dict (read with ``torch.load(weights_only=True)``).
    readout : nn.Linear, dict, tuple or str, optional
        The readout: a module, its state dict (``weight``, optional ``bias``),
        ``(weight, bias)``, or the key prefix of its entries in ``obj``'s state.
        Default: the one ``<name>.weight`` of shape ``(Ny, Nh)`` besides the RNN's.
    prefix : str, optional
        Key prefix of the recurrent layer (``"rnn."``). Without it every key of the
        state dict must belong to the layer or the readout; with it, keys outside
        the prefix and the readout are ignored.
    batch_first : bool, optional
        Recorded layout; default the module's ``batch_first`` (False for a state
        dict, which does not store it).
    leak : float, default 1.0
        For a leaky loop around an ``nn.RNNCell``; ``nn.RNN`` itself has leak 1.

    Returns
    -------
    Network
        In the tensors' dtype; ``b_h = bias_ih + bias_hh``; a parameter named
        ``h0`` (any prefix) of ``Nh`` values becomes the learned initial state.

    Raises
    ------
    UnsupportedNetworkError
        ReLU, ``num_layers > 1``, bidirectional, ``proj_size``, GRU/LSTM, unplaceable
        keys, a missing or ambiguous readout (the message names the key/attribute).
    TypeError
        Half-precision or mixed dtypes, a wrong argument type.
    ImportError
        A module or a file was given and torch is not installed.
    """
    bf = False
    strict = prefix is None
    if isinstance(obj, (str, os.PathLike)):
        obj = _torch_load(obj)
    if isinstance(obj, Mapping):
        sd = _flatten(obj, ".")
    elif hasattr(obj, "named_modules") and hasattr(obj, "state_dict"):
        sd, found_prefix, bf = _torch_module_state(obj)
        prefix = found_prefix if prefix is None else prefix
    else:
        msg = f"obj must be a torch module, a state dict or a path; got {type(obj).__name__}"
        raise TypeError(msg)
    return _network_from_state(
        sd,
        readout,
        prefix,
        strict=strict,
        batch_first=bf if batch_first is None else batch_first,
        leak=leak,
    )


def _torch_load(path: Any) -> Any:
    try:
        import torch
    except ImportError:
        msg = f"reading {path!s} needs torch: {_TORCH_EXTRA}"
        raise ImportError(msg) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError) as exc:
        msg = (
            f"{path!s} is not a weights-only torch file (a pickled module cannot be "
            f"read safely; save model.state_dict() instead): {exc}"
        )
        raise UnsupportedNetworkError(msg) from None


# ------------------------------------------------------------------------------ flax

_GATED_FLAX = {
    "ii",
    "if",
    "ig",
    "io",
    "hi",
    "hf",
    "hg",
    "ho",
    "ir",
    "iz",
    "in",
    "hr",
    "hz",
    "hn",
}


def _flax_cell(flat: dict[str, Any]) -> str:
    """Path prefix ``p`` of the one SimpleCell (``p + "i/kernel"``, ``p + "h/kernel"``)."""
    cells = sorted(
        k[: -len("i/kernel")]
        for k in flat
        if k.endswith("i/kernel") and (k == "i/kernel" or k.endswith("/i/kernel"))
    )
    cells = [p for p in cells if p + "h/kernel" in flat]
    if not cells:
        gated = sorted({k.split("/")[-2] for k in flat if "/" in k} & _GATED_FLAX)
        why = (
            f" (found gate parameters {gated}: GRU/LSTM cells are not supported)"
            if gated
            else ""
        )
        msg = f"no SimpleCell parameters ('i/kernel', 'i/bias', 'h/kernel') among {sorted(flat)[:12]}{why}"
        raise UnsupportedNetworkError(msg)
    if len(cells) > 1:
        msg = f"several SimpleCells {cells}: stacked layers are not supported"
        raise UnsupportedNetworkError(msg)
    return cells[0]


def _flax_readout(
    flat: dict[str, np.ndarray], readout: Any, used: set[str], nh: int
) -> dict[str, np.ndarray]:
    """The Dense readout's ``{'kernel', 'bias'}``; adds the keys it takes to ``used``."""
    if readout is None or isinstance(readout, str):
        if readout is None:
            cands = [
                k[: -len("kernel")]
                for k in flat
                if k.endswith("kernel")
                and k not in used
                and flat[k].ndim == 2
                and flat[k].shape[0] == nh
            ]
            if len(cands) != 1:
                what = "no" if not cands else f"several ({cands})"
                msg = f"{what} Dense readout with a kernel of shape ({nh}, Ny); pass readout="
                raise UnsupportedNetworkError(msg)
            q = cands[0]
        else:
            q = readout.rstrip("/") + "/"
        if q + "kernel" not in flat:
            msg = f"readout: no key {q + 'kernel'!r} in params"
            raise UnsupportedNetworkError(msg)
        dense = {
            k[len(q) :]: v
            for k, v in flat.items()
            if k.startswith(q) and "/" not in k[len(q) :]
        }
        used |= {q + k for k in dense}
    elif isinstance(readout, Mapping):
        dense = {k: _to_numpy(v, f"readout[{k!r}]") for k, v in readout.items()}
    else:
        msg = f"readout must be a Dense parameter dict or its path; got {type(readout).__name__}"
        raise TypeError(msg)
    return dense


def from_flax(
    params: Mapping[str, Any],
    readout: Any = None,
    *,
    batch_first: bool = True,
    residual: bool = False,
    leak: float = 1.0,
) -> Network:
    """A :class:`~rnnschur.Network` from Flax Linen ``SimpleCell`` (+ ``Dense``) parameters.

    Parameters
    ----------
    params : mapping
        A parameter tree holding one ``SimpleCell``: ``{'i': {'kernel' (Nx, Nh),
        'bias' (Nh,)}, 'h': {'kernel' (Nh, Nh)}}``, at any depth (``{'params':
        {'RNN_0': {'cell': ...}, 'Dense_0': ...}}``). Kernels are input-major
        (``x @ kernel``), so they are transposed.
    readout : mapping or str, optional
        A ``Dense`` parameter dict (``'kernel'`` (Nh, Ny), optional ``'bias'``) or
        its path in ``params`` (``"params/Dense_0"``). Default: the one other
        ``kernel`` of shape (Nh, Ny) in the tree.
    batch_first : bool, default True
        Recorded layout (``flax.linen.RNN`` is batch-major unless ``time_major``).
    residual : bool, default False
        The cell was built with ``residual=True`` (``h' = tanh(... + h)``): then
        ``W_hh = kernelᵀ + I``.
    leak : float, default 1.0

    Returns
    -------
    Network

    Raises
    ------
    UnsupportedNetworkError
        No or several cells, gated cells, parameters it cannot place, a missing or
        ambiguous readout.
    """
    if not isinstance(params, Mapping):
        msg = f"params must be a mapping (a Flax parameter tree); got {type(params).__name__}"
        raise TypeError(msg)
    flat = {k: _to_numpy(v, k) for k, v in _flatten(params, "/").items()}
    p = _flax_cell(flat)
    W_i, W_h = flat[p + "i/kernel"], flat[p + "h/kernel"]
    if W_h.ndim != 2 or W_h.shape[0] != W_h.shape[1]:
        msg = f"{p}h/kernel has shape {W_h.shape}, not (Nh, Nh) (a gated cell?)"
        raise UnsupportedNetworkError(msg)
    used = {p + "i/kernel", p + "h/kernel"}
    arrays = {
        "W_xh": W_i.T,
        "W_hh": W_h.T + np.eye(W_h.shape[0], dtype=W_h.dtype) * residual,
    }
    b = [p + "i/bias", p + "h/bias"]
    if any(k in flat for k in b):
        arrays["b_h"] = sum(flat[k] for k in b if k in flat)
        used |= {k for k in b if k in flat}
    cell_extra = [
        k for k in flat if k.startswith((p + "i/", p + "h/")) and k not in used
    ]
    if cell_extra:
        msg = f"cell parameters {cell_extra} cannot be placed in a SimpleCell"
        raise UnsupportedNetworkError(msg)
    dense = _flax_readout(flat, readout, used, W_h.shape[0])
    if set(dense) - {"kernel", "bias"} or "kernel" not in dense:
        msg = f"readout must hold 'kernel' and optionally 'bias'; got {sorted(dense)}"
        raise UnsupportedNetworkError(msg)
    arrays["W_hy"] = dense["kernel"].T
    if "bias" in dense:
        arrays["b_y"] = dense["bias"]
    extra = [k for k in flat if k not in used]
    if extra and (readout is None or isinstance(readout, str)):
        msg = f"parameters {extra} are neither the SimpleCell nor the readout"
        raise UnsupportedNetworkError(msg)
    _one_dtype(arrays)
    return Network(**arrays, leak=leak, batch_first=batch_first)
