"""Classification heads for training face embeddings: ArcFace, CosFace, CurricularFace, Softmax.

A head holds one weight vector per training identity (``num_classes x embedding_size``) and turns a
batch of embeddings and labels into logits for ``torch.nn.functional.cross_entropy``. Margin heads
compare L2-normalised embeddings with L2-normalised class weights (cosines) and penalise the target
class (Deng et al. 2019, Wang et al. 2018, Huang et al. 2020). Called without labels, every margin
head returns the plain scaled cosines ``s * cos(theta)`` (for prediction or monitoring).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Registry

__all__ = [
    "ClassHead",
    "MarginHead",
    "ArcFace",
    "CosFace",
    "CurricularFace",
    "SoftmaxHead",
    "HEADS",
    "register_head",
    "get_head",
    "list_heads",
]

HEADS: Registry[Callable[..., nn.Module]] = Registry("head")


def register_head(name: str) -> Callable[[Any], Any]:
    """Decorator registering a head class under ``name``."""
    return HEADS.register(name)


def get_head(name: str, embedding_size: int, num_classes: int, **kwargs: Any) -> ClassHead:
    """Build the head registered as ``name`` (``"arcface"``, ``"cosface"``, ``"curricularface"``, ``"softmax"``).

    Keyword arguments (``s``, ``m``, ``easy_margin``) go to the head's constructor.

    Raises:
        ValueError: for an unknown name (the message lists the known ones) or bad sizes.
    """
    return HEADS.build(name, embedding_size, num_classes, **kwargs)


def list_heads() -> list[str]:
    """Names of all registered heads, sorted."""
    return HEADS.names()


class ClassHead(nn.Module, ABC):
    """Base of all heads: the ``(num_classes, embedding_size)`` class-weight matrix and input checks.

    Args:
        embedding_size: length of the embeddings.
        num_classes: number of training identities.
    """

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        for name, value in (("embedding_size", embedding_size), ("num_classes", num_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)

    @abstractmethod
    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for embeddings ``(B, embedding_size)`` and optional labels ``(B,)``."""

    def _check_embeddings(self, embeddings: torch.Tensor) -> None:
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"{type(self).__name__} expects embeddings of shape (B, {self.embedding_size}), "
                f"got {tuple(embeddings.shape)}"
            )

    def _check_labels(self, labels: torch.Tensor, batch: int) -> torch.Tensor:
        if labels.shape != (batch,) or labels.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"{type(self).__name__} expects integer labels of shape ({batch},), "
                f"got {labels.dtype} of shape {tuple(labels.shape)}"
            )
        if batch and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(
                f"{type(self).__name__}: labels must lie in [0, {self.num_classes - 1}], "
                f"got range [{int(labels.min())}, {int(labels.max())}]"
            )
        return labels.long()

    def extra_repr(self) -> str:
        return f"embedding_size={self.embedding_size}, num_classes={self.num_classes}"


class MarginHead(ClassHead):
    """Base of the cosine heads: logits are ``s`` times the cosines between the L2-normalised
    embeddings and L2-normalised class weights, with a margin on the target class.

    Args:
        embedding_size: length of the embeddings.
        num_classes: number of training identities.
        s: scale applied to the cosines.
    """

    def __init__(self, embedding_size: int, num_classes: int, s: float = 64.0) -> None:
        super().__init__(embedding_size, num_classes)
        if s <= 0:
            raise ValueError(f"{type(self).__name__}: scale s must be positive, got {s}")
        self.s = float(s)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosines between each embedding and each class weight: ``(B, num_classes)`` in [-1, 1]."""
        self._check_embeddings(embeddings)
        cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))
        return cos.clamp(-1.0, 1.0)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)``: with the margin on the target class when ``labels`` are given,
        else the plain scaled cosines."""
        cos = self.cosine(embeddings)
        if labels is None:
            return self.s * cos
        labels = self._check_labels(labels, cos.shape[0])
        return self.margin_logits(cos, labels)

    @abstractmethod
    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scaled logits with the head's margin applied to ``cos[i, labels[i]]``."""

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, s={self.s}"


def _cos_plus_margin(target: torch.Tensor, m: float) -> torch.Tensor:
    """``cos(theta + m)`` from ``cos(theta)``, for theta in [0, pi]."""
    sin = torch.sqrt((1.0 - target * target).clamp_min(1e-12))
    return target * math.cos(m) - sin * math.sin(m)


