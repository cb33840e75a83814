"""Tests of ablate(): against a plain NumPy reference (two products per subset)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from naive_schur import EPS, ablate_reference, coupling_masks, family
from rnnschur import Ablation, ablate, ordered_schur, schur_split
from rnnschur.ablation import DEFAULT_SUBSETS, canonical_subset

C_BOUND = 16.0  # as in test_schur.py: c in c·n·ε·‖W‖_F


def _form(rng, n=24, fam="gaussian", alpha=0.8):
    f = ordered_schur(family(fam, rng, n) * 1.3)
    return f, schur_split(f, alpha)


def test_default_subsets_and_labels(rng):
    f, s = _form(rng)
    a = ablate(f, s)
    assert isinstance(a, Ablation)
    assert a.subsets == DEFAULT_SUBSETS
    assert a.labels == ("none", "RR", "CR", "CC", "RR+CR", "RR+CC", "CR+CC", "RR+CR+CC")
    assert a.W.shape == (8, f.n, f.n)
    assert a.W.dtype == np.float64
    assert a.removed_mass.shape == (8,)
    assert a.index(("T_CC", "T_C->R")) == 6
    with pytest.raises(KeyError):
        ablate(f, s, [("RR",)]).index("CC")


@pytest.mark.parametrize("base", ["W", "QTQ"])
@pytest.mark.parametrize("n", [1, 2, 5, 24, 72])
def test_matches_numpy_reference(rng, n, base):
    f, s = _form(rng, n)
    a = ablate(f, s, base=base)
    ref, mass = ablate_reference(f.Q, f.T, s.n_R, a.subsets)
    nw = np.linalg.norm(f.W)
    # base "QTQ" is the reference's formula up to rounding of the products;
    # base "W" differs from it by the factorisation's backward error.
    for k in range(len(a.subsets)):
        assert np.linalg.norm(a.W[k] - ref[k]) <= C_BOUND * n * EPS * nw
    np.testing.assert_allclose(a.removed_mass, mass, rtol=1e-12, atol=1e-15)


def test_nothing_removed_is_W_and_everything_removed_is_QBQt(rng):
    f, s = _form(rng, 40)
    a = ablate(f, s, [(), ("RR", "CR", "CC")])
    np.testing.assert_array_equal(a.W[0], f.W)
    assert a.removed_mass[0] == 0.0
    QBQ = f.Q @ f.B @ f.Q.T
    assert np.linalg.norm(a.W[1] - QBQ) <= C_BOUND * 40 * EPS * np.linalg.norm(f.W)
    np.testing.assert_allclose(
        a.removed_mass[1], np.linalg.norm(f.N) / np.linalg.norm(f.T), rtol=1e-12
    )
    b = ablate(f, s, [(), ("RR", "CR", "CC")], base="QTQ")
    np.testing.assert_allclose(b.W[0], f.Q @ f.T @ f.Q.T, atol=1e-13)
    np.testing.assert_allclose(b.W[1], QBQ, atol=1e-13)


def test_linearity_and_mass(rng):
    f, s = _form(rng, 30, alpha=0.6)
    a = ablate(f, s)
    W = f.W
    d = {sub: W - a.W[k] for k, sub in enumerate(a.subsets)}
    tol = 1e-13 * np.linalg.norm(W)
    for s1 in DEFAULT_SUBSETS:
        for s2 in DEFAULT_SUBSETS:
            if set(s1) & set(s2):
                continue
            union = canonical_subset(set(s1) | set(s2))
            np.testing.assert_allclose(d[union], d[s1] + d[s2], atol=tol)
    masks = coupling_masks(f.T, s.n_R)
    for k, sub in enumerate(a.subsets):
        removed = np.zeros_like(f.T, dtype=bool)
        for name in sub:
            removed |= masks[name]
        want = np.linalg.norm(f.T[removed]) / np.linalg.norm(f.T)
        assert a.removed_mass[k] == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_batch_equals_single(rng):
    pairs = [_form(rng, 20, alpha=al) for al in (0.3, 0.9, 1.0, 0.5)]
    forms = [p[0] for p in pairs]
    splits = [p[1] for p in pairs]
    a = ablate(forms, splits, [("CR",), ("RR", "CC")])
    assert a.W.shape == (4, 2, 20, 20)
    assert a.removed_mass.shape == (4, 2)
    for m, (f, s) in enumerate(pairs):
        one = ablate(f, s, [("CR",), ("RR", "CC")])
        np.testing.assert_array_equal(a.W[m], one.W)
        np.testing.assert_array_equal(a.removed_mass[m], one.removed_mass)
    b = ablate(tuple(forms), tuple(splits))
    assert b.W.shape == (4, 8, 20, 20)


def test_split_given_as_alpha(rng):
    pairs = [_form(rng, 12, alpha=0.7) for _ in range(3)]
    forms = [p[0] for p in pairs]
    a = ablate(forms, 0.7)
    b = ablate(forms, [p[1] for p in pairs])
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(ablate(forms[0], 0.7).W, b.W[0])
    with pytest.raises(ValueError, match="alpha"):
        ablate(forms[0], 1.5)
    with pytest.raises(TypeError, match="split must be a SchurSplit"):
        ablate(forms[0], True)


def test_edge_splits(rng):
    # n_R = n (zero matrix: rho = 0), so CR and CC are empty.
    f = ordered_schur(np.triu(np.ones((4, 4)), 1))
    s = schur_split(f)
    assert s.n_R == 4
    a = ablate(f, s)
    np.testing.assert_array_equal(a.W[2], f.W)  # CR is empty
    np.testing.assert_array_equal(a.W[3], f.W)  # CC is empty
    ref, _ = ablate_reference(f.Q, f.T, 4, a.subsets)
    np.testing.assert_allclose(a.W, ref, atol=1e-14)
    # A normal matrix has no coupling at all.
    g = ordered_schur(family("orthogonal", rng, 16))
    assert ablate(g, schur_split(g)).removed_mass.max() <= C_BOUND * 16 * EPS
    # n = 1.
    h = ordered_schur(np.array([[0.5]]))
    a1 = ablate(h, schur_split(h))
    np.testing.assert_array_equal(a1.W, np.full((8, 1, 1), 0.5))


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("RR", ("RR",)),
        ("rr", ("RR",)),
        ("T_RR", ("RR",)),
        ("T_C->R", ("CR",)),
        ("T_C→R", ("CR",)),
        ("C->R", ("CR",)),
        ("T_CR", ("CR",)),
        (" cc ", ("CC",)),
        (("CC", "RR", "RR"), ("RR", "CC")),
        ((), ()),
        (frozenset({"T_CC", "CR"}), ("CR", "CC")),
    ],
)
def test_subset_spellings(spelling, canonical):
    assert canonical_subset(spelling) == canonical


def test_bad_subsets(rng):
    f, s = _form(rng, 6)
    with pytest.raises(ValueError, match="unknown block name 'RC'"):
        ablate(f, s, [("RC",)])
    with pytest.raises(ValueError, match="subsets: unknown"):
        ablate(f, s, ["T_RC"])
    with pytest.raises(TypeError, match="subsets: block names must be strings"):
        ablate(f, s, [(1,)])
    for bad in (None, 3, b"RR"):
        with pytest.raises(TypeError, match="subsets: each subset must be a block"):
            ablate(f, s, [bad])
    with pytest.raises(TypeError, match="subsets must be None or an iterable"):
        ablate(f, s, "RR")
    with pytest.raises(TypeError, match="subsets must be None or an iterable"):
        ablate(f, s, 3)
    with pytest.raises(ValueError, match="subsets must not be empty"):
        ablate(f, s, [])


def test_bad_forms_and_splits(rng):
    f, s = _form(rng, 6)
    g, t = _form(rng, 7)
    with pytest.raises(TypeError, match="form must be a SchurForm"):
        ablate(np.eye(6), s)
    with pytest.raises(TypeError, match="split must be a SchurSplit"):
        ablate(f, "0.9")
    with pytest.raises(ValueError, match="split has width 7 but form has width 6"):
        ablate(f, t)
    with pytest.raises(ValueError, match="form: all forms must have the same width"):
        ablate([f, g], [s, t])
    with pytest.raises(ValueError, match="equal lengths"):
        ablate([f, f], [s])
    with pytest.raises(ValueError, match="must not be an empty sequence"):
        ablate([], [])
    with pytest.raises(TypeError, match="split must be a sequence"):
        ablate([f], s)
    with pytest.raises(TypeError, match=r"form\[1\] must be a SchurForm"):
        ablate([f, "x"], [s, s])
    with pytest.raises(ValueError, match="base"):
        ablate(f, s, base="Q")
    # A split of another matrix of the same width: one that cuts a 2x2 block of the
    # form, and one whose n_R is a valid block boundary of it (masks would look fine).
    h = ordered_schur(family("gaussian", np.random.default_rng(123), f.n))
    with pytest.raises(ValueError, match="was not made from form"):
        ablate(h, s)
    with pytest.raises(ValueError, match=r"split\[1\].*was not made from form\[1\]"):
        ablate([f, h], [s, s])
    same = ordered_schur(f.W)  # the same W factored again is the same form
    assert np.array_equal(ablate(same, s).W, ablate(f, s).W)


def test_inputs_not_modified_and_outputs_fresh(rng):
    f, s = _form(rng, 10)
    a = ablate(f, s)
    b = ablate(f, s)
    assert not np.shares_memory(a.W, b.W)
    a.W[0, 0, 0] += 1.0  # outputs are the caller's to modify
    np.testing.assert_array_equal(b.W[0], f.W)


@pytest.mark.parametrize("base", ["W", "QTQ"])
def test_extreme_scales(rng, base):
    # |T| near 1e210 / 1e-272: squared norms over/underflow, the masses must not.
    W = rng.standard_normal((20, 20))
    W = W / (2 * np.abs(W).max())
    f = ordered_schur(W)
    a = ablate(f, 0.6, base=base)
    for k in (700, -900):
        b = ablate(ordered_schur(np.ldexp(W, k)), 0.6, base=base)
        np.testing.assert_array_equal(b.removed_mass, a.removed_mass)
        np.testing.assert_array_equal(b.W, np.ldexp(a.W, k))
    tiny = ordered_schur(np.full((2, 2), 5e-324))  # subnormal entries only
    assert np.isfinite(ablate(tiny, 0.5).removed_mass).all()


def test_relative_mass_zero_matrix():
    f = ordered_schur(np.zeros((3, 3)))
    a = ablate(f, schur_split(f))
    assert np.all(a.removed_mass == 0.0)
    assert not math.isnan(a.removed_mass.sum())


_CONCURRENT = """
import threading
import numpy as np
import rnnschur
rng = np.random.default_rng(0)
forms = [rnnschur.ordered_schur(rng.standard_normal((30, 30))) for _ in range(6)]
ref = rnnschur.ablate(forms, 0.9).W
bad = []
def work():
    for _ in range(10):
        if not np.array_equal(rnnschur.ablate(forms, 0.9).W, ref):
            bad.append(1)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not bad
"""


def test_concurrent_calls_with_workqueue_threading_layer():
    # That layer is not thread-safe: unguarded concurrent calls abort (rc 134).
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    out = subprocess.run(
        [sys.executable, "-c", _CONCURRENT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
