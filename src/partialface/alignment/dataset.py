"""Align a whole identity-folder dataset (``SRC/<person>/<photo>``) into the same layout under ``OUT``.

Training faces and queries must be prepared the same way, so the dataset command runs the very
aligner a client runs (:class:`~.aligner.FaceAligner`), one face per photo.

Resumable and safe by construction:

- ``OUT/.partialface-align.jsonl`` is a journal: its first line records the settings, then one line
  per photo, written (and synced) *before* the aligned image is, so every file in ``OUT`` that the
  journal does not name was not written by this command and is never replaced (the run refuses).
- Images are written atomically (temporary file, then rename): a killed run leaves whole images only.
  A re-run skips photos already done and refuses different settings (a dataset is one preparation).
- ``OUT/align_report.json`` lists the photos with no face, with several faces (which one was used)
  and the unreadable ones; a summary is printed.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from ..atomic import atomic_write
from ..checks import check_choice, check_int
from ..data import scan_identity_folders
from ..errors import PartialFaceError
from .aligner import DEFAULT_DETECTOR, DEFAULT_LANDMARKS, AlignedFace, FaceAligner
from .images import open_rgb8

__all__ = ["AlignSettings", "PICKS", "align_dataset", "JOURNAL_NAME", "REPORT_NAME"]

JOURNAL_NAME = ".partialface-align.jsonl"
REPORT_NAME = "align_report.json"


def _largest(faces: list[AlignedFace], width: int, height: int) -> AlignedFace:
    return faces[0]  # the aligner lists faces largest first


def _central(faces: list[AlignedFace], width: int, height: int) -> AlignedFace:
    def distance(face: AlignedFace) -> float:
        left, top, right, bottom = face.face.box
        return ((left + right - width) / 2.0) ** 2 + ((top + bottom - height) / 2.0) ** 2

    return min(faces, key=distance)


# Which face of a photo with several becomes the dataset's face. "central" suits photo collections that
# were centred on their subject (LFW: the labelled person is in the middle, often not the largest).
PICKS: dict[str, Callable[[list[AlignedFace], int, int], AlignedFace]] = {"largest": _largest, "central": _central}


@dataclass(frozen=True)
class AlignSettings:
    """What a dataset's faces were prepared with; a resumed run must use the same."""

    detector: str = DEFAULT_DETECTOR
    landmarks: str = DEFAULT_LANDMARKS
    frame: int = 250
    pick: str = "largest"
    quality: int = 95  # JPEG/WebP quality of the written images

    def __post_init__(self) -> None:
        check_choice("pick", self.pick, tuple(PICKS))
        check_int("quality", self.quality, 1, 100)


@dataclass
class PhotoResult:
    photo: str  # path relative to SRC, '/'-separated
    status: str  # "aligned", "no_face" or "unreadable"
    faces: int = 0
    box: list[int] | None = None  # the face used, in the photo
    error: str | None = None
    data: bytes | None = None  # the encoded aligned image (not journaled)

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "data" and v is not None}


def _encode(image: Image.Image, suffix: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=Image.registered_extensions()[suffix.lower()], quality=quality)
    return buffer.getvalue()


_worker: dict[str, Any] = {}


def _init_worker(settings: AlignSettings) -> None:
    """Per process: dlib models are not picklable, so each worker loads its own aligner."""
    _worker["settings"] = settings
    _worker["aligner"] = FaceAligner(settings.detector, settings.landmarks, settings.frame)


def _align_one(item: tuple[str, str]) -> PhotoResult:
    path, rel = item
    settings: AlignSettings = _worker["settings"]
    try:
        photo = open_rgb8(path)
    except PartialFaceError as error:
        return PhotoResult(rel, "unreadable", error=str(error))
    faces = _worker["aligner"].align(photo)
    if not faces:
        return PhotoResult(rel, "no_face")
    face = PICKS[settings.pick](faces, *photo.size)
    data = _encode(face.to_image(), Path(path).suffix, settings.quality)
    return PhotoResult(rel, "aligned", faces=len(faces), box=list(face.face.box), data=data)


def _results(items: list[tuple[str, str]], settings: AlignSettings, workers: int) -> Iterator[PhotoResult]:
    if workers == 1:
        _init_worker(settings)
        yield from map(_align_one, items)
        return
    # spawn: a forked child would inherit the parent's torch/OpenMP state; each worker starts clean
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (settings,)) as pool:
        yield from pool.imap_unordered(_align_one, items, chunksize=4)


