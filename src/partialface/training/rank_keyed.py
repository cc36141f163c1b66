"""Setting up a :class:`~partialface.models.rank_keyed.RankKeyedBackbone` for training (``RANK_KEYED``).

The model's rank identifier is fitted once, before the first step, on training faces encoded with every
rank of the plan; a quarter of the faces is held out and the identifier's accuracy on them goes to the
log, so a plan whose ranks cannot be told apart (too few channels per face) shows up before any training.
"""

from __future__ import annotations

import logging

import torch

from ..encoders import InputEncoder, PartialFaceEncoder
from ..models.rank_keyed import RankKeyedBackbone, rank_feature_table
from .config_checks import ConfigError

__all__ = ["fit_rank_identifier", "rank_channel_table", "rank_keyed_model_spec"]

logger = logging.getLogger("partialface.train")


def _ranks(encoder: InputEncoder) -> list[tuple[int, int]]:
    if not isinstance(encoder, PartialFaceEncoder):
        raise ConfigError(f"RANK_KEYED needs the partialface encoder (one random rank per face), not "
                          f"{encoder.name!r}", ("RANK_KEYED", "ENCODER"))
    return [(subset, permutation) for subset in range(encoder.plan.m) for permutation in range(encoder.plan.n)]


def rank_channel_table(encoder: InputEncoder) -> list[list[int]]:
    """For each rank of the encoder's plan (subset-major), the channels it sends in their order."""
    return [encoder.plan.channels(subset, permutation).tolist() for subset, permutation in _ranks(encoder)]


def rank_keyed_model_spec(encoder: InputEncoder, backbone: str, model_kwargs: dict) -> tuple[str, dict]:
    """The registry name and arguments of ``backbone`` behind the rank-keyed input for ``encoder``'s plan
    (what ``RANK_KEYED`` trains; benchmarks build the same model from it)."""
    return "rank_keyed", {"rank_channels": rank_channel_table(encoder), "backbone": backbone, **model_kwargs}


@torch.no_grad()
def fit_rank_identifier(model: RankKeyedBackbone, encoder: InputEncoder, faces: torch.Tensor,
                        chunk: int = 32) -> float:
    """Fit ``model``'s identifier on ``faces`` (N,3,S,S) under every rank; return its held-out accuracy.

    The first three quarters of the faces fit, the last quarter measures; then the identifier is refitted
    on all of them (what the model keeps).
    """
    ranks = _ranks(encoder)
    features = rank_feature_table(faces, lambda batch, rank: encoder.encode_rank(batch, *ranks[rank]), len(ranks), chunk)
    labels = torch.arange(len(ranks))[:, None].expand(-1, faces.shape[0])
    fit = max(1, faces.shape[0] * 3 // 4)
    accuracy = float("nan")
    if fit < faces.shape[0]:
        model.fit_identifier(features[:, :fit].flatten(0, 1), labels[:, :fit].flatten())
        held = features[:, fit:].flatten(0, 1)
        accuracy = float((model.identify_features(held) == labels[:, fit:].flatten()).double().mean())
    model.fit_identifier(features.flatten(0, 1), labels.flatten())
    logger.info("rank identifier: %d ranks, fitted on %d faces, held-out accuracy %.4f (%d faces)",
                len(ranks), faces.shape[0], accuracy, faces.shape[0] - fit)
    return accuracy
