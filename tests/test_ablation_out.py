"""ablate(out=..., dtype=...): preallocated and float32 results.

Checked against the allocating float64 result (bit for bit for ``out=``) and against
the independent NumPy reference ``ablate_reference`` (two products per subset).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naive_schur import EPS, ablate_reference, family
from rnnschur import ablate, ordered_schur, schur_split

C_BOUND = 16.0  # as in test_ablation.py: c in c·n·ε·‖W‖_F
U32 = 2.0**-24  # unit roundoff of float32


def _pairs(rng, M, n, alpha=0.8):
    forms = [ordered_schur(family("gaussian", rng, n) * 1.3) for _ in range(M)]
    return forms, [schur_split(f, alpha) for f in forms]


def _assert_rounded_once(w32, w64):
    """Every float32 entry is its float64 value rounded to nearest."""
    assert w32.dtype == np.float32
    err = np.abs(w32.astype(np.float64) - w64)
    tiny = float(np.finfo(np.float32).smallest_subnormal)
    assert np.all(err <= U32 * np.abs(w64) + tiny)


@pytest.mark.parametrize("base", ["W", "QTQ"])
def test_out_batch_is_bitwise_the_allocating_result(rng, base):
    forms, splits = _pairs(rng, 5, 18)
    ref = ablate(forms, splits, base=base)
    out = np.full((5, 8, 18, 18), np.nan)
    a = ablate(forms, splits, base=base, out=out)
    assert a.W is out
    np.testing.assert_array_equal(out, ref.W)
    np.testing.assert_array_equal(a.removed_mass, ref.removed_mass)
    out[:] = np.nan  # reused: every entry is written again
    ablate(forms, splits, base=base, out=out)
    np.testing.assert_array_equal(out, ref.W)


def test_out_single_form_and_subset_list(rng):
    forms, splits = _pairs(rng, 1, 9)
    subs = [("CR",), ("RR", "CC")]
    out = np.empty((2, 9, 9))
    a = ablate(forms[0], splits[0], subs, out=out)
    assert a.W is out
    np.testing.assert_array_equal(out, ablate(forms[0], splits[0], subs).W)


@pytest.mark.parametrize("base", ["W", "QTQ"])
@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_float32_against_reference(rng, n, base):
    forms, splits = _pairs(rng, 3, n)
    a64 = ablate(forms, splits, base=base)
    a32 = ablate(forms, splits, base=base, dtype=np.float32)
    assert a32.W.shape == a64.W.shape
    assert a32.removed_mass.dtype == np.float64
    np.testing.assert_array_equal(a32.removed_mass, a64.removed_mass)
    _assert_rounded_once(a32.W, a64.W)
    for m, (f, s) in enumerate(zip(forms, splits, strict=True)):
        ref, _ = ablate_reference(f.Q, f.T, s.n_R, a32.subsets)
        # float64 backward error, then one rounding to float32 (with slack 2)
        bound = C_BOUND * n * EPS * np.linalg.norm(f.W) + 2 * U32 * np.abs(ref)
        assert np.all(np.abs(a32.W[m] - ref) <= bound)


def test_float32_out_and_dtype_spellings(rng):
    forms, splits = _pairs(rng, 2, 12)
    a64 = ablate(forms, splits)
    out = np.empty((2, 8, 12, 12), np.float32)
    a = ablate(forms, splits, out=out)  # dtype taken from out
    assert a.W is out
    _assert_rounded_once(out, a64.W)
    for spelling in ("float32", np.dtype("float32"), np.float32):
        np.testing.assert_array_equal(ablate(forms, splits, dtype=spelling).W, out)
    assert ablate(forms, splits, dtype="float64").W.dtype == np.float64


def test_extreme_scale_float32_overflows_to_inf_not_nan(rng):
    # |W| ~ 2^200 is finite in float64 and beyond float32: rounded once, it is inf.
    W = rng.standard_normal((6, 6))
    f = ordered_schur(np.ldexp(W, 200))
    a = ablate(f, 0.5, dtype=np.float32)
    assert not np.isnan(a.W).any()
    assert np.isinf(a.W).any()


def _aliasing_view(a: np.ndarray, shape) -> np.ndarray:
    """A writeable array over the memory of the read-only ``a``."""
    buf = (ctypes.c_double * a.size).from_address(a.ctypes.data)
    return np.frombuffer(buf, dtype=np.float64).reshape(shape)


def test_bad_out(rng):
    forms, splits = _pairs(rng, 2, 6)
    good = (2, 8, 6, 6)
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
        ablate(forms, splits, out=np.zeros(good).tolist())
    with pytest.raises(TypeError, match="out must have dtype"):
        ablate(forms, splits, out=np.zeros(good, np.int64))
    with pytest.raises(TypeError, match="out must have dtype float32"):
        ablate(forms, splits, out=np.zeros(good), dtype=np.float32)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 8, 6, 6\)"):
        ablate(forms, splits, out=np.zeros((8, 6, 6)))
    with pytest.raises(ValueError, match=r"out must have shape \(8, 6, 6\)"):
        ablate(forms[0], splits[0], out=np.zeros(good))
    with pytest.raises(ValueError, match="C-contiguous"):
        ablate(forms, splits, out=np.zeros(good, order="F"))
    with pytest.raises(ValueError, match="C-contiguous"):
        ablate(forms, splits, out=np.zeros((2, 8, 6, 12))[..., ::2])
    ro = np.zeros(good)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ablate(forms, splits, out=ro)
    alias = _aliasing_view(forms[0].W, (1, 6, 6))
    with pytest.raises(ValueError, match="share memory"):
        ablate(forms[0], splits[0], [()], out=alias)
    np.testing.assert_array_equal(alias[0], ordered_schur(forms[0].W).W)  # untouched


@pytest.mark.parametrize("dtype", [np.float16, "int32", np.complex128, "nonsense", 3])
def test_bad_dtype(rng, dtype):
    f, s = _pairs(rng, 1, 4)
    with pytest.raises(TypeError, match="dtype must be float64 or float32"):
        ablate(f[0], s[0], dtype=dtype)


@settings(deadline=None, max_examples=25)
@given(
    n=st.integers(1, 14),
    M=st.integers(1, 3),
    alpha=st.floats(0.05, 1.0),
    subsets=st.lists(
        st.sets(st.sampled_from(["RR", "CR", "CC"])).map(sorted), min_size=1, max_size=8
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_out_and_float32_properties(n, M, alpha, subsets, seed):
    rng = np.random.default_rng(seed)
    forms, splits = _pairs(rng, M, n, alpha)
    ref = ablate(forms, splits, subsets)
    out = np.full(ref.W.shape, np.nan)
    np.testing.assert_array_equal(ablate(forms, splits, subsets, out=out).W, ref.W)
    _assert_rounded_once(ablate(forms, splits, subsets, dtype="float32").W, ref.W)
