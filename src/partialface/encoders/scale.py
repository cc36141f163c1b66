"""The per-frequency input scale: DCT coefficients span four orders of magnitude, so each of the 192
channels is divided by its root-mean-square over training faces and enters the model near unit variance
whatever rank it lands in."""

from __future__ import annotations

import torch

from ..frequency import NUM_CHANNELS, to_frequency

__all__ = ["estimate_frequency_scale"]


@torch.no_grad()
def estimate_frequency_scale(faces: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """Root-mean-square of each of the 192 frequency channels over ``faces`` (B,3,H,W) in [-1,1].

    Used as ``frequency_scale`` so that every channel enters the model near unit scale.
    """
    total = torch.zeros(NUM_CHANNELS, dtype=torch.float64)
    for start in range(0, faces.shape[0], 16):  # 16 faces of 192 channels at a time: bounded memory
        freq = to_frequency(faces[start : start + 16])
        total += freq.double().pow(2).sum(dim=(0, 2, 3)).cpu()
    rms = (total / (faces.shape[0] * faces.shape[2] * faces.shape[3])).sqrt()
    return rms.clamp_min(floor).float()
