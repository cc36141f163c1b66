"""InsightFace ``train.rec`` / ``train.idx`` (MXNet RecordIO) reading and writing without MXNet.

File layout (as MXNet's ``recordio`` module and InsightFace's packing scripts write it):

* ``train.idx``: text lines ``key<TAB>byte offset`` into ``train.rec``.
* A record: uint32 magic ``0xced7230a``, uint32 ``lrec`` (continuation flag ``lrec >> 29``, length
  ``lrec & (2**29 - 1)``), ``length`` payload bytes, zero padding to a multiple of 4. The writer splits a
  payload at every 4-byte-aligned occurrence of the magic number (the magic is dropped and the parts get
  flags 1 = first, 2 = middle, 3 = last); the reader joins such parts back with the magic in between.
* An image payload: header ``<IfQQ`` (flag, label, id, id2), then ``flag`` float32 labels when
  ``flag > 0``, then the encoded image. An image's label is ``label`` or, when ``flag > 0``, the first
  extra label.
* Record 0 of an InsightFace set has ``flag > 0`` and extra labels ``(end, identity_end)``: images are
  keys ``1 .. end - 1``; keys ``end .. identity_end - 1`` are per-identity records whose extra labels give
  that identity's image key range. Without such a record 0 every key in the index is an image.
"""

from __future__ import annotations

import numbers
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

import torch
from torch.utils.data import Dataset

from ..atomic import atomic_write
from ..checks import check_int
from ..errors import PartialFaceError
from .augment import random_horizontal_flip
from .crop import CropSpec, decode_face, load_cropped_jpeg

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_FRAME_HEADER = struct.Struct("<II")
_LENGTH_BITS = 29
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
_IMAGE_HEADER = struct.Struct("<IfQQ")
_MAX_EXACT_LABEL = 1 << 24  # labels are stored as float32


class ImageRecordHeader(NamedTuple):
    """The header of an image payload; ``extra_labels`` has ``flag`` values when ``flag > 0``."""

    flag: int
    label: float
    id: int
    id2: int
    extra_labels: tuple[float, ...]

    @property
    def class_label(self) -> float:
        """The image's label: ``label``, or the first extra label when ``flag > 0``."""
        return self.extra_labels[0] if self.flag > 0 else self.label


def pack_image_record(
    label: float | Sequence[float], image: bytes, record_id: int = 0, id2: int = 0
) -> bytes:
    """Build an image payload; a sequence ``label`` is stored as ``flag = len(label)`` extra labels."""
    if isinstance(label, numbers.Real):
        return _IMAGE_HEADER.pack(0, float(label), record_id, id2) + image
    extra = [float(value) for value in cast(Sequence[float], label)]
    if not extra:
        raise PartialFaceError("a sequence label needs at least one value")
    header = _IMAGE_HEADER.pack(len(extra), 0.0, record_id, id2)
    return header + struct.pack(f"<{len(extra)}f", *extra) + image


def unpack_image_record(payload: bytes, source: str = "<record>") -> tuple[ImageRecordHeader, bytes]:
    """Split an image payload into its header and the encoded image bytes."""
    if len(payload) < _IMAGE_HEADER.size:
        raise PartialFaceError(f"{source}: payload of {len(payload)} bytes is shorter than the image header")
    flag, label, record_id, id2 = _IMAGE_HEADER.unpack_from(payload)
    start = _IMAGE_HEADER.size
    extra: tuple[float, ...] = ()
    if flag > 0:
        end = start + 4 * flag
        if len(payload) < end:
            raise PartialFaceError(f"{source}: header announces {flag} extra labels but the payload is too short")
        extra = struct.unpack_from(f"<{flag}f", payload, start)
        start = end
    return ImageRecordHeader(flag, label, record_id, id2, tuple(extra)), payload[start:]


def frame_record(payload: bytes) -> bytes:
    """Encode one payload as RecordIO bytes (split at aligned magic numbers, padded to 4 bytes)."""
    if len(payload) > _LENGTH_MASK:
        raise PartialFaceError(
            f"record payload of {len(payload)} bytes exceeds the RecordIO limit of {_LENGTH_MASK}"
        )
    chunks: list[bytes] = []
    part_start = 0
    search = 0
    while (hit := payload.find(_MAGIC_BYTES, search)) >= 0:
        if hit % 4:
            search = hit + 1
            continue
        flag = 2 if chunks else 1
        chunks += [
            _FRAME_HEADER.pack(RECORDIO_MAGIC, (flag << _LENGTH_BITS) | (hit - part_start)),
            payload[part_start:hit],
        ]
        part_start = search = hit + 4
    last_flag = 3 if chunks else 0
    tail = payload[part_start:]
    chunks += [
        _FRAME_HEADER.pack(RECORDIO_MAGIC, (last_flag << _LENGTH_BITS) | len(tail)),
        tail,
        b"\0" * (-len(tail) % 4),
    ]
    return b"".join(chunks)


