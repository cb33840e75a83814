"""Subspace primitives (rnnschur.subspaces) against SciPy and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from rnnschur.subspaces import (
    alignment_index,
    as_states,
    orthonormal_basis,
    participation_ratio,
    principal_angles,
    random_alignment_null,
)


def _rotated_pair(rng, n, angles):
    """Orthonormal A (n, k) and B (n, k) with principal angles exactly ``angles``
    (up to the rounding of cos/sin): B_i = cos θ_i a_i + sin θ_i a⊥_i."""
    k = len(angles)
    Q = np.linalg.qr(rng.standard_normal((n, 2 * k)))[0]
    A = Q[:, :k]
    B = np.cos(angles) * A + np.sin(angles) * Q[:, k:]
    return A, B


# ------------------------------------------------------------ principal angles


def _mp_angles(A, B, dps=30):
    """Principal angles in 30-digit arithmetic (mpmath QR + SVD + acos): an
    independent reference, for full-column-rank A and B."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(dps):
        QA = mp.qr(mp.matrix(A.tolist()), mode="skinny")[0]
        QB = mp.qr(mp.matrix(B.tolist()), mode="skinny")[0]
        s = mp.svd_r(QA.T * QB, compute_uv=False)
        th = sorted((mp.acos(min(mp.mpf(1), x)) for x in s), reverse=True)
        return np.array([float(t) for t in th])


@pytest.mark.parametrize("seed", range(20))
def test_principal_angles_match_scipy_random(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 25))
    p = int(rng.integers(1, n))
    q = int(rng.integers(1, n - p + 1))  # p + q <= n: no trivially zero angle
    A = rng.standard_normal((n, p))
    B = rng.standard_normal((n, q)) * 10.0 ** rng.uniform(-3, 3)
    ours = principal_angles(A, B)
    ref = sla.subspace_angles(A, B)
    assert ours.shape == ref.shape == (min(p, q),)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours, _mp_angles(A, B), rtol=0, atol=1e-13)


