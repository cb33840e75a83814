"""Batched tanh-RNN rollout and exact BPTT gradients (wrappers around ``_core``).

The model is

    h_t = (1 - leak) h_{t-1} + leak tanh(W_xh x_t + W_hh h_{t-1} + b_h),
    y_t = W_hy h_t + b_y,

with time-major inputs ``x`` of shape ``(T, B, Nx)`` and ``leak`` in (0, 1]
(``leak = 1``, the default, is the plain tanh RNN ``h_t = tanh(...)`` and runs the
leak-free kernels). The compiled kernels release
the GIL, split whole batch shards (or whole ``W_hh`` variants) between threads and
check every input for NaN/inf.

Conventions shared by both functions
------------------------------------
* dtypes: every floating argument is float32 or float64. When all are float32 the
  work is done in float32; if any is float64 everything is promoted to float64
  (NumPy's rule). Integer, bool, complex and float16 arrays raise ``TypeError``.
* Layout: any strides, views and read-only arrays are accepted; they are copied
  only when not C-contiguous (or of another dtype).
* ``n_threads``: ``None`` uses every hardware thread (``_core.hardware_threads()``);
  small problems (below about 1.5 MFLOP) run on the calling thread regardless,
  because waking a worker costs more than it saves. Calls from several Python
  threads at once are safe: one of them uses the worker pool, the others run on
  their own threads.
* SIMD: the kernels exist for baseline x86-64 (``"baseline"``), x86-64-v3 AVX2+FMA
  (``"avx2"``) and x86-64-v4 AVX-512 F/BW/DQ/VL (``"avx512"``); the best level the
  CPU supports is picked at import (``_core.simd_level()``; the supported ones:
  ``_core.simd_levels()``). ``RNNSCHUR_SIMD=<level>`` in the environment, or
  ``_core.set_simd_level(level)``, forces a level; naming one the CPU lacks raises
  ``ValueError`` (``ImportError`` at import for the environment variable). Levels
  differ in rounding only.
* Hot loops that already hold validated C-contiguous arrays of one dtype may call
  :func:`loss_and_grad_unchecked` (no conversion; C++ still checks shapes, dtypes
  and finiteness).
* Bad input raises ``ValueError``/``TypeError`` naming the argument. Results that
  overflow to inf/NaN (absurdly large weights) raise :class:`NonFiniteError` (a
  ``ValueError``) instead of being returned, as do NaN/inf inputs. One overflow is
  not seen: a pre-activation ``W_xh x_t + W_hh h + b_h`` that overflows to ±inf
  (beyond ~3e38 in float32, ~1e308 in float64) saturates tanh to ±1 like any IEEE
  evaluation would, although the exact sum may be small; checking every
  pre-activation would cost a compare per element in the hot loop.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Literal, cast, overload

import numpy as np

from . import _core

__all__ = ["NonFiniteError", "loss_and_grad", "loss_and_grad_unchecked", "rollout"]

#: Raised by the core for NaN/inf inputs and for results that overflow (a
#: ``ValueError``); the public name of ``rnnschur._core.NonFiniteError``.
NonFiniteError = _core.NonFiniteError

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_BOOL = np.dtype(np.bool_)
_ROLLOUT_NAMES = ("W_xh", "W_hh", "W_hy", "x", "b_h", "b_y", "h0")
_GRAD_NAMES = ("W_xh", "W_hh", "W_hy", "x", "y", "b_h", "b_y")
_PARAM_NAMES = ("W_xh", "W_hh", "W_hy", "b_h", "b_y")


def _float_array(a: Any, name: str) -> np.ndarray:
    """Slow path of _prepare: anything that is not a native float32/64 ndarray."""
    if isinstance(a, np.ma.MaskedArray):  # its mask would be silently ignored
        msg = f"{name} must not be a masked array; pass {name}.filled(value) instead"
        raise TypeError(msg)
    arr: np.ndarray
    if type(a) is np.ndarray:
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except (ValueError, TypeError) as exc:  # e.g. ragged nested sequences
            msg = f"{name} must be a float32 or float64 array: {exc}"
            raise TypeError(msg) from None
    dt = arr.dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        msg = f"{name} must be a float32 or float64 array, got dtype {dt}"
        raise TypeError(msg)
    # non-native byte order, or a dtype object that is not the canonical one
    return arr.astype(_F32 if dt.itemsize == 4 else _F64)


def _prepare(
    values: tuple[Any, ...], names: tuple[str, ...], n_required: int
) -> list[np.ndarray | None]:
    """Float arrays of one working dtype, C-contiguous and aligned (None kept).

    The first ``n_required`` values must not be None. The common case (native
    float32/float64 ndarrays, already contiguous) costs a few hundred nanoseconds
    per argument; the training loop calls this thousands of times.
    """
    arrays: list[Any] = []
    f64 = False
    for i, (a, name) in enumerate(zip(values, names, strict=True)):
        if a is None:
            if i < n_required:  # else pybind11 dumps every argument in its error
                msg = f"{name} must be a float32 or float64 array, got None"
                raise TypeError(msg)
        else:
            if type(a) is not np.ndarray or (
                a.dtype is not _F32 and a.dtype is not _F64
            ):
                a = _float_array(a, name)
            if a.dtype is _F64:
                f64 = True
        arrays.append(a)
    dtype = _F64 if f64 else _F32
    for i, a in enumerate(arrays):
        if a is not None and (
            a.dtype is not dtype or not a.flags.c_contiguous or not a.flags.aligned
        ):
            arrays[i] = np.array(a, dtype=dtype, order="C")
    return arrays


def _n_threads(n_threads: Any) -> int:
    if n_threads is None:
        return 0
    if type(n_threads) is int and 0 < n_threads <= 4096:
        return n_threads
    try:
        n = operator.index(n_threads)
    except TypeError:
        msg = f"n_threads must be None or a positive int, got {n_threads!r}"
        raise TypeError(msg) from None
    if n < 1:
        msg = f"n_threads must be None or a positive int, got {n}"
        raise ValueError(msg)
    # The kernels split into at most 4096 parts; a value beyond C int would
    # otherwise fail in pybind11 with every array argument printed.
    return min(n, 4096)


def _leak(leak: Any) -> float:
    """``leak`` as a Python float in (0, 1]; TypeError/ValueError naming it."""
    if type(leak) is float and 0.0 < leak <= 1.0:
        return leak
    if isinstance(leak, (bool, np.bool_)) or not isinstance(leak, numbers.Real):
        msg = f"leak must be a real number in (0, 1], got {type(leak).__name__}"
        raise TypeError(msg)
    value = float(leak)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        msg = f"leak must be a finite number in (0, 1], got {leak!r}"
        raise ValueError(msg)
    return value


def _bool(flag: Any, name: str) -> bool:
    if not isinstance(flag, (bool, np.bool_)):
        msg = f"{name} must be a bool; got {type(flag).__name__}"
        raise TypeError(msg)
    return bool(flag)


def _check_ndim(a: np.ndarray, name: str, ndim: int | tuple[int, ...]) -> None:
    ok = a.ndim in ndim if isinstance(ndim, tuple) else a.ndim == ndim
    if not ok:
        want = (
            " or ".join(f"{n}-D" for n in ndim)
            if isinstance(ndim, tuple)
            else (f"{ndim}-D")
        )
        msg = f"{name} must be {want}, got shape {a.shape}"
        raise ValueError(msg)


@overload
def rollout(
    W_xh: Any,
    W_hh: Any,
    W_hy: Any,
    x: Any,
    *,
    b_h: Any = ...,
    b_y: Any = ...,
    h0: Any = ...,
    return_hidden: Literal[False] = ...,
    n_threads: int | None = ...,
    leak: float = ...,
) -> np.ndarray: ...
@overload
def rollout(
    W_xh: Any,
    W_hh: Any,
    W_hy: Any,
    x: Any,
    *,
    b_h: Any = ...,
    b_y: Any = ...,
    h0: Any = ...,
    return_hidden: Literal[True],
    n_threads: int | None = ...,
    leak: float = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def rollout(
    W_xh: Any,
    W_hh: Any,
    W_hy: Any,
    x: Any,
    *,
    b_h: Any = ...,
    b_y: Any = ...,
    h0: Any = ...,
    return_hidden: bool,
    n_threads: int | None = ...,
    leak: float = ...,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def rollout(
    W_xh: Any,
    W_hh: Any,
    W_hy: Any,
    x: Any,
    *,
    b_h: Any = None,
    b_y: Any = None,
    h0: Any = None,
    return_hidden: bool = False,
    n_threads: int | None = None,
    leak: float = 1.0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Run a batch of sequences through a tanh RNN (or a stack of K variants).

    Parameters
    ----------
    W_xh : array_like, shape (Nh, Nx)
        Input weights.
    W_hh : array_like, shape (Nh, Nh) or (K, Nh, Nh)
        Recurrent weights, or a stack of K variants that share ``W_xh``, ``W_hy``,
        the biases and ``h0``.
    W_hy : array_like, shape (Ny, Nh)
        Readout weights.
    x : array_like, shape (T, B, Nx)
        Inputs, time-major. ``T = 0`` or ``B = 0`` gives empty results.
    b_h : array_like, shape (Nh,), optional
        Hidden bias (zero when omitted).
    b_y : array_like, shape (Ny,), optional
        Readout bias (zero when omitted).
    h0 : array_like, shape (B, Nh) or (Nh,), optional
        Initial state, per sequence or shared by all (zero when omitted).
    return_hidden : bool, default False
        Also return the hidden states ``h_1 .. h_T`` (not ``h_0``). Must be a bool.
    n_threads : int, optional
        At most this many threads run the call (the calling thread and workers of
        a persistent pool); the work is cut into about eight (variant, batch shard)
        items per thread, which the threads claim as they become free. ``None``
        means every hardware thread; 1 runs on the calling thread only. Small calls
        stay on the calling thread regardless. Results do not depend on it. On
        AVX-512 machines the kernel (batch in the vector lanes, or the row layout
        for batches that would leave more than 1/8 of the lanes empty) is chosen
        from ``B``, so a sequence's outputs can differ in the last bits between
        calls with different batch sizes.
    leak : float, default 1.0
        Leak of the state update, in (0, 1]: ``h_t = (1 - leak) h_{t-1} +
        leak tanh(...)``, shared by all K variants. It is rounded to the working
        dtype; 1 (the plain tanh RNN) runs the leak-free kernels unchanged.

    Returns
    -------
    y : ndarray, shape (T, B, Ny) or (K, T, B, Ny)
        Outputs ``y_t = W_hy h_t + b_y``, in the working dtype (float32 if every
        floating input is float32, else float64).
    h : ndarray, shape (T, B, Nh) or (K, T, B, Nh)
        Hidden states; only when ``return_hidden`` is true.

    Raises
    ------
    TypeError
        An argument is not a float32/float64 array, or ``leak`` is not a real
        number (a bool is refused).
    ValueError
        Wrong number of dimensions or mismatched sizes, ``leak`` outside (0, 1] (or
        one that rounds to 0 in float32); :class:`NonFiniteError` (a
        ``ValueError``) for NaN/inf in an input or an overflow in the result.
    """
    a = _leak(leak)
    arrays = _prepare((W_xh, W_hh, W_hy, x, b_h, b_y, h0), _ROLLOUT_NAMES, 4)
    W_xh_, W_hh_, W_hy_, x_ = cast("list[np.ndarray]", arrays[:4])  # required
    b_h_, b_y_, h0_ = arrays[4:]
    _check_ndim(W_hh_, "W_hh", (2, 3))
    hidden = _bool(return_hidden, "return_hidden")
    nt = _n_threads(n_threads)
    return _core.rollout(W_xh_, W_hh_, W_hy_, x_, b_h_, b_y_, h0_, hidden, nt, leak=a)


