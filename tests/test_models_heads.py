"""Tests for the margin heads against hand-computed logits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from partialface.models import get_head
from partialface.models.heads import ArcFace, CosFace, CurricularFace, SoftmaxHead

S, M = 64.0, 0.5
# Class weights on the unit circle at these angles; the embedding lies at EMBEDDING_ANGLE.
CLASS_ANGLES = (0.0, math.pi / 2, math.pi)
EMBEDDING_ANGLE = 0.3


def unit(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle)]


def planar_head(head: torch.nn.Module) -> torch.nn.Module:
    """Give a 2-d head the class weights at CLASS_ANGLES (scaled, to check normalisation)."""
    with torch.no_grad():
        head.weight.copy_(3.0 * torch.tensor([unit(a) for a in CLASS_ANGLES]))
    return head


def embedding_at(angle: float) -> torch.Tensor:
    return 5.0 * torch.tensor([unit(angle)])


def angle_to_class(angle: float, index: int) -> float:
    return abs(angle - CLASS_ANGLES[index])


def test_arcface_adds_angular_margin_to_target_only() -> None:
    head = planar_head(get_head("arcface", 2, 3, s=S, m=M))
    logits = head(embedding_at(EMBEDDING_ANGLE), torch.tensor([0]))
    expected = [S * math.cos(angle_to_class(EMBEDDING_ANGLE, 0) + M)]
    expected += [S * math.cos(angle_to_class(EMBEDDING_ANGLE, k)) for k in (1, 2)]
    torch.testing.assert_close(logits, torch.tensor([expected]), rtol=1e-5, atol=1e-4)


def test_arcface_falls_back_past_pi_minus_m() -> None:
    """For theta + m > pi insightface uses cos(theta) - m * sin(pi - m), which keeps decreasing."""
    head = planar_head(ArcFace(2, 3, s=S, m=M))
    angle = 2.9  # theta to class 0 = 2.9 > pi - 0.5
    logits = head(embedding_at(angle), torch.tensor([0]))
    expected = S * (math.cos(2.9) - math.sin(math.pi - M) * M)
    assert logits[0, 0].item() == pytest.approx(expected, rel=1e-5)
    assert logits[0, 2].item() == pytest.approx(S * math.cos(math.pi - 2.9), rel=1e-5)


def test_arcface_easy_margin_spares_negative_cosines() -> None:
    head = planar_head(ArcFace(2, 3, s=S, m=M, easy_margin=True))
    logits = head(embedding_at(2.0), torch.tensor([0]))  # cos(2.0) < 0: no margin
    assert logits[0, 0].item() == pytest.approx(S * math.cos(2.0), rel=1e-5)
    logits = head(embedding_at(1.0), torch.tensor([0]))  # cos(1.0) > 0: margin
    assert logits[0, 0].item() == pytest.approx(S * math.cos(1.0 + M), rel=1e-5)


def test_cosface_subtracts_cosine_margin() -> None:
    head = planar_head(CosFace(2, 3, s=30.0, m=0.35))
    logits = head(embedding_at(EMBEDDING_ANGLE), torch.tensor([1]))
    cosines = [math.cos(angle_to_class(EMBEDDING_ANGLE, k)) for k in range(3)]
    expected = [30.0 * c for c in cosines]
    expected[1] = 30.0 * (cosines[1] - 0.35)
    torch.testing.assert_close(logits, torch.tensor([expected]), rtol=1e-5, atol=1e-4)


def test_curricularface_reweights_hard_negatives_and_tracks_t() -> None:
    head = planar_head(CurricularFace(2, 3, s=S, m=M, momentum=0.01)).train()
    labels = torch.tensor([1])  # target at pi/2 - 0.3 = 1.27 rad: cos(theta + m) = cos(1.77) < 0
    logits = head(embedding_at(EMBEDDING_ANGLE), labels)
    target_cos = math.cos(angle_to_class(EMBEDDING_ANGLE, 1))
    t = 0.01 * target_cos
    assert head.t.item() == pytest.approx(t, rel=1e-5)
    hard_cos = math.cos(angle_to_class(EMBEDDING_ANGLE, 0))  # 0.955 > cos(1.77): hard negative
    easy_cos = math.cos(angle_to_class(EMBEDDING_ANGLE, 2))  # -0.955 < cos(1.77): unchanged
    expected = [S * hard_cos * (t + hard_cos), S * math.cos(angle_to_class(EMBEDDING_ANGLE, 1) + M), S * easy_cos]
    torch.testing.assert_close(logits, torch.tensor([expected]), rtol=1e-5, atol=1e-4)
    head.eval()
    head(embedding_at(EMBEDDING_ANGLE), labels)
    assert head.t.item() == pytest.approx(t, rel=1e-5)
    assert "t" in head.state_dict()


@pytest.mark.parametrize("name", ["arcface", "cosface", "curricularface"])
def test_margin_heads_without_labels_return_scaled_cosines(name: str) -> None:
    head = planar_head(get_head(name, 2, 3, s=S))
    logits = head(embedding_at(EMBEDDING_ANGLE))
    expected = [S * math.cos(angle_to_class(EMBEDDING_ANGLE, k)) for k in range(3)]
    torch.testing.assert_close(logits, torch.tensor([expected]), rtol=1e-5, atol=1e-4)


def test_softmax_head_is_a_linear_classifier() -> None:
    head = SoftmaxHead(8, 5)
    embeddings = torch.randn(4, 8)
    expected = embeddings @ head.weight.T + head.bias
    torch.testing.assert_close(head(embeddings, torch.tensor([0, 1, 2, 4])), expected)
    torch.testing.assert_close(head(embeddings), expected)


@pytest.mark.parametrize("name", ["arcface", "cosface", "curricularface", "softmax"])
def test_gradients_reach_embeddings_and_class_weights(name: str) -> None:
    torch.manual_seed(0)
    head = get_head(name, 16, 10).train()
    embeddings = torch.randn(6, 16, requires_grad=True)
    labels = torch.randint(0, 10, (6,))
    F.cross_entropy(head(embeddings, labels), labels).backward()
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(head.weight.grad).all()


def test_margin_makes_loss_larger_than_plain_cosines() -> None:
    torch.manual_seed(0)
    head = get_head("arcface", 16, 10)
    embeddings, labels = torch.randn(6, 16), torch.randint(0, 10, (6,))
    with_margin = F.cross_entropy(head(embeddings, labels), labels)
    without = F.cross_entropy(head(embeddings), labels)
    assert with_margin > without


@pytest.mark.parametrize("name", ["arcface", "cosface", "curricularface", "softmax"])
def test_heads_reject_bad_inputs(name: str) -> None:
    head = get_head(name, 16, 10)
    with pytest.raises(ValueError, match=r"\(B, 16\), got \(4, 8\)"):
        head(torch.randn(4, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        head(torch.randn(4, 16), torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="integer labels of shape \\(4,\\)"):
        head(torch.randn(4, 16), torch.zeros(4))


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("arcface", {"m": 2.0}, "margin"),
        ("cosface", {"m": -0.1}, "margin"),
        ("arcface", {"s": 0.0}, "scale"),
        ("curricularface", {"momentum": 0.0}, "momentum"),
    ],
)
def test_heads_reject_bad_hyperparameters(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_head(name, 16, 10, **kwargs)


def test_heads_reject_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        get_head("arcface", 16, 0)
    with pytest.raises(ValueError, match="embedding_size"):
        get_head("softmax", 0, 10)