def _read_framed(handle: IO[bytes], offset: int, source: str) -> bytes:
    """Read the record starting at ``offset``, joining multi-part records."""
    handle.seek(offset)
    parts: list[bytes] = []
    while True:
        position = handle.tell()
        head = handle.read(_FRAME_HEADER.size)
        if len(head) < _FRAME_HEADER.size:
            raise PartialFaceError(f"{source}: file ends inside a record header at byte {position}")
        magic, lrec = _FRAME_HEADER.unpack(head)
        if magic != RECORDIO_MAGIC:
            raise PartialFaceError(f"{source}: no RecordIO magic at byte {position} (found {magic:#010x})")
        flag, length = lrec >> _LENGTH_BITS, lrec & _LENGTH_MASK
        expected = (0, 1) if not parts else (2, 3)
        if flag not in expected:
            kind = "a record start" if not parts else "a continuation part"
            raise PartialFaceError(f"{source}: part flag {flag} at byte {position} where {kind} was expected")
        data = handle.read(length + (-length % 4))
        if len(data) < length:
            raise PartialFaceError(f"{source}: file ends inside the record at byte {position}")
        parts.append(data[:length])
        if flag in (0, 3):
            return _MAGIC_BYTES.join(parts)


def read_idx(path: str | os.PathLike[str]) -> dict[int, int]:
    """Read a ``.idx`` file into ``{key: byte offset}`` (file order). PartialFaceError names file and line."""
    offsets: dict[int, int] = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                if len(fields) != 2:
                    raise ValueError  # caught just below: one message for every malformed line
                key, offset = int(fields[0]), int(fields[1])
            except ValueError:
                raise PartialFaceError(
                    f"{os.fspath(path)}:{line_number}: expected 'key<TAB>offset' integers, got {line.rstrip()!r}"
                ) from None
            if key < 0 or offset < 0 or key in offsets:
                raise PartialFaceError(
                    f"{os.fspath(path)}:{line_number}: negative or repeated key/offset {key}, {offset}"
                )
            offsets[key] = offset
    return offsets


