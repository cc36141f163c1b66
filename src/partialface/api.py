"""Trained models for inference: ``load_model(path_or_name)`` -> :class:`FaceModel`.

A :class:`FaceModel` bundles what a deployment needs: the backbone, the input encoder (with its channel
plan and per-frequency input scale), the crop its training faces had, and the model card.

    model = partialface.load_model("default")            # shipped PartialFace model (offline)
    templates = model.embed(faces)                        # RGB in [-1,1], protected on the way in
    sent = model.protect(faces)                           # the client step alone
    templates = model.embed_protected(sent)               # the server step alone
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checks import check_finite
from .data import CropSpec, load_face
from .encoders import InputEncoder, encoder_from_state
from .errors import PartialFaceError
from .models import get_model

__all__ = ["FaceModel", "load_model", "shipped_models", "WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def shipped_models() -> dict[str, Path]:
    """Names of the models shipped inside the package and their files."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.pt"))}


@dataclass
class FaceModel:
    backbone: torch.nn.Module
    encoder: InputEncoder
    crop: CropSpec | None
    card: dict = field(default_factory=dict)
    source: str = ""

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def load_image(self, path: str | os.PathLike) -> torch.Tensor:
        """A face photo, cropped like the training faces: (3,S,S) in [-1,1]."""
        return load_face(path, self.crop)

    @torch.no_grad()
    def protect(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The client step: RGB faces (B,3,H,W) in [-1,1] -> what is sent (one random rank per face)."""
        return self.encoder.encode_query(self._check_faces(images).to(self.device), generator)

    @torch.no_grad()
    def embed_protected(self, sent: torch.Tensor) -> torch.Tensor:
        """The server step: sent tensors (B,C,H,W) -> L2-normalised templates (B,D).

        NaN or infinite inputs are refused: the backbone would turn them into a NaN template that
        matches nothing and, stored, poisons every later comparison.
        """
        expected = f"(B,{self.encoder.out_channels},H,W) protected inputs for encoder {self.encoder.name!r}"
        if not isinstance(sent, torch.Tensor):
            raise PartialFaceError(f"expected {expected} as a torch.Tensor, got {type(sent).__name__}")
        if sent.dim() != 4 or sent.shape[1] != self.encoder.out_channels:
            raise PartialFaceError(f"expected {expected}, got {tuple(sent.shape)}")
        check_finite("protected inputs", sent)
        self.backbone.eval()
        out = self.backbone(sent.to(self.device, torch.float32))
        return torch.nn.functional.normalize(out.float(), dim=1)

    @torch.no_grad()
    def embed(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """RGB faces (B,3,H,W) in [-1,1] -> L2-normalised templates (B,D), protected on the way in."""
        return self.embed_protected(self.protect(images, generator))

    def _check_faces(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` if it is a finite float (B,3,S,S) tensor, S the crop size of the training faces."""
        size = f"{self.crop.size},{self.crop.size}" if self.crop else "H,W"
        expected = f"faces as a float (B,3,{size}) torch.Tensor in [-1,1]"
        if not isinstance(images, torch.Tensor):
            hint = " (torch.from_numpy converts an array)" if type(images).__module__ == "numpy" else ""
            raise PartialFaceError(f"expected {expected}, got {type(images).__name__}{hint}")
        wrong_size = self.crop is not None and tuple(images.shape[2:]) != (self.crop.size, self.crop.size)
        if images.dim() != 4 or images.shape[1] != 3 or wrong_size:
            raise PartialFaceError(f"expected {expected}, got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise PartialFaceError(
                f"expected {expected}, got {images.dtype} (partialface.data.pixels_to_faces converts uint8 pixels)"
            )
        return check_finite("faces", images)

    def embed_fn(self):
        """``(images, generator) -> templates``: the callable the verification pipeline takes."""
        return lambda images, generator: self.embed(images, generator)


def _resolve(path_or_name: str | os.PathLike) -> Path:
    shipped = shipped_models()
    if str(path_or_name) in shipped:
        return shipped[str(path_or_name)]
    path = Path(path_or_name)
    if path.is_file():
        return path
    names = ", ".join(shipped) or "none shipped in this build"
    raise PartialFaceError(f"{path_or_name}: no such model file, and not a shipped model name (shipped: {names})")


def load_model(path_or_name: str | os.PathLike, device: str | torch.device = "cpu") -> FaceModel:
    """Load a checkpoint (training output or exported) or a shipped model by name, for inference."""
    from .checkpoint import load_checkpoint

    path = _resolve(path_or_name)
    ckpt = load_checkpoint(path)
    spec = ckpt["model"]
    backbone = get_model(spec["name"], **spec.get("kwargs", {}))
    state = {k: v.float() if v.is_floating_point() else v for k, v in spec["state_dict"].items()}
    backbone.load_state_dict(state)
    backbone.to(device).eval()
    crop = CropSpec.from_dict(ckpt["crop"]) if ckpt.get("crop") else None
    return FaceModel(backbone, encoder_from_state(ckpt["encoder"]), crop, ckpt.get("card", {}), str(path))
