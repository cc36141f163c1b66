"""Face preparation on the client: a photo in, the model's input faces out (largest first).

A model records how its training faces were prepared (the ``preparation`` of its client record) and the
client must prepare queries the same way, or the templates do not match. A *preparer* is any callable

    prepare(image: PIL.Image.Image) -> list[np.ndarray]    # each (3, S, S) uint8 RGB, largest face first

returning an empty list when the photo holds no face. :func:`preparer_for` builds the one a record asks
for from :data:`PREPARERS`; a caller may also pass its own (``Client(..., prepare=...)``).

Today's shipped models were trained on a fixed box cut out of LFW-style photos (250x250, face roughly
centred), so ``box-crop`` is the preparation they need: it finds nothing, it cuts the recorded box
(:class:`partialface.data.CropSpec`) and resizes it. Photos that are already ``S x S`` aligned crops
pass through unchanged. It is right only for photos laid out like the training data; raw photos of any
size need the five-point aligner (``five-point`` below).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from ..data import CropSpec
from ..errors import PartialFaceError

__all__ = ["Preparer", "PREPARERS", "BoxCrop", "Photo", "preparer_for", "register_preparer", "open_photo", "prepare_photo"]

Preparer = Callable[[Image.Image], list[np.ndarray]]
Photo = Union[str, os.PathLike, bytes, Image.Image]

# Pillow raises these for missing, corrupt, truncated or oversized image files.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class BoxCrop:
    """The box-crop preparation: one face, the recorded box of the photo resized to ``size x size``."""

    def __init__(self, crop: CropSpec):
        self.crop = crop

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "BoxCrop":
        crop = spec.get("crop")
        try:
            return cls(CropSpec.from_dict(crop) if crop is not None else CropSpec(box=None))
        except (TypeError, ValueError) as err:
            raise PartialFaceError(f"client record: invalid box-crop preparation {crop!r}: {err}") from None

    def __call__(self, image: Image.Image) -> list[np.ndarray]:
        face = self.crop.apply(image.convert("RGB"))  # ValueError when the box does not fit the photo
        return [np.asarray(face, dtype=np.uint8).transpose(2, 0, 1).copy()]


def _five_point_unavailable(spec: Mapping[str, Any]) -> Preparer:
    raise PartialFaceError(
        "this model needs five-point aligned faces, and this build has no aligner (partialface.alignment)"
    )


# Preparation method (the record's ``preparation.method``) -> factory(spec) -> preparer.
PREPARERS: dict[str, Callable[[Mapping[str, Any]], Preparer]] = {
    "box-crop": BoxCrop.from_spec,
    # LEAD: plug the aligner in here once partialface.alignment lands: a factory that returns
    # ``lambda image: [aligned (3,112,112) uint8 faces, largest first]`` from detection + the five-point
    # ArcFace similarity warp, e.g. ``"five-point": lambda spec: FivePointAligner(size=spec.get("size", 112))``.
    "five-point": _five_point_unavailable,
}


def register_preparer(method: str, factory: Callable[[Mapping[str, Any]], Preparer]) -> None:
    """Make ``method`` available to :func:`preparer_for` (an aligner package registers itself here)."""
    PREPARERS[method] = factory


def preparer_for(preparation: Mapping[str, Any]) -> Preparer:
    """The preparer a client record asks for; a clear error for a method this client lacks."""
    method = preparation.get("method")
    if method not in PREPARERS:
        raise PartialFaceError(f"unknown face preparation {method!r} (known: {', '.join(sorted(PREPARERS))})")
    return PREPARERS[method](preparation)


def _name(photo: Photo) -> str:
    if isinstance(photo, (str, os.PathLike)):
        return os.fspath(photo)
    return "<image in memory>" if isinstance(photo, Image.Image) else f"<{len(photo)} bytes>"


def open_photo(photo: Photo) -> Image.Image:
    """A photo (path, encoded bytes or a Pillow image) as a loaded RGB image; errors name the file."""
    if isinstance(photo, Image.Image):
        return photo.convert("RGB")
    try:
        source = io.BytesIO(photo) if isinstance(photo, bytes) else Path(photo)
        with Image.open(source) as image:
            return image.convert("RGB")
    except _IMAGE_ERRORS as err:
        raise PartialFaceError(f"cannot read photo {_name(photo)}: {err}") from None


def prepare_photo(prepare: Preparer, photo: Photo) -> list[np.ndarray]:
    """The faces of one photo, largest first; a photo without a face is an error naming it."""
    image = open_photo(photo)
    try:
        faces = prepare(image)
    except ValueError as err:  # PartialFaceError included: e.g. a crop box that does not fit the photo
        raise PartialFaceError(f"photo {_name(photo)}: {err}") from None
    if not faces:
        raise PartialFaceError(f"photo {_name(photo)}: no face found")
    return faces
