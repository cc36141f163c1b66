"""MobileFaceNet (Chen et al., "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices", CCBR 2018) with a width multiplier and configurable stages.

Paper layout for a 112x112 input (t = expansion, c = channels, n = repeats, s = stride):

=====================  ===  ===  ===  ===  =========
operator                t    c    n    s   output
=====================  ===  ===  ===  ===  =========
conv3x3                 -    64   1    2   56x56
depthwise conv3x3       -    64   1    1   56x56
bottleneck              2    64   5    2   28x28
bottleneck              4   128   1    2   14x14
bottleneck              2   128   6    1   14x14
bottleneck              4   128   1    2   7x7
bottleneck              2   128   2    1   7x7
conv1x1                 -   512   1    1   7x7
linear GDConv7x7        -   512   1    1   1x1
linear conv1x1          -   emb   1    1   1x1
=====================  ===  ===  ===  ===  =========

followed by BatchNorm1d. Non-linear layers use PReLU; a bottleneck is
Conv1x1(expand)-BN-PReLU-DWConv3x3(stride)-BN-PReLU-Conv1x1(project)-BN with a residual
connection when its stride is 1 and its width unchanged. The global depthwise (GD) kernel
follows ``input_size`` (7 for 112, 6 for 96, 4 for 64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn as nn

from .backbone import Backbone, conv_output_size
from .registry import register_model

__all__ = [
    "BottleneckStage",
    "PAPER_STAGES",
    "FAST_STAGES",
    "InvertedBottleneck",
    "MobileFaceNet",
    "mobilefacenet",
    "mobilefacenet_fast",
]


@dataclass(frozen=True)
class BottleneckStage:
    """One row of the bottleneck table: ``repeats`` bottlenecks of ``channels`` outputs; the first
    one has ``stride``, the rest stride 1; ``expansion`` multiplies the input width inside each."""

    expansion: int
    channels: int
    repeats: int
    stride: int

    def __post_init__(self) -> None:
        if self.expansion < 1 or self.channels < 1 or self.repeats < 1 or self.stride not in (1, 2):
            raise ValueError(f"invalid bottleneck stage {self}: sizes must be >= 1 and stride 1 or 2")


PAPER_STAGES: tuple[BottleneckStage, ...] = (
    BottleneckStage(expansion=2, channels=64, repeats=5, stride=2),
    BottleneckStage(expansion=4, channels=128, repeats=1, stride=2),
    BottleneckStage(expansion=2, channels=128, repeats=6, stride=1),
    BottleneckStage(expansion=4, channels=128, repeats=1, stride=2),
    BottleneckStage(expansion=2, channels=128, repeats=2, stride=1),
)
"""The bottleneck stages of the paper's MobileFaceNet."""

FAST_STAGES: tuple[BottleneckStage, ...] = PAPER_STAGES
"""Stages of :func:`mobilefacenet_fast` (set after measurement, see its docstring)."""


