"""The least-squares similarity and the warp onto the ArcFace template (synthetic points and images)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from partialface.alignment import ARCFACE_TEMPLATE, FaceFrame, estimate_similarity, warp_face
from partialface.alignment.template import apply_transform
from partialface.errors import PartialFaceError


def similarity(scale: float, angle: float, dx: float, dy: float) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, dx], [s, c, dy], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("scale,angle,dx,dy", [(1.0, 0.0, 0.0, 0.0), (2.7, 0.4, 130.0, 55.5), (0.31, -1.2, 20.0, 300.0)])
def test_exact_points_map_exactly_onto_the_template(scale, angle, dx, dy):
    photo_to_template = np.linalg.inv(similarity(scale, angle, dx, dy))
    photo_points = apply_transform(np.linalg.inv(photo_to_template), ARCFACE_TEMPLATE)
    estimated = estimate_similarity(photo_points, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(estimated, photo_to_template, atol=1e-9)
    np.testing.assert_allclose(apply_transform(estimated, photo_points), ARCFACE_TEMPLATE, atol=1e-9)


def test_least_squares_matches_scikit_image():
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(3)
    source = rng.uniform(0, 200, (5, 2))
    target = ARCFACE_TEMPLATE
    ours = estimate_similarity(source, target)
    if hasattr(SimilarityTransform, "from_estimate"):
        reference = SimilarityTransform.from_estimate(source, target)
    else:  # scikit-image < 0.26
        reference = SimilarityTransform()
        reference.estimate(source, target)
    np.testing.assert_allclose(ours, reference.params, atol=1e-9)


def test_degenerate_points_are_an_error():
    with pytest.raises(PartialFaceError, match="one place"):
        estimate_similarity(np.ones((5, 2)), ARCFACE_TEMPLATE)
    with pytest.raises(PartialFaceError, match="finite"):
        estimate_similarity(np.full((5, 2), np.nan), ARCFACE_TEMPLATE)
    with pytest.raises(PartialFaceError, match="shape"):
        estimate_similarity(np.ones((3, 2)), ARCFACE_TEMPLATE)


def test_frame_geometry():
    assert FaceFrame(250).face_box == (69, 69, 181, 181)
    assert FaceFrame().face_box == (0, 0, 112, 112)
    assert FaceFrame(200, offset=10).face_box == (10, 10, 122, 122)
    for bad in (dict(size=100), dict(size=250, offset=200), dict(size=True)):
        with pytest.raises(PartialFaceError):
            FaceFrame(**bad)


def dots_photo(points: np.ndarray, size: tuple[int, int], sigma: float) -> Image.Image:
    """A black photo with a Gaussian spot centred exactly (sub-pixel) on each point."""
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(float)
    brightness = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) for x, y in points)
    grey = np.clip(np.rint(255 * brightness), 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([grey] * 3))


def centroids(pixels: np.ndarray, points: np.ndarray, window: int) -> np.ndarray:
    """The brightness centroid around each expected point."""
    grey = pixels[..., 0].astype(float)
    found = []
    for x, y in np.rint(points).astype(int):
        patch = grey[y - window : y + window + 1, x - window : x + window + 1]
        ys, xs = np.mgrid[y - window : y + window + 1, x - window : x + window + 1]
        found.append(((xs * patch).sum() / patch.sum(), (ys * patch).sum() / patch.sum()))
    return np.array(found)


@pytest.mark.parametrize(
    "scale,frame",
    [(2.0, FaceFrame()), (2.0, FaceFrame(250)), (12.0, FaceFrame(250))],  # 12x: the box-filter shrink runs first
)
def test_warp_puts_the_landmarks_on_the_template(scale, frame):
    template_to_photo = similarity(scale, 0.3, 40.0 * scale, 10.0 * scale)
    photo_points = apply_transform(template_to_photo, ARCFACE_TEMPLATE)
    side = int(photo_points.max() + 40 * scale)
    photo = dots_photo(photo_points, (side, side), sigma=1.2 * scale)
    transform = estimate_similarity(photo_points, ARCFACE_TEMPLATE)
    warped = warp_face(photo, transform, frame)
    assert warped.shape == (frame.size, frame.size, 3) and warped.dtype == np.uint8
    expected = ARCFACE_TEMPLATE + frame.offset
    np.testing.assert_allclose(centroids(warped, expected, window=4), expected, atol=0.05)


def test_warp_repeats_the_edge_outside_the_photo():
    photo = Image.new("RGB", (60, 60), (200, 10, 10))
    transform = estimate_similarity(np.array([[25.0, 25.0], [35.0, 25.0]]), ARCFACE_TEMPLATE[:2])
    warped = warp_face(photo, transform, FaceFrame(250))
    assert (warped == (200, 10, 10)).all()  # no black border: the edge colour fills the frame
