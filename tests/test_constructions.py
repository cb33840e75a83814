from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from rnnschur.constructions import (
    CONSTRUCTIONS,
    CayleyMap,
    W_from_cayley,
    block_sizes_of,
    cayley_init,
    cayley_orthogonal,
    cayley_pullback,
    dense_default,
    dense_normal,
    dense_orthogonal,
    haar_orthogonal,
    init_params,
    realblock,
)

# ----------------------------------------------------------------------- helpers


def _starts(sizes):
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)


def free_A(M):
    """Free parameters of a skew matrix (strict upper triangle)."""
    return M[np.triu_indices(M.shape[0], 1)]


def A_from_free(v, n):
    A = np.zeros((n, n))
    A[np.triu_indices(n, 1)] = v
    return A - A.T


def free_D(M, sizes):
    """Free parameters of D: d for 1×1 blocks; a, b for 2×2 blocks."""
    out = []
    for i, s in zip(_starts(sizes), sizes, strict=True):
        out += [M[i, i]] if s == 1 else [M[i, i], M[i + 1, i]]
    return np.asarray(out)


def D_from_free(v, sizes):
    n = int(np.sum(sizes))
    D = np.zeros((n, n))
    k = 0
    for i, s in zip(_starts(sizes), sizes, strict=True):
        if s == 1:
            D[i, i] = v[k]
            k += 1
        else:
            a, b = v[k], v[k + 1]
            D[i, i] = D[i + 1, i + 1] = a
            D[i + 1, i], D[i, i + 1] = b, -b
            k += 2
    return D


def random_block_D(n, rng, scale=1.0, sizes=None):
    if sizes is None:
        sizes = []
        while sum(sizes) < n:
            sizes.append(1 if (n - sum(sizes) == 1 or rng.random() < 0.3) else 2)
    sizes = np.asarray(sizes, dtype=np.int64)
    v = scale * rng.standard_normal(len(free_D(np.zeros((n, n)), sizes)))
    return D_from_free(v, sizes), sizes


def loss_of_W(W, C):
    # A smooth, non-quadratic test loss with a known gradient.
    return float(np.sum(C * W) + 0.5 * np.sum(np.sin(W) ** 2))


def grad_of_W(W, C):
    return C + np.sin(W) * np.cos(W)


def fd_check(A, D, sizes, C, eps=1e-6):
    """Central finite differences in the free parameters vs cayley_pullback."""
    n = A.shape[0]
    W = W_from_cayley(A, D, block_sizes=sizes)
    dA, dD = cayley_pullback(A, D, grad_of_W(W, C), block_sizes=sizes)
    va, vd = free_A(A), free_D(D, sizes)

    def L(a, d):
        return loss_of_W(W_from_cayley(A_from_free(a, n), D_from_free(d, sizes)), C)

    fa = np.array(
        [
            (L(va + eps * e, vd) - L(va - eps * e, vd)) / (2 * eps)
            for e in np.eye(va.size)
        ]
    ).reshape(va.shape)
    fd = np.array(
        [
            (L(va, vd + eps * e) - L(va, vd - eps * e)) / (2 * eps)
            for e in np.eye(vd.size)
        ]
    )
    return (free_A(dA), fa), (free_D(dD, sizes), fd), (dA, dD)


# ----------------------------------------------------------------------- dense


@pytest.mark.parametrize("n", [1, 2, 7, 72])
def test_dense_default_range_and_moments(n):
    W = dense_default(n, np.random.default_rng(0))
    m = 1 / np.sqrt(n)
    assert W.shape == (n, n)
    assert W.dtype == np.float64
    assert np.all(np.abs(W) <= m)
    if n == 72:
        # U[-m, m] has variance m²/3
        assert W.var() == pytest.approx(m * m / 3, rel=0.1)


