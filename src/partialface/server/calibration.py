"""Calibrating decision thresholds: the cosine at which a chosen share of impostor pairs is accepted.

``partialface calibrate MODEL --images DIR --out MODEL.thresholds.json`` embeds every photo of an
identity-folder dataset exactly as the service would (the client record's preparation, one random rank
per photo from a seeded generator, a wire round trip in the service's dtype, the server's
``embed_protected``), scores *every* pair of photos, and sets each threshold so that the false-accept
rate over the impostor pairs is at most the requested FAR.

The people must be ones the model never saw (a model scores its training identities far apart, so
thresholds set on them would be too low for everyone else), photographed and prepared like the
service's queries (a model trained on one photo layout scores another layout differently). The shipped
models were trained on every LFW person with at least two photos, so they are calibrated on the LFW
people with a single photo, which training never saw, leaving out those of pairs folds 1-6 (the
service benchmark's never-enrolled people): 1,946 photos, 1.89 million impostor pairs, about 190 false
accepts at FAR 1e-4. With one photo per person there is no genuine pair, so no TAR is measured there
(``docs/service.md`` reports the identification rates). The same procedure on the CelebA subset
(ArcFace-aligned, another layout) is in ``docs/service.md`` as a cross-check.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from tqdm import tqdm

from ..client.prepare import prepare_photo, preparer_for
from ..client.record import ClientRecord
from ..data import scan_identity_folders
from ..data.pixels import pixels_to_faces
from ..errors import PartialFaceError
from ..evaluation.metrics import far_label
from ..wire import WireLimits, decode_payload, encode_payload
from .deployment import DeployedModel
from .thresholds import Thresholds

__all__ = ["embed_like_the_service", "pair_scores", "thresholds_at", "calibrate"]

_BLOCK = 512


@torch.no_grad()
def embed_like_the_service(
    deployed: DeployedModel, paths: list, seed: int = 0, dtype: str = "float16", batch: int = 64, progress: bool = True
) -> np.ndarray:
    """Unit templates (N, dim) of photos, each through the client step, the wire and the server step."""
    record = ClientRecord.from_dict(deployed.client_record())
    prepare = preparer_for(record.preparation)
    generator = torch.Generator().manual_seed(int(seed))
    limits = WireLimits(max_faces=batch, max_bytes=1 << 34)
    out = []
    for start in tqdm(range(0, len(paths), batch), desc="embedding", unit="batch", disable=not progress):
        faces = np.stack([prepare_photo(prepare, p)[0] for p in paths[start : start + batch]])
        sent = record.protect(pixels_to_faces(torch.from_numpy(faces)), generator, dtype)
        wire = encode_payload(sent, model=record.model, plan=record.plan_fingerprint,
                              scale=record.scale_fingerprint, dtype=dtype)
        out.append(deployed.embed(decode_payload(wire, limits).channels).numpy())
    return np.concatenate(out).astype(np.float32)


def pair_scores(templates: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of every pair ``i < j``: ``(genuine, impostor)`` (float32), computed a block of rows at a time."""
    genuine, impostor = [], []
    for start in range(0, len(templates), _BLOCK):
        rows = slice(start, start + _BLOCK)
        scores = templates[rows] @ templates[start:].T  # columns start.. (j >= start)
        upper = np.arange(scores.shape[1])[None, :] > np.arange(scores.shape[0])[:, None]
        same = labels[rows, None] == labels[None, start:]
        genuine.append(scores[upper & same])
        impostor.append(scores[upper & ~same])
    return np.concatenate(genuine), np.concatenate(impostor)


def thresholds_at(genuine: np.ndarray, impostor: np.ndarray, fars) -> tuple[dict[str, float], dict[str, dict]]:
    """The lowest threshold whose false-accept rate is <= each FAR, and the rates measured at it."""
    genuine, impostor = np.asarray(genuine, np.float32), np.asarray(impostor, np.float32)
    thresholds, measured = {}, {}
    for far in fars:
        allowed = int(far * len(impostor))  # false accepts the FAR permits
        if allowed < 1:
            raise PartialFaceError(
                f"FAR {far:g} needs at least {int(np.ceil(1 / far))} impostor pairs; the images give {len(impostor)}"
            )
        kth = -np.partition(-impostor, allowed)[allowed]  # the (allowed+1)-th highest impostor score
        # the next float32 above it: a float32 value, so float32 and float64 comparisons agree
        threshold = float(np.nextafter(np.float32(kth), np.float32(np.inf)))
        label = far_label(far)
        thresholds[label] = threshold
        measured[label] = {
            "far": float((impostor >= threshold).mean()),
            "tar": float((genuine >= threshold).mean()) if len(genuine) else None,  # None: no genuine pair
            "false_accepts": int((impostor >= threshold).sum()),
        }
    return thresholds, measured


def calibrate(
    deployed: DeployedModel,
    images: str | os.PathLike,
    fars=(1e-3, 1e-4),
    max_images: int | None = None,
    exclude: frozenset[str] = frozenset(),
    default_far: float = 1e-3,
    seed: int = 0,
    dtype: str = "float16",
    batch: int = 64,
    command: str = "",
    progress: bool = True,
) -> Thresholds:
    """Thresholds of ``deployed`` at ``fars`` from every pair of photos under ``images`` (identity folders).

    ``max_images`` keeps only the people with at most that many photos; ``exclude`` drops people by name.
    """
    try:
        folders = scan_identity_folders(images, min_images=1, exclude=exclude)
    except ValueError as err:
        raise PartialFaceError(str(err)) from None
    counts = np.bincount([label for _, label in folders.samples])
    kept = [(path, label) for path, label in folders.samples if max_images is None or counts[label] <= max_images]
    if len(kept) < 2:
        raise PartialFaceError(f"{os.fspath(images)}: fewer than 2 photos left to calibrate on")
    paths = [path for path, _ in kept]
    labels = np.array([label for _, label in kept])
    templates = embed_like_the_service(deployed, paths, seed, dtype, batch, progress)
    genuine, impostor = pair_scores(templates, labels)
    thresholds, measured = thresholds_at(genuine, impostor, fars)
    calibration = {
        "images": os.fspath(images),
        "people": int(len(np.unique(labels))),
        "photos": len(paths),
        "genuine_pairs": int(len(genuine)),
        "impostor_pairs": int(len(impostor)),
        "queries": f"{deployed.preparation['kind']}, one random rank per photo (seed {seed}), {dtype} payloads",
        "command": command,
    }
    return Thresholds(deployed.id, thresholds, far_label(default_far), measured, calibration)
