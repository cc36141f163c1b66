"""Improved ResNets (IR, IR-SE) for face recognition, as used by insightface, TFace and PartialFace.

Layout (Deng et al., ArcFace, CVPR 2019; TFace ``model_irse``):

* stem: Conv3x3(in_channels -> 64, stride 1) - BN - PReLU, at full input resolution;
* four stages of 64, 128, 256, 512 channels; the first unit of each stage halves the resolution;
* unit: BN - Conv3x3 - BN - PReLU - Conv3x3(stride) - BN [- squeeze-excitation], added to a
  shortcut that is a strided sub-sampling when the channel count is unchanged, else Conv1x1 - BN;
* output: BN2d - Dropout - Flatten - Linear(512 * r * r -> embedding) - BN1d (no affine), where
  ``r`` follows ``input_size`` (7 for 112, 6 for 96, 4 for 64).

Units per stage: IR-18 (2, 2, 2, 2), IR-34 (3, 4, 6, 3), IR-50 (3, 4, 14, 3), IR-100 (3, 13, 30, 3).
With 3 input channels and a 512-d embedding the parameter counts are IR-18 24,020,352, IR-34 34,134,080,
IR-50 43,585,600 (of which 12,845,568 in the 512*7*7 x 512 linear layer), IR-100 65,150,912 and
IR-SE-50 43,808,320. insightface's ``iresnet`` has 5,248 more (a Conv1x1-BN shortcut instead of the
sub-sampling in the first unit, 4,224, and an affine output BN1d, 1,024): 43,590,848 for ``iresnet50``,
its published "43.6M"; a 27-channel stem adds 13,824 (24 x 64 x 9).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from .backbone import Backbone, conv_output_size
from .registry import register_model

__all__ = ["IResNet", "IRUnit", "SqueezeExcitation", "ir18", "ir34", "ir50", "ir100", "ir_se50"]

STAGE_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)
"""Output channels of the four stages."""

UNITS_PER_STAGE: dict[int, tuple[int, ...]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}
"""Residual units per stage for each depth."""


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool - 1x1 reduce - ReLU - 1x1 expand - sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, kernel_size=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class IRUnit(nn.Module):
    """Improved residual unit: BN-Conv3x3-BN-PReLU-Conv3x3(stride)-BN (+SE) plus a shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, use_se: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if use_se:
            layers.append(SqueezeExcitation(out_channels))
        self.residual = nn.Sequential(*layers)
        self.shortcut: nn.Module
        if in_channels == out_channels:
            # A 1x1 max-pool with a stride is a plain sub-sampling (identity when stride is 1).
            self.shortcut = nn.MaxPool2d(kernel_size=1, stride=stride) if stride > 1 else nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class IResNet(Backbone):
    """Improved ResNet face backbone.

    Args:
        units_per_stage: residual units in each of the four stages, e.g. ``(2, 2, 2, 2)`` for IR-18.
        in_channels: input channels (3 RGB, 27 PartialFace, 162 pruned, 192 full spectrum).
        embedding_size: output embedding length.
        input_size: side of the square input; the flattened feature map is
            ``512 x r x r`` with ``r`` the size after four stride-2 stages (7 for 112).
        dropout: dropout probability before the final linear layer.
        use_se: add squeeze-excitation to every unit (IR-SE).
        stage_channels: output channels of the four stages.
    """

    def __init__(
        self,
        units_per_stage: Sequence[int],
        in_channels: int = 3,
        embedding_size: int = 512,
        input_size: int = 112,
        dropout: float = 0.4,
        use_se: bool = False,
        stage_channels: Sequence[int] = STAGE_CHANNELS,
    ) -> None:
        super().__init__(in_channels, embedding_size, input_size, min_input_size=2 ** len(stage_channels))
        if len(units_per_stage) != len(stage_channels) or any(n < 1 for n in units_per_stage):
            raise ValueError(
                f"units_per_stage must give one positive count per stage ({len(stage_channels)}), "
                f"got {tuple(units_per_stage)}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.units_per_stage = tuple(units_per_stage)
        self.use_se = use_se

        stem_channels = stage_channels[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.PReLU(stem_channels),
        )
        units: list[nn.Module] = []
        channels, size = stem_channels, input_size
        for stage_out, count in zip(stage_channels, units_per_stage, strict=True):
            units.append(IRUnit(channels, stage_out, stride=2, use_se=use_se))
            units.extend(IRUnit(stage_out, stage_out, stride=1, use_se=use_se) for _ in range(count - 1))
            channels, size = stage_out, conv_output_size(size, kernel_size=3, stride=2, padding=1)
        self.body = nn.Sequential(*units)
        self.feature_size = size
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(channels * size * size, embedding_size),
            nn.BatchNorm1d(embedding_size, affine=False),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``x`` of shape ``(B, in_channels, input_size, input_size)`` into ``(B, embedding_size)``."""
        self.check_input(x)
        return self.head(self.body(self.stem(x)))


def _build(depth: int, use_se: bool, in_channels: int, embedding_size: int, input_size: int, dropout: float) -> IResNet:
    return IResNet(
        UNITS_PER_STAGE[depth],
        in_channels=in_channels,
        embedding_size=embedding_size,
        input_size=input_size,
        dropout=dropout,
        use_se=use_se,
    )


@register_model("ir18")
def ir18(in_channels: int = 3, embedding_size: int = 512, input_size: int = 112, dropout: float = 0.4) -> IResNet:
    """IR-18: (2, 2, 2, 2) units; the PartialFace ablation backbone."""
    return _build(18, False, in_channels, embedding_size, input_size, dropout)


@register_model("ir34")
def ir34(in_channels: int = 3, embedding_size: int = 512, input_size: int = 112, dropout: float = 0.4) -> IResNet:
    """IR-34: (3, 4, 6, 3) units."""
    return _build(34, False, in_channels, embedding_size, input_size, dropout)


@register_model("ir50")
def ir50(in_channels: int = 3, embedding_size: int = 512, input_size: int = 112, dropout: float = 0.4) -> IResNet:
    """IR-50: (3, 4, 14, 3) units; the PartialFace main-table backbone."""
    return _build(50, False, in_channels, embedding_size, input_size, dropout)


@register_model("ir100")
def ir100(in_channels: int = 3, embedding_size: int = 512, input_size: int = 112, dropout: float = 0.4) -> IResNet:
    """IR-100: (3, 13, 30, 3) units."""
    return _build(100, False, in_channels, embedding_size, input_size, dropout)


@register_model("ir_se50")
def ir_se50(in_channels: int = 3, embedding_size: int = 512, input_size: int = 112, dropout: float = 0.4) -> IResNet:
    """IR-SE-50: IR-50 with squeeze-excitation (reduction 16) in every unit."""
    return _build(50, True, in_channels, embedding_size, input_size, dropout)
