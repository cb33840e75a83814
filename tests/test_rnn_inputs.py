"""Bad input to rollout / loss_and_grad raises a named ValueError/TypeError."""

from __future__ import annotations

import numpy as np
import pytest

from rnnschur import _core, loss_and_grad, rollout
from rnnschur.rnn import loss_and_grad_unchecked


@pytest.fixture
def p(rng):
    return {
        "W_xh": rng.standard_normal((6, 3)),
        "W_hh": rng.standard_normal((6, 6)) * 0.3,
        "W_hy": rng.standard_normal((2, 6)),
        "x": rng.standard_normal((5, 4, 3)),
    }


def call_rollout(p, **over):
    q = {**p, **over}
    kw = {k: v for k, v in q.items() if k not in ("W_xh", "W_hh", "W_hy", "x", "y")}
    return rollout(q["W_xh"], q["W_hh"], q["W_hy"], q["x"], **kw)


def call_grad(p, **over):
    q = {"y": np.zeros((5, 4, 2)), **p, **over}
    kw = {k: v for k, v in q.items() if k not in ("W_xh", "W_hh", "W_hy", "x", "y")}
    return loss_and_grad(q["W_xh"], q["W_hh"], q["W_hy"], q["x"], q["y"], **kw)


BAD_SHAPES = [
    ("W_xh", np.zeros((6,)), "W_xh must be 2-D"),
    ("W_xh", np.zeros((6, 3, 1)), "W_xh must be 2-D"),
    ("W_hh", np.zeros((6, 5)), "W_hh has shape"),
    ("W_hh", np.zeros((5, 6)), "W_hh has shape"),
    ("W_hy", np.zeros((2, 5)), "W_hy has shape"),
    ("W_hy", np.zeros(6), "W_hy must be 2-D"),
    ("x", np.zeros((5, 4)), "x must be 3-D"),
    ("x", np.zeros((5, 4, 2)), "x has shape"),
    ("b_h", np.zeros(5), "b_h has shape"),
    ("b_h", np.zeros((6, 1)), "b_h must be 1-D"),
    ("b_y", np.zeros(3), "b_y has shape"),
]


@pytest.mark.parametrize(("name", "value", "match"), BAD_SHAPES)
def test_bad_shapes(p, name, value, match):
    with pytest.raises(ValueError, match=match):
        call_rollout(p, **{name: value})
    with pytest.raises(ValueError, match=match):
        call_grad(p, **{name: value})


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros((4, 5)), "h0 has shape"),
        (np.zeros((3, 6)), "h0 has shape"),
        (np.zeros(5), "h0 has shape"),
        (np.zeros((1, 4, 6)), "h0 must be"),
    ],
)
def test_bad_h0(p, value, match):
    with pytest.raises(ValueError, match=match):
        call_rollout(p, h0=value)


def test_bad_stack(p):
    with pytest.raises(ValueError, match="W_hh must be 2-D or 3-D"):
        call_rollout(p, W_hh=np.zeros((1, 1, 6, 6)))
    with pytest.raises(ValueError, match="W_hh has shape"):
        call_rollout(p, W_hh=np.zeros((3, 6, 5)))
    with pytest.raises(ValueError, match="W_hh must be 2-D"):
        call_grad(p, W_hh=np.zeros((3, 6, 6)))
    y = call_rollout(p, W_hh=np.zeros((0, 6, 6)))
    assert y.shape == (0, 5, 4, 2)