def _mask_array(mask: Any, shape: tuple[int, int, int]) -> np.ndarray:
    m = mask if type(mask) is np.ndarray else np.asarray(mask)
    if m.dtype != np.bool_:
        if m.dtype.kind not in "iu":
            msg = f"mask must be a bool (or 0/1 integer) array, got dtype {m.dtype}"
            raise TypeError(msg)
        if m.size and (m.min() < 0 or m.max() > 1):
            msg = "mask must contain only 0 and 1 when given as integers"
            raise ValueError(msg)
        m = m != 0
    if m.shape != shape:
        try:
            m = np.broadcast_to(m, shape)
        except ValueError:
            msg = f"mask of shape {m.shape} does not broadcast to (T, B, Ny) = {shape}"
            raise ValueError(msg) from None
    if not m.flags.c_contiguous:
        m = np.ascontiguousarray(m)
    return m


def loss_and_grad(
    W_xh: Any,
    W_hh: Any,
    W_hy: Any,
    x: Any,
    y: Any,
    mask: Any = None,
    *,
    b_h: Any = None,
    b_y: Any = None,
    n_threads: int | None = None,
    leak: float = 1.0,
) -> tuple[float, dict[str, np.ndarray]]:
    """Masked mean squared error of a tanh RNN and its exact BPTT gradient.

    The loss is ``sum(mask * (ŷ - y)**2) / sum(mask)`` over all ``(t, b, j)``, with
    ``ŷ`` from :func:`rollout` (``h_0 = 0``).

    Parameters
    ----------
    W_xh : array_like, shape (Nh, Nx)
    W_hh : array_like, shape (Nh, Nh)
        A single recurrent matrix (stacks are for :func:`rollout` only).
    W_hy : array_like, shape (Ny, Nh)
    x : array_like, shape (T, B, Nx)
        Inputs, time-major.
    y : array_like, shape (T, B, Ny)
        Targets.
    mask : array_like of bool, optional
        Broadcastable to ``(T, B, Ny)``; entries that count in the loss. Integer
        arrays holding only 0/1 are accepted. ``None`` counts every entry.
    b_h : array_like, shape (Nh,), optional
    b_y : array_like, shape (Ny,), optional
        Biases; their gradients are returned only when they are passed.
    n_threads : int, optional
        Into how many parts (batch shards or K variants) the work may be split; the
        parts run on a persistent pool of hardware-thread workers plus the calling
        thread. ``None`` means one part per hardware thread; 1 runs on the calling
        thread only. Small calls stay on the calling thread regardless.
    leak : float, default 1.0
        Leak of the state update, in (0, 1], as in :func:`rollout` (a constant:
        no gradient is returned for it).

    Returns
    -------
    loss : float
        The masked mean squared error (a Python float, accumulated in float64).
    grads : dict of str to ndarray
        ``"W_xh"``, ``"W_hh"``, ``"W_hy"`` and, when passed, ``"b_h"``, ``"b_y"``;
        each has its parameter's shape and dtype (the work is done in float64 when
        any input is float64, and the gradient is cast back).

    Raises
    ------
    TypeError
        An argument is not a float32/float64 array, ``mask`` is not boolean, or
        ``leak`` is not a real number (a bool is refused).
    ValueError
        Wrong number of dimensions, mismatched sizes, ``leak`` outside (0, 1],
        NaN/inf in an input, a mask
        that selects no entry (this includes ``T = 0`` and ``B = 0``: the mean over
        nothing is undefined), or an overflow in the result.
    """
    a = _leak(leak)
    params = (W_xh, W_hh, W_hy, b_h, b_y)
    arrays = _prepare((W_xh, W_hh, W_hy, x, y, b_h, b_y), _GRAD_NAMES, 5)
    W_xh_, W_hh_, W_hy_, x_, y_ = cast("list[np.ndarray]", arrays[:5])  # required
    b_h_, b_y_ = arrays[5:]
    m = _grad_mask(mask, x_, y_, W_hy_)
    loss, grads = _core.loss_and_grad(
        W_xh_, W_hh_, W_hy_, x_, y_, m, b_h_, b_y_, _n_threads(n_threads), leak=a
    )
    if x_.dtype is _F64:
        _cast_grads(grads, params)
    return loss, grads