@pytest.mark.parametrize("n", [1, 2, 5, 72])
def test_dense_orthogonal_is_orthogonal(n):
    Q = dense_orthogonal(n, np.random.default_rng(1))
    np.testing.assert_allclose(Q.T @ Q, np.eye(n), atol=1e-13)


def test_haar_orthogonal_statistics():
    # Under Haar measure on O(3): E[Q_00] = 0, E[Q_00²] = 1/3, det = ±1 equally often.
    rng = np.random.default_rng(2)
    qs = np.array([haar_orthogonal(3, rng) for _ in range(4000)])
    q00 = qs[:, 0, 0]
    assert abs(q00.mean()) < 5 * np.sqrt(1 / 3 / 4000)
    assert q00.var() == pytest.approx(1 / 3, rel=0.08)
    det = np.linalg.det(qs)
    np.testing.assert_allclose(np.abs(det), 1, atol=1e-12)
    assert abs(np.mean(det > 0) - 0.5) < 0.05
    # without the sign fix, QR of a Gaussian gives diag(R) > 0 and a biased Q;
    # the first column must be uniform on the sphere: check E[|Q_00|] = 1/2 for n=3
    assert np.abs(q00).mean() == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_dense_normal_is_normal_with_block_spectrum(n):
    rng = np.random.default_rng(3)
    W = dense_normal(n, rng)
    np.testing.assert_allclose(W @ W.T, W.T @ W, atol=1e-12)
    lam = np.linalg.eigvals(W)
    # pairs a ± ib: exactly n//2 conjugate pairs (generic b != 0)
    assert np.sum(np.abs(lam.imag) > 1e-9) == 2 * (n // 2)


def test_dense_normal_block_entry_variance():
    # a, b ~ N(0, 1/6): E|λ|² = E[a² + b²] = 1/3 for each pair.
    rng = np.random.default_rng(4)
    mods = np.concatenate(
        [np.abs(np.linalg.eigvals(dense_normal(64, rng))) for _ in range(40)]
    )
    assert np.mean(mods**2) == pytest.approx(1 / 3, rel=0.05)


# ----------------------------------------------------------------------- realblock


def test_realblock_reproduces_spectrum_and_orders_blocks():
    rng = np.random.default_rng(5)
    W = rng.uniform(-1, 1, size=(9, 9))
    lam = np.linalg.eigvals(W)
    D, sizes = realblock(lam)
    assert sizes.sum() == 9
    assert np.array_equal(block_sizes_of(D), sizes)
    np.testing.assert_allclose(
        np.sort_complex(np.linalg.eigvals(D)), np.sort_complex(lam), atol=1e-12
    )
    reps = []
    for i, s in zip(_starts(sizes), sizes, strict=True):
        reps.append(D[i, i] + (1j * D[i + 1, i] if s == 2 else 0))
        if s == 2:
            assert D[i + 1, i] > 0
            assert D[i, i + 1] == -D[i + 1, i]
            assert D[i, i] == D[i + 1, i + 1]
    mods = np.abs(reps)
    assert np.all(np.diff(mods) <= 1e-15)


@pytest.mark.parametrize(
    "lam",
    [
        np.array([1.0, -2.0, 0.0]),
        np.array([1 + 1j, 1 - 1j]),
        np.array([0.5j, -0.5j, 0.3]),
        np.array([1.0 + 0j]),
    ],
)
def test_realblock_special_spectra(lam):
    D, sizes = realblock(lam)
    np.testing.assert_allclose(
        np.sort_complex(np.linalg.eigvals(D)), np.sort_complex(lam), atol=1e-15
    )
    assert np.sum(sizes == 2) == np.sum(lam.imag > 0)


@pytest.mark.parametrize(
    "lam",
    [np.array([1 + 1j]), np.array([1 + 1j, 2 - 1j]), np.array([]), np.array([np.nan])],
)
def test_realblock_rejects_non_real_spectra(lam):
    with pytest.raises(ValueError, match="eigvals"):
        realblock(lam)


def test_block_sizes_of_rejects_broken_forms():
    D, _ = random_block_D(5, np.random.default_rng(6), sizes=[2, 1, 2])
    bad = D.copy()
    bad[0, 1] *= 2  # not [[a, -b], [b, a]]
    with pytest.raises(ValueError, match="form"):
        block_sizes_of(bad)
    bad = D.copy()
    bad[0, 4] = 1.0  # outside the blocks
    with pytest.raises(ValueError, match="block"):
        block_sizes_of(bad)


# ----------------------------------------------------------------------- Cayley


@pytest.mark.parametrize("n", [1, 2, 6, 72])
def test_cayley_orthogonal_is_orthogonal_and_matches_formula(n):
    rng = np.random.default_rng(7)
    U = rng.uniform(-1, 1, (n, n))
    A = (U - U.T) / 2
    O = cayley_orthogonal(A)
    np.testing.assert_allclose(O.T @ O, np.eye(n), atol=1e-12)
    ref = (np.eye(n) - A) @ np.linalg.inv(np.eye(n) + A)
    np.testing.assert_allclose(O, ref, atol=1e-12)
    # the Cayley transform never has eigenvalue -1; det O = +1
    assert np.linalg.det(O) == pytest.approx(1.0)


def test_cayley_orthogonal_large_skew_entries():
    # adversarial: huge A drives O towards -I + low rank; still orthogonal
    rng = np.random.default_rng(8)
    U = rng.standard_normal((10, 10)) * 1e4
    O = cayley_orthogonal(U - U.T)
    np.testing.assert_allclose(O.T @ O, np.eye(10), atol=1e-9)


def test_W_from_cayley_spectrum_and_normality():
    rng = np.random.default_rng(9)
    A, D, sizes = cayley_init(12, rng)
    W = W_from_cayley(A, D)
    np.testing.assert_allclose(W @ W.T, W.T @ W, atol=1e-13)
    np.testing.assert_allclose(
        np.sort(np.abs(np.linalg.eigvals(W))),
        np.sort(np.abs(np.linalg.eigvals(D))),
        atol=1e-12,
    )
    O = cayley_orthogonal(A)
    np.testing.assert_allclose(W, O @ D @ O.T, atol=1e-14)
    np.testing.assert_array_equal(W, W_from_cayley(A, D, block_sizes=sizes))


def test_cayley_init_matches_paper():
    n = 72
    rng = np.random.default_rng(10)
    A, D, sizes = cayley_init(n, rng)
    m = 1 / np.sqrt(n)
    assert np.array_equal(A, -A.T)
    assert np.all(np.abs(A) <= m)
    np.testing.assert_array_equal(block_sizes_of(D), sizes)
    # the same stream redrawn: A from U, then D from eig(W̃)
    rng = np.random.default_rng(10)
    U = rng.uniform(-m, m, (n, n))
    Wt = rng.uniform(-m, m, (n, n))
    np.testing.assert_array_equal(A, (U - U.T) / 2)
    np.testing.assert_allclose(
        np.sort_complex(np.linalg.eigvals(D)),
        np.sort_complex(np.linalg.eigvals(Wt)),
        atol=1e-12,
    )


@pytest.mark.parametrize(
    ("n", "sizes", "a_scale", "d_scale"),
    [
        (1, [1], 0.0, 1.0),
        (2, [2], 0.5, 1.0),
        (2, [1, 1], 0.5, 1.0),
        (7, None, 0.3, 0.7),
        (8, [2, 2, 2, 2], 3.0, 2.0),  # large A: far from the identity
        (6, [1] * 6, 0.1, 1.0),  # only real eigenvalues
        (5, [2, 1, 2], 1e-3, 1e-3),  # tiny parameters
    ],
)
def test_cayley_pullback_matches_finite_differences(n, sizes, a_scale, d_scale):
    rng = np.random.default_rng(11)
    U = a_scale * rng.standard_normal((n, n))
    A = (U - U.T) / 2
    D, sizes = random_block_D(n, rng, d_scale, sizes)
    C = rng.standard_normal((n, n))
    (ga, fa), (gd, fd), (dA, dD) = fd_check(A, D, sizes, C)
    scale = max(np.abs(fa).max(initial=0), np.abs(fd).max(), 1e-3)
    np.testing.assert_allclose(ga, fa, atol=1e-7 * scale)
    np.testing.assert_allclose(gd, fd, atol=1e-7 * scale)
    # layout: dA skew with zero diagonal; dD in D's block pattern
    np.testing.assert_array_equal(dA, -dA.T)
    np.testing.assert_array_equal(
        (dD != 0) & (D_from_free(np.ones(len(gd)), sizes) == 0), False
    )


def test_cayley_pullback_d_block_b_zero_keeps_given_structure():
    # A 2×2 block with b = 0 exactly looks like two 1×1 blocks; with block_sizes given,
    # the gradient keeps the pair tied (∂L/∂a on both diagonal entries, ∂L/∂b).
    rng = np.random.default_rng(12)
    sizes = np.array([2, 1])
    D = D_from_free(np.array([0.4, 0.0, -0.2]), sizes)
    U = rng.standard_normal((3, 3)) * 0.2
    A = (U - U.T) / 2
    C = rng.standard_normal((3, 3))
    (ga, fa), (gd, fd), (_, dD) = fd_check(A, D, sizes, C)
    np.testing.assert_allclose(ga, fa, atol=1e-8)
    np.testing.assert_allclose(gd, fd, atol=1e-8)
    assert dD[0, 0] == dD[1, 1]
    assert dD[0, 1] == -dD[1, 0]


@given(
    n=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
    a_scale=st.floats(0.0, 2.0),
)
def test_cayley_pullback_directional_derivative_property(n, seed, a_scale):
    rng = np.random.default_rng(seed)
    U = a_scale * rng.standard_normal((n, n))
    A = (U - U.T) / 2
    D, sizes = random_block_D(n, rng)
    C = rng.standard_normal((n, n))
    W = W_from_cayley(A, D, block_sizes=sizes)
    dA, dD = cayley_pullback(A, D, grad_of_W(W, C), block_sizes=sizes)
    va, vd = free_A(A), free_D(D, sizes)
    ua, ud = rng.standard_normal(va.size), rng.standard_normal(vd.size)
    eps = 1e-6

    def L(t):
        return loss_of_W(
            W_from_cayley(A_from_free(va + t * ua, n), D_from_free(vd + t * ud, sizes)),
            C,
        )

    fd = (L(eps) - L(-eps)) / (2 * eps)
    an = free_A(dA) @ ua + free_D(dD, sizes) @ ud
    assert an == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_cayley_pullback_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    n = 10
    U = rng.standard_normal((n, n)) * 0.4
    A = (U - U.T) / 2
    D, sizes = random_block_D(n, rng)
    C = rng.standard_normal((n, n))
    va = torch.tensor(free_A(A), requires_grad=True)
    vd = torch.tensor(free_D(D, sizes), requires_grad=True)
    iu = torch.triu_indices(n, n, 1)
    At = torch.zeros(n, n, dtype=torch.float64)
    At = At.index_put((iu[0], iu[1]), va)
    At = At - At.T
    Dt = torch.zeros(n, n, dtype=torch.float64)
    k = 0
    for i, s in zip(_starts(sizes), sizes, strict=True):
        if s == 1:
            Dt = Dt.index_put((torch.tensor([i]), torch.tensor([i])), vd[k : k + 1])
            k += 1
        else:
            a, b = vd[k], vd[k + 1]
            rows = torch.tensor([i, i + 1, i + 1, i])
            cols = torch.tensor([i, i + 1, i, i + 1])
            Dt = Dt.index_put((rows, cols), torch.stack([a, a, b, -b]))
            k += 2
    eye = torch.eye(n, dtype=torch.float64)
    O = torch.linalg.solve((eye + At).T, (eye - At).T).T  # (I - A)(I + A)^{-1}
    W = O @ Dt @ O.T
    Ct = torch.tensor(C)
    loss = (Ct * W).sum() + 0.5 * (torch.sin(W) ** 2).sum()
    loss.backward()
    dA, dD = cayley_pullback(A, D, grad_of_W(W.detach().numpy(), C), block_sizes=sizes)
    np.testing.assert_allclose(free_A(dA), va.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        free_D(dD, sizes), vd.grad.numpy(), rtol=1e-10, atol=1e-12
    )


def _dense_cayley_reference(A, D, sizes, G):
    """The map and its pullback in plain dense SciPy/NumPy, no structure used."""
    n = A.shape[0]
    eye = np.eye(n)
    M = scipy.linalg.inv(eye + A)
    O = (eye - A) @ M
    W = O @ D @ O.T
    G_O = G @ O @ D.T + G.T @ O @ D
    E = -2.0 * (M.T @ G_O @ M.T)
    GD = O.T @ G @ O
    dD = np.zeros((n, n))
    for i, s in zip(_starts(sizes), sizes, strict=True):
        if s == 1:
            dD[i, i] = GD[i, i]
        else:
            dD[i, i] = dD[i + 1, i + 1] = GD[i, i] + GD[i + 1, i + 1]
            dD[i + 1, i] = GD[i + 1, i] - GD[i, i + 1]
            dD[i, i + 1] = -dD[i + 1, i]
    return M, O, W, E - E.T, dD


@pytest.mark.parametrize("n", [1, 2, 3, 64, 130])
@pytest.mark.parametrize("a_scale", [0.0, 1e-3, 1.0, 1e3])
def test_cayley_map_matches_a_dense_reference(n, a_scale):
    # The kernels use O = 2M - I, products with block-diagonal D in O(n²) and only
    # the needed entries of OᵀGO; the reference does none of that.
    rng = np.random.default_rng(17)
    U = a_scale * rng.standard_normal((n, n))
    A = (U - U.T) / 2
    D, sizes = realblock(np.linalg.eigvals(rng.standard_normal((n, n))))
    G = rng.standard_normal((n, n))
    cmap = CayleyMap(A, D, sizes)
    dA, dD = cmap.pullback(G)
    ref = _dense_cayley_reference(A, D, sizes, G)
    # both sides carry rounding errors of order n eps cond(I + A) relative to the
    # size of the quantity
    cond = np.linalg.cond(np.eye(n) + A)
    for name, got, want in zip(
        ("M", "O", "W", "dA", "dD"), (cmap.M, cmap.O, cmap.W, dA, dD), ref, strict=True
    ):
        atol = 1e-14 * n * cond * max(np.abs(want).max(), 1.0)
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=name)
    assert np.array_equal(dA, -dA.T)


