"""The client side: protect face photos with a channel plan and write what would be sent.

``protect_files`` is what ``partialface protect`` runs: for each photo it crops the face, draws one
random rank (seeded), computes only that rank's channels, and writes, next to nothing of the user's:

* ``NAME.EXT.npz``: the protected tensor (see :mod:`partialface.protected`; no rank inside);
* ``NAME.EXT.preview.png``: a preview sheet (see :mod:`partialface.preview`);
* ``protect_report.json`` in the output folder: what was written and which photos failed.

The output names keep the photo's whole file name (``face.jpg`` -> ``face.jpg.npz``), so ``face.jpg`` and
``face.png`` in one folder give two files instead of one replacing the other, and no output can be
named like a photo of the run. Every output path is checked before the first photo is read
(:mod:`partialface.outputs`: never an input, never an existing file without ``overwrite``), the output
folder may not lie inside the photo folder (the next run would read the previews as photos), and the
folder is locked while the run writes there (:mod:`partialface.runlock`).

A photo that cannot be read or cropped does not stop a folder: the others are protected and the
failures are listed in the report (:attr:`ProtectReport.failed`); the command exits with status 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .atomic import atomic_write
from .checks import check_seed
from .alignment.preparation import InputPreparation
from .data import DEFAULT_CROP, CropSpec, find_images, load_face
from .encoders import InputEncoder, PartialFaceEncoder
from .errors import PartialFaceError
from .outputs import OutputFiles, check_output_folder
from .plan import ChannelPlan
from .preview import preview_sheet, save_png
from .protected import save_protected, scale_fingerprint
from .runlock import RunFolderLock

__all__ = ["protect_files", "protect_faces", "ProtectReport", "PROTECTED_SUFFIX", "PREVIEW_SUFFIX", "REPORT_NAME"]

PROTECTED_SUFFIX = ".npz"
PREVIEW_SUFFIX = ".preview.png"
REPORT_NAME = "protect_report.json"


@dataclass
class ProtectReport:
    """What a :func:`protect_files` run wrote and which photos failed (with the one-line reason)."""

    written: list[Path] = field(default_factory=list)  # the .npz files
    previews: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    report: Path | None = None  # protect_report.json


@torch.no_grad()
def protect_faces(
    faces: torch.Tensor, encoder: InputEncoder, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sent, channels, eavesdropper view) for faces (B,3,H,W) in [-1,1], one random rank each."""
    channels = encoder.channels_for_query(faces.shape[0], generator)
    sent = encoder.encode(faces, channels)
    return sent, channels, encoder.to_preview(sent, channels)


def _with_suffix(base: Path, suffix: str) -> Path:
    return base.with_name(base.name + suffix)


def _photos(source: str | os.PathLike | Sequence[str | os.PathLike], out_dir: Path) -> list[tuple[Path, Path]]:
    """``(photo, output base)`` pairs: a folder's layout is mirrored; a file or a list of files goes flat."""
    if isinstance(source, (str, os.PathLike)):
        root, files = find_images(source)
        if Path(source).is_dir():
            out, src = Path(os.path.realpath(out_dir)), Path(os.path.realpath(root))
            if out == src or src in out.parents:
                raise PartialFaceError(f"--out {os.fspath(out_dir)!r} is inside the photo folder {os.fspath(root)!r}: "
                                       "the next run would read the protected files as photos; choose a folder "
                                       "outside it")
        return [(photo, out_dir / photo.relative_to(root)) for photo in files]
    photos = [Path(p) for p in source]
    if not photos:
        raise PartialFaceError("no photos to protect")
    return [(photo, out_dir / photo.name) for photo in photos]


