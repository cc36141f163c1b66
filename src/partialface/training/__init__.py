"""Training: config, the seeded and resumable training loop, checkpoints, distribution.

>>> from partialface.training import load_config, Trainer
>>> cfg = load_config("configs/partialface_lfw_dev.yaml", ["MAX_SAMPLES=5000"])
>>> cfg = load_config(["configs/partialface_lfw_dev.yaml", "configs/rows/fixed.yaml"])  # combined
>>> summary = Trainer(cfg).fit()

``python -m partialface.train CONFIG [CONFIG ...] [--set KEY=VALUE ...]`` (or under ``torchrun``) does the same.
"""

from ..checkpoint import CHECKPOINT_FORMAT, export_model, load_checkpoint, save_checkpoint
from .config import (
    DEFAULTS,
    apply_overrides,
    backbone_registry_name,
    combine_configs,
    head_registry_name,
    load_config,
    parse_overrides,
    resolve_config,
)
from .data import TrainingData, build_training_data
from .dev_evaluation import DevEvaluator
from .distributed import DistributedContext, SynchronizedBatchNorm, init_distributed, synchronize_batch_norm
from .sampler import EpochBatchSampler
from .schedule import StepSchedule, build_optimizer, build_scheduler, parameter_groups
from .step import FaceClassifier, StepResult, train_step
from .trainer import Trainer, build_plan

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULTS",
    "DevEvaluator",
    "DistributedContext",
    "EpochBatchSampler",
    "FaceClassifier",
    "StepResult",
    "StepSchedule",
    "SynchronizedBatchNorm",
    "Trainer",
    "TrainingData",
    "apply_overrides",
    "backbone_registry_name",
    "build_optimizer",
    "build_plan",
    "build_scheduler",
    "build_training_data",
    "combine_configs",
    "export_model",
    "head_registry_name",
    "init_distributed",
    "load_checkpoint",
    "load_config",
    "parameter_groups",
    "parse_overrides",
    "resolve_config",
    "save_checkpoint",
    "synchronize_batch_norm",
    "train_step",
]