@pytest.mark.parametrize("seed", range(6))
def test_principal_angles_overlapping_dimensions(seed):
    # p + q > n: p + q − n angles are exactly 0 and the rest are generic. SciPy
    # takes some of the zero angles from arccos (see the mixed-angle test), so it
    # is compared on the nonzero angles only; the 30-digit reference on all.
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 30))
    p = int(rng.integers(n // 2 + 1, n + 1))
    q = int(rng.integers(n - p + 1, n + 1))
    A, B = rng.standard_normal((n, p)), rng.standard_normal((n, q))
    ours = principal_angles(A, B)
    np.testing.assert_allclose(ours, _mp_angles(A, B), rtol=0, atol=1e-13)
    zero = p + q - n
    assert np.all(ours[-zero:] < 1e-13)
    ref = sla.subspace_angles(A, B)
    np.testing.assert_allclose(ours[:-zero], ref[:-zero], rtol=0, atol=1e-10)


@pytest.mark.parametrize("eps", [1e-4, 1e-8, 1e-12, 0.0])
def test_principal_angles_nearly_parallel(eps):
    rng = np.random.default_rng(7)
    A = rng.standard_normal((30, 5))
    B = A @ rng.standard_normal((5, 5)) + eps * rng.standard_normal((30, 5))
    ours = principal_angles(A, B)
    np.testing.assert_allclose(ours, sla.subspace_angles(A, B), rtol=0, atol=1e-10)
    # Known small angles: accurate in absolute terms far below arccos' sqrt(eps).
    angles = np.array([3e-9, 1e-6, 1e-12, 0.3])
    A2, B2 = _rotated_pair(rng, 20, angles)
    np.testing.assert_allclose(
        principal_angles(A2, B2), np.sort(angles)[::-1], rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        principal_angles(A2, B2), sla.subspace_angles(A2, B2), rtol=0, atol=1e-10
    )


def test_principal_angles_mixed_small_and_large_angles():
    # One angle near 0 and one above π/4. SciPy 1.17's subspace_angles applies its
    # sine/cosine selection mask in the reversed order here and takes the small angle
    # from arccos (error ~ sqrt(eps) = 1.5e-8); the construction gives the exact
    # angles, which ours reproduces to rounding.
    rng = np.random.default_rng(3)
    exact = np.array([1.4, 1e-8])
    A, B = _rotated_pair(rng, 10, exact)
    ours = principal_angles(A, B)
    np.testing.assert_allclose(ours, exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours, _mp_angles(A, B), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours, sla.subspace_angles(A, B), rtol=0, atol=1e-7)


def test_principal_angles_rank_deficient_inputs():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((25, 3))
    A = np.column_stack([base, base @ rng.standard_normal((3, 4))])  # rank 3
    B = rng.standard_normal((25, 6))
    B[:, 5] = B[:, 0] + B[:, 1]  # rank 5
    ours = principal_angles(A, B)
    ref = sla.subspace_angles(A, B)
    assert ours.shape == ref.shape == (3,)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    assert orthonormal_basis(A).shape == sla.orth(A).shape == (25, 3)


def test_principal_angles_special_cases():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((8, 3))
    np.testing.assert_allclose(principal_angles(A, A), 0.0, atol=1e-15)
    Q = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    np.testing.assert_allclose(
        principal_angles(Q[:, :3], Q[:, 3:]), np.pi / 2, atol=1e-15
    )
    assert principal_angles(np.zeros((8, 2)), A).shape == (0,)
    # float32 input and swapped order of differing dims
    a = principal_angles(A.astype(np.float32), Q[:, :5])
    np.testing.assert_allclose(a, principal_angles(Q[:, :5], A.astype(np.float32)))


def test_principal_angles_bad_input():
    A = np.ones((4, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        principal_angles(A, np.ones((5, 2)))
    with pytest.raises(ValueError, match="finite"):
        principal_angles(np.full((4, 2), np.nan), A)
    with pytest.raises(TypeError, match="float32 or float64"):
        principal_angles(np.ones((4, 2), dtype=int), A)
    with pytest.raises(ValueError, match="2-D"):
        principal_angles(np.ones(4), A)
    with pytest.raises(ValueError, match="empty"):
        principal_angles(np.ones((4, 0)), A)
    with pytest.raises(ValueError, match="rtol"):
        principal_angles(A, A, rtol=2.0)


def test_orthonormal_basis_matches_scipy_orth():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((12, 4)) @ rng.standard_normal((4, 9))
    Q = orthonormal_basis(A)
    assert Q.shape == sla.orth(A).shape == (12, 4)
    np.testing.assert_allclose(Q.T @ Q, np.eye(4), atol=1e-14)
    np.testing.assert_allclose(principal_angles(Q, sla.orth(A)), 0.0, atol=1e-12)


# ------------------------------------------------------------ participation ratio


def test_participation_ratio_known_cases():
    n = 7
    iso = np.vstack([np.eye(n), -np.eye(n)])  # centred, covariance ∝ I
    assert participation_ratio(iso) == pytest.approx(n, rel=1e-14)
    rng = np.random.default_rng(0)
    line = rng.standard_normal((50, 1)) * rng.standard_normal((1, n))
    assert participation_ratio(line) == pytest.approx(1.0, rel=1e-12)
    H = rng.standard_normal((6, 5, n)).astype(np.float32)
    assert participation_ratio(H) == pytest.approx(
        participation_ratio(H.reshape(-1, n))
    )
    lam = np.linalg.eigvalsh(np.cov(H.reshape(-1, n).astype(np.float64).T))
    assert participation_ratio(H) == pytest.approx(lam.sum() ** 2 / (lam**2).sum())


def test_states_validation():
    with pytest.raises(ValueError, match="at least 2"):
        as_states(np.ones((1, 3)))
    with pytest.raises(ValueError, match="shape"):
        as_states(np.ones((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="hidden units"):
        as_states(np.ones((4, 3)), 5)
    with pytest.raises(ValueError, match="zero variance"):
        participation_ratio(np.ones((4, 3)))
    with pytest.raises(ValueError, match="empty"):
        as_states(np.ones((0, 3)))


# ------------------------------------------------------------ alignment index


def _random_cov(rng, n, decay=0.7):
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    return (U * decay ** np.arange(n)) @ U.T


def test_alignment_index_top_pcs_is_one_and_complement_is_zero():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 10)) * 0.6 ** np.arange(10)
    C = np.cov(X.T)
    lam, U = np.linalg.eigh(C)
    U = U[:, ::-1]
    for k in (1, 3, 10):
        assert alignment_index(U[:, :k], C) == pytest.approx(1.0, abs=1e-12)
        # any basis of the same span
        R = rng.standard_normal((k, k))
        assert alignment_index(U[:, :k] @ R, C) == pytest.approx(1.0, abs=1e-10)
    assert alignment_index(U[:, 7:], C) == pytest.approx(
        lam[:3].sum() / lam[::-1][:3].sum()
    )
    C2 = np.diag([3.0, 2.0, 0.0, 0.0])
    assert alignment_index(np.eye(4)[:, 2:], C2) == 0.0
    assert np.isnan(alignment_index(np.zeros((4, 2)), C2))
    with pytest.raises(ValueError, match="must be"):
        alignment_index(np.eye(4), np.eye(3))
    with pytest.raises(ValueError, match="not be zero"):
        alignment_index(np.eye(4), np.zeros((4, 4)))


def test_alignment_index_uniform_random_subspaces_closed_form():
    # For a uniformly random d-subspace E tr(DᵀCD) = d tr(C) / n.
    rng = np.random.default_rng(4)
    n, d = 12, 3
    C = _random_cov(rng, n)
    vals = [
        alignment_index(np.linalg.qr(rng.standard_normal((n, d)))[0], C)
        for _ in range(4000)
    ]
    lam = np.sort(np.linalg.eigvalsh(C))[::-1]
    expected = d * np.trace(C) / n / lam[:d].sum()
    se = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals) - expected) < 4 * se


def test_random_null_equals_elsayed_orth_construction():
    # Same G, explicit orth(U S^½ G) per sample with scipy.linalg.orth.
    n, d, m = 9, 3, 25
    C = _random_cov(np.random.default_rng(8), n)
    null = random_alignment_null(C, d, m, np.random.default_rng(99))
    G = np.random.default_rng(99).standard_normal((m, n, d))
    lam, U = np.linalg.eigh(C)
    lam, U = lam[::-1], U[:, ::-1]
    bias = U * np.sqrt(np.clip(lam, 0, None))
    ref = [alignment_index(sla.orth(bias @ g), C) for g in G]
    np.testing.assert_allclose(null, ref, rtol=0, atol=1e-12)


def test_random_null_special_covariances():
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(random_alignment_null(np.eye(6), 2, 50, rng), 1.0)
    low_rank = np.diag([2.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(random_alignment_null(low_rank, 3, 50, rng), 1.0)
    with pytest.raises(ValueError, match="dim"):
        random_alignment_null(np.eye(3), 4, 5, rng)
    with pytest.raises(TypeError, match="Generator"):
        random_alignment_null(np.eye(3), 1, 5, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_samples"):
        random_alignment_null(np.eye(3), 1, 5.0, rng)  # type: ignore[arg-type]


def test_covariance_biased_random_subspace_is_near_null_mean():
    # Subspaces drawn like the null, from an independent stream, sit at its mean.
    n, d = 16, 4
    C = _random_cov(np.random.default_rng(21), n, decay=0.8)
    null = random_alignment_null(C, d, 4000, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    lam, U = np.linalg.eigh(C)
    bias = U * np.sqrt(lam)
    vals = np.array(
        [alignment_index(bias @ rng.standard_normal((n, d)), C) for _ in range(300)]
    )
    assert np.all((vals >= 0) & (vals <= 1))
    se = np.hypot(vals.std() / np.sqrt(vals.size), null.std() / np.sqrt(null.size))
    assert abs(vals.mean() - null.mean()) < 4 * se
    lo, hi = np.quantile(null, [0.005, 0.995])
    assert np.mean((vals >= lo) & (vals <= hi)) > 0.95
