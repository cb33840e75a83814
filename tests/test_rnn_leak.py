"""The leak h_t = (1 − leak) h_{t−1} + leak tanh(a_t) in rollout / loss_and_grad:
NumPy reference, central finite differences, torch autograd, K stacks, every SIMD
level, float32, hypothesis over leak in (0, 1], and bad leak values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnschur import _core, loss_and_grad, rollout
from rnnschur.rnn import loss_and_grad_unchecked

from . import naive_rnn

LEVELS = ["baseline", "avx2", "avx512"]
SUPPORTED = [lv for lv in LEVELS if lv in _core.simd_levels()]
PARAMS = ("W_xh", "W_hh", "W_hy", "b_h", "b_y")


@pytest.fixture(params=LEVELS)
def simd(request):
    """Runs a test once per SIMD level of the kernels (skips levels the CPU lacks)."""
    if request.param not in _core.simd_levels():
        pytest.skip(f"this CPU (or build) does not support {request.param}")
    before = _core.simd_level()
    assert _core.set_simd_level(request.param) == request.param
    yield request.param
    _core.set_simd_level(before)


@pytest.fixture(autouse=True)
def _restore_simd_level():
    before = _core.simd_level()
    yield
    _core.set_simd_level(before)


def problem(rng, T, B, Nx, Nh, Ny, K=None, dtype=np.float64, scale=1.0):
    shape = (Nh, Nh) if K is None else (K, Nh, Nh)
    p = {
        "W_xh": rng.standard_normal((Nh, Nx)) * scale,
        "W_hh": rng.standard_normal(shape) * scale / np.sqrt(Nh),
        "W_hy": rng.standard_normal((Ny, Nh)),
        "b_h": rng.standard_normal(Nh) * 0.3,
        "b_y": rng.standard_normal(Ny) * 0.3,
        "x": rng.standard_normal((T, B, Nx)),
        "y": rng.standard_normal((T, B, Ny)),
    }
    return {k: v.astype(dtype) for k, v in p.items()}


def weights(p):
    return p["W_xh"], p["W_hh"], p["W_hy"], p["x"]


# (Nh, Ny): with the float32 AVX-512 lanes, 19 + 4 and 72 + 8 fuse the readout
# into the step's GEMM, 16 + 3 does not; 130 >= 128 takes BPTT's unchunked path.
SHAPES = [(19, 4), (16, 3), (72, 8), (130, 5)]


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("Nh", "Ny"), SHAPES)
@pytest.mark.parametrize("h0_kind", [None, "batch", "shared"])
def test_rollout_matches_reference(rng, dtype, Nh, Ny, h0_kind):
    p = problem(rng, T=11, B=7, Nx=3, Nh=Nh, Ny=Ny, dtype=dtype)
    h0 = {
        None: None,
        "batch": rng.uniform(-1, 1, (7, Nh)),
        "shared": rng.uniform(-1, 1, Nh),
    }[h0_kind]
    h0 = None if h0 is None else h0.astype(dtype)
    for leak in (0.05, 0.5, 0.93):
        y, h = rollout(
            *weights(p),
            b_h=p["b_h"],
            b_y=p["b_y"],
            h0=h0,
            leak=leak,
            return_hidden=True,
        )
        y_ref, h_ref = naive_rnn.rollout(*weights(p), p["b_h"], p["b_y"], h0, leak=leak)
        assert y.dtype == dtype
        assert h.dtype == dtype
        tol = 2e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(h, h_ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol * np.abs(y_ref).max())


@pytest.mark.usefixtures("simd")
def test_small_leak_keeps_the_initial_state(rng):
    """A state that barely moves: h_T = (1 - leak)^T h0 + O(leak), no cancellation."""
    p = problem(rng, T=30, B=4, Nx=2, Nh=9, Ny=2)
    h0 = rng.uniform(-1, 1, 9)
    _, h = rollout(*weights(p), h0=h0, leak=1e-9, return_hidden=True)
    _, h_ref = naive_rnn.rollout(*weights(p), h0=h0, leak=1e-9)
    np.testing.assert_allclose(h, h_ref, rtol=1e-14, atol=1e-17)
    assert np.abs(h[-1] - h0).max() < 1e-7


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_stack_equals_separate_calls(rng, dtype, n_threads):
    # > 1.5 MFLOP, so that the work is really split between threads
    p = problem(rng, T=30, B=16, Nx=2, Nh=37, Ny=3, K=5, dtype=dtype)
    kw = {"b_h": p["b_h"], "b_y": p["b_y"], "n_threads": n_threads, "leak": 0.37}
    h0 = rng.uniform(-1, 1, (16, 37)).astype(dtype)
    y, h = rollout(*weights(p), h0=h0, return_hidden=True, **kw)
    assert y.shape == (5, 30, 16, 3)
    for k in range(5):
        yk, hk = rollout(
            p["W_xh"], p["W_hh"][k], p["W_hy"], p["x"], h0=h0, return_hidden=True, **kw
        )
        np.testing.assert_array_equal(y[k], yk)
        np.testing.assert_array_equal(h[k], hk)


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leak_one_is_the_leak_free_model(rng, dtype):
    """leak = 1 in any spelling gives the results of a call without the keyword,
    bit for bit (the leak-free kernels), for the forward pass and the gradient."""
    p = problem(rng, T=12, B=9, Nx=3, Nh=21, Ny=4, K=2, dtype=dtype)
    base = rollout(*weights(p), b_h=p["b_h"], b_y=p["b_y"])
    W1 = p["W_hh"][0]
    lg = loss_and_grad(p["W_xh"], W1, p["W_hy"], p["x"], p["y"], b_h=p["b_h"])
    for one in (1.0, 1, np.float32(1), np.float64(1), np.int64(1)):
        out = rollout(*weights(p), b_h=p["b_h"], b_y=p["b_y"], leak=one)
        np.testing.assert_array_equal(out, base)
        loss, g = loss_and_grad(
            p["W_xh"], W1, p["W_hy"], p["x"], p["y"], b_h=p["b_h"], leak=one
        )
        assert loss == lg[0]
        for name in g:
            np.testing.assert_array_equal(g[name], lg[1][name])


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("Nh", "Ny"), SHAPES)
@pytest.mark.parametrize("masked", [False, True])
def test_loss_and_grad_matches_reference(rng, dtype, Nh, Ny, masked):
    p = problem(rng, T=13, B=6, Nx=3, Nh=Nh, Ny=Ny, dtype=dtype)
    mask = rng.random((13, 6, Ny)) < 0.6 if masked else None
    for leak in (0.02, 0.4, 0.97):
        loss, g = loss_and_grad(
            *weights(p), p["y"], mask, b_h=p["b_h"], b_y=p["b_y"], leak=leak
        )
        loss_ref, g_ref = naive_rnn.loss_and_grad(
            *weights(p), p["y"], mask, p["b_h"], p["b_y"], leak=leak
        )
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        assert loss == pytest.approx(loss_ref, rel=rtol)
        assert set(g) == set(PARAMS)
        for name, ref in g_ref.items():
            assert g[name].dtype == dtype
            np.testing.assert_allclose(
                g[name], ref, rtol=0, atol=10 * rtol * np.abs(ref).max(), err_msg=name
            )


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize(
    ("T", "B", "n_threads"),
    [(5, 70, 1), (13, 20, 1), (40, 9, 2), (11, 67, 3)],
)
def test_gradient_chunk_edges(rng, T, B, n_threads):
    """The chunked weight-gradient reduction and its dL/da ring with the leak's
    extra dL/dh ping-pong, on uneven thread parts (see test_rnn.py)."""
    p = problem(rng, T=T, B=B, Nx=4, Nh=21, Ny=5)
    kw = {"b_h": p["b_h"], "b_y": p["b_y"]}
    loss, g = loss_and_grad(*weights(p), p["y"], n_threads=n_threads, leak=0.3, **kw)
    loss_ref, g_ref = naive_rnn.loss_and_grad(*weights(p), p["y"], leak=0.3, **kw)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    for name, r in g_ref.items():
        np.testing.assert_allclose(g[name], r, rtol=1e-11, atol=1e-13, err_msg=name)


def _fd_errors(fun, params, h=1e-6):
    """Relative error (2-norm) of fun's gradient against central differences."""
    _, grads = fun(params)
    errs = {}
    for name in PARAMS:
        fd = np.zeros_like(params[name])
        it = np.nditer(params[name], flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            orig = params[name][i]
            params[name][i] = orig + h
            lp, _ = fun(params)
            params[name][i] = orig - h
            lm, _ = fun(params)
            params[name][i] = orig
            fd[i] = (lp - lm) / (2 * h)
        errs[name] = float(np.linalg.norm(grads[name] - fd) / np.linalg.norm(fd))
    return errs


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("leak", [0.1, 0.55, 0.9])
@pytest.mark.parametrize("masked", [False, True])
def test_gradient_finite_differences(rng, leak, masked):
    p = problem(rng, T=7, B=4, Nx=3, Nh=7, Ny=2, scale=1.2)
    mask = rng.random((7, 4, 2)) < 0.5 if masked else None

    def fun(q):
        return loss_and_grad(
            *weights(q), p["y"], mask, b_h=q["b_h"], b_y=q["b_y"], leak=leak
        )

    errs = _fd_errors(fun, p)
    assert max(errs.values()) <= 1e-6, errs


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    T, B, Nh, leak = 10, 8, 16, 0.25
    p = problem(rng, T=T, B=B, Nx=3, Nh=Nh, Ny=3, dtype=dtype)
    mask = rng.random((T, B, 3)) < 0.7
    h0 = rng.uniform(-1, 1, (B, Nh)).astype(dtype)
    loss, g = loss_and_grad(
        *weights(p), p["y"], mask, b_h=p["b_h"], b_y=p["b_y"], leak=leak
    )
    y_fwd = rollout(*weights(p), b_h=p["b_h"], b_y=p["b_y"], h0=h0, leak=leak)
    tp = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for k, v in p.items()
    }

    def torch_rollout(h):
        outs = []
        for t in range(T):
            u = torch.tanh(tp["x"][t] @ tp["W_xh"].T + h @ tp["W_hh"].T + tp["b_h"])
            h = (1 - leak) * h + leak * u
            outs.append(h @ tp["W_hy"].T + tp["b_y"])
        return torch.stack(outs)

    yhat = torch_rollout(torch.zeros(B, Nh, dtype=torch.float64))
    m = torch.tensor(mask, dtype=torch.float64)
    tl = (((yhat - tp["y"]) ** 2) * m).sum() / m.sum()
    tl.backward()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(tl.item(), rel=rtol)
    for name in PARAMS:
        ref = tp[name].grad.numpy()
        np.testing.assert_allclose(
            g[name], ref, rtol=0, atol=10 * rtol * np.abs(ref).max(), err_msg=name
        )
    with torch.no_grad():
        y_ref = torch_rollout(torch.tensor(h0, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(y_fwd, y_ref, rtol=0, atol=rtol * np.abs(y_ref).max())


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("leak", [0.01, 0.2, 0.8])
def test_float32_accuracy(rng, leak):
    """float32 rollout and gradient of a longer problem against the float64
    reference: the leak's slow state and long memory keep float32's error small."""
    p64 = problem(rng, T=60, B=16, Nx=4, Nh=48, Ny=3)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    ref32 = {k: v.astype(np.float64) for k, v in p32.items()}  # the rounded problem
    y = rollout(*weights(p32), b_h=p32["b_h"], b_y=p32["b_y"], leak=leak)
    y_ref, _ = naive_rnn.rollout(
        *weights(ref32), ref32["b_h"], ref32["b_y"], leak=float(np.float32(leak))
    )
    assert np.abs(y - y_ref).max() <= 2e-5 * np.abs(y_ref).max()
    loss, g = loss_and_grad(
        *weights(p32), p32["y"], b_h=p32["b_h"], b_y=p32["b_y"], leak=leak
    )
    loss_ref, g_ref = naive_rnn.loss_and_grad(
        *weights(ref32),
        ref32["y"],
        None,
        ref32["b_h"],
        ref32["b_y"],
        leak=float(np.float32(leak)),
    )
    assert loss == pytest.approx(loss_ref, rel=2e-6)
    for name, ref in g_ref.items():
        err = np.abs(g[name] - ref).max() / np.abs(ref).max()
        assert err <= 2e-5, (name, err)


@st.composite
def leaky_problems(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    Nx, Nh, Ny = (
        draw(st.integers(1, 6)),
        draw(st.integers(1, 40)),
        draw(st.integers(1, 9)),
    )
    K = draw(st.none() | st.integers(1, 3))
    leak = draw(
        st.floats(0.0, 1.0, exclude_min=True)
        | st.sampled_from([1.0, np.nextafter(1.0, 0.0), 1e-300, 5e-324])
    )
    h0 = draw(st.booleans())
    n_threads = draw(st.sampled_from([None, 1, 2]))
    level = draw(st.sampled_from(SUPPORTED))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = problem(
        rng, T, B, Nx, Nh, Ny, K=K, dtype=dtype, scale=draw(st.sampled_from([0.3, 2.0]))
    )
    p["h0"] = rng.uniform(-1, 1, (B, Nh)).astype(dtype) if h0 else None
    p["mask"] = rng.random((T, B, Ny)) < 0.7
    p["mask"][0, 0, 0] = True  # never an empty mean
    return p, dtype, K, leak, n_threads, level


def _kernel_tanh(a):
    """The compiled kernels' vector tanh, elementwise on an array of any shape."""
    return _core._tanh(np.ascontiguousarray(a).ravel()).reshape(a.shape)


@given(leaky_problems())
def test_any_leak_any_shape(prob):
    p, dtype, K, leak, n_threads, level = prob
    _core.set_simd_level(level)
    kw = {"b_h": p["b_h"], "b_y": p["b_y"], "n_threads": n_threads, "leak": leak}
    if dtype == np.float32 and np.float32(leak) == 0:
        with pytest.raises(ValueError, match=r"leak = .* rounds to 0 in float32"):
            rollout(*weights(p), **kw)
        return
    a = float(dtype(leak))  # the leak the kernels run
    y, h = rollout(*weights(p), h0=p["h0"], return_hidden=True, **kw)
    stack = [p["W_hh"]] if K is None else list(p["W_hh"])
    y, h = (y[None], h[None]) if K is None else (y, h)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for k, W_hh in enumerate(stack):
        y_ref, h_ref = naive_rnn.rollout(
            p["W_xh"], W_hh, p["W_hy"], p["x"], p["b_h"], p["b_y"], p["h0"], leak=a
        )
        np.testing.assert_allclose(h[k], h_ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(y[k], y_ref, rtol=tol, atol=10 * tol)
    W1 = stack[0]
    args = (p["W_xh"], W1, p["W_hy"], p["x"], p["y"], p["mask"])
    loss, g = loss_and_grad(*args, **kw)
    loss_ref, g_ref = naive_rnn.loss_and_grad(*args, p["b_h"], p["b_y"], leak=a)
    # float32: allow a few times the error of the same algorithm run plainly in
    # float32 with the kernels' tanh (saturated units lose digits of 1 - u^2 in
    # any float32 implementation; see test_rnn_properties.py)
    loss32, g32 = loss_ref, g_ref
    if dtype == np.float32:
        loss32, g32 = naive_rnn.loss_and_grad(
            *args, p["b_h"], p["b_y"], dtype=np.float32, tanh=_kernel_tanh, leak=a
        )
    rtol = 2e-5 if dtype == np.float32 else 1e-11
    assert abs(loss - loss_ref) <= rtol * max(loss_ref, 1e-3) + 4 * abs(
        loss32 - loss_ref
    )
    for name, ref in g_ref.items():
        err = float(np.abs(g[name] - ref).max())
        err32 = float(np.abs(g32[name] - ref).max())
        bound = 10 * rtol * max(np.abs(ref).max(), 1e-3) + 4 * err32
        assert err <= bound, (name, err, bound)


BAD_LEAKS = [
    (0.0, ValueError, r"leak must be a finite number in \(0, 1\], got 0.0"),
    (-0.5, ValueError, "leak must be a finite number in"),
    (1.0000001, ValueError, "leak must be a finite number in"),
    (2, ValueError, "leak must be a finite number in"),
    (float("nan"), ValueError, "leak must be a finite number in"),
    (float("inf"), ValueError, "leak must be a finite number in"),
    (-float("inf"), ValueError, "leak must be a finite number in"),
    (np.float32(np.nan), ValueError, "leak must be a finite number in"),
    (True, TypeError, "leak must be a real number in .*, got bool"),
    (np.True_, TypeError, "leak must be a real number in .*, got bool"),
    ("0.5", TypeError, "leak must be a real number in .*, got str"),
    (None, TypeError, "leak must be a real number in .*, got NoneType"),
    (0.5j, TypeError, "leak must be a real number in .*, got complex"),
    (np.array([0.5]), TypeError, "leak must be a real number in .*, got ndarray"),
]


@pytest.mark.parametrize(("leak", "exc", "match"), BAD_LEAKS)
def test_bad_leak(rng, leak, exc, match):
    p = problem(rng, T=3, B=2, Nx=2, Nh=4, Ny=2)
    with pytest.raises(exc, match=match):
        rollout(*weights(p), leak=leak)
    with pytest.raises(exc, match=match):
        loss_and_grad(*weights(p), p["y"], leak=leak)


def test_leak_that_rounds_to_zero_in_float32(rng):
    p32 = problem(rng, T=3, B=2, Nx=2, Nh=4, Ny=2, dtype=np.float32)
    with pytest.raises(ValueError, match=r"leak = 1e-50 rounds to 0 in float32"):
        rollout(*weights(p32), leak=1e-50)
    with pytest.raises(ValueError, match=r"leak = 1e-50 rounds to 0 in float32"):
        loss_and_grad(*weights(p32), p32["y"], leak=1e-50)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    y = rollout(*weights(p64), leak=1e-50)
    assert np.abs(y).max() < 1e-45  # h0 = 0, no biases: h_t = O(leak)


def test_core_entry_points_check_the_leak(rng):
    """The private entry points (no Python validation) refuse a bad leak too."""
    p = problem(rng, T=3, B=2, Nx=2, Nh=4, Ny=2)
    a = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    for bad in (0.0, -1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"leak must be in \(0, 1\]"):
            _core.rollout(*a, None, None, None, False, 1, leak=bad)
        with pytest.raises(ValueError, match=r"leak must be in \(0, 1\]"):
            loss_and_grad_unchecked(*a, p["y"], leak=bad)
    loss, _ = loss_and_grad_unchecked(*a, p["y"], leak=0.5)
    assert loss == pytest.approx(loss_and_grad(*a, p["y"], leak=0.5)[0], rel=1e-15)
