"""Tests for partialface.data.recordio: InsightFace .rec/.idx without MXNet."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from partialface.data.crop import CropSpec, image_to_tensor
from partialface.data.recordio import (
    RECORDIO_MAGIC,
    RecordIODataset,
    RecordIOReader,
    frame_record,
    pack_image_record,
    read_idx,
    unpack_image_record,
    write_recordio,
)

MAGIC = struct.pack("<I", RECORDIO_MAGIC)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8) for _ in range(5)]


@pytest.fixture()
def packed(tmp_path: Path, images: list[np.ndarray]) -> tuple[Path, Path]:
    """Five images, labels deliberately unsorted; label 1 has no image."""
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    files = []
    for number, image in enumerate(images):
        path = tmp_path / f"face{number}.png"
        Image.fromarray(image).save(path)
        files.append(path)
    write_recordio(
        rec, idx, [(files[0], 2), (files[1], 0), (png_bytes(images[2]), 2), (files[3], 0), (files[4], 3)]
    )
    return rec, idx


def test_round_trip_follows_the_insightface_layout(
    packed: tuple[Path, Path], images: list[np.ndarray]
) -> None:
    rec, idx = packed
    offsets = read_idx(idx)
    assert list(offsets) == list(range(10))  # record 0, 5 images, 4 identity records
    reader = RecordIOReader(rec, idx)
    header0, _ = unpack_image_record(reader.read(0))
    assert header0.flag == 2 and header0.extra_labels == (6.0, 10.0)
    identity_ranges = [unpack_image_record(reader.read(key))[0].extra_labels for key in range(6, 10)]
    assert identity_ranges == [(1.0, 3.0), (0.0, 0.0), (3.0, 5.0), (5.0, 6.0)]

    dataset = RecordIODataset(rec, idx)
    assert dataset.keys == [1, 2, 3, 4, 5] and len(dataset) == 5
    expected = [(images[1], 0), (images[3], 0), (images[0], 2), (images[2], 2), (images[4], 3)]  # stable sort
    for index, (array, label) in enumerate(expected):
        tensor, got_label = dataset[index]
        assert got_label == label
        assert torch.equal(tensor, image_to_tensor(Image.fromarray(array)))


def test_crop_repeat_and_pickling(packed: tuple[Path, Path]) -> None:
    dataset = RecordIODataset(*packed, crop=CropSpec(box=(2, 2, 10, 10), size=4), repeat=2)
    assert len(dataset) == 10
    assert dataset[7][0].shape == (3, 4, 4)
    assert torch.equal(dataset[7][0], dataset[2][0])
    copy = pickle.loads(pickle.dumps(dataset))  # the open file handle is not part of the state
    assert torch.equal(copy[3][0], dataset[3][0])


def test_dataloader_workers_and_reproducible_flips(packed: tuple[Path, Path]) -> None:
    dataset = RecordIODataset(*packed, flip=True, repeat=8)
    dataset[0]  # open the file in the parent before workers fork

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(11)
        batches = list(DataLoader(dataset, batch_size=8, num_workers=2))
        return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])

    first_images, first_labels = run()
    second_images, second_labels = run()
    assert torch.equal(first_images, second_images) and torch.equal(first_labels, second_labels)
    assert first_labels.tolist() == [0, 0, 2, 2, 3] * 8
    unflipped = torch.stack([RecordIODataset(*packed)[i][0] for i in range(5)]).repeat(8, 1, 1, 1)
    flipped = torch.tensor([torch.equal(a, b.flip(-1)) for a, b in zip(first_images, unflipped)])
    same = torch.tensor([torch.equal(a, b) for a, b in zip(first_images, unflipped)])
    assert torch.all(flipped | same) and flipped.any() and same.any()


def test_payloads_containing_the_magic_are_split_and_joined(tmp_path: Path) -> None:
    payload = pack_image_record(4.0, MAGIC + b"abcd" + MAGIC + b"xy" + MAGIC + b"z")
    # header is 24 bytes: magic at offsets 24 and 32 is aligned, at 38 it is not
    framed = frame_record(payload)
    flags = []
    position = 0
    while position < len(framed):
        magic, lrec = struct.unpack_from("<II", framed, position)
        assert magic == RECORDIO_MAGIC
        flags.append(lrec >> 29)
        position += 8 + (lrec & (2**29 - 1)) + (-(lrec & (2**29 - 1)) % 4)
    assert flags == [1, 2, 3] and len(framed) % 4 == 0
    rec, idx = tmp_path / "m.rec", tmp_path / "m.idx"
    rec.write_bytes(frame_record(b"first") + framed)
    idx.write_text(f"0\t0\n1\t{len(frame_record(b'first'))}\n")
    assert RecordIOReader(rec, idx).read(1) == payload


def test_index_without_header_record_uses_every_key(tmp_path: Path, images: list[np.ndarray]) -> None:
    rec, idx = tmp_path / "plain.rec", tmp_path / "plain.idx"
    records = [
        frame_record(pack_image_record([7.0, 1.0], png_bytes(images[0]), 3)),
        frame_record(pack_image_record(5.0, png_bytes(images[1]), 9)),
    ]
    rec.write_bytes(b"".join(records))
    idx.write_text(f"9\t{len(records[0])}\n3\t0\n")
    dataset = RecordIODataset(rec, idx)
    assert dataset.keys == [3, 9]
    assert [dataset[0][1], dataset[1][1]] == [7, 5]


def test_broken_files_raise_clear_errors(tmp_path: Path, packed: tuple[Path, Path]) -> None:
    rec, idx = packed
    bad_idx = tmp_path / "bad.idx"
    bad_idx.write_text("0\t0\n1 x\n")
    with pytest.raises(ValueError, match=r"bad\.idx:2: expected 'key<TAB>offset'"):
        read_idx(bad_idx)
    bad_idx.write_text("0\t4\n")
    with pytest.raises(ValueError, match=r"train\.rec record 0: no RecordIO magic at byte 4"):
        RecordIOReader(rec, bad_idx).read(0)
    continuation = tmp_path / "cont.rec"
    continuation.write_bytes(struct.pack("<II", RECORDIO_MAGIC, (2 << 29) | 4) + b"abcd")
    bad_idx.write_text("5\t0\n")
    with pytest.raises(ValueError, match=r"cont\.rec record 5: part flag 2 at byte 0 where a record start"):
        RecordIOReader(continuation, bad_idx).read(5)
    truncated = tmp_path / "short.rec"
    truncated.write_bytes(rec.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"short\.rec record 1: file ends inside the record at byte 40"):
        RecordIODataset(truncated, idx)[0]
    with pytest.raises(ValueError, match="must be an int"):
        write_recordio(tmp_path / "x.rec", tmp_path / "x.idx", [(b"data", -1)])
    with pytest.raises(ValueError, match="missing.png"):
        write_recordio(tmp_path / "x.rec", tmp_path / "x.idx", [(tmp_path / "missing.png", 0)])
    assert not (tmp_path / "x.rec").exists() and not (tmp_path / "x.idx").exists()
