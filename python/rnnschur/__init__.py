"""rnnschur: train small tanh RNNs on CPU and ablate their ordered real Schur couplings.

The library: :mod:`.rnn` (rollout and BPTT in the compiled core), :mod:`.schur`
(ordered real Schur form and the R/C split), :mod:`.ablation` (coupling ablations),
:mod:`.metrics`, :mod:`.tasks`, :mod:`.constructions` and :mod:`.training`. The paper
reproduction (:mod:`rnnschur.paper`) and the command line (:mod:`rnnschur.cli`) are
applications on top of it and are not imported here.
"""

from __future__ import annotations

from . import _core
from ._version import library_version
from .ablation import Ablation, ablate
from .alignment import SubspaceAlignment, subspace_alignment
from .diagnose import DiagnoseResult, diagnose
from .dynamics import FixedPoints, fixed_points
from .dynamics_ablation import FixedPointContinuation, continue_fixed_points
from .importers import from_flax, from_torch
from .io import from_arrays, load_network
from .network import Network, UnsupportedNetworkError
from .predictors import predictor_analysis, predictor_verdict
from .rnn import NonFiniteError, loss_and_grad, rollout
from .schur import SchurForm, SchurSplit, SwapRejected, ordered_schur, schur_split
from .subspaces import principal_angles
from .tasks import (
    ContextIntegration,
    CopyTask,
    FlipFlop,
    SineGeneration,
    make_task,
    task_from_dict,
)
from .training import (
    CheckpointError,
    TrainConfig,
    TrainedModel,
    TrainingDiverged,
    default_config,
    evaluate,
    load,
    save,
    train,
)

__version__ = library_version()

__all__ = [
    "Ablation",
    "CheckpointError",
    "ContextIntegration",
    "CopyTask",
    "DiagnoseResult",
    "FixedPointContinuation",
    "FixedPoints",
    "FlipFlop",
    "Network",
    "NonFiniteError",
    "SchurForm",
    "SchurSplit",
    "SineGeneration",
    "SubspaceAlignment",
    "SwapRejected",
    "TrainConfig",
    "TrainedModel",
    "TrainingDiverged",
    "UnsupportedNetworkError",
    "__version__",
    "_core",
    "ablate",
    "continue_fixed_points",
    "default_config",
    "diagnose",
    "evaluate",
    "fixed_points",
    "from_arrays",
    "from_flax",
    "from_torch",
    "load",
    "load_network",
    "loss_and_grad",
    "make_task",
    "ordered_schur",
    "predictor_analysis",
    "predictor_verdict",
    "principal_angles",
    "rollout",
    "save",
    "schur_split",
    "subspace_alignment",
    "task_from_dict",
    "train",
]
