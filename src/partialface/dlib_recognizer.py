"""dlib's ResNet face recognizer: where its model files are, and the 128-d descriptor of a face photo.

One module for every user of dlib's recognizer in the project: the privacy judge
(:mod:`partialface.attacks.judge`, a recognizer this project did not train) and the teacher of
knowledge distillation (:mod:`partialface.training.teacher`, a recognizer trained on millions of faces
that labels the small training set here). The weights come from PyPI (``face-recognition-models``,
run by ``dlib-bin``); nothing is downloaded at run time.

A descriptor is computed the way dlib expects: a face rectangle (given, or found by the frontal face
detector, falling back to the whole image when it finds none), the 5-point shape predictor's
landmarks inside it, ``dlib.get_face_chip`` cutting the aligned 150x150 chip, and the ResNet embedding
that chip into 128 dimensions (unit-free; two photos of one person lie within about 0.6 of each
other in Euclidean distance, dlib's documented threshold).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PartialFaceError

__all__ = [
    "CHIP_SIZE",
    "DESCRIPTOR_SIZE",
    "RECOGNITION_MODEL_FILE",
    "SHAPE_PREDICTOR_FILE",
    "DlibRecognizer",
    "dlib_model_file",
    "dlib_models_dir",
    "import_dlib",
    "recognizer_unavailable_reason",
    "recognizer_versions",
]

DESCRIPTOR_SIZE = 128
CHIP_SIZE = 150
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"

Box = tuple[int, int, int, int]


def import_dlib() -> Any:
    """The dlib module, or PartialFaceError saying which package installs it."""
    if importlib.util.find_spec("dlib") is None:
        raise PartialFaceError("dlib is not installed: pip install dlib-bin")
    import dlib  # imported here: only the commands that run dlib need it

    return dlib


def dlib_models_dir() -> Path:
    """Folder of the model files installed by ``face-recognition-models``.

    The package is located without importing it: its ``__init__`` needs ``pkg_resources``, which
    current setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise PartialFaceError("dlib's model files are not installed: pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def dlib_model_file(name: str, models_dir: str | Path | None = None) -> Path:
    """Path of one of dlib's model files (in ``models_dir``, default :func:`dlib_models_dir`)."""
    path = (Path(models_dir) if models_dir is not None else dlib_models_dir()) / name
    if not path.is_file():
        raise PartialFaceError(f"dlib model file {path} not found (reinstall face-recognition-models)")
    return path


def recognizer_unavailable_reason() -> str | None:
    """None when dlib and the recognizer's model files are usable, else a sentence saying what is missing."""
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (PyPI package 'dlib-bin')"
    try:
        models = dlib_models_dir()
    except PartialFaceError as error:
        return str(error)
    missing = [name for name in (SHAPE_PREDICTOR_FILE, RECOGNITION_MODEL_FILE) if not (models / name).is_file()]
    if missing:
        return f"dlib model files missing in {models}: {', '.join(missing)}"
    return None


def recognizer_versions() -> dict[str, str]:
    """Installed versions of the recognizer's packages (for reports and model cards)."""
    versions = {}
    for package in ("dlib-bin", "dlib", "face-recognition-models"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise PartialFaceError(f"dlib needs an (H, W, 3) uint8 RGB image, got {described}")
    return np.ascontiguousarray(image)


class DlibRecognizer:
    """dlib's detector, 5-point shape predictor and ResNet recognizer, loaded once.

    Args:
        models_dir: folder holding the model files (default: :func:`dlib_models_dir`).
        upsample: detector up-sampling steps when no box is given (1 finds the faces of 112x112 crops).
        padding: margin of the face chip around the landmarks (dlib's default 0.25).
    """

    def __init__(self, models_dir: str | Path | None = None, upsample: int = 1, padding: float = 0.25) -> None:
        dlib = import_dlib()
        shape_file = dlib_model_file(SHAPE_PREDICTOR_FILE, models_dir)
        recognition_file = dlib_model_file(RECOGNITION_MODEL_FILE, models_dir)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape_predictor = dlib.shape_predictor(str(shape_file))
        self._recognizer = dlib.face_recognition_model_v1(str(recognition_file))
        self.upsample = int(upsample)
        self.padding = float(padding)

    def chip(self, image: np.ndarray, box: Box | None = None) -> tuple[np.ndarray, bool]:
        """The aligned 150x150 chip of one (H, W, 3) uint8 image, and whether a face was detected.

        ``box`` (left, top, right, bottom; right/bottom exclusive) is the face rectangle the landmarks
        are searched in; without it the detector looks for the face (the largest one), and the whole
        image stands in when it finds none (``detected`` False). A given box counts as detected.
        """
        image = _check_image(image)
        if box is not None:
            left, top, right, bottom = (int(v) for v in box)
            rect, detected = self._dlib.rectangle(left, top, right - 1, bottom - 1), True
        else:
            detections = self._detector(image, self.upsample)
            detected = bool(len(detections))
            if detected:
                rect = max(detections, key=lambda found: found.area())
            else:
                rect = self._dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
        landmarks = self._shape_predictor(image, rect)
        chip = self._dlib.get_face_chip(image, landmarks, size=CHIP_SIZE, padding=self.padding)
        return np.asarray(chip), detected

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d descriptor (float64) of one aligned chip (:meth:`chip`)."""
        return np.asarray(self._recognizer.compute_face_descriptor(_check_image(chip)), dtype=np.float64)

    def describe(self, image: np.ndarray, box: Box | None = None) -> tuple[np.ndarray, bool]:
        """Descriptor of the face in one image (see :meth:`chip` for ``box``) and whether it was detected."""
        chip, detected = self.chip(image, box)
        return self.descriptor(chip), detected
