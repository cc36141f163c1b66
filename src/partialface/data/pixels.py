"""8-bit pixels and model faces: the one conversion between ``uint8`` images and float faces in [-1, 1].

Every model in the project (and the client transform) takes faces as float32 in [-1, 1]
(``x / 255`` normalised with mean 0.5 and std 0.5, as TFace's loaders do), while image files, caches
and attack datasets hold 8-bit pixels. Keeping both directions here means the round trip
``faces_to_pixels(pixels_to_faces(p)) == p`` holds exactly, and nobody re-derives the constants.
"""

from __future__ import annotations

import torch

from ..errors import PartialFaceError

__all__ = ["pixels_to_faces", "faces_to_pixels"]


def pixels_to_faces(pixels: torch.Tensor) -> torch.Tensor:
    """8-bit pixels (uint8, any shape, e.g. (3, H, W) or (B, 3, H, W)) -> float32 in [-1, 1].

    ``(x / 255 - 0.5) / 0.5``, in that order, so that the values equal those of the training loaders
    bit for bit.
    """
    if not isinstance(pixels, torch.Tensor) or pixels.dtype != torch.uint8:
        kind = pixels.dtype if isinstance(pixels, torch.Tensor) else type(pixels).__name__
        raise PartialFaceError(f"pixels must be a uint8 torch.Tensor, got {kind}")
    return pixels.to(torch.float32).div_(255.0).sub_(0.5).div_(0.5).contiguous()


def faces_to_pixels(faces: torch.Tensor) -> torch.Tensor:
    """Float faces in [-1, 1] (any shape) -> uint8 pixels, rounded to the nearest level.

    Values outside [-1, 1] are clipped. Exact inverse of :func:`pixels_to_faces` for faces decoded
    from 8-bit images.
    """
    if not isinstance(faces, torch.Tensor) or not faces.is_floating_point():
        kind = faces.dtype if isinstance(faces, torch.Tensor) else type(faces).__name__
        raise PartialFaceError(f"faces must be a floating-point torch.Tensor in [-1, 1], got {kind}")
    return ((faces.clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8)
