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

``speed`` times one full paper-settings run (default: flip-flop, 3840 Adam steps) of
rnnschur's trainer and of an equivalent PyTorch loop (``nn.RNN`` tanh without bias +
``nn.Linear`` without bias, ``torch.optim.Adam``, the same initial weights, the same
batches in the same order and the copy task's lag curriculum, the same per-epoch
held-out evaluation, the same thread count; dense constructions only, as torch has no
Cayley parametrisation). Each run happens in its own process (one thread count per process; no
thread-pool interference between libraries); rnnschur and torch runs are interleaved
with a pause between them, and the medians over the blocks are reported. Times exclude
process start-up and imports: only the training call is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EVAL_SIZE = 4096
EVAL_SEED = 777


# --------------------------------------------------------------------------- quality


def quality(args) -> list[dict]:
    from rnnschur import make_task
    from rnnschur.training import default_config, evaluate, save, train

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
            from rnnschur.training import PAPER_CONFIG

            cfg = PAPER_CONFIG
        if args.threads is not None:
            import dataclasses

            cfg = dataclasses.replace(cfg, n_threads=args.threads)
        t0 = time.perf_counter()
        model = train(task, construction, hidden, seed=seed, config=cfg, progress=False)
        seconds = time.perf_counter() - t0
        sc = evaluate(model, size=EVAL_SIZE, seed=EVAL_SEED)
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
            save(d / f"{name}_{construction}_{hidden}_{seed}.npz", model)
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


def _worker_ours(task_name, construction, hidden, seed, threads):
    import dataclasses

    from rnnschur import make_task
    from rnnschur.training import default_config, train

    task = make_task(task_name)
    cfg = dataclasses.replace(default_config(task), n_threads=threads)
    t0 = time.perf_counter()
    model = train(task, construction, hidden, seed=seed, config=cfg, progress=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "fvu": model.history["eval_fvu"][-1]}


def _worker_torch(task_name, construction, hidden, seed, threads):
    import torch

    from rnnschur import make_task, metrics
    from rnnschur.constructions import init_params
    from rnnschur.training import curriculum_phases, default_config, heldout_batch
    from rnnschur.training.step import BatchStream

    torch.set_num_threads(threads)
    task = make_task(task_name)
    cfg = default_config(task)
    init_ss, data_ss = np.random.SeedSequence(seed).spawn(2)
    init = init_params(
        construction,
        task.n_inputs,
        hidden,
        task.n_outputs,
        np.random.default_rng(init_ss),
    )
    rnn = torch.nn.RNN(task.n_inputs, hidden, nonlinearity="tanh", bias=False)
    lin = torch.nn.Linear(hidden, task.n_outputs, bias=False)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(init["W_xh"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(init["W_hh"]))
        lin.weight.copy_(torch.from_numpy(init["W_hy"]))
    params = [*rnn.parameters(), *lin.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    # the same batches as rnnschur.train(): one stream per curriculum phase (copy task)
    phases = curriculum_phases(task, cfg)
    data_rng = np.random.default_rng(data_ss)
    stream = None
    x_ev, y_ev, m_ev = heldout_batch(task, cfg.eval_size, cfg.eval_seed)
    x_ev_t = torch.from_numpy(x_ev)
    t0 = time.perf_counter()
    fvu = None
    step = 0
    for epoch in range(cfg.epochs):
        if stream is None or phases[epoch] is not stream.task:
            stream = BatchStream(phases[epoch], cfg.batch_size, data_rng, np.float32)
        for _batch in range(cfg.batches_per_epoch):
            for group in opt.param_groups:  # the same schedule as rnnschur's loop
                group["lr"] = cfg.lr_at(step)
            step += 1
            x, y, mask = stream.next()
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            out, _ = rnn(xt)
            err = lin(out) - yt
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
        fvu = float(metrics.fvu(y_hat, y_ev, m_ev))
    return {"seconds": time.perf_counter() - t0, "fvu": fvu}


def _spawn(kind, args):
    cmd = [
        sys.executable,
        __file__,
        "_worker",
        kind,
        args.task,
        args.construction,
        str(args.hidden),
        str(args.seed),
        str(args.threads),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args) -> dict:
    kinds = ["ours"]
    try:
        import torch  # noqa: F401

        kinds.append("torch")
    except ImportError:
        print("torch not installed: timing rnnschur only")
    if args.construction == "cayley" and "torch" in kinds:
        # torch's nn.RNN would train W_hh as a free matrix: a different model
        kinds.remove("torch")
        print("no Cayley parametrisation in the torch loop: timing rnnschur only")
    res: dict[str, list[dict]] = {k: [] for k in kinds}
    for b in range(args.blocks):
        for k in kinds:
            r = _spawn(k, args)
            res[k].append(r)
            print(
                f"block {b}: {k:5s} {r['seconds']:.2f} s  final held-out FVU {r['fvu']:.5f}",
                flush=True,
            )
            time.sleep(0.3)
    summary = {k: statistics.median(r["seconds"] for r in v) for k, v in res.items()}
    print()
    print(
        f"{args.task} / {args.construction} / Nh={args.hidden}, {args.threads} thread(s), "
        f"{args.blocks} interleaved blocks (median wall time of one full training run):"
    )
    print(f"  rnnschur: {summary['ours']:.2f} s")
    if "torch" in summary:
        ratios = [
            t["seconds"] / o["seconds"]
            for o, t in zip(res["ours"], res["torch"], strict=True)
        ]
        summary["ratio_median"] = statistics.median(ratios)
        print(f"  torch:    {summary['torch']:.2f} s")
        print(
            f"  torch / rnnschur: median of per-block ratios {summary['ratio_median']:.2f}"
            f" (blocks: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    return {"runs": res, "summary": summary}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        kind, task, construction, hidden, seed, threads = argv[1:7]
        fn = _worker_ours if kind == "ours" else _worker_torch
        print(json.dumps(fn(task, construction, int(hidden), int(seed), int(threads))))
        return
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
    s = sub.add_parser("speed")
    s.add_argument("--task", default="flipflop")
    s.add_argument("--construction", default="dense_orthogonal")
    s.add_argument("--hidden", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--blocks", type=int, default=3)
    s.add_argument("--json", default=None)
    args = p.parse_args(argv)
    result = quality(args) if args.mode == "quality" else speed(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
