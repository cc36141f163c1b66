"""What a training step minimises: the margin loss, and the losses that reach beyond the labels.

With a few thousand labelled photos a margin loss (CosFace) memorises its training identities; three
more signals are measured in ``docs/results.md``:

- **Embedding distillation** (``DISTILL_WEIGHT``): a learned linear map of the student's embedding
  should point where the teacher's descriptor of the same image points (1 - cosine). The teacher
  (dlib's ResNet, :mod:`.teacher`) was trained on millions of faces, so its geometry carries what the
  small set cannot; and it labels people with one photo, whom the margin loss cannot use.
- **Relational distillation** (``RELATION_WEIGHT``): the batch's cosine-similarity matrix of student
  embeddings should equal the teacher's (mean squared difference off the diagonal): only the
  relations are copied, not the coordinates, so no projection is needed.
- **View consistency** (``CONSISTENCY_WEIGHT``, with ``VIEWS`` >= 2): the embeddings of the views of
  one image (each with its own flip, augmentation and, for PartialFace, rank) should agree. For
  PartialFace this asks directly for what verification needs: one face under two random ranks must
  give one template.

Teacher descriptors are centred on the training set's mean and L2-normalised once: dlib's raw
descriptors share a large common component, which would make every cosine close to 1.

Identities with fewer than ``MARGIN_MIN_IMAGES`` images have labels ``>= num_classes`` (no class in
the head): the margin loss skips them, the other losses use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config_checks import ConfigError

__all__ = ["ObjectiveWeights", "TrainingObjective", "check_objective_config", "prepare_teacher_targets"]


@dataclass(frozen=True)
class ObjectiveWeights:
    """The weights of the four losses and the number of views of each image in a batch."""

    margin: float = 1.0
    distill: float = 0.0
    relation: float = 0.0
    consistency: float = 0.0
    views: int = 1

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ObjectiveWeights:
        return cls(cfg["MARGIN_WEIGHT"], cfg["DISTILL_WEIGHT"], cfg["RELATION_WEIGHT"], cfg["CONSISTENCY_WEIGHT"],
                   cfg["VIEWS"])

    @property
    def needs_teacher(self) -> bool:
        return self.distill > 0 or self.relation > 0

    @property
    def plain(self) -> bool:
        """Only the margin loss, at weight 1, one view: the step TFace trains."""
        return self == ObjectiveWeights()


def check_objective_config(cfg: Mapping[str, Any]) -> None:
    """The objective keys that must agree with each other and with the data (raises ConfigError)."""
    batch = cfg["DATASETS"][0]["batch_size"]
    if batch % cfg["VIEWS"]:
        raise ConfigError(f"VIEWS {cfg['VIEWS']} must divide the batch size {batch} (a batch holds batch_size / VIEWS "
                          "images)", ("VIEWS", "DATASETS"))
    if cfg["CONSISTENCY_WEIGHT"] > 0 and cfg["VIEWS"] < 2:
        raise ConfigError("CONSISTENCY_WEIGHT needs VIEWS >= 2 (views of one image to agree)",
                          ("CONSISTENCY_WEIGHT", "VIEWS"))
    if (cfg["DISTILL_WEIGHT"] > 0 or cfg["RELATION_WEIGHT"] > 0) and not cfg["TEACHER_CACHE"]:
        raise ConfigError("DISTILL_WEIGHT and RELATION_WEIGHT need TEACHER_CACHE (the teacher's descriptors)",
                          ("DISTILL_WEIGHT", "RELATION_WEIGHT", "TEACHER_CACHE"))
    if cfg["DATA_FORMAT"] == "recordio" and (len(cfg["DATASETS"]) > 1 or cfg["TEACHER_CACHE"]):
        raise ConfigError("several DATASETS and TEACHER_CACHE need image files: use folders or index data",
                          ("DATA_FORMAT", "DATASETS", "TEACHER_CACHE"))
    if cfg["MARGIN_WEIGHT"] == cfg["DISTILL_WEIGHT"] == cfg["RELATION_WEIGHT"] == cfg["CONSISTENCY_WEIGHT"] == 0:
        raise ConfigError("every loss weight is 0: nothing to train", ("MARGIN_WEIGHT", "DISTILL_WEIGHT"))


def prepare_teacher_targets(descriptors: torch.Tensor) -> torch.Tensor:
    """Teacher descriptors (N, 2, D) centred on their mean and L2-normalised (float32)."""
    centred = descriptors.float() - descriptors.float().reshape(-1, descriptors.shape[-1]).mean(0)
    return F.normalize(centred, dim=-1)


def _off_diagonal_mse(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    mask = ~torch.eye(first.shape[0], dtype=torch.bool, device=first.device)
    return (first - second)[mask].pow(2).mean()


@dataclass
class StepLosses:
    """The total loss of a step, its parts (floats, for the log) and the margin head's top-1 hits."""

    total: torch.Tensor
    parts: dict[str, float]
    correct: int
    scored: int


