"""Plain NumPy forward pass and BPTT of the paper's bias-free tanh RNN (test reference).

Used to check the trainer independently of the compiled core, and to stand in for it
where a test needs a backend it can break on purpose.
"""

from __future__ import annotations

import numpy as np


def rollout(W_xh, W_hh, W_hy, x, *, return_hidden=False, **_):
    T, B, _nx = x.shape
    h = np.zeros((B, W_hh.shape[-1]), dtype=np.result_type(W_hh, x))
    hs = np.empty((T, B, W_hh.shape[-1]), dtype=h.dtype)
    for t in range(T):
        h = np.tanh(x[t] @ W_xh.T + h @ W_hh.T)
        hs[t] = h
    y = hs @ W_hy.T
    return (y, hs) if return_hidden else y


def loss_and_grad(W_xh, W_hh, W_hy, x, y, mask=None, **_):
    y_hat, hs = rollout(W_xh, W_hh, W_hy, x, return_hidden=True)
    m = np.ones(y.shape, bool) if mask is None else np.broadcast_to(mask, y.shape)
    count = m.sum()
    err = np.where(m, y_hat - y, 0)
    loss = float((err.astype(np.float64) ** 2).sum() / count)
    dy = (2.0 / count) * err
    g_hy = np.einsum("tbo,tbh->oh", dy, hs)
    dh_next = np.zeros_like(hs[0])
    g_hh = np.zeros_like(W_hh)
    g_xh = np.zeros_like(W_xh)
    T = x.shape[0]
    for t in range(T - 1, -1, -1):
        dh = dy[t] @ W_hy + dh_next
        da = dh * (1.0 - hs[t] ** 2)
        h_prev = hs[t - 1] if t > 0 else np.zeros_like(hs[0])
        g_hh += da.T @ h_prev
        g_xh += da.T @ x[t]
        dh_next = da @ W_hh
    return loss, {"W_xh": g_xh, "W_hh": g_hh, "W_hy": g_hy}
