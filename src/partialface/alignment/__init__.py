"""Client-side face alignment: find every face in a raw photo and warp it onto the ArcFace template.

The recognition service never sees a face: the client detects, aligns and protects. This package is
the first two steps. It sits at the bottom of the project's layers (it imports only ``errors``,
``checks``, ``atomic`` and ``data``), so a client can use it without the model or training code.

- :mod:`.images`: any photo (16-bit, palette, CMYK, alpha, EXIF-rotated) as 8-bit upright RGB.
- :mod:`.detectors`: dlib HOG, dlib CNN and their cascade (weights from PyPI, nothing downloaded).
- :mod:`.landmarks`: dlib's 68-point (the ArcFace points exactly) and 5-point predictors.
- :mod:`.template`: the ArcFace template, output frames and the least-squares similarity warp.
- :mod:`.aligner`: :class:`FaceAligner`, the whole pipeline for one photo.
- :mod:`.preparation`: :class:`InputPreparation`, how a model's inputs were prepared (a model stores it).
- :mod:`.dataset` and :mod:`.cli`: ``partialface align SRC OUT`` over an identity-folder dataset.
"""

from .aligner import DEFAULT_DETECTOR, DEFAULT_LANDMARKS, AlignedFace, DetectedFace, FaceAligner
from .detectors import DETECTORS, FaceBox, FaceDetector, make_detector
from .images import open_rgb8, to_rgb8
from .landmarks import LANDMARKS, LandmarkModel, make_landmarks
from .preparation import BoxPreparation, FivePointPreparation, InputPreparation, preparation_of_dataset
from .template import ARCFACE_TEMPLATE, TEMPLATE_SIZE, FaceFrame, estimate_similarity, warp_face

__all__ = [
    "ARCFACE_TEMPLATE",
    "DEFAULT_DETECTOR",
    "DEFAULT_LANDMARKS",
    "DETECTORS",
    "LANDMARKS",
    "TEMPLATE_SIZE",
    "AlignedFace",
    "BoxPreparation",
    "FivePointPreparation",
    "InputPreparation",
    "preparation_of_dataset",
    "DetectedFace",
    "FaceAligner",
    "FaceBox",
    "FaceDetector",
    "FaceFrame",
    "LandmarkModel",
    "estimate_similarity",
    "make_detector",
    "make_landmarks",
    "open_rgb8",
    "to_rgb8",
    "warp_face",
]
