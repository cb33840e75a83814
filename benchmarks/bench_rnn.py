"""Benchmark of the RNN core against torch (optional) and plain NumPy.

Each contender runs in its own worker process with its thread count fixed once at
start (torch: ``torch.set_num_threads``; NumPy: ``OPENBLAS_NUM_THREADS`` & co. set
before import). The parent interleaves the contenders block by block (≈0.2 s of
calls each, with a 0.3 s pause between libraries so that one library's spinning
worker threads do not steal the core from the next) and reports medians over the
blocks, plus speed-up ratios from the same run.

Usage::

    python benchmarks/bench_rnn.py [--blocks 7] [--threads 2] [--quick]
        [--json benchmarks/results/bench_rnn.json]

torch is optional (``pip install ".[bench]"``): without it its columns read n/a.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# (name, T, B, Nx, Nh, Ny): the paper's shapes (B = 64) and two large ones.
SHAPES = [
    ("flipflop", 25, 64, 3, 64, 3),
    ("sine", 50, 64, 1, 64, 1),
    ("cdi", 48, 64, 4, 64, 1),
    ("copy", 136, 64, 8, 72, 8),
    ("nh256", 100, 64, 8, 256, 8),
    ("nh1024", 100, 64, 8, 1024, 8),
]
K_STACK = 8
BLOCK_SECONDS = 0.2
PAUSE_SECONDS = 0.3


# --------------------------------------------------------------------------
# worker side


def _problem(shape, dtype, K=None, seed=0):
    import numpy as np

    _, T, B, Nx, Nh, Ny = shape
    rng = np.random.default_rng(seed)
    W_hh_shape = (Nh, Nh) if K is None else (K, Nh, Nh)
    return {
        "W_xh": (rng.standard_normal((Nh, Nx)) / np.sqrt(Nx)).astype(dtype),
        "W_hh": (rng.standard_normal(W_hh_shape) / np.sqrt(Nh)).astype(dtype),
        "W_hy": (rng.standard_normal((Ny, Nh)) / np.sqrt(Nh)).astype(dtype),
        "x": rng.standard_normal((T, B, Nx)).astype(dtype),
        "y": rng.standard_normal((T, B, Ny)).astype(dtype),
    }


def _ops_rnnschur(shape, n_threads):
    import numpy as np

    import rnnschur

    p = _problem(shape, np.float32)
    ps = _problem(shape, np.float32, K=K_STACK)

    def fwd():
        rnnschur.rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"], n_threads=n_threads)

    def fwdbwd():
        rnnschur.loss_and_grad(
            p["W_xh"], p["W_hh"], p["W_hy"], p["x"], p["y"], n_threads=n_threads
        )

    def stack():
        rnnschur.rollout(
            ps["W_xh"], ps["W_hh"], ps["W_hy"], ps["x"], n_threads=n_threads
        )

    return {"fwd": fwd, "fwdbwd": fwdbwd, "stack": stack}


def _ops_numpy(shape):
    """Plain NumPy: input projection hoisted out of the time loop."""
    import numpy as np

    p = _problem(shape, np.float32)
    ps = _problem(shape, np.float32, K=K_STACK)
    W_xh, W_hh, W_hy, x, y = (p[k] for k in ("W_xh", "W_hh", "W_hy", "x", "y"))
    T, B, _ = x.shape
    Nh = W_hh.shape[0]
    WhhT, WxhT, WhyT = W_hh.T.copy(), W_xh.T.copy(), W_hy.T.copy()

    def forward():
        P = x @ WxhT
        H = np.empty((T, B, Nh), np.float32)
        h = np.zeros((B, Nh), np.float32)
        for t in range(T):
            h = np.tanh(P[t] + h @ WhhT)
            H[t] = h
        return H, H @ WhyT

    def fwd():
        forward()

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

    WsT = np.ascontiguousarray(ps["W_hh"].transpose(0, 2, 1))

    def stack():
        P = ps["x"] @ ps["W_xh"].T
        h = np.zeros((K_STACK, B, Nh), np.float32)
        H = np.empty((K_STACK, T, B, Nh), np.float32)
        for t in range(T):
            h = np.tanh(P[t] + h @ WsT)
            H[:, t] = h
        return H @ ps["W_hy"].T

    def matmul():  # the per-step GEMM shape: (B x Nh) @ (Nh x Nh)
        np.matmul(hm, WhhT, out=om)

    hm = np.tanh(np.random.default_rng(1).standard_normal((B, Nh))).astype(np.float32)
    om = np.empty_like(hm)
    return {"fwd": fwd, "fwdbwd": fwdbwd, "stack": stack, "matmul": matmul}


def _ops_torch(shape):
    import numpy as np
    import torch

    p = _problem(shape, np.float32)
    ps = _problem(shape, np.float32, K=K_STACK)
    _, _, _, Nx, Nh, Ny = shape

    def make(W_hh):
        rnn = torch.nn.RNN(Nx, Nh, nonlinearity="tanh", bias=False)
        lin = torch.nn.Linear(Nh, Ny, bias=False)
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(p["W_xh"]))
            rnn.weight_hh_l0.copy_(torch.from_numpy(W_hh))
            lin.weight.copy_(torch.from_numpy(p["W_hy"]))
        return rnn, lin

    rnn, lin = make(p["W_hh"])
    x = torch.from_numpy(p["x"])
    y = torch.from_numpy(p["y"])
    mods = [make(ps["W_hh"][k]) for k in range(K_STACK)]

    def fwd():
        with torch.no_grad():
            lin(rnn(x)[0])

    def fwdbwd():
        rnn.zero_grad(set_to_none=True)
        lin.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(lin(rnn(x)[0]), y)
        loss.backward()

    def stack():
        with torch.no_grad():
            for r, li in mods:
                li(r(x)[0])

    return {"fwd": fwd, "fwdbwd": fwdbwd, "stack": stack}


def worker(lib: str, n_threads: int) -> None:
    """Line protocol on stdin/stdout: '<shape> <op> <reps>' -> seconds per call."""
    if lib == "torch":
        import torch

        torch.set_num_threads(n_threads)
    ops = {}
    for line in sys.stdin:
        name, op, reps = line.split()
        if name not in ops:
            shape = next(s for s in SHAPES if s[0] == name)
            if lib == "rnnschur":
                ops[name] = _ops_rnnschur(shape, n_threads)
            elif lib == "numpy":
                ops[name] = _ops_numpy(shape)
            else:
                ops[name] = _ops_torch(shape)
        f = ops[name].get(op)
        if f is None:
            print("nan", flush=True)
            continue
        n = int(reps)
        if n == 0:  # calibration: one warm-up call, then time one call
            f()
            t0 = time.perf_counter()
            f()
            print(time.perf_counter() - t0, flush=True)
            continue
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        print((time.perf_counter() - t0) / n, flush=True)


# --------------------------------------------------------------------------
# parent side


class Worker:
    def __init__(self, lib: str, n_threads: int):
        env = dict(os.environ)
        if lib == "numpy":
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(n_threads)
        self.label = f"{lib}/{n_threads}t"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", lib, str(n_threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, name: str, op: str, reps: int) -> float:
        self.proc.stdin.write(f"{name} {op} {reps}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            msg = f"worker {self.label} died"
            raise RuntimeError(msg)
        return float(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def _flops(shape, op):
    _, T, B, Nx, Nh, Ny = shape
    per_step = 2.0 * B * (Nh * Nh + Nh * Nx + Nh * Ny)
    if op == "fwd":
        return T * per_step
    if op == "stack":
        return K_STACK * T * per_step
    if op == "matmul":
        return 2.0 * B * Nh * Nh
    return 3 * T * per_step  # forward, dL/dh through time, weight gradients


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--worker", nargs=2, metavar=("LIB", "THREADS"), help=argparse.SUPPRESS
    )
    ap.add_argument("--blocks", type=int, default=7, help="interleaved blocks (median)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="small shapes only, 3 blocks")
    ap.add_argument("--shapes", help="comma-separated subset of shape names")
    ap.add_argument("--json", default="benchmarks/results/bench_rnn.json")
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return 0

    import numpy as np

    import rnnschur

    shapes = SHAPES
    if args.quick:
        shapes = [s for s in SHAPES if s[4] <= 72]
        args.blocks = min(args.blocks, 3)
    if args.shapes:
        wanted = args.shapes.split(",")
        shapes = [s for s in SHAPES if s[0] in wanted]
    nt = args.threads
    have_torch = _has_torch()
    configs = [("rnnschur", nt), ("rnnschur", 1), ("numpy", 1)]
    if have_torch:
        configs += [("torch", nt), ("torch", 1)]
    workers = {f"{lib}/{n}t": Worker(lib, n) for lib, n in configs}
    jobs = []
    for s in shapes:
        for op in ("fwd", "fwdbwd", "stack", "matmul"):
            if op == "stack" and s[0] != "copy":
                continue
            jobs.append((s, op))
    times: dict[tuple[str, str, str], list[float]] = {}
    reps: dict[tuple[str, str, str], int] = {}
    try:
        for s, op in jobs:
            for label, w in workers.items():
                if op == "matmul" and not label.startswith("numpy"):
                    continue
                t = w.ask(s[0], op, 0)
                reps[(s[0], op, label)] = (
                    0 if math.isnan(t) else max(1, int(BLOCK_SECONDS / t))
                )
        for b in range(args.blocks):
            for s, op in jobs:
                for label, w in workers.items():
                    n = reps.get((s[0], op, label), 0)
                    if n == 0:
                        continue
                    times.setdefault((s[0], op, label), []).append(w.ask(s[0], op, n))
                    time.sleep(PAUSE_SECONDS)
            print(f"block {b + 1}/{args.blocks} done", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()

    med = {k: _median(v) for k, v in times.items()}

    def ms(name, op, label):
        v = med.get((name, op, label))
        return None if v is None else v * 1e3

    rows = []
    for s, op in jobs:
        if op == "matmul":
            continue
        name = s[0]
        ours = ms(name, op, f"rnnschur/{nt}t")
        ours1 = ms(name, op, "rnnschur/1t")
        th = ms(name, op, f"torch/{nt}t") if have_torch else None
        th1 = ms(name, op, "torch/1t") if have_torch else None
        npy = ms(name, op, "numpy/1t")
        mm = med.get((name, "matmul", "numpy/1t"))
        gf1 = _flops(s, op) / (ours1 * 1e-3) / 1e9 if ours1 else None
        mm_gf = _flops(s, "matmul") / mm / 1e9 if mm else None
        rows.append(
            {
                "shape": name,
                "T": s[1],
                "B": s[2],
                "Nx": s[3],
                "Nh": s[4],
                "Ny": s[5],
                "op": op if op != "stack" else f"fwd K={K_STACK}",
                "rnnschur_ms": ours,
                "torch_ms": th,
                "speedup_vs_torch": th / ours if th and ours else None,
                "rnnschur_1t_ms": ours1,
                "torch_1t_ms": th1,
                "numpy_1t_ms": npy,
                "speedup_vs_numpy_1t": npy / ours1 if npy and ours1 else None,
                "rnnschur_1t_gflops": gf1,
                "numpy_matmul_gflops": mm_gf,
                "fraction_of_matmul_rate": gf1 / mm_gf if gf1 and mm_gf else None,
            }
        )

    def f(v, fmt="{:.3f}"):
        return "n/a" if v is None else fmt.format(v)

    hdr = (
        f"| shape | op | rnnschur {nt}t ms | torch {nt}t ms | × torch | rnnschur 1t ms "
        "| numpy 1t ms | × numpy | GF/s 1t | numpy matmul GF/s | % |"
    )
    lines = [hdr, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['op']} | {f(r['rnnschur_ms'])} | {f(r['torch_ms'])} "
            f"| {f(r['speedup_vs_torch'], '{:.1f}')} | {f(r['rnnschur_1t_ms'])} "
            f"| {f(r['numpy_1t_ms'])} | {f(r['speedup_vs_numpy_1t'], '{:.1f}')} "
            f"| {f(r['rnnschur_1t_gflops'], '{:.1f}')} "
            f"| {f(r['numpy_matmul_gflops'], '{:.1f}')} "
            f"| {f(r['fraction_of_matmul_rate'] and 100 * r['fraction_of_matmul_rate'], '{:.0f}')} |"
        )
    table = "\n".join(lines)
    machine = {
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": _torch_version(),
        "rnnschur": rnnschur.__version__,
        "simd_level": rnnschur._core.simd_level(),
        "threads": nt,
        "blocks": args.blocks,
    }
    print(
        f"machine: {machine['processor']}, {machine['cpu_count']} CPUs, "
        f"simd={machine['simd_level']}, numpy {machine['numpy']}, "
        f"torch {machine['torch']}; medians of {args.blocks} interleaved blocks, float32"
    )
    print(table)
    overhead = _overhead_us()
    print(
        "per-call overhead on a 1-step, 1-sequence problem (µs): "
        + "; ".join(f"{k} {v:.1f}" for k, v in overhead.items())
    )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"machine": machine, "rows": rows, "overhead_us": overhead}, indent=2
        )
    )
    print(f"wrote {out}")
    return 0


def _overhead_us() -> dict[str, float]:
    """Per-call cost of validation + binding on a tiny problem (best of 5)."""
    import timeit

    import numpy as np

    import rnnschur
    from rnnschur import _core
    from rnnschur.rnn import _loss_and_grad_unchecked

    rng = np.random.default_rng(0)
    f = np.float32
    W_xh, W_hh, W_hy = (
        rng.standard_normal(s).astype(f) for s in ((4, 3), (4, 4), (3, 4))
    )
    x = rng.standard_normal((1, 1, 3)).astype(f)
    y = rng.standard_normal((1, 1, 3)).astype(f)
    b_h, b_y, m = np.zeros(4, f), np.zeros(3, f), np.ones((1, 1, 3), bool)
    cases = {
        "loss_and_grad (public, mask, biases)": lambda: rnnschur.loss_and_grad(
            W_xh, W_hh, W_hy, x, y, m, b_h=b_h, b_y=b_y
        ),
        "_loss_and_grad_unchecked (same)": lambda: _loss_and_grad_unchecked(
            W_xh, W_hh, W_hy, x, y, m, b_h, b_y
        ),
        "rollout (public)": lambda: rnnschur.rollout(W_xh, W_hh, W_hy, x),
        "_core.rollout (binding only)": lambda: _core.rollout(
            W_xh, W_hh, W_hy, x, None, None, None, False, 0
        ),
    }
    n = 5000
    return {
        k: min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6
        for k, fn in cases.items()
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _torch_version():
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


if __name__ == "__main__":
    raise SystemExit(main())
