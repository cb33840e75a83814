"""Hypothesis properties of principal angles and the alignment index."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rnnschur.subspaces import alignment_index, principal_angles

_elems = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def _pair(draw):
    n = draw(st.integers(1, 8))
    p = draw(st.integers(1, n))
    q = draw(st.integers(1, n))
    A = draw(arrays(np.float64, (n, p), elements=_elems))
    B = draw(arrays(np.float64, (n, q), elements=_elems))
    seed = draw(st.integers(0, 2**32 - 1))
    return A, B, seed


def _well_conditioned(M):
    s = np.linalg.svd(M, compute_uv=False)
    return s[0] > 1e-3 and s[-1] > 1e-3 * s[0]


@settings(deadline=None)
@given(_pair())
def test_angles_in_range_and_symmetric(pair):
    A, B, _ = pair
    th = principal_angles(A, B)
    assert np.all((th >= 0) & (th <= np.pi / 2))
    assert np.all(np.diff(th) <= 0)
    assume(_well_conditioned(A) and _well_conditioned(B))
    np.testing.assert_allclose(th, principal_angles(B, A), atol=1e-10)


@settings(deadline=None)
@given(_pair())
def test_angles_invariant_to_basis_and_rotation(pair):
    A, B, seed = pair
    assume(_well_conditioned(A) and _well_conditioned(B))
    rng = np.random.default_rng(seed)
    th = principal_angles(A, B)
    Ra = np.linalg.qr(rng.standard_normal((A.shape[1],) * 2))[0]
    Rb = np.linalg.qr(rng.standard_normal((B.shape[1],) * 2))[0] * 3.0
    np.testing.assert_allclose(principal_angles(A @ Ra, B @ Rb), th, atol=1e-9)
    # the same orthogonal map applied to both spaces leaves the angles unchanged
    G = np.linalg.qr(rng.standard_normal((A.shape[0],) * 2))[0]
    np.testing.assert_allclose(principal_angles(G @ A, G @ B), th, atol=1e-9)


@settings(deadline=None)
@given(_pair())
def test_alignment_index_in_unit_interval(pair):
    A, B, _ = pair
    C = B @ B.T
    assume(np.linalg.norm(C) > 1e-6)
    a = alignment_index(A, C)
    assume(np.isfinite(a))
    assert 0.0 <= a <= 1.0