def scale_channels(channels: int, width: float, divisor: int = 8) -> int:
    """``channels * width`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``)."""
    return max(divisor, int(channels * width + divisor / 2) // divisor * divisor)


class ConvBNPReLU(nn.Sequential):
    """Convolution - BatchNorm - optional PReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation:
            layers.append(nn.PReLU(out_channels))
        super().__init__(*layers)


class InvertedBottleneck(nn.Module):
    """MobileNetV2 bottleneck with PReLU: expand 1x1, depthwise 3x3 (stride), linear project 1x1."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.block = nn.Sequential(
            ConvBNPReLU(in_channels, hidden, 1),
            ConvBNPReLU(hidden, hidden, 3, stride=stride, padding=1, groups=hidden),
            ConvBNPReLU(hidden, out_channels, 1, activation=False),
        )
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileFaceNet(Backbone):
    """MobileFaceNet face backbone.

    Args:
        in_channels: input channels (3 RGB, 27 PartialFace, 162 pruned, 192 full spectrum).
        embedding_size: output embedding length (the paper used 128; 512 here by default).
        input_size: side of the square input.
        width: multiplier applied to every internal channel count (rounded to multiples of 8).
        stages: the bottleneck stages (default: the paper's table).
        stem_channels: outputs of the first 3x3 convolution (before ``width``).
        stem_stride: stride of the first 3x3 convolution.
        stem_depthwise_stride: stride of the depthwise 3x3 after it; 2 adds an early
            down-sampling (cheaper: the following layers run at a quarter of the pixels).
        head_channels: outputs of the 1x1 convolution before the GDConv (before ``width``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        embedding_size: int = 512,
        input_size: int = 112,
        width: float = 1.0,
        stages: Iterable[BottleneckStage] = PAPER_STAGES,
        stem_channels: int = 64,
        stem_stride: int = 2,
        stem_depthwise_stride: int = 1,
        head_channels: int = 512,
    ) -> None:
        stages = tuple(stages)
        if not stages:
            raise ValueError("MobileFaceNet needs at least one bottleneck stage")
        if width <= 0:
            raise ValueError(f"MobileFaceNet width must be positive, got {width}")
        if stem_stride not in (1, 2) or stem_depthwise_stride not in (1, 2):
            raise ValueError(
                f"stem strides must be 1 or 2, got stem_stride={stem_stride}, "
                f"stem_depthwise_stride={stem_depthwise_stride}"
            )
        strides = [stem_stride, stem_depthwise_stride] + [stage.stride for stage in stages]
        super().__init__(in_channels, embedding_size, input_size, min_input_size=2 ** sum(s == 2 for s in strides))
        self.width = width
        self.stages = stages

        size = input_size
        stem_width = scale_channels(stem_channels, width)
        self.stem = nn.Sequential(
            ConvBNPReLU(in_channels, stem_width, 3, stride=stem_stride, padding=1),
            ConvBNPReLU(stem_width, stem_width, 3, stride=stem_depthwise_stride, padding=1, groups=stem_width),
        )
        size = conv_output_size(size, 3, stem_stride, 1)
        size = conv_output_size(size, 3, stem_depthwise_stride, 1)

        blocks: list[nn.Module] = []
        channels = stem_width
        for stage in stages:
            out_channels = scale_channels(stage.channels, width)
            for index in range(stage.repeats):
                stride = stage.stride if index == 0 else 1
                blocks.append(InvertedBottleneck(channels, out_channels, stride, stage.expansion))
                channels = out_channels
            size = conv_output_size(size, 3, stage.stride, 1)
        self.body = nn.Sequential(*blocks)
        self.feature_size = size

        head_width = scale_channels(head_channels, width)
        self.head = nn.Sequential(
            ConvBNPReLU(channels, head_width, 1),
            ConvBNPReLU(head_width, head_width, size, groups=head_width, activation=False),  # linear GDConv
            nn.Conv2d(head_width, embedding_size, 1, bias=False),  # linear 1x1
            nn.Flatten(),
            nn.BatchNorm1d(embedding_size),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``x`` of shape ``(B, in_channels, input_size, input_size)`` into ``(B, embedding_size)``."""
        self.check_input(x)
        return self.head(self.body(self.stem(x)))


@register_model("mobilefacenet")
def mobilefacenet(
    in_channels: int = 3,
    embedding_size: int = 512,
    input_size: int = 112,
    width: float = 1.0,
    stages: Sequence[BottleneckStage] = PAPER_STAGES,
) -> MobileFaceNet:
    """The paper's MobileFaceNet (width 1: 1.03M parameters with 3 input channels and a 128-d embedding)."""
    return MobileFaceNet(in_channels, embedding_size, input_size, width=width, stages=stages)


@register_model("mobilefacenet_fast")
def mobilefacenet_fast(in_channels: int = 3, embedding_size: int = 512, input_size: int = 112) -> MobileFaceNet:
    """Placeholder until measured."""
    return MobileFaceNet(in_channels, embedding_size, input_size, stem_depthwise_stride=2, stages=FAST_STAGES)
