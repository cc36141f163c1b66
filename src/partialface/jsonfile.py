"""JSON files the project writes and reads: written atomically, read with one-line errors naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .errors import PartialFaceError

__all__ = ["read_json", "write_json"]


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON (trailing newline) through a temporary file and ``os.replace``."""
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    return Path(path)


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file is a :class:`PartialFaceError` naming
    ``path`` and ``what`` it should have held."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PartialFaceError(f"{path}: no such {what} file") from None
    except OSError as err:
        raise PartialFaceError(f"{path}: cannot read {what}: {err.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PartialFaceError(f"{path}: not a valid JSON {what}: {err}") from None
