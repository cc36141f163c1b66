"""The client side: protect face photos with a channel plan and write what would be sent.

``protect_files`` is what ``partialface protect`` runs: for each photo it crops the face, draws one
random rank (seeded), computes only that rank's channels, and writes

* ``NAME.npz``: the protected tensor (see :mod:`partialface.protected`; no rank inside);
* ``NAME.png``: a preview sheet (see :mod:`partialface.preview`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tqdm import tqdm

from .data import DEFAULT_CROP, CropSpec, find_images, load_face
from .encoders import InputEncoder, PartialFaceEncoder
from .errors import PartialFaceError
from .plan import ChannelPlan
from .preview import preview_sheet, save_png
from .protected import save_protected, scale_fingerprint

__all__ = ["protect_files", "protect_faces"]


@torch.no_grad()
def protect_faces(
    faces: torch.Tensor, encoder: InputEncoder, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sent, channels, eavesdropper view) for faces (B,3,H,W) in [-1,1], one random rank each."""
    channels = encoder.channels_for_query(faces.shape[0], generator)
    sent = encoder.encode(faces, channels)
    return sent, channels, encoder.to_preview(sent, channels)


def protect_files(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    plan: ChannelPlan | None = None,
    seed: int = 0,
    crop: CropSpec | None = DEFAULT_CROP,
    encoder: InputEncoder | None = None,
    previews: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Protect every image at ``source`` (a file or a folder, recursively) into ``out_dir``.

    ``encoder`` (e.g. a trained model's, which carries its plan and input scale) takes precedence over
    ``plan``; with neither, the published ``ChannelPlan.tface()`` and raw coefficients are used.
    Returns the written ``.npz`` paths, mirroring the folder layout of ``source``.
    """
    root, files = find_images(source)
    encoder = encoder or PartialFaceEncoder(plan or ChannelPlan.tface())
    if encoder.plan is None:
        raise PartialFaceError(f"encoder {encoder.name!r} has no channel plan: nothing to protect with")
    plan_id, scale_id = encoder.plan.fingerprint, scale_fingerprint(getattr(encoder, "frequency_scale", None))
    generator = torch.Generator().manual_seed(int(seed))
    out_dir = Path(out_dir)
    written = []
    for path in tqdm(files, desc="protecting", unit="face", disable=not progress):
        face = load_face(path, crop)[None]
        sent, _, view = protect_faces(face, encoder, generator)
        target = (out_dir / path.relative_to(root)).with_suffix(".npz")
        save_protected(target, sent[0], plan_id, scale_id, crop.to_dict() if crop else None)
        if previews:
            title = f"{path.name}  plan {plan_id}  ({sent.shape[1]} channels sent)"
            save_png(preview_sheet(face[0], sent[0], view[0], title), target.with_suffix(".png"))
        written.append(target)
    return written

