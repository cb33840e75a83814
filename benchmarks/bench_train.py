"""Training benchmark: quality table, training times, and the ratio against torch.

Usage::

    python benchmarks/bench_train.py quality [--seeds 0 1 2] [--copy-seeds 0 1]
        [--save-dir DIR] [--json out.json]
    python benchmarks/bench_train.py speed [--threads 2] [--blocks 3] [--task flipflop]

``quality`` trains with the default settings of each task (for flip-flop, sine and
CDI: dense orthogonal, Nh = 64, 30 × 128 Adam steps, lr 1e-3 annealed to 1e-4, i.e.
rnnschur.training.NEURO_CONFIG, or the literal constant-lr paper setting with
``--constant-lr``; rnnschur.training.COPY_CONFIG
for the copy task at Nh = 72 under all four constructions) and reports the held-out FVU
(paper eq. 7) on a fresh evaluation set of 4096 sequences (seed 777, split "test") and,
for the copy task, the mean replay accuracy over the 128 lags.

Training speed is a case of the shared harness (``python benchmarks/run.py --only
train``): one epoch (128 Adam steps and the held-out evaluation, flip-flop) of
rnnschur's trainer against an equivalent PyTorch loop (``nn.RNN`` tanh without bias +
``nn.Linear`` without bias, ``torch.optim.Adam``, the same initial weights, the same
batches in the same order and the copy task's lag curriculum, the same learning-rate
schedule and held-out evaluation; dense constructions only, as torch has no Cayley
parametrisation), each at 1 and 2 threads in its own process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from harness import Contender, Target, train_api

EVAL_SIZE = 4096
EVAL_SEED = 777


# --------------------------------------------------------------------------- quality


def quality(args) -> list[dict]:
    api = train_api()
    make_task, default_config, train = api.make_task, api.default_config, api.train
    jobs = []
    for name in args.tasks:
        if name == "copy":
            jobs += [
                ("copy", c, 72, s) for c in args.constructions for s in args.copy_seeds
            ]
        else:
            jobs += [(name, "dense_orthogonal", 64, s) for s in args.seeds]
    rows = []
    for name, construction, hidden, seed in jobs:
        task = make_task(name)
        cfg = default_config(task)
        if args.constant_lr and name != "copy":
            cfg = api.PAPER_CONFIG
        if args.threads is not None:
            cfg = dataclasses.replace(cfg, n_threads=args.threads)
        t0 = time.perf_counter()
        model = train(task, construction, hidden, seed=seed, config=cfg, progress=False)
        seconds = time.perf_counter() - t0
        sc = api.evaluate(model, size=EVAL_SIZE, seed=EVAL_SEED)
        row = {
            "task": name,
            "construction": construction,
            "hidden": hidden,
            "seed": seed,
            "steps": cfg.total_steps,
            "fvu": sc["fvu"],
            "accuracy": sc.get("accuracy"),
            "seconds": seconds,
        }
        rows.append(row)
        acc = "" if row["accuracy"] is None else f"  acc {row['accuracy']:.5f}"
        print(
            f"{name:8s} {construction:16s} Nh={hidden} seed={seed}  "
            f"FVU {row['fvu']:.5f}{acc}  {seconds:.1f} s",
            flush=True,
        )
        if args.save_dir:
            d = Path(args.save_dir)
            d.mkdir(parents=True, exist_ok=True)
            api.save(d / f"{name}_{construction}_{hidden}_{seed}.npz", model)
    print()
    print(
        "| task | construction | Nh | seed | steps | held-out FVU | replay acc. | time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        acc = "–" if r["accuracy"] is None else f"{r['accuracy']:.5f}"
        print(
            f"| {r['task']} | {r['construction']} | {r['hidden']} | {r['seed']} | "
            f"{r['steps']} | {r['fvu']:.5f} | {acc} | {r['seconds']:.1f} |"
        )
    return rows


# --------------------------------------------------------------------------- speed

TASK, CONSTRUCTION, HIDDEN, EPOCHS = "flipflop", "dense_orthogonal", 64, 1
CASE = f"{TASK} training, {EPOCHS} epoch (128 Adam steps + eval), Nh={HIDDEN}"


def _config(api, task, threads):
    return dataclasses.replace(
        api.default_config(task), epochs=EPOCHS, n_threads=threads
    )


def make_rnnschur(threads: int):
    api = train_api()
    task = api.make_task(TASK)
    cfg = _config(api, task, threads)

    def run():
        return api.train(task, CONSTRUCTION, HIDDEN, seed=0, config=cfg, progress=False)

    return run


def make_torch(threads: int):
    import torch

    torch.set_num_threads(threads)  # once per process
    api = train_api()
    task = api.make_task(TASK)
    cfg = _config(api, task, threads)
    init_ss, data_ss = np.random.SeedSequence(0).spawn(2)
    init = api.init_params(
        CONSTRUCTION,
        task.n_inputs,
        HIDDEN,
        task.n_outputs,
        np.random.default_rng(init_ss),
    )
    x_ev, y_ev, m_ev = api.heldout_batch(task, cfg.eval_size, cfg.eval_seed)
    x_ev_t = torch.from_numpy(x_ev)
    phases = api.curriculum_phases(task, cfg)

    def run():
        rnn = torch.nn.RNN(task.n_inputs, HIDDEN, nonlinearity="tanh", bias=False)
        lin = torch.nn.Linear(HIDDEN, task.n_outputs, bias=False)
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(init["W_xh"]))
            rnn.weight_hh_l0.copy_(torch.from_numpy(init["W_hh"]))
            lin.weight.copy_(torch.from_numpy(init["W_hy"]))
        params = [*rnn.parameters(), *lin.parameters()]
        opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        data_rng = np.random.default_rng(data_ss)
        stream, step, fvu = None, 0, None
        for epoch in range(cfg.epochs):
            if stream is None or phases[epoch] is not stream.task:
                stream = api.BatchStream(
                    phases[epoch], cfg.batch_size, data_rng, np.float32
                )
            for _ in range(cfg.batches_per_epoch):
                for group in opt.param_groups:  # the same schedule as rnnschur's loop
                    group["lr"] = cfg.lr_at(step)
                step += 1
                x, y, mask = stream.next()
                err = lin(rnn(torch.from_numpy(x))[0]) - torch.from_numpy(y)
                if mask.all():
                    loss = (err * err).mean()
                else:
                    mt = torch.from_numpy(np.broadcast_to(mask, y.shape).copy())
                    loss = (err * err * mt).sum() / mt.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.clip)
                opt.step()
            with torch.no_grad():
                y_hat = lin(rnn(x_ev_t)[0]).numpy()
            fvu = float(api.metrics.fvu(y_hat, y_ev, m_ev))
        return fvu

    return run


def contenders(quick: bool = False, max_threads: int = 2) -> list[Contender]:
    del quick
    return [
        Contender(
            bench="train",
            case=CASE,
            name=lib,
            role="subject" if lib == "rnnschur" else "baseline",
            factory=f"bench_train:make_{lib}",
            threads=t,
        )
        for lib in ("rnnschur", "torch")
        for t in sorted({1, max_threads})
    ]


def targets() -> list[Target]:
    return []


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--tasks", nargs="+", default=["flipflop", "sine", "cdi", "copy"])
    q.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    q.add_argument("--copy-seeds", nargs="+", type=int, default=[0, 1])
    q.add_argument(
        "--constructions",
        nargs="+",
        default=["dense_default", "dense_orthogonal", "dense_normal", "cayley"],
    )
    q.add_argument("--threads", type=int, default=None)
    q.add_argument(
        "--constant-lr",
        action="store_true",
        help="flip-flop/sine/CDI with the literal paper setting (constant lr)",
    )
    q.add_argument("--save-dir", default=None)
    q.add_argument("--json", default=None)
    s = sub.add_parser(
        "speed", help="the harness's training case (run.py --only train)"
    )
    s.add_argument("rest", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.mode == "speed":
        from run import main as run_main

        return run_main(["--only", "train", *args.rest])
    result = quality(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
