"""Ordered real Schur coordinates of a recurrent matrix and their R/C split.

``W = Q T Qᵀ`` with ``Q`` orthogonal and ``T`` real quasi-upper-triangular, every 2×2
diagonal block in standard form and the diagonal blocks ordered by non-increasing
eigenvalue modulus (section 2 of the paper). ``T = B + N``: ``B`` holds the 1×1/2×2
diagonal (eigenvalue) blocks, ``N`` the strictly block-upper-triangular couplings.

How the form is computed
------------------------
1. An unordered real Schur form, in float64. ``method="auto"`` takes the faster
   source measured for the size (``benchmarks/run.py --only schur``): for
   ``n <= 1024`` the compiled core's own blocked Householder Hessenberg reduction, then the
   Francis double-shift QR (``csrc/schur_hqr.cpp``, with the Ahues & Tisseur
   deflation test) below ``n = 75`` and a small-bulge multishift QR with aggressive
   early deflation (``csrc/schur_mqr.cpp``, after Braman, Byers & Mathias 2002; the
   algorithm of LAPACK ``dlaqr0``, in the project's own code) from there, with
   x86-64-v3 (AVX2/FMA) clones selected at run time and,
   when OpenBLAS may use more than one thread, a second thread that forms ``Q`` and
   applies the iteration's updates outside the active block (of ``Q``, and of ``T``
   above or right of the block; same result bit for bit; n >= 128);
   above, LAPACK ``dgees`` through SciPy. Eigen's
   ``RealSchur`` is available as ``method="eigen"`` (slower at every size).
2. The compiled core (``csrc/schur_swap.cpp``, the project's own code) then

   * zeroes the entries below the first subdiagonal and standardises every 2×2
     block by a rotation (equal diagonal entries, off-diagonal entries of opposite
     sign, as LAPACK's ``dlanv2`` leaves them); a 2×2 block with real eigenvalues is
     split into two 1×1 blocks (Eigen leaves such blocks);
   * reorders the blocks by adjacent swaps (Bai & Demmel): a Givens rotation for a
     1×1/1×1 swap (backward stable, never rejected); otherwise the small Sylvester
     equation ``A X − X B = s C`` is solved by Gaussian elimination with complete
     pivoting and scaling, and the swap is the orthogonal matrix of Householder
     reflectors from ``[−X; s I]``. Every swap involving a 2×2 block must pass two
     tests before it is applied: the *weak* test (the new subdiagonal block, and a
     moved 1×1 eigenvalue, within ``10 ε max|D|``, as in LAPACK ``dlaexc``) and the
     *strong* test (``‖D − V D̃ Vᵀ‖_F ≤ 20 ε ‖D‖_F`` for the swapped diagonal block
     ``D``), evaluated in double and, if that fails, re-evaluated in extended
     precision. The moved 2×2 blocks are re-standardised on the small block (the
     rotations folded into the swap) and block sizes are re-read after every swap
     (a 2×2 block may split).

Rejected swaps
--------------
A swap that fails either test is retried, in this order: (a) up to three steps of
iterative refinement of ``X``; (b) the Sylvester solve, refinement and reflectors in
extended precision (``long double``, 64-bit mantissa on x86-64); (c) an orthonormal
basis of the invariant subspace from the SVD of ``p(D)`` (``p`` the characteristic
polynomial of the block moving up), in double, then in extended precision. Each
candidate must pass both tests. If none does,
:class:`rnnschur.schur.SwapRejected` (a subclass of ``ValueError``) is raised,
naming the two blocks (rows, eigenvalues, moduli) and the residuals versus the
thresholds; a wrong factorisation is never returned
(``tests/test_schur.py::test_adversarial_swaps`` searches adversarial swaps).

Ordering rule (deterministic)
-----------------------------
Block moduli are sorted decreasingly and grouped into clusters: a new cluster starts
wherever the gap to the previous modulus exceeds ``rtol · previous + atol``. The
blocks are then *stably* sorted by cluster: blocks of different clusters appear in
order of decreasing modulus, blocks of one cluster keep the relative order the
unordered factorisation gave them. Hence blocks whose moduli agree to ``rtol`` are
never swapped (an orthogonal or Cayley matrix, all ``|λ| = 1``, needs no swap at all)
and the number of swaps is the minimum for that target order. Within a conjugate pair
the eigenvalues are reported as ``(re + i|im|, re − i|im|)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from . import _core
from ._schur_source import ordered_factor, resolve_method
from ._validation import is_real

__all__ = [
    "DEFAULT_RTOL",
    "SCALE_LIMIT",
    "SchurForm",
    "SchurSplit",
    "SwapRejected",
    "leading_count",
    "ordered_schur",
    "schur_split",
]

#: Raised when two adjacent blocks cannot be swapped stably (a ``ValueError``); the
#: public name of ``rnnschur._core.SwapRejected``, so callers need not import the
#: private extension module to catch it.
SwapRejected = _core.SwapRejected

#: Default relative tolerance under which two block moduli count as equal.
DEFAULT_RTOL = 1e-8


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _as_square_float64(W: object, name: str = "W") -> np.ndarray:
    """Validate a real square finite matrix and return a float64 copy (C order)."""
    if isinstance(W, np.ma.MaskedArray):  # its mask would be silently ignored
        msg = f"{name} must not be a masked array; pass {name}.filled(value) instead"
        raise TypeError(msg)
    if isinstance(W, np.ndarray):
        arr = W
    else:
        try:
            arr = np.asarray(W)
        except (TypeError, ValueError) as exc:
            msg = f"{name} must be a real 2-D array, got {type(W).__name__}"
            raise TypeError(msg) from exc
    if arr.dtype.kind == "c":
        msg = f"{name} must be real; got complex dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.dtype.kind != "f":
        msg = (
            f"{name} must be a floating-point array (float16/32/64); "
            f"got dtype {arr.dtype}"
        )
        raise TypeError(msg)
    if arr.ndim != 2:
        msg = f"{name} must be 2-D (n, n); got {arr.ndim}-D array of shape {arr.shape}"
        raise ValueError(msg)
    if arr.shape[0] != arr.shape[1]:
        msg = f"{name} must be square; got shape {arr.shape}"
        raise ValueError(msg)
    if arr.shape[0] == 0:
        msg = f"{name} must not be empty; got shape {arr.shape}"
        raise ValueError(msg)
    out = np.array(arr, dtype=np.float64, order="C", copy=True)
    if not np.isfinite(out).all():
        msg = f"{name} must be finite; it contains NaN or inf"
        raise _core.NonFiniteError(msg)
    return out


@dataclass(frozen=True, eq=False)
class SchurForm:
    """Ordered real Schur form ``W = Q T Qᵀ`` (see the module docstring).

    Attributes
    ----------
    Q : ndarray, float64, shape (n, n)
        Orthogonal Schur vectors.
    T : ndarray, float64, shape (n, n)
        Quasi-upper-triangular, standardised 2×2 blocks, blocks ordered by
        non-increasing eigenvalue modulus.
    eigvals : ndarray, complex128, shape (n,)
        Eigenvalue of each Schur position, in block order; a 2×2 block gives the
        adjacent pair ``(re + i|im|, re − i|im|)``.
    block_starts, block_sizes : ndarray, int64, shape (n_blocks,)
        First position and size (1 or 2) of every diagonal block.
    block_clusters : ndarray, int64, shape (n_blocks,)
        Modulus cluster of every block (0 = largest moduli; non-decreasing along
        the blocks). Blocks of one cluster tied under the ordering rule.
    W : ndarray, float64, shape (n, n)
        The factorised matrix (a float64 copy of the input).
    rtol, atol : float
        Tolerances of the ordering rule (moduli closer than ``rtol·m + atol`` tie).
    swaps : int
        Number of adjacent block swaps the reordering made.
    method : str
        Source of the unordered factorisation: ``"own"``, ``"lapack"`` or ``"eigen"``.

    All arrays are read-only.
    """

    Q: np.ndarray
    T: np.ndarray
    eigvals: np.ndarray
    block_starts: np.ndarray
    block_sizes: np.ndarray
    block_clusters: np.ndarray
    W: np.ndarray
    rtol: float
    atol: float
    swaps: int
    method: str

    @property
    def n(self) -> int:
        """Matrix width ``n``."""
        return int(self.T.shape[0])

    @cached_property
    def block_index(self) -> np.ndarray:
        """Block number of every Schur position, int64 shape (n,) (read-only)."""
        return _readonly(np.repeat(np.arange(self.block_sizes.size), self.block_sizes))

    @cached_property
    def block_moduli(self) -> np.ndarray:
        """Eigenvalue modulus of every block, float64 shape (n_blocks,) (read-only)."""
        return _readonly(np.abs(self.eigvals[self.block_starts]))

    @cached_property
    def _block_mask(self) -> np.ndarray:
        b = self.block_index
        mask: np.ndarray = b[:, None] == b[None, :]
        return mask

    @property
    def B(self) -> np.ndarray:
        """Block-diagonal part of ``T`` (the eigenvalue blocks), shape (n, n)."""
        return np.where(self._block_mask, self.T, 0.0)

    @property
    def N(self) -> np.ndarray:
        """Strictly block-upper-triangular part of ``T`` (the couplings), (n, n)."""
        return np.where(self._block_mask, 0.0, self.T)

    @cached_property
    def spectral_radius(self) -> float:
        """ρ(W) = max |λ| (0.0 for a matrix whose eigenvalues are all 0)."""
        return float(np.max(np.abs(self.eigvals)))

    @cached_property
    def residual(self) -> float:
        """‖W − Q T Qᵀ‖_F / ‖W‖_F (the absolute error if ``W`` is zero)."""
        # Exact power-of-two scaling: squared norms of W near 1e±200 over/underflow.
        e = _pow2_exponent(self.W)
        W, T = (np.ldexp(self.W, e), np.ldexp(self.T, e)) if e else (self.W, self.T)
        err = float(np.linalg.norm(W - self.Q @ T @ self.Q.T))
        nw = float(np.linalg.norm(W))
        return err / nw if nw > 0 else err

    @cached_property
    def orthogonality_error(self) -> float:
        """‖QᵀQ − I‖_F."""
        return float(np.linalg.norm(self.Q.T @ self.Q - np.eye(self.n)))


def ordered_schur(
    W: object,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float | None = None,
    method: str = "auto",
) -> SchurForm:
    """Real Schur form of ``W`` ordered by non-increasing eigenvalue modulus.

    Parameters
    ----------
    W : array_like, shape (n, n)
        Real, finite, floating-point square matrix, ``n >= 1`` (float16/32/64 are
        converted to float64; integer, bool and complex input is a ``TypeError``).
    rtol : float, default 1e-8
        Relative tolerance of the ordering rule: moduli within ``rtol`` of each
        other (chained) form one cluster whose blocks keep their relative order.
    atol : float, optional
        Absolute part of the tie tolerance; default ``n · ε · ‖W‖_F``, the size of
        the factorisation's backward error (computed as ``n · ε · ‖T‖_F``), so that
        eigenvalues at rounding level
        (for example the zero eigenvalues of a singular ``W``) are not reordered.
    method : {"auto", "own", "lapack", "eigen"}
        Source of the unordered factorisation: the compiled core's own QR
        (``"own"``: double-shift below n = 75, multishift from there), LAPACK
        ``dgees`` (``"lapack"``) or Eigen (``"eigen"``).
        ``"auto"`` picks the one measured faster for this ``n``: own up to 1024,
        LAPACK above. The own QR uses a second thread (for ``Q``; ``n >= 128``)
        unless ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) is 1 or the
        machine has one core; the result is the same bit for bit.
        If the own QR iteration fails to converge, LAPACK is used instead. The
        standardisation and reordering are always the compiled core's.

    Returns
    -------
    SchurForm
        ``Q``, ``T`` (float64, (n, n)), ``eigvals`` (complex128, (n,)), the block
        structure, and diagnostics (``residual``, ``orthogonality_error``).

    Raises
    ------
    TypeError
        ``W`` is not a real floating-point array.
    ValueError
        ``W`` is not square, is empty or not finite; a tolerance is negative or not
        finite; ``method`` is unknown; or two blocks could not be swapped stably
        (:class:`SwapRejected`, a ``ValueError``, naming the blocks).
    numpy.linalg.LinAlgError
        The QR algorithm did not converge.

    Notes
    -----
    Guarantees (tested on adversarial families with ``c = 16``, ``ε = 2⁻⁵²``):
    ``‖W − QTQᵀ‖_F ≤ c n ε ‖W‖_F`` and ``‖QᵀQ − I‖_F ≤ c n ε``; equal input gives
    bit-identical output. A ``W`` whose largest entry lies outside ``2^±400`` is
    factored as ``W·2^e`` (an exact scaling to ``max|W·2^e| ∈ [0.5, 1)``) and ``T``,
    ``eigvals``, ``atol`` are scaled back, so the guarantees hold up to the ends of
    the float64 range (``ValueError`` if ``T`` itself would overflow, or a 2×2
    block of a tiny ``W`` underflow).
    """
    Wf = _as_square_float64(W, "W")
    rtol = _check_tol(rtol, "rtol")
    # The default atol is computed in the compiled core from ||T||_F (= ||W||_F up to
    # rounding): a NumPy BLAS call here would leave NumPy's OpenBLAS threads
    # spinning against SciPy's inside dgees.
    atol_in = -1.0 if atol is None else _check_tol(atol, "atol")
    method = resolve_method(method, Wf.shape[0])
    # Far from 1 the core's squared norms over/underflow: the default atol becomes
    # inf (every modulus ties, nothing is reordered) or 0, and the swap tests run in
    # subnormals (a wrong factorisation at 1e-300). Factor W·2^e, which is exact,
    # and scale back; W within 2^±400 is factored as given.
    e = _pow2_exponent(Wf)
    Ws = np.ldexp(Wf, e) if e else Wf
    if e and atol_in >= 0.0:
        atol_in = _ldexp_clamped(atol_in, e)
    T, Q, stats, method = ordered_factor(Ws, rtol, atol_in, method)
    return _schur_form(Wf, T, Q, stats, e, rtol, method)


def _schur_form(
    Wf: np.ndarray,
    T: np.ndarray,
    Q: np.ndarray,
    stats: dict[str, Any],
    e: int,
    rtol: float,
    method: str,
) -> SchurForm:
    """The :class:`SchurForm` of ``Wf`` from the ordered form ``(T, Q)`` of
    ``Wf·2^e`` and the core's reordering ``stats``."""
    starts, sizes, eigvals = _core.schur_blocks(T)
    atol_used = float(stats["atol"])
    if e:
        T, eigvals = _scale_back(T, eigvals, e)
        atol_used = _ldexp_clamped(atol_used, -e)
    return SchurForm(
        Q=_readonly(np.ascontiguousarray(Q)),
        T=_readonly(np.ascontiguousarray(T)),
        eigvals=_readonly(eigvals),
        block_starts=_readonly(starts),
        block_sizes=_readonly(sizes),
        block_clusters=_readonly(np.asarray(stats["block_clusters"], dtype=np.int64)),
        W=_readonly(Wf),
        rtol=rtol,
        atol=atol_used,
        swaps=int(stats["swaps"]),
        method=method,
    )


