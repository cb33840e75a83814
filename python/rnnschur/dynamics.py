"""Fixed points of a tanh RNN under constant input, and their linearisations.

For a network ``h ← tanh(W_hh h + W_xh x* + b_h)`` and a constant input ``x*`` the
fixed points solve ``F(h) = tanh(W_hh h + c) − h = 0`` with ``c = W_xh x* + b_h``. A
leaky network ``h ← (1 − a) h + a tanh(W_hh h + c)`` has the same fixed points (its
residual is ``a F(h)``), so the search is leak-free; ``q = ½‖F(h)‖²`` is always the
leak-free objective. Stability is that of the map actually run: the eigenvalues of
its Jacobian ``(1 − a) I + a diag(1 − h²) W_hh`` (``diag(1 − h²) W_hh`` for ``a = 1``);
a point is stable when every eigenvalue has modulus below 1.

The search (compiled core, float64, threads over starting states) is Newton on
``F`` with the analytic Jacobian ``diag(1 − h²) W_hh − I`` and a backtracking line
search on ``q``; where Newton cannot lower ``q`` (a singular Jacobian) it takes
Levenberg-damped Newton steps on ``q`` itself. A start ends as

* ``"fixed"``: ``q < tol``;
* ``"slow"``: a local minimum of ``q`` with ``q ≥ tol`` (``‖∇q‖`` negligible
  relative to ``(‖W_hh‖_F + √Nh) ‖F‖`` while ``q`` stagnates) — a slow point, never reported
  as fixed;
* ``"not_converged"``: ``max_iter`` reached (or stalled with a sizeable gradient);
* ``"nonfinite"``: the iterate overflowed.

Fixed and slow points are deduplicated (∞-norm within ``dedup_tol``); the starts
that did not converge keep their status in :attr:`FixedPoints.start_status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from . import _core
from ._validation import as_generator, check_bool, check_int, check_real
from .network import Network
from .rnn import rollout

__all__ = ["STATUS_NAMES", "FixedPoints", "fixed_points", "network_arrays"]

#: Start statuses, indexed by the compiled core's status codes.
STATUS_NAMES: tuple[str, str, str, str] = (
    "fixed",
    "slow",
    "not_converged",
    "nonfinite",
)

_ACTIVATIONS = {"tanh": 0, "identity": 1}
_TRAJ_STEPS = 50  # length of the default constant-input trajectories
_TRAJ_BATCH = 64  # trajectories drawn for the default starting states


@dataclass(frozen=True)
class NetworkArrays:
    """The float64 arrays of a network that the fixed-point search needs."""

    W_xh: np.ndarray
    W_hh: np.ndarray
    b_h: np.ndarray
    leak: float
    h0: np.ndarray | None


def _weight(network: Any, name: str, required: bool) -> np.ndarray | None:
    value = getattr(network, name, None)
    if value is None:
        if required:
            msg = (
                f"network must have an attribute {name!r} (array); got "
                f"{type(network).__name__}"
            )
            raise TypeError(msg)
        return None
    try:
        a = np.array(value, dtype=np.float64, order="C")
    except (TypeError, ValueError) as exc:
        msg = f"network.{name} must be a real array: {exc}"
        raise TypeError(msg) from None
    if not np.all(np.isfinite(a)):
        msg = f"network.{name} contains NaN or inf"
        raise ValueError(msg)
    return a


def network_arrays(network: Any) -> NetworkArrays:
    """Validated float64 copies of ``network``'s weights (duck-typed).

    Parameters
    ----------
    network : object
        Any object with ``W_xh`` (Nh, Nx) and ``W_hh`` (Nh, Nh); optional ``b_h``
        (Nh,) (None or missing: zero), ``leak`` (float in (0, 1]; None or missing:
        1) and ``h0`` (Nh,) (initial state of trajectories; missing: zero).

    Returns
    -------
    NetworkArrays

    Raises
    ------
    TypeError
        A required attribute is missing, or a weight is not a real array.
    ValueError
        Mismatched shapes, NaN/inf weights, or a leak outside (0, 1].
    """
    inner = getattr(network, "network", None)
    if isinstance(inner, Network):  # a trained model: its network type
        network = inner
    W_xh = _weight(network, "W_xh", True)
    W_hh = _weight(network, "W_hh", True)
    assert W_xh is not None
    assert W_hh is not None
    if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1] or W_hh.shape[0] == 0:
        msg = f"network.W_hh must be a non-empty square matrix; got shape {W_hh.shape}"
        raise ValueError(msg)
    n = W_hh.shape[0]
    if W_xh.ndim != 2 or W_xh.shape[0] != n:
        msg = f"network.W_xh must have shape ({n}, Nx); got {W_xh.shape}"
        raise ValueError(msg)
    b_h = _weight(network, "b_h", False)
    if b_h is None:
        b_h = np.zeros(n)
    elif b_h.shape != (n,):
        msg = f"network.b_h must have shape ({n},); got {b_h.shape}"
        raise ValueError(msg)
    h0 = _weight(network, "h0", False)
    if h0 is not None and h0.shape != (n,):
        msg = f"network.h0 must have shape ({n},); got {h0.shape}"
        raise ValueError(msg)
    leak = getattr(network, "leak", None)
    leak = 1.0 if leak is None else leak
    leak = check_real("network.leak", leak, low=0.0, high=1.0, low_open=True)
    return NetworkArrays(W_xh, W_hh, b_h, leak, h0)


@dataclass(frozen=True, eq=False)
class FixedPoints:
    """Deduplicated fixed and slow points of a network under constant input.

    Attributes
    ----------
    h : ndarray, float64, shape (P, Nh)
        The points: fixed points first (ascending ``q``), then slow points.
    q : ndarray, float64, shape (P,)
        ``½‖tanh(W_hh h + c) − h‖²``.
    is_fixed : ndarray, bool, shape (P,)
        True for fixed points (``q < tol``), False for slow points.
    status : ndarray, str, shape (P,)
        ``"fixed"`` or ``"slow"``.
    eigenvalues : ndarray, complex128, shape (P, Nh)
        Eigenvalues of the Jacobian of the map actually run (leak included),
        largest modulus first.
    stable : ndarray, bool, shape (P,)
        Every eigenvalue has modulus < 1.
    n_unstable : ndarray, int64, shape (P,)
        Number of eigenvalues with modulus > 1.
    count : ndarray, int64, shape (P,)
        Number of starts that ended at the point.
    left_eigenvectors, right_eigenvectors : ndarray, complex128, (P, Nh, Nh) or None
        Column ``k`` belongs to ``eigenvalues[:, k]`` (``vl[:, k]ᴴ J = λ_k vl[:, k]ᴴ``,
        ``J vr[:, k] = λ_k vr[:, k]``, unit 2-norm); only with ``eigenvectors=True``.
    x_star : ndarray, float64, shape (Nx,)
    leak : float
    tol : float
    starts : ndarray, float64, shape (S, Nh)
        The starting states.
    final_h : ndarray, float64, shape (S, Nh)
        Where each start ended.
    start_q : ndarray, float64, shape (S,)
    start_status : ndarray, str, shape (S,)
        One of :data:`STATUS_NAMES` per start.
    start_iters : ndarray, int32, shape (S,)
    start_point : ndarray, int64, shape (S,)
        Index into ``h`` of the point each start ended at, −1 if none.
    history : ndarray, float64, shape (S, max_iter + 2) or None
        ``q`` per iterate (NaN after the last); only with ``history=True``.
    """

    h: np.ndarray
    q: np.ndarray
    is_fixed: np.ndarray
    status: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    n_unstable: np.ndarray
    count: np.ndarray
    left_eigenvectors: np.ndarray | None
    right_eigenvectors: np.ndarray | None
    x_star: np.ndarray
    leak: float
    tol: float
    starts: np.ndarray
    final_h: np.ndarray
    start_q: np.ndarray
    start_status: np.ndarray
    start_iters: np.ndarray
    start_point: np.ndarray
    history: np.ndarray | None

    @property
    def n_fixed(self) -> int:
        """Number of distinct fixed points."""
        return int(self.is_fixed.sum())

    @property
    def n_stable(self) -> int:
        """Number of distinct stable fixed points."""
        return int((self.is_fixed & self.stable).sum())

    def summary(self) -> dict[str, int]:
        """Counts: fixed, stable, saddles by unstable modes, slow points, failed starts."""
        out = {"fixed": self.n_fixed, "stable": self.n_stable}
        for k in np.unique(self.n_unstable[self.is_fixed]):
            if k > 0:
                out[f"saddle_{int(k)}"] = int(
                    (self.is_fixed & (self.n_unstable == k)).sum()
                )
        out["slow"] = int((~self.is_fixed).sum())
        for name in STATUS_NAMES[2:]:
            out[f"starts_{name}"] = int((self.start_status == name).sum())
        return out


def _threads(n_threads: Any) -> int:
    return 0 if n_threads is None else min(check_int("n_threads", n_threads, 1), 4096)


def _x_star(x_star: Any, n_in: int) -> np.ndarray:
    if x_star is None:
        return np.zeros(n_in)
    x = np.asarray(x_star, dtype=np.float64)
    if x.shape != (n_in,):
        msg = f"x_star must have shape ({n_in},); got {x.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(x)):
        msg = "x_star contains NaN or inf"
        raise ValueError(msg)
    return x


def trajectories(
    net: NetworkArrays, x: np.ndarray, h0: np.ndarray | None = None
) -> np.ndarray:
    """Hidden states ``h_1 .. h_T`` (T, B, Nh) of the (leaky) network driven by ``x``.

    ``h0`` (B, Nh) or (Nh,) overrides the network's own initial state.
    """
    if h0 is None:
        h0 = net.h0
    if net.leak == 1.0:
        W_hy = np.zeros((1, net.W_hh.shape[0]))
        _, hid = rollout(
            net.W_xh, net.W_hh, W_hy, x, b_h=net.b_h, h0=h0, return_hidden=True
        )
        return np.asarray(hid)
    T, B = x.shape[:2]
    n = net.W_hh.shape[0]
    out = np.empty((T, B, n))
    h = np.broadcast_to(np.zeros(n) if h0 is None else h0, (B, n)).copy()
    a = net.leak
    for t in range(T):
        h = (1.0 - a) * h + a * np.tanh(h @ net.W_hh.T + x[t] @ net.W_xh.T + net.b_h)
        out[t] = h
    return out


def _default_states(
    network: Any, net: NetworkArrays, x_star: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """States from the network's own trajectories (see :func:`fixed_points`)."""
    task = getattr(network, "task", None)
    if task is not None and callable(getattr(task, "sample", None)):
        x = np.asarray(task.sample(_TRAJ_BATCH, rng, split="test", dtype=np.float64)[0])
        return trajectories(net, x)
    n = net.W_hh.shape[0]
    x = np.broadcast_to(x_star, (_TRAJ_STEPS, _TRAJ_BATCH, x_star.size)).copy()
    h0 = rng.uniform(-1.0, 1.0, size=(_TRAJ_BATCH, n))
    return trajectories(net, x, h0)


