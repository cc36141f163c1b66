"""Fuzzing the HTTP API: malformed payloads, headers, parameters and paths (drawn by hypothesis, some
from the committed OpenAPI schema) always get a 4xx problem document, never a 500 or a traceback."""

from __future__ import annotations

import json
import os
import struct
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partialface.server.thresholds import Thresholds
from partialface.wire import MAGIC, MEDIA_TYPE, PROTOCOL

from ._service_fixtures import Setup, problem
from .conftest import REPO_ROOT

# Derandomised (the same examples on every run, so CI does not flake) and no example database in the
# repository; PARTIALFACE_FUZZ_EXAMPLES=5000 runs a longer, still reproducible, search.
FUZZ = settings(max_examples=int(os.environ.get("PARTIALFACE_FUZZ_EXAMPLES", 100)), deadline=None, derandomize=True,
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PAYLOAD_ROUTES = ["/v1/identify", "/v1/compare", "/v1/subjects/fuzz/verify", "/v1/subjects/fuzz/templates?create=true"]
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | ascii_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(ascii_text, inner, max_size=5),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    s = Setup(tmp_path_factory.mktemp("fuzz"), thresholds=Thresholds("x", {"1e-3": 0.5}, "1e-3"))
    s.http.post("/v1/subjects", json={"name": "fuzz"}, headers=s.auth())
    yield s
    s.gallery.close()


@st.composite
def payloads(draw) -> bytes:
    """Random bytes, or the wire format's frame with a mutated magic, version, header or body."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=3000))
    header = draw(st.one_of(
        json_values,
        st.fixed_dictionaries({
            "model": ascii_text | json_values, "plan": ascii_text, "scale": ascii_text,
            "dtype": st.sampled_from(["float16", "float32", "int8", "<f4"]) | json_values,
            "shape": st.lists(st.integers(-3, 2**40), max_size=5) | json_values,
        }),
    ))
    text = json.dumps(header).encode()
    magic = draw(st.sampled_from([MAGIC, b"PFCX", b"\x89PNG", b"\xff\xd8\xff\xe0"]))
    version = draw(st.sampled_from([PROTOCOL, 0, 2, 65535]))
    length = draw(st.sampled_from([len(text), 0, len(text) + 1, 2**32 - 1]))
    return struct.pack("<4sHI", magic, version, length) + text + draw(st.binary(max_size=3000))


@FUZZ
@given(route=st.sampled_from(PAYLOAD_ROUTES), body=payloads())
def test_malformed_payloads_get_4xx_problems(setup, route, body):
    response = setup.post(route, body)
    assert 400 <= response.status_code < 500, response.text
    problem(response, response.status_code)


@FUZZ
@given(
    route=st.sampled_from(["/v1/subjects", "/v1/model", "/v1/identify", "/v1/subjects/fuzz"]),
    method=st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
    headers=st.dictionaries(
        st.sampled_from(["Authorization", "X-API-Key", "Content-Type", "Accept", "X-Forwarded-For"]),
        ascii_text | st.builds(lambda k: f"Bearer {k}", ascii_text), max_size=4),
    query=st.dictionaries(ascii_text, ascii_text, max_size=3),
    body=st.binary(max_size=200),
)
def test_malformed_headers_and_queries_never_500(setup, route, method, headers, query, body):
    response = setup.http.request(method, route, headers=headers, params=query, content=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        problem(response, response.status_code)


def test_non_ascii_header_bytes_are_401(setup):
    for name in (b"x-api-key", b"authorization"):
        value = b"\xff\xfe\x00bad" if name == b"x-api-key" else b"Bearer \xe9\xe8"
        response = setup.http.get("/v1/subjects", headers=[(name, value.replace(b"\x00", b""))])
        problem(response, 401)


def _operations():
    schema = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
    return [(path, method.upper(), [p for p in op.get("parameters", []) if p["in"] in ("path", "query")])
            for path, item in schema["paths"].items() for method, op in item.items()]


@st.composite
def schema_requests(draw):
    """A request to an operation of the committed schema with drawn path and query parameters."""
    path, method, parameters = draw(st.sampled_from(_operations()))
    query = {}
    for parameter in parameters:
        value = draw(ascii_text | st.integers(-(2**65), 2**65).map(str) | st.sampled_from(["true", "0", "1e-3", ""]))
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", quote(value, safe="") or "x")
        elif draw(st.booleans()):
            query[parameter["name"]] = value
    body = draw(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
    content_type = draw(st.sampled_from([MEDIA_TYPE, "application/json", "image/jpeg", "text/plain"]))
    return method, path, query, body, content_type


@FUZZ
@given(request=schema_requests())
def test_every_documented_operation_survives_random_parameters(setup, request):
    method, path, query, body, content_type = request
    headers = {**setup.auth(), "Content-Type": content_type}
    response = setup.http.request(method, path, params=query, content=body, headers=headers)
    assert response.status_code < 500, f"{method} {path} {query}: {response.text}"
    if response.status_code >= 400:
        problem(response, response.status_code)
