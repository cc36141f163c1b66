"""A model as the service deploys it: the backbone, its id, and the client record it publishes.

The model id is ``NAME@HASH``: the shipped name (or the file's stem) and the first 12 hex digits of the
weights file's sha256. Payloads name the id they were protected for and galleries record the id their
templates came from, so a template of other weights is never compared with these (a retrained model
with the same name gets a new id).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..api import FaceModel, load_model, shipped_models
from ..client.record import RECORD_FORMAT, ClientRecord
from ..protected import scale_fingerprint

__all__ = ["DeployedModel", "weights_id"]

_DEFAULT_SIZE = 112


def weights_id(path: str | os.PathLike, name: str) -> str:
    """``name@`` + the first 12 hex digits of the sha256 of the weights file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"{name}@{digest.hexdigest()[:12]}"


@dataclass
class DeployedModel:
    name: str
    id: str
    path: Path
    model: FaceModel
    dim: int

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, device: str = "cpu") -> "DeployedModel":
        """Load a shipped model by name or a checkpoint file and measure its template size."""
        model = load_model(name_or_path, device=device)
        path = Path(model.source)
        name = str(name_or_path) if str(name_or_path) in shipped_models() else path.stem
        side = model.crop.size if model.crop is not None else _DEFAULT_SIZE
        probe = torch.zeros(1, model.encoder.out_channels, side, side)
        dim = int(model.embed_protected(probe).shape[1])
        return cls(name, weights_id(path, name), path, model, dim)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        side = self.model.crop.size if self.model.crop is not None else _DEFAULT_SIZE
        return (self.model.encoder.out_channels, side, side)

    @property
    def plan_fingerprint(self) -> str:
        return self.model.encoder.plan.fingerprint if self.model.encoder.plan is not None else "none"

    @property
    def scale_fingerprint(self) -> str:
        return scale_fingerprint(getattr(self.model.encoder, "frequency_scale", None))

    @property
    def preparation(self) -> dict:
        """How clients must prepare query faces: the model's record (``InputPreparation.to_dict()``; the
        crop box for models from before the record)."""
        return self.model.preparation.to_dict()

    def client_record(self) -> dict:
        """The client record (:mod:`partialface.client.record`): plan, scale, channels, preparation."""
        state = self.model.encoder.state_dict()
        record = {
            "format": RECORD_FORMAT,
            "model": self.id,
            "encoder": state["name"],
            "plan": state.get("plan"),
            "channels": state.get("channels"),
            "frequency_scale": state.get("frequency_scale"),
            "shape": list(self.input_shape),
            "preparation": self.preparation,
        }
        ClientRecord.from_dict(record, source=f"model {self.id}")  # a record clients cannot use is a bug here
        return record

    @torch.no_grad()
    def embed(self, channels) -> "torch.Tensor":
        """Protected faces (N,C,H,W) -> L2-normalised templates (N, dim), float32."""
        return self.model.embed_protected(torch.as_tensor(channels))
