"""The ``cayley_free`` construction: W = O(A) D O(A)^T with every entry of D trained."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnschur import ablate, ordered_schur
from rnnschur.cli import main
from rnnschur.constructions import (
    CONSTRUCTIONS,
    PAPER_CONSTRUCTIONS,
    CayleyMap,
    W_from_cayley,
    block_sizes_of,
    cayley_init,
    cayley_pullback,
    init_params,
)
from rnnschur.sweep.runner import run_cell
from rnnschur.sweep.spec import parse_spec
from rnnschur.tasks import CopyTask, SineGeneration
from rnnschur.training import TrainConfig, evaluate, load, save, train
from rnnschur.training.step import FlatNetwork


def loss_of_W(W, C):
    # smooth, non-quadratic, known gradient
    return float(np.sum(C * W) + 0.5 * np.sum(np.sin(W) ** 2))


def grad_of_W(W, C):
    return C + np.sin(W) * np.cos(W)


def skew(rng, n, scale):
    U = scale * rng.standard_normal((n, n))
    return (U - U.T) / 2


def test_construction_lists():
    assert PAPER_CONSTRUCTIONS == (
        "dense_default",
        "dense_orthogonal",
        "dense_normal",
        "cayley",
    )
    assert (*PAPER_CONSTRUCTIONS, "cayley_free") == CONSTRUCTIONS


@pytest.mark.parametrize("n", [1, 2, 5, 8])
@pytest.mark.parametrize(("a_scale", "d_scale"), [(0.3, 1.0), (2.0, 0.5)])
def test_free_pullback_matches_finite_differences(n, a_scale, d_scale):
    """Every entry of D and every free entry of A (i < j, mirror tied) against
    central differences of the loss through W_from_cayley(free_D=True)."""
    rng = np.random.default_rng(10 * n + int(a_scale))
    A = skew(rng, n, a_scale)
    D = d_scale * rng.standard_normal((n, n))
    C = rng.standard_normal((n, n))
    W = W_from_cayley(A, D, free_D=True)
    dA, dD = cayley_pullback(A, D, grad_of_W(W, C), free_D=True)
    assert np.array_equal(dA, -dA.T)
    eps = 1e-6

    def L(a, d):
        return loss_of_W(W_from_cayley(a, d, free_D=True), C)

    for i in range(n):
        for j in range(n):
            e = np.zeros((n, n))
            e[i, j] = eps
            fd = (L(A, D + e) - L(A, D - e)) / (2 * eps)
            assert dD[i, j] == pytest.approx(fd, rel=1e-6, abs=1e-8), ("D", i, j)
            if i < j:
                ea = e - e.T
                fa = (L(A + ea, D) - L(A - ea, D)) / (2 * eps)
                assert dA[i, j] == pytest.approx(fa, rel=1e-6, abs=1e-8), ("A", i, j)


def test_free_pullback_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    n = 9
    A, D, C = (
        skew(rng, n, 0.5),
        rng.standard_normal((n, n)),
        rng.standard_normal((n, n)),
    )
    iu = np.triu_indices(n, 1)
    va = torch.tensor(A[iu], requires_grad=True)
    Dt = torch.tensor(D, requires_grad=True)
    At = torch.zeros(n, n, dtype=torch.float64).index_put(
        (torch.tensor(iu[0]), torch.tensor(iu[1])), va
    )
    At = At - At.T
    eye = torch.eye(n, dtype=torch.float64)
    O = torch.linalg.solve((eye + At).T, (eye - At).T).T  # (I - A)(I + A)^{-1}
    W = O @ Dt @ O.T
    loss = (torch.tensor(C) * W).sum() + 0.5 * (torch.sin(W) ** 2).sum()
    loss.backward()
    dA, dD = cayley_pullback(A, D, grad_of_W(W.detach().numpy(), C), free_D=True)
    np.testing.assert_allclose(dA[iu], va.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dD, Dt.grad.numpy(), rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_free_map_agrees_with_the_block_map_on_block_form_D(n, seed):
    """On a D in block form both maps give the same W; the free dD summed over each
    block's tied entries is the structured dD, and dA is the same."""
    rng = np.random.default_rng(seed)
    A, D, sizes = cayley_init(n, rng)
    G = rng.standard_normal((n, n))
    blk, free = CayleyMap(A, D, sizes), CayleyMap(A, D, None)
    np.testing.assert_allclose(free.W, blk.W, rtol=0, atol=1e-13)
    dA_b, dD_b = blk.pullback(G)
    dA_f, dD_f = free.pullback(G)
    np.testing.assert_allclose(dA_f, dA_b, rtol=1e-11, atol=1e-11)
    i = 0
    for s in sizes:
        if s == 1:
            assert dD_b[i, i] == pytest.approx(dD_f[i, i], rel=1e-11, abs=1e-11)
        else:
            ga = dD_f[i, i] + dD_f[i + 1, i + 1]
            gb = dD_f[i + 1, i] - dD_f[i, i + 1]
            assert dD_b[i, i] == pytest.approx(ga, rel=1e-11, abs=1e-11)
            assert dD_b[i + 1, i] == pytest.approx(gb, rel=1e-11, abs=1e-11)
        i += s


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("hidden", [5, 12])
def test_init_equals_the_cayley_init(seed, hidden):
    a = init_params("cayley", 3, hidden, 2, np.random.default_rng(seed))
    b = init_params("cayley_free", 3, hidden, 2, np.random.default_rng(seed))
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    # the trainer's first W_hh (free map of the same A, D) is the cayley W_hh
    net = FlatNetwork(b, "cayley_free", np.dtype(np.float64))
    net.refresh()
    np.testing.assert_allclose(net.W_hh, a["W_hh"], rtol=0, atol=1e-14)


