"""Training-time augmentation: single-face flips in dataset workers, and seeded batch augmentation.

With 5-15k training photos a face model memorises its training set (RGB reaches 100 % training
accuracy); small geometric and photometric changes that keep the identity make every epoch show new
pixels. :class:`BatchAugmentation` changes a whole batch at once (one affine warp per face: shift,
scale, rotation; then brightness, contrast, saturation) with draws from a given generator, so the
trainer can seed them per step like its flips and a resumed run repeats them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from ..checks import check_number
from ..errors import PartialFaceError

__all__ = ["BatchAugmentation", "random_horizontal_flip"]


def random_horizontal_flip(image: torch.Tensor, probability: float = 0.5) -> torch.Tensor:
    """Mirror ``image`` (..., H, W) left-right with the given probability.

    The draw uses torch's global RNG, so results are reproducible after ``torch.manual_seed`` in the
    main process, and in DataLoader workers, which torch seeds from the loader's base seed plus the
    worker id.
    """
    check_number("flip probability", probability, 0.0, 1.0)
    if torch.rand(()) < probability:
        return image.flip(-1)
    return image


def _uniform(count: int, limit: float, generator: torch.Generator | None) -> torch.Tensor:
    """``count`` draws uniform in [-limit, limit] (always drawn, so later draws do not depend on limit)."""
    return (torch.rand(count, generator=generator) * 2.0 - 1.0) * limit


@dataclass(frozen=True)
class BatchAugmentation:
    """Random changes of faces (B, 3, H, W) in [-1, 1], each face its own draw; all zero: no change.

    Attributes:
        shift: largest shift, a fraction of the face side (0.05: 5.6 pixels of a 112 face).
        scale: largest relative zoom in or out (0.05: 95 %-105 %).
        rotate: largest rotation in degrees.
        brightness: largest added brightness, a fraction of the [-1, 1] range's half-width.
        contrast: largest relative change of contrast around each face's mean.
        saturation: largest relative change of colour saturation around each pixel's grey.

    Pixels moved in from outside the face repeat its border. Results stay in [-1, 1].
    """

    shift: float = 0.0
    scale: float = 0.0
    rotate: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __post_init__(self) -> None:
        limits = {"shift": 0.5, "scale": 0.5, "rotate": 45.0, "brightness": 1.0, "contrast": 1.0, "saturation": 1.0}
        for name, high in limits.items():
            object.__setattr__(self, name, check_number(f"augmentation {name}", getattr(self, name), 0.0, high))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BatchAugmentation:
        """From ``{shift: 0.05, ...}`` (missing options are 0); unknown options are an error."""
        data = dict(data or {})
        known = [field.name for field in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PartialFaceError(f"unknown augmentation option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return any(value > 0 for value in asdict(self).values())

    def __call__(self, faces: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The augmented faces; draws 6 numbers per face from ``generator`` (a CPU generator)."""
        if faces.dim() != 4 or faces.shape[1] != 3:
            raise PartialFaceError(f"augmentation needs RGB faces (B, 3, H, W), got {tuple(faces.shape)}")
        batch = faces.shape[0]
        shift = _uniform(2 * batch, self.shift * 2.0, generator).view(batch, 2)  # in [-1, 1] grid units
        zoom = 1.0 + _uniform(batch, self.scale, generator)
        angle = _uniform(batch, math.radians(self.rotate), generator)
        brightness = _uniform(batch, self.brightness, generator)
        contrast = 1.0 + _uniform(batch, self.contrast, generator)
        saturation = 1.0 + _uniform(batch, self.saturation, generator)
        out = faces
        if self.shift or self.scale or self.rotate:
            cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
            theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
            grid = F.affine_grid(theta.to(faces), list(faces.shape), align_corners=False)
            out = F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False)
        view = (batch, 1, 1, 1)
        if self.saturation:
            grey = (out * torch.tensor([0.299, 0.587, 0.114], dtype=out.dtype, device=out.device).view(1, 3, 1, 1)).sum(
                1, keepdim=True)
            out = grey + (out - grey) * saturation.to(out).view(view)
        if self.contrast:
            mean = out.mean(dim=(1, 2, 3), keepdim=True)
            out = mean + (out - mean) * contrast.to(out).view(view)
        if self.brightness:
            out = out + brightness.to(out).view(view)
        return out.clamp(-1.0, 1.0)
