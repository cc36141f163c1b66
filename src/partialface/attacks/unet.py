"""Reconstruction network of the privacy attacks: a compact U-Net built for CPU speed.

The attacker maps an encoded face (any number of channels, same spatial size as the face) back to
the RGB face.  To be affordable on a CPU the network never works at full resolution: a stride-2
input convolution brings the input to half size (56x56 for a 112x112 face), ``depth`` further
levels halve it again, and a pixel-shuffle head produces the full-resolution output.  Frequency
coefficients span very different ranges per channel, so the input is standardised per channel
with statistics the attacker measures on its own training inputs (:meth:`fit_input_statistics`).

Architecture (``width`` w, ``depth`` d): 2x2 stride-2 stem convolution to w channels at H/2; a
two-convolution block per level, max-pooling between levels, channels doubling per level; bilinear
up-sampling and skip concatenation on the way back; a 3x3 convolution to ``4 * out_channels`` and a
pixel shuffle to full resolution; tanh.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _ceil_div(value: int, divisor: int) -> int:
    return -(-value // divisor)


def estimate_memory_bytes(in_channels: int, out_channels: int, width: int, depth: int, height: int,
                          image_width: int, batch_size: int, inference_batch: int = 0) -> int:
    """Upper estimate of the float32 bytes one :class:`ReconstructionUNet` needs, computed from its sizes
    alone (Python integers: no overflow, nothing allocated), so that a budget that cannot fit is refused
    before a tensor is built instead of ending in an out-of-memory kill.

    Counts the weights four times (weights, gradients, Adam's two moments), every activation autograd
    keeps for ``batch_size`` training faces twice (itself and its gradient during the backward pass), and
    the same activations for ``inference_batch`` faces without gradients; the larger of the two passes.
    """
    levels = [width * 2**level for level in range(depth + 1)]
    areas = [_ceil_div(height, 2 ** (level + 1)) * _ceil_div(image_width, 2 ** (level + 1)) for level in range(depth + 1)]

    def block_parameters(inputs: int, outputs: int) -> int:  # two 3x3 convolutions and two batch norms
        return 9 * inputs * outputs + 9 * outputs * outputs + 4 * outputs

    parameters = 4 * in_channels * width + 2 * width + block_parameters(width, width)
    parameters += sum(block_parameters(levels[level - 1], levels[level]) for level in range(1, depth + 1))
    parameters += sum(block_parameters(levels[level] + levels[level - 1], levels[level - 1])
                      for level in range(1, depth + 1))
    parameters += 9 * width * 4 * out_channels + 4 * out_channels

    # Per face: the input, the stem's convolution and norm, four tensors per block (two convolutions and
    # two norms; the ReLUs work in place), max-pool outputs with their int64 indices, up-sampled and
    # concatenated tensors on the way back, and the head's convolution, pixel shuffle and tanh.
    activations = in_channels * height * image_width + 2 * width * areas[0] + 4 * width * areas[0]
    for level in range(1, depth + 1):
        activations += 3 * levels[level - 1] * areas[level] + 4 * levels[level] * areas[level]
        activations += (2 * levels[level] + levels[level - 1]) * areas[level - 1] + 4 * levels[level - 1] * areas[level - 1]
    activations += 4 * out_channels * areas[0] + 2 * out_channels * height * image_width

    training = 4 * parameters + 2 * batch_size * activations
    inference = parameters + inference_batch * activations
    return 4 * max(training, inference)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ReconstructionUNet(nn.Module):
    """U-Net mapping ``(B, in_channels, H, W)`` encoded inputs to ``(B, out_channels, H, W)`` in [-1, 1].

    Args:
        in_channels: channels of the encoded input (3 for RGB, 27 for PartialFace, ...).
        out_channels: channels of the reconstruction (3 for RGB).
        width: channels of the first (half-resolution) level; level ``i`` has ``width * 2**i``.
        depth: number of down-sampling steps below the first level.  ``H`` and ``W`` must be
            divisible by ``2 ** (depth + 1)`` (112 = 16 * 7 allows ``depth <= 3``).
    """

    def __init__(self, in_channels: int, out_channels: int = 3, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        for label, value, minimum in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                      ("width", width, 1), ("depth", depth, 0)):
            if int(value) != value or value < minimum:
                raise ValueError(f"ReconstructionUNet: {label} must be an integer >= {minimum}, got {value!r}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.width = int(width)
        self.depth = int(depth)
        self.register_buffer("input_mean", torch.zeros(in_channels))
        self.register_buffer("input_std", torch.ones(in_channels))
        self.stem_conv = nn.Conv2d(in_channels, width, 2, stride=2, bias=False)
        self.stem_norm = nn.BatchNorm2d(width)
        level_widths = [width * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList([_conv_block(width, width)])
        for level in range(1, depth + 1):
            self.encoders.append(_conv_block(level_widths[level - 1], level_widths[level]))
        self.decoders = nn.ModuleList()
        for level in range(depth, 0, -1):
            self.decoders.append(_conv_block(level_widths[level] + level_widths[level - 1], level_widths[level - 1]))
        self.head = nn.Sequential(nn.Conv2d(width, out_channels * 4, 3, padding=1), nn.PixelShuffle(2))

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this number."""
        return 2 ** (self.depth + 1)

    @torch.no_grad()
    def fit_input_statistics(self, encoded: torch.Tensor) -> None:
        """Set the per-channel standardisation from a sample of the attacker's training inputs."""
        self._check_input(encoded)
        flat = encoded.detach().to(self.input_mean.device, torch.float32).transpose(0, 1).reshape(self.in_channels, -1)
        self.input_mean.copy_(flat.mean(dim=1))
        self.input_std.copy_(flat.std(dim=1).clamp_min(1e-6))

    def _check_input(self, encoded: torch.Tensor) -> None:
        if encoded.dim() != 4 or encoded.shape[1] != self.in_channels:
            raise ValueError(
                f"ReconstructionUNet: expected input of shape (B, {self.in_channels}, H, W), got {tuple(encoded.shape)}")
        height, width = encoded.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"ReconstructionUNet: input size {height}x{width} is not a multiple of {self.size_multiple} "
                f"(depth {self.depth}); lower depth or change the input size")

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        """Reconstruct faces in [-1, 1] from encoded inputs."""
        self._check_input(encoded)
        # The standardisation is folded into the stem convolution (a 2x2, stride-2 convolution without
        # padding, so this is exact): it saves two passes over a possibly 192-channel input.
        weight = self.stem_conv.weight / self.input_std.view(1, -1, 1, 1)
        bias = -(weight * self.input_mean.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
        x = F.relu(self.stem_norm(F.conv2d(encoded, weight, bias, stride=2)), inplace=True)
        x = self.encoders[0](x)
        skips = [x]
        for encoder in self.encoders[1:]:
            x = encoder(F.max_pool2d(x, 2))
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        return torch.tanh(self.head(x))