def _scale_back(
    Ts: np.ndarray, eigvals: np.ndarray, e: int
) -> tuple[np.ndarray, np.ndarray]:
    """``T`` and the eigenvalues of ``W`` from those of ``W·2^e``; ``ValueError`` if
    they leave the float64 range (overflow, or a 2×2 block underflowing)."""
    with np.errstate(over="ignore"):
        T = np.ldexp(Ts, -e)
        ev = np.empty_like(eigvals)
        ev.real = np.ldexp(eigvals.real, -e)
        ev.imag = np.ldexp(eigvals.imag, -e)
        finite = np.isfinite(T).all() and np.isfinite(np.abs(ev)).all()
    if not finite:  # T, or a modulus |λ|, beyond the float64 range
        msg = (
            "W is too large in magnitude: its Schur form T overflows float64 "
            "(scale W down)"
        )
        raise ValueError(msg)
    if not np.array_equal(np.diagonal(T, -1) != 0, np.diagonal(Ts, -1) != 0):
        msg = (
            "W is too small in magnitude: a 2x2 block of its Schur form "
            "underflows in float64 (scale W up)"
        )
        raise ValueError(msg)
    return T, ev


#: Matrices whose largest entry lies beyond ``2**±400`` are scaled by a power of two
#: before factorisation (and ablation), so intermediate products cannot overflow.
SCALE_LIMIT = 2.0**400


