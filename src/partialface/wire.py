"""The wire format of the recognition service: one or several protected faces in one binary payload.

What a client sends to the server is only what PartialFace lets leave the device: the protected
channels of each face (never pixels, never the rank), plus what the server needs to refuse a payload
made for another deployment (the model id, the plan and scale fingerprints). Layout, all integers
little-endian:

==========  ======  ==============================================================================
bytes       type    content
==========  ======  ==============================================================================
0..3        4 B     magic ``b"PFCH"``
4..5        uint16  protocol version (:data:`PROTOCOL`)
6..9        uint32  header length ``L`` in bytes (at most ``limits.max_header_bytes``)
10..10+L    UTF-8   header JSON object, exactly the keys ``model``, ``plan``, ``scale`` (strings),
                    ``dtype`` (``"float16"`` or ``"float32"``) and ``shape`` ``[N, C, H, W]``
rest        raw     ``N*C*H*W`` values of ``dtype``, little-endian, C order; nothing after them
==========  ======  ==============================================================================

Why a custom binary and not JSON or ``.npz``: one face is 27x112x112 values, 1.35 MB as float32 and
677 kB as float16; JSON would triple that, and ``.npz`` is a zip container whose parser is a larger
attack surface than a fixed 10-byte prefix and a bounded JSON header. float16 halves the request; its
effect on templates is measured in ``benchmarks/service.py`` (docs/service.md).

Parsing is strict and every refusal is a :class:`WireError` whose one-line message says what is wrong
(wrong magic or version, header too long or not a JSON object, unknown or missing keys, a shape, dtype
or byte count that does not add up, NaN or infinity, too many faces); a payload over the size limit is
a :class:`PayloadTooLarge`. This module is the bottom layer: numpy and json only.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

from .errors import PartialFaceError

__all__ = [
    "MAGIC",
    "PROTOCOL",
    "MEDIA_TYPE",
    "DTYPES",
    "WireLimits",
    "Payload",
    "WireError",
    "PayloadTooLarge",
    "encode_payload",
    "decode_payload",
]

MAGIC = b"PFCH"
PROTOCOL = 1
MEDIA_TYPE = "application/vnd.partialface.protected"
DTYPES = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}

_PREFIX = struct.Struct("<4sHI")  # magic, protocol version, header length
_HEADER_KEYS = ("model", "plan", "scale", "dtype", "shape")
_MAX_ID_CHARS = 200  # model ids and fingerprints are short; a long one is garbage, not an id


class WireError(PartialFaceError):
    """A payload that is not a valid protected-faces payload (the server answers 422)."""


class PayloadTooLarge(WireError):
    """A payload over the configured size or face-count limit (the server answers 413)."""


@dataclass(frozen=True)
class WireLimits:
    """Bounds a parser enforces before it trusts anything in a payload.

    ``max_bytes`` bounds the whole payload (the server also refuses a larger ``Content-Length`` before
    reading the body); ``max_faces`` bounds ``N``; ``max_side`` and ``max_channels`` bound ``H, W`` and
    ``C`` so that a forged shape cannot ask for a huge allocation even when the byte count matches.
    """

    max_bytes: int = 48 * 1024 * 1024
    max_faces: int = 32
    max_header_bytes: int = 4096
    max_channels: int = 512
    max_side: int = 1024


@dataclass(frozen=True)
class Payload:
    """A decoded payload: the faces as float32 ``(N, C, H, W)`` and the deployment they were made for."""

    model: str
    plan: str
    scale: str
    dtype: str
    channels: np.ndarray

    @property
    def faces(self) -> int:
        return int(self.channels.shape[0])


def encode_payload(channels: np.ndarray, *, model: str, plan: str, scale: str, dtype: str = "float16") -> bytes:
    """Serialise protected faces ``(N, C, H, W)`` (or one face ``(C, H, W)``) for the wire.

    Faces already in ``dtype`` are not converted (numpy's float32 -> float16 cast is slow; a client
    holding torch tensors casts with torch first, see :meth:`ClientRecord.protect`). Raises :class:`WireError` when the values are not finite in ``dtype`` (a float32 value beyond
    float16's range, 65504, becomes infinity: send float32 then).
    """
    if dtype not in DTYPES:
        raise WireError(f"wire dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    array = np.asarray(channels)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or 0 in array.shape:
        raise WireError(f"protected faces must be a non-empty (N, C, H, W) array, got shape {array.shape}")
    if array.dtype.kind != "f":
        raise WireError(f"protected faces must hold floating-point values, got dtype {array.dtype}")
    with np.errstate(over="ignore"):  # an overflow becomes infinity, refused just below
        body = np.ascontiguousarray(array, dtype=DTYPES[dtype])
    if _nonfinite(body):
        raise WireError(f"protected faces hold NaN or infinite values as {dtype} (values beyond float16 need float32)")
    for name, value in (("model", model), ("plan", plan), ("scale", scale)):
        _check_id(name, value)
    header = json.dumps(
        {"model": model, "plan": plan, "scale": scale, "dtype": dtype, "shape": list(body.shape)},
        separators=(",", ":"),
    ).encode()
    return _PREFIX.pack(MAGIC, PROTOCOL, len(header)) + header + body.tobytes()


def decode_payload(data: bytes | bytearray | memoryview, limits: WireLimits = WireLimits()) -> Payload:
    """Parse and validate a payload; the returned channels are a fresh float32 array."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"payload is {len(data)} bytes, over the limit of {limits.max_bytes}")
    if len(data) < _PREFIX.size:
        raise WireError(f"payload is {len(data)} bytes, shorter than the {_PREFIX.size}-byte prefix")
    magic, version, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise WireError(f"payload starts with {magic!r}, not the magic {MAGIC!r} (not a protected-faces payload)")
    if version != PROTOCOL:
        raise WireError(f"payload protocol version {version} is not supported (this server speaks {PROTOCOL})")
    if header_len > limits.max_header_bytes:
        raise WireError(f"payload header is {header_len} bytes, over the limit of {limits.max_header_bytes}")
    body_start = _PREFIX.size + header_len
    if body_start > len(data):
        raise WireError(f"payload header claims {header_len} bytes but the payload ends before")
    header = _parse_header(data[_PREFIX.size : body_start], limits)
    shape = header["shape"]
    expected = math.prod(shape) * DTYPES[header["dtype"]].itemsize
    if len(data) - body_start != expected:
        raise WireError(
            f"payload body is {len(data) - body_start} bytes, but shape {shape} of {header['dtype']} needs {expected}"
        )
    values = np.frombuffer(data, dtype=DTYPES[header["dtype"]], offset=body_start).reshape(shape)
    bad = _nonfinite(values)
    if bad:
        raise WireError(f"payload holds {bad} NaN or infinite value(s)")
    channels = values.astype(np.float32)  # a native-endian copy the caller owns
    return Payload(header["model"], header["plan"], header["scale"], header["dtype"], channels)


def _nonfinite(values: np.ndarray) -> int:
    """How many NaN or infinite values; float16 is checked on its bits (numpy's float16 isfinite is
    software-emulated and ~50x slower): an all-ones exponent (0x7C00) is infinity or NaN."""
    if values.dtype.itemsize == 2:
        return int(np.count_nonzero((values.view("<u2") & 0x7C00) == 0x7C00))
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID_CHARS:
        raise WireError(f"payload {name} must be a non-empty string of at most {_MAX_ID_CHARS} characters, got {value!r:.80}")


def _parse_header(raw: bytes, limits: WireLimits) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError(f"payload header is not UTF-8 JSON: {err}") from None
    if not isinstance(header, dict):
        raise WireError(f"payload header must be a JSON object, got {type(header).__name__}")
    unknown = sorted(set(header) - set(_HEADER_KEYS))
    missing = [k for k in _HEADER_KEYS if k not in header]
    if unknown or missing:
        raise WireError(f"payload header keys must be {', '.join(_HEADER_KEYS)}; unknown: {unknown}, missing: {missing}")
    for name in ("model", "plan", "scale"):
        _check_id(name, header[name])
    if not isinstance(header["dtype"], str) or header["dtype"] not in DTYPES:
        raise WireError(f"payload dtype must be one of {', '.join(DTYPES)}, got {header['dtype']!r:.40}")
    shape = header["shape"]
    if not (isinstance(shape, list) and len(shape) == 4 and all(type(v) is int and v >= 1 for v in shape)):
        raise WireError(f"payload shape must be [N, C, H, W] of positive integers, got {shape!r:.80}")
    faces, chans, height, width = shape
    if faces > limits.max_faces:
        raise PayloadTooLarge(f"payload holds {faces} faces, over the limit of {limits.max_faces}")
    if chans > limits.max_channels or height > limits.max_side or width > limits.max_side:
        raise WireError(
            f"payload shape {shape} exceeds the limits (C <= {limits.max_channels}, H, W <= {limits.max_side})"
        )
    return header
