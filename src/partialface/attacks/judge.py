"""Independent judge of identity leakage: dlib's ResNet face recognizer.

The judge is a recognizer this project did not train (dlib's ``dlib_face_recognition_resnet_model_v1``
shipped by the PyPI package ``face-recognition-models``, run by ``dlib-bin``; no download at run time).
Each face is aligned as dlib expects: the frontal face detector (one up-sampling) finds the face,
falling back to the whole image when it finds none (common on tight 112x112 crops and blurred
reconstructions), the 5-point shape predictor places landmarks, and ``dlib.get_face_chip`` cuts the
150x150 chip that the ResNet embeds into 128 dimensions.  Two faces are the same person when their
descriptors are close: the verification score is the negative Euclidean distance. The recognizer
itself (model files, chip, descriptor) is :mod:`partialface.dlib_recognizer`, shared with the
distillation teacher.

Leakage is measured on pairs (recovered face, genuine photo): verification accuracy with 10-fold
thresholds (:func:`partialface.evaluation.metrics.kfold_accuracy`; 50% is chance on balanced pairs)
and rank-1 identification of recovered faces against a gallery of genuine photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..dlib_recognizer import (
    CHIP_SIZE,
    DESCRIPTOR_SIZE,
    DlibRecognizer,
    dlib_models_dir,
    recognizer_unavailable_reason,
    recognizer_versions,
)
from ..evaluation.metrics import kfold_accuracy

__all__ = [
    "CHIP_SIZE",
    "DESCRIPTOR_SIZE",
    "DlibJudge",
    "Embeddings",
    "JudgeProtocol",
    "LeakageScores",
    "dlib_models_dir",
    "faces_to_uint8_images",
    "identity_leakage",
    "judge_unavailable_reason",
    "judge_versions",
    "pair_scores",
]

# The judge is dlib's recognizer (partialface.dlib_recognizer); these names say what they are used for here.
judge_unavailable_reason = recognizer_unavailable_reason
judge_versions = recognizer_versions


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
    """dlib ResNet face descriptors of (B, 3, H, W) faces in [-1, 1] (:class:`DlibRecognizer` on each face).

    Args:
        models_dir: folder holding the dlib model files (default: :func:`dlib_models_dir`).
        upsample: detector up-sampling steps (1 lets it find the faces of 112x112 crops).
        padding: margin of the face chip (dlib's default 0.25).
    """

    def __init__(self, models_dir: str | Path | None = None, upsample: int = 1, padding: float = 0.25) -> None:
        self.recognizer = DlibRecognizer(models_dir, upsample=upsample, padding=padding)

    def chip(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """The aligned 150x150 chip of one (H, W, 3) uint8 image and whether a face was detected."""
        return self.recognizer.chip(image)

    def embed(self, faces: torch.Tensor) -> Embeddings:
        """Descriptors (B, 128) of faces in [-1, 1]."""
        images = faces_to_uint8_images(faces)
        descriptors = np.empty((len(images), DESCRIPTOR_SIZE), dtype=np.float64)
        detected = np.zeros(len(images), dtype=bool)
        for index, image in enumerate(images):
            descriptors[index], detected[index] = self.recognizer.describe(image)
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
