"""ablate() at every split point and into destinations of every alignment.

The kernel picks its products by the split (stacked C_CR/C_CC products when
``n_R >= n_C``, C_RR from linearity when R is large, the other association of
C_CR when R is small) and writes each subset with vector streaming stores on the
aligned middle and scalar stores on the head and tail: every branch and every
head length is compared with the independent NumPy reference here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from naive_schur import EPS, ablate_reference, family
from rnnschur import ablate, ordered_schur, schur_split
from rnnschur.schur import leading_count

C_BOUND = 16.0  # as in test_ablation.py: c in c·n·ε·‖W‖_F


def _block_moduli(f):
    """Modulus of each diagonal block of the form, in order (non-increasing)."""
    out, i = [], 0
    for size in f.block_sizes:
        out.append(abs(f.eigvals[i]))
        i += int(size)
    return np.array(out)


def _splits_at_every_block(f):
    """One split per distinct n_R reachable by a threshold α in (0, 1]."""
    mod = _block_moduli(f)
    rho = f.spectral_radius
    alphas = [1.0]
    for a, b in itertools.pairwise(mod):
        if a - b > 1e-9 * rho:
            alphas.append(float((a + b) / 2 / rho))
    alphas.append(min(float(mod[-1] / rho) * 0.5, 1.0) if mod[-1] > 0 else 1.0)
    splits = {}
    for alpha in alphas:
        if 0 < alpha <= 1:
            s = schur_split(f, alpha)
            splits[s.n_R] = s
    return splits


@pytest.mark.parametrize("fam", ["gaussian", "repeated", "jordan", "cayley_form"])
@pytest.mark.parametrize("base", ["W", "QTQ"])
def test_every_split_point_matches_reference(rng, fam, base):
    n = 13
    f = ordered_schur(family(fam, rng, n) * 1.7)
    splits = _splits_at_every_block(f)
    assert len(splits) >= 2
    nw = np.linalg.norm(f.W)
    for n_R, s in splits.items():
        assert n_R == leading_count(f, s.alpha * f.spectral_radius)
        a = ablate(f, s, base=base)
        ref, mass = ablate_reference(f.Q, f.T, n_R, a.subsets)
        for k in range(len(a.subsets)):
            assert np.linalg.norm(a.W[k] - ref[k]) <= C_BOUND * n * EPS * nw, (n_R, k)
        np.testing.assert_allclose(a.removed_mass, mass, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 9, 16, 33])
def test_split_through_a_two_by_two_block_region(rng, n):
    # Rotation-like spectra: every eigenvalue in a 2×2 block, splits land between
    # two 2×2 blocks or next to a real one.
    A = family("normal", rng, n) + 0.4 * np.triu(rng.standard_normal((n, n)), 1)
    f = ordered_schur(A)
    for s in _splits_at_every_block(f).values():
        a = ablate([f, f], [s, s])
        ref, _ = ablate_reference(f.Q, f.T, s.n_R, a.subsets)
        bound = C_BOUND * n * EPS * np.linalg.norm(f.W)
        assert np.abs(a.W[1] - ref).max() <= bound


def _view_at(byte_offset, shape, dtype):
    """A C-contiguous writeable array starting ``byte_offset`` bytes into a buffer."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    buf = np.zeros(count * dtype.itemsize + 128, dtype=np.uint8)
    start = (-buf.ctypes.data) % 64 + byte_offset
    return np.ndarray(shape, dtype=dtype, buffer=buf, offset=start)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("offset", [0, 4, 8, 16, 24, 32, 40, 56])
@pytest.mark.parametrize("n", [5, 8, 11])
def test_out_at_any_alignment_is_bitwise_the_allocating_result(rng, dtype, offset, n):
    forms = [ordered_schur(family("gaussian", rng, n)) for _ in range(3)]
    splits = [schur_split(f, 0.7) for f in forms]
    ref = ablate(forms, splits, dtype=dtype).W
    out = _view_at(offset, ref.shape, dtype)
    out[...] = np.nan
    got = ablate(forms, splits, out=out).W
    assert got is out
    np.testing.assert_array_equal(got, ref)


def test_calls_keep_no_form_or_split_alive(rng):
    import gc
    import weakref

    f = ordered_schur(family("gaussian", rng, 9))
    s = schur_split(f, 0.5)
    first = ablate([f, f], [s, s]).W
    np.testing.assert_array_equal(ablate([f, f], [s, s]).W, first)  # warm path
    refs = [weakref.ref(f), weakref.ref(s)]
    del f, s
    gc.collect()
    assert all(r() is None for r in refs)


def test_checked_split_still_rejected_with_another_form():
    f = ordered_schur(np.diag(np.linspace(1.0, 0.1, 9)))  # n_R = 5 at α = 0.5
    g = ordered_schur(np.diag(np.linspace(1.0, 0.6, 9)))  # n_R = 9
    s = schur_split(f, 0.5)
    ablate(f, s)  # s is now known to belong to f
    assert (s.n_R, schur_split(g, 0.5).n_R) == (5, 9)
    with pytest.raises(ValueError, match="was not made from form"):
        ablate(g, s)
