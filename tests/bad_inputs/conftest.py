"""Shared pieces of the bad-input suite (issue 11): photos of every kind, the command line run in-process
with its exit status and output, and fingerprints that show a user's files untouched."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partialface.cli import main


def fingerprint(folder: Path) -> dict[str, str]:
    """md5 of every file below ``folder`` (hidden ones included), keyed by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def face_photo(path: Path, size: tuple[int, int] = (250, 250), seed: int = 0) -> Path:
    """A random RGB photo (``size`` = width, height) saved in the format its suffix names."""
    width, height = size
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """``photos/Ann/face.jpg`` and ``photos/Ann/face.png`` (same stem, two photos) and ``photos/Bob/b.jpg``."""
    root = tmp_path / "photos"
    (root / "Ann").mkdir(parents=True)
    (root / "Bob").mkdir()
    face_photo(root / "Ann" / "face.jpg", seed=1)
    face_photo(root / "Ann" / "face.png", seed=2)
    face_photo(root / "Bob" / "b.jpg", seed=3)
    return root


class Outcome:
    """What ``partialface ARGS`` did: exit status, stdout, stderr (the progress bars left out)."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out = status, out
        self.err = "\n".join(line for line in err.splitlines() if "%|" not in line)

    def error(self) -> str:
        """The one error line (asserting there is exactly one)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, self.err
        return lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Run ``partialface.cli.main([...])`` in-process (str()-ing each argument)."""

    def run(*args: object) -> Outcome:
        capsys.readouterr()
        status = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run