class RecordIOReader:
    """Random access to the payloads of a ``.rec`` file through its ``.idx``.

    The ``.rec`` file is opened lazily, once per process: a reader copied into a forked or spawned
    DataLoader worker opens its own handle instead of sharing the parent's file position.
    """

    def __init__(self, rec_path: str | os.PathLike[str], idx_path: str | os.PathLike[str]) -> None:
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path)
        if not self.rec_path.is_file():
            raise PartialFaceError(f"RecordIO file {os.fspath(rec_path)!r} does not exist")
        self.offsets = read_idx(idx_path)
        self._handle: IO[bytes] | None = None
        self._pid = -1

    def _file(self) -> IO[bytes]:
        if self._handle is None or self._pid != os.getpid():
            if self._handle is not None:
                self._handle.close()  # inherited through fork: its file position is shared with the parent
            self._handle = open(self.rec_path, "rb")  # noqa: SIM115 - kept open across reads, see close()
            self._pid = os.getpid()
        return self._handle

    def read(self, key: int) -> bytes:
        """The payload of record ``key``."""
        if key not in self.offsets:
            raise PartialFaceError(f"key {key} is not in the index {os.fspath(self.idx_path)!r}")
        return _read_framed(self._file(), self.offsets[key], f"{self.rec_path} record {key}")

    def close(self) -> None:
        """Close the file handle of this process (it is reopened on the next read)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        return state


class RecordIODataset(Dataset[tuple[torch.Tensor, int]]):
    """Face images and integer labels from an InsightFace ``train.rec`` / ``train.idx`` pair.

    Images are decoded to (3, H, W) float tensors in [-1, 1], cropped with ``crop`` when given (images
    already ``crop.size`` square pass through), optionally flipped left-right with probability 0.5.
    Item ``i`` is image ``keys[i % len(keys)]``; ``repeat`` copies of every image make one epoch.
    """

    def __init__(
        self,
        rec_path: str | os.PathLike[str],
        idx_path: str | os.PathLike[str],
        crop: CropSpec | None = None,
        flip: bool = False,
        repeat: int = 1,
    ) -> None:
        check_int("repeat", repeat, low=1)
        self.reader = RecordIOReader(rec_path, idx_path)
        self.crop = crop
        self.flip = flip
        self.repeat = repeat
        self.keys = self._image_keys()
        self.reader.close()  # workers open their own handles
        if not self.keys:
            raise PartialFaceError(f"{os.fspath(rec_path)!r} holds no image records")

    def _image_keys(self) -> list[int]:
        offsets = self.reader.offsets
        if 0 not in offsets:
            return sorted(offsets)
        header, _ = unpack_image_record(self.reader.read(0), f"{self.reader.rec_path} record 0")
        if header.flag == 0:
            return sorted(offsets)
        end = int(header.extra_labels[0])
        keys = list(range(1, end))
        missing = [key for key in keys if key not in offsets]
        if missing:
            raise PartialFaceError(
                f"{os.fspath(self.reader.idx_path)!r} lacks image keys {missing[:5]} announced by record 0 "
                f"(images 1..{end - 1})"
            )
        return keys

    def __len__(self) -> int:
        return self.repeat * len(self.keys)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        key = self.keys[index % len(self.keys)]
        source = f"{self.reader.rec_path} record {key}"
        header, image_bytes = unpack_image_record(self.reader.read(key), source)
        image = decode_face(image_bytes, self.crop, source)
        if self.flip:
            image = random_horizontal_flip(image)
        return image, int(header.class_label)


ImageSource = str | os.PathLike[str] | bytes


def write_recordio(
    rec_path: str | os.PathLike[str],
    idx_path: str | os.PathLike[str],
    samples: Sequence[tuple[ImageSource, int]],
    crop: CropSpec | None = None,
    quality: int = 95,
) -> None:
    """Pack ``(image, label)`` samples into an InsightFace-layout ``.rec`` / ``.idx`` pair (atomically).

    An image is a file path or encoded bytes. Bytes, and files when ``crop`` is None, are stored as they
    are; with a ``crop`` each file is cropped and re-encoded as JPEG. Samples are stored sorted by label
    (stable), after a record 0 and followed by one record per identity ``0 .. max label`` holding its
    image key range (``(0, 0)`` for a label without images), as InsightFace does.
    """
    if not samples:
        raise PartialFaceError("write_recordio needs at least one sample")
    checked: list[tuple[ImageSource, int]] = []
    for image, label in samples:
        if (
            isinstance(label, bool)
            or not isinstance(label, numbers.Integral)
            or not 0 <= label < _MAX_EXACT_LABEL
        ):
            raise PartialFaceError(f"label {label!r} of {image!r:.80} must be an int in [0, 2**24)")
        checked.append((image, int(label)))
    ordered = sorted(checked, key=lambda sample: sample[1])
    num_images = len(ordered)
    num_identities = ordered[-1][1] + 1
    first_identity_key = num_images + 1
    key_ranges: dict[int, tuple[int, int]] = {}  # label -> (first image key, last + 1); keys are contiguous
    for key, (_, label) in enumerate(ordered, start=1):
        key_ranges[label] = (key_ranges.get(label, (key, key))[0], key + 1)

    with atomic_write(rec_path, "wb") as rec_file, atomic_write(idx_path, "w") as idx_file:
        offset = 0

        def append(key: int, payload: bytes) -> None:
            nonlocal offset
            framed = frame_record(payload)
            idx_file.write(f"{key}\t{offset}\n")
            rec_file.write(framed)
            offset += len(framed)

        append(0, pack_image_record((first_identity_key, first_identity_key + num_identities), b""))
        for key, (image, label) in enumerate(ordered, start=1):
            append(key, pack_image_record(float(label), _encoded_image(image, crop, quality), key))
        for label in range(num_identities):
            identity_key = first_identity_key + label
            append(identity_key, pack_image_record(key_ranges.get(label, (0, 0)), b"", identity_key))


def _encoded_image(image: ImageSource, crop: CropSpec | None, quality: int) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if crop is not None:
        return load_cropped_jpeg(image, crop, quality)
    try:
        return Path(image).read_bytes()
    except OSError as error:
        raise PartialFaceError(f"cannot read image file {os.fspath(image)!r}: {error}") from error
