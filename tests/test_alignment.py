"""Schur-block subspace alignment (rnnschur.alignment) against direct NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

import rnnschur
from rnnschur.alignment import block_perturbations, subspace_alignment


def _network(seed, n=20, n_in=3, n_out=2, T=40, B=16):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) / np.sqrt(n) * 1.1
    W_xh = rng.standard_normal((n, n_in))
    W_hy = rng.standard_normal((n_out, n))
    x = rng.standard_normal((T, B, n_in))
    _, H = rnnschur.rollout(W_xh, W, W_hy, x, return_hidden=True)
    return W, W_xh, W_hy, H


@pytest.mark.parametrize(("seed", "alpha"), [(0, 0.9), (1, 0.5), (2, 0.99), (3, 1.0)])
def test_block_perturbations_equal_single_block_ablations(seed, alpha):
    W = _network(seed)[0]
    form = rnnschur.ordered_schur(W)
    split = rnnschur.schur_split(form, alpha)
    dW = block_perturbations(form, split)
    abl = rnnschur.ablate(form, split, [("RR",), ("CR",), ("CC",), ("RR", "CR", "CC")])
    scale = np.linalg.norm(W)
    for i, b in enumerate(("RR", "CR", "CC")):
        np.testing.assert_allclose(dW[b], W - abl.W[i], rtol=0, atol=1e-13 * scale)
    total = dW["RR"] + dW["CR"] + dW["CC"]
    np.testing.assert_allclose(total, W - abl.W[3], rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(total, form.Q @ form.N @ form.Q.T, atol=1e-13 * scale)


def test_block_perturbations_reject_foreign_split():
    W = _network(0)[0]
    form = rnnschur.ordered_schur(W)
    other = rnnschur.schur_split(rnnschur.ordered_schur(np.eye(5)), 0.9)
    with pytest.raises(ValueError, match="not made from"):
        block_perturbations(form, other)
    with pytest.raises(TypeError):
        block_perturbations(W, other)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(3))
def test_subspace_alignment_against_direct_numpy(seed):
    W, W_xh, W_hy, H = _network(seed)
    res = subspace_alignment(W, H, W_hy=W_hy, W_xh=W_xh, alpha=0.8, n_null=200, rng=0)
    X = H.reshape(-1, H.shape[-1]).astype(np.float64)
    form = rnnschur.ordered_schur(W)
    split = rnnschur.schur_split(form, 0.8)
    abl = rnnschur.ablate(form, split, [("RR",), ("CR",), ("CC",)])
    Xc = X - X.mean(0)
    lam = np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1]
    assert res.participation_ratio == pytest.approx(lam.sum() ** 2 / (lam**2).sum())
    frac = np.cumsum(lam) / lam.sum()
    for v in (0.9, 0.95, 0.99):
        assert res.pc_dims[f"pc{v * 100:g}"] == int(np.argmax(frac >= v)) + 1
    pcs = np.linalg.svd(Xc, full_matrices=False)[2].T
    for i, b in enumerate(("RR", "CR", "CC")):
        blk = res.block(b)
        dW = W - abl.W[i]
        ref = np.linalg.norm(dW @ X.T) / np.linalg.norm(W @ X.T)
        assert blk.activity_weighted_size == pytest.approx(ref, rel=1e-10)
        ro = np.linalg.norm(W_hy @ dW @ X.T) / np.linalg.norm(W_hy @ W @ X.T)
        assert blk.readout_weighted_size == pytest.approx(ro, rel=1e-10)
        assert blk.removed_mass == pytest.approx(abl.removed_mass[i], rel=1e-12)
        assert blk.rank == np.linalg.matrix_rank(dW)
        if blk.rank == 0:
            continue
        np.testing.assert_allclose(
            sla.subspace_angles(blk.col_basis, sla.orth(dW)), 0.0, atol=1e-7
        )
        np.testing.assert_allclose(
            sla.subspace_angles(blk.row_basis, sla.orth(dW.T)), 0.0, atol=1e-7
        )
        k = res.pc_dims["pc90"]
        th = sla.subspace_angles(blk.row_basis, pcs[:, :k])
        np.testing.assert_allclose(blk.angles[("row", "pc90")], th, atol=1e-7)
        th = sla.subspace_angles(blk.col_basis, W_hy.T)
        np.testing.assert_allclose(blk.angles[("col", "readout")], th, atol=1e-7)
        C = np.cov(X.T)
        D = blk.row_basis
        a = np.trace(D.T @ C @ D) / lam[: D.shape[1]].sum()
        assert blk.row_alignment is not None
        assert blk.row_alignment.value == pytest.approx(a, rel=1e-10)
        assert 0.0 <= blk.row_alignment.null_low <= blk.row_alignment.null_high <= 1.0


def test_subspace_alignment_inputs_and_determinism():
    W, W_xh, W_hy, H = _network(5)
    a = subspace_alignment(W, H, n_null=50, rng=3)
    b = subspace_alignment(W.astype(np.float32), H.reshape(-1, 20), n_null=50, rng=3)
    c = subspace_alignment(W, H, n_null=50, rng=np.random.default_rng(3))
    for r in (b, c):
        for x, y in zip(a.to_records(), r.to_records(), strict=True):
            assert x.keys() == y.keys()
    assert a.to_records() == c.to_records()
    assert "readout" not in a.references and a.reference_alignment == {}
    rec = a.to_records()
    assert [r["block"] for r in rec] == ["RR", "CR", "CC"]
    md = subspace_alignment(W, H, W_hy=W_hy, W_xh=W_xh, n_null=50, rng=3).to_markdown()
    assert "| CR |" in md and "readout space" in md and "input space" in md
    with pytest.raises(KeyError):
        a.block("XY")


def test_subspace_alignment_bad_input():
    W, W_xh, W_hy, H = _network(6)
    bad = H.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        subspace_alignment(W, bad)
    with pytest.raises(ValueError, match="hidden units"):
        subspace_alignment(W, H[..., :5])
    with pytest.raises(ValueError, match="empty"):
        subspace_alignment(W, H[:0])
    with pytest.raises(ValueError, match="at least 2"):
        subspace_alignment(W, H[:1, :1])
    with pytest.raises(ValueError, match="zero variance"):
        subspace_alignment(W, np.ones((10, 20)))
    with pytest.raises(ValueError, match="square"):
        subspace_alignment(W[:, :5], H)
    with pytest.raises(ValueError, match="W_hy"):
        subspace_alignment(W, H, W_hy=W_hy[:, :5])
    with pytest.raises(ValueError, match="W_xh"):
        subspace_alignment(W, H, W_xh=W_xh[:5])
    with pytest.raises(TypeError, match="float32 or float64"):
        subspace_alignment(W.astype(int), H)
    with pytest.raises(ValueError, match="variance_levels"):
        subspace_alignment(W, H, variance_levels=(0.0,))
    with pytest.raises(ValueError, match="n_null"):
        subspace_alignment(W, H, n_null=0)
    with pytest.raises(TypeError, match="n_null"):
        subspace_alignment(W, H, n_null=10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        subspace_alignment(W, H, alpha=1.5)


def test_subspace_alignment_detects_aligned_and_orthogonal_couplings():
    # Activity confined to the span of the first Schur vectors of a triangular W:
    # the CR coupling reads from C directions (no activity) -> size 0, gain 0.
    n = 6
    T = np.diag([0.95, 0.9, 0.3, 0.2, 0.1, 0.05]) + np.triu(np.full((n, n), 0.2), 1)
    rng = np.random.default_rng(0)
    H = np.zeros((200, n))
    H[:, :2] = rng.standard_normal((200, 2))
    res = subspace_alignment(T, H, alpha=0.9, n_null=100, rng=0)
    assert res.n_R == 2
    cr = res.block("CR")
    assert cr.activity_weighted_size == 0.0 and cr.activity_gain == 0.0
    assert cr.row_alignment is not None and cr.row_alignment.value == 0.0
    rr = res.block("RR")
    assert rr.rank == 1 and rr.activity_gain > 1.0
    assert rr.row_alignment is not None and rr.row_alignment.value > 0
