"""The protected-face file: what a PartialFace client stores or sends for one face.

Format (``.npz``, NumPy's zip of arrays, readable from any language with a NumPy/zip reader):

=================  ==========================================================================
key                value
=================  ==========================================================================
``format``         the string ``partialface.protected/1``
``channels``       float32 array (C, H, W): the sent channels (C = 3s, 27 for the published plan),
                   divided by the deployment's per-frequency scale when one is used
``plan``           the 16-hex-digit fingerprint of the channel plan the channels were drawn from
``scale``          fingerprint of the per-frequency scale applied (``none`` for raw coefficients)
``crop``           JSON of how the face was cut from the source photo: the crop box, or with a model
                   that records one, its input preparation (``{"kind": "five-point", ...}``)
=================  ==========================================================================

The rank (which subset and permutation were sent) is deliberately *not* stored: the server never
learns it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .checks import check_finite
from .errors import PartialFaceError

__all__ = ["ProtectedFace", "save_protected", "load_protected", "scale_fingerprint", "FORMAT"]

FORMAT = "partialface.protected/1"


def scale_fingerprint(scale: torch.Tensor | None) -> str:
    """Identifier of a per-frequency scale; ``none`` for unit scale (raw coefficients)."""
    if scale is None or bool((torch.as_tensor(scale) == 1).all()):
        return "none"
    data = torch.as_tensor(scale, dtype=torch.float32).numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class ProtectedFace:
    channels: torch.Tensor  # (C,H,W) float32
    plan: str
    scale: str
    crop: dict


def save_protected(path: str | os.PathLike, channels: torch.Tensor, plan: str, scale: str = "none", crop: dict | None = None) -> Path:
    """Write one protected face atomically."""
    if not isinstance(channels, torch.Tensor) or channels.dim() != 3:
        shape = tuple(channels.shape) if isinstance(channels, torch.Tensor) else type(channels).__name__
        raise PartialFaceError(f"a protected face must be a (C,H,W) torch.Tensor, got {shape}")
    check_finite("protected face channels", channels)  # load_protected refuses them: never write such a file
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        format=np.array(FORMAT),
        channels=channels.detach().float().cpu().numpy(),
        plan=np.array(plan),
        scale=np.array(scale),
        crop=np.array(json.dumps(crop or {})),
    )
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
    return path


def load_protected(path: str | os.PathLike) -> ProtectedFace:
    """Read a file written by :func:`save_protected`, with clear errors for anything else."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise PartialFaceError(f"{path}: not a protected-face file: {err}") from err
    if str(fields.get("format", "")) != FORMAT:
        raise PartialFaceError(f"{path}: format is {str(fields.get('format', 'missing'))!r}, expected {FORMAT!r}")
    missing = [k for k in ("channels", "plan", "scale", "crop") if k not in fields]
    if missing:
        raise PartialFaceError(f"{path}: lacks {', '.join(missing)}")
    channels = torch.from_numpy(np.array(fields["channels"], dtype=np.float32))
    if channels.dim() != 3 or not bool(torch.isfinite(channels).all()):
        raise PartialFaceError(f"{path}: channels must be a finite (C,H,W) array, got shape {tuple(channels.shape)}")
    return ProtectedFace(channels, str(fields["plan"]), str(fields["scale"]), json.loads(str(fields["crop"])))
