"""Every photo mode becomes correct 8-bit upright RGB before detection (partialface.alignment.images)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from partialface.alignment import open_rgb8, to_rgb8
from partialface.errors import PartialFaceError


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """An RGB test card: distinct values in each channel and position."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=-1).astype(np.uint8)


def test_sixteen_bit_grey_is_rescaled_not_clipped(tmp_path):
    grey = gradient()[..., 0]
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    assert wide.mode == "I;16"
    assert np.asarray(wide.convert("L")).mean() > 250  # Pillow's own conversion whites the picture out
    path = tmp_path / "grey16.png"
    wide.save(path)
    rgb = open_rgb8(path)
    assert rgb.mode == "RGB"
    pixels = np.asarray(rgb)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[..., channel], grey)


def test_32_bit_int_and_float_grey():
    grey = gradient()[..., 0]
    as_int16 = Image.fromarray(grey.astype(np.int32) * 257, mode="I")
    np.testing.assert_array_equal(np.asarray(to_rgb8(as_int16))[..., 1], grey)
    as_int8 = Image.fromarray(grey.astype(np.int32), mode="I")  # values <= 255: already 8-bit
    np.testing.assert_array_equal(np.asarray(to_rgb8(as_int8))[..., 1], grey)
    as_unit_float = Image.fromarray(grey.astype(np.float32) / 255.0, mode="F")
    np.testing.assert_array_equal(np.asarray(to_rgb8(as_unit_float))[..., 2], grey)


def test_greyscale_and_bilevel():
    grey = gradient()[..., 1]
    pixels = np.asarray(to_rgb8(Image.fromarray(grey, mode="L")))
    assert pixels.shape == grey.shape + (3,) and (pixels == grey[..., None]).all()
    bilevel = to_rgb8(Image.fromarray(grey > 127))
    assert set(np.unique(np.asarray(bilevel))) == {0, 255}


def test_palette_with_transparency_is_composited_on_white():
    card = Image.fromarray(gradient())
    palette = card.quantize(16)
    index = np.asarray(palette).copy()
    transparent_index = int(index[0, 0])
    palette.info["transparency"] = transparent_index
    pixels = np.asarray(to_rgb8(palette))
    assert (pixels[index == transparent_index] == 255).all()
    opaque = index != transparent_index
    expected = np.asarray(palette.convert("RGB"))
    np.testing.assert_array_equal(pixels[opaque], expected[opaque])


def test_alpha_is_composited_on_white():
    card = gradient()
    alpha = np.full(card.shape[:2], 255, dtype=np.uint8)
    alpha[:, :10] = 0
    alpha[:, 10:20] = 128
    pixels = np.asarray(to_rgb8(Image.fromarray(np.dstack([card, alpha]), mode="RGBA"))).astype(int)
    assert (pixels[:, :10] == 255).all()
    np.testing.assert_array_equal(pixels[:, 20:], card[:, 20:])
    half = (card[:, 10:20].astype(int) + 255) / 2
    assert np.abs(pixels[:, 10:20] - half).max() <= 1
    grey_alpha = Image.fromarray(np.dstack([card[..., 0], alpha]), mode="LA")
    assert (np.asarray(to_rgb8(grey_alpha))[:, :10] == 255).all()


def test_cmyk_round_trips():
    card = Image.fromarray(gradient())
    np.testing.assert_array_equal(np.asarray(to_rgb8(card.convert("CMYK"))), gradient())


def test_exif_orientation_is_applied(tmp_path):
    card = gradient(64, 48)
    card[:4, :4] = (255, 0, 0)  # a red mark in the top-left corner of the stored pixels
    image = Image.fromarray(card)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turned 90 degrees clockwise
    path = tmp_path / "sideways.jpg"
    image.save(path, exif=exif, quality=100)
    upright = open_rgb8(path)
    assert upright.size == (48, 64)  # width and height swap
    pixels = np.asarray(upright).astype(int)
    # rotating clockwise takes the stored top-left corner to the top-right
    assert pixels[1, -2, 0] > 200 and pixels[1, -2, 1] < 60
    assert pixels[1, 1, 0] < 200 or pixels[1, 1, 1] > 60


def test_icc_profile_is_applied_when_readable():
    from PIL import ImageCms

    card = Image.fromarray(gradient())
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    card.info["icc_profile"] = srgb
    np.testing.assert_allclose(np.asarray(to_rgb8(card)).astype(int), gradient().astype(int), atol=2)
    card.info["icc_profile"] = b"not a profile"
    np.testing.assert_array_equal(np.asarray(to_rgb8(card)), gradient())


def test_unreadable_and_missing_files_name_the_file(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not a JPEG")
    with pytest.raises(PartialFaceError, match="broken.jpg"):
        open_rgb8(broken)
    with pytest.raises(PartialFaceError, match="missing.png"):
        open_rgb8(tmp_path / "missing.png")
    truncated = tmp_path / "truncated.png"
    buffer = io.BytesIO()
    Image.fromarray(gradient()).save(buffer, format="PNG")
    truncated.write_bytes(buffer.getvalue()[:100])
    with pytest.raises(PartialFaceError, match="truncated.png"):
        open_rgb8(truncated)
