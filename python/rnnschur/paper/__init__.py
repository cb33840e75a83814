"""The paper reproduction, an application on top of the library.

Modules, in the order data flows through them: :mod:`.values` (the published numbers),
:mod:`.settings` (what a full or quick run trains), :mod:`.models` (the checkpoint
cache; :mod:`.parallel` runs training in worker processes, :mod:`.estimate` predicts
its time), :mod:`.profile` (one network's ablation profile), :mod:`.experiments` (the
paper's tables), :mod:`.claims` (verdicts), :mod:`.figures`, :mod:`.tables` and
:mod:`.report` (output), and :mod:`.reproduce` (all of it, end to end).

Nothing in the library (:mod:`rnnschur` outside this package) imports it. The
end-to-end function is :func:`rnnschur.paper.reproduce.reproduce` (not re-exported
here, so that the name ``rnnschur.paper.reproduce`` stays the module).
"""

from __future__ import annotations

from .claims import CRITERIA, check_claims
from .experiments import run
from .report import write_report
from .settings import EXPERIMENTS, RunSettings

__all__ = [
    "CRITERIA",
    "EXPERIMENTS",
    "RunSettings",
    "check_claims",
    "run",
    "write_report",
]