def sample_starts(
    network: Any,
    n_starts: int = 1024,
    *,
    inputs: Any = None,
    x_star: Any = None,
    noise: float = 0.5,
    rng: Any = None,
) -> np.ndarray:
    """Starting states sampled from the network's own trajectories plus noise.

    Parameters
    ----------
    network : object
        See :func:`network_arrays`.
    n_starts : int
        Number of states ``S``.
    inputs : array_like, shape (T, B, Nx), optional
        Drive the network with these inputs and sample its hidden states. Default:
        if ``network.task`` can ``sample``, a test batch of 64 trials of that task;
        otherwise 64 trajectories of 50 steps under the constant input ``x_star``
        from initial states uniform in [−1, 1]^Nh.
    x_star : array_like, shape (Nx,), optional
        Constant input of the default trajectories (zero when omitted).
    noise : float
        Standard deviation of the i.i.d. Gaussian noise added to every sampled state.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    ndarray, float64, shape (S, Nh)
    """
    net = network_arrays(network)
    n_starts = check_int("n_starts", n_starts, 1)
    noise = check_real("noise", noise, low=0.0)
    gen = as_generator("rng", rng)
    xs = _x_star(x_star, net.W_xh.shape[1])
    if inputs is None:
        states = _default_states(network, net, xs, gen)
    else:
        x = np.asarray(inputs, dtype=np.float64)
        if (
            x.ndim != 3
            or x.shape[2] != net.W_xh.shape[1]
            or x.shape[0] * x.shape[1] == 0
        ):
            msg = (
                f"inputs must have shape (T, B, {net.W_xh.shape[1]}) with T, B >= 1; "
                f"got {x.shape}"
            )
            raise ValueError(msg)
        states = trajectories(net, np.ascontiguousarray(x))
    flat = states.reshape(-1, states.shape[-1])
    picked = flat[gen.integers(0, flat.shape[0], size=n_starts)]
    return picked + noise * gen.standard_normal(picked.shape)


