"""``rnnschur diagnose``: the Schur-coupling table of any network file on the user's data.

Exit codes: 0 success, 1 a file that cannot be read or holds something a Network
cannot represent, 2 bad arguments or data that do not fit the network (argparse's
usage-error code, also used for mismatches found after parsing).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zipfile
from typing import Any

import numpy as np

from .cli_types import unit_interval

__all__ = ["add_diagnose_parser", "cmd_diagnose"]

_METRICS = ("fvu", "sign_accuracy", "mse")


class _UsageError(Exception):
    """Arguments or data that do not fit (exit code 2)."""


def add_diagnose_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Declare ``rnnschur diagnose``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "diagnose",
        help="Schur-coupling ablation table of any tanh RNN on your own data",
        description=(
            "Load a tanh RNN (torch state dict .pt/.pth, .npz or .safetensors of named "
            "arrays, a saved rnnschur.Network or a training checkpoint), ablate every "
            "subset of its ordered Schur couplings {RR, CR, CC} and score each variant "
            "on the arrays of DATA.npz. Prints a markdown table (or JSON with --json)."
        ),
    )
    p.add_argument("model", metavar="MODEL", help=".pt, .pth, .npz or .safetensors")
    p.add_argument(
        "--data", required=True, metavar="DATA.npz", help="evaluation arrays"
    )
    p.add_argument("--x-key", default="x", help="inputs entry of DATA (default x)")
    p.add_argument("--y-key", default="y", help="targets entry of DATA (default y)")
    p.add_argument(
        "--mask-key",
        default=None,
        help="mask entry of DATA (default: 'mask' if present, else all entries count)",
    )
    p.add_argument(
        "--batch-first",
        action="store_true",
        help="DATA arrays are (B, T, ...) instead of time-major (T, B, ...)",
    )
    p.add_argument(
        "--alpha",
        type=unit_interval("--alpha"),
        default=0.9,
        help="split threshold relative to the spectral radius (default 0.9)",
    )
    p.add_argument(
        "--metric",
        choices=_METRICS,
        default="fvu",
        help="score of each variant (default fvu)",
    )
    p.add_argument(
        "--leak",
        type=unit_interval("--leak"),
        default=None,
        help="leak of a foreign file's network (default 1; own files store it)",
    )
    p.add_argument(
        "--subspaces",
        action="store_true",
        help=(
            "also print the subspace measures of each block on the hidden states of "
            "DATA (as rnnschur ablate --subspaces): removed mass, activity-weighted "
            "size, alignment indices with their null, principal angles with PCs, "
            "readout and input spaces"
        ),
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_diagnose)
    return p


def _read_data(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """x, y and mask (or None) from ``--data``; missing keys list what the file has."""
    try:
        with np.load(args.data, allow_pickle=False) as f:
            entries = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        msg = f"cannot read --data {args.data}: {exc}"
        raise _UsageError(msg) from None
    wanted = {"--x-key": args.x_key, "--y-key": args.y_key}
    if args.mask_key is not None:
        wanted["--mask-key"] = args.mask_key
    missing = [f"{opt} {key!r}" for opt, key in wanted.items() if key not in entries]
    if missing:
        have = ", ".join(f"{k} {v.dtype}{v.shape}" for k, v in entries.items())
        msg = f"{args.data} has no {' and no '.join(missing)}; it holds: {have or 'nothing'}"
        raise _UsageError(msg)
    mask_key = args.mask_key if args.mask_key is not None else "mask"
    return entries[args.x_key], entries[args.y_key], entries.get(mask_key)


def _load_model(args: argparse.Namespace) -> Any:
    from .io import load_network

    kwargs: dict[str, Any] = {"batch_first": args.batch_first}
    if args.leak is not None:
        kwargs["leak"] = args.leak
    return load_network(args.model, **kwargs)


def _subspaces(net: Any, x: Any, args: argparse.Namespace) -> Any:
    """:func:`rnnschur.subspace_alignment` of the factored matrix (the effective
    recurrence, as the ablation table) on the network's hidden states over ``x``."""
    from .alignment import subspace_alignment

    _, H = net.rollout(x, return_hidden=True, batch_first=args.batch_first)
    return subspace_alignment(
        net.effective_recurrence(), H, W_hy=net.W_hy, W_xh=net.W_xh,
        alpha=args.alpha, n_null=1000, rng=0,
    )  # fmt: skip


def _finite_or_none(v: Any) -> Any:
    """JSON has no NaN: undefined measures become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite_or_none(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite_or_none(x) for x in v]
    return v


def _json_text(result: Any, args: argparse.Namespace, subspaces: Any) -> str:
    def num(v: float) -> float | None:
        return None if math.isnan(v) else v

    rows = [
        {k: (list(v) if k == "subset" else num(v)) for k, v in r.items()}
        for r in result.to_records()
    ]
    out = {
        "model": args.model,
        "data": args.data,
        "metric": result.metric_name,
        "alpha": result.alpha,
        "threshold": result.threshold,
        "leak": result.leak,
        "n": result.n,
        "n_R": result.n_R,
        "n_C": result.n_C,
        "moduli": [float(v) for v in result.moduli],
        "rows": rows,
    }
    if subspaces is not None:
        out["subspaces"] = _finite_or_none(subspaces.to_records())
        out["subspace_angles"] = _finite_or_none(subspaces.angle_records())
    return json.dumps(out, indent=2)


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Run ``rnnschur diagnose``; print the table (or JSON) and return the exit code."""
    from .diagnose import diagnose
    from .network import UnsupportedNetworkError
    from .training import CheckpointError

    prog = "rnnschur diagnose"
    try:
        x, y, mask = _read_data(args)
        try:
            net = _load_model(args)
        except (CheckpointError, UnsupportedNetworkError, OSError, ImportError) as exc:
            print(f"{prog}: cannot load {args.model}: {exc}", file=sys.stderr)
            return 1
        result = diagnose(
            net, x, y, mask, alpha=args.alpha, metric=args.metric,
            batch_first=args.batch_first,
        )  # fmt: skip
        subspaces = _subspaces(net, x, args) if args.subspaces else None
    except (_UsageError, ValueError, TypeError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(_json_text(result, args, subspaces))
        return 0
    text = result.to_markdown()
    if subspaces is not None:
        # the one formatter of the subspace table, shared with rnnschur ablate
        text += "\n\n" + subspaces.to_markdown()
    print(text)
    return 0
