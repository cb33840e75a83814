"""Where the removed Schur couplings sit relative to the network's activity.

The paper (section 5) leaves open whether a Schur ablation preserves behaviour
because the removed coupling has no computational role, or because it avoids the
few hidden-state directions the task uses. This module measures the second account
for each coupling block ``b ∈ {RR, CR, CC}`` (CR: rows R, columns C, the paper's
``T_C→R``) with ``ΔW_b = Q N_b Qᵀ``, the part of ``W_hh`` that ablating ``b`` alone
removes (``ΔW_b = W_hh − W̃({b})``, see :mod:`rnnschur.ablation`):

* the column space (where ``ΔW_b`` writes) and row space (what it reads) of
  ``ΔW_b``, of numerical rank ``#{σ_i > rtol · σ_max}`` with
  ``rtol = max(shape) · ε`` by default (the rule of ``scipy.linalg.orth``);
* principal angles between those spaces and the top principal components of
  held-out hidden states (k chosen by variance explained), the readout row space
  (rows of ``W_hy``) and the input column space (columns of ``W_xh``);
* the alignment index of Elsayed et al. (2016) of each space with the activity
  covariance, against a null of random subspaces drawn from that covariance;
* the participation ratio of the hidden states;
* the activity-weighted size ``‖ΔW_b H‖_F / ‖W_hh H‖_F`` beside the removed
  Schur mass ``‖N_b‖_F / ‖T‖_F``.

Conventions: hidden states are rows, ``H`` of shape (N, Nh) (or (T, B, Nh),
flattened). PCA and covariances centre ``H``; the activity-weighted sizes use ``H``
as given, since the recurrence acts on the states themselves, not on their
deviations from the mean.

The subspace primitives (principal angles, alignment index and its null) are in
:mod:`rnnschur.subspaces`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import as_generator, check_int
from .ablation import BLOCK_NAMES
from .schur import SchurForm, SchurSplit, ordered_schur, schur_split
from .subspaces import (
    as_float_matrix,
    as_states,
    covariance_spectrum,
    orthonormal_basis,
    principal_angles,
    random_alignment_null,
    rank_tolerance,
)

__all__ = [
    "AlignmentIndex",
    "BlockAlignment",
    "SubspaceAlignment",
    "block_perturbations",
    "subspace_alignment",
]


# ----------------------------------------------------------------- Schur blocks


def block_perturbations(form: SchurForm, split: SchurSplit) -> dict[str, np.ndarray]:
    """The matrices ``ΔW_b = Q N_b Qᵀ`` that ablating one block removes.

    Parameters
    ----------
    form : SchurForm
    split : SchurSplit
        A split of ``form`` (its masks select ``N_b``).

    Returns
    -------
    dict of str to ndarray, float64, shape (n, n)
        Keys ``"RR"``, ``"CR"``, ``"CC"``; ``ΔW_b = W − W̃({b})`` with ``W̃`` as in
        :func:`rnnschur.ablate` (up to rounding).
    """
    if not isinstance(form, SchurForm) or not isinstance(split, SchurSplit):
        msg = "form must be a SchurForm and split a SchurSplit"
        raise TypeError(msg)
    if split.n != form.n or not np.array_equal(split.block_sizes, form.block_sizes):
        msg = "split was not made from form (widths or block structures differ)"
        raise ValueError(msg)
    out = {}
    for b in BLOCK_NAMES:
        Nb = np.where(getattr(split, b), form.T, 0.0)
        out[b] = form.Q @ Nb @ form.Q.T
    return out


@dataclass(frozen=True)
class AlignmentIndex:
    """Alignment index of one subspace and its null distribution.

    Attributes
    ----------
    dim : int
        Subspace dimension.
    value : float
        :func:`alignment_index` with the activity covariance.
    null_mean, null_low, null_high : float
        Mean and 2.5 / 97.5 % quantiles of :func:`random_alignment_null`.
    p_below, p_above : float
        ``(#{null ≤ value} + 1) / (n_null + 1)`` and the same with ``≥``: small
        ``p_below`` means less aligned with the activity than chance, small
        ``p_above`` more aligned.
    n_null : int
    """

    dim: int
    value: float
    null_mean: float
    null_low: float
    null_high: float
    p_below: float
    p_above: float
    n_null: int


@dataclass(frozen=True, eq=False)
class BlockAlignment:
    """Subspace measures of one coupling block ``b`` (see the module docstring).

    Attributes
    ----------
    name : str
        ``"RR"``, ``"CR"`` or ``"CC"``.
    shape : tuple of int
        Size of the block's row × column index sets in Schur coordinates.
    rank : int
        Numerical rank of ``ΔW_b`` (``σ_i > rank_rtol · σ_max``). The tolerance is
        relative to the block itself: for a block at rounding level (e.g. a
        float32-rounded orthogonal ``W_hh``, whose ``N`` is ~1e-8) the rank and
        spaces describe that rounding; ``removed_mass`` shows when this is so.
    singular_values : ndarray, float64, shape (n,)
        Of ``ΔW_b`` (= those of ``N_b``), decreasing.
    removed_mass : float
        ``‖N_b‖_F / ‖T‖_F``.
    activity_weighted_size : float
        ``‖ΔW_b H‖_F / ‖W_hh H‖_F`` over the hidden states ``H`` (columns).
    activity_gain : float
        ``(‖ΔW_b H‖_F / ‖ΔW_b‖_F) / (‖H‖_F / √Nh)``: 1 when ``ΔW_b`` meets the
        states as it would meet isotropic activity of the same power, > 1 when it
        reads mainly along high-activity directions (NaN when ``ΔW_b = 0``).
    readout_weighted_size : float
        ``‖W_hy ΔW_b H‖_F / ‖W_hy W_hh H‖_F`` (NaN without ``W_hy``).
    col_basis, row_basis : ndarray, float64, shape (Nh, rank)
        Orthonormal bases of the column and row spaces of ``ΔW_b``.
    col_alignment, row_alignment : AlignmentIndex or None
        None when the block is zero.
    angles : dict of (str, str) to ndarray
        ``(space, reference) → principal angles`` (radians, decreasing) for space in
        ``"col"``, ``"row"`` and every reference subspace (``"pc90"``, ...,
        ``"readout"``, ``"input"``).
    """

    name: str
    shape: tuple[int, int]
    rank: int
    singular_values: np.ndarray
    removed_mass: float
    activity_weighted_size: float
    activity_gain: float
    readout_weighted_size: float
    col_basis: np.ndarray
    row_basis: np.ndarray
    col_alignment: AlignmentIndex | None
    row_alignment: AlignmentIndex | None
    angles: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def overlap(self, space: str, reference: str) -> float:
        """Mean squared cosine of the principal angles (1: one space contains the
        other, 0: orthogonal; NaN if either space is zero)."""
        th = self.angles[(space, reference)]
        return float(np.mean(np.cos(th) ** 2)) if th.size else math.nan


@dataclass(frozen=True, eq=False)
class SubspaceAlignment:
    """Result of :func:`subspace_alignment`.

    Attributes
    ----------
    n_hidden, n_states : int
        ``Nh`` and the number of hidden states analysed.
    alpha : float
        R/C threshold of the Schur split; ``n_R`` its leading size.
    n_R : int
    rank_rtol : float
        Relative rank tolerance used for every subspace.
    eigenvalues : ndarray, float64, shape (Nh,)
        Activity covariance spectrum, decreasing.
    participation_ratio : float
    pc_dims : dict of str to int
        Reference name (``"pc90"``, ...) → number of PCs reaching that fraction of
        variance.
    references : dict of str to ndarray
        Orthonormal bases (Nh, k) of the reference subspaces (PCs, ``"readout"``,
        ``"input"`` when given).
    reference_alignment : dict of str to AlignmentIndex
        Alignment index of ``"readout"`` / ``"input"`` with the activity.
    blocks : tuple of BlockAlignment
        RR, CR, CC in that order.
    n_null : int
    """

    n_hidden: int
    n_states: int
    alpha: float
    n_R: int
    rank_rtol: float
    eigenvalues: np.ndarray
    participation_ratio: float
    pc_dims: dict[str, int]
    references: dict[str, np.ndarray]
    reference_alignment: dict[str, AlignmentIndex]
    blocks: tuple[BlockAlignment, ...]
    n_null: int

    def block(self, name: str) -> BlockAlignment:
        """The :class:`BlockAlignment` of ``"RR"``, ``"CR"`` or ``"CC"``."""
        for b in self.blocks:
            if b.name == name:
                return b
        msg = f"unknown block {name!r}; expected one of {BLOCK_NAMES}"
        raise KeyError(msg)

    def to_records(self) -> list[dict[str, Any]]:
        """One flat record per block: sizes, alignment indices and overlaps."""
        recs = []
        for b in self.blocks:
            r: dict[str, Any] = {
                "block": b.name,
                "n_R": self.n_R,
                "rank": b.rank,
                "removed_mass": b.removed_mass,
                "activity_weighted_size": b.activity_weighted_size,
                "activity_gain": b.activity_gain,
                "readout_weighted_size": b.readout_weighted_size,
                "participation_ratio": self.participation_ratio,
            }
            for space, ai in (("col", b.col_alignment), ("row", b.row_alignment)):
                r[f"align_{space}"] = ai.value if ai else math.nan
                r[f"align_{space}_null_mean"] = ai.null_mean if ai else math.nan
                r[f"align_{space}_p_below"] = ai.p_below if ai else math.nan
                r[f"align_{space}_p_above"] = ai.p_above if ai else math.nan
            for space, ref in b.angles:
                r[f"overlap_{space}_{ref}"] = b.overlap(space, ref)
            recs.append(r)
        return recs

    def angle_records(self) -> list[dict[str, Any]]:
        """One record per (block, space, reference): dims, angle summary (degrees),
        overlap (mean cos²) and its expectation for uniformly random subspaces of
        the same dimensions, ``max(p, q) / Nh``."""
        recs = []
        for b in self.blocks:
            for (space, ref), th in b.angles.items():
                deg = np.degrees(th)
                recs.append(
                    {
                        "block": b.name,
                        "space": space,
                        "reference": ref,
                        "dim": b.rank,
                        "ref_dim": int(self.references[ref].shape[1]),
                        "min_deg": float(deg.min()) if deg.size else math.nan,
                        "median_deg": float(np.median(deg)) if deg.size else math.nan,
                        "max_deg": float(deg.max()) if deg.size else math.nan,
                        "overlap": b.overlap(space, ref),
                        "chance_overlap": _chance_overlap(
                            b.rank, int(self.references[ref].shape[1]), self.n_hidden
                        ),
                    }
                )
        return recs

    def to_markdown(self) -> str:
        """Markdown tables: summary, per block, principal angles."""
        return _markdown(self)


def subspace_alignment(
    W_hh: object,
    H: object,
    *,
    W_hy: object = None,
    W_xh: object = None,
    alpha: float = 0.9,
    variance_levels: Sequence[float] = (0.9, 0.95, 0.99),
    n_null: int = 1000,
    rng: np.random.Generator | int | None = None,
    rank_rtol: float | None = None,
) -> SubspaceAlignment:
    """Subspace measures of the three Schur coupling blocks of ``W_hh``.

    Parameters
    ----------
    W_hh : array_like, float32/float64, shape (Nh, Nh)
    H : array_like, float32/float64, shape (N, Nh) or (T, B, Nh)
        Held-out hidden states (e.g. ``rollout(..., return_hidden=True)[1]``).
    W_hy : array_like, shape (Ny, Nh), optional
        Readout weights: its row space is a reference subspace.
    W_xh : array_like, shape (Nh, Nx), optional
        Input weights: its column space is a reference subspace.
    alpha : float, default 0.9
        Threshold of :func:`rnnschur.schur_split`.
    variance_levels : sequence of float in (0, 1]
        For each level v the top-k PCs with the smallest k reaching v of the variance.
    n_null : int, default 1000
        Random subspaces per dimension for the alignment-index null.
    rng : Generator, int or None
        Seeds the null (``numpy.random.default_rng(rng)``).
    rank_rtol : float, optional
        Relative rank tolerance (default ``Nh · ε``, see :func:`orthonormal_basis`).

    Returns
    -------
    SubspaceAlignment

    Raises
    ------
    TypeError
        Non-float arrays, wrong argument types.
    ValueError
        Wrong shapes, NaN/inf, empty input, fewer than 2 states, constant states,
        bad ``alpha`` / ``variance_levels`` / ``n_null``.
    """
    W = as_float_matrix(W_hh, "W_hh")
    n = W.shape[0]
    if W.shape != (n, n):
        msg = f"W_hh must be square; got shape {W.shape}"
        raise ValueError(msg)
    X = as_states(H, n)
    levels = _levels(variance_levels)
    n_null = check_int("n_null", n_null, 1)
    tol = rank_tolerance(rank_rtol, (n,))
    gen = as_generator("rng", rng)
    form = ordered_schur(W)
    split = schur_split(form, alpha, sep_method="none")
    lam, U, C = covariance_spectrum(X)
    refs, pc_dims = _pc_references(lam, U, levels)
    refs.update(_weight_references(W_hy, W_xh, n, tol))
    index = _AlignmentTool(C, lam, n_null, gen)
    ref_align = {k: index(v) for k, v in refs.items() if k in ("readout", "input")}
    ctx = _Context(form, split, X, W, tol, refs, index, W_hy)
    blocks = tuple(_block_alignment(ctx, b) for b in BLOCK_NAMES)
    return SubspaceAlignment(
        n_hidden=n,
        n_states=X.shape[0],
        alpha=split.alpha,
        n_R=split.n_R,
        rank_rtol=tol,
        eigenvalues=lam,
        participation_ratio=float(lam.sum() ** 2 / np.sum(lam**2)),
        pc_dims=pc_dims,
        references=refs,
        reference_alignment={k: v for k, v in ref_align.items() if v is not None},
        blocks=blocks,
        n_null=n_null,
    )


def _weight_references(
    W_hy: object, W_xh: object, n: int, tol: float
) -> dict[str, np.ndarray]:
    """Bases of the readout row space and the input column space (when given)."""
    refs = {}
    if W_hy is not None:
        R = as_float_matrix(W_hy, "W_hy")
        if R.shape[1] != n:
            msg = f"W_hy must have shape (Ny, Nh) with Nh = {n}; got {R.shape}"
            raise ValueError(msg)
        refs["readout"] = orthonormal_basis(R.T, rtol=tol)
    if W_xh is not None:
        I_ = as_float_matrix(W_xh, "W_xh")
        if I_.shape[0] != n:
            msg = f"W_xh must have shape (Nh, Nx) with Nh = {n}; got {I_.shape}"
            raise ValueError(msg)
        refs["input"] = orthonormal_basis(I_, rtol=tol)
    return refs


def _levels(levels: Sequence[float]) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in levels)
    except (TypeError, ValueError) as exc:
        msg = f"variance_levels must be a sequence of numbers; got {levels!r}"
        raise TypeError(msg) from exc
    if not vals or not all(0.0 < v <= 1.0 for v in vals):
        msg = f"variance_levels must be a non-empty sequence in (0, 1]; got {levels!r}"
        raise ValueError(msg)
    return tuple(sorted(set(vals)))


def _pc_references(
    lam: np.ndarray, U: np.ndarray, levels: tuple[float, ...]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    frac = np.cumsum(lam) / lam.sum()
    refs: dict[str, np.ndarray] = {}
    dims: dict[str, int] = {}
    for v in levels:
        # The relative slack keeps a level met exactly (v = 1, or data with exactly
        # k equal variances) from needing one more PC through rounding of cumsum.
        k = int(np.searchsorted(frac, v * (1.0 - 1e-12))) + 1
        k = min(k, lam.size)
        name = f"pc{v * 100:g}"
        refs[name] = np.ascontiguousarray(U[:, :k])
        dims[name] = k
    return refs, dims


class _AlignmentTool:
    """Alignment index with its null, one null sample per dimension (cached)."""

    def __init__(
        self, C: np.ndarray, lam: np.ndarray, n_null: int, rng: np.random.Generator
    ) -> None:
        self.C, self.lam, self.n_null, self.rng = C, lam, n_null, rng
        self._null: dict[int, np.ndarray] = {}

    def __call__(self, basis: np.ndarray) -> AlignmentIndex | None:
        k = basis.shape[1]
        if k == 0:
            return None
        if k not in self._null:
            self._null[k] = random_alignment_null(self.C, k, self.n_null, self.rng)
        null = self._null[k]
        value = float(
            np.clip(np.sum((self.C @ basis) * basis) / self.lam[:k].sum(), 0, 1)
        )
        m = null.size
        return AlignmentIndex(
            dim=k,
            value=value,
            null_mean=float(null.mean()),
            null_low=float(np.quantile(null, 0.025)),
            null_high=float(np.quantile(null, 0.975)),
            p_below=float((np.count_nonzero(null <= value) + 1) / (m + 1)),
            p_above=float((np.count_nonzero(null >= value) + 1) / (m + 1)),
            n_null=m,
        )


@dataclass(frozen=True, eq=False)
class _Context:
    form: SchurForm
    split: SchurSplit
    X: np.ndarray
    W: np.ndarray
    tol: float
    refs: dict[str, np.ndarray]
    index: _AlignmentTool
    W_hy: object


def _block_alignment(ctx: _Context, b: str) -> BlockAlignment:
    form, X = ctx.form, ctx.X
    mask = getattr(ctx.split, b)
    Nb = np.where(mask, form.T, 0.0)
    U, s, Vt = np.linalg.svd(Nb)
    r = int(np.count_nonzero(s > ctx.tol * s[0])) if s[0] > 0 else 0
    col = np.ascontiguousarray(form.Q @ U[:, :r])
    row = np.ascontiguousarray(form.Q @ Vt[:r].T)
    dW = form.Q @ Nb @ form.Q.T
    dWH = X @ dW.T  # rows: (ΔW_b h)ᵀ
    full = float(np.linalg.norm(X @ ctx.W.T))
    size = float(np.linalg.norm(dWH)) / full if full > 0 else math.nan
    nd = float(np.linalg.norm(s))
    iso = float(np.linalg.norm(X)) / math.sqrt(X.shape[1])
    gain = float(np.linalg.norm(dWH)) / (nd * iso) if nd > 0 else math.nan
    ro = math.nan
    if ctx.W_hy is not None:
        Wy = as_float_matrix(ctx.W_hy, "W_hy")
        den = float(np.linalg.norm(X @ ctx.W.T @ Wy.T))
        ro = float(np.linalg.norm(dWH @ Wy.T)) / den if den > 0 else math.nan
    nT = float(np.linalg.norm(form.T))
    angles = {}
    for space, basis in (("col", col), ("row", row)):
        for ref, rb in ctx.refs.items():
            angles[(space, ref)] = principal_angles(basis, rb) if r else np.empty(0)
    return BlockAlignment(
        name=b,
        shape=_nominal(b, ctx.split),
        rank=r,
        singular_values=s,
        removed_mass=nd / nT if nT > 0 else 0.0,
        activity_weighted_size=size,
        activity_gain=gain,
        readout_weighted_size=ro,
        col_basis=col,
        row_basis=row,
        col_alignment=ctx.index(col),
        row_alignment=ctx.index(row),
        angles=angles,
    )


def _chance_overlap(p: int, q: int, n: int) -> float:
    # E‖P_A P_B‖_F² = p q / n for a uniformly random p-subspace A and fixed q-subspace
    # B; divided by the number of angles, min(p, q).
    return max(p, q) / n if min(p, q) > 0 else math.nan


def _nominal(b: str, split: SchurSplit) -> tuple[int, int]:
    nR, nC = split.n_R, split.n_C
    return {"RR": (nR, nR), "CR": (nR, nC), "CC": (nC, nC)}[b]


def _fmt(x: float, spec: str = ".3g") -> str:
    return "–" if not math.isfinite(x) else format(x, spec)


def _fmt_index(ai: AlignmentIndex | None) -> str:
    if ai is None:
        return "–"
    return (
        f"{ai.value:.3f} (null {ai.null_mean:.3f} "
        f"[{ai.null_low:.3f}, {ai.null_high:.3f}])"
    )


def _markdown(res: SubspaceAlignment) -> str:
    dims = ", ".join(f"{k}: {v}" for k, v in res.pc_dims.items())
    lines = [
        (
            f"Nh = {res.n_hidden}, {res.n_states} hidden states, α = {res.alpha:g} "
            f"(n_R = {res.n_R}), participation ratio {res.participation_ratio:.2f}, "
            f"PCs by variance explained: {dims}. Alignment index: Elsayed et al. 2016, "
            f"null of {res.n_null} covariance-biased random subspaces (mean [2.5 %, "
            "97.5 %])."
        ),
        "",
    ]
    for name, ai in res.reference_alignment.items():
        lines.append(f"- {name} space (dim {ai.dim}): alignment {_fmt_index(ai)}")
    if res.reference_alignment:
        lines.append("")
    lines += [
        (
            "| block | shape | rank | removed Schur mass | ‖ΔW_b H‖/‖W H‖ | activity gain "
            "| readout-weighted | alignment col(ΔW_b) | alignment row(ΔW_b) |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for b in res.blocks:
        lines.append(
            f"| {b.name} | {b.shape[0]}×{b.shape[1]} | {b.rank} | "
            f"{_fmt(b.removed_mass)} | {_fmt(b.activity_weighted_size)} | "
            f"{_fmt(b.activity_gain)} | {_fmt(b.readout_weighted_size)} | "
            f"{_fmt_index(b.col_alignment)} | {_fmt_index(b.row_alignment)} |"
        )
    lines += [
        "",
        (
            "| block | space | reference | dims | min angle (°) | median (°) | max (°) "
            "| mean cos² | chance |"
        ),
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in res.angle_records():
        if r["dim"] == 0 or r["ref_dim"] == 0:
            continue
        lines.append(
            f"| {r['block']} | {r['space']} | {r['reference']} | "
            f"{r['dim']}, {r['ref_dim']} | {_fmt(r['min_deg'], '.1f')} | "
            f"{_fmt(r['median_deg'], '.1f')} | {_fmt(r['max_deg'], '.1f')} | "
            f"{_fmt(r['overlap'], '.3f')} | {_fmt(r['chance_overlap'], '.3f')} |"
        )
    return "\n".join(lines) + "\n"
