"""Find every face in a photo and warp each one onto the ArcFace template.

    aligner = FaceAligner()                      # hog+cnn detector, dlib68 landmarks, 112x112 chips
    faces = aligner.align_file("group.jpg")      # largest face first; PartialFaceError if none
    faces[0].to_image().save("face.png")

The client runs this before protecting a face, and ``partialface align`` runs it over a training set,
so that queries and training faces are prepared the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..data import image_to_tensor
from ..errors import PartialFaceError
from .detectors import FaceBox, FaceDetector, make_detector
from .images import open_rgb8, to_rgb8
from .landmarks import LandmarkModel, make_landmarks
from .template import ARCFACE_TEMPLATE, TEMPLATE_SIZE, FaceFrame, apply_transform, estimate_similarity, warp_face

__all__ = ["DetectedFace", "AlignedFace", "FaceAligner", "DEFAULT_DETECTOR", "DEFAULT_LANDMARKS"]

DEFAULT_DETECTOR = "hog+cnn"
DEFAULT_LANDMARKS = "dlib68"
# Photos larger than this (longer side, pixels) are shrunk for detection only: dlib's detectors take
# time in proportion to the pixel count, and a face small enough to vanish at this size is too small
# to recognise. Landmarks and the warp still use the full-resolution photo.
DEFAULT_DETECT_MAX_SIDE = 1280


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face in a photo.

    Attributes:
        box: the detector's box, ``(left, top, right, bottom)``, right/bottom exclusive.
        score: the detector's confidence.
        landmarks: (5, 2) the ArcFace points (left eye, right eye, nose tip, left and right mouth
            corner, as seen in the image) in photo pixels. With ``dlib5`` landmarks, which have no mouth,
            they are where the fitted transform puts the template's points.
        transform: 3x3 similarity taking photo pixels to 112x112 template pixels.
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray
    transform: np.ndarray

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return (right - left) * (bottom - top)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face warped into ``frame``: ``pixels`` is (size, size, 3) uint8 RGB, the face at ``frame.face_box``."""

    pixels: np.ndarray
    face: DetectedFace
    frame: FaceFrame = field(default_factory=FaceFrame)

    def to_image(self) -> Image.Image:
        return Image.fromarray(self.pixels, mode="RGB")

    def chip(self) -> np.ndarray:
        """The aligned 112x112 face alone, (112, 112, 3) uint8."""
        left, top, right, bottom = self.frame.face_box
        return self.pixels[top:bottom, left:right]

    def to_tensor(self) -> torch.Tensor:
        """The whole frame as a float32 (3, size, size) tensor in [-1, 1], as the models take it."""
        return image_to_tensor(self.to_image())


class FaceAligner:
    """Detects faces, places landmarks and warps each face onto the ArcFace template.

    Args:
        detector: a name from :data:`~.detectors.DETECTORS` or a :class:`~.detectors.FaceDetector`.
        landmarks: a name from :data:`~.landmarks.LANDMARKS` or a :class:`~.landmarks.LandmarkModel`.
        frame: output side length (the 112x112 face centred in it) or a :class:`FaceFrame`.
        detect_max_side: photos with a longer side are shrunk to it for detection only.
    """

    def __init__(
        self,
        detector: str | FaceDetector = DEFAULT_DETECTOR,
        landmarks: str | LandmarkModel = DEFAULT_LANDMARKS,
        frame: int | FaceFrame = TEMPLATE_SIZE,
        detect_max_side: int = DEFAULT_DETECT_MAX_SIDE,
    ) -> None:
        self.detector = make_detector(detector) if isinstance(detector, str) else detector
        self.landmarks = make_landmarks(landmarks) if isinstance(landmarks, str) else landmarks
        self.frame = frame if isinstance(frame, FaceFrame) else FaceFrame(frame)
        self.detect_max_side = int(detect_max_side)

    def _boxes(self, pixels: np.ndarray) -> list[FaceBox]:
        height, width = pixels.shape[:2]
        longer = max(height, width)
        if longer <= self.detect_max_side:
            return self.detector.detect(pixels)
        factor = longer / self.detect_max_side
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        small = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        return [box.scaled(factor) for box in self.detector.detect(small)]

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        """Every face in ``image`` (any Pillow mode; see :func:`~.images.to_rgb8`), largest box first."""
        return self._detect_rgb(np.asarray(to_rgb8(image)))

    def _detect_rgb(self, pixels: np.ndarray) -> list[DetectedFace]:
        faces = []
        measured_arcface_points = np.array_equal(self.landmarks.template, ARCFACE_TEMPLATE)
        for box in sorted(self._boxes(pixels), key=lambda b: b.area, reverse=True):
            points = self.landmarks.locate(pixels, box)
            transform = estimate_similarity(points, self.landmarks.template)
            if not measured_arcface_points:  # where the fit puts the template's eyes, nose and mouth
                points = apply_transform(np.linalg.inv(transform), ARCFACE_TEMPLATE)
            faces.append(DetectedFace(box.box, box.score, points, transform))
        return faces

    def warp(self, image: Image.Image, face: DetectedFace) -> AlignedFace:
        """``face`` (found in ``image``) warped into this aligner's frame."""
        return AlignedFace(warp_face(to_rgb8(image), face.transform, self.frame), face, self.frame)

    def align(self, image: Image.Image) -> list[AlignedFace]:
        """Every face in ``image`` aligned, largest first (an empty list when there is none)."""
        rgb = to_rgb8(image)
        faces = self._detect_rgb(np.asarray(rgb))
        return [AlignedFace(warp_face(rgb, face.transform, self.frame), face, self.frame) for face in faces]

    def align_file(self, path: str | os.PathLike[str]) -> list[AlignedFace]:
        """Every face in the image file at ``path``, largest first.

        Raises PartialFaceError naming the file when it cannot be read or holds no face.
        """
        faces = self.align(open_rgb8(path))
        if not faces:
            raise PartialFaceError(f"no face found in {os.fspath(path)!r} (detector {self.detector.name})")
        return faces
