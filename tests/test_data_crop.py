"""Tests for partialface.data.crop: crop boxes, normalisation and unreadable files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from partialface.data.crop import DEFAULT_BOX, CropSpec, decode_face, image_to_tensor, load_face


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def save_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_default_spec_is_the_calibration_centre_crop() -> None:
    spec = CropSpec()
    assert spec.box == DEFAULT_BOX == (69, 69, 181, 181)
    assert spec.size == 112


def test_dict_round_trip_and_validation() -> None:
    for spec in (CropSpec(), CropSpec(box=(10, 20, 210, 220), size=64), CropSpec(box=None, size=32)):
        assert CropSpec.from_dict(spec.to_dict()) == spec
    assert CropSpec.from_dict({"box": [1, 2, 3, 4]}).box == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="unknown CropSpec keys"):
        CropSpec.from_dict({"box": None, "sise": 112})
    with pytest.raises(ValueError, match="box"):
        CropSpec(box=(10, 10, 5, 20))
    with pytest.raises(ValueError, match="box"):
        CropSpec(box=(0, 0, 10))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        CropSpec(size=0)


def test_apply_cuts_the_box_exactly_when_no_resize_is_needed() -> None:
    array = random_rgb(250, 250)
    cropped = CropSpec().apply(Image.fromarray(array))
    np.testing.assert_array_equal(np.asarray(cropped), array[69:181, 69:181])


def test_apply_resizes_box_and_whole_image() -> None:
    wide, square = Image.new("RGB", (200, 160), (40, 120, 200)), Image.new("RGB", (160, 160), (40, 120, 200))
    for spec, constant in ((CropSpec(box=(20, 0, 180, 160), size=48), wide), (CropSpec(box=None, size=48), square)):
        out = spec.apply(constant)
        assert out.size == (48, 48)
        assert np.all(np.asarray(out) == np.array([40, 120, 200], dtype=np.uint8))


def test_images_already_at_size_pass_through_uncropped() -> None:
    image = Image.fromarray(random_rgb(112, 112))
    assert CropSpec().apply(image) is image


def test_box_outside_the_image_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"does not fit in a 150x150 image"):
        CropSpec().apply(Image.new("RGB", (150, 150)))


def test_load_face_normalises_to_minus_one_one(tmp_path: Path) -> None:
    array = np.zeros((250, 250, 3), dtype=np.uint8)
    array[69:181, 69:125] = 255
    array[69:181, 125:181, 1] = 128
    tensor = load_face(save_png(tmp_path / "face.png", array), CropSpec())
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 112, 112)
    assert torch.all(tensor[:, :, :56] == 1.0)
    assert torch.allclose(tensor[1, :, 56:], torch.tensor((128 / 255 - 0.5) / 0.5), atol=1e-6)
    assert torch.all(tensor[0, :, 56:] == -1.0)


def test_load_face_converts_grey_and_rgba_to_rgb(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("L", (112, 112), 255).save(grey)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (112, 112), (0, 0, 255, 10)).save(rgba)
    assert torch.all(load_face(grey) == 1.0)
    faint_blue = load_face(rgba)  # alpha 10 of 255: composited on white (partialface.data.images.to_rgb8)
    assert faint_blue.shape == (3, 112, 112) and torch.all(faint_blue[2] == 1.0)
    assert torch.allclose(faint_blue[0], torch.tensor((245 / 255 - 0.5) / 0.5))


def test_unreadable_files_raise_value_error_naming_the_file(tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello")
    with pytest.raises(ValueError, match="notes.jpg"):
        load_face(not_an_image)
    with pytest.raises(ValueError, match="missing.jpg"):
        load_face(tmp_path / "missing.jpg")
    truncated = tmp_path / "truncated.jpg"
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(64, 64)).save(buffer, format="JPEG")
    truncated.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(ValueError, match="truncated.jpg"):
        load_face(truncated, None)


def test_decode_face_matches_image_to_tensor_and_names_bad_sources() -> None:
    array = random_rgb(32, 32, seed=3)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    decoded = decode_face(buffer.getvalue())
    assert torch.equal(decoded, image_to_tensor(Image.fromarray(array)))
    with pytest.raises(ValueError, match="record 7"):
        decode_face(b"garbage", source="record 7")
