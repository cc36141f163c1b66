"""Decision thresholds of a deployed model: the cosine above which two faces are called the same person.

A raw cosine means nothing to a caller; a decision "at FAR 1e-3" does: one impostor comparison in a
thousand is accepted. The thresholds are calibrated once per model on people the model never saw
(``partialface calibrate``, :mod:`partialface.server.calibration`) and shipped beside the weights as
``NAME.thresholds.json``; the server refuses to start with thresholds calibrated for other weights.

File format (``partialface.thresholds/1``):

===============  ===================================================================================
key              value
===============  ===================================================================================
``model``        the model id the thresholds belong to (``name@`` + 12 hex digits of the weights' sha256)
``thresholds``   ``{"1e-3": cosine, "1e-4": cosine, ...}``: accept when ``score >= threshold``
``default_far``  the operating point used when a request names none
``measured``     per FAR: the false-accept and true-accept rates the calibration set gives at it
``calibration``  what it was measured on (images, people, pairs, query protocol) and the command
===============  ===================================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PartialFaceError
from ..jsonfile import read_json, write_json

__all__ = ["THRESHOLDS_FORMAT", "Thresholds", "thresholds_path"]

THRESHOLDS_FORMAT = "partialface.thresholds/1"


def thresholds_path(weights: str | os.PathLike) -> Path:
    """Where a model's thresholds live: ``weights/default.pt`` -> ``weights/default.thresholds.json``."""
    return Path(weights).with_suffix(".thresholds.json")


@dataclass(frozen=True)
class Thresholds:
    model: str
    thresholds: dict[str, float]
    default_far: str
    measured: dict[str, dict] = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.thresholds:
            raise PartialFaceError(f"thresholds of {self.model}: no operating point")
        for far, value in self.thresholds.items():
            if not _is_far(far) or type(value) not in (int, float) or not -1.0 <= value <= 1.0:
                raise PartialFaceError(f"thresholds of {self.model}: bad entry {far!r}: {value!r}")
        if self.default_far not in self.thresholds:
            raise PartialFaceError(
                f"thresholds of {self.model}: default_far {self.default_far!r} is not one of {', '.join(self.thresholds)}"
            )

    def at(self, far: str | None = None) -> tuple[str, float]:
        """``(far, threshold)`` for a calibrated operating point (the default when ``far`` is None)."""
        far = self.default_far if far is None else far
        if far not in self.thresholds:
            raise PartialFaceError(f"far must be one of the calibrated points {', '.join(self.thresholds)}, got {far!r}")
        return far, float(self.thresholds[far])

    def with_default(self, far: str | None) -> "Thresholds":
        """The same thresholds operating at ``far`` by default (``serve --far``)."""
        if far is None:
            return self
        self.at(far)
        return Thresholds(self.model, self.thresholds, far, self.measured, self.calibration)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": THRESHOLDS_FORMAT,
            "model": self.model,
            "thresholds": dict(self.thresholds),
            "default_far": self.default_far,
            "measured": self.measured,
            "calibration": self.calibration,
        }

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, model: str | None = None) -> "Thresholds":
        """Read a thresholds file; with ``model``, refuse one calibrated for another model id."""
        path = Path(path)
        if not path.exists():
            raise PartialFaceError(
                f"{path}: no decision thresholds for this model (make them with: partialface calibrate MODEL "
                f"--images DIR --out {path})"
            )
        data = read_json(path, "thresholds")
        if not isinstance(data, dict) or data.get("format") != THRESHOLDS_FORMAT:
            raise PartialFaceError(f"{path}: not a {THRESHOLDS_FORMAT} file")
        missing = [k for k in ("model", "thresholds", "default_far") if k not in data]
        if missing:
            raise PartialFaceError(f"{path}: lacks {', '.join(missing)}")
        if model is not None and data["model"] != model:
            raise PartialFaceError(
                f"{path}: calibrated for model {data['model']}, not {model} (re-run partialface calibrate)"
            )
        if not isinstance(data["thresholds"], dict):
            raise PartialFaceError(f"{path}: thresholds must be an object {{far: cosine}}")
        return cls(data["model"], data["thresholds"], data["default_far"], data.get("measured", {}),
                   data.get("calibration", {}))


def _is_far(text: Any) -> bool:
    try:
        return isinstance(text, str) and 0.0 < float(text) < 1.0
    except ValueError:
        return False
