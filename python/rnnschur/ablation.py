"""Schur-coupling ablations ``W̃(S) = Q Z_S(T) Qᵀ`` (paper, section 2 and eq. 6).

For a subset ``S`` of the three coupling blocks of ``N`` — ``RR`` (``T_RR``), ``CR``
(rows R, columns C: the paper's ``T_C→R``) and ``CC`` (``T_CC``) — ``Z_S`` zeroes the
entries of those blocks and leaves every other entry of ``T`` unchanged.

Subset names
------------
``"RR"``, ``"CR"``, ``"CC"`` (canonical), case-insensitive, with the aliases
``"T_RR"``, ``"T_CR"``, ``"T_C->R"``, ``"T_C→R"``, ``"C->R"``, ``"C→R"``, ``"T_CC"``.
A subset is an iterable of names (a bare string is one name); unknown names raise
``ValueError``. The default list is :data:`DEFAULT_SUBSETS`::

    (), (RR,), (CR,), (CC,), (RR, CR), (RR, CC), (CR, CC), (RR, CR, CC)

Subsets are reported as tuples of canonical names in the order RR, CR, CC.

Computation
-----------
The map ``S ↦ W̃(S)`` is linear in the removed blocks: with ``C_b = Q N_b Qᵀ``,
``W̃(S) = W − Σ_{b∈S} C_b``. A Numba kernel (``@njit(cache=True, parallel=True)``,
one contiguous range of models per thread) forms the three ``C_b`` once per model
with BLAS products on the blocks ``Q_R``, ``Q_C``, ``N_RR``, ``T_C→R``, ``N_CC``
in place, and writes all subsets in one streaming pass, instead of
``2·|subsets|`` full matrix products. With ``base="W"`` (default) the unablated
variant is the original ``W`` bit for bit; with ``base="QTQ"`` every variant is the
exact reconstruction ``Q Z_S(T) Qᵀ`` (they differ by the factorisation's backward
error, ``O(n ε ‖W‖)``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numba
import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # NumPy < 2
    byte_bounds = np.byte_bounds  # type: ignore[attr-defined,unused-ignore]  # noqa: NPY201

from . import _ablation_kernels as _k
from ._numba_blas import blas_table
from ._validation import is_real
from .schur import SchurForm, SchurSplit, leading_count, schur_split

__all__ = ["BLOCK_NAMES", "DEFAULT_SUBSETS", "Ablation", "ablate", "canonical_subset"]

# Numba's "workqueue" threading layer (used where neither TBB nor OpenMP loads)
# aborts the process when parallel kernels are launched from two Python threads at
# once; the kernel already uses every core, so serialising calls costs nothing.
_KERNEL_LOCK = threading.Lock()

# Per-object facts computed once: forms and splits are immutable, and reading
# addresses or re-checking a split costs microseconds per model, which at 100 small
# models is a sizeable part of a call. Weak keys: an entry dies with its object.
# form -> (Q, T, W as read by the kernel, their addresses, the byte bounds of the
# form's own Q, T, W).
_FORM_INPUTS: weakref.WeakKeyDictionary[
    SchurForm, tuple[tuple[np.ndarray, ...], tuple[int, ...], tuple[int, ...]]
] = weakref.WeakKeyDictionary()
# split -> the form it was checked against.
_CHECKED: weakref.WeakKeyDictionary[SchurSplit, weakref.ref[SchurForm]] = (
    weakref.WeakKeyDictionary()
)

#: Canonical names of the three coupling blocks, in reporting order.
BLOCK_NAMES: tuple[str, str, str] = ("RR", "CR", "CC")

#: The 8 subsets of {RR, CR, CC} in the default order.
DEFAULT_SUBSETS: tuple[tuple[str, ...], ...] = (
    (),
    ("RR",),
    ("CR",),
    ("CC",),
    ("RR", "CR"),
    ("RR", "CC"),
    ("CR", "CC"),
    ("RR", "CR", "CC"),
)

_ALIASES = {
    "RR": "RR",
    "T_RR": "RR",
    "CR": "CR",
    "T_CR": "CR",
    "T_C->R": "CR",
    "T_C→R": "CR",
    "C->R": "CR",
    "C→R": "CR",
    "CC": "CC",
    "T_CC": "CC",
}


def _canonical_name(name: object) -> str:
    if not isinstance(name, str):
        msg = f"subsets: block names must be strings; got {name!r}"
        raise TypeError(msg)
    key = name.strip().upper().replace("→", "->").replace("T_C->R", "CR")
    key = key.replace("C->R", "CR")
    if key not in _ALIASES:
        msg = (
            f"subsets: unknown block name {name!r}; expected one of "
            f"'RR', 'CR', 'CC' (aliases 'T_RR', 'T_C->R', 'T_CR', 'T_CC')"
        )
        raise ValueError(msg)
    return _ALIASES[key]


def canonical_subset(subset: str | Iterable[str]) -> tuple[str, ...]:
    """Canonical form of one subset: a tuple of names in the order RR, CR, CC.

    Parameters
    ----------
    subset : str or iterable of str
        Block names in any accepted spelling; a bare string is a single name.

    Returns
    -------
    tuple of str
        Sorted, duplicate-free canonical names.
    """
    if isinstance(subset, str):
        names = [subset]
    elif isinstance(subset, Iterable) and not isinstance(subset, (bytes, bytearray)):
        names = list(subset)
    else:
        msg = (
            "subsets: each subset must be a block name or an iterable of block "
            f"names; got {subset!r}"
        )
        raise TypeError(msg)
    chosen = {_canonical_name(x) for x in names}
    return tuple(b for b in BLOCK_NAMES if b in chosen)


@dataclass(frozen=True, eq=False)
class Ablation:
    """Ablated recurrent matrices for a list of coupling subsets.

    Attributes
    ----------
    W : ndarray, float64, shape (S, n, n) or (M, S, n, n)
        ``W[..., s, :, :] = W̃(subsets[s])``; the leading model axis is present when
        ``ablate`` was given sequences of forms and splits.
    subsets : tuple of tuple of str
        The subsets, canonical names in the order RR, CR, CC.
    removed_mass : ndarray, float64, shape (S,) or (M, S)
        ``‖T − Z_S(T)‖_F / ‖T‖_F`` (0 when ``T`` is zero).
    base : str
        ``"W"`` or ``"QTQ"`` (see :func:`ablate`).
    """

    W: np.ndarray
    subsets: tuple[tuple[str, ...], ...]
    removed_mass: np.ndarray
    base: str

    @property
    def labels(self) -> tuple[str, ...]:
        """Short labels: ``"none"``, ``"RR"``, ``"RR+CR"``, ..."""
        return tuple("+".join(s) if s else "none" for s in self.subsets)

    def index(self, subset: str | Iterable[str]) -> int:
        """Position of ``subset`` (any accepted spelling) in :attr:`subsets`.

        Raises ``KeyError`` if the subset was not ablated, ``ValueError`` for an
        unknown block name.
        """
        key = canonical_subset(subset)
        try:
            return self.subsets.index(key)
        except ValueError:
            msg = f"subset {key} is not among the ablated subsets {self.subsets}"
            raise KeyError(msg) from None


def _normalise_subsets(subsets: object) -> tuple[tuple[str, ...], ...]:
    if subsets is None:
        return DEFAULT_SUBSETS
    if isinstance(subsets, str) or not isinstance(subsets, Iterable):
        msg = (
            "subsets must be None or an iterable of subsets (each an iterable of "
            f"block names or a single name); got {subsets!r}"
        )
        raise TypeError(msg)
    out = tuple(canonical_subset(s) for s in subsets)
    if not out:
        msg = "subsets must not be empty"
        raise ValueError(msg)
    return out


def _check_pair(
    form: object, split: object, where: str
) -> tuple[SchurForm, SchurSplit]:
    if not isinstance(form, SchurForm):
        msg = f"form{where} must be a SchurForm; got {type(form).__name__}"
        raise TypeError(msg)
    if not isinstance(split, SchurSplit):
        msg = f"split{where} must be a SchurSplit; got {type(split).__name__}"
        raise TypeError(msg)
    seen = _CHECKED.get(split)
    if seen is not None and seen() is form:
        return form, split
    if split.n != form.n:
        msg = f"split{where} has width {split.n} but form{where} has width {form.n}"
        raise ValueError(msg)
    # A split of another matrix of the same width would silently give wrong masks.
    # The masks are a function of the block sizes and n_R, so these two checks are
    # exact (and O(n), unlike re-deriving the masks).
    # (A split made from this form shares its block_sizes array: no comparison.)
    same = split.block_sizes is form.block_sizes or np.array_equal(
        split.block_sizes, form.block_sizes
    )
    if not (
        same and split.n_R == leading_count(form, split.alpha * form.spectral_radius)
    ):
        msg = (
            f"split{where} (n_R={split.n_R}) was not made from form{where}: their "
            "block structures or thresholds differ"
        )
        raise ValueError(msg)
    _CHECKED[split] = weakref.ref(form)
    return form, split


def ablate(
    form: SchurForm | Sequence[SchurForm],
    split: SchurSplit | Sequence[SchurSplit] | float,
    subsets: Iterable[str | Iterable[str]] | None = None,
    *,
    base: str = "W",
    out: np.ndarray | None = None,
    dtype: type[np.floating] | np.dtype | str | None = None,
) -> Ablation:
    """Zero subsets of the Schur couplings and rebuild the recurrent matrices.

    Parameters
    ----------
    form : SchurForm or sequence of SchurForm
        One ordered Schur form, or ``M`` forms of equal width ``n`` (model axis).
    split : SchurSplit, sequence of SchurSplit, or float
        The split of each form (same structure as ``form``), or a threshold α in
        (0, 1]: then every form is split by ``schur_split(form, α)``.
    subsets : iterable, optional
        Subsets of ``{"RR", "CR", "CC"}`` (see the module docstring for spellings);
        default :data:`DEFAULT_SUBSETS` (all 8).
    base : {"W", "QTQ"}
        ``"W"``: ``W̃(S) = W − Σ_{b∈S} Q N_b Qᵀ`` (the empty subset returns ``W``
        exactly). ``"QTQ"``: ``W̃(S) = Q Z_S(T) Qᵀ`` exactly as in the paper.
    out : ndarray, optional
        Preallocated result, shape (S, n, n) for one form or (M, S, n, n) for
        sequences, dtype float64 or float32, C-contiguous, writeable, sharing no
        memory with the forms; it becomes ``Ablation.W``. Writing the result is
        most of the work at n ≈ 72, so reusing ``out`` across calls saves the
        allocation and the page faults of a fresh array.
    dtype : {float64, float32}, optional
        Dtype of the result: float64 by default, or ``out.dtype`` when ``out`` is
        given. float32 output is computed in float64 and rounded once (half the
        memory traffic of the dominant write).

    Returns
    -------
    Ablation
        ``W`` (float64, or ``dtype``) of shape (S, n, n), or (M, S, n, n) for
        sequences; ``removed_mass`` (float64) of shape (S,) or (M, S).

    Raises
    ------
    TypeError
        Wrong argument types.
    ValueError
        Unknown subset names, empty subset list, unknown ``base``, mismatched
        lengths or widths, a split that does not belong to its form, or an ``out``
        of the wrong shape, layout or dtype, read-only, or overlapping the forms.
    """
    if base not in ("W", "QTQ"):
        msg = f"base must be 'W' or 'QTQ'; got {base!r}"
        raise ValueError(msg)
    out_dtype = _out_dtype(dtype, None) if out is None else None
    subs = _normalise_subsets(subsets)
    single = isinstance(form, SchurForm)
    pairs = _pairs(form, split)
    M, n, S = len(pairs), pairs[0][0].n, len(subs)
    addr, keep, blk, n_R, bounds = _stack_inputs(pairs)
    shape = (S, n, n) if single else (M, S, n, n)
    if out is None:
        result = np.empty(shape, dtype=out_dtype)
    else:
        result = _check_out(out, shape, dtype, bounds)
    mass = _run_kernel(addr, n, blk, n_R, subs, base, result.reshape(M, S, n, n))
    del keep  # the arrays behind ``addr`` are alive up to here
    return Ablation(
        W=result, subsets=subs, removed_mass=mass[0] if single else mass, base=base
    )


def _run_kernel(
    addr: np.ndarray,
    n: int,
    blk: np.ndarray,
    n_R: np.ndarray,
    subs: tuple[tuple[str, ...], ...],
    base: str,
    result: np.ndarray,
) -> np.ndarray:
    """Write every model's ablated matrices into ``result`` (M, S, n, n); returns
    the removed masses (M, S)."""
    M, S = result.shape[:2]
    sel = np.array([[float(b in sub) for b in BLOCK_NAMES] for sub in subs]).reshape(
        S, 3
    )
    mass = np.empty((M, S))
    with _KERNEL_LOCK:
        _k.ablate_batch(
            blas_table(),
            numba.get_num_threads(),
            addr,
            n,
            blk,
            n_R,
            sel,
            base == "W",
            result,
            mass,
        )
    return mass


def _pairs(form: object, split: object) -> list[tuple[SchurForm, SchurSplit]]:
    """Checked (form, split) pairs; a real ``split`` is α for ``schur_split``."""
    if isinstance(form, SchurForm):
        if is_real(split):
            split = schur_split(form, float(split), sep_method="none")  # type: ignore[arg-type]
        return [_check_pair(form, split, "")]
    if not isinstance(form, Sequence) or isinstance(form, str):
        msg = (
            f"form must be a SchurForm or a sequence of them; got {type(form).__name__}"
        )
        raise TypeError(msg)
    if is_real(split):
        alpha = float(split)  # type: ignore[arg-type]
        split = [
            schur_split(f, alpha, sep_method="none") if isinstance(f, SchurForm) else f
            for f in form
        ]
    if not isinstance(split, Sequence) or isinstance(split, SchurSplit):
        msg = (
            "split must be a sequence of SchurSplit matching the sequence of "
            f"forms; got {type(split).__name__}"
        )
        raise TypeError(msg)
    if len(form) != len(split):
        msg = (
            f"form and split must have equal lengths; got {len(form)} and {len(split)}"
        )
        raise ValueError(msg)
    if len(form) == 0:
        msg = "form must not be an empty sequence"
        raise ValueError(msg)
    pairs = [
        _check_pair(f, s, f"[{i}]")
        for i, (f, s) in enumerate(zip(form, split, strict=True))
    ]
    n0 = pairs[0][0].n
    for i, (f, _) in enumerate(pairs):
        if f.n != n0:
            msg = (
                f"form: all forms must have the same width; form[0] has n={n0}, "
                f"form[{i}] has n={f.n}"
            )
            raise ValueError(msg)
    return pairs


def _form_inputs(
    f: SchurForm,
) -> tuple[tuple[np.ndarray, ...], tuple[int, ...], tuple[int, ...]]:
    got = _FORM_INPUTS.get(f)
    if got is None:
        own = (f.Q, f.T, f.W)
        arrays = tuple(np.ascontiguousarray(a, dtype=np.float64) for a in own)
        bounds = tuple(x for a in own for x in byte_bounds(a))
        got = (arrays, tuple(a.ctypes.data for a in arrays), bounds)
        _FORM_INPUTS[f] = got
    return got


def _stack_inputs(
    pairs: list[tuple[SchurForm, SchurSplit]],
) -> tuple[np.ndarray, list[object], np.ndarray, np.ndarray, np.ndarray]:
    """Addresses of every model's Q, T, W, the arrays behind them, block numbers,
    n_R, and the byte bounds of the forms' arrays, shape (3 M, 2).

    The kernel reads the forms' arrays in place: stacking them would copy
    3·M·n² doubles (12 MB at 100 models of n = 72) on every call.
    """
    M, n = len(pairs), pairs[0][0].n
    inputs = [_form_inputs(f) for f, _ in pairs]
    addr = np.array([x[1] for x in inputs], dtype=np.intp).reshape(M, 3)
    bounds = np.array([x[2] for x in inputs], dtype=np.intp).reshape(3 * M, 2)
    blk = np.empty((M, n), dtype=np.int64)
    n_R = np.empty(M, dtype=np.int64)
    for m, (f, s) in enumerate(pairs):
        blk[m] = f.block_index
        n_R[m] = s.n_R
    return addr, [x[0] for x in inputs], blk, n_R, bounds


_OUT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def _out_dtype(dtype: object, out: np.ndarray | None) -> np.dtype:
    if dtype is None:
        return np.dtype(np.float64) if out is None else out.dtype
    try:
        dt: np.dtype = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as exc:
        msg = f"dtype must be float64 or float32; got {dtype!r}"
        raise TypeError(msg) from exc
    if dt not in _OUT_DTYPES:
        msg = f"dtype must be float64 or float32; got {dt}"
        raise TypeError(msg)
    return dt


def _check_out(
    out: object, shape: tuple[int, ...], dtype: object, bounds: np.ndarray
) -> np.ndarray:
    """``out`` checked; ``bounds`` (k, 2): byte bounds of the forms' arrays."""
    if not isinstance(out, np.ndarray) or isinstance(out, np.ma.MaskedArray):
        msg = f"out must be a numpy.ndarray; got {type(out).__name__}"
        raise TypeError(msg)
    want = _out_dtype(dtype, out)
    if out.dtype not in _OUT_DTYPES or out.dtype != want:
        msg = f"out must have dtype {want} (float64 or float32); got {out.dtype}"
        raise TypeError(msg)
    if out.shape != shape:
        msg = f"out must have shape {shape}; got {out.shape}"
        raise ValueError(msg)
    if not out.flags.c_contiguous:
        msg = "out must be C-contiguous"
        raise ValueError(msg)
    if not out.flags.writeable:
        msg = "out must be writeable"
        raise ValueError(msg)
    # The bounds test of np.may_share_memory, for all inputs at once.
    lo, hi = byte_bounds(out)
    if np.any((bounds[:, 0] < hi) & (bounds[:, 1] > lo)):
        msg = "out must not share memory with the forms' Q, T or W"
        raise ValueError(msg)
    return out