def _pow2_exponent(A: np.ndarray) -> int:
    """e with max|A|·2^e in [0.5, 1) if max|A| lies outside 2^±400, else 0."""
    amax = float(np.max(np.abs(A)))
    if amax > SCALE_LIMIT or 0.0 < amax < 1.0 / SCALE_LIMIT:
        return -math.frexp(amax)[1]
    return 0


def _ldexp_clamped(x: float, e: int) -> float:
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return float(np.finfo(np.float64).max)


def _check_tol(x: Any, name: str) -> float:
    if not is_real(x):
        msg = f"{name} must be a real number; got {type(x).__name__}"
        raise TypeError(msg)
    v = float(x)
    if not math.isfinite(v) or v < 0:
        msg = f"{name} must be finite and >= 0; got {v}"
        raise ValueError(msg)
    return v


@dataclass(frozen=True, eq=False)
class SchurSplit:
    """Partition of the ordered Schur positions into a leading set R and the rest C.

    Attributes
    ----------
    n : int
        Matrix width.
    n_R : int
        Number of leading Schur positions in R: the longest leading run of blocks with
        ``|λ| ≥ alpha · ρ(W)``. A 2×2 block is never cut (both of its eigenvalues have
        the same modulus). If ``ρ(W) = 0`` the threshold is 0 and ``n_R = n``.
    alpha : float
        The relative threshold α ∈ (0, 1].
    threshold : float
        ``alpha · ρ(W)``.
    RR, CR, CC : ndarray, bool, shape (n, n)
        Masks of the three coupling blocks of ``N`` (read-only): ``RR`` the strictly
        block-upper part inside R × R, ``CR`` rows R × columns C (the paper's
        ``T_C→R``), ``CC`` the strictly block-upper part inside C × C. They are
        disjoint and their union is the support of ``N``.
    sep : float
        Separation of the R and C diagonal parts,
        ``sep_F(T_RR, T_CC) = σ_min(I ⊗ T[:n_R, :n_R] − T[n_R:, n_R:]ᵀ ⊗ I)``:
        an estimate by power iteration on the inverse Sylvester operator (an upper
        bound converging to it, ``sep_method="estimate"``) or exact from the
        Kronecker matrix's SVD (``sep_method="exact"``). ``inf`` when R or C is
        empty, ``nan`` when not computed. Small values mean the R/C invariant
        subspaces are ill-conditioned (``‖T_C→R‖ / sep`` bounds their coupling).
    sep_method : str
        ``"estimate"``, ``"exact"`` or ``"none"``.
    block_sizes : ndarray, int64, shape (n_blocks,)
        Block sizes of the form that was split (read-only): with ``n_R`` they define
        the masks, and :func:`~rnnschur.ablate` checks them against the form it is
        given, so that a split is never applied to another matrix.
    """

    n: int
    n_R: int
    alpha: float
    threshold: float
    RR: np.ndarray
    CR: np.ndarray
    CC: np.ndarray
    sep: float
    sep_method: str
    block_sizes: np.ndarray

    @property
    def n_C(self) -> int:
        """Number of positions in C, ``n − n_R``."""
        return self.n - self.n_R


