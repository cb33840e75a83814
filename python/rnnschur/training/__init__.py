"""Training: configuration and presets (:mod:`.config`), the loop (:mod:`.loop`), the
pieces of one step (:mod:`.step`), held-out evaluation (:mod:`.evaluate`), the trained
model (:mod:`.model`) and the checkpoint format (:mod:`.checkpoint`)."""

from __future__ import annotations

from .checkpoint import FORMAT_NAME, FORMAT_VERSION, CheckpointError, load, save
from .config import (
    COPY_CONFIG,
    DTYPES,
    LR_SCHEDULES,
    NEURO_CONFIG,
    PAPER_CONFIG,
    TrainConfig,
    curriculum_phases,
    default_config,
)
from .evaluate import evaluate, heldout_batch, score
from .loop import train
from .model import TrainedModel, TrainingDiverged

__all__ = [
    "COPY_CONFIG",
    "DTYPES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LR_SCHEDULES",
    "NEURO_CONFIG",
    "PAPER_CONFIG",
    "CheckpointError",
    "TrainConfig",
    "TrainedModel",
    "TrainingDiverged",
    "curriculum_phases",
    "default_config",
    "evaluate",
    "heldout_batch",
    "load",
    "save",
    "score",
    "train",
]
