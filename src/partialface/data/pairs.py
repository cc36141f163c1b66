"""LFW verification pairs (``pairs.txt``): parsing, fold selection and the people in folds.

Format: a header ``folds<TAB>n`` (or a single ``n`` for one fold, as in ``pairsDevTrain.txt``), then for
each fold ``n`` same-person lines ``name<TAB>i<TAB>j`` followed by ``n`` different-person lines
``name1<TAB>i<TAB>name2<TAB>j``. Image ``i`` of ``name`` is ``name/name_%04d.jpg``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from ..errors import PartialFaceError


@dataclass(frozen=True)
class Pair:
    """One verification pair: image paths relative to the image root, same-person flag, 1-based fold."""

    path_a: str
    path_b: str
    issame: bool
    fold: int

    @property
    def name_a(self) -> str:
        """Person of the first image (its folder name)."""
        return self.path_a.split("/", 1)[0]

    @property
    def name_b(self) -> str:
        """Person of the second image (its folder name)."""
        return self.path_b.split("/", 1)[0]


def lfw_image_path(name: str, number: int) -> str:
    """Relative path of image ``number`` (1-based) of ``name``: ``name/name_%04d.jpg``."""
    return f"{name}/{name}_{number:04d}.jpg"


def _positive_int(text: str, where: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise PartialFaceError(f"{where}: {what} {text!r} is not an integer") from None
    if value < 1:
        raise PartialFaceError(f"{where}: {what} {value} must be >= 1")
    return value


def read_lfw_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Parse an LFW ``pairs.txt``; pairs come in file order with folds numbered from 1.

    Raises PartialFaceError naming the file and line number for a bad header, a line with the wrong number of
    fields for its section, a non-positive image number, a missing line or trailing non-blank lines.
    """
    name = os.fspath(path)
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\r\n") for line in handle]
    header = lines[0].split() if lines else []
    if len(header) not in (1, 2):
        raise PartialFaceError(
            f"{name}:1: expected header 'folds<TAB>pairs_per_half' or 'pairs', got {lines[:1]!r}"
        )
    if len(header) == 2:
        num_folds = _positive_int(header[0], f"{name}:1", "fold count")
        per_half = _positive_int(header[1], f"{name}:1", "pairs per half-fold")
    else:
        num_folds, per_half = 1, _positive_int(header[0], f"{name}:1", "pair count")

    pairs: list[Pair] = []
    line_index = 1
    for fold in range(1, num_folds + 1):
        for issame in (True, False):
            for _ in range(per_half):
                where = f"{name}:{line_index + 1}"
                if line_index >= len(lines):
                    raise PartialFaceError(
                        f"{where}: file ends early; header promises {num_folds} folds x {2 * per_half} pairs"
                    )
                fields = lines[line_index].split()
                line_index += 1
                if issame:
                    if len(fields) != 3:
                        raise PartialFaceError(
                            f"{where}: fold {fold} same-person line needs 'name i j', got {fields}"
                        )
                    person, first, second = fields
                    path_a = lfw_image_path(person, _positive_int(first, where, "image number"))
                    path_b = lfw_image_path(person, _positive_int(second, where, "image number"))
                else:
                    if len(fields) != 4:
                        raise PartialFaceError(
                            f"{where}: fold {fold} different-person line needs 'name1 i name2 j', got {fields}"
                        )
                    person_a, first, person_b, second = fields
                    path_a = lfw_image_path(person_a, _positive_int(first, where, "image number"))
                    path_b = lfw_image_path(person_b, _positive_int(second, where, "image number"))
                pairs.append(Pair(path_a, path_b, issame, fold))
    for extra in range(line_index, len(lines)):
        if lines[extra].strip():
            raise PartialFaceError(
                f"{name}:{extra + 1}: unexpected line after {num_folds} folds x {2 * per_half} pairs"
            )
    return pairs


def _check_folds(pairs: Sequence[Pair], folds: Iterable[int]) -> set[int]:
    wanted = set(folds)
    present = {pair.fold for pair in pairs}
    missing = wanted - present
    if missing:
        raise PartialFaceError(f"folds {sorted(missing)} are not in the pairs (folds present: {sorted(present)})")
    return wanted


def select_folds(pairs: Sequence[Pair], folds: Collection[int]) -> list[Pair]:
    """The pairs of the given folds, in their original order. Raises PartialFaceError for an absent fold."""
    wanted = _check_folds(pairs, folds)
    return [pair for pair in pairs if pair.fold in wanted]


def people_in_folds(pairs: Sequence[Pair], folds: Collection[int]) -> set[str]:
    """Names of everyone with an image in the given folds (to exclude them from training)."""
    wanted = _check_folds(pairs, folds)
    return {name for pair in pairs if pair.fold in wanted for name in (pair.name_a, pair.name_b)}
