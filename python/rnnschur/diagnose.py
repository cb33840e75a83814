"""The Schur-coupling diagnostic of any :class:`~rnnschur.Network` on the user's data.

``diagnose(network, x, y)`` is the paper's analysis as three library calls and one
rollout:

1. ``form = ordered_schur(W_eff)`` with ``W_eff = (1 − a) I + a W_hh`` (``W_hh`` for
   the plain tanh RNN, ``a = 1``; see :mod:`rnnschur.network` for why the leaky
   network's effective recurrence is the matrix factored);
2. ``split = schur_split(form, alpha)``: R = the leading Schur positions with
   ``|λ| ≥ α ρ(W_eff)``, C the rest;
3. ``ablate(form, split, subsets)``: ``W̃_eff(S)`` for every subset S of the coupling
   blocks {RR, CR, CC} (default all 8), mapped back to recurrent matrices
   ``W̃_hh(S) = (W̃_eff(S) − (1 − a) I) / a`` (the unablated one is ``W_hh`` bit
   for bit) and cast to the network's dtype;
4. one rollout of the K variants as a ``(K, Nh, Nh)`` stack (biases, ``h0`` and
   leak of the network in every variant), scored by the chosen metric.

The removed Schur mass ``‖ΔT‖_F / ‖T‖_F`` refers to the factored ``T`` (of
``W_eff``). Δ is ``metric(S) − metric(∅)``; Δ per mass is Δ / removed mass (the
paper's ``S_ΔT`` when the metric is FVU), NaN for the empty subset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import metrics
from .ablation import DEFAULT_SUBSETS, Ablation, ablate, canonical_subset
from .network import Network, check_targets, time_major
from .schur import SchurForm, SchurSplit, ordered_schur, schur_split

__all__ = ["DiagnoseResult", "diagnose"]

_METRICS = ("fvu", "sign_accuracy", "mse")


@dataclass(frozen=True, eq=False)
class DiagnoseResult:
    """The subset table of :func:`diagnose` and the split it used.

    Attributes
    ----------
    subsets : tuple of tuple of str
        Ablated coupling blocks per row, canonical names among ``"RR"``, ``"CR"``,
        ``"CC"``; the first row is always ``()`` (the unablated network).
    removed_mass : ndarray, float64, shape (S,)
        ``‖T − Z_S(T)‖_F / ‖T‖_F`` of the factored matrix.
    metric : ndarray, float64, shape (S,)
        The metric of each variant.
    delta : ndarray, float64, shape (S,)
        ``metric − metric[0]`` (ΔFVU for ``"fvu"``).
    delta_per_mass : ndarray, float64, shape (S,)
        ``delta / removed_mass`` (``S_ΔT`` for ``"fvu"``); NaN where no mass was removed.
    metric_name : str
        ``"fvu"``, ``"sign_accuracy"``, ``"mse"`` or the callable's name.
    n : int
        Number of hidden units.
    n_R : int
        Schur positions in R.
    alpha, threshold : float
        The split threshold α and ``α · ρ(W_eff)``.
    moduli : ndarray, float64, shape (n,)
        ``|λ|`` of the factored matrix per Schur position, in order (non-increasing).
    leak : float
        The network's leak; the factored matrix is ``(1 − leak) I + leak W_hh``.

    All arrays are read-only.
    """

    subsets: tuple[tuple[str, ...], ...]
    removed_mass: np.ndarray
    metric: np.ndarray
    delta: np.ndarray
    delta_per_mass: np.ndarray
    metric_name: str
    n: int
    n_R: int
    alpha: float
    threshold: float
    moduli: np.ndarray
    leak: float

    @property
    def n_C(self) -> int:
        """Schur positions in C, ``n − n_R``."""
        return self.n - self.n_R

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per subset with keys ``subset`` (tuple of block names),
        ``removed_mass``, ``metric``, ``delta``, ``delta_per_mass`` (Python floats)."""
        return [
            {
                "subset": s,
                "removed_mass": float(self.removed_mass[i]),
                "metric": float(self.metric[i]),
                "delta": float(self.delta[i]),
                "delta_per_mass": float(self.delta_per_mass[i]),
            }
            for i, s in enumerate(self.subsets)
        ]

    def to_markdown(self, digits: int = 4) -> str:
        """The table as GitHub markdown, with the split in a header line."""
        head = (
            f"Schur split: n = {self.n}, n_R = {self.n_R}, n_C = {self.n_C} "
            f"(α = {self.alpha:g}, threshold {self.threshold:.{digits}g}"
            + (f", leak {self.leak:g}" if self.leak != 1.0 else "")
            + ")"
        )
        name = self.metric_name
        rows = [
            head,
            "",
            f"| ablated | removed mass | {name} | Δ{name} | Δ{name} / mass |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in self.to_records():
            label = "+".join(r["subset"]) or "none"
            vals = (r["removed_mass"], r["metric"], r["delta"], r["delta_per_mass"])
            cells = " | ".join(
                "–" if math.isnan(v) else f"{v:.{digits}g}" for v in vals
            )
            rows.append(f"| {label} | {cells} |")
        return "\n".join(rows)


def _check_metric(metric: Any) -> tuple[str, Callable[..., Any] | None]:
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if isinstance(metric, str) and metric in _METRICS:
        return metric, None
    msg = f"metric must be one of {_METRICS} or a callable (y_hat, y, mask) -> float; got {metric!r}"
    raise ValueError(msg)


def _subsets(subsets: Any) -> tuple[tuple[str, ...], ...]:
    """Canonical subsets, the empty one first (the baseline of every Δ)."""
    if subsets is None:
        return DEFAULT_SUBSETS
    if isinstance(subsets, str) or not isinstance(subsets, Iterable):
        msg = f"subsets must be None or an iterable of subsets; got {subsets!r}"
        raise TypeError(msg)
    out: list[tuple[str, ...]] = [()]
    for s in subsets:
        c = canonical_subset(s)
        if c not in out:
            out.append(c)
    return tuple(out)


def _scores(
    kind: str,
    fn: Callable[..., Any] | None,
    y_hat: np.ndarray,
    y: Any,
    mask: Any,
    batch_first: bool,
) -> np.ndarray:
    """The metric of each of the K variants of ``y_hat`` (K, T, B, Ny), time-major.

    ``y`` and ``mask`` are as the caller gave them; a callable sees every array in
    the caller's layout, the built-in metrics use the validated time-major ones.
    """
    if fn is not None:
        out = []
        for k in range(y_hat.shape[0]):
            v = fn(np.swapaxes(y_hat[k], 0, 1) if batch_first else y_hat[k], y, mask)
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                msg = f"metric callable must return a real number; got {v!r}"
                raise TypeError(msg) from None
        return np.array(out)
    shape = y_hat.shape[1:]
    y64, m = check_targets(
        y, mask, (shape[1], shape[0], shape[2]) if batch_first else shape
    )
    if batch_first:
        y64, m = np.swapaxes(y64, 0, 1), np.swapaxes(m, 0, 1)
    if kind == "fvu":
        return np.asarray(metrics.fvu(y_hat, y64, m), dtype=np.float64)
    if kind == "sign_accuracy":
        return np.asarray(metrics.replay_accuracy(y_hat, y64, m), dtype=np.float64)
    d = y_hat.astype(np.float64) - y64
    sq = np.where(m, d * d, 0.0).sum(axis=(-3, -2, -1)) / m.sum()
    return np.asarray(sq, dtype=np.float64)


def _as_network(network: Any) -> Network:
    """A Network itself, or the ``.network`` of a trained model."""
    inner = getattr(network, "network", None)
    if isinstance(inner, Network):
        return inner
    if not isinstance(network, Network):
        msg = (
            "network must be a rnnschur.Network (or have one as .network, like a "
            f"TrainedModel); got {type(network).__name__}"
        )
        raise TypeError(msg)
    return network


def _inputs(
    network: Network, x: Any, y: Any, mask: Any, batch_first: Any, check_y: bool
) -> tuple[np.ndarray, bool]:
    """Validated time-major inputs and the layout; targets checked when ``check_y``."""
    bf = network.batch_first if batch_first is None else batch_first
    if not isinstance(bf, (bool, np.bool_)):
        msg = f"batch_first must be None or a bool; got {batch_first!r}"
        raise TypeError(msg)
    xt = time_major(x, bool(bf), "x")
    if xt.shape[0] == 0 or xt.shape[1] == 0:
        msg = f"x is empty (T = {xt.shape[0]}, B = {xt.shape[1]})"
        raise ValueError(msg)
    if xt.shape[2] != network.n_inputs:
        msg = f"x has {xt.shape[2]} input features; the network takes Nx = {network.n_inputs}"
        raise ValueError(msg)
    T, B = xt.shape[:2]
    if check_y:  # before the expensive part
        check_targets(
            y, mask, (B, T, network.n_outputs) if bf else (T, B, network.n_outputs)
        )

    return xt, bool(bf)


def diagnose(
    network: Network | Any,
    x: Any,
    y: Any,
    mask: Any = None,
    *,
    alpha: float = 0.9,
    metric: str | Callable[..., Any] = "fvu",
    batch_first: bool | None = None,
    subsets: Iterable[Any] | None = None,
    n_threads: int | None = None,
) -> DiagnoseResult:
    """Ablate the ordered Schur couplings of a network and score it on ``(x, y)``.

    Parameters
    ----------
    network : Network or TrainedModel
        A trained model is diagnosed through its :attr:`~TrainedModel.network`.
    x : array_like, float32/float64, shape (T, B, Nx) or (B, T, Nx)
        Inputs and targets of the evaluation batch.
    y : array_like, float, shape (T, B, Ny) or (B, T, Ny)
    mask : array_like of bool (or 0/1 int), optional
        Broadcastable to the shape of ``y``: the entries that count (all if None).
    alpha : float in (0, 1], default 0.9
        Split threshold relative to the spectral radius of the factored matrix.
    metric : {"fvu", "sign_accuracy", "mse"} or callable, default "fvu"
        FVU (paper eq. 7; Δ is ΔFVU and Δ per mass ``S_ΔT``), sign agreement with
        ±1 targets, masked MSE, or ``f(y_hat, y, mask) -> float`` called per
        variant with arrays in the caller's layout.
    batch_first : bool, optional
        Layout of ``x``, ``y``, ``mask``; default the network's ``batch_first``.
    subsets : iterable, optional
        Subsets of ``{"RR", "CR", "CC"}`` to ablate; default all 8. The empty subset
        is always evaluated first (every Δ is relative to it).
    n_threads : int, optional
        Threads of the compiled rollout (see :func:`rnnschur.rollout`).

    Returns
    -------
    DiagnoseResult

    Raises
    ------
    TypeError
        Not a Network (nor a model with one), wrong dtypes, a metric callable returning a non-number.
    ValueError
        Shape mismatches, NaN/inf, empty data (``T = 0``, ``B = 0``, empty mask),
        unknown metric, ``alpha`` outside (0, 1], targets with zero variance
        (FVU) or not ±1 (sign accuracy).
    """
    network = _as_network(network)
    name, fn = _check_metric(metric)
    subs = _subsets(subsets)
    xt, bf = _inputs(network, x, y, mask, batch_first, fn is None)
    form = ordered_schur(network.effective_recurrence())
    split = schur_split(form, alpha, sep_method="none")
    abl = ablate(form, split, subs)
    W = network.recurrence_from_effective(abl.W).astype(network.dtype)
    y_hat = network.rollout(xt, W_hh=W, batch_first=False, n_threads=n_threads)
    assert isinstance(y_hat, np.ndarray)
    scores = _scores(name, fn, y_hat, y, mask, bf)
    return _result(subs, name, form, split, abl, scores, network.leak)


def _result(
    subs: tuple[tuple[str, ...], ...],
    name: str,
    form: SchurForm,
    split: SchurSplit,
    abl: Ablation,
    scores: np.ndarray,
    leak: float,
) -> DiagnoseResult:
    """The :class:`DiagnoseResult` of per-variant ``scores`` (read-only arrays)."""
    mass = np.array(abl.removed_mass, dtype=np.float64)
    delta = scores - scores[0]
    arrays = {
        "removed_mass": mass,
        "metric": scores,
        "delta": delta,
        "delta_per_mass": metrics.s_delta_t(delta, mass),
        "moduli": np.abs(form.eigvals),
    }
    for a in arrays.values():
        a.flags.writeable = False
    return DiagnoseResult(
        subsets=subs,
        metric_name=name,
        n=form.n,
        n_R=split.n_R,
        alpha=split.alpha,
        threshold=split.threshold,
        leak=leak,
        **arrays,
    )
