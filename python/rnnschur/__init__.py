"""rnnschur: train small tanh RNNs on CPU and ablate their ordered real Schur couplings."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import _core
from .ablation import Ablation, ablate
from .diagnose import DiagnoseResult, diagnose
from .importers import from_flax, from_torch
from .io import from_arrays, load_network
from .network import Network, UnsupportedNetworkError
from .rnn import loss_and_grad, rollout
from .schur import SchurForm, SchurSplit, SwapRejected, ordered_schur, schur_split
from .tasks import (
    ContextIntegration,
    CopyTask,
    FlipFlop,
    SineGeneration,
    make_task,
    task_from_dict,
)

# ``train`` (the function) stays in ``rnnschur.train``: exporting it here would
# shadow the submodule (``import rnnschur.train as tr`` would yield the function).
from .train import (
    CheckpointError,
    TrainConfig,
    TrainedModel,
    TrainingDiverged,
    evaluate,
    load,
    save,
)

try:
    __version__ = version("rnnschur")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Ablation",
    "CheckpointError",
    "ContextIntegration",
    "CopyTask",
    "DiagnoseResult",
    "FlipFlop",
    "Network",
    "SchurForm",
    "SchurSplit",
    "SineGeneration",
    "SwapRejected",
    "TrainConfig",
    "TrainedModel",
    "TrainingDiverged",
    "UnsupportedNetworkError",
    "__version__",
    "_core",
    "ablate",
    "diagnose",
    "evaluate",
    "from_arrays",
    "from_flax",
    "from_torch",
    "load",
    "load_network",
    "loss_and_grad",
    "make_task",
    "ordered_schur",
    "rollout",
    "save",
    "schur_split",
    "task_from_dict",
]
