"""Training data from a resolved config: identity folders, a TFace index file or InsightFace RecordIO.

Datasets are built without flipping: the trainer draws flips per step from the seeded batch
generator, so DataLoader workers hold no randomness and the order of samples alone decides a step.
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
from .config_checks import ConfigError, key_errors
from .seeding import Stream, seeded_generator

__all__ = ["TrainingData", "build_training_data", "sample_faces"]


@dataclass
class TrainingData:
    """The training set of a run.

    Attributes:
        dataset: items ``(image (3, S, S) in [-1, 1], label)``; every image ``repeats`` times.
        num_classes: number of identities (labels are ``0 .. num_classes - 1``).
        num_images: distinct images (``len(dataset) / repeats``).
        repeats: copies of every image per epoch (the encoder's ``train_repeats``).
        description: one line for logs.
    """

    dataset: Dataset
    num_classes: int
    num_images: int
    repeats: int
    description: str


def _dataset_root(cfg: Mapping[str, Any]) -> Path:
    name = cfg["DATASETS"][0]["name"]
    root = Path(cfg["DATA_ROOT"])
    return root / name if name else root


def _relabel(samples: Sequence[tuple[Path, int]], min_images: int) -> tuple[list[tuple[Path, int]], int]:
    """Drop labels with fewer than ``min_images`` images and renumber the rest 0..C-1 (in label order)."""
    counts = Counter(label for _, label in samples)
    kept = sorted(label for label, count in counts.items() if count >= min_images)
    new_label = {label: index for index, label in enumerate(kept)}
    return [(path, new_label[label]) for path, label in samples if label in new_label], len(kept)


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


def build_training_data(cfg: Mapping[str, Any], repeats: int) -> TrainingData:
    """The training set described by ``cfg`` (DATA_FORMAT, DATA_ROOT, DATASETS, ...), repeated ``repeats`` times.

    Raises :class:`~partialface.errors.PartialFaceError` naming the key and the folder or file when the
    data cannot be found, cannot be read or is empty.
    """
    crop = CropSpec.from_dict(cfg["CROP"])
    data_format = cfg["DATA_FORMAT"]
    excluded = _excluded_people(cfg)
    if data_format == "folders":
        root = _dataset_root(cfg)
        with key_errors("DATA_ROOT"):
            folders = scan_identity_folders(root, min_images=cfg["MIN_IMAGES"], exclude=excluded)
        samples, num_classes = folders.samples, len(folders.class_names)
        where = os.fspath(root)
    elif data_format == "index":
        index = Path(cfg["INDEX_ROOT"]) / f"{cfg['DATASETS'][0]['name']}.txt"
        if not index.is_file():
            raise ConfigError(f"index file {os.fspath(index)!r} (INDEX_ROOT/DATASETS name + .txt) does not exist",
                              ("INDEX_ROOT", "DATASETS"))
        with key_errors("INDEX_ROOT"):
            samples = read_index_file(index, cfg["DATA_ROOT"])
        if excluded:  # the person is the folder holding the image (LFW layout)
            samples = [s for s in samples if s[0].parent.name not in excluded]
        samples, num_classes = _relabel(samples, cfg["MIN_IMAGES"])
        where = os.fspath(index)
    else:
        root = _dataset_root(cfg)
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
        return TrainingData(
            dataset, num_classes, len(dataset.keys), repeats,
            f"{len(dataset.keys)} images of {num_classes} identities from {os.fspath(rec)}",
        )
    if not samples:
        raise ConfigError(f"no training images left in {where} after MIN_IMAGES and EXCLUDE_FOLDS",
                          ("DATA_ROOT", "MIN_IMAGES", "EXCLUDE_FOLDS"))
    dataset = FaceFolderDataset(samples, crop=crop, flip=False, repeat=repeats, cache=cfg["CACHE_IMAGES"])
    description = f"{len(samples)} images of {num_classes} identities from {where}"
    if excluded:
        description += f" ({len(excluded)} people of folds {cfg['EXCLUDE_FOLDS']} excluded)"
    return TrainingData(dataset, num_classes, len(samples), repeats, description)


def sample_faces(data: TrainingData, count: int, seed: int) -> torch.Tensor:
    """``count`` distinct training faces (or all, if fewer), chosen with a seeded generator: (N, 3, S, S)."""
    generator = seeded_generator(seed, Stream.FREQUENCY_SCALE)
    order = torch.randperm(data.num_images, generator=generator)[: min(count, data.num_images)]
    with key_errors("DATA_ROOT"):  # a face that cannot be decoded
        return torch.stack([data.dataset[int(i)][0] for i in order])
