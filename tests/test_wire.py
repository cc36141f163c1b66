"""The service's binary payload: round trips and every refusal, each with a message that says why."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from partialface.errors import PartialFaceError
from partialface.wire import (
    MAGIC,
    PROTOCOL,
    PayloadTooLarge,
    WireError,
    WireLimits,
    decode_payload,
    encode_payload,
)

IDS = {"model": "default@0123456789ab", "plan": "8a0257a1e65a4c01", "scale": "ffeeddccbbaa9988"}


def _faces(n=2, c=27, side=112, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, side, side)).astype(np.float32)


def _raw(header: dict, body: bytes, magic=MAGIC, version=PROTOCOL, header_len=None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<4sHI", magic, version, len(text) if header_len is None else header_len) + text + body


def _header(**over):
    return {**IDS, "dtype": "float32", "shape": [1, 3, 4, 4], **over}


@pytest.mark.parametrize("dtype,tol", [("float32", 0.0), ("float16", 1e-3)])
def test_round_trip_keeps_ids_shape_and_values(dtype, tol):
    faces = _faces()
    payload = decode_payload(encode_payload(faces, dtype=dtype, **IDS))
    assert (payload.model, payload.plan, payload.scale, payload.dtype) == (*IDS.values(), dtype)
    assert payload.channels.dtype == np.float32 and payload.channels.shape == faces.shape
    assert payload.faces == 2
    np.testing.assert_allclose(payload.channels, faces, rtol=tol, atol=tol * 4)


def test_one_face_and_the_size_of_float16():
    face = _faces(1)[0]
    data16, data32 = encode_payload(face, **IDS), encode_payload(face, dtype="float32", **IDS)
    assert decode_payload(data16).channels.shape == (1, 27, 112, 112)
    assert len(data32) - len(data16) == 27 * 112 * 112 * 2  # float16 halves the body, same header size


def test_errors_are_partialface_errors():
    assert issubclass(WireError, PartialFaceError) and issubclass(PayloadTooLarge, WireError)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "shorter than the 10-byte prefix"),
        (b"GIF89a" + b"\0" * 20, "not the magic"),
        (_raw(_header(), b"", version=PROTOCOL + 1), "protocol version 2 is not supported"),
        (_raw(_header(), b"", header_len=5000), "over the limit of 4096"),
        (_raw(_header(), b"", header_len=300), "payload ends before"),
        (struct.pack("<4sHI", MAGIC, PROTOCOL, 3) + b"\xff\xfe{", "not UTF-8 JSON"),
        (struct.pack("<4sHI", MAGIC, PROTOCOL, 2) + b"[]", "must be a JSON object"),
        (_raw({**_header(), "rank": 3}, b""), "unknown: ['rank']"),
        (_raw({k: v for k, v in _header().items() if k != "scale"}, b""), "missing: ['scale']"),
        (_raw(_header(dtype="int8"), b""), "dtype must be one of float16, float32"),
        (_raw(_header(dtype=["float32"]), b""), "dtype must be one of float16, float32"),  # found by the fuzz
        (_raw(_header(dtype={"a": 1}), b""), "dtype must be one of float16, float32"),
        (_raw(_header(shape=[1, 3, 4]), b""), "shape must be [N, C, H, W]"),
        (_raw(_header(shape=[1, 3, 4, 0]), b""), "shape must be [N, C, H, W]"),
        (_raw(_header(shape=[1, 3, 4.0, 4]), b""), "shape must be [N, C, H, W]"),
        (_raw(_header(shape=[1, 3, True, 4]), b""), "shape must be [N, C, H, W]"),
        (_raw(_header(shape=[1, 9999, 4, 4]), b""), "exceeds the limits"),
        (_raw(_header(model=""), b""), "model must be a non-empty string"),
        (_raw(_header(plan=7), b""), "plan must be a non-empty string"),
        (_raw(_header(), b"\0" * 10), "body is 10 bytes, but shape [1, 3, 4, 4] of float32 needs 192"),
        (_raw(_header(), b"\0" * 196), "body is 196 bytes"),
    ],
)
def test_malformed_payloads_are_refused_with_the_reason(data, message):
    with pytest.raises(WireError) as info:
        decode_payload(data)
    assert message in str(info.value)
    assert not isinstance(info.value, PayloadTooLarge)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(bad, dtype):
    body = np.zeros((1, 3, 4, 4), "<f4" if dtype == "float32" else "<f2")
    body[0, 1, 2, 3] = bad
    body[0, 0, 0, 0] = 65504 if dtype == "float16" else 3e38  # the largest finite values are fine
    with pytest.raises(WireError, match="1 NaN or infinite"):
        decode_payload(_raw(_header(dtype=dtype), body.tobytes()))
    with pytest.raises(WireError, match="NaN or infinite"):
        encode_payload(body, dtype=dtype, **IDS)


def test_float16_faces_are_sent_without_conversion():
    faces = _faces(1, 3, 8).astype(np.float16)
    payload = decode_payload(encode_payload(faces, **IDS))
    np.testing.assert_array_equal(payload.channels, faces.astype(np.float32))


def test_a_value_beyond_float16_needs_float32():
    face = np.full((3, 4, 4), 7e4, np.float32)
    with pytest.raises(WireError, match="beyond float16 need float32"):
        encode_payload(face, **IDS)
    assert decode_payload(encode_payload(face, dtype="float32", **IDS)).channels.max() == 7e4


def test_size_and_face_limits_are_payload_too_large():
    data = encode_payload(_faces(3, 3, 8), dtype="float32", **IDS)
    with pytest.raises(PayloadTooLarge, match="over the limit of 100"):
        decode_payload(data, WireLimits(max_bytes=100))
    with pytest.raises(PayloadTooLarge, match="3 faces, over the limit of 2"):
        decode_payload(data, WireLimits(max_faces=2))
    assert decode_payload(data, WireLimits(max_faces=3)).faces == 3


def test_encode_refuses_what_it_cannot_describe():
    with pytest.raises(WireError, match="non-empty"):
        encode_payload(np.zeros((2, 3)), **IDS)
    with pytest.raises(WireError, match="floating-point"):
        encode_payload(np.zeros((1, 3, 4, 4), np.uint8), **IDS)
    with pytest.raises(WireError, match="dtype must be one of"):
        encode_payload(_faces(1, 3, 4), dtype="bfloat16", **IDS)
    with pytest.raises(WireError, match="plan must be a non-empty"):
        encode_payload(_faces(1, 3, 4), **{**IDS, "plan": ""})


def test_decoded_channels_do_not_alias_the_request_bytes():
    data = bytearray(encode_payload(_faces(1, 3, 4), dtype="float32", **IDS))
    payload = decode_payload(data)
    before = payload.channels.copy()
    data[-64:] = b"\0" * 64  # the request buffer is reused: the decoded faces must not change
    np.testing.assert_array_equal(payload.channels, before)
    payload.channels[...] = 0  # and they are writable
