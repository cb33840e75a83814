"""rollout / loss_and_grad against a NumPy reference, finite differences, torch."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import rnnschur
from rnnschur import _core, loss_and_grad, rollout

from . import naive_rnn

LEVELS = ["baseline", "avx2", "avx512"]


@pytest.fixture(params=LEVELS)
def simd(request):
    """Runs a test once per SIMD level of the kernels (skips levels the CPU lacks)."""
    if request.param not in _core.simd_levels():
        pytest.skip(f"this CPU (or build) does not support {request.param}")
    before = _core.simd_level()
    got = _core.set_simd_level(request.param)
    assert got == request.param
    yield got
    _core.set_simd_level(before)


def make_problem(rng, T=7, B=5, Nx=3, Nh=6, Ny=2, K=None, dtype=np.float64, scale=1.0):
    W_xh = rng.standard_normal((Nh, Nx)) * scale
    shape = (Nh, Nh) if K is None else (K, Nh, Nh)
    W_hh = rng.standard_normal(shape) * (scale / np.sqrt(max(Nh, 1)))
    W_hy = rng.standard_normal((Ny, Nh)) * scale
    x = rng.standard_normal((T, B, Nx))
    b_h = rng.standard_normal(Nh) * 0.3
    b_y = rng.standard_normal(Ny) * 0.3
    return {
        k: v.astype(dtype)
        for k, v in {
            "W_xh": W_xh,
            "W_hh": W_hh,
            "W_hy": W_hy,
            "x": x,
            "b_h": b_h,
            "b_y": b_y,
        }.items()
    }


def tol(dtype):
    return (
        {"rtol": 2e-5, "atol": 2e-5}
        if dtype == np.float32
        else {
            "rtol": 1e-12,
            "atol": 1e-12,
        }
    )


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("h0_kind", [None, "batch", "shared"])
def test_rollout_matches_reference(rng, dtype, biases, h0_kind):
    p = make_problem(rng, T=9, B=7, Nx=3, Nh=19, Ny=4, dtype=dtype)
    h0 = None
    if h0_kind == "batch":
        h0 = rng.uniform(-1, 1, (7, 19)).astype(dtype)
    elif h0_kind == "shared":
        h0 = rng.uniform(-1, 1, 19).astype(dtype)
    kw = {"b_h": p["b_h"], "b_y": p["b_y"]} if biases else {}
    y, h = rollout(
        p["W_xh"], p["W_hh"], p["W_hy"], p["x"], h0=h0, return_hidden=True, **kw
    )
    y_ref, h_ref = naive_rnn.rollout(
        p["W_xh"], p["W_hh"], p["W_hy"], p["x"], h0=h0, **kw
    )
    assert y.dtype == dtype
    assert h.dtype == dtype
    assert y.shape == (9, 7, 4)
    assert h.shape == (9, 7, 19)
    np.testing.assert_allclose(h, h_ref, **tol(dtype))
    np.testing.assert_allclose(y, y_ref, **tol(dtype))
    y_only = rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], h0=h0, **kw)
    np.testing.assert_array_equal(y_only, y)


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_stack_equals_separate_calls(rng, dtype, n_threads):
    # large enough (> 1.5 MFLOP) that the work is really split between threads
    p = make_problem(rng, T=30, B=16, Nx=2, Nh=37, Ny=3, K=5, dtype=dtype)
    kw = {"b_h": p["b_h"], "b_y": p["b_y"], "n_threads": n_threads}
    y, h = rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], return_hidden=True, **kw)
    assert y.shape == (5, 30, 16, 3)
    assert h.shape == (5, 30, 16, 37)
    for k in range(5):
        yk, hk = rollout(
            p["W_xh"], p["W_hh"][k], p["W_hy"], p["x"], return_hidden=True, **kw
        )
        np.testing.assert_array_equal(y[k], yk)
        np.testing.assert_array_equal(h[k], hk)


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_loss_and_grad_matches_reference(rng, dtype, biases, masked):
    p = make_problem(rng, T=8, B=9, Nx=3, Nh=21, Ny=3, dtype=dtype)
    y = rng.standard_normal((8, 9, 3)).astype(dtype)
    mask = rng.random((8, 1, 3)) < 0.6 if masked else None
    kw = {"b_h": p["b_h"], "b_y": p["b_y"]} if biases else {}
    loss, g = loss_and_grad(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, mask, **kw)
    loss_ref, g_ref = naive_rnn.loss_and_grad(
        p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, mask, **kw
    )
    assert isinstance(loss, float)
    assert set(g) == set(g_ref)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(loss_ref, rel=rtol)
    for name, ref in g_ref.items():
        assert g[name].dtype == dtype
        assert g[name].shape == ref.shape
        scale = np.abs(ref).max()
        np.testing.assert_allclose(
            g[name], ref, rtol=0, atol=rtol * 10 * scale, err_msg=name
        )


def _fd_check(fun, params, names, h=1e-6):
    _, grads = fun(params)
    worst = 0.0
    for name in names:
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
        err = np.linalg.norm(grads[name] - fd) / np.linalg.norm(fd)
        worst = max(worst, err)
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
    return worst


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("masked", [False, True])
def test_gradient_finite_differences(rng, masked):
    p = make_problem(rng, T=6, B=4, Nx=3, Nh=7, Ny=2, scale=1.2)
    y = rng.standard_normal((6, 4, 2))
    mask = rng.random((6, 4, 2)) < 0.5 if masked else None

    def fun(q):
        return loss_and_grad(
            q["W_xh"], q["W_hh"], q["W_hy"], q["x"], y, mask, b_h=q["b_h"], b_y=q["b_y"]
        )

    _fd_check(fun, p, ["W_xh", "W_hh", "W_hy", "b_h", "b_y"])


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    p = make_problem(rng, T=10, B=8, Nx=3, Nh=16, Ny=3, dtype=dtype)
    y = rng.standard_normal((10, 8, 3)).astype(dtype)
    mask = rng.random((10, 8, 3)) < 0.7
    loss, g = loss_and_grad(
        p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, mask, b_h=p["b_h"], b_y=p["b_y"]
    )
    tp = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for k, v in p.items()
    }
    h = torch.zeros(8, 16, dtype=torch.float64)
    outs = []
    for t in range(10):
        h = torch.tanh(tp["x"][t] @ tp["W_xh"].T + h @ tp["W_hh"].T + tp["b_h"])
        outs.append(h @ tp["W_hy"].T + tp["b_y"])
    yhat = torch.stack(outs)
    m = torch.tensor(mask, dtype=torch.float64)
    tl = (((yhat - torch.tensor(y, dtype=torch.float64)) ** 2) * m).sum() / m.sum()
    tl.backward()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(tl.item(), rel=rtol)
    for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        ref = tp[name].grad.numpy()
        np.testing.assert_allclose(
            g[name], ref, rtol=0, atol=10 * rtol * np.abs(ref).max(), err_msg=name
        )


def test_mixed_dtypes_promote_to_float64(rng):
    p = make_problem(rng, dtype=np.float32)
    x64 = p["x"].astype(np.float64)
    y = rollout(p["W_xh"], p["W_hh"], p["W_hy"], x64)
    assert y.dtype == np.float64
    ref, _ = naive_rnn.rollout(p["W_xh"], p["W_hh"], p["W_hy"], x64)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    target = np.zeros((7, 5, 2))
    _loss, g = loss_and_grad(p["W_xh"], p["W_hh"], p["W_hy"], x64, target, b_h=p["b_h"])
    # work in float64, gradients in each parameter's own dtype
    assert all(v.dtype == np.float32 for v in g.values())
    _, g_ref = naive_rnn.loss_and_grad(
        p["W_xh"], p["W_hh"], p["W_hy"], x64, target, b_h=p["b_h"]
    )
    for name, ref in g_ref.items():
        np.testing.assert_allclose(g[name], ref, rtol=1e-6, atol=1e-7)


def test_noncontiguous_and_readonly_inputs(rng):
    p = make_problem(rng, T=5, B=4, Nx=3, Nh=6, Ny=2)
    big = rng.standard_normal((5, 8, 6))
    x = big[:, ::2, ::2]  # strided view (5, 4, 3)
    W_hh = np.asfortranarray(p["W_hh"])
    W_xh = p["W_xh"].copy()
    W_xh.flags.writeable = False
    y = rollout(W_xh, W_hh, p["W_hy"], x)
    ref, _ = naive_rnn.rollout(W_xh, W_hh, p["W_hy"], x)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    # lists are arrays too
    y2 = rollout(W_xh.tolist(), W_hh.tolist(), p["W_hy"].tolist(), x.tolist())
    np.testing.assert_allclose(y2, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_time_or_batch(rng, dtype):
    p = make_problem(rng, dtype=dtype, K=3)
    for T, B in [(0, 5), (7, 0), (0, 0)]:
        x = np.zeros((T, B, 3), dtype=dtype)
        y, h = rollout(p["W_xh"], p["W_hh"], p["W_hy"], x, return_hidden=True)
        assert y.shape == (3, T, B, 2)
        assert h.shape == (3, T, B, 6)
        y1 = rollout(p["W_xh"], p["W_hh"][0], p["W_hy"], x)
        assert y1.shape == (T, B, 2)
        assert y1.dtype == dtype
        with pytest.raises(ValueError, match="no entries"):
            loss_and_grad(p["W_xh"], p["W_hh"][0], p["W_hy"], x, np.zeros((T, B, 2)))


@pytest.mark.usefixtures("simd")
def test_threads_give_same_result(rng):
    p = make_problem(rng, T=30, B=65, Nx=3, Nh=43, Ny=3)
    y = rng.standard_normal((30, 65, 3))
    ref = rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], n_threads=1)
    lref, gref = loss_and_grad(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, n_threads=1)
    for n in (2, 3, 8, 64):
        out = rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], n_threads=n)
        np.testing.assert_array_equal(out, ref)
        loss, g = loss_and_grad(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, n_threads=n)
        assert loss == pytest.approx(lref, rel=1e-13)
        for name in gref:
            np.testing.assert_allclose(g[name], gref[name], rtol=1e-12, atol=1e-14)


def test_concurrent_python_threads(rng):
    probs = []
    for i in range(6):
        dt = np.float32 if i % 2 else np.float64
        p = make_problem(rng, T=30, B=40, Nx=3, Nh=40 + i, Ny=2, K=2, dtype=dt)
        target = rng.standard_normal((30, 40, 2)).astype(dt)
        probs.append((p, target))

    def compute(p, target):
        y = rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], b_h=p["b_h"])
        loss, g = loss_and_grad(p["W_xh"], p["W_hh"][1], p["W_hy"], p["x"], target)
        return y, loss, g

    serial = [compute(*pt) for pt in probs]
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def worker(i):
        try:
            for _ in range(10):
                results[i] = compute(*probs[i])
                y, loss, g = results[i]
                np.testing.assert_array_equal(y, serial[i][0])
                assert loss == serial[i][1]
                for name in g:
                    np.testing.assert_array_equal(g[name], serial[i][2][name])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(probs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == len(probs)


def test_exports():
    assert rnnschur.rollout is rollout
    assert rnnschur.loss_and_grad is loss_and_grad
    assert _core.simd_level() in LEVELS
    assert _core.hardware_threads() >= 1


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_tanh_accuracy(dtype):
    """The kernels' tanh against np.tanh: dense grid, tiny, huge, signed zeros, inf."""
    fi = np.finfo(dtype)
    grid = np.concatenate(
        [
            np.linspace(-25, 25, 100_001),
            np.geomspace(float(fi.smallest_subnormal), 40.0, 100_000),
            [float(fi.tiny), float(fi.max), 1e-8, 0.5, 0.55, 1.0, 8.9, 9.5, 19.0, 20.0],
        ]
    ).astype(dtype)
    x = np.concatenate([grid, -grid])
    y = _core._tanh(x)
    assert y.dtype == dtype
    exact = np.tanh(x.astype(np.float64))
    ref = exact.astype(dtype)
    ulps = np.abs(y.astype(np.float64) - exact) / np.spacing(np.abs(ref)).astype(
        np.float64
    )
    # float32: within 3 ulp of the exact value; float64: within 4 ulp of numpy's
    assert ulps.max() <= (3.0 if dtype == np.float32 else 4.0), x[np.argmax(ulps)]
    if dtype == np.float64:
        rel = np.abs(y - ref) / np.maximum(np.abs(ref), float(fi.smallest_subnormal))
        assert rel.max() <= 1e-15
    special = np.array([0.0, -0.0, np.inf, -np.inf], dtype=dtype)
    out = _core._tanh(special)
    np.testing.assert_array_equal(out, [0.0, -0.0, 1.0, -1.0])
    np.testing.assert_array_equal(np.signbit(out), [False, True, False, True])
    assert np.all(np.abs(y) <= 1)
    assert np.all(np.sign(y) == np.sign(x))


