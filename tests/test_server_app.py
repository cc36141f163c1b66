"""The HTTP API in process (FastAPI's test client): routes, API keys and scopes, refusals as RFC 9457
problems with the right status, decisions on real LFW faces, and the committed OpenAPI schema."""

from __future__ import annotations

import json

import numpy as np
import pytest

from partialface.client import ClientRecord
from partialface.server.app import openapi_schema
from partialface.wire import MEDIA_TYPE, WireLimits

from ._service_fixtures import README_STRANGERS, README_SUBJECT, Setup, lfw_people, lfw_person, problem
from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    s = Setup(tmp_path_factory.mktemp("app"))
    yield s
    s.gallery.close()


@pytest.fixture(scope="module")
def people():
    return lfw_people(min_photos=3, count=3)


# ----------------------------------------------------------------------------- health and model info
def test_health_ready_and_model_info(setup):
    assert setup.http.get("/healthz").json() == {"status": "ok"}
    ready = setup.http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == setup.deployed.id
    info = setup.http.get("/v1/model", headers=setup.auth("recognize")).json()
    assert info["model"].startswith("default@") and len(info["model"]) == len("default@") + 12
    assert info["plan_fingerprint"] == "8a0257a1e65a4c01" and info["input_shape"] == [27, 112, 112]
    assert set(info["thresholds"]) >= {"1e-3", "1e-4"} and info["thresholds"]["1e-4"] > info["thresholds"]["1e-3"]
    assert info["limits"]["max_faces"] == 32 and info["preparation"] == setup.deployed.preparation["kind"]


def test_client_record_route_gives_what_the_client_protects_with(setup):
    record = ClientRecord.from_dict(setup.http.get("/v1/model/client-record", headers=setup.auth("enroll")).json())
    assert record.plan == setup.deployed.model.encoder.plan and record.scale_fingerprint == setup.deployed.scale_fingerprint


