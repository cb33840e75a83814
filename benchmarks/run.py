"""Run every benchmark in benchmarks/ through the shared harness; print one table.

    python benchmarks/run.py [--quick] [--only rnn,schur,...] [--json out.json]
    python benchmarks/run.py --from-json out.json      # re-print an earlier run

Benchmarks: peak (the roofline GEMMs), rnn, schur, ablation, train. Each contender
is timed alone in a fresh process (see harness.py and README.md in this folder).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import harness

BENCHES = ("peak", "rnn", "schur", "ablation", "train")


def collect(args: argparse.Namespace) -> tuple[list[harness.Contender], list]:
    contenders: list[harness.Contender] = []
    targets: list[harness.Target] = []
    for name in args.only:
        mod = importlib.import_module(f"bench_{name}")
        kw: dict[str, Any] = {"quick": args.quick, "max_threads": args.threads}
        if name == "rnn":
            kw["variants"] = tuple(harness.simd_levels())
        contenders += mod.contenders(**kw)
        targets += getattr(mod, "targets", list)()
    if importlib.util.find_spec("torch") is None:
        print("torch not installed: its contenders are skipped", file=sys.stderr)
        contenders = [c for c in contenders if c.name != "torch"]
    return contenders, targets


def _f(v: float | None, fmt: str) -> str:
    return "–" if v is None else fmt.format(v)


def table(data: dict[str, Any]) -> str:
    m, s = data["machine"], data["settings"]
    rows = data["results"]
    peak = data["peak"]
    lines = [
        (
            f"machine: {m['cpu']}, {m['cpu_count']} CPUs, avx2={m['avx2']}, "
            f"avx512f={m['avx512f']}, rnnschur SIMD level {m['rnnschur_simd_level']}; "
            f"load average {m['loadavg_start']:.2f} at start, {m.get('loadavg_end', 0):.2f} at end"
        ),
        "versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        f"BLAS: {m.get('blas_kernel', 'unknown')}"
        + (
            f" (removed from the workers' env: {m['openblas_env_removed']})"
            if m["openblas_env_removed"]
            else ""
        ),
        "peak GF/s (GEMM): "
        + "; ".join(
            f"{dt} " + ", ".join(f"{t}t {v:.1f}" for t, v in sorted(d.items()))
            for dt, d in peak.items()
        ),
        (
            f"median of {s['blocks']} blocks of ~{s['block_seconds']} s per contender, each "
            f"after >= {s['warmup']} s of untimed calls; every contender alone in its own "
            "process. spread = (q3 - q1) / median; '×best' = this row's time / the fastest "
            "rnnschur row of the case; * = best thread count of that contender"
        ),
        "",
        "| bench | case | contender | median ms | spread | min–max ms | ×best | GF/s | % peak |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    best: dict[tuple[str, str], float] = {}
    for r in rows:
        if "median_s" in r:
            key = (r["case"], r["name"] + r["variant"])
            best[key] = min(best.get(key, float("inf")), r["median_s"])
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['bench']} | {r['case']} | {r['label']} | error: {r['error'][:80]} "
                "| | | | | |"
            )
            continue
        star = (
            "*" if best[(r["case"], r["name"] + r["variant"])] == r["median_s"] else ""
        )
        frac = r.get("peak_fraction")
        lines.append(
            f"| {r['bench']} | {r['case']} | {r['label']}{star} "
            f"| {1e3 * r['median_s']:.3f} "
            f"| {100 * (r['q3_s'] - r['q1_s']) / r['median_s']:.1f}% "
            f"| {1e3 * r['min_s']:.3f}–{1e3 * r['max_s']:.3f} "
            f"| {_f(r.get('vs_best_subject'), '{:.2f}')} "
            f"| {_f(r.get('gflops'), '{:.1f}')} "
            f"| {_f(frac and 100 * frac, '{:.0f}%')} |"
        )
    if data["targets"]:
        lines += [
            "",
            "| case | rnnschur | against | ratio | target | verdict |",
            "|---|---|---|---:|---:|---|",
        ]
        for t in data["targets"]:
            floor = t["minimum"] is None
            verdict = "–" if t["met"] is None else ("met" if t["met"] else "MISSED")
            lines.append(
                f"| {t['case']} | {t['subject_label']} | {t['baseline_label']} "
                f"| {_f(t['ratio'], '{:.2f}')}{' × floor' if floor else '×'} "
                f"| {_f(t['minimum'], '≥ {:.1f}×')} | {verdict} |"
            )
    return "\n".join(lines)


def _blas_kernel(rows: list[dict[str, Any]]) -> str:
    for r in rows:
        for lib in r.get("info", {}).get("blas", []):
            if lib.get("internal_api") == "openblas" and r["role"] == "peak":
                return f"OpenBLAS {lib.get('version')} kernel {lib.get('architecture')}"
    return "unknown (pip install threadpoolctl)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases, 5 blocks")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    ap.add_argument("--blocks", type=int, default=None, help="timed blocks (>= 5)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds per contender (error past it)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--from-json", type=Path, help="only re-print an earlier run")
    args = ap.parse_args(argv)
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        data["peak"] = harness.attach_peak(data["results"])  # under today's rule
        print(table(data))
        return 0
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(args.only) - set(BENCHES)
    if unknown:
        ap.error(f"unknown benchmarks {sorted(unknown)}; choose from {BENCHES}")
    if "peak" not in args.only:  # % of peak needs the roofline
        args.only.insert(0, "peak")
    settings = harness.Settings(
        blocks=args.blocks or (5 if args.quick else 7),
        block_seconds=0.1 if args.quick else 0.2,
        quick=args.quick,
        timeout=args.timeout,
    )
    machine = harness.machine_info()
    contenders, targets = collect(args)
    rows = harness.run_all(contenders, settings)
    peak = harness.attach_peak(rows)
    harness.speedups(rows)
    machine["loadavg_end"] = os.getloadavg()[0]
    machine["blas_kernel"] = _blas_kernel(rows)
    data = {
        "schema": harness.SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(),
        "command": ["benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])],
        "settings": vars(settings),
        "machine": machine,
        "peak": peak,
        "results": rows,
        "targets": harness.evaluate_targets(rows, targets),
    }
    print(table(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
