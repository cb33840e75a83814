"""The four recurrent constructions of the paper, and the Cayley map with its gradient.

With ``m = Nh^{-1/2}`` (paper section 3):

``dense_default``
    ``W_hh ~ U[-m, m]`` entrywise (PyTorch's ``nn.RNN`` default).
``dense_orthogonal``
    ``W_hh = Q``, ``Q`` Haar-distributed orthogonal (QR of a Gaussian matrix with the
    signs of ``diag(R)`` folded into ``Q``).
``dense_normal``
    ``W_hh = Q D Q^T``, ``Q`` Haar orthogonal, ``D`` block-diagonal with ``Nh // 2``
    blocks ``[[a, -b], [b, a]]``, ``a, b ~ N(0, 1/6)`` (variance 1/6); for odd ``Nh``
    one trailing 1×1 block ``a ~ N(0, 1/6)``.
``cayley``
    ``W_hh = O(A) D O(A)^T`` with ``O(A) = (I - A)(I + A)^{-1}``, ``A`` skew-symmetric
    and ``D`` in real block form. ``A`` and ``D`` are the trained parameters, so every
    iterate keeps the form (and ``W_hh`` is always a normal matrix). Initialisation:
    ``A = (U - U^T)/2`` with ``U ~ U[-m, m]``; ``D = realblock(eig(W̃))`` with
    ``W̃ ~ U[-m, m]``.
``cayley_free``
    Not in the paper: ``W_hh = O(A) D O(A)^T`` with the same initialisation as
    ``cayley`` (the same generator gives the same ``A``, ``D`` and ``W_hh``), but every
    entry of ``D`` is trained. ``D`` leaves the block form after the first step, so
    ``W_hh`` is no longer normal and its Schur couplings can grow: whether they stay
    negligible becomes an observation about training rather than a property of the
    parametrisation (which keeps them exactly zero for ``cayley``).

The three dense constructions train ``W_hh`` itself; they differ only at step 0.

Input and readout weights are the same for every construction: ``W_xh ~ U[-m, m]``
(``nn.RNN``'s input weights) and ``W_hy ~ U[-m, m]`` (``nn.Linear(Nh, Ny)``, bound
``1/sqrt(fan_in)``). No biases (the paper sets ``b_h = b_y = 0``).

Real block form of ``D``
------------------------
``D`` is block diagonal with 1×1 blocks (real eigenvalues) and 2×2 blocks
``[[a, -b], [b, a]]`` (eigenvalues ``a ± ib``). The block sizes are fixed at
initialisation (a real-eigenvalue count never changes during training). The free
parameters of ``D`` are: the entry of each 1×1 block, and ``a`` and ``b`` of each 2×2
block; ``a`` sits on both diagonal entries and ``b`` on the lower off-diagonal entry
(``-b`` on the upper one). Every other entry is zero and never trained.

Free parameters of ``A``: its strictly upper triangle; ``A[j, i] = -A[i, j]`` and
``diag(A) = 0``.

Gradients from :func:`cayley_pullback` are laid out in the same matrices so that an
element-wise optimizer (SGD, Adam) applied to the full matrices ``A`` and ``D`` is
exactly that optimizer on the free parameters and keeps both forms bit-for-bit:
``dA`` is skew with ``dA[i, j] = ∂L/∂A[i, j]`` for ``i < j`` (the entry and its
mirror tied), and ``dD`` has ``∂L/∂a`` on both diagonal entries of a 2×2 block,
``∂L/∂b`` below and ``-∂L/∂b`` above the diagonal, ``∂L/∂d`` on 1×1 blocks, and zeros
elsewhere. For ``cayley_free`` (``free_D=True`` in :func:`W_from_cayley` and
:func:`cayley_pullback`, ``block_sizes=None`` in :class:`CayleyMap`) ``D`` is any real
matrix and ``dD = ∂L/∂D = O^T G O`` entry by entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _cayley_kernels as _kernels
from ._validation import check_int

__all__ = [
    "CAYLEY_CONSTRUCTIONS",
    "CONSTRUCTIONS",
    "PAPER_CONSTRUCTIONS",
    "CayleyMap",
    "W_from_cayley",
    "block_sizes_of",
    "cayley_init",
    "cayley_orthogonal",
    "cayley_pullback",
    "check_construction",
    "dense_default",
    "dense_normal",
    "dense_orthogonal",
    "haar_orthogonal",
    "init_params",
    "realblock",
]

#: The paper's four constructions (the reproduction's copy experiment trains these).
PAPER_CONSTRUCTIONS = ("dense_default", "dense_orthogonal", "dense_normal", "cayley")

#: Every construction :func:`init_params` and training know.
CONSTRUCTIONS = (*PAPER_CONSTRUCTIONS, "cayley_free")

#: Constructions trained through the Cayley parameters ``A`` and ``D``.
CAYLEY_CONSTRUCTIONS = ("cayley", "cayley_free")


def check_construction(construction: Any) -> str:
    """Return ``construction`` if it names one of :data:`CONSTRUCTIONS`; raise
    ``TypeError`` (not a string) or ``ValueError`` (unknown name) otherwise."""
    if not isinstance(construction, str):
        msg = f"construction must be a string; got {type(construction).__name__}"
        raise TypeError(msg)
    if construction not in CONSTRUCTIONS:
        msg = f"unknown construction {construction!r}; expected one of {CONSTRUCTIONS}"
        raise ValueError(msg)
    return construction


def _check_n(n: Any) -> int:
    return check_int("hidden size", n, 1)


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        msg = f"rng must be a numpy.random.Generator; got {type(rng).__name__}"
        raise TypeError(msg)
    return rng


def _square(name: str, a: npt.ArrayLike, n: int | None = None) -> np.ndarray:
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.floating):
        msg = f"{name} must be a real floating-point array; got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        msg = f"{name} must be a non-empty square matrix; got shape {arr.shape}"
        raise ValueError(msg)
    if n is not None and arr.shape[0] != n:
        msg = f"{name} must have shape ({n}, {n}); got {arr.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(arr)):
        msg = f"{name} must be finite"
        raise ValueError(msg)
    return arr.astype(np.float64, copy=False)


def haar_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-distributed orthogonal matrix, float64 ``(n, n)``.

    QR of a standard Gaussian matrix with ``Q`` multiplied column-wise by
    ``sign(diag(R))``, which makes the distribution exactly Haar (Mezzadri 2007).
    """
    n = _check_n(n)
    rng = _check_rng(rng)
    z = rng.standard_normal((n, n))
    q, r = np.linalg.qr(z)
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    out: np.ndarray = q * d[None, :]
    return out