def test_cayley_map_at_a_zero_is_exact():
    # O(0) = I exactly, so W = D bit for bit (no rounding anywhere on this path).
    D, sizes = random_block_D(7, np.random.default_rng(18), sizes=[2, 1, 2, 2])
    cmap = CayleyMap(np.zeros((7, 7)), D, sizes)
    assert np.array_equal(cmap.O, np.eye(7))
    assert np.array_equal(cmap.W, D)


def test_cayley_map_propagates_non_finite_values_without_raising():
    # A diverged optimizer step must surface as a non-finite W_hh / gradient (the
    # trainer turns that into TrainingDiverged), not as an exception in the kernel.
    A = np.zeros((3, 3))
    A[0, 1], A[1, 0] = np.nan, np.nan
    cmap = CayleyMap(A, np.eye(3), np.ones(3, np.int64))
    assert np.isnan(cmap.W).any()
    dA, _ = CayleyMap(np.zeros((3, 3)), np.eye(3), np.ones(3, np.int64)).pullback(
        np.full((3, 3), np.inf)
    )
    assert not np.isfinite(dA).all()


def test_sgd_on_structured_gradient_keeps_forms_exactly():
    rng = np.random.default_rng(14)
    A, D, sizes = cayley_init(9, rng)
    C = rng.standard_normal((9, 9))
    for _ in range(20):
        W = W_from_cayley(A, D, block_sizes=sizes)
        dA, dD = cayley_pullback(A, D, grad_of_W(W, C), block_sizes=sizes)
        A = A - 0.05 * dA
        D = D - 0.05 * dD
        assert np.array_equal(A, -A.T)
        assert np.array_equal(block_sizes_of(D), sizes)


