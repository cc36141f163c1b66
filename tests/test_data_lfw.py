"""Real-data checks of partialface.data against the LFW development copy in ../shared/data/lfw."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest

from partialface.data.crop import CropSpec, load_face
from partialface.data.pairs import people_in_folds, read_lfw_pairs

LFW_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"


@pytest.mark.lfw
def test_real_pairs_and_faces() -> None:
    if not (LFW_ROOT / "pairs.txt").is_file():
        pytest.skip(f"LFW development copy not found at {LFW_ROOT}")
    pairs = read_lfw_pairs(LFW_ROOT / "pairs.txt")
    folds = sorted({pair.fold for pair in pairs})
    assert folds == list(range(1, 9)) and len(pairs) == 8 * 600
    for fold in folds:
        in_fold = [pair for pair in pairs if pair.fold == fold]
        assert len(in_fold) == 600 and sum(pair.issame for pair in in_fold) == 300
    people = {fold: people_in_folds(pairs, [fold]) for fold in folds}
    assert all(not (people[a] & people[b]) for a, b in combinations(folds, 2))

    crop = CropSpec()
    for pair in pairs[::1200]:
        for relative in (pair.path_a, pair.path_b):
            face = load_face(LFW_ROOT / "images" / relative, crop)
            assert face.shape == (3, crop.size, crop.size)
            assert face.min() >= -1.0 and face.max() <= 1.0 and face.std() > 0.1
