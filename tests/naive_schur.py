"""Plain NumPy/SciPy references and adversarial matrix families for the Schur tests.

Nothing here uses rnnschur's compiled code or Numba kernels.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl
from scipy.linalg import lapack
from scipy.optimize import linear_sum_assignment

EPS = np.finfo(np.float64).eps
NAMES = ("RR", "CR", "CC")


# --------------------------------------------------------------------------- blocks
def blocks_of(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, sizes) of the diagonal blocks of a quasi-triangular T, by a loop."""
    n = T.shape[0]
    starts, sizes = [], []
    i = 0
    while i < n:
        s = 2 if i + 1 < n and T[i + 1, i] != 0.0 else 1
        starts.append(i)
        sizes.append(s)
        i += s
    return np.array(starts, dtype=np.int64), np.array(sizes, dtype=np.int64)


def block_moduli(T: np.ndarray) -> np.ndarray:
    starts, sizes = blocks_of(T)
    return np.array(
        [
            np.max(np.abs(np.linalg.eigvals(T[s : s + z, s : s + z])))
            for s, z in zip(starts, sizes, strict=True)
        ]
    )


def coupling_masks(T: np.ndarray, n_R: int) -> dict[str, np.ndarray]:
    """Masks RR, CR, CC of the strictly block-upper part of T, by explicit loops."""
    n = T.shape[0]
    starts, sizes = blocks_of(T)
    blk = np.empty(n, dtype=np.int64)
    for k, (s, z) in enumerate(zip(starts, sizes, strict=True)):
        blk[s : s + z] = k
    masks = {name: np.zeros((n, n), dtype=bool) for name in NAMES}
    for i in range(n):
        for j in range(n):
            if blk[i] >= blk[j]:
                continue
            if i < n_R and j < n_R:
                masks["RR"][i, j] = True
            elif i < n_R:
                masks["CR"][i, j] = True
            else:
                masks["CC"][i, j] = True
    return masks


def ablate_reference(
    Q: np.ndarray, T: np.ndarray, n_R: int, subsets
) -> tuple[np.ndarray, np.ndarray]:
    """W̃(S) = Q Z_S(T) Qᵀ and ‖ΔT‖_F/‖T‖_F for each subset, two products each."""
    masks = coupling_masks(T, n_R)
    Ws, mass = [], []
    for sub in subsets:
        Z = T.copy()
        for name in sub:
            Z[masks[name]] = 0.0
        Ws.append(Q @ Z @ Q.T)
        tn = np.linalg.norm(T)
        mass.append(np.linalg.norm(T - Z) / tn if tn > 0 else 0.0)
    return np.array(Ws), np.array(mass)


