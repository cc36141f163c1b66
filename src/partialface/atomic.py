"""Atomic file writing: write to a temporary file in the same folder, then ``os.replace``.

A process killed while writing leaves its temporary file (``.NAME.XXXXXXXX.tmp``) behind and never a
half-written ``NAME``; :func:`is_temporary_name` recognises such leftovers, and the next run of a locked
folder removes them (:mod:`partialface.runlock`).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

# mkstemp creates files readable only by their owner; give written files the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

# mkstemp's names: the prefix and suffix given below around 8 characters of its alphabet.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def is_temporary_name(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_write`'s temporary files (``.NAME.XXXXXXXX.tmp``)."""
    return _TEMPORARY.fullmatch(name) is not None


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; move it over ``path`` on success.

    The parent folder is created if needed. On an exception the temporary file is removed and
    ``path`` is left untouched. ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text, ``\\n`` newlines).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        handle: IO[Any] = (
            os.fdopen(fd, "w", encoding="utf-8", newline="\n") if mode == "w" else os.fdopen(fd, "wb")
        )
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _FILE_MODE)
        os.replace(tmp_name, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def save_figure(figure: Any, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write a matplotlib ``figure`` as a PNG through :func:`atomic_write`, then close it (pyplot keeps every
    open figure alive): a failed write leaves no file and no figure behind."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return Path(path)