@pytest.mark.parametrize(
    ("call", "exc", "word"),
    [
        (lambda A, D: W_from_cayley(A + np.eye(4), D), ValueError, "skew"),
        (lambda A, D: W_from_cayley(A[:3, :3], D), ValueError, "D"),
        (lambda A, D: W_from_cayley(A.astype(int), D), TypeError, "A"),
        (lambda A, D: W_from_cayley(A * np.nan, D), ValueError, "finite"),
        (
            lambda A, D: W_from_cayley(A, D + np.triu(np.ones((4, 4)), 2)),
            ValueError,
            "block",
        ),
        (
            lambda A, D: W_from_cayley(A, D, block_sizes=[3, 1]),
            ValueError,
            "block_sizes",
        ),
        (
            lambda A, D: W_from_cayley(A, D, block_sizes=[1, 1, 1, 1]),
            ValueError,
            "block",
        ),
        (lambda A, D: cayley_pullback(A, D, np.ones((3, 3))), ValueError, "dW"),
        (lambda A, D: cayley_pullback(A, D, np.full((4, 4), np.inf)), ValueError, "dW"),
        (lambda A, _D: cayley_orthogonal(A[0]), ValueError, "A"),
    ],
)
def test_cayley_bad_inputs(call, exc, word):
    rng = np.random.default_rng(15)
    U = rng.standard_normal((4, 4))
    D, _ = random_block_D(4, rng, sizes=[2, 2])
    with pytest.raises(exc, match=word):
        call(U - U.T, D)