def _coupling_mass(W: np.ndarray, alpha: float = 0.9) -> float:
    """Relative Schur mass of all couplings ‖N‖_F / ‖T‖_F (0 for a normal W)."""
    ab = ablate(ordered_schur(W.astype(np.float64)), alpha, [("RR", "CR", "CC")])
    return float(ab.removed_mass[0])


def test_couplings_grow_for_cayley_free_and_stay_zero_for_cayley():
    task = CopyTask(symbols=3, dim=3, lags=6)
    cfg = TrainConfig(epochs=2, batches_per_epoch=10, batch_size=16, lr=1e-2)
    models = {
        c: train(task, c, 12, seed=2, config=cfg, progress=False)
        for c in ("cayley", "cayley_free")
    }
    blk, free = models["cayley"], models["cayley_free"]
    # cayley: D keeps its block form exactly, W (float64, from A and D) is normal up
    # to rounding and its Schur couplings are rounding noise
    A, D, sizes = (blk.cayley[k] for k in ("A", "D", "D_blocks"))
    assert np.array_equal(block_sizes_of(D), sizes)
    W = W_from_cayley(A.astype(float), D.astype(float), block_sizes=sizes)
    assert np.abs(W @ W.T - W.T @ W).max() < 1e-12
    assert _coupling_mass(W) < 1e-12
    # cayley_free: entries outside the initial blocks trained, couplings non-zero
    assert set(free.cayley) == {"A", "D"}
    init = init_params(
        "cayley_free",
        3,
        12,
        3,
        np.random.default_rng(np.random.SeedSequence(2).spawn(2)[0]),
    )
    outside = init["D"] == 0
    Df = free.cayley["D"]
    assert np.count_nonzero(Df[outside]) == np.count_nonzero(outside)
    Wf = W_from_cayley(free.cayley["A"].astype(float), Df.astype(float), free_D=True)
    np.testing.assert_array_equal(free.W_hh, Wf.astype(np.float32))
    assert np.abs(Wf @ Wf.T - Wf.T @ Wf).max() > 1e-4
    assert _coupling_mass(Wf) > 1e-3


def test_checkpoint_network_evaluate_and_cli_ablate(tmp_path, capsys):
    cfg = TrainConfig(epochs=1, batches_per_epoch=4, batch_size=8, eval_size=16)
    m = train(SineGeneration(length=10), "cayley_free", 8, seed=1, config=cfg)
    path = save(tmp_path / "m.npz", m)
    back = load(path)
    assert back.construction == "cayley_free"
    assert set(back.cayley) == {"A", "D"}
    for k in ("A", "D"):
        assert np.array_equal(back.cayley[k], m.cayley[k])
    assert np.array_equal(back.network.W_hh, m.W_hh)
    assert evaluate(back)["fvu"] == pytest.approx(m.history["eval_fvu"][-1])
    assert main(["ablate", str(path), "--eval-size", "8"]) == 0
    text = capsys.readouterr().out
    assert "cayley_free" in text


def test_checkpoint_rejects_inconsistent_cayley_free_content(tmp_path):
    cfg = TrainConfig(epochs=1, batches_per_epoch=2, batch_size=4, eval_size=8)
    m = train(SineGeneration(length=6), "cayley_free", 6, seed=0, config=cfg)
    from dataclasses import replace

    from rnnschur.training import CheckpointError

    bad_D = dict(m.cayley, D=m.cayley["D"] + np.float32(0.5))
    save(tmp_path / "a.npz", replace(m, cayley=bad_D))
    with pytest.raises(CheckpointError, match="W_hh does not equal"):
        load(tmp_path / "a.npz")
    extra = dict(m.cayley, D_blocks=np.ones(6, dtype=np.int64))
    save(tmp_path / "b.npz", replace(m, cayley=extra))
    with pytest.raises(CheckpointError, match="cayley_free"):
        load(tmp_path / "b.npz")


def test_sweep_cell_with_cayley_free():
    spec = parse_spec(
        {
            "train": {"epochs": 1, "batches_per_epoch": 2, "batch_size": 8},
            "diagnose": {"eval_size": 16},
            "grid": [{"task": "sine", "construction": "cayley_free", "hidden": 6}],
        }
    )
    (cell,) = spec.cells
    assert cell.key.startswith("sine-cayley_free-h6-r0-")
    out = run_cell(cell.to_dict())
    assert out["status"] == "ok", out["message"]
    assert len(out["records"]) == 8
    full = next(r for r in out["records"] if r["subset"] == "RR+CR+CC")
    assert full["removed_mass"] > 0.0


@pytest.mark.parametrize(
    ("call", "exc", "word"),
    [
        (
            lambda: W_from_cayley(
                np.zeros((3, 3)), np.eye(3), block_sizes=[1, 1, 1], free_D=True
            ),
            ValueError,
            "block_sizes",
        ),
        (
            lambda: W_from_cayley(np.zeros((3, 3)), np.eye(3), free_D=1),
            TypeError,
            "free_D",
        ),
        (
            lambda: W_from_cayley(
                np.zeros((3, 3)), np.full((3, 3), np.nan), free_D=True
            ),
            ValueError,
            "finite",
        ),
        (
            lambda: W_from_cayley(np.zeros((3, 3)), np.eye(4), free_D=True),
            ValueError,
            "D",
        ),
        (
            lambda: cayley_pullback(np.ones((2, 2)), np.eye(2), np.eye(2), free_D=True),
            ValueError,
            "skew",
        ),
        (lambda: W_from_cayley(np.zeros((3, 3)), np.ones((3, 3))), ValueError, "D"),
    ],
)
def test_free_D_bad_inputs(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
