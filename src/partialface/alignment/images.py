"""Any photo a user hands the client, as the 8-bit upright RGB image a face detector expects.

Pillow opens photos in many modes, and a plain ``image.convert("RGB")`` gets several of them wrong:
16-bit greyscale (``I;16``, a common PNG/TIFF output of scanners and cameras) and 32-bit ``I``/``F``
images are *clipped* to 255, so almost every pixel turns white and no face is found; a transparent
background keeps whatever colour the transparent pixels happen to hold; a phone photo stored sideways
with an EXIF orientation tag is detected sideways (detectors look for upright faces); a CMYK or
wide-gamut photo with an embedded ICC profile gets the wrong colours. :func:`to_rgb8` handles each case
once, here, so that detection, the dataset command and a model's input preparation all see the same
pixels.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from ..errors import PartialFaceError

__all__ = ["to_rgb8", "open_rgb8", "BACKGROUND"]

# Transparent pixels are composited onto this colour (white: a "no background" photo shows white).
BACKGROUND = (255, 255, 255)

# Pillow raises these for missing, corrupt, truncated or oversized image files.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_SRGB = ImageCms.createProfile("sRGB")


def _wide_grey_to_l(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale to 8-bit ``L`` by rescaling, never by clipping.

    ``I;16*`` images hold 0..65535. Mode ``I`` holds 16-bit data as often as 8-bit (Pillow opens some
    16-bit PNG/TIFF files as ``I``): values above 255 mean 16-bit. Mode ``F`` is taken as 0..1 when
    no value exceeds 1, else as 0..255.
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode in _SIXTEEN_BIT_MODES or (image.mode == "I" and values.size and values.max() > 255):
        values = values / 257.0
    elif image.mode == "F" and values.size and np.nanmax(values) <= 1.0:
        values = values * 255.0
    values = np.nan_to_num(values, nan=0.0)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _apply_icc_profile(image: Image.Image) -> Image.Image:
    """Colours of an RGB/CMYK photo with an embedded ICC profile, converted to sRGB.

    A profile Pillow's colour engine cannot read is ignored (the plain conversion is used instead):
    a malformed tag in the metadata should not make an otherwise readable photo unusable.
    """
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "CMYK"):
        return image
    try:
        return ImageCms.profileToProfile(image, io.BytesIO(profile), _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image


def to_rgb8(image: Image.Image) -> Image.Image:
    """``image`` upright (EXIF orientation applied), in 8-bit sRGB ``RGB`` mode, alpha composited on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        image = _wide_grey_to_l(image)
    if image.mode == "P":
        # a palette image may carry transparency (one index or per-entry alpha): resolve it first
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    image = _apply_icc_profile(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def open_rgb8(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file as :func:`to_rgb8` pixels; raises PartialFaceError naming the file if unreadable."""
    name = os.fspath(path)
    if not Path(path).is_file():
        raise PartialFaceError(f"image {name!r} does not exist or is not a file")
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb8(image)
    except _IMAGE_ERRORS as error:
        raise PartialFaceError(f"cannot read image {name!r}: {error}") from error
