"""The AVX-512 forward with the batch in the vector lanes (rnn_simd_tposed.hpp).

On the AVX-512 level, ``rollout`` keeps the state transposed (hidden units x
batch columns) where that is faster; ``_core._set_forward_layout`` forces it
('transposed') or the row layout of the other levels ('rows'). Both must agree
with the NumPy reference and with each other, for ragged batches (shards padded
to the vector length), any widths, stacks, biases, initial states, the leak and
the hidden states; the other levels must not be affected by the switch.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnschur import _core, rollout

from . import naive_rnn


@pytest.fixture
def avx512():
    if "avx512" not in _core.simd_levels():
        pytest.skip(
            "this CPU (or build) has no AVX-512: the transposed forward is not used"
        )
    before = _core.simd_level()
    assert _core.set_simd_level("avx512") == "avx512"
    prev = _core._set_forward_layout("transposed")
    yield
    _core._set_forward_layout(prev)
    _core.set_simd_level(before)


def tol(dtype):
    return (
        {"rtol": 2e-5, "atol": 2e-5}
        if dtype == np.float32
        else {"rtol": 1e-12, "atol": 1e-12}
    )


def problem(rng, T, B, Nx, Nh, Ny, K, dtype):
    W_hh_shape = (Nh, Nh) if K is None else (K, Nh, Nh)
    p = {
        "W_xh": rng.standard_normal((Nh, Nx)) / np.sqrt(Nx),
        "W_hh": rng.standard_normal(W_hh_shape) * (1.2 / np.sqrt(Nh)),
        "W_hy": rng.standard_normal((Ny, Nh)) / np.sqrt(Nh),
        "x": rng.standard_normal((T, B, Nx)),
        "b_h": rng.standard_normal(Nh) * 0.3,
        "b_y": rng.standard_normal(Ny) * 0.3,
        "h0_batch": rng.uniform(-1, 1, (B, Nh)),
        "h0_shared": rng.uniform(-1, 1, Nh),
    }
    return {k: v.astype(dtype) for k, v in p.items()}


def both_layouts(args, **kw):
    """(transposed, row layout) results of one rollout call."""
    prev = _core._set_forward_layout("transposed")
    try:
        new = rollout(*args, **kw)
        _core._set_forward_layout("rows")
        old = rollout(*args, **kw)
    finally:
        _core._set_forward_layout(prev)
    return new, old


def check_against_reference(p, K, y, h, dtype, h0=None, leak=1.0, biases=True):
    kb = {"b_h": p["b_h"], "b_y": p["b_y"]} if biases else {}
    W = p["W_hh"] if K is not None else p["W_hh"][None]
    y = y if K is not None else y[None]
    h = h if K is not None else h[None]
    for k in range(W.shape[0]):
        y_ref, h_ref = naive_rnn.rollout(
            p["W_xh"], W[k], p["W_hy"], p["x"], h0=h0, leak=leak, **kb
        )
        np.testing.assert_allclose(h[k], h_ref, **tol(dtype))
        np.testing.assert_allclose(y[k], y_ref, **tol(dtype))


# Every batch size with every hidden width; the stack depth, input/output
# widths and the dtype cycle along so that each value meets several others.
CASES = [
    (B, Nh, K, Nx, Ny, dtype)
    for (B, Nh), K, (Nx, Ny), dtype in zip(
        itertools.product([1, 15, 17, 64, 100], [1, 5, 16, 72, 130]),
        itertools.cycle([None, 1, 3, 8]),
        itertools.cycle([(3, 2), (8, 8), (1, 5), (2, 17)]),
        itertools.cycle([np.float32, np.float32, np.float64]),
        strict=False,
    )
]


@pytest.mark.usefixtures("avx512")
@pytest.mark.parametrize(("B", "Nh", "K", "Nx", "Ny", "dtype"), CASES)
def test_matches_reference_and_row_layout(rng, B, Nh, K, Nx, Ny, dtype):
    p = problem(rng, 6, B, Nx, Nh, Ny, K, dtype)
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    kw = {"b_h": p["b_h"], "b_y": p["b_y"], "return_hidden": True, "n_threads": 2}
    (y, h), (y_old, h_old) = both_layouts(args, **kw)
    check_against_reference(p, K, y, h, dtype)
    np.testing.assert_allclose(y, y_old, **tol(dtype))
    np.testing.assert_allclose(h, h_old, **tol(dtype))
    # return_hidden does not change y
    np.testing.assert_array_equal(rollout(*args, b_h=p["b_h"], b_y=p["b_y"]), y)


@pytest.mark.usefixtures("avx512")
@pytest.mark.parametrize(("Nx", "Ny", "B"), [(0, 2, 20), (3, 0, 20), (2, 1, 300)])
def test_empty_widths_and_several_shards(rng, Nx, Ny, B):
    """No inputs (no input rows in the GEMM), no outputs (no readout rows), and
    a batch of several shards (300 rows, shards of at most 16 vectors)."""
    p = problem(rng, 6, B, Nx, 7, Ny, None, np.float64)
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    y, h = rollout(*args, b_h=p["b_h"], b_y=p["b_y"], return_hidden=True, n_threads=2)
    check_against_reference(p, None, y, h, np.float64)


@pytest.mark.usefixtures("avx512")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h0_kind", [None, "batch", "shared"])
@pytest.mark.parametrize("leak", [1.0, 0.3])
@pytest.mark.parametrize("biases", [False, True])
def test_h0_leak_biases(rng, dtype, h0_kind, leak, biases):
    p = problem(rng, 9, 37, 4, 23, 3, 3, dtype)
    h0 = None if h0_kind is None else p[f"h0_{h0_kind}"]
    kb = {"b_h": p["b_h"], "b_y": p["b_y"]} if biases else {}
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    (y, h), (y_old, h_old) = both_layouts(
        args, h0=h0, leak=leak, return_hidden=True, **kb
    )
    check_against_reference(p, 3, y, h, dtype, h0=h0, leak=leak, biases=biases)
    np.testing.assert_allclose(y, y_old, **tol(dtype))
    np.testing.assert_allclose(h, h_old, **tol(dtype))


@pytest.mark.usefixtures("avx512")
@pytest.mark.parametrize("layout", ["transposed", "auto"])
@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize(("B", "K"), [(64, 8), (100, 1), (33, 2), (5, 1), (24, 1)])
def test_threads_do_not_change_results(rng, layout, n_threads, B, K):
    """Items are (variant, batch shard) pairs whatever the thread count; rows are
    independent, so every split gives the same bits as one thread (and 'auto'
    picks its layout from the batch alone, not from the thread count)."""
    p = problem(rng, 20, B, 8, 72, 8, K, np.float32)
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    prev = _core._set_forward_layout(layout)
    try:
        y1, h1 = rollout(*args, return_hidden=True, n_threads=1)
        yn, hn = rollout(*args, return_hidden=True, n_threads=n_threads)
    finally:
        _core._set_forward_layout(prev)
    np.testing.assert_array_equal(yn, y1)
    np.testing.assert_array_equal(hn, h1)


@pytest.mark.usefixtures("avx512")
def test_copy_shape_saturated(rng):
    """The benchmark's shape with weights large enough to saturate most units.
    The network is chaotic at this scale, so over 136 steps float32 rounding
    alone moves it far from a float64 reference; both layouts sum each step's
    pre-activation in the same order (the same hidden states, bit for bit), and
    their readouts, summed differently, stay together."""
    p = problem(rng, 136, 64, 8, 72, 8, 8, np.float32)
    p["W_hh"] *= np.float32(3.0)
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    (y, h), (y_old, h_old) = both_layouts(args, return_hidden=True)
    assert np.mean(np.abs(h) > 0.99) > 0.3
    np.testing.assert_array_equal(h, h_old)
    np.testing.assert_allclose(y, y_old, **tol(np.float32))


@pytest.mark.usefixtures("avx512")
def test_non_finite_input_raises_like_the_row_layout(rng):
    p = problem(rng, 5, 20, 3, 7, 2, None, np.float32)
    p["x"][2, 4, 1] = np.inf
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    errors = []
    for layout in ("transposed", "rows"):
        prev = _core._set_forward_layout(layout)
        try:
            with pytest.raises(Exception) as info:  # noqa: PT011 (same type both ways)
                rollout(*args)
            errors.append(type(info.value))
        finally:
            _core._set_forward_layout(prev)
    assert errors[0] is errors[1]


@pytest.mark.usefixtures("avx512")
@pytest.mark.parametrize(("B", "K"), [(64, 8), (17, 1), (1, 3), (100, 2)])
def test_automatic_layout_gives_one_of_the_two(rng, B, K):
    """'auto' (the default) runs one of the two layouts, whichever it picks."""
    p = problem(rng, 12, B, 3, 20, 2, K, np.float64)
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    new, old = both_layouts(args)
    prev = _core._set_forward_layout("auto")
    try:
        y = rollout(*args)
    finally:
        _core._set_forward_layout(prev)
    assert np.array_equal(y, new) or np.array_equal(y, old)


@pytest.mark.usefixtures("avx512")
@pytest.mark.parametrize(
    ("dtype", "B", "expected"),
    # 16 float32 / 8 float64 lanes per vector; "transposed" where the padding of
    # the last vector is at most 1/8 of the lanes
    [(np.float32, B, "transposed") for B in (64, 56, 32)]
    + [(np.float32, B, "rows") for B in (17, 24, 8)]
    + [(np.float64, B, "transposed") for B in (64, 24, 8)]
    + [(np.float64, B, "rows") for B in (17, 12, 5)],
)
def test_automatic_layout_follows_the_padding_rule(rng, dtype, B, expected):
    """'auto' takes the transposed layout where at most 1/8 of the lanes pad."""
    p = problem(rng, 12, B, 3, 20, 2, 2, dtype)
    args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    tposed, rows = both_layouts(args)
    assert not np.array_equal(tposed, rows)  # else the check below says nothing
    prev = _core._set_forward_layout("auto")
    try:
        y = rollout(*args)
    finally:
        _core._set_forward_layout(prev)
    np.testing.assert_array_equal(y, tposed if expected == "transposed" else rows)


def test_layout_hook_rejects_unknown_names():
    with pytest.raises(ValueError, match="layout must be"):
        _core._set_forward_layout("columns")
    assert _core._set_forward_layout("auto") == "auto"


@pytest.mark.parametrize("level", ["baseline", "avx2"])
def test_other_levels_ignore_the_switch(rng, level):
    """Below AVX-512 the switch changes nothing: the row layout runs either way."""
    if level not in _core.simd_levels():
        pytest.skip(f"this CPU (or build) does not support {level}")
    before = _core.simd_level()
    try:
        assert _core.set_simd_level(level) == level
        p = problem(rng, 11, 19, 3, 13, 2, 3, np.float32)
        args = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
        (y, h), (y_old, h_old) = both_layouts(args, b_h=p["b_h"], return_hidden=True)
        np.testing.assert_array_equal(y, y_old)
        np.testing.assert_array_equal(h, h_old)
    finally:
        _core.set_simd_level(before)