_SEP_EXACT_MAX = 2500


def schur_split(
    form: SchurForm, alpha: float = 0.9, *, sep_method: str = "estimate"
) -> SchurSplit:
    """Split the ordered Schur positions at ``|λ| ≥ alpha · ρ(W)``.

    Parameters
    ----------
    form : SchurForm
        Result of :func:`ordered_schur`.
    alpha : float, default 0.9
        Relative threshold in (0, 1].
    sep_method : {"estimate", "exact", "none"}
        How to compute ``sep`` (see :class:`SchurSplit`). ``"exact"`` forms the
        ``n_R·n_C``-square Kronecker matrix and is limited to ``n_R·n_C <= 2500``.

    Returns
    -------
    SchurSplit
        ``n_R``, the masks ``RR``, ``CR``, ``CC`` (bool, (n, n)) and ``sep``.

    Raises
    ------
    TypeError
        ``form`` is not a SchurForm or ``alpha`` is not a real number.
    ValueError
        ``alpha`` is outside (0, 1] or ``sep_method`` is unknown / too large.
    """
    alpha = _check_split_args(form, alpha, sep_method)
    n = form.n
    threshold = alpha * form.spectral_radius
    n_R = leading_count(form, threshold)
    n_C = n - n_R
    if sep_method == "exact" and n_R * n_C > _SEP_EXACT_MAX:
        msg = (
            f"sep_method='exact' needs n_R * n_C <= {_SEP_EXACT_MAX}; got {n_R} * {n_C}"
        )
        raise ValueError(msg)
    RR, CR, CC = _coupling_masks(form, n_R)
    return SchurSplit(
        n=n,
        n_R=n_R,
        alpha=alpha,
        threshold=threshold,
        RR=_readonly(RR),
        CR=_readonly(CR),
        CC=_readonly(CC),
        sep=_separation(form.T, n_R, sep_method),
        sep_method=sep_method,
        block_sizes=form.block_sizes,
    )


