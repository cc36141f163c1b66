"""Crop loosely aligned face photos to the square input of a recognition model.

LFW deep-funneled photos are 250x250 with the face roughly centred but not tightly cropped (background
and shoulders are in frame). :class:`CropSpec` describes a fixed box cut out of such a photo and the
output side length; the default ``box=(69, 69, 181, 181)`` keeps the central 112x112 square of a 250x250
photo. It is the crop of the development protocol (train on LFW people outside ``pairs.txt`` folds 7-8,
verify folds 7-8; see docs/results.md) and of the shipped models, which record it in their checkpoints.

Images that are already ``size x size`` (for example the 112x112 images of InsightFace ``.bin``/``.rec``
files) pass through unchanged; ``box=None`` means "resize the whole image, no crop".
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..checks import check_int
from ..errors import PartialFaceError
from .pixels import pixels_to_faces

Box = tuple[int, int, int, int]

DEFAULT_BOX: Box = (69, 69, 181, 181)
DEFAULT_SIZE = 112

# Pillow raises these for missing, corrupt, truncated or oversized image files.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@dataclass(frozen=True)
class CropSpec:
    """A crop box ``(left, top, right, bottom)`` in pixels (right/bottom exclusive) and an output size.

    ``box=None`` resizes the whole image. The cut-out region is resized to ``size x size`` with Pillow's
    bilinear filter, which averages over the covered source area when shrinking (antialiased).
    """

    box: Box | None = DEFAULT_BOX
    size: int = DEFAULT_SIZE

    def __post_init__(self) -> None:
        check_int("CropSpec size", self.size, low=1)
        if self.box is None:
            return
        box = tuple(self.box)
        if len(box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in box):
            raise PartialFaceError(f"CropSpec box must be four ints (left, top, right, bottom), got {self.box!r}")
        left, top, right, bottom = box
        if left < 0 or top < 0 or right <= left or bottom <= top:
            raise PartialFaceError(
                f"CropSpec box {box} is not a non-empty region with left, top >= 0, right > left, bottom > top"
            )
        object.__setattr__(self, "box", box)

    def apply(self, image: Image.Image) -> Image.Image:
        """Return ``image`` cropped to :attr:`box` and resized to ``size x size``.

        An image that is already ``size x size`` is returned as is. Raises PartialFaceError when the box does
        not fit inside the image.
        """
        target = (self.size, self.size)
        if image.size == target:
            return image
        if self.box is not None:
            width, height = image.size
            if self.box[2] > width or self.box[3] > height:
                raise PartialFaceError(f"crop box {self.box} does not fit in a {width}x{height} image")
            image = image.crop(self.box)
        if image.size != target:
            image = image.resize(target, Image.Resampling.BILINEAR)
        return image

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML/JSON-friendly description: ``{"box": [l, t, r, b] or None, "size": n}``."""
        return {"box": None if self.box is None else list(self.box), "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CropSpec:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        unknown = set(data) - {"box", "size"}
        if unknown:
            raise PartialFaceError(f"unknown CropSpec keys {sorted(unknown)}; expected 'box' and 'size'")
        box = data.get("box", DEFAULT_BOX)
        if box is not None:
            if isinstance(box, (str, bytes)) or not hasattr(box, "__len__"):
                raise PartialFaceError(f"CropSpec box must be a list of four ints or null, got {box!r}")
            box = tuple(box)
        return cls(box=box, size=data.get("size", DEFAULT_SIZE))


DEFAULT_CROP = CropSpec()


def image_to_pixels(image: Image.Image) -> torch.Tensor:
    """An RGB Pillow image as a uint8 tensor (3, H, W)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    array = np.array(image, dtype=np.uint8)  # (H, W, 3), a writable copy
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """Convert an RGB Pillow image to a float32 tensor (3, H, W) in [-1, 1]: ``(x / 255 - 0.5) / 0.5``."""
    return pixels_to_faces(image_to_pixels(image))


def _prepare(image: Image.Image, crop: CropSpec | None) -> torch.Tensor:
    image = image.convert("RGB")
    if crop is not None:
        image = crop.apply(image)
    return image_to_pixels(image)


def load_face_pixels(path: str | os.PathLike[str], crop: CropSpec | None = DEFAULT_CROP) -> torch.Tensor:
    """:func:`load_face` before normalisation: the cropped face as uint8 (3, size, size)."""
    try:
        with Image.open(path) as image:
            return _prepare(image, crop)
    except _IMAGE_ERRORS as error:
        raise PartialFaceError(f"cannot load face image {os.fspath(path)!r}: {error}") from error


def load_face(path: str | os.PathLike[str], crop: CropSpec | None = DEFAULT_CROP) -> torch.Tensor:
    """Open an image file, convert to RGB, crop with ``crop`` and return a (3, size, size) tensor in [-1, 1].

    ``crop=None`` keeps the image as it is. Raises PartialFaceError naming the file when it cannot be read or
    the crop does not fit.
    """
    return pixels_to_faces(load_face_pixels(path, crop))


def decode_face(data: bytes, crop: CropSpec | None = None, source: str = "<bytes>") -> torch.Tensor:
    """Like :func:`load_face` for an encoded image held in memory; ``source`` names it in errors."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return pixels_to_faces(_prepare(image, crop))
    except _IMAGE_ERRORS as error:
        raise PartialFaceError(f"cannot decode face image {source}: {error}") from error


def encode_jpeg(image: Image.Image, quality: int = 95) -> bytes:
    """JPEG-encode an image (converted to RGB) and return the bytes."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def load_cropped_jpeg(path: str | os.PathLike[str], crop: CropSpec | None, quality: int = 95) -> bytes:
    """Open an image file, crop it with ``crop`` and return it re-encoded as JPEG bytes."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            return encode_jpeg(crop.apply(rgb) if crop is not None else rgb, quality)
    except _IMAGE_ERRORS as error:
        raise PartialFaceError(f"cannot load face image {os.fspath(path)!r}: {error}") from error