def _dedup(h: np.ndarray, q: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy clusters in ∞-norm: (representative indices, label per row).

    Rows are visited in ascending ``q``; each unlabelled row founds a cluster of all
    unlabelled rows within ``tol`` of it (one vectorised pass per distinct point).
    """
    order = np.argsort(q, kind="stable")
    label = np.full(h.shape[0], -1, dtype=np.int64)
    reps: list[int] = []
    for i in order:
        if label[i] >= 0:
            continue
        free = np.flatnonzero(label < 0)
        near = free[np.max(np.abs(h[free] - h[i]), axis=1) <= tol]
        label[near] = len(reps)
        reps.append(int(i))
    return np.asarray(reps, dtype=np.int64), label


def _jacobian(
    net: NetworkArrays, c: np.ndarray, h: np.ndarray, activation: str
) -> np.ndarray:
    d = 1.0 if activation == "identity" else 1.0 - np.tanh(net.W_hh @ h + c) ** 2
    J: np.ndarray = net.leak * (np.asarray(d).reshape(-1, 1) * net.W_hh)
    J[np.diag_indices_from(J)] += 1.0 - net.leak
    return J


def _eigvecs(
    net: NetworkArrays, c: np.ndarray, h: np.ndarray, activation: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues and unit left/right eigenvectors (LAPACK), largest modulus first."""
    P, n = h.shape
    ev = np.empty((P, n), dtype=np.complex128)
    vl = np.empty((P, n, n), dtype=np.complex128)
    vr = np.empty((P, n, n), dtype=np.complex128)
    for p in range(P):
        w, left, right = scipy.linalg.eig(
            _jacobian(net, c, h[p], activation), left=True
        )
        k = np.lexsort((-w.imag, -w.real, -np.abs(w)))
        ev[p], vl[p], vr[p] = w[k], left[:, k], right[:, k]
    return ev, vl, vr


def _options(
    tol: Any,
    grad_tol: Any,
    dedup_tol: Any,
    max_iter: Any,
    eigenvectors: Any,
    history: Any,
) -> tuple[float, float, float, int]:
    """Checked ``(tol, grad_tol, dedup_tol, max_iter)`` of :func:`fixed_points`."""
    tol = check_real("tol", tol, low=0.0, low_open=True)
    grad_tol = check_real("grad_tol", grad_tol, low=0.0)
    dedup_tol = check_real("dedup_tol", dedup_tol, low=0.0)
    max_iter = check_int("max_iter", max_iter, 0)
    check_bool("eigenvectors", eigenvectors)
    check_bool("history", history)
    return tol, grad_tol, dedup_tol, max_iter


def _given_starts(starts: Any, inputs: Any, n: int) -> np.ndarray:
    """Caller-given starting states as a finite float64 (S, n) array, S >= 1."""
    if inputs is not None:
        msg = "give either starts or inputs, not both"
        raise ValueError(msg)
    s0 = np.array(starts, dtype=np.float64, order="C", ndmin=2)
    if s0.ndim != 2 or s0.shape[1] != n or s0.shape[0] == 0:
        msg = f"starts must have shape (S, {n}) with S >= 1; got {np.shape(starts)}"
        raise ValueError(msg)
    if not np.all(np.isfinite(s0)):
        msg = "starts contains NaN or inf"
        raise ValueError(msg)
    return s0


def _search(
    net: NetworkArrays,
    xs: np.ndarray,
    s0: np.ndarray,
    opts: tuple[float, float, float, int],
    eigenvectors: bool,
    history: bool,
    activation: str,
    nt: int,
) -> FixedPoints:
    """Newton from every start, then dedup (fixed points first) and linearise."""
    tol, grad_tol, dedup_tol, max_iter = opts
    c = np.ascontiguousarray(net.W_xh @ xs + net.b_h)
    act = _ACTIVATIONS[activation]
    h, q, code, iters, _, hist = _core.fixed_points_newton(
        net.W_hh, c, s0, tol, grad_tol, max_iter, act, bool(history), nt
    )
    start_point = np.full(s0.shape[0], -1, dtype=np.int64)
    groups: list[np.ndarray] = []
    for want in (0, 1):  # fixed points first, then slow points
        rows = np.flatnonzero(code == want)
        reps, label = _dedup(h[rows], q[rows], dedup_tol)
        start_point[rows] = label + sum(g.size for g in groups)
        groups.append(rows[reps])
    idx = np.concatenate(groups)
    P = idx.size
    points = np.ascontiguousarray(h[idx])
    vl: np.ndarray | None = None
    vr: np.ndarray | None = None
    if eigenvectors:
        ev, vl, vr = _eigvecs(net, c, points, activation)
    else:
        ev = _core.fixed_point_eigenvalues(net.W_hh, c, points, net.leak, act, nt)
    mod = np.abs(ev)
    is_fixed = np.arange(P) < groups[0].size
    return FixedPoints(
        h=points,
        q=q[idx],
        is_fixed=is_fixed,
        status=np.where(is_fixed, "fixed", "slow"),
        eigenvalues=ev,
        stable=np.all(mod < 1.0, axis=1),
        n_unstable=np.sum(mod > 1.0, axis=1).astype(np.int64),
        count=np.bincount(start_point[start_point >= 0], minlength=P).astype(np.int64),
        left_eigenvectors=vl,
        right_eigenvectors=vr,
        x_star=xs,
        leak=net.leak,
        tol=tol,
        starts=s0,
        final_h=h,
        start_q=q,
        start_status=np.asarray(STATUS_NAMES)[code],
        start_iters=iters,
        start_point=start_point,
        history=hist,
    )


def fixed_points(
    network: Any,
    x_star: Any = None,
    starts: Any = None,
    *,
    n_starts: int = 1024,
    inputs: Any = None,
    noise: float = 0.5,
    rng: Any = None,
    tol: float = 1e-20,
    grad_tol: float = 1e-9,
    max_iter: int = 100,
    dedup_tol: float = 1e-6,
    eigenvectors: bool = False,
    history: bool = False,
    n_threads: int | None = None,
) -> FixedPoints:
    """Find the fixed points (and slow points) of a network under constant input.

    Parameters
    ----------
    network : object
        Duck-typed: ``W_xh`` (Nh, Nx), ``W_hh`` (Nh, Nh), optional ``b_h``, ``leak``,
        ``h0`` (see :func:`network_arrays`); the package's trained models qualify.
    x_star : array_like, shape (Nx,), optional
        The constant input (zero when omitted).
    starts : array_like, shape (S, Nh), optional
        Starting states. Default: ``n_starts`` states from :func:`sample_starts`
        (the network's own trajectories, driven by ``inputs`` if given, plus
        Gaussian noise of standard deviation ``noise``).
    n_starts, inputs, noise, rng
        See :func:`sample_starts`; ignored when ``starts`` is given.
    tol : float
        A start converged to a fixed point when ``q < tol`` (float64 reaches ~1e-30).
    grad_tol : float
        Slow-point test: ``‖Jᵀ F‖ / ((‖W_hh‖_F + √Nh) ‖F‖) <= grad_tol`` while ``q``
        stagnates (``‖Jᵀ F‖ = ‖∇q‖``).
    max_iter : int
        Newton iterations per start.
    dedup_tol : float
        Points closer than this in the ∞-norm are one point.
    eigenvectors : bool
        Also return unit left and right eigenvectors (LAPACK ``geev`` per point;
        the eigenvalues then come from the same call).
    history : bool
        Keep ``q`` per iteration and start (:attr:`FixedPoints.history`).
    n_threads : int, optional
        Threads over starts; None uses every hardware thread.

    Returns
    -------
    FixedPoints

    Raises
    ------
    TypeError, ValueError
        Bad network (missing weights, NaN/inf, shapes), ``starts`` of the wrong
        width or with NaN/inf, or bad options. Starts that do not converge never
        raise: their status says so.
    """
    net = network_arrays(network)
    xs = _x_star(x_star, net.W_xh.shape[1])
    opts = _options(tol, grad_tol, dedup_tol, max_iter, eigenvectors, history)
    nt = _threads(n_threads)
    if starts is None:
        s0 = sample_starts(
            network, n_starts, inputs=inputs, x_star=xs, noise=noise, rng=rng
        )
    else:
        s0 = _given_starts(starts, inputs, net.W_hh.shape[0])
    return _search(net, xs, s0, opts, eigenvectors, history, "tanh", nt)


def _identity_fixed_points(network: Any, x_star: Any, starts: Any) -> FixedPoints:
    """:func:`fixed_points` (default options) of the network with ``tanh`` replaced
    by the identity: an affine map, whose fixed point ``(I − W_hh)⁻¹ c`` and
    Jacobian are known in closed form. For tests of the Newton core only."""
    net = network_arrays(network)
    xs = _x_star(x_star, net.W_xh.shape[1])
    s0 = _given_starts(starts, None, net.W_hh.shape[0])
    opts = _options(1e-20, 1e-9, 1e-6, 100, False, False)
    return _search(net, xs, s0, opts, False, False, "identity", 0)
