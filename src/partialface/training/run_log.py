"""Run logs: CSV files of training steps and evaluations (and optionally tensorboard).

``OUT/train_log.csv`` gets one row every ``LOG_EVERY`` steps, ``OUT/dev_log.csv`` one row per
evaluation. Rows are appended and flushed as they come; when a run resumes, rows written after the
checkpoint it resumes from are dropped first (atomically), so the logs of a killed and resumed run
match those of an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..errors import PartialFaceError

__all__ = ["CsvLog", "RunLogger", "TRAIN_COLUMNS", "DEV_COLUMNS"]

TRAIN_COLUMNS = ("step", "epoch", "samples_seen", "lr", "loss", "batch_accuracy", "images_per_second", "encode_share",
                 "margin_loss", "distill_loss", "relation_loss", "consistency_loss")
DEV_COLUMNS = ("step", "epoch", "samples_seen", "accuracy", "accuracy_std", "auc", "tar_at_far_1e-3", "threshold")


class CsvLog:
    """An append-only CSV file with a fixed header whose rows are keyed by an integer ``step``."""

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        if "step" not in columns:
            raise PartialFaceError("a CsvLog needs a 'step' column")
        self.path = Path(path)
        self.columns = tuple(columns)

    def truncate_after(self, step: int) -> None:
        """Keep only the rows with ``step <= step`` (rewrites the file atomically; no-op when absent)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("step", "").isdigit() and int(row["step"]) <= step]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        with atomic_write(self.path, "w") as handle:
            handle.write(buffer.getvalue())

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row (missing columns are empty, floats written with 6 significant digits)."""
        new = not self.path.is_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow({k: _format(v) for k, v in row.items()})
            handle.flush()


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return ""
    return value


class RunLogger:
    """The CSV logs of a run plus an optional tensorboard writer (rank 0 only)."""

    def __init__(self, out: str | os.PathLike[str], tensorboard_dir: str | os.PathLike[str] | None = None) -> None:
        self.train = CsvLog(Path(out) / "train_log.csv", TRAIN_COLUMNS)
        self.dev = CsvLog(Path(out) / "dev_log.csv", DEV_COLUMNS)
        self._writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise PartialFaceError("TENSORBOARD: true needs the 'tensorboard' package (pip install tensorboard)") from err
            self._writer = SummaryWriter(os.fspath(tensorboard_dir))

    def resume_at(self, step: int) -> None:
        """Drop rows logged after ``step`` (the step of the checkpoint being resumed)."""
        self.train.truncate_after(step)
        self.dev.truncate_after(step)

    def log_train(self, row: Mapping[str, Any]) -> None:
        self.train.append(row)
        self._scalars("train", row)

    def log_dev(self, row: Mapping[str, Any]) -> None:
        self.dev.append(row)
        self._scalars("dev", row)

    def _scalars(self, prefix: str, row: Mapping[str, Any]) -> None:
        if self._writer is None:
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{prefix}/{key}", value, row["step"])
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
