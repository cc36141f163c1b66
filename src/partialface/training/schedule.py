"""Optimisation: SGD parameter groups (no weight decay on normalisation layers and biases) and the
step learning-rate schedule with optional linear warm-up, evaluated per training step."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import PartialFaceError

__all__ = ["StepSchedule", "parameter_groups", "build_optimizer", "build_scheduler"]

_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class StepSchedule:
    """Piecewise-constant learning rate over training steps, with linear warm-up.

    Args:
        lrs: learning rate of each stage (TFace ``LRS``).
        boundaries: the step at which each later stage starts (``len(lrs) - 1`` ascending values).
        warmup_steps: during the first ``warmup_steps`` steps the rate is multiplied by
            ``(step + 1) / warmup_steps`` (TFace ``WARMUP_STEP``; <= 0 for none).
    """

    lrs: tuple[float, ...]
    boundaries: tuple[int, ...]
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lrs", tuple(float(v) for v in self.lrs))
        object.__setattr__(self, "boundaries", tuple(int(v) for v in self.boundaries))
        if not self.lrs or any(v <= 0 for v in self.lrs):
            raise PartialFaceError(f"learning rates must be positive, got {list(self.lrs)}")
        if len(self.boundaries) != len(self.lrs) - 1:
            raise PartialFaceError(f"{len(self.lrs)} learning rates need {len(self.lrs) - 1} boundaries, got {list(self.boundaries)}")
        if list(self.boundaries) != sorted(self.boundaries) or any(b < 0 for b in self.boundaries):
            raise PartialFaceError(f"stage boundaries must be non-negative and ascending, got {list(self.boundaries)}")

    @classmethod
    def from_config(
        cls,
        lrs: Sequence[float],
        stages: Sequence[float],
        warmup_steps: int,
        steps_per_epoch: int,
        total_steps: int,
        unit: str = "epoch",
    ) -> "StepSchedule":
        """Boundaries from TFace ``STAGES``: epochs (``unit="epoch"``) or fractions of ``total_steps``."""
        if steps_per_epoch < 1 or total_steps < 1:
            raise PartialFaceError(f"steps_per_epoch and total_steps must be >= 1, got {steps_per_epoch}, {total_steps}")
        if unit == "epoch":
            boundaries = [round(stage * steps_per_epoch) for stage in stages]
        elif unit == "fraction":
            boundaries = [round(stage * total_steps) for stage in stages]
        else:
            raise PartialFaceError(f"STAGES_UNIT must be 'epoch' or 'fraction', got {unit!r}")
        return cls(tuple(lrs), tuple(boundaries), max(0, int(warmup_steps)))

    def lr(self, step: int) -> float:
        """Learning rate of (0-based) training step ``step``."""
        rate = self.lrs[bisect.bisect_right(self.boundaries, step)]
        if self.warmup_steps > 0 and step < self.warmup_steps:
            rate *= (step + 1) / self.warmup_steps
        return rate

    def factor(self, step: int) -> float:
        """``lr(step) / lrs[0]`` (the multiplier a ``LambdaLR`` on base rate ``lrs[0]`` applies)."""
        return self.lr(step) / self.lrs[0]


def parameter_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Two SGD groups: weights with ``weight_decay``; normalisation parameters and biases without.

    A parameter is exempt from weight decay when it belongs to a normalisation layer (BatchNorm of any
    kind, GroupNorm, LayerNorm) or is named ``bias``. Shared parameters are counted once.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for root in modules:
        for module in root.modules():
            for name, param in module.named_parameters(recurse=False):
                if not param.requires_grad or id(param) in seen:
                    continue
                seen.add(id(param))
                if isinstance(module, _NORM_LAYERS) or name == "bias":
                    no_decay.append(param)
                else:
                    decay.append(param)
    groups = [{"params": decay, "weight_decay": float(weight_decay), "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(modules: Iterable[nn.Module], lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with momentum over :func:`parameter_groups`."""
    return torch.optim.SGD(parameter_groups(modules, weight_decay), lr=lr, momentum=momentum)


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: StepSchedule) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepped once per training step, following ``schedule``.

    The optimizer's base rate must be ``schedule.lrs[0]``; the rate of step 0 is set immediately.
    """
    for group in optimizer.param_groups:
        group["lr"] = schedule.lrs[0]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule.factor(step))
