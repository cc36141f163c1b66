"""Training loss of the reconstruction attacker: L1 plus an optional differentiable SSIM term.

The SSIM here is the one :mod:`partialface.attacks.quality` reports (scikit-image with an 11x11
Gaussian window, sigma 1.5, population covariances), written in torch so that it can be minimised;
on images in [0, 1] it agrees with scikit-image to floating-point precision.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): scikit-image's (scipy's) truncation of the Gaussian


def _gaussian_window(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    offsets = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, device=device, dtype=dtype)
    weights = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter over the valid region of (B, C, H, W) images, channel by channel."""
    channels = x.shape[1]
    x = F.conv2d(x, window.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, window.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def ssim_torch(reconstructed: torch.Tensor, original: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Differentiable SSIM per image, shape (B,), of (B, C, H, W) images with values in ``data_range``."""
    if reconstructed.shape != original.shape or reconstructed.dim() != 4:
        raise ValueError(
            f"ssim_torch needs two (B, C, H, W) tensors of one shape, got {tuple(reconstructed.shape)} "
            f"and {tuple(original.shape)}")
    if min(reconstructed.shape[-2:]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"ssim_torch needs images of at least {2 * SSIM_RADIUS + 1} pixels per side, "
                         f"got {tuple(reconstructed.shape[-2:])}")
    window = _gaussian_window(reconstructed.device, reconstructed.dtype)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_y = _blur(reconstructed, window), _blur(original, window)
    var_x = _blur(reconstructed * reconstructed, window) - mu_x * mu_x
    var_y = _blur(original * original, window) - mu_y * mu_y
    cov = _blur(reconstructed * original, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


class ReconstructionLoss(nn.Module):
    """``L1 + ssim_weight * (1 - SSIM)`` between reconstructions and faces, both in [-1, 1]."""

    def __init__(self, ssim_weight: float = 0.0) -> None:
        super().__init__()
        if ssim_weight < 0:
            raise ValueError(f"ssim_weight must be >= 0, got {ssim_weight}")
        self.ssim_weight = float(ssim_weight)

    def forward(self, reconstructed: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        loss = F.l1_loss(reconstructed, faces)
        if self.ssim_weight > 0:
            ssim = ssim_torch(reconstructed * 0.5 + 0.5, faces * 0.5 + 0.5)
            loss = loss + self.ssim_weight * (1.0 - ssim.mean())
        return loss