def _angular_margin_target(target: torch.Tensor, m: float, easy_margin: bool) -> torch.Tensor:
    """``cos(theta + m)`` for target cosines, with insightface's fallback where ``theta + m`` passes pi.

    Without ``easy_margin`` the penalised logit is used while ``theta < pi - m``; beyond it the
    monotonic fallback ``cos(theta) - m * sin(m)`` (insightface's ``th`` / ``mm``) keeps the logit
    decreasing in theta. With ``easy_margin`` the margin applies only where ``cos(theta) > 0``.
    """
    cos_theta_m = _cos_plus_margin(target, m)
    if easy_margin:
        return torch.where(target > 0, cos_theta_m, target)
    threshold = math.cos(math.pi - m)
    fallback = math.sin(math.pi - m) * m
    return torch.where(target > threshold, cos_theta_m, target - fallback)


@register_head("arcface")
class ArcFace(MarginHead):
    """Additive angular margin: target logit ``s * cos(theta + m)`` (Deng et al., CVPR 2019).

    Args:
        embedding_size, num_classes: sizes of the class-weight matrix.
        s: scale (64).
        m: angular margin in radians (0.5).
        easy_margin: apply the margin only to positive cosines instead of the ``th``/``mm`` fallback.
    """

    def __init__(
        self, embedding_size: int, num_classes: int, s: float = 64.0, m: float = 0.5, easy_margin: bool = False
    ) -> None:
        super().__init__(embedding_size, num_classes, s)
        if not 0.0 <= m < math.pi / 2:
            raise ValueError(f"ArcFace margin m must be in [0, pi/2) radians, got {m}")
        self.m = float(m)
        self.easy_margin = easy_margin

    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = cos.gather(1, labels[:, None])
        penalised = _angular_margin_target(target, self.m, self.easy_margin)
        return self.s * cos.scatter(1, labels[:, None], penalised)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.m}, easy_margin={self.easy_margin}"


@register_head("cosface")
class CosFace(MarginHead):
    """Additive cosine margin: target logit ``s * (cos(theta) - m)`` (Wang et al., CVPR 2018).

    Defaults follow insightface (s = 64, m = 0.4).
    """

    def __init__(self, embedding_size: int, num_classes: int, s: float = 64.0, m: float = 0.4) -> None:
        super().__init__(embedding_size, num_classes, s)
        if m < 0:
            raise ValueError(f"CosFace margin m must be non-negative, got {m}")
        self.m = float(m)

    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        margin = torch.zeros_like(cos).scatter_(1, labels[:, None], self.m)
        return self.s * (cos - margin)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.m}"


@register_head("curricularface")
class CurricularFace(MarginHead):
    """ArcFace target logit plus adaptive weighting of hard negatives (Huang et al., CVPR 2020).

    A non-target cosine larger than the penalised target cosine is a hard negative and becomes
    ``cos * (t + cos)``, where ``t`` is a running mean (momentum 0.01) of the target cosines,
    updated only in training mode and kept in the ``t`` buffer (saved with the state dict).
    """

    t: torch.Tensor

    def __init__(
        self, embedding_size: int, num_classes: int, s: float = 64.0, m: float = 0.5, momentum: float = 0.01
    ) -> None:
        super().__init__(embedding_size, num_classes, s)
        if not 0.0 <= m < math.pi / 2:
            raise ValueError(f"CurricularFace margin m must be in [0, pi/2) radians, got {m}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"CurricularFace momentum must be in (0, 1], got {momentum}")
        self.m = float(m)
        self.momentum = float(momentum)
        self.register_buffer("t", torch.zeros(1))

    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = cos.gather(1, labels[:, None])
        penalised = _angular_margin_target(target, self.m, easy_margin=False)
        # As in TFace, hardness is judged against cos(theta + m) itself, not the fallback.
        hard = cos > _cos_plus_margin(target, self.m)
        if self.training:
            with torch.no_grad():
                self.t.mul_(1.0 - self.momentum).add_(self.momentum * target.mean())
        reweighted = torch.where(hard, cos * (self.t + cos), cos)
        return self.s * reweighted.scatter(1, labels[:, None], penalised)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.m}, momentum={self.momentum}"


@register_head("softmax")
class SoftmaxHead(ClassHead):
    """Plain linear classifier ``W x + b`` on un-normalised embeddings (no margin, no scale).

    It returns the same logits with or without labels (labels are only checked).
    """

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__(embedding_size, num_classes)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_embeddings(embeddings)
        if labels is not None:
            self._check_labels(labels, embeddings.shape[0])
        return F.linear(embeddings, self.weight, self.bias)
