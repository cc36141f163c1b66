"""The distillation teacher: dlib's ResNet descriptors of every training face, computed once and cached.

With 5-15k training photos every model here saturates near 84 %, while dlib's recognizer, trained on
about 3 million faces, verifies the same LFW pairs at about 98 %. Distillation lets the student borrow
the teacher's geometry: each training image carries the teacher's 128-d descriptor as a target, which
also teaches from people with a single photo, whom a margin loss cannot use.

The teacher sees the image file the student's crop comes from: the crop box (``CROP``; the whole image
when it is already the crop size or the box is null) is the face rectangle in which dlib's 5-point
landmarks are searched, and its aligned 150x150 chip is described (:mod:`partialface.dlib_recognizer`;
no detector, so the face is the student's face). Flips are a training augmentation, so each image is
also described mirrored: a mirrored face is not the same input for dlib (descriptors move by about 0.2,
a third of dlib's same-person threshold).

The cache (``TEACHER_CACHE``, an ``.npz``) maps each image (its resolved path) to its two descriptors;
its crop and dlib's versions are stored with it. Building it is a resumable job with a progress bar:
``partialface teacher CONFIG ...`` describes every training image of the config that the cache lacks
and writes the whole cache atomically every couple of minutes, so a killed job loses at most that.
About 0.2-0.4 s per image on one CPU core (two descriptors); one cache serves every config that trains
on those files with that crop.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_write
from ..checks import check_int
from ..data import CropSpec
from ..data.crop import load_face_pixels
from ..dlib_recognizer import DESCRIPTOR_SIZE, DlibRecognizer, recognizer_versions
from ..errors import PartialFaceError

__all__ = [
    "TEACHER_FORMAT",
    "TeacherCache",
    "add_teacher_arguments",
    "build_teacher_cache",
    "cache_key",
    "describe_file",
    "run_teacher_cli",
    "teacher_box",
]

TEACHER_FORMAT = "partialface.teacher-cache/1"
Box = tuple[int, int, int, int]


def cache_key(path: str | os.PathLike[str]) -> str:
    """The key of an image in the cache: its resolved absolute path."""
    return os.fspath(Path(path).resolve())


def teacher_box(width: int, height: int, crop: CropSpec) -> Box:
    """The face rectangle (left, top, right, bottom) the teacher uses in a ``width x height`` image:
    the region :meth:`CropSpec.apply` cuts the student's face from."""
    if crop.box is None or (width, height) == (crop.size, crop.size):
        return (0, 0, width, height)
    if crop.box[2] > width or crop.box[3] > height:
        raise PartialFaceError(f"crop box {crop.box} does not fit in a {width}x{height} image")
    return crop.box


def describe_file(recognizer: DlibRecognizer, path: str | os.PathLike[str], crop: CropSpec) -> np.ndarray:
    """The teacher's descriptors (2, 128) of one image file: as it is, then mirrored left-right."""
    pixels = load_face_pixels(path, None).permute(1, 2, 0).numpy()  # (H, W, 3) uint8, the whole file
    height, width = pixels.shape[:2]
    left, top, right, bottom = teacher_box(width, height, crop)
    mirrored_box = (width - right, top, width - left, bottom)
    return np.stack([
        recognizer.describe(pixels, (left, top, right, bottom))[0],
        recognizer.describe(np.ascontiguousarray(pixels[:, ::-1]), mirrored_box)[0],
    ]).astype(np.float32)


