"""Benchmark: ``rnnschur.diagnose`` vs the same computation written with torch.

Problem: a 256-unit tanh RNN (float32, biases, Nx = Ny = 3), 1024 sequences × 100
steps, all 8 coupling subsets, metric FVU. The rollouts are
8 × 100 × 1024 × 2 × (256² + 2·3·256) ≈ 110 GFLOP.

Contenders, each timed alone in its own process (``--worker``):

* ``diagnose``: ``rnnschur.diagnose(net, x, y)`` (ordered Schur, split, Numba ablation,
  one K = 8 stacked rollout in the compiled core, FVU);
* ``torch-<t>``: what a competent torch user writes: ``scipy.linalg.schur`` + LAPACK
  ``dtrexc`` moves into modulus order, the 8 ablated matrices ``Q Z_S(T) Qᵀ`` in
  NumPy, then 8 ``nn.RNN`` + ``nn.Linear`` forward passes and the FVU in torch, with
  ``torch.set_num_threads(t)`` for t = 1 and 2 (its best is reported);
* components: ``core-rollout`` (the K = 8 ``rnnschur.rollout`` alone),
  ``torch-passes-<t>`` (the 8 forwards alone), ``peak`` (a 2048³ float32 GEMM
  through NumPy's BLAS: the machine's measured peak, GFLOP/s).

Timing: before every timed block at least 0.1 s of untimed calls of the same
function; one call per block; median and spread (min..max) over ``--blocks``
blocks. The FVU tables of both full contenders are compared.

Usage: python benchmarks/bench_diagnose.py [--blocks 5] [--hidden 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

T_STEPS, BATCH, NX, NY = 100, 1024, 3, 3
SUBSETS = [
    (),
    ("RR",),
    ("CR",),
    ("CC",),
    ("RR", "CR"),
    ("RR", "CC"),
    ("CR", "CC"),
    ("RR", "CR", "CC"),
]


def problem(hidden: int, seed: int = 0):
    """A trained-looking network (rotation + non-normal part) and flip-flop-like data."""
    rng = np.random.default_rng(seed)
    Qm, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    W_hh = 0.95 * Qm + 0.3 * rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)
    arrays = {
        "W_xh": rng.standard_normal((hidden, NX)),
        "W_hh": W_hh,
        "W_hy": rng.standard_normal((NY, hidden)) / np.sqrt(hidden),
        "b_h": 0.1 * rng.standard_normal(hidden),
        "b_y": 0.1 * rng.standard_normal(NY),
    }
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    pulses = rng.random((T_STEPS, BATCH, NX)) < 0.05
    x = (pulses * rng.choice([-1.0, 1.0], (T_STEPS, BATCH, NX))).astype(np.float32)
    y = np.sign(np.cumsum(x, axis=0) + 1e-3).astype(np.float32)
    return arrays, x, y


# ------------------------------------------------------------------ torch contender


def _blocks(T: np.ndarray, start: int) -> tuple[list[int], list[float]]:
    """Sizes and eigenvalue moduli of the diagonal blocks of T from ``start`` on."""
    n = T.shape[0]
    sizes, mods = [], []
    i = start
    while i < n:
        size = 2 if i + 1 < n and T[i + 1, i] != 0.0 else 1
        sizes.append(size)
        mods.append(
            float(np.max(np.abs(np.linalg.eigvals(T[i : i + size, i : i + size]))))
        )
        i += size
    return sizes, mods


def ordered_schur_lapack(W: np.ndarray):
    """scipy.linalg.schur, then LAPACK dtrexc moves into non-increasing modulus order
    (ties within 1e-8 relative keep their order)."""
    import scipy.linalg as sl
    from scipy.linalg import lapack

    T, Z = sl.schur(W, output="real")
    sizes, mods = _blocks(T, 0)
    filled = 0
    while sizes:
        top = max(mods)
        j = next(k for k, m in enumerate(mods) if m >= top * (1 - 1e-8))
        if j:
            src = filled + sum(sizes[:j])
            T, Z, info = lapack.dtrexc(T, Z, src + 1, filled + 1)
            if info != 0:
                raise RuntimeError(f"dtrexc info={info}")
            sizes.insert(0, sizes.pop(j))
            mods.insert(0, mods.pop(j))
        size_now = 2 if filled + 1 < T.shape[0] and T[filled + 1, filled] != 0.0 else 1
        if size_now != sizes[0]:  # a 2x2 block split while moving: re-read the rest
            sizes, mods = _blocks(T, filled)
            continue
        filled += sizes.pop(0)
        mods.pop(0)
    return T, Z


def ablated_numpy(W: np.ndarray, alpha: float = 0.9):
    T, Q = ordered_schur_lapack(W)
    n = W.shape[0]
    blk = np.zeros(n, dtype=np.int64)
    mods = np.zeros(n)
    i = b = 0
    while i < n:
        size = 2 if i + 1 < n and T[i + 1, i] != 0.0 else 1
        blk[i : i + size] = b
        mods[i : i + size] = np.max(
            np.abs(np.linalg.eigvals(T[i : i + size, i : i + size]))
        )
        i += size
        b += 1
    below = np.nonzero(mods < alpha * mods.max())[0]
    n_R = int(below[0]) if below.size else n
    upper = blk[:, None] < blk[None, :]
    r = np.arange(n) < n_R
    masks = {
        "RR": upper & r[:, None] & r[None, :],
        "CR": r[:, None] & ~r[None, :],
        "CC": upper & ~r[:, None] & ~r[None, :],
    }
    Ws, mass = [], []
    for sub in SUBSETS:
        Zs = T.copy()
        for name in sub:
            Zs[masks[name]] = 0.0
        Ws.append(Q @ Zs @ Q.T)
        mass.append(np.linalg.norm(T - Zs) / np.linalg.norm(T))
    return np.array(Ws), np.array(mass)


def make_torch(arrays, x, y):
    import torch

    nh = arrays["W_hh"].shape[0]
    rnn = torch.nn.RNN(NX, nh)
    lin = torch.nn.Linear(nh, NY)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(arrays["W_xh"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(arrays["b_h"]))
        rnn.bias_hh_l0.zero_()
        lin.weight.copy_(torch.from_numpy(arrays["W_hy"]))
        lin.bias.copy_(torch.from_numpy(arrays["b_y"]))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    y64 = yt.double()
    var = ((y64 - y64.mean(dim=(0, 1))) ** 2).sum()

    def passes(Ws):
        fvu = []
        with torch.no_grad():
            for W in Ws:
                rnn.weight_hh_l0.copy_(torch.from_numpy(W.astype(np.float32)))
                out = lin(rnn(xt)[0])
                fvu.append(float(((out - yt) ** 2).sum(dtype=torch.float64) / var))
        return np.array(fvu)

    def full():
        Ws, _ = ablated_numpy(arrays["W_hh"].astype(np.float64))
        return passes(Ws)

    return full, passes


# ------------------------------------------------------------------------- worker


def timed(fn, blocks: int, budget: float) -> list[float]:
    """``blocks`` timed calls (fewer if ``budget`` seconds run out, at least one)."""
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(blocks):
        if times and time.perf_counter() - start > budget:
            break
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.1:  # warm: >= 0.1 s of untimed calls
            fn()
        t1 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t1)
    return times


def worker(name: str, hidden: int, blocks: int, budget: float) -> dict:
    arrays, x, y = problem(hidden)
    out: dict = {"name": name}
    if name.startswith("torch"):
        import torch

        threads = int(name.rsplit("-", 1)[1])
        torch.set_num_threads(threads)
        full, passes = make_torch(arrays, x, y)
        if name.startswith("torch-passes"):
            Ws, _ = ablated_numpy(arrays["W_hh"].astype(np.float64))
            fn = lambda: passes(Ws)
        else:
            fn = full
            out["table"] = full().tolist()
    elif name == "diagnose":
        import rnnschur

        net = rnnschur.Network(**arrays)
        fn = lambda: rnnschur.diagnose(net, x, y)
        out["table"] = fn().metric.tolist()
    elif name == "core-rollout":
        import rnnschur

        net = rnnschur.Network(**arrays)
        Ws = np.repeat(arrays["W_hh"][None], 8, axis=0)
        fn = lambda: rnnschur.rollout(
            net.W_xh, Ws, net.W_hy, x, b_h=net.b_h, b_y=net.b_y
        )
    elif name == "peak":
        a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
        fn = lambda: a @ a
    else:
        raise SystemExit(f"unknown worker {name}")
    out["times"] = timed(fn, blocks, budget)
    return out


def run(name: str, hidden: int, blocks: int, budget: float) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--hidden",
        str(hidden),
        "--blocks",
        str(blocks),
        "--budget",
        str(budget),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--worker", default=None)
    ap.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="seconds per contender after which no further block starts",
    )
    ap.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).parent / "results" / "bench_diagnose.json",
    )
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.hidden, args.blocks, args.budget)))
        return
    names = [
        "peak",
        "diagnose",
        "core-rollout",
        "torch-1",
        "torch-2",
        "torch-passes-1",
        "torch-passes-2",
    ]
    results = {n: run(n, args.hidden, args.blocks, args.budget) for n in names}
    n = args.hidden
    gflop = 8 * T_STEPS * BATCH * 2 * (n * n + NX * n + NY * n) / 1e9
    med = {k: float(np.median(v["times"])) for k, v in results.items()}
    peak = 2 * 2048**3 / 1e9 / med["peak"]
    best_torch = min(("torch-1", "torch-2"), key=med.__getitem__)
    best_passes = min(("torch-passes-1", "torch-passes-2"), key=med.__getitem__)
    a, b = (
        np.array(results["diagnose"]["table"]),
        np.array(results[best_torch]["table"]),
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"problem: Nh={n}, T={T_STEPS}, B={BATCH}, 8 subsets, {gflop:.0f} GFLOP of rollouts"
    )
    print(f"{'contender':<16} {'median s':>9} {'min..max s':>16}")
    for k, v in results.items():
        if k != "peak":
            print(
                f"{k:<16} {med[k]:9.3f} {min(v['times']):7.3f}..{max(v['times']):.3f}"
            )
    print(f"peak sgemm (BLAS, all threads): {peak:.0f} GFLOP/s")
    print(
        f"diagnose: {gflop / med['diagnose']:.0f} GFLOP/s = {gflop / med['diagnose'] / peak:.0%} of peak"
    )
    print(
        f"core K=8 rollout: {gflop / med['core-rollout']:.0f} GFLOP/s = {gflop / med['core-rollout'] / peak:.0%} of peak"
    )
    print(
        f"speed-up vs {best_torch}: {med[best_torch] / med['diagnose']:.2f}x (passes alone: {best_passes} {med[best_passes]:.3f} s)"
    )
    print(f"FVU tables agree to {np.abs(a - b).max() / np.abs(b).max():.1e} (relative)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"results": results, "median": med, "gflop": gflop, "peak_gflops": peak},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