def test_bad_target_and_mask(p):
    with pytest.raises(ValueError, match="y has shape"):
        call_grad(p, y=np.zeros((5, 4, 3)))
    with pytest.raises(ValueError, match="y has shape"):
        call_grad(p, y=np.zeros((6, 4, 2)))
    with pytest.raises(ValueError, match="y must be 3-D"):
        call_grad(p, y=np.zeros((5, 8)))
    with pytest.raises(ValueError, match="mask of shape"):
        call_grad(p, mask=np.ones((5, 3, 2), dtype=bool))
    with pytest.raises(TypeError, match="mask must be a bool"):
        call_grad(p, mask=np.ones((5, 4, 2)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        call_grad(p, mask=np.full((5, 4, 2), 2))
    with pytest.raises(ValueError, match="no entries"):
        call_grad(p, mask=np.zeros((5, 4, 2), dtype=bool))
    with pytest.raises(ValueError, match="no entries"):
        call_grad(p, mask=False)


def test_integer_mask_equals_bool_mask(p, rng):
    m = rng.random((5, 4, 1)) < 0.5
    m[0, 0, 0] = True
    lb, gb = call_grad(p, mask=m)
    li, gi = call_grad(p, mask=m.astype(np.int8))
    assert lb == li
    for k in gb:
        np.testing.assert_array_equal(gb[k], gi[k])


@pytest.mark.parametrize("name", ["W_xh", "W_hh", "W_hy", "x", "b_h", "b_y", "h0", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_inputs(p, name, bad):
    shapes = {"b_h": (6,), "b_y": (2,), "h0": (4, 6), "y": (5, 4, 2)}
    for dtype in (np.float32, np.float64):
        q = {k: v.astype(dtype) for k, v in p.items()}
        arr = np.zeros(shapes[name], dtype) if name in shapes else q[name].copy()
        arr.flat[arr.size // 2] = bad
        if name != "y":
            with pytest.raises(ValueError, match=f"{name} must contain only finite"):
                call_rollout(q, **{name: arr})
        if name != "h0":
            with pytest.raises(ValueError, match=f"{name} must contain only finite"):
                call_grad(q, **{name: arr})


@pytest.mark.parametrize("name", ["W_xh", "W_hh", "W_hy", "x", "b_h", "y"])
@pytest.mark.parametrize(
    "dtype", [np.int64, np.int32, np.bool_, np.complex128, np.float16, object]
)
def test_wrong_dtypes(p, name, dtype):
    shapes = {"b_h": (6,), "y": (5, 4, 2)}
    arr = np.ones(shapes[name]) if name in shapes else p[name]
    arr = arr.astype(dtype)
    if name != "y":
        with pytest.raises(TypeError, match=f"{name} must be a float32 or float64"):
            call_rollout(p, **{name: arr})
    with pytest.raises(TypeError, match=f"{name} must be a float32 or float64"):
        call_grad(p, **{name: arr})


@pytest.mark.parametrize("name", ["W_xh", "W_hh", "W_hy", "x", "y"])
def test_required_argument_none(p, name):
    if name != "y":
        with pytest.raises(TypeError, match=f"{name} must be a float32 or float64"):
            call_rollout(p, **{name: None})
    with pytest.raises(TypeError, match=f"{name} must be a float32 or float64"):
        call_grad(p, **{name: None})


def test_huge_n_threads_is_capped(p):
    ref = call_rollout(p, n_threads=1)
    np.testing.assert_array_equal(call_rollout(p, n_threads=2**40), ref)
    ref_loss, _ = call_grad(p, n_threads=1)
    assert call_grad(p, n_threads=2**63)[0] == pytest.approx(ref_loss, rel=1e-13)


def test_non_array_inputs(p):
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        call_rollout(p, x="hello")
    with pytest.raises(TypeError, match="W_xh must be a float32 or float64"):
        call_rollout(p, W_xh=[[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("n", [0, -1, 2.5, "2"])
def test_bad_n_threads(p, n):
    exc = ValueError if isinstance(n, int) else TypeError
    with pytest.raises(exc, match="n_threads"):
        call_rollout(p, n_threads=n)
    with pytest.raises(exc, match="n_threads"):
        call_grad(p, n_threads=n)


def test_overflow_is_reported(p):
    huge = np.full((6, 3), 1e308)
    W_hy = np.full((2, 6), 1e308)
    with pytest.raises(ValueError, match="overflow"):
        call_rollout(p, W_xh=huge, W_hy=W_hy)
    with pytest.raises(ValueError, match="overflow"):
        call_grad(p, W_hy=W_hy)


def test_unchecked_entry_point_still_guards_memory(p):
    y = np.zeros((5, 4, 2))
    loss, g = loss_and_grad_unchecked(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y)
    ref_loss, ref_g = call_grad(p)
    assert loss == ref_loss
    for name in ref_g:
        np.testing.assert_array_equal(g[name], ref_g[name])
    with pytest.raises(TypeError, match="W_hh must be a float64"):
        loss_and_grad_unchecked(
            p["W_xh"], p["W_hh"].astype(np.float32), p["W_hy"], p["x"], y
        )
    with pytest.raises(ValueError, match="C-contiguous"):
        loss_and_grad_unchecked(p["W_xh"], p["W_hh"].T, p["W_hy"], p["x"], y)
    with pytest.raises(ValueError, match="mask"):
        loss_and_grad_unchecked(
            p["W_xh"], p["W_hh"], p["W_hy"], p["x"], y, np.ones((5, 1, 2), bool)
        )
    with pytest.raises(ValueError, match="x has shape"):
        loss_and_grad_unchecked(
            p["W_xh"], p["W_hh"], p["W_hy"], p["x"][:, :, :2].copy(), y
        )


def test_bad_simd_level_name():
    with pytest.raises(ValueError, match="level must be"):
        _core.set_simd_level("sse9")


def test_non_native_byte_order_is_accepted(p):
    big = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in p.items()}
    np.testing.assert_array_equal(call_rollout(big), call_rollout(p))
    lb, gb = call_grad(big)
    lp, gp = call_grad(p)
    assert lb == lp
    for k in gp:
        assert gb[k].dtype == np.float64
        np.testing.assert_array_equal(gb[k], gp[k])


def test_float32_params_get_float32_gradients_when_promoted(p):
    q = {k: (v.astype(np.float32) if k != "x" else v) for k, v in p.items()}
    _, g = call_grad(q, b_h=np.zeros(6, np.float32), b_y=np.zeros(2))
    assert {k: v.dtype for k, v in g.items()} == {
        "W_xh": np.float32,
        "W_hh": np.float32,
        "W_hy": np.float32,
        "b_h": np.float32,
        "b_y": np.float64,
    }


def test_masked_arrays_and_non_bool_flags_are_refused(p):
    masked = np.ma.masked_array(p["x"], mask=np.zeros(p["x"].shape, bool))
    with pytest.raises(TypeError, match="x must not be a masked array"):
        call_rollout(p, x=masked)
    with pytest.raises(TypeError, match="x must not be a masked array"):
        call_grad(p, x=masked)
    with pytest.raises(TypeError, match="return_hidden must be a bool"):
        call_rollout(p, return_hidden="no")


def test_zero_outputs_name_the_empty_loss(p):
    with pytest.raises(ValueError, match="T, B or Ny is 0"):
        call_grad(p, W_hy=np.zeros((0, 6)), y=np.zeros((5, 4, 0)))