@dataclass
class TeacherCache:
    """Teacher descriptors of image files for one crop: ``descriptors[i]`` (2, 128) belongs to ``keys[i]``
    (row 0 the image as it is, row 1 mirrored)."""

    crop: CropSpec
    keys: list[str] = field(default_factory=list)
    descriptors: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, DESCRIPTOR_SIZE), np.float32))
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {key: row for row, key in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and cache_key(path) in self._index

    def add(self, keys: Sequence[str], descriptors: np.ndarray) -> None:
        """Append descriptors (n, 2, 128) of new keys."""
        self.descriptors = np.concatenate([self.descriptors, np.asarray(descriptors, np.float32)])
        for key in keys:
            self._index[key] = len(self.keys)
            self.keys.append(key)

    def missing(self, paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
        """The paths (in order, without repeats) whose descriptors the cache lacks."""
        seen: set[str] = set()
        out = []
        for path in paths:
            key = cache_key(path)
            if key not in self._index and key not in seen:
                seen.add(key)
                out.append(Path(path))
        return out

    def lookup(self, paths: Sequence[str | os.PathLike[str]], source: str = "the teacher cache") -> torch.Tensor:
        """Descriptors (len(paths), 2, 128) float32 of the given files; PartialFaceError if any is missing."""
        missing = self.missing(paths)
        if missing:
            raise PartialFaceError(f"{source} lacks the descriptors of {len(missing)} training images "
                                   f"(first {os.fspath(missing[0])!r}): build them with `partialface teacher CONFIG`")
        rows = [self._index[cache_key(path)] for path in paths]
        return torch.from_numpy(self.descriptors[rows].copy())

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the cache atomically (an ``.npz``: keys, descriptors and a JSON header)."""
        header = {"format": TEACHER_FORMAT, "crop": self.crop.to_dict(), **self.info}
        with atomic_write(path, "wb") as handle:
            np.savez(handle, keys=np.array(self.keys, dtype=str), descriptors=self.descriptors,
                     header=np.array(json.dumps(header)))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TeacherCache:
        """Read a cache written by :meth:`save`; PartialFaceError naming the file if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                keys = [str(key) for key in data["keys"]]
                descriptors = np.asarray(data["descriptors"], np.float32)
        except (OSError, ValueError, KeyError) as error:
            raise PartialFaceError(f"{os.fspath(path)!r} is not a readable teacher cache: {error}") from None
        if header.get("format") != TEACHER_FORMAT or descriptors.shape != (len(keys), 2, DESCRIPTOR_SIZE):
            raise PartialFaceError(f"{os.fspath(path)!r} is not a teacher cache ({TEACHER_FORMAT})")
        crop = CropSpec.from_dict(header.pop("crop"))
        header.pop("format")
        return cls(crop, keys, descriptors, header)

    @classmethod
    def open_for(cls, path: str | os.PathLike[str], crop: CropSpec) -> TeacherCache:
        """The cache at ``path`` (checked to be for ``crop``), or a new empty one when there is no file."""
        if not Path(path).exists():
            return cls(crop, info={"versions": recognizer_versions()})
        cache = cls.load(path)
        if cache.crop != crop:
            raise PartialFaceError(f"teacher cache {os.fspath(path)!r} was built for crop {cache.crop.to_dict()}, "
                                   f"not {crop.to_dict()}: use another TEACHER_CACHE")
        return cache


_worker_recognizer: DlibRecognizer | None = None


def _init_worker() -> None:
    global _worker_recognizer
    torch.set_num_threads(1)
    _worker_recognizer = DlibRecognizer()


def _describe_in_worker(job: tuple[Path, CropSpec]) -> np.ndarray:
    assert _worker_recognizer is not None
    return describe_file(_worker_recognizer, *job)


def build_teacher_cache(
    paths: Sequence[str | os.PathLike[str]],
    crop: CropSpec,
    out: str | os.PathLike[str],
    recognizer: DlibRecognizer | None = None,
    progress: bool = True,
    save_seconds: float = 120.0,
    workers: int = 1,
) -> TeacherCache:
    """Add the teacher descriptors of every path the cache at ``out`` lacks, saving it as it goes.

    Resumable: what an earlier (killed) job saved is kept and skipped. ``workers`` > 1 describes images
    in that many processes (each loads dlib's models; results are the same, in the same order).
    Returns the complete cache.
    """
    cache = TeacherCache.open_for(out, crop)
    todo = cache.missing(paths)
    if not todo:
        return cache
    check_int("teacher workers", workers, low=1)
    pool = None
    if workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
        results = pool.imap(_describe_in_worker, [(path, crop) for path in todo], chunksize=4)
    else:
        recognizer = recognizer or DlibRecognizer()
        results = (describe_file(recognizer, path, crop) for path in todo)
    pending_keys: list[str] = []
    pending: list[np.ndarray] = []
    last_save = time.monotonic()
    try:
        for path, descriptors in tqdm(zip(todo, results), total=len(todo), desc="teacher", unit="image",
                                      disable=not progress, dynamic_ncols=True):
            pending.append(descriptors)
            pending_keys.append(cache_key(path))
            if time.monotonic() - last_save >= save_seconds:
                cache.add(pending_keys, np.stack(pending))
                cache.save(out)
                pending_keys, pending, last_save = [], [], time.monotonic()
    finally:
        if pool is not None:
            pool.terminate()
    if pending:
        cache.add(pending_keys, np.stack(pending))
    cache.save(out)
    return cache


# ---------------------------------------------------------------------- command line
def add_teacher_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``partialface teacher``."""
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="training config(s), combined as by `train`")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (as for `train`); repeatable")
    parser.add_argument("--cache", help="the cache file (default: the config's TEACHER_CACHE)")
    parser.add_argument("--save-seconds", type=float, default=120.0, help="seconds between saves (default 120)")
    parser.add_argument("--workers", type=int, default=1, help="processes describing images (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_teacher_cli(args: argparse.Namespace) -> int:
    """Describe every training image of the config that the cache lacks; print a one-line summary."""
    from .config import load_config
    from .data import training_samples

    cfg = load_config(args.configs, args.overrides)
    out = args.cache or cfg["TEACHER_CACHE"]
    if not out:
        raise PartialFaceError("no cache file: give --cache PATH or set TEACHER_CACHE in the config")
    if cfg["DATA_FORMAT"] == "recordio":
        raise PartialFaceError("the teacher describes image files: DATA_FORMAT recordio is not supported")
    found = training_samples(cfg)
    cache = build_teacher_cache(found.teacher_paths, CropSpec.from_dict(cfg["CROP"]), out, progress=not args.no_progress,
                                save_seconds=args.save_seconds, workers=args.workers)
    print(f"teacher cache {out}: {len(cache)} images; {found.description}")
    return 0


def teacher_targets(cfg: Mapping[str, Any], paths: Sequence[str | os.PathLike[str]]) -> torch.Tensor:
    """The cached descriptors (len(paths), 2, 128) of a run's training images (``TEACHER_CACHE``)."""
    out = cfg["TEACHER_CACHE"]
    if not Path(out).is_file():
        raise PartialFaceError(f"TEACHER_CACHE {out!r} does not exist: build it with `partialface teacher CONFIG`")
    cache = TeacherCache.open_for(out, CropSpec.from_dict(cfg["CROP"]))
    return cache.lookup(paths, f"TEACHER_CACHE {out!r}")
