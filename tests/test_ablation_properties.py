"""Property tests (hypothesis) of ablate() on random and adversarial families.

Bounds use ε = 2⁻⁵² and C_BOUND = 16 as in test_schur_properties.py.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from naive_schur import EPS, FAMILIES, ablate_reference, coupling_masks, family
from rnnschur import ablate, ordered_schur, schur_split
from rnnschur.ablation import BLOCK_NAMES, DEFAULT_SUBSETS

C_BOUND = 16.0

subset_lists = st.one_of(
    st.none(),
    st.lists(
        st.lists(
            st.sampled_from(["RR", "CR", "CC", "T_RR", "T_C->R", "T_CC"]), max_size=3
        ),
        min_size=1,
        max_size=10,
    ),
)


@st.composite
def forms(draw, n=None):
    fam = draw(st.sampled_from(FAMILIES))
    if n is None:
        n = draw(st.one_of(st.integers(1, 30), st.sampled_from([64, 72])))
    scale = draw(st.sampled_from([1.0, 1.0, 1e100, 1e-100]))
    seed = draw(st.integers(0, 2**32 - 1))
    alpha = draw(st.floats(0.05, 1.0))
    f = ordered_schur(family(fam, np.random.default_rng(seed), n) * scale)
    return f, schur_split(f, alpha)


@settings(max_examples=50)
@given(fs=forms(), subsets=subset_lists, base=st.sampled_from(["W", "QTQ"]))
def test_numba_equals_numpy_reference(fs, subsets, base):
    f, s = fs
    n = f.n
    a = ablate(f, s, subsets, base=base)
    ref, mass = ablate_reference(f.Q, f.T, s.n_R, a.subsets)
    nw = np.linalg.norm(f.W)
    for k in range(len(a.subsets)):
        assert np.linalg.norm(a.W[k] - ref[k]) <= C_BOUND * n * EPS * nw
    np.testing.assert_allclose(a.removed_mass, mass, rtol=1e-12, atol=1e-15)


@settings(max_examples=50)
@given(fs=forms())
def test_identities(fs):
    f, s = fs
    n = f.n
    a = ablate(f, s)
    W = f.W
    nw = np.linalg.norm(W)
    # Ablating nothing returns W, ablating all three returns Q B Qᵀ.
    np.testing.assert_array_equal(a.W[0], W)
    assert np.linalg.norm(a.W[7] - f.Q @ f.B @ f.Q.T) <= C_BOUND * n * EPS * nw
    # Linearity for disjoint subsets: W − W̃(S1 ∪ S2) = (W − W̃(S1)) + (W − W̃(S2)).
    idx = {sub: k for k, sub in enumerate(a.subsets)}
    for s1 in DEFAULT_SUBSETS:
        for s2 in DEFAULT_SUBSETS:
            if set(s1) & set(s2):
                continue
            u = tuple(b for b in BLOCK_NAMES if b in s1 or b in s2)
            lhs = W - a.W[idx[u]]
            rhs = (W - a.W[idx[s1]]) + (W - a.W[idx[s2]])
            assert np.linalg.norm(lhs - rhs) <= 8 * EPS * max(nw, np.linalg.norm(f.N))
    # Removed mass = ‖zeroed entries‖_F / ‖T‖_F.
    masks = coupling_masks(f.T, s.n_R)
    tn = np.linalg.norm(f.T)
    for k, sub in enumerate(a.subsets):
        zeroed = np.zeros((n, n), dtype=bool)
        for name in sub:
            zeroed |= masks[name]
        want = np.linalg.norm(f.T[zeroed]) / tn if tn > 0 else 0.0
        assert abs(a.removed_mass[k] - want) <= 1e-12 * want + 1e-300


@settings(max_examples=20)
@given(
    data=st.data(),
    n=st.sampled_from([1, 3, 16, 72]),
    m=st.integers(1, 5),
)
def test_batch_equals_per_model(data, n, m):
    pairs = [data.draw(forms(n)) for _ in range(m)]
    a = ablate([p[0] for p in pairs], [p[1] for p in pairs])
    assert a.W.shape == (m, 8, n, n)
    for k, (f, s) in enumerate(pairs):
        one = ablate(f, s)
        np.testing.assert_array_equal(a.W[k], one.W)
        np.testing.assert_array_equal(a.removed_mass[k], one.removed_mass)
