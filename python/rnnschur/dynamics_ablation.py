"""Fixed points under Schur-coupling ablation: continuation and fresh search.

For each subset ``S`` of the coupling blocks (:mod:`rnnschur.ablation`), every fixed
point of the intact network is continued into the ablated network along the
homotopy ``W(λ) = W_hh + λ (W̃(S) − W_hh)``, ``λ = 0 → 1``: Newton (the compiled
core) from the point at the previous ``λ``, with the step in ``λ`` halved where
Newton fails or the point jumps by more than ``jump_tol`` (∞-norm). A point whose
step cannot be refined below ``min_step`` has **vanished** (typically at a fold,
where it meets a saddle); ``vanished_at`` records the last ``λ`` it existed at.
Otherwise it **survived**, with its displacement ``‖h(1) − h(0)‖₂`` and the
stability of the ablated network's map at ``h(1)``. Continuation (rather than one
Newton solve in the ablated network) keeps a point from silently landing on a
different fixed point when the ablation is large.

A fresh search in each ablated network (:func:`rnnschur.dynamics.fixed_points`,
starts from the ablated network's own trajectories) reports the fixed points that
no continued point accounts for as **new**.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from . import _core
from ._validation import as_generator, check_int, check_real
from .ablation import ablate
from .dynamics import FixedPoints, NetworkArrays, fixed_points, network_arrays
from .schur import ordered_schur, schur_split

__all__ = ["FixedPointContinuation", "continue_fixed_points"]


@dataclass(frozen=True, eq=False)
class FixedPointContinuation:
    """Fate of the intact network's fixed points under each ablation.

    ``K`` subsets, ``P`` intact fixed points (``intact.h[intact.is_fixed]``).

    Attributes
    ----------
    subsets : tuple of str
        Labels (``"none"``, ``"RR"``, ``"RR+CR"``, ...).
    removed_mass : ndarray, float64, shape (K,)
        ``‖T − Z_S(T)‖_F / ‖T‖_F``.
    intact : FixedPoints
        The search result that was continued.
    h0 : ndarray, float64, shape (P, Nh)
        The intact fixed points.
    survived : ndarray, bool, shape (K, P)
    vanished_at : ndarray, float64, shape (K, P)
        Last ``λ`` at which a vanished point was tracked (NaN if it survived).
    h : ndarray, float64, shape (K, P, Nh)
        The continued points in the ablated networks (NaN where vanished).
    displacement : ndarray, float64, shape (K, P)
        ``‖h − h0‖₂`` (NaN where vanished).
    stable_before, stable_after : ndarray, bool, shape (P,) and (K, P)
    n_unstable_before, n_unstable_after : ndarray, int64, shape (P,) and (K, P)
        ``n_unstable_after`` is −1 where the point vanished.
    changed_stability : ndarray, bool, shape (K, P)
        Survived with a different number of unstable modes.
    fresh : tuple of FixedPoints or None
        The fresh search in each ablated network (None: not run).
    new : tuple of ndarray of int64
        Indices into ``fresh[k].h`` of fixed points no continued point matches.
    """

    subsets: tuple[str, ...]
    removed_mass: np.ndarray
    intact: FixedPoints
    h0: np.ndarray
    survived: np.ndarray
    vanished_at: np.ndarray
    h: np.ndarray
    displacement: np.ndarray
    stable_before: np.ndarray
    stable_after: np.ndarray
    n_unstable_before: np.ndarray
    n_unstable_after: np.ndarray
    changed_stability: np.ndarray
    fresh: tuple[FixedPoints, ...] | None
    new: tuple[np.ndarray, ...]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per (subset, intact point), then one per new point."""
        rows: list[dict[str, Any]] = []
        for k, label in enumerate(self.subsets):
            for p in range(self.h0.shape[0]):
                ok = bool(self.survived[k, p])
                rows.append(
                    {
                        "subset": label,
                        "removed_mass": float(self.removed_mass[k]),
                        "point": p,
                        "outcome": "survived" if ok else "vanished",
                        "stable_before": bool(self.stable_before[p]),
                        "n_unstable_before": int(self.n_unstable_before[p]),
                        "stable_after": bool(self.stable_after[k, p]) if ok else None,
                        "n_unstable_after": int(self.n_unstable_after[k, p])
                        if ok
                        else None,
                        "changed_stability": bool(self.changed_stability[k, p]),
                        "displacement": float(self.displacement[k, p]) if ok else None,
                        "vanished_at": None if ok else float(self.vanished_at[k, p]),
                    }
                )
            if self.fresh is None:
                continue
            f = self.fresh[k]
            for i in self.new[k]:
                rows.append(
                    {
                        "subset": label,
                        "removed_mass": float(self.removed_mass[k]),
                        "point": None,
                        "outcome": "new",
                        "stable_before": None,
                        "n_unstable_before": None,
                        "stable_after": bool(f.stable[i]),
                        "n_unstable_after": int(f.n_unstable[i]),
                        "changed_stability": False,
                        "displacement": None,
                        "vanished_at": None,
                    }
                )
        return rows


