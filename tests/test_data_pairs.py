"""Tests for partialface.data.pairs: parsing LFW pairs.txt and selecting folds."""

from __future__ import annotations

from pathlib import Path

import pytest

from partialface.data.pairs import Pair, lfw_image_path, people_in_folds, read_lfw_pairs, select_folds

TWO_FOLDS = """2\t2
Ann\t1\t2
Ben\t3\t1
Ann\t1\tBen\t2
Cid\t4\tBen\t1
Dee\t1\t2
Eve\t1\t2
Dee\t2\tFay\t1
Eve\t1\tGus\t3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    return path


def test_parse_two_folds(tmp_path: Path) -> None:
    pairs = read_lfw_pairs(write(tmp_path, TWO_FOLDS))
    assert len(pairs) == 8
    assert pairs[0] == Pair("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True, 1)
    assert pairs[3] == Pair("Cid/Cid_0004.jpg", "Ben/Ben_0001.jpg", False, 1)
    assert [pair.fold for pair in pairs] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [pair.issame for pair in pairs] == [True, True, False, False] * 2
    assert (pairs[6].name_a, pairs[6].name_b) == ("Dee", "Fay")
    assert lfw_image_path("Gus", 12) == "Gus/Gus_0012.jpg"


def test_single_count_header_is_one_fold(tmp_path: Path) -> None:
    pairs = read_lfw_pairs(write(tmp_path, "1\nAnn 1 2\nAnn 1 Ben 2\n"))
    assert [(pair.issame, pair.fold) for pair in pairs] == [(True, 1), (False, 1)]


def test_select_folds_and_people(tmp_path: Path) -> None:
    pairs = read_lfw_pairs(write(tmp_path, TWO_FOLDS))
    assert select_folds(pairs, [2]) == pairs[4:]
    assert people_in_folds(pairs, {1}) == {"Ann", "Ben", "Cid"}
    assert people_in_folds(pairs, [1, 2]) == {"Ann", "Ben", "Cid", "Dee", "Eve", "Fay", "Gus"}
    with pytest.raises(ValueError, match=r"folds \[3\] are not in the pairs"):
        select_folds(pairs, [2, 3])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"pairs\.txt:1: expected header"),
        ("2\tx\n", r"pairs\.txt:1: pairs per half-fold 'x' is not an integer"),
        ("1\t1\nAnn\t1\nAnn\t1\tBen\t2\n", r"pairs\.txt:2: fold 1 same-person line"),
        ("1\t1\nAnn\t1\t2\nAnn\t1\t2\n", r"pairs\.txt:3: fold 1 different-person line"),
        ("1\t1\nAnn\t0\t2\nAnn\t1\tBen\t2\n", r"pairs\.txt:2: image number 0 must be >= 1"),
        ("2\t1\nAnn\t1\t2\nAnn\t1\tBen\t2\n", r"pairs\.txt:4: file ends early"),
        ("1\t1\nAnn\t1\t2\nAnn\t1\tBen\t2\nextra\n", r"pairs\.txt:4: unexpected line"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_lfw_pairs(write(tmp_path, text))