def _import_with_simd_env(value):
    code = "from rnnschur import _core; print(_core.simd_level())"
    env = {**os.environ, "RNNSCHUR_SIMD": value}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("level", LEVELS)
def test_env_var_forces_level(level):
    out = _import_with_simd_env(level)
    if level in _core.simd_levels():
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == level
    else:  # a level the CPU lacks is an error at import, never a crash
        assert out.returncode == 1
        assert f"ImportError: RNNSCHUR_SIMD='{level}'" in out.stderr
        assert "does not support" in out.stderr


def test_env_var_unknown_level_raises():
    out = _import_with_simd_env("sse9")
    assert out.returncode == 1
    assert "ImportError: RNNSCHUR_SIMD='sse9' is not a SIMD level" in out.stderr


def test_simd_levels_and_forcing():
    levels = _core.simd_levels()
    assert levels[0] == "baseline"
    assert set(levels) <= set(LEVELS)
    assert levels == [lv for lv in LEVELS if lv in levels]  # lowest first
    before = _core.simd_level()
    try:
        for lv in LEVELS:
            if lv in levels:
                assert _core.set_simd_level(lv) == lv
                assert _core.simd_level() == lv
            else:
                with pytest.raises(ValueError, match="not supported by this CPU"):
                    _core.set_simd_level(lv)
                assert _core.simd_level() == levels[-1]  # unchanged
    finally:
        _core.set_simd_level(before)
    # without RNNSCHUR_SIMD the best level is in force
    code = "from rnnschur import _core; print(_core.simd_level())"
    env = {k: v for k, v in os.environ.items() if k != "RNNSCHUR_SIMD"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == levels[-1]


def test_avx512_reported_where_the_cpu_has_it():
    """The dispatcher finds AVX-512 wherever /proc/cpuinfo lists its four subsets."""
    try:
        with Path("/proc/cpuinfo").open() as f:
            flags = next(ln for ln in f if ln.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags on this system")
    has = all(f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl"))
    if not has:
        assert "avx512" not in _core.simd_levels()
        pytest.skip("this CPU has no AVX-512 (x86-64-v4)")
    assert "avx512" in _core.simd_levels()


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize(
    ("T", "B", "n_threads"),
    [
        (5, 70, 1),  # >= 64 rows per step: a chunk of one step, two dA slots
        (13, 20, 1),  # 3-step chunks, the last one partial
        (40, 9, 2),  # parts of 5 and 4 rows share one chunk size
        (11, 67, 3),  # uneven parts of 22-23 rows
    ],
)
def test_gradient_chunk_edges(rng, T, B, n_threads):
    """BPTT reduces the weight gradients every ~64 rows, keeping only that many
    dL/da blocks: chunk sizes, ring slots and uneven thread parts vs the reference."""
    p = make_problem(rng, T=T, B=B, Nx=4, Nh=21, Ny=5)
    y = rng.standard_normal((T, B, 5))
    kw = {"b_h": p["b_h"], "b_y": p["b_y"]}
    loss, g = loss_and_grad(
        p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, n_threads=n_threads, **kw
    )
    loss_ref, g_ref = naive_rnn.loss_and_grad(
        p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, **kw
    )
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    for name, r in g_ref.items():
        np.testing.assert_allclose(g[name], r, rtol=1e-11, atol=1e-12, err_msg=name)


@pytest.mark.usefixtures("simd")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Nh", [37, 72, 130, 260])
def test_large_hidden_blocked_paths(rng, dtype, Nh):
    """Nh < 128 reduces the weight gradients per chunk of steps inside BPTT (T = 40
    is no multiple of the chunk, so the last one is partial); Nh >= 128 packs one
    reduction afterwards: 260 > its 256-column block and T*B = 360 > its 256-row
    block, so every blocking edge is crossed."""
    p = make_problem(rng, T=40, B=9, Nx=5, Nh=Nh, Ny=11, dtype=dtype)
    y = rng.standard_normal((40, 9, 11)).astype(dtype)
    kw = {"b_h": p["b_h"], "b_y": p["b_y"]}
    out = rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], **kw)
    ref, _ = naive_rnn.rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], **kw)
    rtol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(out, ref, rtol=0, atol=rtol * np.abs(ref).max())
    for n_threads in (1, 2):
        loss, g = loss_and_grad(
            p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, n_threads=n_threads, **kw
        )
        loss_ref, g_ref = naive_rnn.loss_and_grad(
            p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, **kw
        )
        assert loss == pytest.approx(loss_ref, rel=rtol)
        for name, r in g_ref.items():
            np.testing.assert_allclose(
                g[name], r, rtol=0, atol=rtol * np.abs(r).max(), err_msg=name
            )