class _Opts(NamedTuple):
    n_steps: int
    min_step: float
    jump_tol: float
    tol: float
    nt: int


def _newton(W: np.ndarray, c: np.ndarray, h: np.ndarray, tol: float, nt: int) -> Any:
    out = _core.fixed_points_newton(
        W, c, np.ascontiguousarray(h), tol, 1e-9, 50, 0, False, nt
    )
    return out[0], out[2] == 0


def _track(
    W0: np.ndarray,
    W1: np.ndarray,
    c: np.ndarray,
    h0: np.ndarray,
    opts: _Opts,
) -> tuple[np.ndarray, np.ndarray]:
    """Continue points h0 from W0 to W1; returns (h at λ = 1, last λ reached)."""
    P = h0.shape[0]
    h = h0.copy()
    lam = np.zeros(P)
    step = np.full(P, 1.0 / opts.n_steps)
    alive = np.ones(P, dtype=bool)
    while True:
        todo = np.flatnonzero(alive & (lam < 1.0))
        if todo.size == 0:
            break
        # one Newton batch per distinct target λ (steps differ after halving)
        target = np.minimum(lam[todo] + step[todo], 1.0)
        for t in np.unique(target):
            idx = todo[target == t]
            new, ok = _newton(W0 + t * (W1 - W0), c, h[idx], opts.tol, opts.nt)
            ok &= np.max(np.abs(new - h[idx]), axis=1) <= opts.jump_tol
            h[idx[ok]] = new[ok]
            lam[idx[ok]] = t
            bad = idx[~ok]
            step[bad] *= 0.5
            alive[bad[step[bad] < opts.min_step]] = False
    return h, lam


def _setup(
    network: Any,
    fp: Any,
    alpha: Any,
    n_steps: Any,
    min_step: Any,
    jump_tol: Any,
    n_threads: Any,
) -> tuple[NetworkArrays, float, _Opts]:
    """Checked arguments of :func:`continue_fixed_points`: arrays, alpha, options."""
    if not isinstance(fp, FixedPoints):
        msg = f"fp must be a FixedPoints result; got {type(fp).__name__}"
        raise TypeError(msg)
    net = network_arrays(network)
    n = net.W_hh.shape[0]
    if fp.h.shape[1] != n:
        msg = f"fp has points of width {fp.h.shape[1]}; the network has Nh = {n}"
        raise ValueError(msg)
    alpha = check_real("alpha", alpha, low=0.0, high=1.0, low_open=True)
    opts = _Opts(
        n_steps=check_int("n_steps", n_steps, 1),
        min_step=check_real("min_step", min_step, low=0.0, high=1.0, low_open=True),
        jump_tol=check_real("jump_tol", jump_tol, low=0.0, low_open=True),
        tol=fp.tol,
        nt=0 if n_threads is None else check_int("n_threads", n_threads, 1),
    )
    return net, alpha, opts


def _fresh(
    network: Any,
    net: NetworkArrays,
    Wk: np.ndarray,
    fp: FixedPoints,
    n_starts: int,
    gen: np.random.Generator,
    n_threads: int | None,
) -> FixedPoints:
    """Fresh fixed-point search in the network with recurrence ``Wk``."""
    ablated = replace(net, W_hh=Wk)
    task = getattr(network, "task", None)
    source = _WithTask(ablated, task) if task is not None else ablated
    return fixed_points(
        source, fp.x_star, n_starts=n_starts, rng=gen, tol=fp.tol, n_threads=n_threads
    )


def _unmatched(f: FixedPoints, done: np.ndarray, match_tol: float) -> np.ndarray:
    """Fixed points of ``f`` that no continued point accounts for (indices into it).

    A fixed point is new when it is farther than ``match_tol`` (∞-norm) from every
    row of ``done`` (C, Nh), the points continued into the same network.
    """
    cand = np.flatnonzero(f.is_fixed)
    if done.shape[0] and cand.size:
        d = np.max(np.abs(f.h[cand, None, :] - done[None]), axis=2)
        cand = cand[d.min(axis=1) > match_tol]
    return cand