def _check_split_args(form: object, alpha: Any, sep_method: str) -> float:
    """Validate the arguments of :func:`schur_split`; return ``alpha`` as a float."""
    if not isinstance(form, SchurForm):
        msg = (
            f"form must be a SchurForm (from ordered_schur); got {type(form).__name__}"
        )
        raise TypeError(msg)
    if not is_real(alpha):
        msg = f"alpha must be a real number in (0, 1]; got {type(alpha).__name__}"
        raise TypeError(msg)
    value = float(alpha)
    if not (0.0 < value <= 1.0):
        msg = f"alpha must be in (0, 1]; got {value}"
        raise ValueError(msg)
    if sep_method not in ("estimate", "exact", "none"):
        msg = f"sep_method must be 'estimate', 'exact' or 'none'; got {sep_method!r}"
        raise ValueError(msg)
    return value


def _coupling_masks(
    form: SchurForm, n_R: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks ``(RR, CR, CC)`` of the coupling blocks of ``N`` (bool, (n, n))."""
    in_r = np.arange(form.n) < n_R
    upper = form.block_index[:, None] < form.block_index[None, :]
    RR = upper & in_r[:, None] & in_r[None, :]
    CR = in_r[:, None] & ~in_r[None, :]
    CC = upper & ~in_r[:, None] & ~in_r[None, :]
    return RR, CR, CC


def _separation(T: np.ndarray, n_R: int, sep_method: str) -> float:
    """``sep_F(T[:n_R, :n_R], T[n_R:, n_R:])`` by ``sep_method`` (see SchurSplit)."""
    n = T.shape[0]
    if n_R in (0, n):
        return math.inf
    if sep_method == "none":
        return math.nan
    # sep is scale-equivariant; an exact power-of-two scaling keeps the core's
    # norms of T from overflowing (sep came out 0 for |T| near 1e200).
    e = _pow2_exponent(T)
    Ts = np.ldexp(T, e) if e else T
    if sep_method == "estimate":
        return _ldexp_clamped(float(_core.schur_sep(np.asfortranarray(Ts), n_R)), -e)
    return _ldexp_clamped(_sep_exact(Ts, n_R), -e)


def leading_count(form: SchurForm, threshold: float) -> int:
    """Positions in the leading run of blocks with modulus ``>= threshold``."""
    below = np.nonzero(form.block_moduli < threshold)[0]
    return int(form.block_starts[below[0]]) if below.size else form.n


def _sep_exact(T: np.ndarray, r: int) -> float:
    T11 = T[:r, :r]
    T22 = T[r:, r:]
    K = np.kron(np.eye(T22.shape[0]), T11) - np.kron(T22.T, np.eye(r))
    return float(np.linalg.svd(K, compute_uv=False)[-1])
