"""Photos of every kind become correct 8-bit RGB wherever faces are loaded (issue 11 case 3), and a photo
whose size does not fit the crop is refused instead of silently cut (the 8000x8000 "black corner")."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from partialface.data import DEFAULT_CROP, CropSpec, decode_face, load_cropped_jpeg, load_face, to_rgb8
from partialface.data.crop import load_face_pixels
from partialface.errors import PartialFaceError
from partialface.protect import protect_files
from partialface.protected import load_protected

from ..conftest import require_lfw


def card(width: int = 250, height: int = 250) -> np.ndarray:
    """An RGB test card with distinct values per channel and position."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=-1).astype(np.uint8)


def expected_face(rgb: np.ndarray) -> torch.Tensor:
    """What the default crop of an 8-bit RGB array must give."""
    return torch.from_numpy(rgb[69:181, 69:181].copy()).permute(2, 0, 1).float() / 127.5 - 1


def saved(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def test_sixteen_bit_grey_is_the_grey_it_shows_not_white(tmp_path: Path) -> None:
    grey = card()[..., 0]
    path = saved(Image.fromarray(grey.astype(np.uint16) * 257), tmp_path / "grey16.png")
    assert Image.open(path).mode in ("I;16", "I")
    face = load_face(path)
    assert torch.equal(face, expected_face(np.repeat(grey[..., None], 3, axis=2)))
    protect_files(path, tmp_path / "out", previews=False, progress=False)
    sent = load_protected(tmp_path / "out" / "grey16.png.npz").channels
    assert sent.abs().max() > 0.1  # the issue: a white picture sent channels of ~1e-8


@pytest.mark.parametrize("mode", ["P", "L", "CMYK"])
def test_palette_grey_and_cmyk_photos(tmp_path: Path, mode: str) -> None:
    rgb = card()
    image = Image.fromarray(rgb).convert(mode)
    path = saved(image, tmp_path / ("photo.jpg" if mode == "CMYK" else "photo.png"))
    reference = np.asarray(Image.open(path).convert("RGB"))  # for these modes Pillow's conversion is right
    assert torch.equal(load_face(path), expected_face(reference))


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((250, 250, 4), dtype=np.uint8)
    rgba[..., 2] = 255  # blue, fully transparent: a "no background" photo shows white
    path = saved(Image.fromarray(rgba, "RGBA"), tmp_path / "cut_out.png")
    assert torch.all(load_face(path) == 1.0)
    palette = Image.fromarray(card()).convert("P")
    palette.info["transparency"] = 0
    assert load_face(saved(palette, tmp_path / "palette_alpha.png")).shape == (3, 112, 112)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone photo stored sideways with orientation 6 (rotate 90 degrees clockwise to view)."""
    upright = card()
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    path = saved(stored, tmp_path / "phone.png", exif=exif.tobytes())
    assert torch.equal(load_face(path), expected_face(upright))


def test_every_loader_converts_the_same_way(tmp_path: Path) -> None:
    grey = card()[..., 1]
    path = saved(Image.fromarray(grey.astype(np.uint16) * 257), tmp_path / "grey16.png")
    face = load_face(path)
    assert torch.equal(decode_face(path.read_bytes(), DEFAULT_CROP), face)
    jpeg = np.asarray(Image.open(io.BytesIO(load_cropped_jpeg(path, DEFAULT_CROP))))
    assert abs(jpeg.astype(float).mean() - grey[69:181, 69:181].mean()) < 2  # not white
    assert to_rgb8(Image.open(path)).mode == "RGB"


def test_lfw_photos_load_bit_identically_to_a_plain_rgb_conversion() -> None:
    """The one conversion changes nothing for 8-bit RGB JPEGs: LFW results cannot move.

    Every 50th photo by default; ``LFW_PIXEL_STRIDE=1`` compares all 10,562.
    """
    files = sorted((require_lfw() / "images").glob("*/*.jpg"))[:: int(os.environ.get("LFW_PIXEL_STRIDE", "50"))]
    assert files
    for path in files:
        with Image.open(path) as image:
            plain = np.asarray(image.convert("RGB").crop(DEFAULT_CROP.box))
        assert np.array_equal(load_face_pixels(path).permute(1, 2, 0).numpy(), plain), path


@pytest.mark.parametrize(("size", "fits"), [
    ((250, 250), True),  # LFW, partialface align --frame 250
    ((256, 256), True),  # 3 px off centre: within 10 % of the box
    ((128, 128), False),  # the box does not fit
    ((8000, 8000), False),  # the issue: the box is the photo's black corner
    ((300, 200), False),
    ((200, 300), False),
])
def test_the_box_is_only_cut_from_photos_it_is_centred_in(size: tuple[int, int], fits: bool) -> None:
    image = Image.new("RGB", size)
    if fits:
        assert DEFAULT_CROP.apply(image).size == (112, 112)
    else:
        with pytest.raises(PartialFaceError, match=r"crop box \(69, 69, 181, 181\) .* 250x250 photos\); align "
                                                   r"the photo first \(partialface align\)"):
            DEFAULT_CROP.apply(image)


def test_the_gpu_protocols_packed_photos_still_fit() -> None:
    """experiments/pack_lfw_for_device.py: 128x128 copies with the box at (5, 5, 117, 117), 6 px off centre."""
    assert CropSpec((5, 5, 117, 117)).apply(Image.new("RGB", (128, 128))).size == (112, 112)


def test_without_a_box_a_photo_must_be_square() -> None:
    whole = CropSpec(None, 112)
    assert whole.apply(Image.new("RGB", (120, 118))).size == (112, 112)
    with pytest.raises(PartialFaceError, match="a 178x218 photo is not square"):
        whole.apply(Image.new("RGB", (178, 218)))  # CelebA's unaligned photos
    assert CropSpec(DEFAULT_CROP.box).apply(Image.new("RGB", (112, 112))).size == (112, 112)  # crops pass through


def test_a_refused_photo_names_its_file(tmp_path: Path) -> None:
    path = saved(Image.new("RGB", (1000, 1000)), tmp_path / "holiday.jpg")
    with pytest.raises(PartialFaceError, match=r"cannot load face image '.*holiday.jpg': crop box"):
        load_face(path)
