"""Plain NumPy reference for the RNN kernels (loops over time only).

Computes in float64 by default; ``dtype=np.float32`` runs the same straightforward
algorithm in float32, which tests use to measure how much error float32 arithmetic
itself makes on a given problem (saturated units lose most digits of ``1 − h²``);
``tanh`` lets such a run use the kernels' own tanh instead of ``np.tanh``.
``leak`` (in (0, 1], 1 by default) gives the leaky recurrence
``h_t = (1 − leak) h_{t−1} + leak tanh(a_t)``.
"""

from __future__ import annotations

import numpy as np


def rollout(
    W_xh,
    W_hh,
    W_hy,
    x,
    b_h=None,
    b_y=None,
    h0=None,
    dtype=np.float64,
    tanh=np.tanh,
    leak=1.0,
):
    """Returns (y, h) with y (T, B, Ny), h (T, B, Nh); single W_hh only."""
    y, hs, _ = _forward(W_xh, W_hh, W_hy, x, b_h, b_y, h0, dtype, tanh, leak)
    return y, hs


def _forward(W_xh, W_hh, W_hy, x, b_h, b_y, h0, dtype, tanh, leak):
    """(y, h, u): u_t = tanh(a_t) is the state update before the leak."""
    W_xh, W_hh, W_hy, x = (np.asarray(a, dtype=dtype) for a in (W_xh, W_hh, W_hy, x))
    T, B, _ = x.shape
    Nh, Ny = W_hh.shape[0], W_hy.shape[0]
    bh = np.zeros(Nh, dtype) if b_h is None else np.asarray(b_h, dtype=dtype)
    by = np.zeros(Ny, dtype) if b_y is None else np.asarray(b_y, dtype=dtype)
    h = (
        np.zeros((B, Nh), dtype)
        if h0 is None
        else np.broadcast_to(h0, (B, Nh)).astype(dtype)
    )
    hs = np.zeros((T, B, Nh), dtype)
    us = np.zeros((T, B, Nh), dtype)
    a = dtype(leak)
    for t in range(T):
        u = tanh(x[t] @ W_xh.T + h @ W_hh.T + bh)
        h = u if leak == 1 else (1 - a) * h + a * u
        hs[t] = h
        us[t] = u
    return hs @ W_hy.T + by, hs, us


def loss_and_grad(
    W_xh,
    W_hh,
    W_hy,
    x,
    y,
    mask=None,
    b_h=None,
    b_y=None,
    dtype=np.float64,
    tanh=np.tanh,
    leak=1.0,
):
    """Masked MSE and BPTT gradients, written independently of the C++ code.

    With a leak, dL/dh_t = W_hy^T dy_t + W_hh^T da_{t+1} + (1 − leak) dL/dh_{t+1}
    and da_t = leak (1 − u_t²) dL/dh_t.
    """
    W_xh, W_hh, W_hy, x, y = (
        np.asarray(a, dtype=dtype) for a in (W_xh, W_hh, W_hy, x, y)
    )
    T, B, _ = x.shape
    yhat, hs, us = _forward(W_xh, W_hh, W_hy, x, b_h, b_y, None, dtype, tanh, leak)
    m = (
        np.ones(y.shape, dtype)
        if mask is None
        else np.broadcast_to(mask, y.shape).astype(dtype)
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
    db_h = np.zeros(W_hh.shape[0], dtype)
    da_next = np.zeros((B, W_hh.shape[0]), dtype)
    dh_next = np.zeros((B, W_hh.shape[0]), dtype)
    a = dtype(leak)
    for t in range(T - 1, -1, -1):
        dh = dy[t] @ W_hy + da_next @ W_hh + (1 - a) * dh_next
        da = a * dh * (1.0 - us[t] ** 2)
        dh_next = dh
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
