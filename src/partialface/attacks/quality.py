"""Image-quality scores of reconstructed faces: SSIM and PSNR computed with scikit-image.

Faces are tensors ``(B, 3, H, W)`` in [-1, 1] (the project's face convention); they are mapped to
[0, 1] and scored per image with a data range of 1.  SSIM follows Wang et al. (2004): an 11x11
Gaussian window with sigma 1.5 and population covariances, averaged over the three colour channels.
PSNR of identical images is infinite; it is capped at ``max_psnr`` so that means stay finite.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

DEFAULT_MAX_PSNR = 100.0


def faces_to_unit_arrays(faces: torch.Tensor, name: str = "faces") -> np.ndarray:
    """(B, C, H, W) faces in [-1, 1] -> float64 array (B, H, W, C) in [0, 1] (values clipped)."""
    if not isinstance(faces, torch.Tensor) or faces.dim() != 4:
        shape = tuple(faces.shape) if isinstance(faces, torch.Tensor) else type(faces).__name__
        raise ValueError(f"{name} must be a (B, C, H, W) tensor, got {shape}")
    unit = (faces.detach().to("cpu", torch.float64) * 0.5 + 0.5).clamp_(0.0, 1.0)
    return unit.permute(0, 2, 3, 1).numpy()


def _paired_arrays(reconstructed: torch.Tensor, original: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(reconstructed, torch.Tensor) or not isinstance(original, torch.Tensor):
        raise ValueError("reconstructed and original faces must be tensors")
    if reconstructed.shape != original.shape:
        raise ValueError(
            f"reconstructed faces {tuple(reconstructed.shape)} and originals {tuple(original.shape)} differ in shape")
    return faces_to_unit_arrays(reconstructed, "reconstructed"), faces_to_unit_arrays(original, "original")


def ssim_per_image(reconstructed: torch.Tensor, original: torch.Tensor) -> np.ndarray:
    """SSIM of every reconstruction against its original, shape (B,); 1 means identical.

    Images must be at least 11x11 (the Gaussian window); smaller ones raise ValueError.
    """
    rec, ref = _paired_arrays(reconstructed, original)
    if min(rec.shape[1:3]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {rec.shape[1]}x{rec.shape[2]}")
    return np.array([
        structural_similarity(ref[i], rec[i], data_range=1.0, channel_axis=-1,
                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for i in range(rec.shape[0])
    ], dtype=np.float64)


def psnr_per_image(reconstructed: torch.Tensor, original: torch.Tensor,
                   max_psnr: float = DEFAULT_MAX_PSNR) -> np.ndarray:
    """PSNR in dB of every reconstruction against its original, shape (B,), capped at ``max_psnr``."""
    rec, ref = _paired_arrays(reconstructed, original)
    with np.errstate(divide="ignore"):
        values = np.array([peak_signal_noise_ratio(ref[i], rec[i], data_range=1.0) for i in range(rec.shape[0])],
                          dtype=np.float64)
    return np.minimum(values, max_psnr)
