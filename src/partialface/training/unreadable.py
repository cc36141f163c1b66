"""``SKIP_UNREADABLE``: leave out the training images that cannot be read, instead of stopping the run.

By default the first image that cannot be decoded or cropped stops training with one line naming the
file (from a DataLoader worker too: :func:`.config_checks.key_errors` keeps the worker's last line).
With ``SKIP_UNREADABLE: true`` every image is decoded once before training; those that fail are left
out, and their count and first names go to the log (and to the data description the run logs).

Why a pass before training rather than skipping inside the data loader: the set of images, and so the
number of steps per epoch and every batch, is then fixed before the first step -- a resumed run sees
exactly the same data, and no worker process has to report back what it skipped. The pass costs one
decode of every image (about as long as one epoch's loading, without the model).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from tqdm import tqdm

from ..data import CropSpec, FaceFolderDataset, RecordIODataset
from ..errors import PartialFaceError

__all__ = ["readable_samples", "drop_unreadable_records", "unreadable_items", "log_skipped"]

logger = logging.getLogger("partialface.train")


def unreadable_items(dataset: Dataset, count: int, progress: bool = True) -> dict[int, str]:
    """``{index: reason}`` of the items ``0 .. count - 1`` of ``dataset`` that raise PartialFaceError."""
    failed = {}
    for index in tqdm(range(count), desc="checking images", unit="image", disable=not progress, mininterval=2.0):
        try:
            dataset[index]
        except PartialFaceError as err:
            failed[index] = str(err)
    return failed


def log_skipped(failed: dict[int, Any], total: int, shown: int = 5) -> str:
    """Log the skipped images; returns the note for the data description (empty when none)."""
    if not failed:
        return ""
    reasons = list(failed.values())
    logger.warning("SKIP_UNREADABLE: %d of %d training images cannot be read and are left out", len(failed), total)
    for reason in reasons[:shown]:
        logger.warning("  %s", reason)
    if len(reasons) > shown:
        logger.warning("  ... and %d more", len(reasons) - shown)
    return f"; {len(failed)} unreadable image(s) left out (SKIP_UNREADABLE)"


def readable_samples(samples: Sequence[tuple[Path, int]], crop: CropSpec | None) -> tuple[list[int], str]:
    """The indices of the ``(path, label)`` samples whose image loads and crops, and the note for the data
    description (indices, so that per-image data such as teacher descriptors can follow).

    Labels are kept as they are: an identity whose every image is unreadable keeps its (empty) class, so
    the labels of the others do not move.
    """
    failed = unreadable_items(FaceFolderDataset(samples, crop=crop), len(samples))
    return [index for index in range(len(samples)) if index not in failed], log_skipped(failed, len(samples))


def drop_unreadable_records(dataset: RecordIODataset) -> str:
    """Leave the unreadable records out of a RecordIO ``dataset`` (in place); the note for the description."""
    failed = unreadable_items(dataset, len(dataset.keys))
    dataset.keys = [key for index, key in enumerate(dataset.keys) if index not in failed]
    if not dataset.keys:
        raise PartialFaceError(f"SKIP_UNREADABLE: no record of {dataset.reader.rec_path} can be read")
    return log_skipped(failed, len(failed) + len(dataset.keys))