def dense_default(n: int, rng: np.random.Generator) -> np.ndarray:
    """``W ~ U[-m, m]`` entrywise, ``m = n^{-1/2}``; float64 ``(n, n)``."""
    n = _check_n(n)
    m = 1.0 / np.sqrt(n)
    return _check_rng(rng).uniform(-m, m, size=(n, n))


def dense_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """Haar orthogonal ``W``; float64 ``(n, n)``."""
    return haar_orthogonal(n, rng)


def _normal_blocks(n: int, rng: np.random.Generator) -> np.ndarray:
    d = np.zeros((n, n))
    sd = np.sqrt(1.0 / 6.0)
    for i in range(0, n - 1, 2):
        a, b = rng.normal(0.0, sd, size=2)
        d[i, i] = d[i + 1, i + 1] = a
        d[i + 1, i] = b
        d[i, i + 1] = -b
    if n % 2:
        d[n - 1, n - 1] = rng.normal(0.0, sd)
    return d


def dense_normal(n: int, rng: np.random.Generator) -> np.ndarray:
    """``W = Q D Q^T``, ``Q`` Haar, ``D`` 2×2 blocks ``[[a,-b],[b,a]]``, ``a,b ~ N(0,1/6)``.

    For odd ``n`` a trailing 1×1 block ``a ~ N(0, 1/6)``. float64 ``(n, n)``; normal
    (commutes with its transpose) up to rounding.
    """
    n = _check_n(n)
    rng = _check_rng(rng)
    q = haar_orthogonal(n, rng)
    d = _normal_blocks(n, rng)
    out: np.ndarray = q @ d @ q.T
    return out


