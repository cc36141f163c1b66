"""InsightFace verification ``.bin`` files (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW).

A ``.bin`` is a pickle of ``(bins, issame)``: ``bins`` holds ``2N`` encoded images (JPEG/PNG bytes) and
pair ``i`` is ``(bins[2i], bins[2i + 1])`` with ``issame[i]`` telling whether both show one person.
Files written by Python 2 need ``pickle.load(..., encoding="bytes")``; :func:`read_bin` handles both.
Reading uses a restricted unpickler that only accepts the few types such files contain, so a ``.bin``
from elsewhere cannot run code.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import PartialFaceError
from .crop import CropSpec, decode_face, load_cropped_jpeg
from .pairs import Pair

# Globals a verification .bin may reference: bytes/bytearray reconstruction (Python 3 pickles with
# protocol <= 2 store bytes as _codecs.encode(text, "latin1")) and plain numpy arrays/scalars.
_ALLOWED_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
        ("__builtin__", "bytes"),
        ("__builtin__", "bytearray"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
    }
)


class _VerificationUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a verification .bin")
        return super().find_class(module, name)


def _as_bytes(item: Any) -> bytes | None:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if hasattr(item, "tobytes") and getattr(item, "dtype", None) is not None and item.dtype.itemsize == 1:
        return item.tobytes()
    return None


def read_bin(path: str | os.PathLike[str]) -> tuple[list[bytes], list[bool]]:
    """Read a verification ``.bin``: ``(2N encoded images, N same-person flags)``.

    Raises PartialFaceError naming the file when it is not such a pickle.
    """
    name = os.fspath(path)
    content: Any = None
    for encoding in ("ASCII", "bytes"):
        try:
            with open(path, "rb") as handle:
                content = _VerificationUnpickler(handle, encoding=encoding).load()
            break
        except UnicodeDecodeError:
            continue  # a Python 2 pickle with non-ASCII byte strings: retry with encoding="bytes"
        except (
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
            TypeError,
            ValueError,
        ) as error:
            raise PartialFaceError(f"{name} is not a readable verification .bin: {error}") from error
    if not isinstance(content, (tuple, list)) or len(content) != 2:
        raise PartialFaceError(f"{name}: expected a pickled (bins, issame) pair, got {type(content).__name__}")
    raw_bins, raw_issame = content
    bins = [_as_bytes(item) for item in raw_bins]
    bad = next((i for i, item in enumerate(bins) if item is None), None)
    if bad is not None:
        raise PartialFaceError(f"{name}: image {bad} is a {type(raw_bins[bad]).__name__}, not encoded bytes")
    issame = [bool(flag) for flag in raw_issame]
    if len(bins) != 2 * len(issame):
        raise PartialFaceError(f"{name}: {len(bins)} images for {len(issame)} pairs (expected {2 * len(issame)})")
    return bins, issame  # type: ignore[return-value]


def write_bin(path: str | os.PathLike[str], images_bytes: Sequence[bytes], issame: Sequence[bool]) -> None:
    """Write a verification ``.bin`` atomically (pickle protocol 4, readable by InsightFace's loaders)."""
    if len(images_bytes) != 2 * len(issame):
        raise PartialFaceError(f"{len(images_bytes)} images for {len(issame)} pairs (expected {2 * len(issame)})")
    bins = []
    for index, item in enumerate(images_bytes):
        if not isinstance(item, (bytes, bytearray)):
            raise PartialFaceError(f"image {index} is a {type(item).__name__}, not encoded bytes")
        bins.append(bytes(item))
    flags = [bool(flag) for flag in issame]
    with atomic_write(path, "wb") as handle:
        pickle.dump((bins, flags), handle, protocol=4)


def decode_bin_images(bins: Sequence[bytes], size: int = 112) -> torch.Tensor:
    """Decode encoded images to a float32 tensor (len(bins), 3, size, size) in [-1, 1].

    Images of another size are resized whole (no crop). Raises PartialFaceError naming the image index for an
    undecodable image.
    """
    resize = CropSpec(box=None, size=size)
    images = torch.empty((len(bins), 3, size, size), dtype=torch.float32)
    for index, data in enumerate(bins):
        images[index] = decode_face(data, resize, source=f"#{index} of the .bin images")
    return images


def pairs_to_bin(
    pairs: Sequence[Pair],
    images_root: str | os.PathLike[str],
    crop: CropSpec | None,
    out_path: str | os.PathLike[str],
    quality: int = 95,
) -> None:
    """Make a verification ``.bin`` from LFW-style pairs: each image is cropped and JPEG-encoded.

    Paths in the pairs are relative to ``images_root``. Raises PartialFaceError naming an unreadable image.
    """
    root = Path(images_root)
    bins: list[bytes] = []
    for pair in pairs:
        bins.append(load_cropped_jpeg(root / pair.path_a, crop, quality))
        bins.append(load_cropped_jpeg(root / pair.path_b, crop, quality))
    write_bin(out_path, bins, [pair.issame for pair in pairs])
