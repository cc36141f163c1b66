"""Common base of the face-embedding backbones: argument checks and the input contract.

Every backbone maps ``(B, in_channels, input_size, input_size)`` to ``(B, embedding_size)``
un-normalised embeddings. ``in_channels`` is 3 for RGB, 27 for PartialFace ranks, 162 for the
pruned spectrum and 192 for the full spectrum.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Backbone", "conv_output_size"]


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Spatial size after a convolution (or pooling) with the given geometry."""
    return (size + 2 * padding - kernel_size) // stride + 1


class Backbone(nn.Module):
    """Base class holding the input/output contract of a face backbone.

    Args:
        in_channels: channels of the input tensor (>= 1).
        embedding_size: length of the output embedding (>= 1).
        input_size: height and width of the (square) input (>= ``min_input_size``).
        min_input_size: the smallest input the architecture can reduce without vanishing.

    Raises:
        ValueError: if any size is out of range.
    """

    def __init__(self, in_channels: int, embedding_size: int, input_size: int, min_input_size: int = 1) -> None:
        super().__init__()
        for name, value, low in (
            ("in_channels", in_channels, 1),
            ("embedding_size", embedding_size, 1),
            ("input_size", input_size, min_input_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{type(self).__name__}: {name} must be an integer >= {low}, got {value!r}")
        self.in_channels = in_channels
        self.embedding_size = embedding_size
        self.input_size = input_size

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` has shape ``(B, in_channels, input_size, input_size)``."""
        expected = (self.in_channels, self.input_size, self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, embedding_size={self.embedding_size}, input_size={self.input_size}"
