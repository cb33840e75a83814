"""Plain NumPy reference for the RNN kernels (float64, loops over time only)."""

from __future__ import annotations

import numpy as np


def rollout(W_xh, W_hh, W_hy, x, b_h=None, b_y=None, h0=None):
    """Returns (y, h) with y (T, B, Ny), h (T, B, Nh); single W_hh only."""
    W_xh, W_hh, W_hy, x = (
        np.asarray(a, dtype=np.float64) for a in (W_xh, W_hh, W_hy, x)
    )
    T, B, _ = x.shape
    Nh, Ny = W_hh.shape[0], W_hy.shape[0]
    bh = np.zeros(Nh) if b_h is None else np.asarray(b_h, dtype=np.float64)
    by = np.zeros(Ny) if b_y is None else np.asarray(b_y, dtype=np.float64)
    h = (
        np.zeros((B, Nh))
        if h0 is None
        else np.broadcast_to(h0, (B, Nh)).astype(np.float64)
    )
    hs = np.zeros((T, B, Nh))
    for t in range(T):
        h = np.tanh(x[t] @ W_xh.T + h @ W_hh.T + bh)
        hs[t] = h
    return hs @ W_hy.T + by, hs


def loss_and_grad(W_xh, W_hh, W_hy, x, y, mask=None, b_h=None, b_y=None):
    """Masked MSE and BPTT gradients, written independently of the C++ code."""
    W_xh, W_hh, W_hy, x, y = (
        np.asarray(a, dtype=np.float64) for a in (W_xh, W_hh, W_hy, x, y)
    )
    T, B, _ = x.shape
    yhat, hs = rollout(W_xh, W_hh, W_hy, x, b_h, b_y)
    m = (
        np.ones(y.shape)
        if mask is None
        else np.broadcast_to(mask, y.shape).astype(float)
    )
    n = m.sum()
    r = (yhat - y) * m
    loss = float((r * r).sum() / n)
    dy = 2.0 * r / n
    g = {
        "W_hy": np.einsum("tbo,tbj->oj", dy, hs),
        "W_hh": np.zeros_like(W_hh),
        "W_xh": np.zeros_like(W_xh),
    }
    db_h = np.zeros(W_hh.shape[0])
    da_next = np.zeros((B, W_hh.shape[0]))
    for t in range(T - 1, -1, -1):
        dh = dy[t] @ W_hy + da_next @ W_hh
        da = dh * (1.0 - hs[t] ** 2)
        h_prev = hs[t - 1] if t > 0 else np.zeros_like(hs[0])
        g["W_hh"] += da.T @ h_prev
        g["W_xh"] += da.T @ x[t]
        db_h += da.sum(axis=0)
        da_next = da
    if b_h is not None:
        g["b_h"] = db_h
    if b_y is not None:
        g["b_y"] = dy.sum(axis=(0, 1))
    return loss, g
