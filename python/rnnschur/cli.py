"""The ``rnnschur`` command.

Each subcommand is a pair of functions: ``add_<name>_parser(subparsers)`` declares its
arguments and sets ``func`` to ``cmd_<name>(args) -> int``. :data:`SUBCOMMANDS` lists
the ``add_*`` functions; :func:`main` builds the parser from it and dispatches.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from ._version import library_version
from .cli_diagnose import add_diagnose_parser
from .cli_types import non_negative_int, positive_float, positive_int, unit_interval
from .constructions import CONSTRUCTIONS
from .paper.dynamics_cli import add_fixed_points_parser
from .paper.settings import DEFAULT_ALPHA, DEFAULT_EVAL_SIZE, EXPERIMENTS
from .paper.study_report import add_study_report_parser
from .sweep.cli import add_sweep_parser
from .tasks import TASKS, Task
from .training import LR_SCHEDULES, NEURO_CONFIG, PAPER_CONFIG

__all__ = [
    "SUBCOMMANDS",
    "add_ablate_parser",
    "add_reproduce_parser",
    "add_train_parser",
    "build_parser",
    "cmd_ablate",
    "cmd_reproduce",
    "cmd_train",
    "main",
]


def _checkpoint_path(text: str) -> str:
    """A file path whose directory exists and is writable (checked before training,
    so a typo does not cost a whole run)."""
    path = Path(text)
    if path.is_dir():
        msg = f"{text!r} is a directory; expected a file path such as model.npz"
        raise argparse.ArgumentTypeError(msg)
    parent = path.parent
    if not parent.is_dir():
        msg = f"directory {str(parent)!r} does not exist"
        raise argparse.ArgumentTypeError(msg)
    if not os.access(parent, os.W_OK | os.X_OK):
        msg = f"directory {str(parent)!r} is not writable"
        raise argparse.ArgumentTypeError(msg)
    return text


# --------------------------------------------------------------------------- train


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``rnnschur train``."""
    p = subparsers.add_parser(
        "train",
        help="train one network and save it",
        description=(
            "Train a one-layer tanh RNN with Adam on one of the paper's tasks and save "
            "it as a checkpoint (.npz). Defaults: for flipflop, sine and cdi the "
            f"paper's settings ({PAPER_CONFIG.epochs} epochs x "
            f"{PAPER_CONFIG.batches_per_epoch} batches of {PAPER_CONFIG.batch_size}, "
            f"Adam lr {PAPER_CONFIG.lr:g}) with the lr annealed to "
            f"{NEURO_CONFIG.lr * NEURO_CONFIG.lr_final:g} "
            "(rnnschur.training.NEURO_CONFIG; --schedule constant gives the literal "
            "paper setting), for copy the documented copy-task settings "
            "(rnnschur.training.COPY_CONFIG)."
        ),
    )
    p.add_argument(
        "--task",
        required=True,
        type=_task_arg,
        metavar="NAME[:k=v,...]",
        help=(
            f"task ({', '.join(sorted(TASKS))}), optionally with parameters, e.g. "
            "flipflop:pulse_prob=0.5 (the syntax of rnnschur ablate --task)"
        ),
    )
    p.add_argument("--construction", required=True, choices=CONSTRUCTIONS)
    p.add_argument(
        "--hidden",
        required=True,
        type=positive_int,
        metavar="N",
        help="hidden size Nh",
    )
    p.add_argument("--seed", required=True, type=non_negative_int, metavar="S")
    p.add_argument(
        "--out",
        required=True,
        type=_checkpoint_path,
        metavar="PATH",
        help="checkpoint path (written atomically)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        help=(
            "number of epochs (copy: the replay-lag curriculum keeps its epoch "
            "boundaries, so runs shorter than its last phase never train on all lags; "
            "the summary prints the curriculum)"
        ),
    )
    p.add_argument("--batches", type=positive_int, help="batches per epoch")
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float, help="peak Adam learning rate")
    p.add_argument("--clip", type=positive_float, help="gradient-norm clip")
    p.add_argument("--schedule", choices=LR_SCHEDULES, help="learning-rate schedule")
    p.add_argument("--threads", type=positive_int, help="threads for the core")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    return p


