"""rnnschur: train small tanh RNNs on CPU and ablate their ordered real Schur couplings."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import _core
from .rnn import loss_and_grad, rollout

try:
    __version__ = version("rnnschur")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__", "_core", "loss_and_grad", "rollout"]