# --------------------------------------------------------------- eigenvalue checks
def eig_condition(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of W and their condition numbers 1/|yᴴx| (unit x, y)."""
    w, vl, vr = sl.eig(W, left=True, right=True)
    vl = vl / np.linalg.norm(vl, axis=0)
    vr = vr / np.linalg.norm(vr, axis=0)
    s = np.abs(np.sum(vl.conj() * vr, axis=0))
    with np.errstate(divide="ignore"):
        kappa = np.where(s > 0, 1.0 / np.maximum(s, 1e-300), np.inf)
    return w, kappa


def match_eigenvalues(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of two eigenvalue multisets: (index_a, index_b)."""
    cost = np.abs(a[:, None] - b[None, :])
    return linear_sum_assignment(cost)


# ------------------------------------------------- scipy + LAPACK dtrexc ordering
def cluster_keys(mod: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """The documented tie rule: decreasing sort, new cluster at gaps > rtol·m + atol."""
    order = np.argsort(-mod, kind="stable")
    keys = np.empty(mod.size, dtype=np.int64)
    c = 0
    for r, k in enumerate(order):
        if r > 0 and mod[order[r - 1]] - mod[k] > rtol * mod[order[r - 1]] + atol:
            c += 1
        keys[k] = c
    return keys


def lapack_ordered_schur(
    W: np.ndarray, rtol: float = 1e-8, atol: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """scipy.linalg.schur, then LAPACK dtrexc moves by the same ordering rule.

    Robust reference: re-reads the block structure after every move, and moves each
    block (in target order) to the first position not yet filled.
    """
    n = W.shape[0]
    if atol is None:
        atol = n * EPS * np.linalg.norm(W)
    T, Z = sl.schur(W, output="real")
    T = np.asfortranarray(T)
    Z = np.asfortranarray(Z)
    starts, sizes = blocks_of(T)
    mods = block_moduli(T)
    keys = cluster_keys(mods, rtol, atol)
    # Label each Schur position with its block's key; move blocks by key order.
    label = np.repeat(keys, sizes)
    filled = 0
    while filled < n:
        starts, sizes = blocks_of(T)
        remaining = [(label[s], s) for s in starts if s >= filled]
        key, src = min(remaining, key=lambda x: (x[0], x[1]))
        if src != filled:
            size = 2 if src + 1 < n and T[src + 1, src] != 0 else 1
            T, Z, info = lapack.dtrexc(T, Z, src + 1, filled + 1)
            if info != 0:
                msg = f"dtrexc failed (info={info})"
                raise RuntimeError(msg)
            moved = np.full(size, key)
            label = np.concatenate(
                [
                    label[:filled],
                    moved,
                    np.delete(label, range(src, src + size))[filled:],
                ]
            )
        size_now = 2 if filled + 1 < n and T[filled + 1, filled] != 0 else 1
        filled += size_now
    return np.asarray(T), np.asarray(Z)


# -------------------------------------------------------------- matrix families
def haar_orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    A = rng.standard_normal((n, n))
    Q, R = np.linalg.qr(A)
    return Q * np.sign(np.where(np.diag(R) == 0, 1.0, np.diag(R)))


def realblock(eigs: np.ndarray) -> np.ndarray:
    """Block-diagonal real matrix with the given eigenvalues (pairs as 2×2 blocks)."""
    blocks = []
    done = np.zeros(eigs.size, dtype=bool)
    for i, lam in enumerate(eigs):
        if done[i]:
            continue
        done[i] = True
        if abs(lam.imag) > 0:
            j = next(
                k
                for k in range(i + 1, eigs.size)
                if not done[k] and np.isclose(eigs[k], lam.conjugate())
            )
            done[j] = True
            a, b = lam.real, abs(lam.imag)
            blocks.append(np.array([[a, -b], [b, a]]))
        else:
            blocks.append(np.array([[lam.real]]))
    return sl.block_diag(*blocks) if blocks else np.zeros((0, 0))


def family(name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """An n×n test matrix of the named family (see FAMILIES)."""
    if name == "gaussian":
        return rng.standard_normal((n, n)) / np.sqrt(n)
    if name == "orthogonal":
        return haar_orthogonal(rng, n)
    if name == "cayley":
        U = rng.uniform(-1, 1, (n, n)) / np.sqrt(n)
        A = (U - U.T) / 2
        eye = np.eye(n)
        return np.linalg.solve((eye + A).T, (eye - A).T).T  # (I − A)(I + A)⁻¹
    if name == "cayley_form":
        U = rng.uniform(-1, 1, (n, n)) / np.sqrt(n)
        A = (U - U.T) / 2
        eye = np.eye(n)
        O = np.linalg.solve((eye + A).T, (eye - A).T).T
        D = realblock(np.linalg.eigvals(rng.uniform(-1, 1, (n, n)) / np.sqrt(n)))
        return O @ D @ O.T
    if name == "normal":
        Qm = haar_orthogonal(rng, n)
        D = realblock(np.linalg.eigvals(rng.standard_normal((n, n)) / np.sqrt(n)))
        return Qm @ D @ Qm.T
    if name == "diagonal":
        return np.diag(rng.choice([-2.0, -0.5, 0.0, 0.3, 1.0, 1.5], n))
    if name == "triangular":
        return np.triu(rng.standard_normal((n, n)))
    if name == "jordan":
        out = np.zeros((n, n))
        i = 0
        while i < n:
            k = int(min(n - i, rng.integers(1, 5)))
            lam = rng.choice([0.0, 0.5, -1.0, rng.uniform(-1, 1)])
            out[i : i + k, i : i + k] = lam * np.eye(k) + np.eye(k, k=1)
            i += k
        Qm = haar_orthogonal(rng, n)
        return Qm @ out @ Qm.T
    if name == "repeated":
        vals = rng.choice([0.9, -0.4, 0.2], n)
        M = np.diag(vals) + np.triu(rng.standard_normal((n, n)), 1) * 0.3
        Qm = haar_orthogonal(rng, n)
        return Qm @ M @ Qm.T
    if name == "close_pairs":
        # Complex pairs whose eigenvalues differ by 1e-9 .. 1e-5, with coupling.
        eigs = []
        while len(eigs) + 4 <= n:
            r, th = rng.uniform(0.3, 1.2), rng.uniform(0.2, 2.9)
            d = 10.0 ** rng.uniform(-9, -5)
            lam1 = r * np.exp(1j * th)
            lam2 = r * (1 + d) * np.exp(1j * (th + d))
            eigs += [lam1, lam1.conjugate(), lam2, lam2.conjugate()]
        eigs += list(rng.uniform(-1, 1, n - len(eigs)))
        M = realblock(np.array(eigs)) + np.triu(rng.standard_normal((n, n)), 2) * 0.5
        Qm = haar_orthogonal(rng, n)
        return Qm @ M @ Qm.T
    if name == "grcar":
        k = 3
        return (
            np.eye(n) - np.eye(n, k=-1) + sum(np.eye(n, k=j) for j in range(1, k + 1))
        )
    if name == "kahan":
        theta = 1.2
        s, c = np.sin(theta), np.cos(theta)
        K = np.eye(n) - c * np.triu(np.ones((n, n)), 1)
        return np.diag(s ** np.arange(n)) @ K
    if name == "zero":
        return np.zeros((n, n))
    if name == "low_rank":
        r = max(1, n // 4)
        return rng.standard_normal((n, r)) @ rng.standard_normal((r, n)) / n
    msg = f"unknown family {name}"
    raise ValueError(msg)


FAMILIES = (
    "gaussian",
    "orthogonal",
    "cayley",
    "cayley_form",
    "normal",
    "diagonal",
    "triangular",
    "jordan",
    "repeated",
    "close_pairs",
    "grcar",
    "kahan",
    "zero",
    "low_rank",
)
