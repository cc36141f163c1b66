"""Independent judge of identity leakage: dlib's ResNet face recognizer.

The judge is a recognizer this project did not train (dlib's ``dlib_face_recognition_resnet_model_v1``
shipped by the PyPI package ``face-recognition-models``, run by ``dlib-bin``; no download at run time).
Each face is aligned as dlib expects: the frontal face detector (one up-sampling) finds the face,
falling back to the whole image when it finds none (common on tight 112x112 crops and blurred
reconstructions), the 5-point shape predictor places landmarks, and ``dlib.get_face_chip`` cuts the
150x150 chip that the ResNet embeds into 128 dimensions.  Two faces are the same person when their
descriptors are close: the verification score is the negative Euclidean distance.

Leakage is measured on pairs (recovered face, genuine photo): verification accuracy with 10-fold
thresholds (:func:`partialface.evaluation.metrics.kfold_accuracy`; 50% is chance on balanced pairs)
and rank-1 identification of recovered faces against a gallery of genuine photos.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..evaluation.metrics import kfold_accuracy

DESCRIPTOR_SIZE = 128
CHIP_SIZE = 150
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_models_dir() -> Path:
    """Folder of the model files installed by ``face-recognition-models``.

    The package is located without importing it (its ``__init__`` needs ``pkg_resources``, which
    current setuptools no longer ships).  Raises ValueError when it is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the judge needs the PyPI package 'face-recognition-models' (dlib's model files)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def judge_unavailable_reason() -> str | None:
    """None when dlib and its model files are usable, else a sentence saying what is missing."""
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (PyPI package 'dlib-bin')"
    try:
        models = dlib_models_dir()
    except ValueError as error:
        return str(error)
    missing = [name for name in (SHAPE_PREDICTOR_FILE, RECOGNITION_MODEL_FILE) if not (models / name).is_file()]
    if missing:
        return f"dlib model files missing in {models}: {', '.join(missing)}"
    return None


def judge_versions() -> dict[str, str]:
    """Installed versions of the judge's packages (for reports)."""
    versions = {}
    for package in ("dlib-bin", "dlib", "face-recognition-models"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def faces_to_uint8_images(faces: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) faces in [-1, 1] -> (B, H, W, 3) uint8 RGB images."""
    if not isinstance(faces, torch.Tensor) or faces.dim() != 4 or faces.shape[1] != 3:
        shape = tuple(faces.shape) if isinstance(faces, torch.Tensor) else type(faces).__name__
        raise ValueError(f"the judge needs (B, 3, H, W) RGB faces in [-1, 1], got {shape}")
    unit = (faces.detach().to("cpu", torch.float32) * 0.5 + 0.5).clamp_(0.0, 1.0)
    return (unit * 255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


@dataclass
class Embeddings:
    """Judge descriptors of a batch of faces and whether the detector found each face."""

    descriptors: np.ndarray  # (B, 128) float64
    detected: np.ndarray  # (B,) bool

    @property
    def detection_rate(self) -> float:
        return float(self.detected.mean()) if self.detected.size else 0.0


class DlibJudge:
    """dlib ResNet face descriptors of (B, 3, H, W) faces in [-1, 1].

    Args:
        models_dir: folder holding the dlib model files (default: :func:`dlib_models_dir`).
        upsample: detector up-sampling steps (1 lets it find the faces of 112x112 crops).
        padding: margin of the face chip (dlib's default 0.25).
    """

    def __init__(self, models_dir: str | Path | None = None, upsample: int = 1, padding: float = 0.25) -> None:
        if importlib.util.find_spec("dlib") is None:
            raise ValueError("the judge needs dlib (PyPI package 'dlib-bin')")
        import dlib  # imported here: dlib is needed only by the judge

        folder = Path(models_dir) if models_dir is not None else dlib_models_dir()
        for name in (SHAPE_PREDICTOR_FILE, RECOGNITION_MODEL_FILE):
            if not (folder / name).is_file():
                raise ValueError(f"dlib model file {folder / name} not found")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape_predictor = dlib.shape_predictor(str(folder / SHAPE_PREDICTOR_FILE))
        self._recognizer = dlib.face_recognition_model_v1(str(folder / RECOGNITION_MODEL_FILE))
        self.upsample = int(upsample)
        self.padding = float(padding)

    def chip(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """The aligned 150x150 chip of one (H, W, 3) uint8 image and whether a face was detected."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"chip needs an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
        image = np.ascontiguousarray(image)
        detections = self._detector(image, self.upsample)
        if len(detections):
            box = max(detections, key=lambda rect: rect.area())
        else:
            box = self._dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
        landmarks = self._shape_predictor(image, box)
        chip = self._dlib.get_face_chip(image, landmarks, size=CHIP_SIZE, padding=self.padding)
        return np.asarray(chip), bool(len(detections))

    def embed(self, faces: torch.Tensor) -> Embeddings:
        """Descriptors (B, 128) of faces in [-1, 1]."""
        images = faces_to_uint8_images(faces)
        descriptors = np.empty((len(images), DESCRIPTOR_SIZE), dtype=np.float64)
        detected = np.zeros(len(images), dtype=bool)
        for index, image in enumerate(images):
            chip, detected[index] = self.chip(image)
            descriptors[index] = np.asarray(self._recognizer.compute_face_descriptor(chip))
        return Embeddings(descriptors, detected)


def pair_scores(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Verification scores of descriptor pairs: negative Euclidean distance (higher = same person)."""
    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(f"pair_scores needs two (N, D) arrays of one shape, got {first.shape} and {second.shape}")
    return -np.linalg.norm(first - second, axis=1)


@dataclass(frozen=True)
class JudgeProtocol:
    """Which genuine photos every recovered face is compared with.

    Attributes:
        gallery_of_victim: (V,) index of the victim's own person in the gallery (a different photo of
            the same person than the attacked one).
        impostor_of_victim: (V,) index of another person's gallery photo.
    """

    gallery_of_victim: np.ndarray
    impostor_of_victim: np.ndarray

    def __post_init__(self) -> None:
        if self.gallery_of_victim.shape != self.impostor_of_victim.shape:
            raise ValueError("gallery_of_victim and impostor_of_victim must have one length")
        if np.any(self.gallery_of_victim == self.impostor_of_victim):
            raise ValueError("an impostor pair compares a victim with its own person's photo")


@dataclass(frozen=True)
class LeakageScores:
    """Identity leakage of a set of recovered faces, in percent."""

    verification_accuracy: float  # 10-fold accuracy on balanced genuine/impostor pairs; 50 = chance
    verification_std: float
    rank1: float  # rank-1 identification against the gallery; chance = 100 / gallery size
    detection_rate: float  # share of faces in which dlib's detector found a face

    def to_dict(self) -> dict[str, float]:
        return {"judge_accuracy": self.verification_accuracy, "judge_accuracy_std": self.verification_std,
                "judge_rank1": self.rank1, "judge_detection_rate": self.detection_rate}


def identity_leakage(recovered: Embeddings, gallery: np.ndarray, protocol: JudgeProtocol,
                     n_folds: int = 10) -> LeakageScores:
    """Verification accuracy (10-fold thresholds) and rank-1 identification of recovered faces.

    Pairs alternate genuine / impostor (victim ``i`` with its own person's gallery photo, then with
    another person's), so every consecutive fold is balanced.
    """
    victims = recovered.descriptors
    if victims.shape[0] != protocol.gallery_of_victim.shape[0]:
        raise ValueError(f"{victims.shape[0]} recovered faces but the protocol covers "
                         f"{protocol.gallery_of_victim.shape[0]} victims")
    genuine = pair_scores(victims, gallery[protocol.gallery_of_victim])
    impostor = pair_scores(victims, gallery[protocol.impostor_of_victim])
    scores = np.stack([genuine, impostor], axis=1).reshape(-1)
    issame = np.tile([True, False], victims.shape[0])
    mean, std, _ = kfold_accuracy(scores, issame, n_folds=n_folds)
    distances = np.linalg.norm(victims[:, None, :] - gallery[None, :, :], axis=2)
    rank1 = float(np.mean(distances.argmin(axis=1) == protocol.gallery_of_victim))
    return LeakageScores(100.0 * mean, 100.0 * std, 100.0 * rank1, 100.0 * recovered.detection_rate)
