"""Wall time of the main job, `rnnschur reproduce --quick` (target: ≤ 3 min on 2 cores).

Runs the command in a fresh temporary directory (no reused checkpoints), so it times
training, ablation and reporting together, and prints the measured time beside the
estimate the command printed up front. ``--full`` times the paper's full settings.

    python benchmarks/bench_reproduce.py [--full] [--jobs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_QUICK_SECONDS = 180.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the paper's full settings")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rnnschur-bench-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "rnnschur.cli",
            "reproduce",
            "--out",
            tmp,
            "--quiet",
        ]
        cmd += ["--jobs", str(args.jobs)] + ([] if args.full else ["--quick"])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, sep="\n")
            return proc.returncode
        first = proc.stdout.splitlines()[0]
        report = (Path(tmp) / "report.md").read_text()
    match = re.search(r"≈ ([\d.]+) (s|min|h)", first)
    scale = {"s": 1, "min": 60, "h": 3600}
    estimate = float(match.group(1)) * scale[match.group(2)] if match else float("nan")
    verdicts = re.findall(
        r"\*\*(supported|not supported|inconclusive|not tested)\*\*", report
    )
    mode = "full" if args.full else "quick"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}"
    )
    print(f"rnnschur reproduce --{mode} (--jobs {args.jobs}): {seconds:.1f} s wall")
    print(f"  estimate printed up front: {estimate:.0f} s (training only)")
    print(f"  claim verdicts: {', '.join(verdicts)}")
    if not args.full:
        ok = seconds <= TARGET_QUICK_SECONDS
        print(f"  target ≤ {TARGET_QUICK_SECONDS:.0f} s: {'met' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "mode": mode,
                    "jobs": args.jobs,
                    "seconds": seconds,
                    "estimate": estimate,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