def _task_arg(text: str) -> Task:
    """``NAME`` or ``NAME:k=v,...`` as a task, read as ``rnnschur ablate --task`` reads
    it; a bad name or parameter is a usage error."""
    from .paper.profile import parse_task

    try:
        return parse_task(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _describe_task(task) -> str:
    d = task.to_dict()
    name = d.pop("name")
    return f"{name} ({', '.join(f'{k}={v}' for k, v in d.items())})"


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``rnnschur train``; print a summary with the held-out metric."""
    from .training import TrainingDiverged, default_config, evaluate, save, train

    task = args.task
    overrides = {
        k: v
        for k, v in (
            ("epochs", args.epochs),
            ("batches_per_epoch", args.batches),
            ("batch_size", args.batch_size),
            ("lr", args.lr),
            ("clip", args.clip),
            ("lr_schedule", args.schedule),
            ("n_threads", args.threads),
        )
        if v is not None
    }
    config = dataclasses.replace(default_config(task), **overrides)
    try:
        model = train(
            task,
            args.construction,
            args.hidden,
            seed=args.seed,
            config=config,
            progress=not args.quiet,
        )
    except TrainingDiverged as exc:
        print(f"rnnschur train: training diverged: {exc}", file=sys.stderr)
        return 1
    scores = evaluate(model)
    path = save(args.out, model)
    c = model.config
    training = (
        f"{c.total_steps} Adam steps ({c.epochs} epoch{'s' * (c.epochs != 1)} x "
        f"{c.batches_per_epoch} "
        f"batches of {c.batch_size}), lr {c.lr:g} ({c.lr_schedule}), clip {c.clip}"
    )
    if c.copy_curriculum:
        phases = [(e, n) for e, n in c.copy_curriculum if e < c.epochs]
        training += "; replay lags by epoch: " + ", ".join(
            f"{n} from {e}" for e, n in phases
        )
    lines = [
        ("task", _describe_task(task)),
        ("construction", model.construction),
        ("hidden", str(model.hidden)),
        ("seed", str(model.seed)),
        ("training", training),
        ("train time", f"{model.train_seconds:.2f} s"),
        ("held-out", f"{c.eval_size} sequences (split 'test', seed {c.eval_seed})"),
        ("  loss", f"{scores['loss']:.6g}"),
        ("  FVU", f"{scores['fvu']:.6g}"),
    ]
    if "accuracy" in scores:
        lines.append(("  replay acc.", f"{scores['accuracy']:.6f}"))
    lines.append(("saved", str(path)))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    return 0


# --------------------------------------------------------------------------- reproduce


def add_reproduce_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``rnnschur reproduce``."""
    p = subparsers.add_parser(
        "reproduce",
        help="train, ablate and report: the paper end to end",
        description=(
            "Train every network of the paper's experiments (or reuse them from "
            "OUT/models), take them apart in ordered Schur coordinates, and write "
            "OUT/report.md with tables beside the paper's values, a verdict per claim, "
            "figure1.png, figure2.png, results.json and CSV tables. The default runs "
            "the paper's full settings; --quick runs a reduced version in a few "
            "minutes, labelled as such in the report."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--quick", action="store_true", help="reduced settings")
    p.add_argument(
        "--only",
        choices=EXPERIMENTS,
        action="append",
        help="run only this experiment (repeatable; default: all)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="train N models at once in separate processes (default 1)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_reproduce)
    return p


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run ``rnnschur reproduce``."""
    from .paper.parallel import Terminated
    from .paper.reproduce import reproduce

    resume = (
        f"finished models are kept in {args.out}/models; run the same command again "
        "to resume"
    )
    try:
        reproduce(
            args.out,
            quick=args.quick,
            only=args.only,
            jobs=args.jobs,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(f"rnnschur reproduce: interrupted; {resume}", file=sys.stderr)
        return 130
    except Terminated:
        print(f"rnnschur reproduce: terminated; {resume}", file=sys.stderr)
        return 143
    return 0


# --------------------------------------------------------------------------- ablate


def add_ablate_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``rnnschur ablate``."""
    p = subparsers.add_parser(
        "ablate",
        help="print the 8-subset Schur ablation table of one checkpoint",
        description=(
            "Factor W_hh of a trained checkpoint in ordered real Schur form, split it "
            "at |λ| ≥ α ρ(W), zero every subset of {T_RR, T_C→R, T_CC}, and print the "
            "removed Schur mass and the held-out metric of each variant (replay "
            "accuracy for the copy task, FVU otherwise)."
        ),
    )
    p.add_argument("model", metavar="MODEL.npz", help="checkpoint from rnnschur train")
    p.add_argument(
        "--alpha",
        type=unit_interval("--alpha"),
        default=DEFAULT_ALPHA,
        help=f"split threshold ({DEFAULT_ALPHA})",
    )
    p.add_argument(
        "--task",
        metavar="NAME[:k=v,...]",
        help=(
            "evaluate on this task instead of the checkpoint's own, e.g. "
            "copy:lags=256 to score replay beyond the trained horizon (input and "
            f"output widths must match; names: {', '.join(sorted(TASKS))})"
        ),
    )
    p.add_argument(
        "--eval-size",
        type=positive_int,
        default=DEFAULT_EVAL_SIZE,
        metavar="N",
        help=f"held-out sequences ({DEFAULT_EVAL_SIZE})",
    )
    p.add_argument(
        "--subspaces",
        action="store_true",
        help=(
            "also print the subspace measures of each block on held-out hidden "
            "states: removed mass, activity-weighted size, alignment indices with "
            "their null, principal angles with PCs, readout and input spaces"
        ),
    )
    p.set_defaults(func=cmd_ablate)
    return p


def cmd_ablate(args: argparse.Namespace) -> int:
    """Run ``rnnschur ablate``."""
    from .paper.profile import ablation_table
    from .training import CheckpointError

    try:
        text = ablation_table(
            args.model, alpha=args.alpha, task=args.task, eval_size=args.eval_size
        )
        if args.subspaces:
            from .paper.dynamics_cli import subspace_table

            text += "\n\n" + subspace_table(args.model, alpha=args.alpha)
    except (CheckpointError, OSError, ValueError, TypeError) as exc:
        print(f"rnnschur ablate: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


# --------------------------------------------------------------------------- main

#: ``add_<name>_parser`` functions, one per subcommand.
SUBCOMMANDS = [
    add_train_parser,
    add_reproduce_parser,
    add_ablate_parser,
    add_sweep_parser,
    add_study_report_parser,
    add_diagnose_parser,
    lambda sub: add_fixed_points_parser(sub, unit_interval("--alpha")),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``rnnschur`` argument parser with every subcommand of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="rnnschur",
        description="Train small tanh RNNs and ablate their ordered real Schur couplings.",
    )
    parser.add_argument(
        "--version", action="version", version=f"rnnschur {library_version()}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnschur`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
