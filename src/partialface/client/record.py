"""The client-side record of a model: everything a client needs to protect faces for it, nothing more.

A deployed model is a backbone (server only) plus the input transform the client runs: the channel plan,
the per-frequency input scale, and how faces are prepared (today the box crop the shipped models were
trained on). The server publishes that transform as a *client record* (``GET /v1/model/client-record``,
see ``partialface.server``), or an operator hands clients the same JSON as a file; this module turns it
into :meth:`ClientRecord.protect`, so the client package never imports the backbones or the encoders.

The record (``partialface.client-record/1``):

====================  ==============================================================================
key                   value
====================  ==============================================================================
``model``             the model id the payload must name (``name@hash-of-weights``)
``encoder``           the input rule: ``partialface`` (one random rank of the plan per face),
                      ``fixed``/``pruned``/``frequency`` (the same channels for every face), ``rgb``
``plan``              the channel plan's JSON (:meth:`ChannelPlan.to_dict`), or null
``channels``          the fixed channel indices of ``fixed``/``pruned``/``frequency``, else null
``frequency_scale``   192 positive numbers each sent channel is divided by, or null (raw coefficients)
``shape``             ``[C, H, W]`` of one protected face
``preparation``       ``InputPreparation.to_dict()``: ``{"kind": "box" | "five-point", ...}`` (see ``prepare.py``)
====================  ==============================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import check_choice
from ..errors import PartialFaceError
from ..frequency import NUM_CHANNELS, to_frequency
from ..jsonfile import read_json, write_json
from ..plan import ChannelPlan
from ..protected import scale_fingerprint

__all__ = ["RECORD_FORMAT", "ClientRecord"]

RECORD_FORMAT = "partialface.client-record/1"
_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}
_KEYS = ("format", "model", "encoder", "plan", "channels", "frequency_scale", "shape", "preparation")

# How each encoder picks the channels of a batch: (record, faces, generator) -> (sent, channel indices).
# The indices (B, J) or (J,) say which of the 192 frequencies each sent plane is, to look up its scale;
# None means the faces themselves are sent (the unprotected RGB baseline).
Rule = Callable[["ClientRecord", torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor | None]]


def _random_rank(record: "ClientRecord", faces: torch.Tensor, generator: torch.Generator):
    subset, permutation = record.plan.sample_query_ranks(faces.shape[0], generator)
    return record.plan.protect(faces, subset, permutation), record.plan.channels(subset, permutation)


def _fixed_channels(record: "ClientRecord", faces: torch.Tensor, generator: torch.Generator):
    return to_frequency(faces, record.channels), record.channels


def _pixels(record: "ClientRecord", faces: torch.Tensor, generator: torch.Generator):
    return faces, None


_RULES: dict[str, Rule] = {
    "partialface": _random_rank,
    "fixed": _fixed_channels,
    "pruned": _fixed_channels,
    "frequency": _fixed_channels,
    "rgb": _pixels,
}


@dataclass(frozen=True)
class ClientRecord:
    """A validated client record; :meth:`protect` is the whole client-side transform."""

    model: str
    encoder: str
    plan: ChannelPlan | None
    channels: torch.Tensor | None
    frequency_scale: torch.Tensor | None
    shape: tuple[int, int, int]
    preparation: dict

    @property
    def plan_fingerprint(self) -> str:
        return self.plan.fingerprint if self.plan is not None else "none"

    @property
    def scale_fingerprint(self) -> str:
        return scale_fingerprint(self.frequency_scale)

    @torch.no_grad()
    def protect(self, faces: torch.Tensor, generator: torch.Generator, dtype: str = "float32") -> np.ndarray:
        """Faces (B,3,H,W) in [-1,1] -> what is sent (B,C,H,W) as ``dtype`` (the wire's float32 or float16,
        cast here with torch: numpy's float16 cast is ~100x slower); one random rank per face."""
        if faces.dim() != 4 or tuple(faces.shape[2:]) != self.shape[1:]:
            raise PartialFaceError(
                f"model {self.model} takes faces (B,3,{self.shape[1]},{self.shape[2]}), got {tuple(faces.shape)}"
            )
        check_choice("dtype", dtype, tuple(_TORCH_DTYPES))
        sent, channels = _RULES[self.encoder](self, faces, generator)
        if channels is not None and self.frequency_scale is not None:
            sent = sent / self.frequency_scale[channels][..., None, None]
        return sent.to(_TORCH_DTYPES[dtype]).numpy()

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "model": self.model,
            "encoder": self.encoder,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "channels": self.channels.tolist() if self.channels is not None else None,
            "frequency_scale": self.frequency_scale.tolist() if self.frequency_scale is not None else None,
            "shape": list(self.shape),
            "preparation": dict(self.preparation),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "client record") -> "ClientRecord":
        """Validate a record (from the server's JSON or a file); every mistake names ``source``."""
        if not isinstance(data, Mapping):
            raise PartialFaceError(f"{source}: a client record must be a JSON object, got {type(data).__name__}")
        if data.get("format") != RECORD_FORMAT:
            raise PartialFaceError(f"{source}: format is {data.get('format')!r}, expected {RECORD_FORMAT!r}")
        missing = [k for k in _KEYS if k not in data]
        if missing:
            raise PartialFaceError(f"{source}: lacks {', '.join(missing)}")
        encoder = data["encoder"]
        if encoder not in _RULES:
            raise PartialFaceError(f"{source}: encoder {encoder!r} is not one a client can run ({', '.join(_RULES)})")
        try:
            plan = ChannelPlan.from_dict(data["plan"], source=f"{source} plan") if data["plan"] is not None else None
        except ValueError as err:
            raise PartialFaceError(str(err)) from None
        if encoder == "partialface" and plan is None:
            raise PartialFaceError(f"{source}: encoder 'partialface' needs a plan")
        channels = _index_list(data["channels"], f"{source} channels")
        if _RULES[encoder] is _fixed_channels and channels is None:
            raise PartialFaceError(f"{source}: encoder {encoder!r} needs its channels")
        scale = _scale(data["frequency_scale"], source)
        shape = data["shape"]
        if not (isinstance(shape, list) and len(shape) == 3 and all(type(v) is int and v > 0 for v in shape)):
            raise PartialFaceError(f"{source}: shape must be [C, H, W] of positive integers, got {shape!r}")
        preparation = data["preparation"]
        if not isinstance(preparation, Mapping) or not isinstance(preparation.get("kind"), str):
            raise PartialFaceError(f"{source}: preparation must be an object with a 'kind', got {preparation!r}")
        if not isinstance(data["model"], str) or not data["model"]:
            raise PartialFaceError(f"{source}: model must be a non-empty string, got {data['model']!r}")
        return cls(data["model"], encoder, plan, channels, scale, tuple(shape), dict(preparation))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ClientRecord":
        """Read a record an operator distributed as a file (``partialface client ... record --out``)."""
        return cls.from_dict(read_json(path, "client record"), source=os.fspath(path))

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_dict())

def _index_list(values: Any, source: str) -> torch.Tensor | None:
    if values is None:
        return None
    if not (isinstance(values, list) and values and all(type(v) is int and 0 <= v < NUM_CHANNELS for v in values)):
        raise PartialFaceError(f"{source}: must be a non-empty list of channel indices in 0..{NUM_CHANNELS - 1}")
    return torch.tensor(values, dtype=torch.long)


def _scale(values: Any, source: str) -> torch.Tensor | None:
    if values is None:
        return None
    if not (isinstance(values, list) and len(values) == NUM_CHANNELS and all(type(v) in (int, float) for v in values)):
        raise PartialFaceError(f"{source}: frequency_scale must be a list of {NUM_CHANNELS} numbers")
    scale = torch.tensor(values, dtype=torch.float32)
    if not bool(torch.isfinite(scale).all()) or not bool((scale > 0).all()):
        raise PartialFaceError(f"{source}: frequency_scale must hold finite positive numbers")
    return scale
