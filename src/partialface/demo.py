"""``make demo``: protect a handful of real faces and write a preview sheet per face.

Faces come from ``--data`` (default: the shared LFW copy at ``../shared/data/lfw/images`` when it is
there). One photo per person is taken (seeded), so the sheets show different people.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from .data import DEFAULT_CROP
from .plan import ChannelPlan
from .protect import IMAGE_SUFFIXES, protect_files

__all__ = ["default_face_folder", "pick_faces", "run_demo", "NO_FACES_HELP"]

NO_FACES_HELP = """no face photos found.
Give a folder of face photos with DATA=/path/to/faces (make demo DATA=...) or --data.
Photos should be roughly aligned faces: 112x112 crops, or 250x250 LFW-style photos with the face centred
(the default crop keeps the central 112x112 box). LFW (deep-funneled) can be obtained from the
University of Massachusetts' "Labeled Faces in the Wild" page; unpack it so that it holds
Name/Name_0001.jpg folders."""


def default_face_folder() -> Path | None:
    """``../shared/data/lfw/images`` next to the repository (or the working folder), when present."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base.parent / "shared" / "data" / "lfw" / "images"
        if candidate.is_dir():
            return candidate
    return None


def pick_faces(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Up to ``count`` photos, at most one per sub-folder (person), chosen with ``seed``."""
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    rng = random.Random(seed)
    if not people:  # a flat folder of photos
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return rng.sample(files, min(count, len(files)))
    chosen = []
    for person in rng.sample(people, len(people)):
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            chosen.append(photos[0])
        if len(chosen) == count:
            break
    return chosen


def run_demo(data: str | os.PathLike | None, out: str | os.PathLike, count: int = 6, seed: int = 0) -> list[Path]:
    folder = Path(data) if data else default_face_folder()
    if folder is None or not folder.is_dir():
        where = f" at {folder}" if folder else ""
        raise SystemExit(f"partialface demo: {NO_FACES_HELP.replace('no face photos found', 'no face photos found' + where, 1)}")
    faces = pick_faces(folder, count, seed)
    if not faces:
        raise SystemExit(f"partialface demo: {NO_FACES_HELP}")
    out = Path(out)
    staging = out / "faces"
    written = []
    for i, face in enumerate(faces):
        written += protect_files(face, staging, ChannelPlan.tface(), seed=seed + i, crop=DEFAULT_CROP, progress=False)
    print(f"protected {len(written)} faces from {folder} with the published plan {ChannelPlan.tface().fingerprint}")
    for path in written:
        print(f"  {path.with_suffix('.png')}")
    return written
