"""partialface.data.pixels: the one conversion between 8-bit pixels and faces in [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from partialface.data import faces_to_pixels, image_to_tensor, pixels_to_faces
from partialface.errors import PartialFaceError


def test_every_level_round_trips_exactly_and_matches_the_image_loader():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(2, 3, 16, 16)
    faces = pixels_to_faces(levels)
    assert faces.dtype == torch.float32 and float(faces.min()) == -1.0 and float(faces.max()) == 1.0
    assert torch.equal(faces_to_pixels(faces), levels)
    array = levels[0].permute(1, 2, 0).numpy()
    assert torch.equal(image_to_tensor(Image.fromarray(np.ascontiguousarray(array))), faces[0])


def test_faces_to_pixels_rounds_and_clips():
    faces = torch.tensor([-1.5, -1.0, 0.0, 0.003, 1.0, 2.0])
    assert faces_to_pixels(faces).tolist() == [0, 0, 128, 128, 255, 255]


def test_wrong_types_are_user_errors():
    with pytest.raises(PartialFaceError, match="uint8"):
        pixels_to_faces(torch.zeros(3, 4, 4))
    with pytest.raises(PartialFaceError, match="uint8"):
        pixels_to_faces(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(PartialFaceError, match="floating-point"):
        faces_to_pixels(torch.zeros(3, 4, 4, dtype=torch.uint8))