# ----------------------------------------------------------------------------- keys and scopes
def test_missing_unknown_and_malformed_keys_are_401(setup):
    for headers in ({}, {"Authorization": "Bearer pfk_000000000000_" + "A" * 43}, {"X-API-Key": "nonsense"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        response = setup.http.get("/v1/subjects", headers=headers)
        problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_x_api_key_header_works_and_two_different_keys_are_refused(setup):
    assert setup.http.get("/v1/subjects", headers={"X-API-Key": setup.keys["recognize"]}).status_code == 200
    both = {**setup.auth("admin"), "X-API-Key": setup.keys["recognize"]}
    problem(setup.http.get("/v1/subjects", headers=both), 400, "two-keys")


@pytest.mark.parametrize("param", ["api_key", "key", "token", "access_token", "API_KEY"])
def test_a_key_in_the_url_is_refused(setup, param):
    response = setup.http.get("/v1/subjects", params={param: setup.keys["admin"]}, headers=setup.auth())
    assert "revoke" in problem(response, 400, "key-in-url")["detail"]
    problem(setup.http.get("/v1/model", params={param: setup.keys["admin"]}), 400, "key-in-url")


def test_scopes(setup, people):
    sent = setup.payload(setup.protect(people[0][:1]))
    problem(setup.post("/v1/subjects/scoped/templates", sent, "recognize", create="true"), 403, "forbidden")
    problem(setup.post("/v1/identify", sent, "enroll"), 403, "forbidden")
    problem(setup.http.delete("/v1/subjects/scoped", headers=setup.auth("recognize")), 403, "forbidden")
    assert setup.post("/v1/subjects/scoped/templates", sent, "enroll", create="true").status_code == 201
    assert setup.post("/v1/identify", sent, "recognize").status_code == 200
    for scope in ("recognize", "enroll"):
        assert setup.http.get("/v1/subjects/scoped", headers=setup.auth(scope)).status_code == 200
    assert setup.http.delete("/v1/subjects/scoped", headers=setup.auth("admin")).status_code == 200


def test_a_revoked_key_stops_working(setup):
    info, key = setup.gallery.keys.create("recognize", "short-lived")
    assert setup.http.get("/v1/subjects", headers={"X-API-Key": key}).status_code == 200
    setup.gallery.keys.revoke(info.id)
    problem(setup.http.get("/v1/subjects", headers={"X-API-Key": key}), 401)


# ----------------------------------------------------------------------------- payload refusals
def test_images_and_other_media_types_are_415(setup):
    jpeg = lfw_people(1, 1)[0][0].read_bytes()
    assert "never receives pixels" in problem(setup.post("/v1/identify", jpeg, content_type="image/jpeg"), 415,
                                               "image-refused")["detail"]
    problem(setup.post("/v1/identify", jpeg, content_type="image/png; q=1"), 415, "image-refused")
    problem(setup.post("/v1/identify", b"{}", content_type="application/json"), 415, "unsupported-media-type")
    problem(setup.post("/v1/identify", b"", content_type=""), 415)


@pytest.mark.parametrize("field,code", [("model", "model-mismatch"), ("plan", "plan-mismatch"), ("scale", "scale-mismatch")])
def test_a_payload_for_another_deployment_is_409(setup, field, code):
    sent = np.zeros((1, 27, 112, 112), np.float32)
    problem(setup.post("/v1/identify", setup.payload(sent, **{field: "other"})), 409, code)


def test_shape_dtype_values_and_size_refusals(setup):
    problem(setup.post("/v1/identify", setup.payload(np.zeros((1, 26, 112, 112), np.float32))), 422, "shape-mismatch")
    problem(setup.post("/v1/identify", setup.payload(np.zeros((1, 27, 96, 96), np.float32))), 422, "shape-mismatch")
    problem(setup.post("/v1/identify", setup.payload(np.zeros((2, 27, 112, 112), np.float32))), 422, "face-count")
    problem(setup.post("/v1/compare", setup.payload(np.zeros((1, 27, 112, 112), np.float32))), 422, "face-count")
    nan = bytearray(setup.payload(np.zeros((1, 27, 112, 112), np.float32)))
    nan[-2:] = np.array([np.nan], "<f2").tobytes()
    assert "NaN" in problem(setup.post("/v1/identify", bytes(nan)), 422, "payload-invalid")["detail"]
    problem(setup.post("/v1/identify", b"PFCH" + b"\0" * 40), 422, "payload-invalid")
    many = setup.payload(np.zeros((33, 27, 4, 4), np.float32))
    problem(setup.post("/v1/subjects/x1/templates", many, create="true"), 413, "payload-too-large")


def test_bodies_over_the_limit_are_413_before_and_while_reading(tmp_path):
    small = Setup(tmp_path, WireLimits(max_bytes=4096))
    try:
        problem(small.post("/v1/identify", b"\0" * 5000), 413, "payload-too-large")

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b"\0" * 1000

        response = small.http.post("/v1/identify", content=chunks(), headers={**small.auth(), "Content-Type": MEDIA_TYPE})
        problem(response, 413, "payload-too-large")
        problem(small.http.post("/v1/subjects", content=b"{" * 5000,
                                 headers={**small.auth(), "Content-Type": "application/json"}), 413)
    finally:
        small.gallery.close()


# ----------------------------------------------------------------------------- subjects and templates
def test_subject_life_cycle(setup, people):
    created = setup.http.post("/v1/subjects", json={"name": "cycle-1", "metadata": {"team": "a"}}, headers=setup.auth())
    assert created.status_code == 201 and created.json()["templates"] == 0
    problem(setup.http.post("/v1/subjects", json={"name": "cycle-1"}, headers=setup.auth()), 409, "subject-exists")
    problem(setup.http.post("/v1/subjects", json={"name": "../etc"}, headers=setup.auth()), 422, "validation")
    problem(setup.http.post("/v1/subjects", json={"name": "ok", "extra": 1}, headers=setup.auth()), 422, "validation")
    added = setup.post("/v1/subjects/cycle-1/templates", setup.payload(setup.protect(people[0][:2])))
    assert added.status_code == 201 and len(added.json()["template_ids"]) == 2
    subject = setup.http.get("/v1/subjects/cycle-1", headers=setup.auth()).json()
    assert subject["templates"] == 2 and subject["metadata"] == {"team": "a"}
    first = added.json()["template_ids"][0]
    assert setup.http.delete(f"/v1/subjects/cycle-1/templates/{first}", headers=setup.auth()).status_code == 204
    problem(setup.http.delete(f"/v1/subjects/cycle-1/templates/{first}", headers=setup.auth()), 404, "template-not-found")
    assert setup.http.delete("/v1/subjects/cycle-1", headers=setup.auth()).json() == {"subject": "cycle-1", "templates_deleted": 1}
    problem(setup.http.get("/v1/subjects/cycle-1", headers=setup.auth()), 404, "subject-not-found")
    problem(setup.http.delete("/v1/subjects/cycle-1", headers=setup.auth()), 404, "subject-not-found")


def test_adding_to_an_unknown_subject_needs_create(setup, people):
    sent = setup.payload(setup.protect(people[0][:1]))
    problem(setup.post("/v1/subjects/nobody-yet/templates", sent), 404, "subject-not-found")
    assert setup.post("/v1/subjects/nobody-yet/templates", sent, create="true").status_code == 201
    setup.http.delete("/v1/subjects/nobody-yet", headers=setup.auth())


def test_listing_pages_and_validates(setup):
    for name in ("page-a", "page-b", "page-c"):
        setup.http.post("/v1/subjects", json={"name": name}, headers=setup.auth())
    names = [s["name"] for s in setup.http.get("/v1/subjects", params={"limit": 2, "offset": 1}, headers=setup.auth()).json()["subjects"]]
    assert len(names) == 2
    problem(setup.http.get("/v1/subjects", params={"limit": 0}, headers=setup.auth()), 422, "validation")
    problem(setup.http.get("/v1/subjects", params={"offset": "x"}, headers=setup.auth()), 422, "validation")
    for name in ("page-a", "page-b", "page-c"):
        setup.http.delete(f"/v1/subjects/{name}", headers=setup.auth())


# ----------------------------------------------------------------------------- decisions on real faces
def test_verify_identify_compare_on_lfw_faces(setup):
    alice = lfw_person(README_SUBJECT, 6)
    bob, carol = (lfw_person(name, 4) for name in README_STRANGERS)
    assert setup.post("/v1/subjects/alice/templates", setup.payload(setup.protect(alice[:4])), create="true").status_code == 201
    assert setup.post("/v1/subjects/bob/templates", setup.payload(setup.protect(bob)), create="true").status_code == 201
    query = setup.payload(setup.protect(alice[4:5]))  # a photo of alice that was not enrolled
    verdict = setup.post("/v1/subjects/alice/verify", query, "recognize").json()
    assert verdict["match"] is True and verdict["threshold"] == setup.thresholds.at()[1] and verdict["far"] == "1e-3"
    assert setup.post("/v1/subjects/bob/verify", query, "recognize").json()["match"] is False
    found = setup.post("/v1/identify", query, "recognize", top_k=2).json()
    assert [c["subject"] for c in found["candidates"]] == ["alice"]
    stranger = setup.payload(setup.protect(carol[:1]))
    assert setup.post("/v1/identify", stranger, "recognize").json()["candidates"] == []  # open set: unknown
    closed = setup.post("/v1/identify", stranger, "recognize", open_set="false", top_k=2).json()["candidates"]
    assert len(closed) == 2 and not any(c["match"] for c in closed) and closed[0]["score"] >= closed[1]["score"]
    # compare: one photo under two random ranks is a match, two people are not
    same = setup.post("/v1/compare", setup.payload(setup.protect([alice[5], alice[5]])), "recognize").json()
    other = setup.post("/v1/compare", setup.payload(setup.protect([alice[5], carol[0]])), "recognize").json()
    assert same["match"] and not other["match"] and same["score"] > other["score"]
    strict = setup.post("/v1/subjects/alice/verify", query, "recognize", far="1e-4").json()
    assert strict["far"] == "1e-4" and strict["threshold"] == setup.thresholds.at("1e-4")[1]
    problem(setup.post("/v1/subjects/alice/verify", query, "recognize", far="0.5"), 422)
    problem(setup.post("/v1/subjects/nobody/verify", query, "recognize"), 404, "subject-not-found")


def _vectors(value, found):
    """Every list of >= 64 numbers anywhere in a JSON value."""
    if isinstance(value, list):
        if len(value) >= 64 and all(isinstance(v, (int, float)) for v in value):
            found.append(value)
        for v in value:
            _vectors(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _vectors(v, found)
    return found


def test_no_route_returns_a_template(setup, people):
    sent = setup.protect(people[1][:2])
    answers = [setup.post("/v1/subjects/leak/templates", setup.payload(sent), create="true").json(),
               setup.post("/v1/subjects/leak/verify", setup.payload(sent[:1]), "recognize").json(),
               setup.post("/v1/identify", setup.payload(sent[:1]), "recognize", open_set="false").json(),
               setup.post("/v1/compare", setup.payload(sent), "recognize").json()]
    answers += [setup.http.get(path, headers=setup.auth()).json()
                for path in ("/v1/subjects", "/v1/subjects/leak", "/v1/model", "/readyz")]
    assert _vectors(answers, []) == []
    setup.http.delete("/v1/subjects/leak", headers=setup.auth())


def test_deleting_a_subject_erases_its_templates_from_the_database_file(setup, people):
    setup.post("/v1/subjects/erase-me/templates", setup.payload(setup.protect(people[2][:1])), create="true")
    template = setup.gallery.subject_templates("erase-me")[0].astype("<f4").tobytes()
    assert setup.http.delete("/v1/subjects/erase-me", headers=setup.auth()).status_code == 200
    files = [setup.db, setup.db.with_name(setup.db.name + "-wal")]
    assert not any(template[:64] in f.read_bytes() for f in files if f.exists())


# ----------------------------------------------------------------------------- errors and schema
def test_unknown_routes_and_methods_are_problems(setup):
    problem(setup.http.get("/v2/anything"), 404, "not-found")
    problem(setup.http.put("/v1/identify", headers=setup.auth()), 405, "method-not-allowed")


def test_openapi_is_served_and_the_committed_copy_is_current(setup):
    served = setup.http.get("/openapi.json").json()
    assert served == openapi_schema()
    committed = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
    assert committed == served, "docs/openapi.json is stale: partialface serve --write-openapi docs/openapi.json"
    assert {"/v1/identify", "/v1/compare", "/v1/subjects/{name}/verify", "/healthz", "/readyz"} <= set(served["paths"])
    body = served["paths"]["/v1/identify"]["post"]["requestBody"]["content"]
    assert list(body) == [MEDIA_TYPE]


def test_readyz_is_503_when_the_gallery_is_gone(tmp_path):
    broken = Setup(tmp_path)
    broken.gallery.close()
    body = problem(broken.http.get("/readyz"), 503, "not-ready")
    assert "Traceback" not in body["detail"]


def test_the_private_model_serves_nine_channel_queries(tmp_path):
    """``serve --model private``: the plan docs/frontier.md recommends, end to end on real faces (9 channels)."""
    from partialface.plan import ChannelPlan

    private = Setup(tmp_path, model="private")
    try:
        info = private.http.get("/v1/model", headers=private.auth("recognize")).json()
        assert info["model"].startswith("private@") and info["input_shape"] == [9, 112, 112]
        assert info["plan_fingerprint"] == ChannelPlan.preset("private").fingerprint
        alice, bob = lfw_person(README_SUBJECT, 6), lfw_person(README_STRANGERS[0], 4)
        for name, photos in (("alice", alice[:4]), ("bob", bob)):
            sent = private.protect(photos)
            assert sent.shape == (len(photos), 9, 112, 112)
            assert private.post(f"/v1/subjects/{name}/templates", private.payload(sent), create="true").status_code == 201
        query = private.payload(private.protect(alice[4:5]))  # a photo of alice that was not enrolled
        mine = private.post("/v1/subjects/alice/verify", query, "recognize").json()
        theirs = private.post("/v1/subjects/bob/verify", query, "recognize").json()
        assert mine["score"] > theirs["score"] and not theirs["match"]
        closed = private.post("/v1/identify", query, "recognize", open_set="false", top_k=2).json()["candidates"]
        assert [c["subject"] for c in closed] == ["alice", "bob"]
        # a query protected with the published plan (27 channels) is not this deployment's
        published = private.payload(np.zeros((1, 27, 112, 112), np.float32), plan=ChannelPlan.preset("tface").fingerprint)
        problem(private.post("/v1/identify", published, "recognize"), 409, "plan-mismatch")
    finally:
        private.gallery.close()
