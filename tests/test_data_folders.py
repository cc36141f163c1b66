"""Tests for partialface.data.folders: scanning identity folders, the dataset and TFace index files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from partialface.data.crop import CropSpec
from partialface.data.folders import (
    FaceFolderDataset,
    read_index_file,
    scan_identity_folders,
    write_index_file,
)


def make_identity_tree(root: Path, counts: dict[str, int], side: int = 40) -> Path:
    """Person folders of small PNGs whose left half is brighter than the right (flip is visible)."""
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for number in range(1, count + 1):
            array = rng.integers(0, 100, size=(side, side, 3), dtype=np.uint8)
            array[:, : side // 2] += 150
            Image.fromarray(array).save(root / name / f"{name}_{number:04d}.png")
    return root


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = make_identity_tree(tmp_path / "images", {"Carol": 2, "Alice": 1, "Bob": 3})
    (root / "Bob" / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    (root / "stray.png").write_bytes(b"")  # files directly under the root are ignored
    return root


def test_scan_labels_are_contiguous_in_sorted_name_order(tree: Path) -> None:
    samples, names = scan_identity_folders(tree)
    assert names == ["Alice", "Bob", "Carol"]
    assert [label for _, label in samples] == [0, 1, 1, 1, 2, 2]
    assert [path.name for path, _ in samples][1:4] == ["Bob_0001.png", "Bob_0002.png", "Bob_0003.png"]


def test_scan_filters_by_min_images_and_exclusion(tree: Path) -> None:
    result = scan_identity_folders(tree, min_images=2)
    assert result.class_names == ["Bob", "Carol"]
    assert sorted({label for _, label in result.samples}) == [0, 1]
    only_bob = scan_identity_folders(tree, min_images=2, exclude={"Carol"})
    assert only_bob.class_names == ["Bob"] and len(only_bob.samples) == 3
    with pytest.raises(ValueError, match=">= 4 images"):
        scan_identity_folders(tree, min_images=4)
    with pytest.raises(ValueError, match="not a directory"):
        scan_identity_folders(tree / "nobody")


def test_dataset_items_repeat_and_crop(tree: Path) -> None:
    samples, _ = scan_identity_folders(tree)
    dataset = FaceFolderDataset(samples, CropSpec(box=(4, 4, 36, 36), size=16), repeat=3)
    assert len(dataset) == 3 * len(samples)
    image, label = dataset[len(samples) + 2]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert label == samples[2][1]
    assert torch.equal(image, dataset[2][0])
    assert image.min() >= -1.0 and image.max() <= 1.0
    with pytest.raises(IndexError):
        dataset[len(dataset)]
    with pytest.raises(ValueError, match="repeat"):
        FaceFolderDataset(samples, repeat=0)


def test_cached_items_equal_decoded_ones_and_skip_the_file(tree: Path) -> None:
    samples, _ = scan_identity_folders(tree)
    crop = CropSpec(box=(4, 4, 36, 36), size=16)
    plain = FaceFolderDataset(samples, crop, repeat=2)
    cached = FaceFolderDataset(samples, crop, repeat=2, cache=True)
    for index in range(len(plain)):
        assert torch.equal(cached[index][0], plain[index][0])  # bit-exact, also the repeat's copy
        assert cached[index][1] == plain[index][1]
    assert len(cached.cache) == len(samples)
    assert all(t.dtype == torch.uint8 for t in cached.cache.values())
    before = cached[0][0]
    Path(samples[0][0]).unlink()  # a cached image is never read again
    assert torch.equal(cached[0][0], before)
    with pytest.raises(ValueError, match="cannot load face image"):
        plain[0]


def test_flip_is_random_and_reproducible_under_manual_seed(tree: Path) -> None:
    samples, _ = scan_identity_folders(tree)
    plain = FaceFolderDataset(samples[:1], None)[0][0]
    flipping = FaceFolderDataset(samples[:1], None, flip=True, repeat=40)

    def flips(seed: int) -> list[bool]:
        torch.manual_seed(seed)
        outcomes = []
        for index in range(len(flipping)):
            image = flipping[index][0]
            assert torch.equal(image, plain) or torch.equal(image, plain.flip(-1))
            outcomes.append(torch.equal(image, plain.flip(-1)))
        return outcomes

    first = flips(5)
    assert first == flips(5)
    assert any(first) and not all(first)


def test_index_file_round_trip(tree: Path, tmp_path: Path) -> None:
    samples, _ = scan_identity_folders(tree)
    index = tmp_path / "lists" / "train.txt"
    write_index_file(index, samples, tree)
    lines = index.read_text().splitlines()
    assert lines[0] == "Alice/Alice_0001.png\t0"
    assert read_index_file(index, tree) == samples


def test_index_file_errors_name_the_file_and_line(tree: Path, tmp_path: Path) -> None:
    index = tmp_path / "bad.txt"
    index.write_text("Alice/Alice_0001.png\t0\n\nBob/Bob_0001.png 1\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: expected 'path<TAB>label'"):
        read_index_file(index, tree)
    index.write_text("Alice/Alice_0001.png\tzero\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: label 'zero' is not an integer"):
        read_index_file(index, tree)
    index.write_text("Alice/Alice_0001.png\t-1\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: label -1 is negative"):
        read_index_file(index, tree)
    with pytest.raises(ValueError, match="not under the data root"):
        write_index_file(tmp_path / "out.txt", [(tmp_path / "elsewhere.png", 0)], tree)
    assert not (tmp_path / "out.txt").exists()


def test_find_images_is_the_one_definition_of_an_image_file(tmp_path: Path) -> None:
    from partialface.data import IMAGE_SUFFIXES, find_images
    from partialface.errors import PartialFaceError

    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.JPG", "a/b/two.png", "a/notes.txt", "a/.hidden.jpg", "three.webp"):
        (tmp_path / name).write_bytes(b"")
    root, files = find_images(tmp_path)
    assert root == tmp_path
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/b/two.png", "a/one.JPG", "three.webp"]
    assert find_images(tmp_path / "a" / "notes.txt") == (tmp_path / "a", [tmp_path / "a" / "notes.txt"])
    assert ".jpg" in IMAGE_SUFFIXES and ".txt" not in IMAGE_SUFFIXES
    (tmp_path / "empty").mkdir()
    with pytest.raises(PartialFaceError, match="empty: no images"):
        find_images(tmp_path / "empty")
    with pytest.raises(PartialFaceError, match="missing: no such file or folder"):
        find_images(tmp_path / "missing")
