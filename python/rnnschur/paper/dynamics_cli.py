"""``rnnschur fixed-points`` and the subspace table of ``rnnschur ablate --subspaces``:
argument declaration, and the text both print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..ablation import BLOCK_NAMES
from ..cli_types import positive_int
from ..dynamics import fixed_points
from ..dynamics_ablation import continue_fixed_points
from ..training import CheckpointError, TrainedModel, load
from .dynamics import (
    Float64Net,
    continuation_summary,
    model_subspaces,
    point_records,
)
from .settings import DEFAULT_ALPHA
from .tables import jsonable

__all__ = [
    "add_fixed_points_parser",
    "cmd_fixed_points",
    "fixed_point_report",
    "subspace_table",
]


def _input_vector(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        msg = f"expected comma-separated numbers such as 1,0,0; got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not all(np.isfinite(values)):
        msg = f"input values must be finite; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return values


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        msg = f"expected a non-negative integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return v


def add_fixed_points_parser(
    subparsers: Any, alpha_type: Any
) -> argparse.ArgumentParser:
    """Declare ``rnnschur fixed-points`` (``alpha_type`` parses ``--alpha``)."""
    p = subparsers.add_parser(
        "fixed-points",
        help="fixed points of a checkpoint under constant input",
        description=(
            "Find the fixed points h = tanh(W_hh h + W_xh x*) of a trained checkpoint "
            "(Newton from its own held-out states plus noise, float64) and print each "
            "point's q = ½‖F(h) − h‖², stability, number of unstable modes and the "
            "readout W_hy h. With --ablate, continue every fixed point into each of "
            "the 8 Schur-ablated networks and print what happens to them."
        ),
    )
    p.add_argument("model", metavar="MODEL.npz", help="checkpoint from rnnschur train")
    p.add_argument(
        "--input",
        type=_input_vector,
        metavar="X1,X2,...",
        help="the constant input x* (default: zero)",
    )
    p.add_argument("--n-starts", type=positive_int, default=1024, metavar="N")
    p.add_argument("--seed", type=_seed, default=0, metavar="S")
    p.add_argument(
        "--alpha",
        type=alpha_type,
        default=DEFAULT_ALPHA,
        help=f"split threshold for --ablate ({DEFAULT_ALPHA})",
    )
    p.add_argument(
        "--ablate",
        action="store_true",
        help="continue the fixed points under every Schur ablation",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_fixed_points)
    return p


def fixed_point_report(
    model: TrainedModel,
    *,
    x_star: Any = None,
    n_starts: int = 1024,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    ablate: bool = False,
) -> dict[str, Any]:
    """What ``rnnschur fixed-points`` prints, as a JSON-ready dict: ``"summary"``,
    ``"points"`` and (with ``ablate``) ``"continuation"`` (one row per subset)."""
    net = Float64Net(model)
    fp = fixed_points(net, x_star, n_starts=n_starts, rng=seed)
    out: dict[str, Any] = {
        "task": model.task.name,
        "hidden": int(model.W_hh.shape[0]),
        "x_star": [float(v) for v in fp.x_star],
        "n_starts": n_starts,
        "seed": seed,
        "summary": fp.summary(),
        "points": point_records(fp, net.W_hy),
    }
    if ablate:
        cont = continue_fixed_points(
            net, fp, alpha=alpha, n_starts=n_starts, rng=seed + 1
        )
        rows = continuation_summary(cont)
        keep = ("subset", "removed_mass", "n_points", "n_stable")
        out["alpha"] = alpha
        out["continuation"] = [
            {
                k: v
                for k, v in r.items()
                if k in keep or k.endswith(("_vanished", "_changed"))
            }
            | {k: r[k] for k in ("max_displacement", "new_points", "fresh_fixed")}
            for r in rows
        ]
    return out


def _text(name: str, rep: dict[str, Any]) -> str:
    s = rep["summary"]
    saddles = ", ".join(
        f"{v}×{k.split('_')[1]}" for k, v in s.items() if k.startswith("saddle_")
    )
    lines = [
        (
            f"{name}: task {rep['task']}, Nh = {rep['hidden']}, x* = "
            f"({', '.join(f'{v:g}' for v in rep['x_star'])}), {rep['n_starts']} starts "
            f"(seed {rep['seed']})"
        ),
        (
            f"{s['fixed']} fixed points: {s['stable']} stable, saddles (count×unstable "
            f"modes) {saddles or 'none'}; {s['slow']} slow points; starts not converged "
            f"{s['starts_not_converged']}, non-finite {s['starts_nonfinite']}"
        ),
        (
            f"{'#':>3} {'status':<6} {'q':>9} {'stable':<6} {'unst.':>5} {'max|λ|':>7} "
            f"{'starts':>6}  readout W_hy h"
        ),
    ]
    for p in rep["points"]:
        lines.append(
            f"{p['point']:>3} {p['status']:<6} {p['q']:>9.2e} "
            f"{'yes' if p['stable'] else 'no':<6} {p['n_unstable']:>5} "
            f"{p['max_abs_eig']:>7.4f} {p['starts']:>6}  "
            + " ".join(f"{v:+.3f}" for v in p["readout"])
        )
    if "continuation" in rep:
        lines += [
            "",
            (
                f"continuation under ablation (α = {rep['alpha']}); stable and saddle "
                "points that vanish or change their number of unstable modes; new = "
                "fixed points of a fresh search that no continued point accounts for"
            ),
            (
                f"{'subset':<22} {'mass':>7} {'stable gone':>11} {'changed':>7} "
                f"{'saddles gone':>12} {'changed':>7} {'max move':>8} {'new':>4}"
            ),
        ]
        for r in rep["continuation"]:
            move = r["max_displacement"]
            n_sad = r["n_points"] - r["n_stable"]
            lines.append(
                f"{r['subset']:<22} {r['removed_mass']:>7.4f} "
                f"{r['stable_vanished']:>4} / {r['n_stable']:<4} "
                f"{r['stable_changed']:>7} {r['saddles_vanished']:>5} / {n_sad:<4}  "
                f"{r['saddles_changed']:>7} "
                + (f"{move:>8.3g}" if move is not None else f"{'–':>8}")
                + f" {r['new_points']:>4}"
            )
    return "\n".join(lines)


def cmd_fixed_points(args: argparse.Namespace) -> int:
    """Run ``rnnschur fixed-points``."""
    try:
        model = load(args.model)
        rep = fixed_point_report(
            model,
            x_star=args.input,
            n_starts=args.n_starts,
            seed=args.seed,
            alpha=args.alpha,
            ablate=args.ablate,
        )
    except (CheckpointError, OSError, ValueError, TypeError) as exc:
        print(f"rnnschur fixed-points: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(jsonable(rep), indent=2, allow_nan=False))
    else:
        print(_text(Path(args.model).name, rep))
    return 0


def subspace_table(
    path: str | os.PathLike[str], *, alpha: float = DEFAULT_ALPHA, n_null: int = 1000
) -> str:
    """The subspace measures of each Schur block of a checkpoint, as markdown text
    (:meth:`rnnschur.alignment.SubspaceAlignment.to_markdown` on 256 held-out
    sequences)."""
    model = load(path)
    sa = model_subspaces(model, alpha=alpha, n_null=n_null)
    assert tuple(b.name for b in sa.blocks) == BLOCK_NAMES
    return sa.to_markdown()
