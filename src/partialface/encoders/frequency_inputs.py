"""Encoders that send block-DCT frequency channels, each divided by a per-frequency scale.

:class:`FrequencyEncoder` sends one fixed set of channels (the same for every sample); its subclasses
only choose that set: ``fixed`` (subset 0 / permutation 0 of the plan, the paper's vanilla),
``pruned`` (every kept channel) and ``frequency`` (all 192). :class:`PartialFaceEncoder` draws one
random rank of the plan per sample instead.

Saved states store the channel list of a fixed set (and ``train_repeats`` but no channels for
PartialFace, whose channels are drawn from the plan): a restored encoder sends exactly what the saved
one did, even if the plan's defaults change later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..checks import check_choice, check_int
from ..errors import PartialFaceError
from ..frequency import NUM_CHANNELS, scatter_channels, to_frequency, to_image
from ..plan import ChannelPlan
from .base import InputEncoder, plan_from_state, register_encoder, scale_from_state, state_entry

__all__ = ["FrequencyEncoder", "FixedEncoder", "PrunedEncoder", "AllFrequenciesEncoder", "PartialFaceEncoder"]


class FrequencyEncoder(InputEncoder):
    """A fixed set of frequency channels (shared by every sample), scaled per frequency.

    Args:
        channels: indices into the 192 frequency channels, in the order they are sent.
        plan: the channel plan the set comes from (None when it comes from none).
        frequency_scale: 192 positive divisors (None: all ones).
    """

    def __init__(
        self,
        channels: torch.Tensor,
        plan: ChannelPlan | None = None,
        frequency_scale: torch.Tensor | None = None,
    ):
        self.plan = plan
        self.fixed_channels = torch.as_tensor(channels, dtype=torch.long)
        self.out_channels = int(self.fixed_channels.shape[-1])
        scale = torch.ones(NUM_CHANNELS) if frequency_scale is None else torch.as_tensor(frequency_scale).float()
        if scale.shape != (NUM_CHANNELS,) or not bool((scale > 0).all()):
            raise PartialFaceError(
                f"frequency_scale must hold {NUM_CHANNELS} positive values, got shape {tuple(scale.shape)}"
            )
        self.frequency_scale = scale

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FrequencyEncoder:
        return cls(torch.tensor(state_entry(state, "channels")), plan_from_state(state), scale_from_state(state))

    def channels_for_query(self, batch, generator):
        return self.fixed_channels

    def encode(self, x, channels):
        return to_frequency(x, channels, frequency_scale=self.frequency_scale)

    def to_preview(self, encoded, channels):
        channels = channels.to(encoded.device)
        scale = self.frequency_scale.to(device=encoded.device, dtype=encoded.dtype)[channels]
        full = scatter_channels(encoded * scale[..., None, None], channels)
        return to_image(full)

    def state_dict(self):
        return {
            **super().state_dict(),
            "channels": self.fixed_channels.tolist(),
            "frequency_scale": self.frequency_scale.tolist(),
        }


@register_encoder
class FixedEncoder(FrequencyEncoder):
    """Always one rank of the plan (``subset``, ``permutation``; default 0/0: the paper's vanilla)."""

    name = "fixed"
    options = frozenset({"subset", "permutation"})

    @classmethod
    def build(cls, plan=None, frequency_scale=None, train_repeats: int = 1, subset: int = 0,
              permutation: int = 0) -> FixedEncoder:
        plan = plan or ChannelPlan.tface()
        subset = check_int("fixed encoder subset", subset, 0, plan.m - 1)
        permutation = check_int("fixed encoder permutation", permutation, 0, plan.n - 1)
        return cls(plan.channels(subset, permutation), plan, frequency_scale)


@register_encoder
class PrunedEncoder(FrequencyEncoder):
    """Every channel the plan keeps (the high frequencies): pruning alone, without a random rank."""

    name = "pruned"

    @classmethod
    def build(cls, plan=None, frequency_scale=None, train_repeats: int = 1) -> PrunedEncoder:
        plan = plan or ChannelPlan.tface()
        return cls(plan.all_channels(), plan, frequency_scale)


@register_encoder
class AllFrequenciesEncoder(FrequencyEncoder):
    """All 192 frequency channels: no protection, the frequency-domain baseline (no plan)."""

    name = "frequency"

    @classmethod
    def build(cls, plan=None, frequency_scale=None, train_repeats: int = 1) -> AllFrequenciesEncoder:
        return cls(torch.arange(NUM_CHANNELS), None, frequency_scale)


@register_encoder
class PartialFaceEncoder(FrequencyEncoder):
    """PartialFace: one random (subset, permutation) rank of the plan per sample.

    Training ranks follow TFace's rule by default (``training_ranks="label-keyed"``,
    ``plan.sample_training_ranks``: each identity trains on its label's allowed half of the subsets,
    uniform permutation); ``"uniform"`` draws them as queries are drawn, over all ``m * n`` ranks, so
    every identity is seen in every subset. Every image is seen ``train_repeats`` (NUM_AUG) times per
    epoch with independent ranks. Queries draw a uniform rank over all ``m * n``.
    """

    name = "partialface"
    options = frozenset({"training_ranks"})
    TRAINING_RANKS = ("label-keyed", "uniform")

    def __init__(self, plan: ChannelPlan, frequency_scale: torch.Tensor | None = None, train_repeats: int = 3,
                 training_ranks: str = "label-keyed"):
        super().__init__(plan.channels(0, 0), plan, frequency_scale)
        self.train_repeats = check_int("train_repeats (NUM_AUG)", train_repeats, low=1)
        self.training_ranks = check_choice("partialface training_ranks", training_ranks, self.TRAINING_RANKS)

    @classmethod
    def build(cls, plan=None, frequency_scale=None, train_repeats: int = 3,
              training_ranks: str = "label-keyed") -> PartialFaceEncoder:
        return cls(plan or ChannelPlan.tface(), frequency_scale, train_repeats, training_ranks)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PartialFaceEncoder:
        plan = plan_from_state(state)
        if plan is None:
            raise PartialFaceError("saved encoder 'partialface' has no channel plan")
        # States written before NUM_AUG was stored trained with one pass per image.
        return cls(plan, scale_from_state(state), state.get("train_repeats", 1),
                   state.get("training_ranks", "label-keyed"))

    def channels_for_training(self, labels, generator):
        if self.training_ranks == "uniform":
            return self.channels_for_query(labels.shape[0], generator)
        return self.plan.channels(*self.plan.sample_training_ranks(labels, generator))

    def channels_for_query(self, batch, generator):
        return self.plan.channels(*self.plan.sample_query_ranks(batch, generator))

    def encode_rank(self, x: torch.Tensor, subset, permutation) -> torch.Tensor:
        """The input of one given rank (ints, or per-sample LongTensors)."""
        channels = self.plan.channels(subset, permutation)
        if channels.dim() == 2 and channels.shape[0] == 1:
            channels = channels[0]
        return self.encode(x, channels)

    def state_dict(self):
        state = {**super().state_dict(), "train_repeats": self.train_repeats}
        if self.training_ranks != "label-keyed":  # states of TFace's rule stay as they were
            state["training_ranks"] = self.training_ranks
        del state["channels"]  # drawn per sample from the plan
        return state
