"""The unprotected baseline encoder: the face itself, for comparison."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..plan import ChannelPlan
from .base import InputEncoder, register_encoder

__all__ = ["RGBEncoder"]


@register_encoder
class RGBEncoder(InputEncoder):
    """The unprotected baseline: the face itself (no plan, no scale, one pass per image)."""

    name = "rgb"
    out_channels = 3

    @classmethod
    def build(cls, plan: ChannelPlan | None = None, frequency_scale: Any = None, train_repeats: int = 1) -> RGBEncoder:
        return cls()  # the pipeline options have no meaning for pixels

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RGBEncoder:
        return cls()

    def channels_for_query(self, batch, generator):
        return None

    def encode(self, x, channels=None):
        return x

    def to_preview(self, encoded: torch.Tensor, channels=None) -> torch.Tensor:
        return (encoded * 0.5 + 0.5).clamp(0, 1)
