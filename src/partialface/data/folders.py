"""Image files on disk: identity-folder face datasets (LFW layout ``root/Name/Name_0001.jpg``), TFace index
files, and which files count as images.

A *sample* is ``(image path, integer label)``. :func:`scan_identity_folders` builds samples from one
sub-folder per person; :func:`read_index_file` / :func:`write_index_file` store them as TFace-style
``path<TAB>label`` lines with paths relative to a data root. :data:`IMAGE_SUFFIXES` and
:func:`find_images` are the one definition of "an image file" that every command uses.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from ..atomic import atomic_write
from ..checks import check_int
from ..errors import PartialFaceError
from .augment import random_horizontal_flip
from .crop import DEFAULT_CROP, CropSpec, load_face, load_face_pixels
from .pixels import pixels_to_faces

Sample = tuple[Path, int]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""File suffixes (lower case) read as face photos; other files in a folder are ignored."""


def is_image_file(path: Path) -> bool:
    """A regular, non-hidden file whose suffix is one of :data:`IMAGE_SUFFIXES` (any case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def find_images(path: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """``(root, images)``: the file itself, or every image file below a folder (recursively, sorted).

    Raises PartialFaceError when ``path`` does not exist or a folder holds no image.
    """
    path = Path(path)
    if path.is_file():
        return path.parent, [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if is_image_file(p))
        if not files:
            raise PartialFaceError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) found in this folder")
        return path, files
    raise PartialFaceError(f"{path}: no such file or folder")


class IdentityFolders(NamedTuple):
    """Result of :func:`scan_identity_folders`: samples and the name of each label (``class_names[label]``)."""

    samples: list[Sample]
    class_names: list[str]


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside ``folder`` (not below it), sorted by name."""
    return sorted(entry for entry in folder.iterdir() if is_image_file(entry))


def scan_identity_folders(
    root: str | os.PathLike[str], min_images: int = 1, exclude: Collection[str] = frozenset()
) -> IdentityFolders:
    """List the images of every person folder under ``root``.

    People in ``exclude`` (folder names, e.g. from :func:`partialface.data.pairs.people_in_folds`) and
    people with fewer than ``min_images`` images are skipped. Labels are contiguous, 0..C-1, in sorted
    folder-name order of the people kept; images within a person are in sorted file-name order.
    Raises PartialFaceError when ``root`` is not a folder or no person is left.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise PartialFaceError(f"identity folder root {os.fspath(root)!r} is not a directory")
    check_int("min_images", min_images, low=1)
    excluded = set(exclude)
    samples: list[Sample] = []
    class_names: list[str] = []
    people = sorted(p for p in root_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    for person in people:
        if person.name in excluded:
            continue
        images = image_files(person)
        if len(images) < min_images:
            continue
        label = len(class_names)
        class_names.append(person.name)
        samples.extend((image, label) for image in images)
    if not class_names:
        raise PartialFaceError(
            f"no identity folder under {os.fspath(root)!r} has >= {min_images} images "
            f"(after excluding {len(excluded)} names)"
        )
    return IdentityFolders(samples, class_names)


class FaceFolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """Face images from ``(path, label)`` samples, cropped and normalised to [-1, 1].

    Item ``i`` is sample ``i % len(samples)``: with ``repeat = r`` every image appears ``r`` times per
    epoch (PartialFace's NUM_AUG), each copy with its own flip draw when ``flip`` is true. The flip is
    drawn from torch's global RNG inside the worker (see :func:`random_horizontal_flip`).

    With ``cache=True`` every image is decoded and cropped once, on first use, and kept in memory
    (uint8, 3 x S x S bytes per image); later reads return the same values without touching the file.
    Use it with in-process loading (``num_workers=0``): a worker's cache dies with the worker.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        crop: CropSpec | None = DEFAULT_CROP,
        flip: bool = False,
        repeat: int = 1,
        cache: bool = False,
    ) -> None:
        if len(samples) == 0:
            raise PartialFaceError("FaceFolderDataset needs at least one sample")
        check_int("repeat", repeat, low=1)
        self.samples: list[Sample] = [(Path(path), int(label)) for path, label in samples]
        self.crop = crop
        self.flip = flip
        self.repeat = repeat
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return self.repeat * len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        key = index % len(self.samples)
        path, label = self.samples[key]
        if self.cache is None:
            image = load_face(path, self.crop)
        else:
            pixels = self.cache.get(key)
            if pixels is None:
                pixels = self.cache[key] = load_face_pixels(path, self.crop)
            image = pixels_to_faces(pixels)
        if self.flip:
            image = random_horizontal_flip(image)
        return image, label


def read_index_file(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> list[Sample]:
    """Read a TFace index file of ``relative/path<TAB>label`` lines; paths are resolved against ``root``.

    Blank lines are skipped; absolute paths stay as they are. Raises PartialFaceError naming the file and line
    for a malformed line or a negative label.
    """
    root_path = Path(root)
    samples: list[Sample] = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split("\t")
            if len(fields) != 2 or not fields[0]:
                raise PartialFaceError(f"{os.fspath(path)}:{line_number}: expected 'path<TAB>label', got {text!r}")
            try:
                label = int(fields[1])
            except ValueError:
                raise PartialFaceError(
                    f"{os.fspath(path)}:{line_number}: label {fields[1]!r} is not an integer"
                ) from None
            if label < 0:
                raise PartialFaceError(f"{os.fspath(path)}:{line_number}: label {label} is negative")
            samples.append((root_path / fields[0], label))
    return samples


def write_index_file(
    path: str | os.PathLike[str], samples: Sequence[Sample], root: str | os.PathLike[str]
) -> None:
    """Write samples as ``relative/path<TAB>label`` lines (paths relative to ``root``, ``/``-separated).

    The file is written atomically. Raises PartialFaceError for a path outside ``root``, a path containing a
    tab or newline, or a negative label.
    """
    root_path = Path(os.path.abspath(root))
    lines: list[str] = []
    for image_path, label in samples:
        absolute = Path(os.path.abspath(image_path))
        try:
            relative = absolute.relative_to(root_path).as_posix()
        except ValueError:
            raise PartialFaceError(
                f"image {os.fspath(image_path)!r} is not under the data root {os.fspath(root)!r}"
            ) from None
        if any(ch in relative for ch in "\t\r\n"):
            raise PartialFaceError(f"image path {relative!r} contains a tab or newline")
        if int(label) < 0:
            raise PartialFaceError(f"label {label} of {relative!r} is negative")
        lines.append(f"{relative}\t{int(label)}\n")
    with atomic_write(path, "w") as handle:
        handle.writelines(lines)