class _Journal:
    """The settings line and one line per photo; later lines win. A torn last line (a kill) is ignored."""

    def __init__(self, path: Path, settings: AlignSettings) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            parsed = []
            for line in lines:
                try:
                    parsed.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            recorded = parsed[0].get("settings") if parsed else None
            if recorded != asdict(settings):
                raise PartialFaceError(
                    f"{path.parent} was aligned with settings {recorded}, not {asdict(settings)}: "
                    "use the same settings to resume, or another OUT"
                )
            self.records = {entry["photo"]: entry for entry in parsed[1:] if "photo" in entry}
        self._handle = None
        self._settings = settings

    def open(self) -> None:
        fresh = not self.path.is_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")
        if fresh:
            self.append({"settings": asdict(self._settings)})

    def append(self, entry: dict[str, Any]) -> None:
        assert self._handle is not None
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        if "photo" in entry:
            self.records[entry["photo"]] = entry

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _check_paths(source: Path, out: Path) -> None:
    if not source.is_dir():
        raise PartialFaceError(f"source {os.fspath(source)!r} is not a folder")
    src, dst = source.resolve(), out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise PartialFaceError(f"OUT {os.fspath(out)!r} must be outside SRC {os.fspath(source)!r} (and not hold it)")


def _done(entry: dict[str, Any] | None, target: Path, retry_failed: bool) -> bool:
    if entry is None:
        return False
    if entry["status"] == "aligned":
        return target.is_file()
    return not retry_failed


def align_dataset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: AlignSettings = AlignSettings(),
    workers: int = 1,
    retry_failed: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Align every photo of ``SRC/<person>/<photo>`` into ``OUT/<person>/<photo>``; returns the report.

    Raises PartialFaceError before writing anything when OUT overlaps SRC, when OUT holds a file this
    command did not write where it would write one, or when OUT was started with other settings.
    """
    source, out = Path(source), Path(out)
    workers = check_int("workers", workers, 1)
    _check_paths(source, out)
    try:
        samples = scan_identity_folders(source).samples
    except ValueError as error:
        raise PartialFaceError(str(error)) from None
    photos = [(os.fspath(path), path.relative_to(source).as_posix()) for path, _ in samples]
    journal = _Journal(out / JOURNAL_NAME, settings)
    ours = {rel for rel, entry in journal.records.items() if entry["status"] == "aligned"}
    if journal.path.is_file():
        ours.add(REPORT_NAME)
    for rel in [rel for _, rel in photos] + [REPORT_NAME]:
        target = out / rel
        if (target.exists() or target.is_symlink()) and rel not in ours:
            raise PartialFaceError(f"{os.fspath(target)!r} exists and was not written by partialface align: not replacing it")
    pending = [item for item in photos if not _done(journal.records.get(item[1]), out / item[1], retry_failed)]

    start = time.perf_counter()
    journal.open()
    try:
        with tqdm(total=len(photos), initial=len(photos) - len(pending), unit="photo", disable=not progress,
                  desc="align", mininterval=2.0) as bar:
            for result in _results(pending, settings, workers):
                journal.append(result.record())  # before the image: OUT never holds an unrecorded file
                if result.data is not None:
                    with atomic_write(out / result.photo) as handle:
                        handle.write(result.data)
                bar.update()
    finally:
        journal.close()
    report = _report(source, out, settings, [rel for _, rel in photos], journal.records)
    report["this_run"] = {"processed": len(pending), "seconds": round(time.perf_counter() - start, 1), "workers": workers}
    with atomic_write(out / REPORT_NAME, "w") as handle:
        json.dump(report, handle, indent=1)
    return report


def _report(source: Path, out: Path, settings: AlignSettings, photos: Iterable[str],
            records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    photos = list(photos)
    entries = [records[rel] for rel in photos if rel in records]
    aligned = [e for e in entries if e["status"] == "aligned"]
    return {
        "source": os.fspath(source),
        "out": os.fspath(out),
        "settings": asdict(settings),
        "photos": len(photos),
        "aligned": len(aligned),
        "no_face": [e["photo"] for e in entries if e["status"] == "no_face"],
        "several_faces": [
            {"photo": e["photo"], "faces": e["faces"], "used": settings.pick, "used_box": e["box"]}
            for e in aligned if e["faces"] > 1
        ],
        "unreadable": [{"photo": e["photo"], "error": e.get("error", "")} for e in entries if e["status"] == "unreadable"],
    }
