"""RNN kernels per SIMD level against torch, each contender alone in its own process.

Contenders: rnnschur at every SIMD level the CPU supports (``RNNSCHUR_SIMD``) and,
optionally, an older build of ``_core`` (``--before path/to/_core*.so``) for a
before/after comparison; torch ``nn.RNN`` + ``nn.Linear`` at 1 and 2 threads. Ops,
float32, B = 64: forward and forward + MSE + BPTT at the flip-flop (T 25, Nx 3,
Nh 64, Ny 3) and copy (T 136, Nx 8, Nh 72, Ny 8) shapes, and the forward of a
K = 8 stack of ``W_hh`` variants at the copy shape (torch: eight forward calls).

rnnschur is called through ``_core`` directly (the public wrappers add a few
microseconds of argument checks), so an old ``.so`` runs the same code path.

Timing: one process per contender and op, run one after another; every timed block
is preceded by >= 0.1 s of untimed calls of the same function (cores clock down
after idling); >= 5 blocks of >= 0.1 s each; median ms per call and the spread
(min-max over blocks).

Usage::

    python benchmarks/bench_kernel_isa.py [--blocks 7] [--threads 2]
        [--before /tmp/old/_core.so] [--only copy_k8] [--no-torch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHAPES = {"flipflop": (25, 64, 3, 64, 3), "copy": (136, 64, 8, 72, 8)}
OPS = ["flipflop_fwd", "flipflop_bptt", "copy_fwd", "copy_bptt", "copy_k8"]
K_STACK = 8
WARM_S = 0.12
BLOCK_S = 0.1


def _problem(shape_name, K=None):
    import numpy as np

    T, B, Nx, Nh, Ny = SHAPES[shape_name]
    rng = np.random.default_rng(0)
    f = np.float32
    return {
        "W_xh": (rng.standard_normal((Nh, Nx)) / np.sqrt(Nx)).astype(f),
        "W_hh": (
            rng.standard_normal((Nh, Nh) if K is None else (K, Nh, Nh)) / np.sqrt(Nh)
        ).astype(f),
        "W_hy": (rng.standard_normal((Ny, Nh)) / np.sqrt(Nh)).astype(f),
        "b_h": (0.1 * rng.standard_normal(Nh)).astype(f),
        "b_y": (0.1 * rng.standard_normal(Ny)).astype(f),
        "x": rng.standard_normal((T, B, Nx)).astype(f),
        "y": rng.standard_normal((T, B, Ny)).astype(f),
    }


def _fn_rnnschur(op, n_threads, so_path):
    if so_path:
        spec = importlib.util.spec_from_file_location("_core", so_path)
        core = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(core)
    else:
        from rnnschur import _core as core
    shape, kind = op.split("_")
    p = _problem(shape, K=K_STACK if kind == "k8" else None)
    a = (p["W_xh"], p["W_hh"], p["W_hy"], p["x"])
    if kind == "bptt":
        return lambda: core.loss_and_grad(
            *a, p["y"], None, p["b_h"], p["b_y"], n_threads
        ), core.simd_level()
    return lambda: core.rollout(
        *a, p["b_h"], p["b_y"], None, False, n_threads
    ), core.simd_level()


def _fn_torch(op, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    shape, kind = op.split("_")
    K = K_STACK if kind == "k8" else 1
    p = _problem(shape, K=K)
    _, _, Nx, Nh, Ny = SHAPES[shape]
    mods = []
    for k in range(K):
        rnn = torch.nn.RNN(Nx, Nh, nonlinearity="tanh")
        lin = torch.nn.Linear(Nh, Ny)
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(p["W_xh"]))
            rnn.weight_hh_l0.copy_(torch.from_numpy(p["W_hh"][k]))
            rnn.bias_ih_l0.copy_(torch.from_numpy(p["b_h"]))
            rnn.bias_hh_l0.zero_()
            lin.weight.copy_(torch.from_numpy(p["W_hy"]))
            lin.bias.copy_(torch.from_numpy(p["b_y"]))
        mods.append((rnn, lin))
    x = torch.from_numpy(p["x"])
    y = torch.from_numpy(p["y"])
    if kind == "bptt":
        rnn, lin = mods[0]

        def fwdbwd():
            rnn.zero_grad(set_to_none=True)
            lin.zero_grad(set_to_none=True)
            h, _ = rnn(x)
            loss = ((lin(h) - y) ** 2).mean()
            loss.backward()

        return fwdbwd, f"torch {torch.__version__}"

    def fwd():
        with torch.no_grad():
            for rnn, lin in mods:
                lin(rnn(x)[0])

    return fwd, f"torch {torch.__version__}"


def _worker(args):
    if args.lib == "torch":
        fn, info = _fn_torch(args.op, args.threads)
    else:
        fn, info = _fn_rnnschur(args.op, args.threads, args.so)
    times = []
    for _ in range(args.blocks):
        t_end = time.perf_counter() + WARM_S
        while time.perf_counter() < t_end:  # untimed warm-up right before the block
            fn()
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= BLOCK_S and n >= 3:
                break
        times.append(1e3 * el / n)
    print(json.dumps({"info": info, "ms": times}))


def _run(lib, op, threads, blocks, env_extra=None, so=None):
    cmd = [sys.executable, __file__, "--worker", lib, "--op", op]
    cmd += ["--threads", str(threads), "--blocks", str(blocks)]
    if so:
        cmd += ["--so", so]
    env = {**os.environ, **(env_extra or {})}
    if lib == "torch":
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _levels():
    from rnnschur import _core

    if hasattr(_core, "simd_levels"):
        return list(_core.simd_levels())
    return ["baseline", _core.simd_level()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--op", default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--so", default=None)
    ap.add_argument("--before", default=None, help="older _core .so to compare")
    ap.add_argument("--levels", nargs="*", default=None)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    if args.worker:
        args.lib = args.worker
        _worker(args)
        return
    levels = args.levels or [lv for lv in _levels() if lv != "baseline"]
    print(f"# {os.uname().nodename} load {os.getloadavg()[0]:.2f}; " + _cpu_name())
    ops = args.only or OPS
    for op in ops:
        rows = []
        for lv in levels:
            r = _run("rnnschur", op, args.threads, args.blocks, {"RNNSCHUR_SIMD": lv})
            rows.append((f"rnnschur {lv} {args.threads}t", r))
        if args.before:
            r = _run("rnnschur", op, args.threads, args.blocks, so=args.before)
            rows.append((f"before ({r['info']}) {args.threads}t", r))
        if not args.no_torch:
            for nt in (1, 2):
                rows.append((f"torch {nt}t", _run("torch", op, nt, args.blocks)))
        best_torch = min(
            (_median(r["ms"]) for n, r in rows if n.startswith("torch")), default=None
        )
        for name, r in rows:
            med = _median(r["ms"])
            ratio = f"  x{best_torch / med:5.2f} vs torch best" if best_torch else ""
            print(
                f"{op:14s} {name:28s} {med:8.3f} ms "
                f"[{min(r['ms']):.3f}-{max(r['ms']):.3f}]{ratio}"
            )
        print(f"# load {os.getloadavg()[0]:.2f}", flush=True)


def _median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _cpu_name():
    try:
        with Path("/proc/cpuinfo").open() as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
