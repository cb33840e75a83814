"""RNN core (forward, forward + BPTT, K = 8 stack) vs torch and plain NumPy, float32.

Contenders per case: rnnschur at 1 and 2 threads (plus the forced AVX2 path on an
AVX-512 build), torch ``nn.RNN`` at 1 and 2 threads (each its own process), and
NumPy with the input projection hoisted out of the time loop, at 1 and 2 BLAS
threads. Timing rules: benchmarks/harness.py.

    python benchmarks/bench_rnn.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os
import sys

from harness import Contender, Target

# (name, T, B, Nx, Nh, Ny): the paper's shapes (B = 64) and two large ones.
SHAPES = {
    "flipflop": (25, 64, 3, 64, 3),
    "sine": (50, 64, 1, 64, 1),
    "cdi": (48, 64, 4, 64, 1),
    "copy": (136, 64, 8, 72, 8),
    "nh256": (100, 64, 8, 256, 8),
    "nh1024": (100, 64, 8, 1024, 8),
}
QUICK_SHAPES = ("flipflop", "copy", "nh256")
K_STACK = 8
OPS = {"fwd": "forward", "fwdbwd": "forward+BPTT", "stack": f"forward K={K_STACK}"}


def _problem(shape: str, K: int | None = None, seed: int = 0):
    import numpy as np

    T, B, Nx, Nh, Ny = SHAPES[shape]
    rng = np.random.default_rng(seed)
    W_hh_shape = (Nh, Nh) if K is None else (K, Nh, Nh)
    f = np.float32
    return {
        "W_xh": (rng.standard_normal((Nh, Nx)) / np.sqrt(Nx)).astype(f),
        "W_hh": (rng.standard_normal(W_hh_shape) / np.sqrt(Nh)).astype(f),
        "W_hy": (rng.standard_normal((Ny, Nh)) / np.sqrt(Nh)).astype(f),
        "x": rng.standard_normal((T, B, Nx)).astype(f),
        "y": rng.standard_normal((T, B, Ny)).astype(f),
    }


def make_rnnschur(threads: int, shape: str, op: str):
    import rnnschur
    from rnnschur import _core

    want = os.environ.get("RNNSCHUR_SIMD")
    if want and _core.simd_level() != want:
        msg = f"RNNSCHUR_SIMD={want} not honoured (running {_core.simd_level()})"
        raise RuntimeError(msg)
    p = _problem(shape, K=K_STACK if op == "stack" else None)
    a = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    if op == "fwdbwd":

        def fn():
            rnnschur.loss_and_grad(*a, p["y"], n_threads=threads)

    else:

        def fn():
            rnnschur.rollout(*a, n_threads=threads)

    return fn, {"simd_level": _core.simd_level()}


def make_numpy(threads: int, shape: str, op: str):
    """What a competent NumPy user writes: projection hoisted, one GEMM per step."""
    import numpy as np

    del threads  # set through OPENBLAS_NUM_THREADS by the harness
    p = _problem(shape, K=K_STACK if op == "stack" else None)
    W_xh, W_hh, W_hy, x, y = (p[k] for k in ("W_xh", "W_hh", "W_hy", "x", "y"))
    T, B, _ = x.shape
    Nh = W_hh.shape[-1]
    lead = (K_STACK,) if op == "stack" else ()
    WhhT = np.ascontiguousarray(np.swapaxes(W_hh, -1, -2))
    WxhT, WhyT = W_xh.T.copy(), W_hy.T.copy()

    def forward():
        P = x @ WxhT
        H = np.empty((*lead, T, B, Nh), np.float32)
        h = np.zeros((*lead, B, Nh), np.float32)
        for t in range(T):
            h = np.tanh(P[t] + h @ WhhT)
            H[..., t, :, :] = h
        return H, H @ WhyT

    def fwdbwd():
        H, yhat = forward()
        dy = (yhat - y) * np.float32(2.0 / y.size)
        gWhy = dy.reshape(-1, dy.shape[-1]).T @ H.reshape(-1, Nh)
        G = dy @ W_hy
        dA = np.empty_like(H)
        da = np.zeros((B, Nh), np.float32)
        for t in range(T - 1, -1, -1):
            da = (G[t] + da @ W_hh) * (1 - H[t] * H[t])
            dA[t] = da
        Hprev = np.concatenate([np.zeros((1, B, Nh), np.float32), H[:-1]])
        gWhh = dA.reshape(-1, Nh).T @ Hprev.reshape(-1, Nh)
        gWxh = dA.reshape(-1, Nh).T @ x.reshape(-1, x.shape[-1])
        return gWhh, gWxh, gWhy

    return fwdbwd if op == "fwdbwd" else forward


def make_torch(threads: int, shape: str, op: str):
    import torch

    torch.set_num_threads(threads)  # once per process: changing it later is slow
    p = _problem(shape, K=K_STACK if op == "stack" else None)
    _, _, Nx, Nh, Ny = SHAPES[shape]

    def module(W_hh):
        rnn = torch.nn.RNN(Nx, Nh, nonlinearity="tanh", bias=False)
        lin = torch.nn.Linear(Nh, Ny, bias=False)
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(p["W_xh"]))
            rnn.weight_hh_l0.copy_(torch.from_numpy(W_hh))
            lin.weight.copy_(torch.from_numpy(p["W_hy"]))
        return rnn, lin

    x, y = torch.from_numpy(p["x"]), torch.from_numpy(p["y"])
    mods = [module(w) for w in (p["W_hh"] if op == "stack" else [p["W_hh"]])]

    def forward():
        with torch.no_grad():
            for rnn, lin in mods:
                lin(rnn(x)[0])

    def fwdbwd():
        rnn, lin = mods[0]
        rnn.zero_grad(set_to_none=True)
        lin.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(lin(rnn(x)[0]), y).backward()

    return (fwdbwd if op == "fwdbwd" else forward), {"torch_threads": threads}


def flops(shape: str, op: str) -> float:
    T, B, Nx, Nh, Ny = SHAPES[shape]
    per_step = 2.0 * B * (Nh * Nh + Nh * Nx + Nh * Ny)
    return {"fwd": 1, "stack": K_STACK, "fwdbwd": 3}[op] * T * per_step


def _cases(quick: bool) -> list[tuple[str, str]]:
    shapes = QUICK_SHAPES if quick else tuple(SHAPES)
    out = [(s, op) for s in shapes for op in ("fwd", "fwdbwd")]
    return [*out, ("copy", "stack")]


def case_name(shape: str, op: str) -> str:
    return f"{shape} {OPS[op]}"


def contenders(
    quick: bool = False, max_threads: int = 2, variants: tuple[str, ...] = ()
) -> list[Contender]:
    threads = sorted({1, max_threads})
    out = []
    for shape, op in _cases(quick):
        common = {
            "bench": "rnn",
            "case": case_name(shape, op),
            "kwargs": {"shape": shape, "op": op},
            "flops": flops(shape, op),
            "dtype": "float32",
        }
        for t in threads:
            out.append(
                Contender(
                    name="rnnschur",
                    role="subject",
                    factory="bench_rnn:make_rnnschur",
                    threads=t,
                    **common,
                )
            )
            for level in variants:
                out.append(
                    Contender(
                        name="rnnschur",
                        role="variant",
                        factory="bench_rnn:make_rnnschur",
                        threads=t,
                        env={"RNNSCHUR_SIMD": level},
                        variant=f"{level} forced",
                        **common,
                    )
                )
        for lib in ("torch", "numpy"):
            for t in threads:
                out.append(
                    Contender(
                        name=lib,
                        role="baseline",
                        factory=f"bench_rnn:make_{lib}",
                        threads=t,
                        **common,
                    )
                )
    return out


def targets() -> list[Target]:
    return [
        Target(
            case=case_name("copy", "stack"),
            baseline="torch",
            minimum=6.0,
            note="K = 8 stack vs 8 torch forward calls at torch's best thread count",
        )
    ]


if __name__ == "__main__":
    from run import main

    sys.exit(main(["--only", "rnn", *sys.argv[1:]]))