def _grad_mask(
    mask: Any, x_: np.ndarray, y_: np.ndarray, W_hy_: np.ndarray
) -> np.ndarray | None:
    """``mask`` as a C-contiguous (T, B, Ny) bool array (None kept)."""
    if mask is None or (
        type(mask) is np.ndarray
        and mask.dtype is _BOOL
        and mask.shape == y_.shape
        and mask.flags.c_contiguous
    ):  # a ready (T, B, Ny) bool array goes through as is (C++ checks y_.shape)
        return mask
    _check_ndim(x_, "x", 3)
    _check_ndim(W_hy_, "W_hy", 2)
    return _mask_array(mask, (x_.shape[0], x_.shape[1], W_hy_.shape[0]))


def _cast_grads(grads: dict[str, np.ndarray], params: tuple[Any, ...]) -> None:
    """Cast the float64 gradients of float32 parameters back to float32, in place.

    A float64 input promotes the work of float32 parameters; their gradients
    keep the parameter's own dtype.
    """
    for name, p in zip(_PARAM_NAMES, params, strict=True):
        if p is not None and not _is_f64(p):
            grads[name] = grads[name].astype(_F32)


def _is_f64(a: Any) -> bool:
    dt = getattr(a, "dtype", None)
    if dt is None:
        dt = np.asarray(a).dtype
    return dt.itemsize == 8


