"""How a model's input faces were prepared, recorded so that a client prepares its queries the same way.

A recognizer only works on faces framed like its training faces. Two preparations exist:

- ``box`` (:class:`BoxPreparation`): a fixed crop box of a roughly aligned photo, resized (the project's
  LFW default: the central 112x112 of a 250x250 deep-funneled photo).
- ``five-point`` (:class:`FivePointPreparation`): detect the face, place five landmarks and warp them onto
  the ArcFace template (:mod:`.aligner`), optionally into a context frame and then cropped.

A checkpoint stores ``preparation.to_dict()``; a client rebuilds it with :meth:`InputPreparation.from_dict`
and calls :meth:`~InputPreparation.prepare_file` on a raw photo to get exactly the model's input image.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from ..checks import check_choice
from ..data import DEFAULT_CROP, CropSpec, image_to_tensor
from ..errors import PartialFaceError
from ..jsonfile import read_json
from .aligner import DEFAULT_DETECTOR, DEFAULT_LANDMARKS, FaceAligner
from .dataset import REPORT_NAME
from .detectors import DETECTORS
from .images import open_rgb8, to_rgb8
from .landmarks import LANDMARKS
from .template import ARCFACE_TEMPLATE, TEMPLATE_SIZE, FaceFrame

__all__ = ["InputPreparation", "BoxPreparation", "FivePointPreparation", "preparation_of_dataset"]


def _crop_from_dict(data: Any, where: str) -> CropSpec:
    if not isinstance(data, Mapping):
        raise PartialFaceError(f"input preparation {where} must be a mapping with 'box' and 'size', got {data!r}")
    try:
        return CropSpec.from_dict(data)
    except ValueError as error:
        raise PartialFaceError(f"input preparation {where}: {error}") from None


def _check_keys(data: Mapping[str, Any], allowed: set[str], kind: str) -> None:
    unknown = set(data) - allowed - {"kind"}
    if unknown:
        raise PartialFaceError(f"unknown keys {sorted(unknown)} in a {kind!r} input preparation; expected {sorted(allowed)}")


class InputPreparation(ABC):
    """How a raw photo becomes a model's input image (``size`` x ``size`` RGB)."""

    kind: ClassVar[str]
    _kinds: ClassVar[dict[str, type[InputPreparation]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        InputPreparation._kinds[cls.kind] = cls

    @property
    @abstractmethod
    def size(self) -> int:
        """Side length of the prepared image."""

    @abstractmethod
    def prepare_all(self, image: Image.Image, source: str | None = None) -> list[Image.Image]:
        """Every face of ``image`` (any mode) as a model input, largest first; empty when none is found.

        A client identifies every face of a group photo; a data set keeps one face per photo
        (:meth:`prepare`).
        """

    def prepare(self, image: Image.Image, source: str | None = None) -> Image.Image:
        """The model input made from ``image``'s largest face; ``source`` (if given) names it in errors."""
        faces = self.prepare_all(image, source)
        if not faces:
            raise PartialFaceError(f"no face found in {source or 'the image'}")
        return faces[0]

    def prepare_file(self, path: str | os.PathLike[str]) -> Image.Image:
        """The model input made from the photo at ``path``; PartialFaceError names the file on failure."""
        return self.prepare(open_rgb8(path), source=repr(os.fspath(path)))

    def load_face(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """:meth:`prepare_file` as a model takes it: float32 (3, S, S) in [-1, 1]."""
        return image_to_tensor(self.prepare_file(path))

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-friendly record, ``{"kind": ..., ...}``."""

    @classmethod
    @abstractmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> InputPreparation: ...

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> InputPreparation:
        """The preparation recorded by :meth:`to_dict`; PartialFaceError for an unknown kind or key."""
        if not isinstance(data, Mapping):
            raise PartialFaceError(f"an input preparation must be a mapping, got {type(data).__name__}")
        kind = data.get("kind")
        cls = InputPreparation._kinds.get(kind)  # type: ignore[arg-type]
        if cls is None:
            raise PartialFaceError(
                f"input preparation kind must be one of {', '.join(InputPreparation._kinds)}, got {kind!r}"
            )
        return cls._from_fields(data)


@dataclass(frozen=True)
class BoxPreparation(InputPreparation):
    """A fixed crop box of the (upright, 8-bit RGB) photo, resized to ``crop.size``."""

    kind: ClassVar[str] = "box"
    crop: CropSpec = DEFAULT_CROP

    @property
    def size(self) -> int:
        return self.crop.size

    def prepare_all(self, image: Image.Image, source: str | None = None) -> list[Image.Image]:
        """The box of the photo: one face, whatever the photo holds (the box finds nothing)."""
        try:
            return [self.crop.apply(to_rgb8(image))]
        except ValueError as error:  # a caller without a name for the image adds its own
            raise PartialFaceError(f"cannot crop {source}: {error}" if source else str(error)) from None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.crop.to_dict()}

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> BoxPreparation:
        _check_keys(data, {"box", "size"}, cls.kind)
        return cls(_crop_from_dict({k: v for k, v in data.items() if k != "kind"}, "box"))


@dataclass(frozen=True)
class FivePointPreparation(InputPreparation):
    """The largest face, warped onto the ArcFace template inside ``frame``, then cut by ``crop`` if given.

    ``FivePointPreparation()`` gives the 112x112 aligned chip. A model trained on a dataset made by
    ``partialface align --frame 250`` and cropped with the default box records
    ``FivePointPreparation(frame=FaceFrame(250), crop=DEFAULT_CROP)``, which yields the same pixels.
    """

    kind: ClassVar[str] = "five-point"
    detector: str = DEFAULT_DETECTOR
    landmarks: str = DEFAULT_LANDMARKS
    frame: FaceFrame = field(default_factory=FaceFrame)
    crop: CropSpec | None = None

    def __post_init__(self) -> None:
        check_choice("input preparation detector", self.detector, tuple(DETECTORS))
        check_choice("input preparation landmarks", self.landmarks, tuple(LANDMARKS))
        box = self.crop.box if self.crop is not None else None
        if box is not None and (box[2] > self.frame.size or box[3] > self.frame.size):
            raise PartialFaceError(f"input preparation crop box {box} does not fit in a {self.frame.size} frame")

    @property
    def size(self) -> int:
        return self.frame.size if self.crop is None else self.crop.size

    @cached_property
    def aligner(self) -> FaceAligner:
        """The aligner (its dlib models load on first use, then stay)."""
        return FaceAligner(self.detector, self.landmarks, self.frame)

    def prepare_all(self, image: Image.Image, source: str | None = None) -> list[Image.Image]:
        aligned = [face.to_image() for face in self.aligner.align(image)]  # largest first
        return aligned if self.crop is None else [self.crop.apply(face) for face in aligned]

    @classmethod
    def of_aligned_dataset(cls, settings: Mapping[str, Any], crop: CropSpec | None) -> FivePointPreparation:
        """The preparation of faces made by ``partialface align`` with ``settings`` (its report's), then
        cut by ``crop`` (the training config's box): what a client must do to a raw photo to get them."""
        try:
            return cls(detector=settings.get("detector", DEFAULT_DETECTOR),
                       landmarks=settings.get("landmarks", DEFAULT_LANDMARKS),
                       frame=FaceFrame(settings.get("frame", TEMPLATE_SIZE)), crop=crop)
        except (TypeError, ValueError) as error:
            raise PartialFaceError(f"aligned data set settings {dict(settings)!r}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "template": ARCFACE_TEMPLATE.tolist(),
            "template_size": TEMPLATE_SIZE,
            "frame": self.frame.to_dict(),
            "crop": None if self.crop is None else self.crop.to_dict(),
            "detector": self.detector,
            "landmarks": self.landmarks,
        }

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> FivePointPreparation:
        _check_keys(data, {"template", "template_size", "frame", "crop", "detector", "landmarks"}, cls.kind)
        template = data.get("template", ARCFACE_TEMPLATE.tolist())
        try:
            same = np.allclose(np.asarray(template, dtype=np.float64), ARCFACE_TEMPLATE, atol=1e-3)
        except (TypeError, ValueError):
            same = False
        if not same or data.get("template_size", TEMPLATE_SIZE) != TEMPLATE_SIZE:
            raise PartialFaceError(
                "input preparation template is not the ArcFace 112x112 five-point template, the only one supported"
            )
        frame = data.get("frame") or {}
        if not isinstance(frame, Mapping) or set(frame) - {"size", "offset", "scale"}:
            raise PartialFaceError(f"input preparation frame must be a mapping with 'size', 'offset' and 'scale', got {frame!r}")
        crop = data.get("crop")
        return cls(
            detector=data.get("detector", DEFAULT_DETECTOR),
            landmarks=data.get("landmarks", DEFAULT_LANDMARKS),
            frame=FaceFrame(frame.get("size", TEMPLATE_SIZE), frame.get("offset"), frame.get("scale", 1.0)),
            crop=None if crop is None else _crop_from_dict(crop, "crop"),
        )


def preparation_of_dataset(root: str | os.PathLike[str], crop: CropSpec | None) -> InputPreparation:
    """How the training faces under ``root``, cut by ``crop``, were prepared from raw photos.

    A folder written by ``partialface align`` says so in its report (:data:`.dataset.REPORT_NAME`): its
    faces are five-point aligned, and a client must align its photos the same way. Any other folder
    holds photos that are only cut by the box (the LFW-style default).
    """
    report = os.path.join(os.fspath(root), REPORT_NAME)
    if not os.path.isfile(report):
        return BoxPreparation(crop if crop is not None else CropSpec(box=None))
    settings = read_json(report, "the report of partialface align").get("settings")
    if not isinstance(settings, Mapping):
        raise PartialFaceError(f"{report}: an align report without its settings")
    return FivePointPreparation.of_aligned_dataset(settings, crop)