def protect_files(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    plan: ChannelPlan | None = None,
    seed: int = 0,
    crop: CropSpec | None = DEFAULT_CROP,
    encoder: InputEncoder | None = None,
    previews: bool = True,
    progress: bool = True,
    overwrite: bool = False,
    preparation: InputPreparation | None = None,
) -> ProtectReport:
    """Protect every image at ``source`` into ``out_dir``.

    ``source`` is a photo, a folder (searched recursively; its layout is mirrored in ``out_dir``) or a list
    of photos (written side by side). ``encoder`` (e.g. a trained model's, which carries its plan and input
    scale) takes precedence over ``plan``; with neither, the published ``ChannelPlan.tface()`` and raw
    coefficients are used. ``overwrite`` lets existing outputs be replaced (never a photo of the run).
    ``preparation`` (a model's record, e.g. five-point alignment of raw photos) replaces ``crop``.

    A single photo (``source`` a file) that fails raises PartialFaceError; from a folder or a list,
    failures are collected in the returned report and in ``out_dir/protect_report.json``.
    """
    check_seed("--seed", seed)
    out_dir = check_output_folder(out_dir, "--out")
    jobs = _photos(source, out_dir)
    outputs = OutputFiles("--out", overwrite, inputs=[photo for photo, _ in jobs])
    for photo, base in jobs:
        outputs.add(_with_suffix(base, PROTECTED_SUFFIX), photo)
        if previews:
            outputs.add(_with_suffix(base, PREVIEW_SUFFIX), photo)
    single = isinstance(source, (str, os.PathLike)) and Path(source).is_file()
    report_path = None if single else outputs.add(out_dir / REPORT_NAME)
    encoder = encoder or PartialFaceEncoder(plan or ChannelPlan.tface())
    if encoder.plan is None:
        raise PartialFaceError(f"encoder {encoder.name!r} has no channel plan: nothing to protect with")
    plan_id, scale_id = encoder.plan.fingerprint, scale_fingerprint(getattr(encoder, "frequency_scale", None))
    generator = torch.Generator().manual_seed(seed)
    prepared = preparation.to_dict() if preparation is not None else (crop.to_dict() if crop else None)
    report = ProtectReport(report=report_path)
    with RunFolderLock(out_dir, "protect"):
        for photo, base in tqdm(jobs, desc="protecting", unit="face", disable=not progress):
            try:
                face = (load_face(photo, crop) if preparation is None else preparation.load_face(photo))[None]
            except PartialFaceError as err:
                if single:
                    raise
                report.failed.append((photo, str(err)))
                continue
            sent, _, view = protect_faces(face, encoder, generator)
            target = _with_suffix(base, PROTECTED_SUFFIX)
            _write(lambda: save_protected(target, sent[0], plan_id, scale_id, prepared), target)
            report.written.append(target)
            if previews:
                title = f"{photo.name}  plan {plan_id}  ({sent.shape[1]} channels sent)"
                sheet = preview_sheet(face[0], sent[0], view[0], title)
                preview = _with_suffix(base, PREVIEW_SUFFIX)
                _write(lambda: save_png(sheet, preview), preview)
                report.previews.append(preview)
        if report_path is not None:
            _write(lambda: _write_report(report, report_path, source, plan_id, seed), report_path)
    return report


def _write(write, path: Path) -> None:
    """Run ``write``; a full disk or a folder made read-only meanwhile is one line naming ``path``."""
    try:
        write()
    except OSError as err:
        raise PartialFaceError(f"cannot write {os.fspath(path)!r}: {err.strerror or err}") from None


def _write_report(report: ProtectReport, path: Path, source, plan_id: str, seed: int) -> None:
    out = path.parent
    content = {
        "source": [os.fspath(p) for p in source] if not isinstance(source, (str, os.PathLike)) else os.fspath(source),
        "plan": plan_id,
        "seed": seed,
        "written": [p.relative_to(out).as_posix() for p in report.written],
        "failed": [{"photo": os.fspath(photo), "error": error} for photo, error in report.failed],
    }
    with atomic_write(path, "w") as handle:
        json.dump(content, handle, indent=1)
        handle.write("\n")