def loss_and_grad_unchecked(
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    W_hy: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray | None = None,
    b_h: np.ndarray | None = None,
    b_y: np.ndarray | None = None,
    n_threads: int = 0,
    leak: float = 1.0,
) -> tuple[float, dict[str, np.ndarray]]:
    """Lean entry point of :func:`loss_and_grad` for hot training loops.

    Every array must already share one dtype (float32 or float64) and be
    C-contiguous; ``mask`` must be ``None`` or a C-contiguous bool array of shape
    exactly ``(T, B, Ny)``; ``n_threads`` is an int, 0 meaning all hardware threads;
    ``leak`` a float in (0, 1] (checked in C++).
    Shapes, dtypes, layouts and finiteness are still checked in C++ (so misuse
    raises rather than crashes), but nothing is converted and mixed dtypes raise
    ``TypeError``. Not exported at the package top level.

    Returns
    -------
    loss : float
    grads : dict of str to ndarray
        ``"W_xh"``, ``"W_hh"``, ``"W_hy"`` (and ``"b_h"``, ``"b_y"`` when given), each
        of its parameter's shape and of the common dtype.
    """
    return _core.loss_and_grad(
        W_xh, W_hh, W_hy, x, y, mask, b_h, b_y, n_threads, leak=leak
    )
