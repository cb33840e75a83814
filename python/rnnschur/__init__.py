"""rnnschur: train small tanh RNNs on CPU and ablate their ordered real Schur couplings."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import _core
from .ablation import Ablation, ablate
from .schur import SchurForm, SchurSplit, ordered_schur, schur_split

try:
    __version__ = version("rnnschur")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Ablation",
    "SchurForm",
    "SchurSplit",
    "__version__",
    "_core",
    "ablate",
    "ordered_schur",
    "schur_split",
]