def realblock(eigvals: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Real block form of the spectrum of a real matrix.

    Parameters
    ----------
    eigvals : array_like of complex, shape (n,)
        Eigenvalues of a real matrix (non-real ones in exact conjugate pairs, as LAPACK
        returns them).

    Returns
    -------
    D : ndarray, float64 (n, n)
        Block diagonal: a 1×1 block per real eigenvalue, a 2×2 block ``[[a, -b], [b, a]]``
        (``b > 0``) per pair ``a ± ib``. Blocks are ordered by non-increasing modulus,
        ties by increasing argument in ``[0, π]``.
    block_sizes : ndarray, int64 (n_blocks,)
        1 or 2 per block, in order.
    """
    lam = np.asarray(eigvals)
    if lam.ndim != 1 or lam.size == 0:
        msg = f"eigvals must be a non-empty 1-D array; got shape {lam.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(lam)):
        msg = "eigvals must be finite"
        raise ValueError(msg)
    lam = lam.astype(np.complex128)
    upper = lam[lam.imag > 0]
    lower = lam[lam.imag < 0]
    real = lam[lam.imag == 0].real
    if upper.size != lower.size or not np.array_equal(
        np.sort_complex(upper), np.sort_complex(np.conj(lower))
    ):
        msg = "eigvals must come in exact complex-conjugate pairs (spectrum of a real matrix)"
        raise ValueError(msg)
    reps = np.concatenate([real.astype(np.complex128), upper])
    order = np.lexsort((np.angle(reps) % (2 * np.pi), -np.abs(reps)))
    n = lam.size
    d = np.zeros((n, n))
    sizes = []
    i = 0
    for k in order:
        z = reps[k]
        if z.imag == 0:
            d[i, i] = z.real
            sizes.append(1)
            i += 1
        else:
            d[i, i] = d[i + 1, i + 1] = z.real
            d[i + 1, i] = z.imag
            d[i, i + 1] = -z.imag
            sizes.append(2)
            i += 2
    return d, np.asarray(sizes, dtype=np.int64)


def block_sizes_of(D: npt.ArrayLike, *, check: bool = True) -> np.ndarray:
    """Block sizes of a matrix in real block form (a 2×2 block where ``D[i+1, i] != 0``).

    With ``check`` (default) raises ``ValueError`` unless ``D`` is exactly in the
    documented form (zeros outside the blocks, equal diagonals and opposite
    off-diagonals inside 2×2 blocks).
    """
    Dm = _square("D", D)
    n = Dm.shape[0]
    found = []
    i = 0
    while i < n:
        if i + 1 < n and (Dm[i + 1, i] != 0 or Dm[i, i + 1] != 0):
            found.append(2)
            i += 2
        else:
            found.append(1)
            i += 1
    sizes = np.asarray(found, dtype=np.int64)
    if check:
        _check_block_form(Dm, sizes)
    return sizes


def _check_skew(A: np.ndarray) -> None:
    if not np.array_equal(A, -A.T):
        msg = "A must be exactly skew-symmetric (A == -A.T)"
        raise ValueError(msg)


def cayley_orthogonal(A: npt.ArrayLike) -> np.ndarray:
    """``O(A) = (I - A)(I + A)^{-1}`` for skew-symmetric ``A``; float64 ``(n, n)``.

    ``I + A`` is always invertible for skew ``A`` (its eigenvalues are ``1 + iμ``).
    """
    Am = _square("A", A)
    _check_skew(Am)
    return CayleyMap(Am, np.eye(Am.shape[0]), np.ones(Am.shape[0], np.int64)).O


class CayleyMap:
    """``W = O(A) D O(A)^T`` evaluated once, with its reverse-mode pullback.

    Holds ``M = (I + A)^{-1}``, ``O = (I - A) M = 2M - I`` and ``W``, so the pullback
    costs four matrix products (six for a dense ``D``). Both run in Numba kernels on
    the calling thread, never in multi-threaded BLAS (see
    :mod:`rnnschur._cayley_kernels` for why). Inputs are not validated here (use
    :func:`W_from_cayley` / :func:`cayley_pullback` for checked entry points).

    Parameters
    ----------
    A : ndarray, float64 (n, n), skew-symmetric
    D : ndarray, float64 (n, n)
        Real block form, or any matrix when ``block_sizes`` is None.
    block_sizes : ndarray of int or None
        The block sizes of ``D`` (1 or 2 each); None: ``D`` is dense and every entry
        is a parameter (construction ``cayley_free``).
    """

    __slots__ = ("A", "D", "M", "O", "W", "_OD", "_pairs", "_singles")

    def __init__(
        self, A: np.ndarray, D: np.ndarray, block_sizes: np.ndarray | None
    ) -> None:
        self.A = np.ascontiguousarray(A, dtype=np.float64)
        self.D = np.ascontiguousarray(D, dtype=np.float64)
        self._singles: np.ndarray | None = None
        self._pairs: np.ndarray | None = None
        if block_sizes is None:
            self.M, self.O, self._OD, self.W = _kernels.cayley_forward_free(
                self.A, self.D
            )
            return
        block_sizes = np.asarray(block_sizes)
        starts = np.concatenate([[0], np.cumsum(block_sizes)[:-1]]).astype(np.int64)
        self._singles = starts[block_sizes == 1]
        self._pairs = starts[block_sizes == 2]
        self.M, self.O, self._OD, self.W = _kernels.cayley_forward(
            self.A, self.D, self._singles, self._pairs
        )

    def pullback(self, dW: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(dA, dD)``, float64 ``(n, n)`` each, from ``dW = ∂L/∂W`` ``(n, n)``
        (layout: see the module docstring)."""
        G = np.ascontiguousarray(dW, dtype=np.float64)
        if self._singles is None or self._pairs is None:
            return _kernels.cayley_pullback_free(G, self.M, self.O, self._OD, self.D)
        return _kernels.cayley_pullback(
            G,
            self.M,
            self.O,
            self._OD,
            self.D,
            self._singles,
            self._pairs,
        )


def _checked_cayley(
    A: npt.ArrayLike,
    D: npt.ArrayLike,
    block_sizes: npt.ArrayLike | None,
    free_D: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    A = _square("A", A)
    _check_skew(A)
    D = _square("D", D, A.shape[0])
    if not isinstance(free_D, (bool, np.bool_)):
        msg = f"free_D must be a bool; got {type(free_D).__name__}"
        raise TypeError(msg)
    if free_D:
        if block_sizes is not None:
            msg = "block_sizes must be None when free_D is true (D is dense)"
            raise ValueError(msg)
        return A, D, None
    if block_sizes is None:
        block_sizes = block_sizes_of(D)
    else:
        block_sizes = np.asarray(block_sizes)
        if (
            block_sizes.ndim != 1
            or not np.issubdtype(block_sizes.dtype, np.integer)
            or not np.all((block_sizes == 1) | (block_sizes == 2))
            or block_sizes.sum() != A.shape[0]
        ):
            msg = (
                f"block_sizes must be a 1-D array of 1s and 2s summing to {A.shape[0]}"
            )
            raise ValueError(msg)
        _check_block_form(D, block_sizes)
    return A, D, block_sizes.astype(np.int64)


def _check_block_form(D: np.ndarray, sizes: np.ndarray) -> None:
    ref = np.zeros_like(D)
    i = 0
    for s in sizes:
        blk = D[i : i + s, i : i + s]
        if s == 2 and (blk[0, 0] != blk[1, 1] or blk[0, 1] != -blk[1, 0]):
            msg = f"D's 2×2 block at {i} is not of the form [[a, -b], [b, a]]"
            raise ValueError(msg)
        ref[i : i + s, i : i + s] = blk
        i += s
    if not np.array_equal(ref, D):
        msg = "D does not match block_sizes (non-zero entries outside the blocks)"
        raise ValueError(msg)


def W_from_cayley(
    A: npt.ArrayLike,
    D: npt.ArrayLike,
    *,
    block_sizes: npt.ArrayLike | None = None,
    free_D: bool = False,
) -> np.ndarray:
    """Recurrent matrix ``W = O(A) D O(A)^T``.

    Parameters
    ----------
    A : array_like, float (n, n)
        Exactly skew-symmetric.
    D : array_like, float (n, n)
        Real block form (1×1 blocks and 2×2 blocks ``[[a, -b], [b, a]]``), or any
        finite matrix with ``free_D``.
    block_sizes : array_like of int, optional
        Block sizes of ``D``; inferred from its non-zero pattern when omitted. Must be
        omitted with ``free_D``.
    free_D : bool
        ``D`` is a dense matrix (construction ``cayley_free``).

    Returns
    -------
    ndarray, float64 (n, n)
    """
    A, D, sizes = _checked_cayley(A, D, block_sizes, free_D)
    return CayleyMap(A, D, sizes).W


def cayley_pullback(
    A: npt.ArrayLike,
    D: npt.ArrayLike,
    dW: npt.ArrayLike,
    *,
    block_sizes: npt.ArrayLike | None = None,
    free_D: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Pull ``∂L/∂W`` back to the Cayley parameters in closed form.

    With ``M = (I + A)^{-1}`` (one LU solve), ``O = (I - A) M`` and
    ``G_O = G O D^T + G^T O D`` (``G = ∂L/∂W``):
    ``E = -2 M^T G_O M^T``, ``dA = E - E^T``, and ``∂L/∂D = O^T G O`` collapsed onto the
    free parameters of ``D`` (with ``free_D``: all of it).

    Parameters
    ----------
    A, D : array_like, float (n, n)
        As in :func:`W_from_cayley`.
    dW : array_like, float (n, n)
        Gradient of the loss with respect to ``W``.
    block_sizes : array_like of int, optional
    free_D : bool
        As in :func:`W_from_cayley`.

    Returns
    -------
    dA : ndarray, float64 (n, n)
        Skew-symmetric; ``dA[i, j] = ∂L/∂A[i, j]`` for ``i < j`` with ``A[j, i] =
        -A[i, j]`` tied.
    dD : ndarray, float64 (n, n)
        Gradient with respect to the free parameters of ``D`` laid out in ``D``'s block
        pattern (see the module docstring); with ``free_D`` the full ``∂L/∂D``.
    """
    A, D, sizes = _checked_cayley(A, D, block_sizes, free_D)
    dW = _square("dW", dW, A.shape[0])
    return CayleyMap(A, D, sizes).pullback(dW)


def cayley_init(
    n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial Cayley parameters ``(A, D, block_sizes)`` as in the paper.

    ``U ~ U[-m, m]``, ``A = (U - U^T)/2``; ``W̃ ~ U[-m, m]``, ``D = realblock(eig(W̃))``
    (drawn in that order from ``rng``). float64.
    """
    n = _check_n(n)
    rng = _check_rng(rng)
    m = 1.0 / np.sqrt(n)
    u = rng.uniform(-m, m, size=(n, n))
    A = (u - u.T) / 2.0
    w = rng.uniform(-m, m, size=(n, n))
    D, sizes = realblock(np.linalg.eigvals(w))
    return A, D, sizes


def init_params(
    construction: str,
    n_inputs: int,
    hidden: int,
    n_outputs: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Initial parameters of a network, float64.

    Parameters
    ----------
    construction : str
        One of :data:`CONSTRUCTIONS`.
    n_inputs, hidden, n_outputs : int
        ``Nx``, ``Nh``, ``Ny``. Tasks expose them as ``task.n_inputs`` etc.
    rng : numpy.random.Generator
        Drawn in the order: recurrent construction, ``W_xh``, ``W_hy``.

    Returns
    -------
    dict
        ``"W_xh"`` ``(Nh, Nx)``, ``"W_hh"`` ``(Nh, Nh)``, ``"W_hy"`` ``(Ny, Nh)``; for
        ``"cayley"`` and ``"cayley_free"`` also ``"A"``, ``"D"`` ``(Nh, Nh)`` and
        ``"D_blocks"`` (int64 block sizes of the initial ``D``), with ``W_hh =
        W_from_cayley(A, D)``. Both draw the same arrays from the same generator.
    """
    check_construction(construction)
    n_inputs = _check_n(n_inputs)
    hidden = _check_n(hidden)
    n_outputs = _check_n(n_outputs)
    rng = _check_rng(rng)
    out: dict[str, np.ndarray] = {}
    if construction in CAYLEY_CONSTRUCTIONS:
        A, D, sizes = cayley_init(hidden, rng)
        out.update(A=A, D=D, D_blocks=sizes)
        out["W_hh"] = CayleyMap(A, D, sizes).W
    else:
        builder = {
            "dense_default": dense_default,
            "dense_orthogonal": dense_orthogonal,
            "dense_normal": dense_normal,
        }[construction]
        out["W_hh"] = builder(hidden, rng)
    m = 1.0 / np.sqrt(hidden)
    out["W_xh"] = rng.uniform(-m, m, size=(hidden, n_inputs))
    out["W_hy"] = rng.uniform(-m, m, size=(n_outputs, hidden))
    return out