def continue_fixed_points(
    network: Any,
    fp: FixedPoints,
    *,
    alpha: float = 0.9,
    subsets: Iterable[str | Iterable[str]] | None = None,
    n_steps: int = 10,
    min_step: float = 1.0 / 640,
    jump_tol: float = 0.25,
    match_tol: float = 1e-4,
    fresh_search: bool = True,
    n_starts: int = 1024,
    rng: Any = None,
    n_threads: int | None = None,
) -> FixedPointContinuation:
    """Continue every intact fixed point into each Schur-ablated network.

    Parameters
    ----------
    network : object
        The intact network (see :func:`rnnschur.dynamics.network_arrays`).
    fp : FixedPoints
        Its fixed points (from :func:`rnnschur.dynamics.fixed_points`); their
        ``x_star`` and ``tol`` are reused.
    alpha : float
        Schur split threshold in (0, 1] (:func:`rnnschur.schur_split`).
    subsets : iterable, optional
        Subsets of ``{"RR", "CR", "CC"}``; default all 8 (:func:`rnnschur.ablate`).
    n_steps : int
        Initial number of equal steps in ``λ``.
    min_step : float
        Smallest step in ``λ`` before a point counts as vanished.
    jump_tol : float
        Largest ∞-norm move per step accepted as the same branch (positive,
        finite).
    match_tol : float
        A fresh fixed point within this ∞-distance of a continued one is not new.
    fresh_search : bool
        Run a fresh search in every ablated network (``n_starts`` starts from its
        own trajectories, seeded by ``rng``).
    n_threads : int, optional

    Returns
    -------
    FixedPointContinuation
    """
    net, alpha, opts = _setup(
        network, fp, alpha, n_steps, min_step, jump_tol, n_threads
    )
    n = net.W_hh.shape[0]
    form = ordered_schur(net.W_hh)
    abl = ablate(form, schur_split(form, alpha, sep_method="none"), subsets)
    c = net.W_xh @ fp.x_star + net.b_h
    h0 = fp.h[fp.is_fixed]
    K, P = len(abl.subsets), h0.shape[0]
    gen = as_generator("rng", rng)
    out_h = np.full((K, P, n), np.nan)
    lam = np.zeros((K, P))
    ev = np.full((K, P, n), np.nan, dtype=np.complex128)
    fresh: list[FixedPoints] = []
    new: list[np.ndarray] = []
    for k in range(K):
        Wk = np.ascontiguousarray(abl.W[k])
        h, lam[k] = _track(net.W_hh, Wk, c, h0, opts) if P else (h0, lam[k])
        ok = lam[k] >= 1.0
        out_h[k, ok] = h[ok]
        if ok.any():
            pts = np.ascontiguousarray(h[ok])
            ev[k, ok] = _core.fixed_point_eigenvalues(Wk, c, pts, net.leak, 0, opts.nt)
        if fresh_search:
            f = _fresh(network, net, Wk, fp, n_starts, gen, n_threads)
            fresh.append(f)
            new.append(_unmatched(f, h[ok], match_tol))
        else:
            new.append(np.zeros(0, dtype=np.int64))
    return _assemble(
        abl, fp, h0, out_h, lam, ev, tuple(fresh) if fresh_search else None, new
    )


@dataclass(frozen=True)
class _WithTask:
    """Ablated arrays plus the original network's task (for default starts)."""

    net: Any
    task: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.net, name)


def _assemble(
    abl: Any,
    fp: FixedPoints,
    h0: np.ndarray,
    out_h: np.ndarray,
    lam: np.ndarray,
    ev: np.ndarray,
    fresh: tuple[FixedPoints, ...] | None,
    new: Any,
) -> FixedPointContinuation:
    survived = lam >= 1.0
    mod = np.abs(ev)
    stable_after = survived & np.all(mod < 1.0, axis=2)
    n_unstable_after = np.where(survived, np.sum(mod > 1.0, axis=2), -1).astype(
        np.int64
    )
    fixed = fp.is_fixed
    n_before = fp.n_unstable[fixed]
    return FixedPointContinuation(
        subsets=abl.labels,
        removed_mass=np.asarray(abl.removed_mass),
        intact=fp,
        h0=h0,
        survived=survived,
        vanished_at=np.where(survived, np.nan, lam),
        h=out_h,
        displacement=np.linalg.norm(out_h - h0[None], axis=2),
        stable_before=fp.stable[fixed],
        stable_after=stable_after,
        n_unstable_before=n_before,
        n_unstable_after=n_unstable_after,
        changed_stability=survived & (n_unstable_after != n_before[None]),
        fresh=fresh,
        new=tuple(new),
    )
