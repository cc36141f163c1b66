"""Tests for partialface.data.verification_bin: InsightFace .bin read/write, decoding, pairs -> .bin."""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from partialface.data.crop import CropSpec, image_to_tensor
from partialface.data.pairs import Pair
from partialface.data.verification_bin import decode_bin_images, pairs_to_bin, read_bin, write_bin


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def random_images(count: int, side: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8) for _ in range(count)]


def python2_pickle(bins: list[bytes], issame: list[bool]) -> bytes:
    """The opcodes Python 2's cPickle (protocol 2) writes for (list of str, list of bool)."""
    out = [b"\x80\x02", b"]", b"("]  # PROTO 2, EMPTY_LIST, MARK
    for data in bins:
        out.append(b"T" + struct.pack("<I", len(data)) + data)  # BINSTRING: a Python 2 byte str
    out += [b"e", b"]", b"("]  # APPENDS, EMPTY_LIST, MARK
    out += [b"\x88" if flag else b"\x89" for flag in issame]  # NEWTRUE / NEWFALSE
    out += [b"e", b"\x86", b"."]  # APPENDS, TUPLE2, STOP
    return b"".join(out)


def test_write_read_round_trip_is_atomic(tmp_path: Path) -> None:
    bins = [png_bytes(image) for image in random_images(4, 8)]
    path = tmp_path / "set.bin"
    write_bin(path, bins, [True, False])
    assert read_bin(path) == (bins, [True, False])
    assert os.listdir(tmp_path) == ["set.bin"]


def test_reads_python2_pickles_with_non_ascii_byte_strings(tmp_path: Path) -> None:
    bins = [png_bytes(image) for image in random_images(2, 8)]
    assert any(byte >= 128 for byte in bins[0])
    path = tmp_path / "old.bin"
    path.write_bytes(python2_pickle(bins, [True]))
    assert read_bin(path) == (bins, [True])


def test_reads_protocol2_and_numpy_array_images(tmp_path: Path) -> None:
    bins = [png_bytes(image) for image in random_images(2, 8)]
    path = tmp_path / "p2.bin"
    with open(path, "wb") as handle:
        pickle.dump(([np.frombuffer(b, dtype=np.uint8) for b in bins], [np.bool_(False)]), handle, protocol=2)
    assert read_bin(path) == (bins, [False])


class _Exploit:
    def __reduce__(self) -> tuple:
        return (os.getcwd, ())


def test_bad_files_raise_value_error_naming_the_file(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.bin"
    hostile.write_bytes(pickle.dumps(([_Exploit()], [])))
    with pytest.raises(ValueError, match=r"hostile\.bin.*getcwd is not allowed"):
        read_bin(hostile)
    uneven = tmp_path / "uneven.bin"
    uneven.write_bytes(pickle.dumps(([b"a", b"b", b"c"], [True])))
    with pytest.raises(ValueError, match=r"uneven\.bin: 3 images for 1 pairs"):
        read_bin(uneven)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"junk\.bin"):
        read_bin(junk)
    with pytest.raises(ValueError, match="3 images for 1 pairs"):
        write_bin(tmp_path / "never.bin", [b"a", b"b", b"c"], [True])
    assert not (tmp_path / "never.bin").exists()


def test_decode_bin_images_exact_and_resized() -> None:
    images = random_images(2, 16)
    bins = [png_bytes(image) for image in images]
    decoded = decode_bin_images(bins, size=16)
    assert decoded.shape == (2, 3, 16, 16)
    assert torch.equal(decoded[1], image_to_tensor(Image.fromarray(images[1])))
    assert decode_bin_images(bins, size=8).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="#1 of the .bin images"):
        decode_bin_images([bins[0], b"broken"], size=16)


def test_pairs_to_bin_crops_and_encodes(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for name, image in zip(("Ann", "Ben"), random_images(2, 50)):
        (root / name).mkdir(parents=True)
        Image.fromarray(image).save(root / name / f"{name}_0001.jpg")
    pairs = [
        Pair("Ann/Ann_0001.jpg", "Ann/Ann_0001.jpg", True, 1),
        Pair("Ann/Ann_0001.jpg", "Ben/Ben_0001.jpg", False, 1),
    ]
    out = tmp_path / "dev.bin"
    pairs_to_bin(pairs, root, CropSpec(box=(5, 5, 45, 45), size=20), out)
    bins, issame = read_bin(out)
    assert issame == [True, False] and len(bins) == 4
    assert all(data[:2] == b"\xff\xd8" for data in bins)  # JPEG
    decoded = decode_bin_images(bins, size=20)
    assert decoded.shape == (4, 3, 20, 20) and decoded.abs().max() <= 1.0
    with pytest.raises(ValueError, match="Cid_0001.jpg"):
        pairs_to_bin([Pair("Cid/Cid_0001.jpg", "Ann/Ann_0001.jpg", False, 1)], root, None, tmp_path / "x.bin")