# ----------------------------------------------------------------------- init_params


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_init_params_shapes_determinism_and_io_weights(construction):
    p = init_params(construction, 3, 10, 2, np.random.default_rng(16))
    q = init_params(construction, 3, 10, 2, np.random.default_rng(16))
    assert p["W_xh"].shape == (10, 3)
    assert p["W_hh"].shape == (10, 10)
    assert p["W_hy"].shape == (2, 10)
    for k in p:
        np.testing.assert_array_equal(p[k], q[k])
    m = 1 / np.sqrt(10)
    assert np.all(np.abs(p["W_xh"]) <= m)
    assert np.all(np.abs(p["W_hy"]) <= m)
    if construction in ("cayley", "cayley_free"):
        np.testing.assert_array_equal(
            p["W_hh"], W_from_cayley(p["A"], p["D"], block_sizes=p["D_blocks"])
        )
    else:
        assert "A" not in p
    if construction == "dense_orthogonal":
        np.testing.assert_allclose(p["W_hh"] @ p["W_hh"].T, np.eye(10), atol=1e-13)


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (("dense", 3, 10, 2), ValueError),
        ((None, 3, 10, 2), TypeError),
        (("cayley", 3, 0, 2), ValueError),
        (("cayley", 3, 10.0, 2), TypeError),
        (("cayley", 0, 10, 2), ValueError),
    ],
)
def test_init_params_bad_arguments(args, exc):
    with pytest.raises(exc):
        init_params(*args, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        init_params("cayley", 3, 10, 2, 0)
