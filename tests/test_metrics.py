from __future__ import annotations

import numpy as np
import pytest

from rnnschur.metrics import delta_fvu, fvu, replay_accuracy, s_delta_t


def test_replay_accuracy_hand_computed():
    # T=2, B=1, Ny=2; targets ±1.
    y = np.array([[[1.0, -1.0]], [[-1.0, 1.0]]])
    y_hat = np.array([[[0.3, -2.0]], [[0.1, 0.0]]])  # right, right, wrong, zero=wrong
    assert replay_accuracy(y_hat, y) == pytest.approx(0.5)
    mask = np.array([[[True]], [[False]]])  # only t=0 counts
    assert replay_accuracy(y_hat, y, mask) == pytest.approx(1.0)


def test_replay_accuracy_stack_matches_individual_calls(rng):
    y = np.sign(rng.standard_normal((5, 3, 4)))
    stack = rng.standard_normal((2, 3, 5, 3, 4))
    mask = rng.random((5, 1, 4)) < 0.6
    mask[0, 0, 0] = True
    got = replay_accuracy(stack, y, mask)
    assert got.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert got[i, j] == pytest.approx(replay_accuracy(stack[i, j], y, mask))


def test_fvu_hand_computed():
    # One output dim, targets 0, 2 (mean 1, variance sum 2); errors 1 and 0.
    y = np.array([[[0.0]], [[2.0]]])
    y_hat = np.array([[[1.0]], [[2.0]]])
    assert fvu(y_hat, y) == pytest.approx(0.5)
    # The mean predictor has FVU 1, the perfect one 0.
    assert fvu(np.ones_like(y), y) == pytest.approx(1.0)
    assert fvu(y.copy(), y) == 0.0


def test_fvu_uses_per_dimension_mean_and_mask():
    y = np.array([[[0.0, 10.0]], [[2.0, 14.0]], [[100.0, -5.0]]])
    y_hat = y + np.array([[[1.0, 0.0]], [[0.0, 2.0]], [[50.0, 50.0]]])
    mask = np.array([[[True]], [[True]], [[False]]])
    # Selected: dim 0 targets {0,2} mean 1 -> SS 2; dim 1 targets {10,14} mean 12 -> SS 8.
    # Errors: 1 + 4 = 5.
    assert fvu(y_hat, y, mask) == pytest.approx(5.0 / 10.0)


def test_fvu_matches_direct_formula(rng):
    y = rng.standard_normal((7, 5, 3))
    y_hat = y + 0.1 * rng.standard_normal((4, 7, 5, 3))
    y_bar = y.reshape(-1, 3).mean(axis=0)
    expected = ((y_hat - y) ** 2).sum(axis=(1, 2, 3)) / ((y - y_bar) ** 2).sum()
    np.testing.assert_allclose(fvu(y_hat, y), expected, rtol=1e-12)


def test_delta_fvu_and_s_delta_t():
    d = delta_fvu([0.3, 0.1], 0.1)
    np.testing.assert_allclose(d, [0.2, 0.0])
    s = s_delta_t(d, [0.5, 0.0])
    assert s[0] == pytest.approx(0.4)
    assert np.isnan(s[1])
    with pytest.raises(ValueError, match="removed_mass"):
        s_delta_t(0.1, -1.0)


@pytest.mark.parametrize(
    ("y_hat", "y", "mask", "err", "match"),
    [
        (np.zeros((2, 3)), np.zeros((2, 3)), None, ValueError, "ndim"),
        (
            np.zeros((2, 3, 1)),
            np.zeros((2, 4, 1)),
            None,
            ValueError,
            "y must have shape",
        ),
        (np.zeros((2, 3, 1), int), np.zeros((2, 3, 1)), None, TypeError, "y_hat"),
        (
            np.zeros((2, 3, 1)),
            np.zeros((2, 3, 1)),
            np.ones((2, 3, 1)),
            TypeError,
            "mask",
        ),
        (
            np.zeros((2, 3, 1)),
            np.zeros((2, 3, 1)),
            np.ones((5, 1), bool),
            ValueError,
            "mask",
        ),
        (
            np.zeros((2, 3, 1)),
            np.zeros((2, 3, 1)),
            np.zeros((2, 3, 1), bool),
            ValueError,
            "no entries",
        ),
    ],
)
def test_metric_input_errors(y_hat, y, mask, err, match):
    with pytest.raises(err, match=match):
        replay_accuracy(y_hat, y, mask)


def test_fvu_of_constant_target_is_refused():
    y = np.ones((3, 2, 1))
    with pytest.raises(ValueError, match="zero variance"):
        fvu(y, y)


def test_targets_are_checked():
    y = np.array([[[1.0]], [[0.5]]])
    with pytest.raises(ValueError, match="±1"):
        replay_accuracy(np.ones_like(y), y)
    y[1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fvu(np.ones_like(y), y)
    # Entries outside the mask may hold anything.
    mask = np.array([[[True]], [[False]]])
    assert replay_accuracy(np.ones_like(y), np.where(mask, 1.0, y), mask) == 1.0


def test_s_delta_t_shape_mismatch_names_arguments():
    with pytest.raises(ValueError, match="removed_mass"):
        s_delta_t(np.zeros(3), np.ones(2))
