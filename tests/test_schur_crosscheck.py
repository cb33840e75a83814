"""Cross-check against scipy.linalg.schur + LAPACK dtrexc (scipy.linalg.lapack).

Where eigenvalues (and moduli of distinct blocks) are well separated the ordered real
Schur form is unique up to an orthogonal change of basis inside each diagonal block
(a sign for a 1×1 block). So with ``G = Q_refᵀ Q``: G is block diagonal with the
block structure of T, orthogonal, ±1 on 1×1 blocks, and ``T = Gᵀ T_ref G``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from naive_schur import blocks_of, family, lapack_ordered_schur
from rnnschur.schur import ordered_schur


def _well_separated(W: np.ndarray, gap: float) -> bool:
    ev = np.linalg.eigvals(W)
    scale = max(np.abs(ev).max(), 1e-300)
    d = np.abs(ev[:, None] - ev[None, :])
    np.fill_diagonal(d, np.inf)
    # Conjugate partners share a 2x2 block: ignore their distance.
    conj = np.abs(ev[:, None] - ev[None, :].conj()) < 1e-12 * scale
    d[conj & (np.abs(ev.imag)[:, None] > 0)] = np.inf
    if d.min() < gap * scale:
        return False
    m = np.abs(ev)
    dm = np.abs(m[:, None] - m[None, :])
    same_block = conj | np.eye(ev.size, dtype=bool)
    dm[same_block] = np.inf
    return dm.min() > gap * scale


@settings(max_examples=40)
@given(
    fam=st.sampled_from(["gaussian", "normal", "triangular", "cayley_form"]),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(["own", "lapack", "eigen"]),
)
def test_same_order_and_T_as_scipy_dtrexc(fam, n, seed, method):
    W = family(fam, np.random.default_rng(seed), n)
    assume(_well_separated(W, 1e-2))
    f = ordered_schur(W, method=method)
    T_ref, Q_ref = lapack_ordered_schur(W, rtol=f.rtol, atol=f.atol)
    starts, sizes = blocks_of(T_ref)
    np.testing.assert_array_equal(starts, f.block_starts)
    np.testing.assert_array_equal(sizes, f.block_sizes)
    # Same eigenvalue in every block position.
    for s, z in zip(starts, sizes, strict=True):
        ref = np.linalg.eigvals(T_ref[s : s + z, s : s + z])
        np.testing.assert_allclose(
            np.sort_complex(ref), np.sort_complex(f.eigvals[s : s + z]), atol=1e-10
        )
    G = Q_ref.T @ f.Q
    block = np.repeat(np.arange(starts.size), sizes)
    inside = block[:, None] == block[None, :]
    assert np.abs(G[~inside]).max(initial=0.0) <= 1e-8
    for s, z in zip(starts, sizes, strict=True):
        g = G[s : s + z, s : s + z]
        np.testing.assert_allclose(g.T @ g, np.eye(z), atol=1e-8)
        if z == 1:
            assert abs(abs(g[0, 0]) - 1) <= 1e-8
    Gb = np.where(inside, G, 0.0)
    scale = np.linalg.norm(W)
    np.testing.assert_allclose(f.T, Gb.T @ T_ref @ Gb, atol=1e-8 * scale)


def test_dtrexc_reference_is_itself_valid(rng):
    # Guard the reference: it must be a sorted Schur form of W.
    W = rng.standard_normal((30, 30))
    T, Q = lapack_ordered_schur(W)
    np.testing.assert_allclose(Q @ T @ Q.T, W, atol=1e-12 * np.linalg.norm(W))
    starts, sizes = blocks_of(T)
    ev = [
        np.linalg.eigvals(T[s : s + z, s : s + z])
        for s, z in zip(starts, sizes, strict=True)
    ]
    m = np.array([np.abs(e).max() for e in ev])
    assert np.all(np.diff(m) <= 1e-12)
