"""The reference pipeline as TFace computes it: materialise the x8 image, transform every block.

Kept for verification and benchmarking only (``partialface.frequency`` is the implementation to use):
it allocates the 8x upsampled image and all 192 channels, exactly like TFace's ``dct_transform``
followed by channel selection, but without torchjpeg (the colour conversion and block DCT are written
out with torch so it runs on a current torch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .frequency import BLOCK, _RGB_TO_YCBCR, dct_matrix

__all__ = ["reference_to_frequency", "reference_to_image"]


def reference_to_frequency(x: torch.Tensor, channels=None) -> torch.Tensor:
    """(B,3,H,W) in [-1,1] -> (B,192,H,W) (or the selected ``channels``) via the x8 upsampled image."""
    n, _, h, w = x.shape
    img = F.interpolate(x * 0.5 + 0.5, scale_factor=BLOCK, mode="bilinear", align_corners=True) * 255.0
    k = torch.as_tensor(_RGB_TO_YCBCR, dtype=x.dtype, device=x.device)
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=x.dtype, device=x.device)
    ycc = torch.einsum("ck,bkhw->bchw", k, img) + offset[None, :, None, None] - 128.0
    # (B,3,8H,8W) -> blocks (B,3,H,W,8,8) -> DCT -> (B,3,8,8,H,W)
    blocks = ycc.unfold(2, BLOCK, BLOCK).unfold(3, BLOCK, BLOCK)
    c = torch.as_tensor(dct_matrix(), dtype=x.dtype, device=x.device)
    coeffs = torch.einsum("ua,nchwab,vb->ncuvhw", c, blocks, c)
    freq = coeffs.reshape(n, 3 * BLOCK * BLOCK, h, w)
    if channels is not None:
        freq = freq[:, torch.as_tensor(channels, dtype=torch.long, device=x.device)]
    return freq


def reference_to_image(freq: torch.Tensor) -> torch.Tensor:
    """TFace's ``idct_transform``: block IDCT at x8, +128, YCbCr -> RGB, /255, bilinear x1/8, clamp."""
    n, _, h, w = freq.shape
    c = torch.as_tensor(dct_matrix(), dtype=freq.dtype, device=freq.device)
    coeffs = freq.reshape(n, 3, BLOCK, BLOCK, h, w)
    blocks = torch.einsum("ua,ncuvhw,vb->nchawb", c, coeffs, c).reshape(n, 3, h * BLOCK, w * BLOCK)
    ycc = blocks + 128.0
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=freq.dtype, device=freq.device)
    kinv = torch.linalg.inv(torch.as_tensor(_RGB_TO_YCBCR, dtype=freq.dtype, device=freq.device))
    rgb = torch.einsum("ck,nkhw->nchw", kinv, ycc - offset[None, :, None, None]) / 255.0
    small = F.interpolate(rgb, size=(h, w), mode="bilinear", align_corners=True)
    return small.clamp(0.0, 1.0)
