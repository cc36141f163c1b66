"""Training data from a resolved config: identity folders, TFace index files or InsightFace RecordIO.

Datasets are built without flipping: the trainer draws flips per step from the seeded batch
generator, so DataLoader workers hold no randomness and the order of samples alone decides a step.

Several ``DATASETS`` entries (folders or index data) train together as one set: each entry is read
from its own ``root`` (default ``DATA_ROOT/name``), the people of ``EXCLUDE_PAIRS`` folds are left out
of every entry (by folder name), ``MIN_IMAGES`` applies per entry, and the labels of each entry follow
those of the entries before it. People with fewer than ``MARGIN_MIN_IMAGES`` images keep a label but
get no class in the head: their labels come after the head's ``num_classes``, and only the losses that
need no class (distillation from a teacher, view consistency) learn from them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data import (
    CropSpec,
    FaceFolderDataset,
    RecordIODataset,
    RecordIOReader,
    people_in_folds,
    read_index_file,
    read_lfw_pairs,
    scan_identity_folders,
    unpack_image_record,
)
from ..alignment.preparation import BoxPreparation, InputPreparation, preparation_of_dataset
from .config_checks import ConfigError, key_errors
from .seeding import Stream, seeded_generator
from .unreadable import drop_unreadable_records, readable_samples

__all__ = ["KeyedDataset", "TrainingData", "TrainingSamples", "build_training_data", "sample_faces", "training_samples",
           "training_preparation"]


@dataclass
class TrainingData:
    """The training set of a run.

    Attributes:
        dataset: items ``(image (3, S, S) in [-1, 1], label)``; every image ``repeats`` times.
        num_classes: number of identities (labels are ``0 .. num_classes - 1``).
        num_images: distinct images (``len(dataset) / repeats``).
        repeats: copies of every image per epoch (the encoder's ``train_repeats``).
        description: one line for logs.
        num_identities: identities with a label, ``num_classes`` with a class in the head first, then
            those trained without the margin loss (``MARGIN_MIN_IMAGES``); None: ``num_classes``.
        samples: the ``(image path, label)`` of every distinct image (folders and index data), in
            dataset order; item ``i`` of ``dataset`` is image ``i % num_images``.
        teacher_paths: per image, the file whose teacher descriptors stand for it (``teacher_root``).
    """

    dataset: Dataset
    num_classes: int
    num_images: int
    repeats: int
    description: str
    num_identities: int | None = None
    samples: Sequence[tuple[Path, int]] = ()
    teacher_paths: Sequence[Path] = ()


@dataclass(frozen=True)
class TrainingSamples:
    """The images of folders or index data: ``(path, label)`` samples, the identities, a description, and
    per image the file whose teacher descriptors stand for it (itself, or its copy under ``teacher_root``)."""

    samples: list[tuple[Path, int]]
    num_classes: int
    num_identities: int
    description: str
    teacher_paths: list[Path]


def _dataset_root(cfg: Mapping[str, Any], entry: Mapping[str, Any]) -> Path:
    """Where one DATASETS entry lies: its ``root``, else ``DATA_ROOT/name`` (``DATA_ROOT`` without a name)."""
    if entry.get("root"):
        return Path(entry["root"])
    root = Path(cfg["DATA_ROOT"])
    return root / entry["name"] if entry["name"] else root


def training_preparation(cfg: Mapping[str, Any], crop: CropSpec) -> InputPreparation:
    """How a raw photo becomes one of this run's training faces, for the checkpoint (the client follows it).

    The first DATASETS entry decides: a folder made by ``partialface align`` records five-point alignment
    (then ``CROP``); any other data is the ``CROP`` box of its photos.
    """
    if cfg["DATA_FORMAT"] != "folders":
        return BoxPreparation(crop)
    with key_errors("DATASETS"):
        return preparation_of_dataset(_dataset_root(cfg, cfg["DATASETS"][0]), crop)


def _relabel(samples: Sequence[tuple[Path, int]], min_images: int) -> tuple[list[tuple[Path, int]], int]:
    """Drop labels with fewer than ``min_images`` images and renumber the rest 0..C-1 (in label order)."""
    counts = Counter(label for _, label in samples)
    kept = sorted(label for label, count in counts.items() if count >= min_images)
    new_label = {label: index for index, label in enumerate(kept)}
    return [(path, new_label[label]) for path, label in samples if label in new_label], len(kept)


def _margin_labels(samples: Sequence[tuple[Path, int]], margin_min_images: int) -> tuple[list[tuple[Path, int]], int]:
    """Renumber labels so that identities with >= ``margin_min_images`` images come first (0..C-1, in
    label order) and the others after them (C.., in label order); returns the samples and C."""
    counts = Counter(label for _, label in samples)
    with_class = sorted(label for label, count in counts.items() if count >= margin_min_images)
    without = sorted(label for label, count in counts.items() if count < margin_min_images)
    new_label = {label: index for index, label in enumerate(with_class + without)}
    return [(path, new_label[label]) for path, label in samples], len(with_class)


def _excluded_people(cfg: Mapping[str, Any]) -> set[str]:
    if not cfg["EXCLUDE_PAIRS"]:
        return set()
    with key_errors("EXCLUDE_PAIRS"):
        return people_in_folds(read_lfw_pairs(cfg["EXCLUDE_PAIRS"]), cfg["EXCLUDE_FOLDS"])


def _recordio_classes(rec: Path, idx: Path, dataset: RecordIODataset) -> int:
    """Identities of a RecordIO set: from the identity records announced by record 0, else a label scan."""
    reader = RecordIOReader(rec, idx)
    try:
        if 0 in reader.offsets:
            header, _ = unpack_image_record(reader.read(0), f"{rec} record 0")
            if header.flag > 0 and len(header.extra_labels) >= 2:
                first, stop = (int(v) for v in header.extra_labels[:2])
                if stop > first:
                    return stop - first
        labels = [
            int(unpack_image_record(reader.read(key), f"{rec} record {key}")[0].class_label) for key in dataset.keys
        ]
    finally:
        reader.close()
    return max(labels) + 1


def _entry_samples(cfg: Mapping[str, Any], entry: Mapping[str, Any], excluded: set[str]) -> tuple[list[tuple[Path, int]], int, str]:
    """The samples (labels 0..C-1), identity count and location of one folders or index DATASETS entry."""
    if cfg["DATA_FORMAT"] == "folders":
        root = _dataset_root(cfg, entry)
        with key_errors("DATA_ROOT"):
            folders = scan_identity_folders(root, min_images=cfg["MIN_IMAGES"], exclude=excluded)
        return folders.samples, len(folders.class_names), os.fspath(root)
    index = Path(cfg["INDEX_ROOT"]) / f"{entry['name']}.txt"
    if not index.is_file():
        raise ConfigError(f"index file {os.fspath(index)!r} (INDEX_ROOT/DATASETS name + .txt) does not exist",
                          ("INDEX_ROOT", "DATASETS"))
    with key_errors("INDEX_ROOT"):
        samples = read_index_file(index, entry.get("root") or cfg["DATA_ROOT"])
    if excluded:  # the person is the folder holding the image (LFW layout)
        samples = [s for s in samples if s[0].parent.name not in excluded]
    samples, count = _relabel(samples, cfg["MIN_IMAGES"])
    return samples, count, os.fspath(index)


def _teacher_paths(cfg: Mapping[str, Any], entry: Mapping[str, Any], paths: Sequence[Path]) -> list[Path]:
    """The files whose teacher descriptors stand for ``paths`` of one entry: the same relative path under
    the entry's ``teacher_root`` (the paths themselves without one)."""
    if not entry.get("teacher_root"):
        return list(paths)
    if cfg["DATA_FORMAT"] == "folders":
        root = _dataset_root(cfg, entry)
    else:  # index files name images relative to the entry's root or DATA_ROOT
        root = Path(entry.get("root") or cfg["DATA_ROOT"])
    teacher_root = Path(entry["teacher_root"])
    return [teacher_root / path.relative_to(root) for path in paths]


def training_samples(cfg: Mapping[str, Any]) -> TrainingSamples:
    """Every training image of folders or index data (all DATASETS entries), labelled as the run labels them."""
    excluded = _excluded_people(cfg)
    samples: list[tuple[Path, int]] = []
    teacher_paths: list[Path] = []
    places = []
    for entry in cfg["DATASETS"]:
        found, count, where = _entry_samples(cfg, entry, excluded)
        if not found:
            raise ConfigError(f"no training images left in {where} after MIN_IMAGES and EXCLUDE_FOLDS",
                              ("DATA_ROOT", "MIN_IMAGES", "EXCLUDE_FOLDS"))
        offset = samples[-1][1] + 1 if samples else 0
        samples += [(path, label + offset) for path, label in found]
        teacher_paths += _teacher_paths(cfg, entry, [path for path, _ in found])
        places.append(where)
    identities = samples[-1][1] + 1
    samples, num_classes = _margin_labels(samples, cfg["MARGIN_MIN_IMAGES"])
    description = f"{len(samples)} images of {identities} identities from {' + '.join(places)}"
    if num_classes < identities:
        description += f" ({identities - num_classes} with < {cfg['MARGIN_MIN_IMAGES']} images: no margin loss)"
    if excluded:
        description += f" ({len(excluded)} people of folds {cfg['EXCLUDE_FOLDS']} excluded)"
    return TrainingSamples(samples, num_classes, identities, description, teacher_paths)


def build_training_data(cfg: Mapping[str, Any], repeats: int) -> TrainingData:
    """The training set described by ``cfg`` (DATA_FORMAT, DATA_ROOT, DATASETS, ...), repeated ``repeats`` times.

    Raises :class:`~partialface.errors.PartialFaceError` naming the key and the folder or file when the
    data cannot be found, cannot be read or is empty.
    """
    crop = CropSpec.from_dict(cfg["CROP"])
    if cfg["DATA_FORMAT"] == "recordio":
        root = _dataset_root(cfg, cfg["DATASETS"][0])
        rec, idx = root / "train.rec", root / "train.idx"
        for path in (rec, idx):
            if not path.is_file():
                raise ConfigError(
                    f"RecordIO file {os.fspath(path)!r} (DATA_ROOT/DATASETS name/train.rec|idx) does not exist",
                    ("DATA_ROOT", "DATASETS"),
                )
        with key_errors("DATA_ROOT"):
            dataset = RecordIODataset(rec, idx, crop=crop, flip=False, repeat=repeats)
            num_classes = _recordio_classes(rec, idx, dataset)
        skipped = drop_unreadable_records(dataset) if cfg["SKIP_UNREADABLE"] else ""
        return TrainingData(
            dataset, num_classes, len(dataset.keys), repeats,
            f"{len(dataset.keys)} images of {num_classes} identities from {os.fspath(rec)}{skipped}",
        )
    found = training_samples(cfg)
    samples, teacher_paths, skipped = found.samples, found.teacher_paths, ""
    if cfg["SKIP_UNREADABLE"]:
        kept, skipped = readable_samples(samples, crop)
        samples, teacher_paths = [samples[i] for i in kept], [teacher_paths[i] for i in kept]
        if not samples:
            raise ConfigError("no training images left after SKIP_UNREADABLE: none of them can be read",
                              ("DATA_ROOT", "SKIP_UNREADABLE"))
    dataset = FaceFolderDataset(samples, crop=crop, flip=False, repeat=repeats, cache=cfg["CACHE_IMAGES"])
    return TrainingData(dataset, found.num_classes, len(samples), repeats, found.description + skipped,
                        found.num_identities, samples, teacher_paths)


class KeyedDataset(Dataset):
    """Items ``(image, label, key)`` of a dataset whose item ``i`` is image ``i % num_images``: the key
    says which image (for per-image data such as teacher descriptors)."""

    def __init__(self, dataset: Dataset, num_images: int) -> None:
        self.dataset = dataset
        self.num_images = num_images

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image, label = self.dataset[index]
        return image, label, index % self.num_images


def sample_faces(data: TrainingData, count: int, seed: int) -> torch.Tensor:
    """``count`` distinct training faces (or all, if fewer), chosen with a seeded generator: (N, 3, S, S)."""
    generator = seeded_generator(seed, Stream.FREQUENCY_SCALE)
    order = torch.randperm(data.num_images, generator=generator)[: min(count, data.num_images)]
    with key_errors("DATA_ROOT"):  # a face that cannot be decoded
        return torch.stack([data.dataset[int(i)][0] for i in order])
