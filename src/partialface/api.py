"""Trained models for inference: ``load_model(path_or_name)`` -> :class:`FaceModel`.

A :class:`FaceModel` bundles what a deployment needs: the backbone, the input encoder (with its channel
plan and per-frequency input scale), the crop its training faces had, how a raw photo becomes such a
face (``preparation``: the box of a photo, or five-point alignment; the client follows it), and the card.

    model = partialface.load_model("default")            # shipped PartialFace model (offline)
    templates = model.embed(faces)                        # RGB in [-1,1], protected on the way in
    faces = model.prepare_photo("raw.jpg")               # (1, 3, S, S): the photo prepared like the training faces
    sent = model.protect(faces)                           # the client step alone
    templates = model.embed_protected(sent)               # the server step alone
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .alignment.preparation import BoxPreparation, InputPreparation
from .checks import check_device, check_finite
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
    preparation: InputPreparation | None = None  # None: the crop box of a photo (models from before the record)

    def __post_init__(self) -> None:
        if self.preparation is None:
            self.preparation = BoxPreparation(self.crop if self.crop is not None else CropSpec(box=None))

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def load_image(self, path: str | os.PathLike) -> torch.Tensor:
        """A face photo, cropped like the training faces: (3,S,S) in [-1,1]."""
        return load_face(path, self.crop)

    def prepare_photo(self, path: str | os.PathLike) -> torch.Tensor:
        """A raw photo's largest face prepared as the training faces were (:attr:`preparation`): (1,3,S,S)
        in [-1,1]. A photo without a face is a PartialFaceError naming it."""
        return self.preparation.load_face(path)[None]

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
    """Load a checkpoint (training output or exported) or a shipped model by name, for inference.

    Anything wrong with the file -- not a checkpoint, an unknown backbone, a missing, mis-shaped or NaN
    weight, an encoder that does not fit the backbone -- and a device this machine lacks raise one
    :class:`PartialFaceError` line naming the file.
    """
    from .checkpoint import load_checkpoint, load_weights

    device = check_device("device", device)
    path = _resolve(path_or_name)
    source = f"checkpoint {os.fspath(path)!r}"
    ckpt = load_checkpoint(path)
    spec = ckpt["model"]
    try:
        encoder = encoder_from_state(ckpt["encoder"])
        takes = spec["kwargs"].get("in_channels", encoder.out_channels)
        if takes != encoder.out_channels:  # before building: a backbone may check its inputs its own way
            raise PartialFaceError(f"its backbone takes {takes} input channels but its encoder "
                                   f"{encoder.name!r} gives {encoder.out_channels}")
        backbone = get_model(spec["name"], **spec["kwargs"])
        crop = CropSpec.from_dict(ckpt["crop"]) if ckpt.get("crop") else None
        preparation = InputPreparation.from_dict(ckpt["preparation"]) if ckpt.get("preparation") else None
    except (TypeError, ValueError) as err:  # PartialFaceError included: say which file it is about
        raise PartialFaceError(f"{source}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    load_weights(backbone, spec["state_dict"], source)
    backbone.to(device).eval()
    return FaceModel(backbone, encoder, crop, ckpt.get("card", {}), str(path), preparation)
