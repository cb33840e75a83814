"""Benchmark: Newton fixed-point search (compiled core) vs an Adam-on-q search in torch.

Network: a 3-bit flip-flop network at the paper's settings (``dense_orthogonal``,
Nh = 64, seed 0; trained once and cached). Starts: 1,024 states sampled from its own
trajectories on the task plus Gaussian noise (std 0.5), identical for every
contender (written to a file by the parent process).

Contenders, each in its own process, each warm (>= 0.1 s of untimed calls of the
same function right before the timed blocks), median and spread over ``--blocks``:

* ``newton``: ``rnnschur.fixed_points(model, starts=...)`` (search, deduplication,
  eigenvalues), float64, 1 and 2 threads.
* ``adam``: a FixedPointFinder-style search written in torch: every start is a
  parameter, Adam (lr 0.05, StepLR 500 steps × 0.7 as in FixedPointFinder's torch
  port) on ``Σ q`` (the sum, so that Adam's ε does not damp each point's step by
  the batch size), stopped when every ``q < 1e-12`` or ``|Δq| < 1e-20`` or after
  5,000 iterations (FixedPointFinder's defaults), then deduplication (1e-3, its
  ``tol_unique``) and Jacobian eigenvalues (NumPy), float32 (its default dtype);
  torch at 1 and 2 threads (its best counts).

The parent then compares the point sets: every Newton fixed point against the
Adam points with ``q < 1e-12`` (match: ∞-distance < 1e-3).

The machine is shared: absolute times are noisy (the spread says how much); the
ratio uses the best configuration of each contender from the same run.

Usage: python benchmarks/bench_fixed_points.py [--blocks 5] [--model PATH]
       [--adam-iters 5000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve()
N_STARTS = 1024
NOISE = 0.5
TOL_Q = 1e-12
TOL_DQ = 1e-20
TOL_UNIQUE = 1e-3


def trained_flipflop(path: Path):
    """Load the cached flip-flop model, training it first if absent.

    Training imports live here only (the training API moves in issue 9).
    """
    import rnnschur
    from rnnschur import train

    if path.exists():
        return rnnschur.load(path)
    model = train(
        rnnschur.make_task("flipflop"), "dense_orthogonal", 64, seed=0, progress=False
    )
    rnnschur.save(path, model)
    return model


# --- contenders -------------------------------------------------------------------


def adam_search(W, starts, max_iters, dtype):
    """Adam on q from every start; returns (states, q, iterations run)."""
    import torch

    Wt = torch.tensor(W, dtype=dtype)
    x = torch.tensor(starts, dtype=dtype, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=500, gamma=0.7)
    q_prev = None
    it = 0
    for it in range(1, max_iters + 1):  # noqa: B007 - the count is returned
        opt.zero_grad()
        q = 0.5 * (torch.tanh(x @ Wt.T) - x).square().sum(dim=1)
        q.sum().backward()
        opt.step()
        sched.step()
        qd = q.detach()
        if q_prev is not None and bool(
            torch.all((qd < TOL_Q) | ((qd - q_prev).abs() < TOL_DQ))
        ):
            break
        q_prev = qd
    with torch.no_grad():
        q = 0.5 * (torch.tanh(x @ Wt.T) - x).square().sum(dim=1)
    return x.detach().double().numpy(), q.double().numpy(), it


def unique_points(h, q, tol):
    """FixedPointFinder-style deduplication: greedy in ascending q, ∞-norm < tol."""
    keep: list[int] = []
    for i in np.argsort(q):
        if all(np.max(np.abs(h[i] - h[j])) >= tol for j in keep):
            keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def adam_pipeline(W, starts, max_iters, dtype):
    h, q, iters = adam_search(W, starts, max_iters, dtype)
    keep = unique_points(h, q, TOL_UNIQUE)
    d = 1.0 - np.tanh(h[keep] @ W.T) ** 2
    ev = np.linalg.eigvals(d[:, :, None] * W[None])
    return h[keep], q[keep], ev, iters


#: Threads the benchmark itself keeps busy at most (its 2-thread runs).
OWN_THREADS = 2


def load_note(load):
    """One line: the 1-minute load average before and after the run, and whether
    other work shared the cores (before: anything above half a core; after: above
    what this benchmark's own threads account for)."""
    text = (
        f"load (1-min average) {load['before']:.2f} before, {load['after']:.2f} "
        f"after, on {os.cpu_count()} CPUs: "
    )
    if load["before"] > 0.5 or load["after"] > OWN_THREADS + 0.5:
        return (
            text + "loaded machine, other work shared the cores; the timings are noisy"
        )
    return text + "quiet machine, no other work seen"


def timed(fn, blocks):
    """Warm-up (>= 0.1 s of calls), then one call per block; returns (times, out)."""
    t_end = time.perf_counter() + 0.1
    out = fn()
    while time.perf_counter() < t_end:
        out = fn()
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def worker(args) -> None:
    data = np.load(args.data)
    W, starts = data["W_hh"], data["starts"]
    net = SimpleNamespace(W_xh=data["W_xh"], W_hh=W)
    if args.worker == "newton":
        from rnnschur.dynamics import fixed_points

        times, r = timed(
            lambda: fixed_points(net, starts=starts, n_threads=args.threads),
            args.blocks,
        )
        out = {
            "h": r.h[r.is_fixed],
            "q": r.q[r.is_fixed],
            "ev": r.eigenvalues[r.is_fixed],
        }
        extra = {"iters_mean": float(r.start_iters.mean()), "summary": r.summary()}
    else:
        import torch

        torch.set_num_threads(args.threads)
        dtype = getattr(torch, args.dtype)
        warm_iters = 50  # the timed function with a short run: >= 0.1 s per warm-up
        t_end = time.perf_counter() + 0.1
        while time.perf_counter() < t_end:
            adam_pipeline(W, starts, warm_iters, dtype)
        times = []
        for _ in range(args.blocks):
            t0 = time.perf_counter()
            res = adam_pipeline(W, starts, args.adam_iters, dtype)
            times.append(time.perf_counter() - t0)
        out = {"h": res[0], "q": res[1], "ev": res[2]}
        extra = {"iters": res[3]}
    np.savez(args.out, **out)
    print(json.dumps({"times": times, **extra}))


# --- parent -----------------------------------------------------------------------


def run_worker(kind, threads, data, tmp, args, dtype="float32"):
    out = Path(tmp) / f"{kind}_{threads}_{dtype}.npz"
    cmd = [sys.executable, str(HERE), "--worker", kind, "--threads", str(threads)]
    cmd += ["--data", str(data), "--out", str(out), "--blocks", str(args.blocks)]
    cmd += ["--adam-iters", str(args.adam_iters), "--dtype", dtype]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{proc.stderr}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["points"] = dict(np.load(out))
    return info


def compare(newton, adam):
    """Match every Newton fixed point with the Adam points of q < TOL_Q."""
    hn = newton["h"]
    good = adam["q"] < TOL_Q
    ha = adam["h"][good]
    n_unstable = np.sum(np.abs(newton["ev"]) > 1, axis=1)
    if ha.size:
        d = np.max(np.abs(hn[:, None, :] - ha[None]), axis=2)
        found = d.min(axis=1) < TOL_UNIQUE
        adam_only = int(np.sum(d.min(axis=0) >= TOL_UNIQUE))
    else:
        found = np.zeros(hn.shape[0], dtype=bool)
        adam_only = 0
    rows = {}
    for k in np.unique(n_unstable):
        sel = n_unstable == k
        rows[int(k)] = {
            "newton": int(sel.sum()),
            "also_found_by_adam": int(found[sel].sum()),
        }
    return {
        "by_unstable_modes": rows,
        "adam_points_q_below_tol": int(good.sum()),
        "adam_points_total": int(adam["q"].size),
        "adam_only_points": adam_only,
        "newton_max_q": float(newton["q"].max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--adam-iters", type=int, default=5000)
    ap.add_argument(
        "--model", type=Path, default=Path(tempfile.gettempdir()) / "rnnschur_ff64.npz"
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", choices=["newton", "adam"], default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    from rnnschur.dynamics import sample_starts

    load_before = os.getloadavg()[0]
    model = trained_flipflop(args.model)
    starts = sample_starts(model, N_STARTS, noise=NOISE, rng=0)
    W = np.asarray(model.W_hh, dtype=np.float64)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(
            data, W_hh=W, W_xh=np.asarray(model.W_xh, dtype=np.float64), starts=starts
        )
        for kind in ("newton", "adam"):
            for threads in (1, 2):
                name = f"{kind}/{threads}t"
                results[name] = run_worker(kind, threads, data, tmp, args)
                t = np.asarray(results[name]["times"])
                print(
                    f"{name:10s} median {np.median(t):8.3f} s  "
                    f"[min {t.min():.3f}, max {t.max():.3f}]  blocks {t.size}",
                    flush=True,
                )
    best = {
        k: min(
            (r for n, r in results.items() if n.startswith(k)),
            key=lambda r: np.median(r["times"]),
        )
        for k in ("newton", "adam")
    }
    med = {k: float(np.median(r["times"])) for k, r in best.items()}
    cmp = compare(best["newton"]["points"], best["adam"]["points"])
    print(f"Newton summary: {best['newton']['summary']}")
    print(f"Adam iterations run: {best['adam']['iters']}")
    print(f"point sets: {json.dumps(cmp)}")
    print(f"speed-up (best vs best, medians): {med['adam'] / med['newton']:.1f}x")
    load = {"before": load_before, "after": os.getloadavg()[0]}
    print(load_note(load))
    if args.json:
        slim = {
            n: {k: v for k, v in r.items() if k != "points"} for n, r in results.items()
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"results": slim, "compare": cmp, "medians": med, "load": load},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