class TrainingObjective:
    """The losses of a training step for one run.

    Args:
        weights: the loss weights and views.
        num_classes: classes of the head; larger labels get no margin loss.
        teacher: prepared teacher targets (num_images, 2, D) (:func:`prepare_teacher_targets`), row 1 of
            each image the mirrored face; None without a teacher.
    """

    def __init__(self, weights: ObjectiveWeights, num_classes: int, teacher: torch.Tensor | None = None) -> None:
        if weights.needs_teacher and teacher is None:
            raise ValueError("distillation weights need teacher targets")
        self.weights = weights
        self.num_classes = num_classes
        self.teacher = teacher

    @property
    def teacher_size(self) -> int | None:
        return None if self.teacher is None else int(self.teacher.shape[-1])

    def targets(self, keys: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor | None:
        """The teacher targets (B, D) of images ``keys`` (indices into the training images), mirrored where flipped."""
        if self.teacher is None:
            return None
        return self.teacher[keys.cpu(), flipped.cpu().long()]

    def __call__(self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
                 projected: torch.Tensor | None, targets: torch.Tensor | None) -> StepLosses:
        """The losses of one batch: ``embeddings`` (B, E) float, the head's ``logits`` (B, C) (computed with
        labels clamped into the head), ``projected`` (B, D) the distillation projection of the embeddings."""
        w = self.weights
        parts: dict[str, float] = {}
        total = embeddings.new_zeros(())
        scored_rows = labels < self.num_classes
        scored = int(scored_rows.sum())
        correct = int((logits.detach()[scored_rows].argmax(dim=1) == labels[scored_rows]).sum()) if scored else 0
        if w.margin > 0:
            margin = F.cross_entropy(logits[scored_rows], labels[scored_rows]) if scored else total
            total = total + w.margin * margin
            parts["margin_loss"] = float(margin.detach())
        if w.distill > 0:
            assert projected is not None and targets is not None
            distill = (1.0 - F.cosine_similarity(projected, targets.to(projected), dim=1)).mean()
            total = total + w.distill * distill
            parts["distill_loss"] = float(distill.detach())
        if w.relation > 0:
            assert targets is not None
            student = F.normalize(embeddings, dim=1)
            teacher = targets.to(student)
            relation = _off_diagonal_mse(student @ student.T, teacher @ teacher.T)
            total = total + w.relation * relation
            parts["relation_loss"] = float(relation.detach())
        if w.consistency > 0:
            views = F.normalize(embeddings, dim=1).view(w.views, -1, embeddings.shape[1])
            pairs = [(i, j) for i in range(w.views) for j in range(i + 1, w.views)]
            consistency = torch.stack([(1.0 - (views[i] * views[j]).sum(1)).mean() for i, j in pairs]).mean()
            total = total + w.consistency * consistency
            parts["consistency_loss"] = float(consistency.detach())
        return StepLosses(total, parts, correct, scored)


def distillation_projection(embedding_size: int, teacher_size: int) -> nn.Module:
    """The learned map from the student's embedding to the teacher's descriptor space (no bias: cosines)."""
    return nn.Linear(embedding_size, teacher_size, bias=False)
