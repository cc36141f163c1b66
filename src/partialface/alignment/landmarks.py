"""Facial landmarks inside a detected box, and the template points each set is aligned to.

The ArcFace template fixes five points: the two eye centres, the nose tip and the two mouth corners.
dlib's two shape predictors (both in ``face-recognition-models``) place different points:

- ``dlib68``: the 68-point iBUG layout. The ArcFace points follow from it exactly: each eye centre is
  the mean of its six contour points (36-41, 42-47), the nose tip is point 30, the mouth corners are
  points 48 and 54. These five are aligned to :data:`~.template.ARCFACE_TEMPLATE` itself.
- ``dlib5``: four eye *corners* and the base of the nose (below the tip); no mouth at all. These are
  aligned to :data:`DLIB5_TEMPLATE`, where the same points lie on average on faces aligned by a
  five-point ArcFace detector (SCRFD, the project's CelebA copy); ``benchmarks/alignment.py --calibrate``
  measures it. Without the mouth the vertical scale rests on the eye-to-nose distance alone.

``benchmarks/alignment.py`` measures which of the two lands faces closer to the template (docs/alignment.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ..checks import check_choice
from .detectors import FaceBox, dlib_model_file, import_dlib, shared_dlib_model
from .template import ARCFACE_TEMPLATE

__all__ = ["LandmarkModel", "Dlib68Landmarks", "Dlib5Landmarks", "LANDMARKS", "make_landmarks", "DLIB5_TEMPLATE"]

# Where dlib's five points (image-right eye outer and inner corner, image-left eye outer and inner
# corner, nose base) lie in the 112x112 ArcFace template: their mean over the 1,449 of 1,500 CelebA photos
# (people at even index) where HOG found the face, photos SCRFD aligned to that template (`python benchmarks/alignment.py --calibrate`).
DLIB5_TEMPLATE = np.array(
    [
        [80.2, 52.8],
        [66.0, 53.8],
        [30.9, 53.1],
        [45.1, 54.0],
        [55.6, 81.0],
    ],
    dtype=np.float64,
)


class LandmarkModel(Protocol):
    """Places ``len(template)`` points on the face in ``box``; ``template`` is where alignment puts them."""

    name: str
    template: np.ndarray

    def locate(self, pixels: np.ndarray, box: FaceBox) -> np.ndarray: ...


def _shape_points(predictor: tuple[Any, threading.Lock], pixels: np.ndarray, box: FaceBox) -> np.ndarray:
    dlib = import_dlib()
    # dlib rectangles are inclusive
    rect = dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
    model, lock = predictor  # shared between threads: one call at a time (detectors.shared_dlib_model)
    with lock:
        shape = model(np.ascontiguousarray(pixels), rect)
    return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)


def _predictor(file_name: str) -> tuple[Any, threading.Lock]:
    return shared_dlib_model(file_name, lambda: import_dlib().shape_predictor(str(dlib_model_file(file_name))))


class Dlib68Landmarks:
    """The ArcFace five points derived from dlib's 68-point predictor (loading it takes about a second)."""

    name = "dlib68"
    template = ARCFACE_TEMPLATE

    def __init__(self) -> None:
        self._predictor = _predictor("shape_predictor_68_face_landmarks.dat")

    def locate(self, pixels: np.ndarray, box: FaceBox) -> np.ndarray:
        points = _shape_points(self._predictor, pixels, box)
        return np.stack(
            [points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]]
        )


class Dlib5Landmarks:
    """dlib's 5-point predictor: eye corners and nose base, aligned to :data:`DLIB5_TEMPLATE`."""

    name = "dlib5"
    template = DLIB5_TEMPLATE

    def __init__(self) -> None:
        self._predictor = _predictor("shape_predictor_5_face_landmarks.dat")

    def locate(self, pixels: np.ndarray, box: FaceBox) -> np.ndarray:
        return _shape_points(self._predictor, pixels, box)


LANDMARKS: dict[str, Callable[[], LandmarkModel]] = {"dlib68": Dlib68Landmarks, "dlib5": Dlib5Landmarks}


def make_landmarks(name: str) -> LandmarkModel:
    """The landmark model registered as ``name`` (one of :data:`LANDMARKS`)."""
    return LANDMARKS[check_choice("landmarks", name, tuple(LANDMARKS))]()
