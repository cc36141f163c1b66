"""One training step: the backbone and margin head as one module, and the optimisation step on a batch.

Kept apart from the loop (:mod:`.trainer`) so that what a step computes -- encoder, autocast,
channels-last, loss, optimiser -- can be measured alone (``benchmarks/train_step.py``) and read at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..encoders import InputEncoder
from .objective import TrainingObjective

__all__ = ["FaceClassifier", "StepResult", "train_step"]


class FaceClassifier(nn.Module):
    """Backbone and margin head as one module (what DDP wraps): ``forward(inputs, labels) -> logits``.

    With ``autocast`` set (``torch.float16`` for CUDA's AMP, ``torch.bfloat16`` for ``CPU_BFLOAT16``) the
    backbone runs under autocast in that type and the head in float32. With ``channels_last=True`` the
    inputs are laid out channels-last (move the module with ``.to(memory_format=torch.channels_last)``
    too); the values are the same, the convolutions faster.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, autocast: torch.dtype | None = None,
                 channels_last: bool = False, projection: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.projection = projection  # the distillation map to the teacher's space (training only)
        self.autocast = autocast
        self.channels_last = channels_last

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor, with_embeddings: bool = False) -> Any:
        """The head's logits; with ``with_embeddings`` ``(embeddings, logits, projected)`` for
        :class:`.objective.TrainingObjective` (labels beyond the head are clamped into it: their logits
        are not scored)."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=inputs.device.type, dtype=self.autocast or torch.float32,
                            enabled=self.autocast is not None):
            embeddings = self.backbone(inputs)
        if not with_embeddings:
            return self.head(embeddings.float(), labels)
        embeddings = embeddings.float()
        logits = self.head(embeddings, labels.clamp(max=self.head.num_classes - 1))
        projected = self.projection(embeddings) if self.projection is not None else None
        return embeddings, logits, projected


@dataclass(frozen=True)
class StepResult:
    """Outcome of one training step: mean loss, correct top-1 (margin logits), seconds spent; ``scored``
    rows had a class in the head (None: all), ``parts`` the objective's losses."""

    loss: float
    correct: int
    batch: int
    encode_seconds: float
    step_seconds: float
    scored: int | None = None
    parts: Mapping[str, float] = field(default_factory=dict)


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    encoder: InputEncoder,
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    objective: TrainingObjective | None = None,
    targets: torch.Tensor | None = None,
) -> StepResult:
    """One optimisation step on RGB ``images`` (on the model's device) and ``labels`` (CPU).

    ``model`` is a :class:`FaceClassifier` (or DDP around one). The encoder turns the faces into the
    model input with ``generator`` (a CPU generator; encoders draw ranks from the CPU labels); the loss
    is cross-entropy on the head's margin logits, or ``objective``'s losses (with the teacher
    ``targets`` of the batch) when given.
    """
    device = images.device
    start = time.perf_counter()
    inputs = encoder.encode_train(images, labels.cpu(), generator)
    _synchronize(device)
    encoded = time.perf_counter()
    labels = labels.to(device, non_blocking=True)
    scored, parts = None, {}
    if objective is None:
        logits = model(inputs, labels)
        loss = F.cross_entropy(logits, labels)
        correct = int((logits.detach().argmax(dim=1) == labels).sum())
    else:
        embeddings, logits, projected = model(inputs, labels, with_embeddings=True)
        losses = objective(embeddings, logits, labels, projected, targets)
        loss, correct, scored, parts = losses.total, losses.correct, losses.scored, losses.parts
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    loss_value = float(loss.detach())
    _synchronize(device)
    end = time.perf_counter()
    return StepResult(loss_value, correct, int(labels.shape[0]), encoded - start, end - start, scored, parts)
