"""The network type of the library: a one-layer (leaky) tanh RNN with a linear readout.

    h_t = (1 − a) h_{t−1} + a · tanh(W_xh x_t + W_hh h_{t−1} + b_h),   y_t = W_hy h_t + b_y

with leak ``a ∈ (0, 1]`` (``a = 1`` is the paper's model, ``h_t = tanh(...)``) and
``h_0`` either zero or a stored (learned) initial state. :class:`Network` holds the
arrays, runs them (:meth:`Network.rollout`, :meth:`Network.loss`) and saves them in a
versioned, checksummed ``.npz`` (:meth:`Network.save`, read back by
:func:`rnnschur.load_network`). Importers from torch, Flax and array files live in
:mod:`rnnschur.io` and :mod:`rnnschur.importers`.

Schur analysis of a leaky network
---------------------------------
Around ``h = 0`` the recurrent map is linear with matrix
``W_eff = (1 − a) I + a W_hh`` (:meth:`Network.effective_recurrence`). Its Schur
vectors are those of ``W_hh`` and its eigenvalues are ``(1 − a) + a λ``, but the
*moduli order* of ``λ`` and ``(1 − a) + a λ`` can differ (a slow mode of ``W_eff`` may
come from a fast-rotating ``λ``), so the R/C split depends on which matrix is ordered.
:func:`rnnschur.diagnose` orders, splits and ablates ``W_eff`` (the timescales the
network actually has) and maps every ablated matrix back with
``W_hh' = (W_eff' − (1 − a) I) / a`` (:meth:`Network.recurrence_from_effective`). For
``a = 1`` both maps are the identity and this is exactly the paper's method.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import rnn

__all__ = ["Network", "UnsupportedNetworkError", "check_targets", "time_major"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_ARRAY_FIELDS = ("W_xh", "W_hh", "W_hy", "b_h", "b_y", "h0")
_NDIM = {"W_xh": 2, "W_hh": 2, "W_hy": 2, "b_h": 1, "b_y": 1, "h0": 1}


class UnsupportedNetworkError(ValueError):
    """The given model is not a one-layer tanh RNN with a linear readout."""


def _as_field(value: Any, name: str) -> np.ndarray:
    """A read-only float32/float64 copy of one field (or a TypeError naming it)."""
    if isinstance(value, np.ma.MaskedArray):
        msg = f"{name} must not be a masked array"
        raise TypeError(msg)
    try:
        a = np.array(value, copy=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        msg = f"{name} must be a float32 or float64 array: {exc}"
        raise TypeError(msg) from None
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        msg = f"{name} must be a float32 or float64 array; got dtype {a.dtype}"
        raise TypeError(msg)
    a = a.astype(_F32 if a.dtype.itemsize == 4 else _F64, copy=False)
    if a.ndim != _NDIM[name]:
        msg = f"{name} must be {_NDIM[name]}-D; got shape {a.shape}"
        raise ValueError(msg)
    if not np.isfinite(a).all():
        msg = f"{name} contains NaN or inf"
        raise ValueError(msg)
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def _check_leak(leak: Any) -> float:
    if isinstance(leak, (bool, np.bool_)) or not isinstance(leak, numbers.Real):
        msg = f"leak must be a real number in (0, 1]; got {type(leak).__name__}"
        raise TypeError(msg)
    v = float(leak)
    if not (0.0 < v <= 1.0):
        msg = f"leak must be in (0, 1]; got {v}"
        raise ValueError(msg)
    return v


@dataclass(frozen=True, eq=False)
class Network:
    """A one-layer leaky tanh RNN with a linear readout (see the module docstring).

    Parameters / attributes
    -----------------------
    W_xh : ndarray, shape (Nh, Nx)
        Input weights.
    W_hh : ndarray, shape (Nh, Nh)
        Recurrent weights.
    W_hy : ndarray, shape (Ny, Nh)
        Readout weights.
    b_h : ndarray, shape (Nh,), optional
        Hidden bias (zeros when omitted).
    b_y : ndarray, shape (Ny,), optional
        Readout bias (zeros when omitted).
    h0 : ndarray, shape (Nh,), or None
        Learned initial state shared by all sequences; ``None`` means ``h_0 = 0``.
    leak : float in (0, 1], default 1.0
        ``a`` in ``h_t = (1 − a) h_{t−1} + a tanh(...)``; 1 is the plain tanh RNN.
    batch_first : bool, default False
        Default layout of :meth:`rollout` / :meth:`loss`: inputs ``(B, T, Nx)``
        instead of time-major ``(T, B, Nx)`` (recorded by the torch/Flax importers).

    Every array is copied on construction and stored read-only; all share one dtype,
    float32 or float64 (:attr:`dtype`). ``Nh, Nx, Ny >= 1``.

    Raises
    ------
    TypeError
        A field is not a float32/float64 array, the dtypes differ, or ``leak`` /
        ``batch_first`` have the wrong type.
    ValueError
        Wrong shapes, NaN/inf values, ``leak`` outside (0, 1].
    """

    W_xh: np.ndarray
    W_hh: np.ndarray
    W_hy: np.ndarray
    b_h: np.ndarray = None  # type: ignore[assignment]  # zeros when omitted
    b_y: np.ndarray = None  # type: ignore[assignment]
    h0: np.ndarray | None = None
    leak: float = 1.0
    batch_first: bool = False

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("W_xh", "W_hh", "W_hy"):
            value = getattr(self, name)
            if value is None:
                msg = f"{name} is required; got None"
                raise TypeError(msg)
            arrays[name] = _as_field(value, name)
        dtype = arrays["W_hh"].dtype
        Nh, Nh2 = arrays["W_hh"].shape
        Ny = arrays["W_hy"].shape[0]
        for name, default in (("b_h", Nh), ("b_y", Ny)):
            value = getattr(self, name)
            arrays[name] = (
                _as_field(np.zeros(default, dtype), name)
                if value is None
                else _as_field(value, name)
            )
        if self.h0 is not None:
            arrays["h0"] = _as_field(self.h0, "h0")
        for name, a in arrays.items():
            if a.dtype != dtype:
                msg = (
                    f"{name} has dtype {a.dtype} but W_hh has {dtype}; all arrays of "
                    "a Network must share one dtype (cast them first)"
                )
                raise TypeError(msg)
        Nx = arrays["W_xh"].shape[1]
        expect = {
            "W_hh": (Nh, Nh),
            "W_xh": (Nh, Nx),
            "W_hy": (Ny, Nh),
            "b_h": (Nh,),
            "b_y": (Ny,),
            "h0": (Nh,),
        }
        if Nh != Nh2:
            msg = f"W_hh must be square (Nh, Nh); got shape {(Nh, Nh2)}"
            raise ValueError(msg)
        for name, a in arrays.items():
            if a.shape != expect[name]:
                msg = (
                    f"{name} must have shape {expect[name]} "
                    f"(Nh={Nh}, Nx={Nx}, Ny={Ny}); got {a.shape}"
                )
                raise ValueError(msg)
        if min(Nh, Nx, Ny) < 1:
            msg = f"sizes must be >= 1; got Nh={Nh}, Nx={Nx}, Ny={Ny}"
            raise ValueError(msg)
        for name, a in arrays.items():
            object.__setattr__(self, name, a)
        object.__setattr__(self, "leak", _check_leak(self.leak))
        if not isinstance(self.batch_first, (bool, np.bool_)):
            msg = f"batch_first must be a bool; got {type(self.batch_first).__name__}"
            raise TypeError(msg)
        object.__setattr__(self, "batch_first", bool(self.batch_first))

    # ------------------------------------------------------------------ sizes
    @property
    def dtype(self) -> np.dtype:
        """The dtype of every array (float32 or float64)."""
        return self.W_hh.dtype

    @property
    def n_hidden(self) -> int:
        """Nh."""
        return int(self.W_hh.shape[0])

    @property
    def n_inputs(self) -> int:
        """Nx."""
        return int(self.W_xh.shape[1])

    @property
    def n_outputs(self) -> int:
        """Ny."""
        return int(self.W_hy.shape[0])

    # ------------------------------------------------------- effective recurrence
    def effective_recurrence(self, W_hh: Any = None) -> np.ndarray:
        """``W_eff = (1 − a) I + a W_hh`` in float64 (``W_hh`` itself when ``a = 1``).

        Parameters
        ----------
        W_hh : array_like, shape (Nh, Nh) or (K, Nh, Nh), optional
            Default: the network's own ``W_hh``.

        Returns
        -------
        ndarray, float64, same shape as ``W_hh``
        """
        W = np.array(self.W_hh if W_hh is None else W_hh, dtype=np.float64)
        if self.leak != 1.0:
            W *= self.leak
            idx = np.arange(W.shape[-1])
            W[..., idx, idx] += 1.0 - self.leak
        return W

    def recurrence_from_effective(self, W_eff: Any) -> np.ndarray:
        """Inverse of :meth:`effective_recurrence`: ``(W_eff − (1 − a) I) / a``.

        Evaluated as ``W_hh − (effective_recurrence() − W_eff) / a`` (equal in exact
        arithmetic): the change is scaled rather than the whole matrix, so the
        network's own ``W_eff`` maps back to ``W_hh`` exactly and an ablated one
        differs from ``W_hh`` only by its ablation.

        Parameters
        ----------
        W_eff : array_like, shape (Nh, Nh) or (K, Nh, Nh)

        Returns
        -------
        ndarray, float64, same shape (a copy; ``W_eff`` itself when ``a = 1``)
        """
        W = np.array(W_eff, dtype=np.float64)
        if self.leak != 1.0:
            W = (
                self.W_hh.astype(np.float64)
                - (self.effective_recurrence() - W) / self.leak
            )
        return W

    # --------------------------------------------------------------- running it
    def rollout(
        self,
        x: Any,
        *,
        W_hh: Any = None,
        return_hidden: bool = False,
        batch_first: bool | None = None,
        n_threads: int | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Outputs of the network (or of variants with other ``W_hh``) for inputs ``x``.

        Parameters
        ----------
        x : array_like, float32 or float64, shape (T, B, Nx) or (B, T, Nx)
            Inputs, time-major unless ``batch_first``.
        W_hh : array_like, shape (Nh, Nh) or (K, Nh, Nh), optional
            Replaces the recurrent matrix (a stack runs K variants in one call); it
            is cast to the network's dtype.
        return_hidden : bool, default False
            Also return ``h_1 .. h_T``.
        batch_first : bool, optional
            Layout of ``x`` and of the results; default :attr:`batch_first`.
        n_threads : int, optional
            Threads of the compiled core (see :func:`rnnschur.rollout`).

        Returns
        -------
        y : ndarray, shape ([K,] T, B, Ny) or ([K,] B, T, Ny) if batch-first
            In the working dtype: float32 when the network and ``x`` are float32,
            else float64.
        h : ndarray, shape ([K,] T, B, Nh) or ([K,] B, T, Nh)
            Only with ``return_hidden``.
        """
        bf = self._layout(batch_first)
        xt = time_major(x, bf, "x")
        W = self.W_hh if W_hh is None else _as_recurrence(W_hh, self)
        out = _rollout_core(
            self.W_xh,
            W,
            self.W_hy,
            xt,
            b_h=self.b_h,
            b_y=self.b_y,
            h0=self.h0,
            leak=self.leak,
            return_hidden=return_hidden,
            n_threads=n_threads,
        )
        if not bf:
            return out
        if isinstance(out, tuple):
            return tuple(np.swapaxes(a, -3, -2) for a in out)  # type: ignore[return-value]
        return np.swapaxes(out, -3, -2)

    def loss(
        self,
        x: Any,
        y: Any,
        mask: Any = None,
        *,
        batch_first: bool | None = None,
        n_threads: int | None = None,
    ) -> float:
        """Masked mean squared error ``sum(mask·(ŷ − y)²) / sum(mask)``.

        The package's convention (:func:`rnnschur.loss_and_grad`), accumulated in
        float64 over every selected ``(t, b, j)``.

        Parameters
        ----------
        x : array_like, shape (T, B, Nx) or (B, T, Nx)
        y : array_like, float, shape (T, B, Ny) or (B, T, Ny)
        mask : array_like of bool (or 0/1 int), optional
            Broadcastable to the shape of ``y``; ``None`` selects every entry.
        batch_first : bool, optional
            Layout of ``x``, ``y`` and ``mask``; default :attr:`batch_first`.
        n_threads : int, optional

        Returns
        -------
        float

        Raises
        ------
        ValueError
            Shape mismatch, non-finite targets where selected, or a mask selecting
            nothing (the mean over nothing is undefined).
        """
        bf = self._layout(batch_first)
        y_hat = self.rollout(x, batch_first=bf, n_threads=n_threads)
        assert isinstance(y_hat, np.ndarray)
        y_arr, m = check_targets(y, mask, y_hat.shape)
        d = y_hat.astype(np.float64) - y_arr
        return float(np.where(m, d * d, 0.0).sum() / m.sum())

    def _layout(self, batch_first: bool | None) -> bool:
        if batch_first is None:
            return self.batch_first
        if not isinstance(batch_first, (bool, np.bool_)):
            msg = f"batch_first must be None or a bool; got {batch_first!r}"
            raise TypeError(msg)
        return bool(batch_first)

    # ------------------------------------------------------------------- files
    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by field name (``h0`` only when set); read-only views."""
        out = {k: getattr(self, k) for k in _ARRAY_FIELDS}
        if self.h0 is None:
            del out["h0"]
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the network to ``path`` atomically; see :func:`rnnschur.io.save_network`.

        Returns
        -------
        pathlib.Path
        """
        from .io import save_network

        return save_network(self, path)

    # ------------------------------------------------------------------- torch
    def to_torch(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """State dicts for ``torch.nn.RNN`` (one layer, tanh) and ``torch.nn.Linear``.

        ``weight_ih_l0 = W_xh``, ``weight_hh_l0 = W_hh``, ``bias_ih_l0 = b_h``,
        ``bias_hh_l0 = 0`` (torch adds the two biases), ``weight = W_hy``,
        ``bias = b_y``: bit for bit, in the network's dtype. Build the modules with
        ``nn.RNN(Nx, Nh, batch_first=net.batch_first, dtype=...)`` and
        ``nn.Linear(Nh, Ny, dtype=...)``.

        Returns
        -------
        (rnn_state_dict, readout_state_dict) : tuple of dict of str to torch.Tensor

        Raises
        ------
        UnsupportedNetworkError
            ``leak != 1`` or a learned ``h0``: ``nn.RNN`` has neither.
        ImportError
            torch is not installed (``pip install "rnnschur[torch]"``).
        """
        if self.leak != 1.0:
            msg = f"to_torch: leak={self.leak} has no nn.RNN equivalent (needs 1)"
            raise UnsupportedNetworkError(msg)
        if self.h0 is not None:
            msg = "to_torch: nn.RNN has no learned initial state; h0 is set (pass hx)"
            raise UnsupportedNetworkError(msg)
        try:
            import torch
        except ImportError:
            msg = 'to_torch needs torch: pip install "rnnschur[torch]"'
            raise ImportError(msg) from None

        def t(a: np.ndarray) -> Any:
            return torch.from_numpy(np.array(a))  # writable copy, same dtype

        rnn_sd = {
            "weight_ih_l0": t(self.W_xh),
            "weight_hh_l0": t(self.W_hh),
            "bias_ih_l0": t(self.b_h),
            "bias_hh_l0": t(np.zeros_like(self.b_h)),
        }
        return rnn_sd, {"weight": t(self.W_hy), "bias": t(self.b_y)}


# --------------------------------------------------------------------- rollout core


def _rollout_core(
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    W_hy: np.ndarray,
    x: np.ndarray,
    *,
    b_h: np.ndarray,
    b_y: np.ndarray,
    h0: np.ndarray | None,
    leak: float,
    return_hidden: bool,
    n_threads: int | None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Every rollout of a :class:`Network` goes through here (time-major): the
    compiled core (:func:`rnnschur.rollout`), leak included."""
    return rnn.rollout(
        W_xh,
        W_hh,
        W_hy,
        x,
        b_h=b_h,
        b_y=b_y,
        h0=h0,
        leak=leak,
        return_hidden=return_hidden,
        n_threads=n_threads,
    )


def time_major(x: Any, batch_first: bool, name: str) -> np.ndarray:
    """``x`` as a float32/float64 ndarray, swapped to time-major when batch-first."""
    if isinstance(x, np.ma.MaskedArray):
        msg = f"{name} must not be a masked array"
        raise TypeError(msg)
    a = np.asarray(x)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        msg = f"{name} must be a float32 or float64 array; got dtype {a.dtype}"
        raise TypeError(msg)
    if a.ndim != 3:
        layout = "(B, T, Nx)" if batch_first else "(T, B, Nx)"
        msg = f"{name} must be 3-D {layout}; got shape {a.shape}"
        raise ValueError(msg)
    if not np.isfinite(a).all():
        msg = f"{name} contains NaN or inf"
        raise ValueError(msg)
    return np.swapaxes(a, 0, 1) if batch_first else a


def _as_recurrence(W: Any, net: Network) -> np.ndarray:
    a = np.asarray(W)
    if a.dtype.kind != "f":
        msg = f"W_hh must be a float array; got dtype {a.dtype}"
        raise TypeError(msg)
    n = net.n_hidden
    if a.ndim not in (2, 3) or a.shape[-2:] != (n, n):
        msg = f"W_hh must have shape ({n}, {n}) or (K, {n}, {n}); got {a.shape}"
        raise ValueError(msg)
    if not np.isfinite(a).all():
        msg = "W_hh contains NaN or inf"
        raise ValueError(msg)
    return a.astype(net.dtype, copy=False)


def check_targets(
    y: Any, mask: Any, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 targets of exactly ``shape[-3:]`` and a bool mask broadcast to it."""
    shape = tuple(shape[-3:])
    y_arr = np.asarray(y)
    if y_arr.dtype.kind != "f":
        msg = f"y must be a float array; got dtype {y_arr.dtype}"
        raise TypeError(msg)
    if y_arr.shape != shape:
        msg = f"y must have shape {shape} (like the outputs); got {y_arr.shape}"
        raise ValueError(msg)
    if mask is None:
        m = np.ones(shape, dtype=bool)
    else:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            if m.dtype.kind not in "iu" or (m.size and (m.min() < 0 or m.max() > 1)):
                msg = f"mask must be bool (or 0/1 integers); got dtype {m.dtype}"
                raise TypeError(msg)
            m = m != 0
        try:
            m = np.broadcast_to(m, shape)
        except ValueError:
            msg = f"mask of shape {m.shape} does not broadcast to {shape}"
            raise ValueError(msg) from None
    if not m.any():
        msg = "mask selects no entries (or the data is empty)"
        raise ValueError(msg)
    y64 = y_arr.astype(np.float64)
    if not np.isfinite(y64[m]).all():
        msg = "y contains NaN or inf where mask is true"
        raise ValueError(msg)
    return y64, m
