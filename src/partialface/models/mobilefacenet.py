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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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

FAST_STAGES: tuple[BottleneckStage, ...] = (
    BottleneckStage(expansion=2, channels=64, repeats=3, stride=1),
    BottleneckStage(expansion=4, channels=128, repeats=1, stride=2),
    BottleneckStage(expansion=2, channels=128, repeats=4, stride=1),
    BottleneckStage(expansion=4, channels=128, repeats=1, stride=2),
    BottleneckStage(expansion=2, channels=128, repeats=2, stride=1),
)
"""Stages of :func:`mobilefacenet_fast`: the paper's table with 3 instead of 5 and 4 instead of 6
repeats, and no stride in the first stage (the stem's depthwise layer down-samples instead)."""


def scale_channels(channels: int, width: float, divisor: int = 8) -> int:
    """``channels * width`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``)."""
    return max(divisor, int(channels * width + divisor / 2) // divisor * divisor)


ACTIVATIONS = ("prelu", "relu")
"""Supported non-linearities: PReLU (the paper's) or in-place ReLU (cheaper backward on CPU)."""


def make_activation(name: str, channels: int) -> nn.Module:
    """A PReLU with one slope per channel, or an in-place ReLU."""
    if name == "prelu":
        return nn.PReLU(channels)
    if name == "relu":
        return nn.ReLU(inplace=True)
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


class ConvBN(nn.Sequential):
    """Convolution - BatchNorm - optional activation (``None`` for a linear layer)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        activation: str | None = "prelu",
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(make_activation(activation, out_channels))
        super().__init__(*layers)


class InvertedBottleneck(nn.Module):
    """MobileNetV2 bottleneck: expand 1x1, depthwise 3x3 (stride), linear project 1x1."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, expansion: int, activation: str = "prelu"
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.block = nn.Sequential(
            ConvBN(in_channels, hidden, 1, activation=activation),
            ConvBN(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, activation=activation),
            ConvBN(hidden, out_channels, 1, activation=None),
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
        activation: ``"prelu"`` (the paper's) or ``"relu"``.
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
        activation: str = "prelu",
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
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        self.width = width
        self.stages = stages

        size = input_size
        stem_width = scale_channels(stem_channels, width)
        self.stem = nn.Sequential(
            ConvBN(in_channels, stem_width, 3, stride=stem_stride, padding=1, activation=activation),
            ConvBN(
                stem_width,
                stem_width,
                3,
                stride=stem_depthwise_stride,
                padding=1,
                groups=stem_width,
                activation=activation,
            ),
        )
        size = conv_output_size(size, 3, stem_stride, 1)
        size = conv_output_size(size, 3, stem_depthwise_stride, 1)

        blocks: list[nn.Module] = []
        channels = stem_width
        for stage in stages:
            out_channels = scale_channels(stage.channels, width)
            for index in range(stage.repeats):
                stride = stage.stride if index == 0 else 1
                blocks.append(InvertedBottleneck(channels, out_channels, stride, stage.expansion, activation))
                channels = out_channels
            size = conv_output_size(size, 3, stage.stride, 1)
        self.body = nn.Sequential(*blocks)
        self.feature_size = size

        head_width = scale_channels(head_channels, width)
        self.head = nn.Sequential(
            ConvBN(channels, head_width, 1, activation=activation),
            ConvBN(head_width, head_width, size, groups=head_width, activation=None),  # linear GDConv
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
    in_channels: int = 3, embedding_size: int = 512, input_size: int = 112, **options: Any
) -> MobileFaceNet:
    """The paper's MobileFaceNet; ``options`` are further :class:`MobileFaceNet` arguments
    (``width``, ``stages``, ``stem_channels``, ``stem_depthwise_stride``, ``activation``, ...).

    With 3 input channels and a 128-d embedding it has 1,003,136 parameters (the paper: 0.99M);
    with 27 input channels and a 512-d embedding 1,214,336.
    """
    return MobileFaceNet(in_channels, embedding_size, input_size, **options)


@register_model("mobilefacenet_fast")
def mobilefacenet_fast(
    in_channels: int = 3,
    embedding_size: int = 512,
    input_size: int = 112,
    width: float = 1.0,
    channels_last: bool = True,
) -> MobileFaceNet:
    """MobileFaceNet re-balanced for training on a 2-core CPU.

    Design (all changes against :func:`mobilefacenet`, same 7x7 final map and 128/512 widths):

    * early down-sampling: the stem's depthwise 3x3 has stride 2 and the first bottleneck stage
      stride 1, so nothing but the stem convolution runs at 56x56 (the 64-channel 56x56 and
      128-channel expanded 56x56 tensors dominated the paper model's memory traffic);
    * a 32-channel stem (``stem_channels=32``) instead of 64;
    * 3 instead of 5 bottlenecks at 28x28 and 4 instead of 6 at 14x14 (:data:`FAST_STAGES`);
    * ReLU (in place) instead of PReLU: PyTorch's PReLU backward writes a per-element weight
      gradient and was the costliest kernel of the step;
    * channels-last weights (``channels_last=True``; inputs may stay NCHW): mkldnn's depthwise
      and 1x1 convolutions are 1.3-1.5x faster in that layout.

    1.01M parameters with 27 input channels and a 512-d embedding (the paper model: 1.21M).

    Measured with ``torch.set_num_threads(2)``, ``OMP_WAIT_POLICY=PASSIVE``, batch 64 of 27x112x112
    inputs, ArcFace over 1,000 classes, SGD (momentum, weight decay), torch 2.13 CPU, on the 2-core
    development machine while other jobs ran (load 2.7-3.4); variants timed in one process in 6
    interleaved rounds; channels-last unless noted; training images/s, median (best), and best
    inference images/s:

    =====================================================  ============  ===========
    variant                                                 train         inference
    =====================================================  ============  ===========
    paper MobileFaceNet, NCHW                                13.6 (16.1)   88
    paper, channels-last                                     17.8 (20.5)   128
    paper, ReLU                                              31.3 (40.0)   164
    early down-sampling (PReLU)                              23.2 (37.0)   281
    early down-sampling, ReLU                                38.4 (72.7)   297
    ... + depths (3, 1, 4, 1, 2)                             51.1 (88.3)   332
    ... + 32-channel stem (this model)                       59.5 (109.1)  478
    this model with NCHW weights                             42.3 (84.8)   345
    paper, width 0.5 (0.39M parameters)                      44.3 (77.0)   500
    early down-sampling, ReLU, width 0.75 (0.75M)            56.3 (104.6)  432
    this model with depths (2, 1, 3, 1, 1)                   75.4 (118.7)  444
    =====================================================  ============  ===========

    With one thread: 60.8 (64.4) against the paper model's 19.3 (21.3). Under load, the default
    OpenMP spin-waiting made 2 threads 3-4x slower than 1 (10 against 35-43 images/s for the
    64-channel-stem variant); set ``OMP_WAIT_POLICY=PASSIVE`` before torch starts.
    ``torch.compile`` gave no gain for the ReLU variants (it sped the PReLU ones up about 1.4x,
    after a 60-75 s compilation).
    Verification accuracy against the paper model is still to be measured on the development
    protocol; ``activation="prelu"`` via :class:`MobileFaceNet` restores the paper's non-linearity.

    Args:
        in_channels, embedding_size, input_size: as for :class:`MobileFaceNet`.
        width: channel multiplier.
        channels_last: convert the weights to ``torch.channels_last`` memory format.
    """
    model = MobileFaceNet(
        in_channels,
        embedding_size,
        input_size,
        width=width,
        stages=FAST_STAGES,
        stem_channels=32,
        stem_depthwise_stride=2,
        activation="relu",
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
