"""Unit tests of ordered_schur / schur_split and the compiled swap machinery.

Bounds: with machine epsilon ε = 2⁻⁵² (LAPACK's ulp), every factorisation must satisfy
‖W − QTQᵀ‖_F ≤ C_BOUND·n·ε·‖W‖_F and ‖QᵀQ − I‖_F ≤ C_BOUND·n·ε with C_BOUND = 16
(LAPACK's own tests use a ratio threshold of 30 in the same units).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnschur
from naive_schur import EPS, blocks_of, coupling_masks, family
from rnnschur import _core
from rnnschur.schur import SchurForm, ordered_schur, schur_split

C_BOUND = 16.0


def assert_valid_form(f: SchurForm, W: np.ndarray) -> None:
    n = W.shape[0]
    nw = np.linalg.norm(W)
    assert np.linalg.norm(W - f.Q @ f.T @ f.Q.T) <= C_BOUND * n * EPS * nw
    assert f.orthogonality_error <= C_BOUND * n * EPS
    assert np.all(np.tril(f.T, -2) == 0.0)
    starts, sizes = blocks_of(f.T)
    np.testing.assert_array_equal(starts, f.block_starts)
    np.testing.assert_array_equal(sizes, f.block_sizes)
    for s, z in zip(starts, sizes, strict=True):
        if z == 2:
            a, b, c, d = f.T[s, s], f.T[s, s + 1], f.T[s + 1, s], f.T[s + 1, s + 1]
            assert a == d
            assert b * c < 0
    m = np.abs(f.eigvals[f.block_starts])
    # Consecutive clusters strictly decrease; see test_schur_properties for the rule.
    assert np.all(np.diff(f.block_clusters) >= 0)
    assert np.all(
        np.diff(m) <= f.rtol * m[:-1] * (1 + f.block_clusters.size) + 1e-12 * nw
    )


# ------------------------------------------------------------------ basic behaviour
@pytest.mark.parametrize("n", [1, 2, 3, 7, 40, 72])
@pytest.mark.parametrize("method", ["own", "lapack", "eigen"])
def test_random_matrix_is_factorised_and_sorted(rng, n, method):
    W = rng.standard_normal((n, n)) / math.sqrt(n)
    f = ordered_schur(W, method=method)
    assert f.method == method
    assert_valid_form(f, W)
    m = np.abs(f.eigvals)
    assert np.all(np.diff(m) <= 1e-12)  # random moduli: strictly sorted
    np.testing.assert_allclose(
        np.sort_complex(f.eigvals), np.sort_complex(np.linalg.eigvals(W)), atol=1e-12
    )
    assert f.spectral_radius == pytest.approx(np.max(np.abs(np.linalg.eigvals(W))))
    assert f.residual <= C_BOUND * n * EPS
    np.testing.assert_array_equal(f.B + f.N, f.T)


def test_conjugate_pairs_are_reported_positive_imaginary_first(rng):
    W = rng.standard_normal((30, 30))
    f = ordered_schur(W)
    for s, z in zip(f.block_starts, f.block_sizes, strict=True):
        if z == 2:
            assert f.eigvals[s].imag > 0
            assert f.eigvals[s + 1] == np.conj(f.eigvals[s])
        else:
            assert f.eigvals[s].imag == 0


def test_arrays_are_readonly_and_float64(rng):
    f = ordered_schur(rng.standard_normal((5, 5)).astype(np.float32))
    for a in (f.Q, f.T, f.W, f.eigvals, f.block_starts, f.block_sizes):
        assert not a.flags.writeable
    assert f.T.dtype == np.float64
    assert f.Q.flags.c_contiguous
    with pytest.raises(ValueError, match="read-only"):
        f.T[0, 0] = 1.0


def test_input_is_not_modified(rng):
    W = rng.standard_normal((6, 6))
    W0 = W.copy()
    for method in ("own", "lapack", "eigen"):
        ordered_schur(W, method=method)
    np.testing.assert_array_equal(W, W0)
    W1 = np.array([[3.0]])
    ordered_schur(W1)
    assert W1[0, 0] == 3.0


@pytest.mark.parametrize("method", ["own", "lapack", "eigen"])
def test_deterministic(rng, method):
    W = rng.standard_normal((50, 50))
    a = ordered_schur(W, method=method)
    b = ordered_schur(W.copy(), method=method)
    np.testing.assert_array_equal(a.T, b.T)
    np.testing.assert_array_equal(a.Q, b.Q)


@pytest.mark.parametrize("name", ["orthogonal", "cayley"])
@pytest.mark.parametrize("n", [8, 64, 72])
def test_unit_modulus_matrices_need_no_swaps(rng, name, n):
    W = family(name, rng, n)
    f = ordered_schur(W)
    assert f.swaps == 0
    assert np.all(f.block_clusters == 0)
    assert_valid_form(f, W)
    assert np.linalg.norm(f.N) <= C_BOUND * n * EPS * np.linalg.norm(W)


def test_equal_moduli_keep_their_order():
    # diag(0.5, -1, 1, -0.5): ties |-1| = |1| and |0.5| = |-0.5| keep input order.
    W = np.diag([0.5, -1.0, 1.0, -0.5])
    f = ordered_schur(W)
    np.testing.assert_array_equal(f.eigvals.real, [-1.0, 1.0, 0.5, -0.5])
    assert f.swaps == 2
    np.testing.assert_array_equal(f.block_clusters, [0, 0, 1, 1])


def test_default_atol(rng):
    W = rng.standard_normal((30, 30))
    f = ordered_schur(W)
    assert f.atol == pytest.approx(30 * EPS * np.linalg.norm(W), rel=1e-12)
    assert ordered_schur(W, atol=0.5).atol == 0.5


def test_rtol_controls_ties():
    W = np.diag([1.0, 1.0 + 1e-9, 1.0 + 1e-3])
    tied = ordered_schur(W)  # 1e-9 < rtol = 1e-8: first two tie
    np.testing.assert_allclose(tied.eigvals.real, [1.0 + 1e-3, 1.0, 1.0 + 1e-9])
    strict = ordered_schur(W, rtol=0.0, atol=0.0)
    np.testing.assert_allclose(strict.eigvals.real, [1.0 + 1e-3, 1.0 + 1e-9, 1.0])


@pytest.mark.parametrize(("threads", "own_max"), [("1", 1024), ("2", 1024)])
def test_auto_method_by_size_at_any_blas_threads(monkeypatch, threads, own_max):
    # Identity matrices: the choice depends on n only (the same at one and at two
    # BLAS threads), and the QR has no work.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", threads)
    assert ordered_schur(np.eye(own_max)).method == "own"
    assert ordered_schur(np.eye(own_max + 1)).method == "lapack"
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    assert ordered_schur(np.eye(own_max + 1)).method == "lapack"


@pytest.mark.parametrize(
    "W",
    [
        np.roll(np.eye(5), 1, axis=0),  # cyclic permutation: needs exceptional shifts
        np.roll(np.eye(12), 1, axis=0),
        np.eye(6),
        np.triu(np.ones((6, 6))),
        np.diag(np.ones(7), 1) + np.diag(np.ones(7), -1),  # symmetric tridiagonal
        np.array([[0.0, 1.0], [-1.0, 0.0]]),
        np.array([[1.0, 1e-300], [1e-300, 1.0]]),
        np.array([[1e-300, 1.0], [0.0, 1e-300]]),
        np.vander(np.linspace(-1, 1, 8)),  # badly scaled
        np.diag(10.0 ** np.arange(-8, 9)) + np.diag(np.ones(16), 1),
    ],
)
def test_own_qr_hard_cases(W):
    f = ordered_schur(W, method="own")
    assert f.method == "own"
    assert_valid_form(f, W)
    np.testing.assert_allclose(
        np.sort(np.abs(f.eigvals)),
        np.sort(np.abs(np.linalg.eigvals(W))),
        atol=1e-10 * max(1.0, np.abs(W).max()),
    )


@pytest.mark.parametrize("method", ["own", "lapack", "eigen"])
def test_extreme_scales(rng, method):
    # max|W| in [0.5, 1): a power-of-two multiple is the same problem exactly.
    W = rng.standard_normal((24, 24))
    W = W / (2 * np.abs(W).max())
    f = ordered_schur(W, method=method)
    s = schur_split(f, 0.6)
    for k in (700, -900):  # |W| near 1e210 / 1e-272: squared norms over/underflow
        g = ordered_schur(np.ldexp(W, k), method=method)
        np.testing.assert_array_equal(g.T, np.ldexp(f.T, k))
        np.testing.assert_array_equal(g.Q, f.Q)
        np.testing.assert_array_equal(g.eigvals, np.ldexp(1.0, k) * f.eigvals)
        assert g.atol == np.ldexp(f.atol, k)
        assert g.residual == f.residual
        t = schur_split(g, 0.6)
        assert t.n_R == s.n_R
        assert t.sep == np.ldexp(s.sep, k)
    # Subnormal entries: no exact equivalence, but a backward-stable sorted form.
    V = W * 1e-305
    h = ordered_schur(V, method=method)
    res = np.linalg.norm((V - h.Q @ h.T @ h.Q.T) * 1e305) / np.linalg.norm(W)
    assert res <= C_BOUND * 24 * EPS
    assert h.residual <= C_BOUND * 24 * EPS
    assert h.orthogonality_error <= C_BOUND * 24 * EPS
    m = np.abs(h.eigvals)
    assert np.all(np.diff(m) <= h.rtol * m[:-1] + h.atol)
    # Finite W whose Schur form is not (|λ| = 3 · 1.7e308): refused, not inf.
    with pytest.raises(ValueError, match="T overflows float64"):
        ordered_schur(np.full((3, 3), 1.7e308), method=method)


def test_zero_and_rank_deficient(rng):
    f = ordered_schur(np.zeros((4, 4)))
    assert f.spectral_radius == 0.0
    assert f.residual == 0.0
    assert f.swaps == 0
    W = family("low_rank", rng, 40)
    assert_valid_form(ordered_schur(W), W)


def test_eigen_path_standardises_and_splits_blocks():
    # A 2x2 block with real eigenvalues, as Eigen's RealSchur may leave it.
    T = np.asfortranarray([[1.0, 2.0, 0.3], [0.5, 1.5, 0.1], [0.0, 0.0, 0.2]])
    Q = np.asfortranarray(np.eye(3))
    T0 = T.copy()
    _core.schur_standardize(T, Q)
    assert T[1, 0] == 0.0
    np.testing.assert_allclose(Q @ T @ Q.T, T0, atol=1e-15)
    np.testing.assert_allclose(
        np.sort(np.diag(T)), np.sort(np.linalg.eigvals(T0).real), atol=1e-14
    )


def test_not_quasi_triangular_is_rejected():
    T = np.asfortranarray(np.triu(np.ones((4, 4)), -1))
    Q = np.asfortranarray(np.eye(4))
    with pytest.raises(ValueError, match="quasi-upper-triangular"):
        _core.schur_reorder(T, Q, 1e-8, 0.0)


# ----------------------------------------------------------- 2x2 standardisation
def _check_standard(a, b, c, d):
    na, nb, nc, nd, cs, sn = _core.schur_standardize_2x2(a, b, c, d)
    R = np.array([[cs, sn], [-sn, cs]])
    A0 = np.array([[a, b], [c, d]])
    A1 = np.array([[na, nb], [nc, nd]])
    assert cs * cs + sn * sn == pytest.approx(1.0, abs=4 * EPS)
    np.testing.assert_allclose(R @ A0 @ R.T, A1, atol=8 * EPS * np.abs(A0).max())
    assert nc == 0.0 or (na == nd and nb * nc < 0)
    return A1


@pytest.mark.parametrize(
    "abcd",
    [
        (1.0, 2.0, -3.0, 4.0),  # complex
        (1.0, 2.0, 3.0, 4.0),  # real, distinct
        (1.0, 0.0, 3.0, 4.0),  # b == 0: swap
        (1.0, 5.0, 0.0, 4.0),  # already triangular
        (2.0, 1.0, -1.0, 2.0),  # already standard
        (1.0, 1e-20, -1e-20, 1.0 + 1e-18),  # nearly equal, tiny coupling
        (1e100, 3e100, -2e100, 0.5e100),
        (1e-100, 3e-100, -2e-100, 0.5e-100),
        (0.0, 1.0, 1.0, 0.0),  # real ±1
        (0.0, 1.0, -1.0, 0.0),  # rotation
    ],
)
def test_standardize_2x2(abcd):
    A1 = _check_standard(*abcd)
    ev0 = np.sort_complex(np.linalg.eigvals(np.array(abcd).reshape(2, 2)))
    ev1 = np.sort_complex(np.linalg.eigvals(A1))
    np.testing.assert_allclose(ev1, ev0, atol=1e-12 * np.abs(abcd).max(), rtol=1e-12)


def test_standardize_2x2_random(rng):
    for _ in range(2000):
        a, b, c, d = rng.standard_normal(4) * 10.0 ** rng.uniform(-5, 5, 4)
        _check_standard(a, b, c, d)


# ---------------------------------------------------------------- adjacent swaps
def _random_block(rng, size, scale=1.0):
    if size == 1:
        return np.array([[rng.uniform(-1, 1)]]) * scale
    a, im = rng.uniform(-1, 1), rng.uniform(0.1, 1)
    k = 10.0 ** rng.uniform(-2, 2)
    return np.array([[a, im * k], [-im / k, a]]) * scale


# 1x1/1x1 swaps always use a rotation, so only strategy 0 applies to them.
@pytest.mark.parametrize(
    ("n1", "n2", "strategy"),
    [(1, 1, 0)] + [(a, b, s) for a, b in ((1, 2), (2, 1), (2, 2)) for s in (0, 1, 2)],
)
def test_swap_adjacent(rng, n1, n2, strategy):
    for _ in range(50):
        pre, post = rng.integers(0, 3, 2)
        n = pre + n1 + n2 + post
        T = np.triu(rng.standard_normal((n, n)))
        T[pre : pre + n1, pre : pre + n1] = _random_block(rng, n1)
        T[pre + n1 : pre + n1 + n2, pre + n1 : pre + n1 + n2] = _random_block(rng, n2)
        T = np.asfortranarray(T)
        Q = np.asfortranarray(np.eye(n))
        T0 = T.copy()
        ev_up = np.linalg.eigvals(T0[pre : pre + n1, pre : pre + n1])
        ev_lo = np.linalg.eigvals(
            T0[pre + n1 : pre + n1 + n2, pre + n1 : pre + n1 + n2]
        )
        rep = _core.schur_swap(T, Q, int(pre), n1, n2, strategy)
        assert rep["weak"] <= rep["weak_threshold"]
        assert rep["strong"] <= rep["strong_threshold"]
        nt = np.linalg.norm(T0)
        assert np.linalg.norm(T0 - Q @ T @ Q.T) <= C_BOUND * n * EPS * nt
        assert np.linalg.norm(Q.T @ Q - np.eye(n)) <= C_BOUND * n * EPS
        assert np.all(np.tril(T, -2) == 0.0)
        # The lower block's eigenvalues moved up, the upper block's down.
        new_up = np.linalg.eigvals(T[pre : pre + n2, pre : pre + n2])
        new_lo = np.linalg.eigvals(
            T[pre + n2 : pre + n1 + n2, pre + n2 : pre + n1 + n2]
        )
        np.testing.assert_allclose(
            np.sort_complex(new_up), np.sort_complex(ev_lo), atol=1e-10
        )
        np.testing.assert_allclose(
            np.sort_complex(new_lo), np.sort_complex(ev_up), atol=1e-10
        )
        if n2 == 1:
            assert T[pre, pre] == T0[pre + n1, pre + n1]  # 1x1 eigenvalue kept exactly
        if n1 == 1:
            assert T[pre + n2, pre + n2] == T0[pre, pre]


# A 2x2/2x2 swap (nearly equal, strongly non-normal blocks) found by a seeded search:
# the Bai-Demmel swap fails the stability test in double and extended precision,
# also after refinement; the SVD-basis swap passes.
HARD_SWAP = np.array(
    [
        [
            0.5283193985677348,
            6.272289415110985e-07,
            857.2616084159446,
            794.7217637204108,
        ],
        [-162070.1539079659, 0.5283193985677348, 575.5688219957647, 1431.910534301502],
        [0.0, 0.0, 0.5283729993974677, 6.272925772431739e-07],
        [0.0, 0.0, -162086.59679222864, 0.5283729993974677],
    ]
)


def test_rejected_swap_raises_and_leaves_input_unchanged():
    T = np.asfortranarray(HARD_SWAP.copy())
    Q = np.asfortranarray(np.eye(4))
    with pytest.raises(_core.SwapRejected, match=r"rows 0\.\.1 .*rows 2\.\.3") as exc:
        _core.schur_swap(T, Q, 0, 2, 2, 1)
    assert isinstance(exc.value, ValueError)
    assert isinstance(exc.value, rnnschur.schur.SwapRejected)  # the public name
    assert "eigenvalues" in str(exc.value)
    np.testing.assert_array_equal(T, HARD_SWAP)
    np.testing.assert_array_equal(Q, np.eye(4))


def test_rejected_swap_is_retried_with_svd_basis():
    T = np.asfortranarray(HARD_SWAP.copy())
    Q = np.asfortranarray(np.eye(4))
    rep = _core.schur_swap(T, Q, 0, 2, 2, 0)
    assert rep["method"] == 4  # SVD basis
    assert np.linalg.norm(HARD_SWAP - Q @ T @ Q.T) <= 4 * 4 * EPS * np.linalg.norm(
        HARD_SWAP
    )


def test_reorder_propagates_rejection_and_uses_fallback():
    # Embed the hard pair in a larger form whose order requires that swap.
    n = 7
    T = np.zeros((n, n))
    T[:4, :4] = HARD_SWAP
    T[4:, 4:] = np.triu(np.full((3, 3), 0.01)) + np.diag([0.3, 0.2, 0.1])
    T[:4, 4:] = 0.5
    with pytest.raises(_core.SwapRejected):
        _core.schur_reorder(
            np.asfortranarray(T), np.asfortranarray(np.eye(n)), 1e-8, 0.0, strategy=1
        )
    Tw, Qw = np.asfortranarray(T.copy()), np.asfortranarray(np.eye(n))
    stats = _core.schur_reorder(Tw, Qw, 1e-8, 0.0)
    assert stats["swaps"] == 1
    assert stats["svd"] == 1
    assert np.linalg.norm(T - Qw @ Tw @ Qw.T) <= C_BOUND * n * EPS * np.linalg.norm(T)
    mod = np.abs(_core.schur_blocks(Tw)[2])
    assert np.all(np.diff(mod) <= 0)


def _adversarial_swaps(count, seed):
    """Swaps of nearly equal, strongly non-normal blocks: accepted and accurate, or
    rejected with T and Q untouched -- never a wrong factorisation."""
    rng = np.random.default_rng(seed)
    methods = {}
    for _ in range(count):
        n1, n2 = (int(x) for x in rng.integers(1, 3, 2))
        if n1 == n2 == 1:
            continue
        delta = 10.0 ** rng.uniform(-16, -1)
        lam_r, lam_i = rng.uniform(-1, 1), rng.uniform(0.1, 1)
        skew = 10.0 ** rng.uniform(-8, 8)

        def blk(size, d, lam_r=lam_r, lam_i=lam_i, skew=skew):
            if size == 1:
                return np.array([[lam_r * (1 + d)]])
            im = lam_i * (1 + d)
            return np.array(
                [[lam_r * (1 + d), im * skew], [-im / skew, lam_r * (1 + d)]]
            )

        m = n1 + n2
        T0 = np.zeros((m, m))
        T0[:n1, :n1] = blk(n1, 0.0)
        T0[n1:, n1:] = blk(n2, delta)
        T0[:n1, n1:] = rng.standard_normal((n1, n2)) * 10.0 ** rng.uniform(-4, 12)
        T = np.asfortranarray(T0.copy())
        Q = np.asfortranarray(np.eye(m))
        try:
            rep = _core.schur_swap(T, Q, 0, n1, n2)
        except _core.SwapRejected:
            np.testing.assert_array_equal(T, T0)
            np.testing.assert_array_equal(Q, np.eye(m))
            methods["rejected"] = methods.get("rejected", 0) + 1
            continue
        methods[rep["method"]] = methods.get(rep["method"], 0) + 1
        assert np.linalg.norm(T0 - Q @ T @ Q.T) <= C_BOUND * m * EPS * np.linalg.norm(
            T0
        )
        assert np.linalg.norm(Q.T @ Q - np.eye(m)) <= C_BOUND * m * EPS
        assert np.all(np.tril(T, -2) == 0.0)
        # The lower block's eigenvalues moved up (to the accuracy their conditioning
        # allows: compare the block traces, which are well conditioned).
        assert (
            abs(np.trace(T[:n2, :n2]) - np.trace(T0[n1:, n1:]))
            <= 1e-6 * np.abs(T0).max()
        )
    return methods


def test_adversarial_swaps():
    methods = _adversarial_swaps(400, seed=7)
    assert methods.get(1, 0) > 0  # the direct Bai-Demmel swap does most of them


@pytest.mark.slow
def test_adversarial_swaps_long():
    methods = _adversarial_swaps(20000, seed=11)
    assert methods.get("rejected", 0) == 0, methods


# ------------------------------------------------------------------ schur_split
def test_split_masks_match_reference(rng):
    W = rng.standard_normal((40, 40)) / math.sqrt(40)
    f = ordered_schur(W)
    for alpha in (0.3, 0.6, 0.9, 1.0):
        s = schur_split(f, alpha)
        ref = coupling_masks(f.T, s.n_R)
        for name in ("RR", "CR", "CC"):
            np.testing.assert_array_equal(getattr(s, name), ref[name])
        m = np.abs(f.eigvals)
        assert np.all(m[: s.n_R] >= alpha * f.spectral_radius)
        assert np.all(m[s.n_R :] < alpha * f.spectral_radius)
        assert s.n_R + s.n_C == 40
        union = s.RR | s.CR | s.CC
        np.testing.assert_array_equal(union, f.N != 0)
        assert not (s.RR & s.CR).any()
        assert not (s.CR & s.CC).any()


def test_split_never_cuts_a_2x2_block(rng):
    for _ in range(20):
        f = ordered_schur(rng.standard_normal((30, 30)))
        for alpha in np.linspace(0.05, 1.0, 20):
            s = schur_split(f, float(alpha))
            assert s.n_R == 30 or s.n_R in f.block_starts


def test_split_alpha_one_and_zero_radius():
    f = ordered_schur(np.diag([2.0, -2.0, 1.0]))
    assert schur_split(f, 1.0).n_R == 2
    z = schur_split(ordered_schur(np.zeros((3, 3))), 0.9)
    assert z.n_R == 3
    assert z.threshold == 0.0
    assert z.sep == math.inf
    assert not z.CR.any()
    assert not z.CC.any()


def test_sep_estimate_matches_exact(rng):
    for n in (4, 10, 24, 40):
        W = rng.standard_normal((n, n)) / math.sqrt(n)
        f = ordered_schur(W)
        for alpha in (0.5, 0.8):
            s = schur_split(f, alpha)
            if s.n_R in (0, n):
                continue
            exact = schur_split(f, alpha, sep_method="exact").sep
            assert exact > 0
            # An upper bound converging to sep_F; power iteration is not exact.
            assert s.sep >= exact * (1 - 1e-9)
            assert s.sep <= exact * 1.2
    # Non-normal coupling and near-equal eigenvalues across the cut: sep is small.
    T = np.array([[1.0, 100.0], [0.0, 0.999]])
    f = ordered_schur(T)
    s = schur_split(f, 0.9995, sep_method="exact")
    assert s.n_R == 1
    assert s.sep == pytest.approx(1e-3, rel=1e-6)
    assert schur_split(f, 0.9995).sep == pytest.approx(1e-3, rel=1e-2)


def test_sep_is_scale_equivariant(rng):
    W = rng.standard_normal((20, 20))
    ref = schur_split(ordered_schur(W), 0.7, sep_method="exact").sep
    for scale in (1e100, 1e-100):
        f = ordered_schur(W * scale)
        exact = schur_split(f, 0.7, sep_method="exact").sep
        assert exact == pytest.approx(ref * scale, rel=1e-6)
        est = schur_split(f, 0.7).sep
        assert exact * (1 - 1e-9) <= est <= exact * 1.2


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("W", "exc", "match"),
    [
        (np.ones((3, 3), dtype=np.int64), TypeError, "W must be a floating"),
        ([[1, 2], [3, 4]], TypeError, "W must be a floating"),
        (np.ones((2, 2), dtype=bool), TypeError, "W must be a floating"),
        (np.ones((2, 2), dtype=complex), TypeError, "W must be real"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "W must be a floating"),
        (np.ones(3), ValueError, "W must be 2-D"),
        (np.ones((2, 2, 2)), ValueError, "W must be 2-D"),
        (np.ones((2, 3)), ValueError, "W must be square"),
        (np.ones((0, 0)), ValueError, "W must not be empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "W must be finite"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError, "W must be finite"),
        (object(), TypeError, "W must be a"),
        (np.ma.masked_array(np.eye(2)), TypeError, "W must not be a masked array"),
    ],
)
def test_ordered_schur_bad_input(W, exc, match):
    with pytest.raises(exc, match=match):
        ordered_schur(W)


def test_ordered_schur_bad_options():
    W = np.eye(3)
    with pytest.raises(ValueError, match="rtol"):
        ordered_schur(W, rtol=-1.0)
    with pytest.raises(ValueError, match="rtol"):
        ordered_schur(W, rtol=math.nan)
    with pytest.raises(TypeError, match="rtol"):
        ordered_schur(W, rtol="1e-8")
    with pytest.raises(ValueError, match="atol"):
        ordered_schur(W, atol=math.inf)
    with pytest.raises(ValueError, match="method"):
        ordered_schur(W, method="qr")


def test_schur_split_bad_input():
    f = ordered_schur(np.eye(3))
    with pytest.raises(TypeError, match="form"):
        schur_split(np.eye(3))
    for bad in (0.0, -0.5, 1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match="alpha"):
            schur_split(f, bad)
    for bad in ("0.9", True, None):
        with pytest.raises(TypeError, match="alpha"):
            schur_split(f, bad)
    with pytest.raises(ValueError, match="sep_method"):
        schur_split(f, sep_method="svd")
    g = ordered_schur(np.diag(np.linspace(1, 0.1, 120)))
    with pytest.raises(ValueError, match="sep_method='exact'"):
        schur_split(g, 0.5, sep_method="exact")


def test_core_rejects_wrong_layout():
    T = np.eye(3)  # C-ordered is fine for a symmetric identity? force a non-F array
    Tc = np.ascontiguousarray(np.triu(np.ones((3, 3))))
    with pytest.raises(TypeError):
        _core.schur_reorder(Tc, np.asfortranarray(T), 1e-8, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        _core.schur_reorder(
            np.asfortranarray(np.eye(3)), np.asfortranarray(np.eye(2)), 1e-8, 0.0
        )
    with pytest.raises(ValueError, match="finite"):
        _core.schur_reorder(
            np.asfortranarray(np.full((2, 2), np.nan)),
            np.asfortranarray(np.eye(2)),
            1e-8,
            0.0,
        )


def test_public_exports():
    for name in (
        "ordered_schur",
        "schur_split",
        "ablate",
        "SchurForm",
        "SchurSplit",
        "Ablation",
    ):
        assert hasattr(rnnschur, name)


def test_threads_give_the_same_results(rng):
    # The compiled core releases the GIL; concurrent calls must not interfere.
    from concurrent.futures import ThreadPoolExecutor

    mats = [rng.standard_normal((n, n)) for n in (8, 40, 72, 160) * 3]
    seq = [ordered_schur(W) for W in mats]
    seq_sep = [schur_split(f, 0.5).sep for f in seq]
    with ThreadPoolExecutor(max_workers=4) as ex:
        par = list(ex.map(ordered_schur, mats))
        par_sep = list(ex.map(lambda f: schur_split(f, 0.5).sep, par))
    for a, b in zip(seq, par, strict=True):
        np.testing.assert_array_equal(a.T, b.T)
        np.testing.assert_array_equal(a.Q, b.Q)
    assert seq_sep == par_sep


def _overlap_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(128)
    n = 160
    G = rng.standard_normal((n, n)) / np.sqrt(n)
    return [
        G,
        G + 5.0 * np.eye(n),  # every modulus near 5: many ties
        np.triu(G, -1),  # already Hessenberg: the reduction is (almost) the identity
        np.roll(np.eye(n), 1, axis=0),  # cyclic permutation: exceptional shifts
        np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1),  # symmetric
        np.linalg.qr(G)[0],  # orthogonal: every modulus 1
        np.outer(G[0], G[1]),  # rank one: n - 1 zero eigenvalues
    ]


@pytest.mark.parametrize("W", _overlap_cases())
def test_own_qr_second_thread_changes_no_bit(W):
    # The second thread only takes over Q's updates, in their original order.
    T1, Q1, s1 = _core.schur_ordered_own(W, 1e-8, -1.0, threads=1)
    T2, Q2, s2 = _core.schur_ordered_own(W, 1e-8, -1.0, threads=2)
    np.testing.assert_array_equal(T2, T1)
    np.testing.assert_array_equal(Q2, Q1)
    assert s2.keys() == s1.keys()
    for key in s1:
        np.testing.assert_array_equal(s2[key], s1[key])
    Tu1, Qu1 = _core.schur_real_own(W)
    Tu2, Qu2 = _core.schur_real_own(W, threads=2)
    np.testing.assert_array_equal(Tu2, Tu1)
    np.testing.assert_array_equal(Qu2, Qu1)
    n = W.shape[0]
    assert np.linalg.norm(W - Q2 @ T2 @ Q2.T) <= C_BOUND * n * EPS * np.linalg.norm(W)
    assert np.linalg.norm(Q2.T @ Q2 - np.eye(n)) <= C_BOUND * n * EPS


def test_own_qr_threads_validated():
    with pytest.raises(ValueError, match="threads"):
        _core.schur_ordered_own(np.eye(3), 1e-8, -1.0, threads=0)
    with pytest.raises(ValueError, match="threads"):
        _core.schur_real_own(np.eye(3), threads=0)


@pytest.mark.parametrize(("env", "expected"), [("1", 1), ("2", 2), ("8", 2)])
def test_own_qr_takes_a_second_thread_when_blas_may(monkeypatch, env, expected):
    seen = []
    real = _core.schur_ordered_own

    def spy(W, rtol, atol, threads=1):
        seen.append(threads)
        return real(W, rtol, atol, threads=threads)

    monkeypatch.setattr(_core, "schur_ordered_own", spy)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", env)
    f = ordered_schur(np.diag(np.arange(1.0, 7.0)), method="own")
    assert seen == [expected]
    np.testing.assert_array_equal(np.sort(f.eigvals.real), np.arange(1.0, 7.0))
