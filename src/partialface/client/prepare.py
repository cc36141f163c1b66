"""Face preparation on the client: a photo in, the model's input faces out (largest first).

A model records how its training faces were prepared (its checkpoint's ``preparation``, passed on in
the client record) and the client must prepare queries the same way, or the templates do not match.
The record is an :class:`partialface.alignment.InputPreparation` (``to_dict()``):

- ``{"kind": "box", "box": ..., "size": ...}``: the recorded box of an LFW-style photo, resized (the
  models trained on LFW's deep-funneled photos). Photos that already are ``S x S`` crops pass through.
  It finds no face: it is right only for photos laid out like the training data.
- ``{"kind": "five-point", ...}``: detect every face, warp its five landmarks onto the ArcFace template
  (dlib's detector and landmark models, offline), then the recorded box: any raw photo.

A *preparer* is any callable ``prepare(image: PIL.Image.Image) -> list[np.ndarray]``, each face
``(3, S, S)`` uint8 RGB, largest first, empty when the photo holds no face. :func:`preparer_for` builds the
one a record asks for; a caller may pass its own (``Client(..., prepare=...)``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from ..alignment.preparation import InputPreparation
from ..data.images import IMAGE_ERRORS, to_rgb8
from ..errors import PartialFaceError

__all__ = ["Preparer", "Photo", "preparer_for", "open_photo", "prepare_photo"]

Preparer = Callable[[Image.Image], list[np.ndarray]]
Photo = Union[str, os.PathLike, bytes, Image.Image]


def preparer_for(preparation: Mapping[str, Any]) -> Preparer:
    """The preparer a client record asks for; one clear error for a record this client cannot follow."""
    try:
        recorded = InputPreparation.from_dict(preparation)
    except PartialFaceError as err:
        raise PartialFaceError(f"client record: {err}") from None

    def prepare(image: Image.Image) -> list[np.ndarray]:
        return [np.asarray(face, dtype=np.uint8).transpose(2, 0, 1).copy() for face in recorded.prepare_all(image)]

    return prepare


def _name(photo: Photo) -> str:
    if isinstance(photo, (str, os.PathLike)):
        return os.fspath(photo)
    return "<image in memory>" if isinstance(photo, Image.Image) else f"<{len(photo)} bytes>"


def open_photo(photo: Photo) -> Image.Image:
    """A photo (path, encoded bytes or a Pillow image) as upright 8-bit RGB, converted as every loader of
    the project converts (:func:`partialface.data.images.to_rgb8`: 16-bit, palette, CMYK, alpha, EXIF);
    errors name the file."""
    if isinstance(photo, Image.Image):
        return to_rgb8(photo)
    try:
        source = io.BytesIO(photo) if isinstance(photo, bytes) else Path(photo)
        with Image.open(source) as image:
            image.load()
            return to_rgb8(image)
    except IMAGE_ERRORS as err:
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
