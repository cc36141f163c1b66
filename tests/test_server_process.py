"""The service as deployed: ``partialface serve`` in a child process, driven by the command-line
contract and the SDK. Restarts, SIGKILL in the middle of a batch enrolment, concurrent enrolments."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from partialface.client import Client, ServiceError
from partialface.errors import PartialFaceError
from partialface.gallery import open_gallery

from ._service_fixtures import README_STRANGERS, README_SUBJECT, cli, create_key, lfw_people, lfw_person, run_cli, running_server
from .test_gallery import store_url  # noqa: F401  (the SQLite and, when PARTIALFACE_TEST_POSTGRES is set, PostgreSQL stores)

pytestmark = pytest.mark.slow


def test_command_line_contract_end_to_end(tmp_path, monkeypatch):
    """The README's walk-through: a key, a server on SQLite, enroll from photos, verify, identify, delete.
    The server is a child process; the commands run in this process (cli) but one, to save start-ups."""
    alice, bob = lfw_person(README_SUBJECT, 7), lfw_person(README_STRANGERS[0], 1)
    gallery = f"sqlite:///{tmp_path / 'G.db'}"
    made = run_cli("keys", "create", "--gallery", gallery, "--scope", "admin", "--label", "readme")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]  # the contract: the key is the last line
    assert key.startswith("pfk_")
    status, listed, _ = cli("keys", "list", "--gallery", gallery)
    assert status == 0 and key.split("_")[1] in listed and "admin" in listed and key not in listed
    with running_server(gallery, tmp_path) as server:
        # Fixed rank draws: a decision near the threshold may flip with the rank (the README's photos are
        # ones whose decisions held under 150 random draws; tests/test_server_app.py checks them in process).
        client = ["client", "--server", server.url, "--key", key, "--seed", "13"]
        status, out, err = cli(*client, "enroll", "alice", *map(str, alice[:4]))
        assert status == 0 and "4 template(s)" in out, err
        status, out, err = cli(*client, "verify", "alice", str(alice[6]), "--json")
        assert status == 0, err
        answer = json.loads(out)
        assert answer["match"] is True and isinstance(answer["score"], float)
        monkeypatch.setenv("PARTIALFACE_API_KEY", key)  # the key from the environment instead of --key
        status, out, err = cli("client", "--server", server.url, "--seed", "13", "identify", str(alice[4]), "--json")
        assert status == 0, err
        assert [c["subject"] for c in json.loads(out)["candidates"]] == ["alice"]
        assert json.loads(cli(*client, "identify", str(bob[0]), "--json")[1])["candidates"] == []
        assert "no match: unknown face" in cli(*client, "identify", str(bob[0]))[1]
        assert json.loads(cli(*client, "compare", str(alice[0]), str(bob[0]), "--json")[1])["match"] is False
        assert [s["name"] for s in json.loads(cli(*client, "subjects", "--json")[1])] == ["alice"]
        status, out, _ = cli(*client, "delete", "alice")
        assert status == 0 and "deleted alice (4 template(s))" in out
        status, _, err = cli(*client, "verify", "alice", str(alice[2]))
        assert status == 2 and "HTTP 404" in err and "Traceback" not in err
        status, _, err = cli("client", "--server", server.url, "--key", "pfk_bad", "subjects")
        assert status == 2 and "HTTP 401" in err
        monkeypatch.setenv("PARTIALFACE_API_KEY", "")
        status, _, err = cli("client", "--server", server.url, "subjects")
        assert status == 2 and "PARTIALFACE_API_KEY" in err
    status, out, _ = cli("keys", "revoke", "--gallery", gallery, key.split("_")[1])
    assert status == 0 and "revoked" in cli("keys", "list", "--gallery", gallery)[1]


def test_serve_refuses_a_gallery_of_another_model_and_missing_thresholds(tmp_path):
    gallery = f"sqlite:///{tmp_path / 'other.db'}"
    with open_gallery(gallery) as store:
        store.bind_model("someone-else@000000000000", 512)
    status, _, err = cli("serve", "--gallery", gallery, "--port", "0")
    assert status == 2 and "someone-else@000000000000" in err
    status, _, err = cli("serve", "--gallery", f"sqlite:///{tmp_path / 'new.db'}", "--thresholds", str(tmp_path / "no.json"))
    assert status == 2 and "partialface calibrate" in err


def test_restart_keeps_every_enrolled_subject(tmp_path, store_url):
    people = lfw_people(min_photos=2, count=4, skip=10)
    gallery = store_url
    key = create_key(gallery)
    with running_server(gallery, tmp_path) as server:
        with Client(server.url, key, seed=1) as client:
            for i, photos in enumerate(people):
                client.enroll(f"person-{i}", photos[:1])
            before = client.subjects()
    with running_server(gallery, tmp_path) as server:  # the first one was killed with SIGKILL
        with Client(server.url, key, seed=2) as client:
            assert client.subjects() == before
            best = client.identify(people[2][1], top_k=1, open_set=False)["candidates"][0]
            assert best["subject"] == "person-2"


def _templates_by_subject(gallery_url: str) -> dict[str, int]:
    """Template counts per subject, read by a fresh connection (and SQLite's own integrity check)."""
    if gallery_url.startswith("sqlite:///"):
        with sqlite3.connect(gallery_url[len("sqlite:///"):]) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with open_gallery(gallery_url) as store:
        counts = {s.name: s.templates for s in store.list_subjects()}
        assert sum(counts.values()) == store.count()[1]
    return counts


def test_sigkill_during_a_batch_enrolment_leaves_each_batch_all_in_or_all_out(tmp_path, store_url):
    gallery = store_url
    key = create_key(gallery)
    photos = [p for person in lfw_people(min_photos=2, count=16, skip=20) for p in person[:2]][:32]
    outcomes = []
    for attempt, delay in enumerate((0.3, 1.0, 2.5)):
        with running_server(gallery, tmp_path) as server:
            with Client(server.url, key, seed=attempt) as client:
                if attempt == 0:
                    client.enroll("anchor", photos[:3])
                payload = client.encode(photos)  # 32 faces: one batch, one transaction
                errors = []

                def send():
                    try:
                        client.post_payload(f"/v1/subjects/batch-{attempt}/templates", payload, create=True)
                    except ServiceError as err:
                        errors.append(err)

                sender = threading.Thread(target=send)
                sender.start()
                time.sleep(delay)
                server.kill()  # SIGKILL, mid-request or just after
                sender.join(timeout=60)
        counts = _templates_by_subject(gallery)
        assert counts["anchor"] == 3
        assert counts.get(f"batch-{attempt}", 0) in (0, 32), counts  # never a partial batch
        outcomes.append(counts.get(f"batch-{attempt}", 0))
    with running_server(gallery, tmp_path) as server:  # and the store still serves after the kills
        with Client(server.url, key) as client:
            names = {s["name"]: s["templates"] for s in client.subjects()}
            assert names["anchor"] == 3 and all(names.get(f"batch-{i}", 0) == n for i, n in enumerate(outcomes))
            client.enroll("after", photos[:1])


def test_concurrent_enrolments_of_one_subject_all_land(tmp_path, store_url):
    gallery = store_url
    key = create_key(gallery, "enroll")
    photos = [person[0] for person in lfw_people(min_photos=1, count=8, skip=40)]
    with running_server(gallery, tmp_path) as server:
        clients = [Client(server.url, key, seed=i) for i in range(8)]
        try:
            payloads = [c.encode([p]) for c, p in zip(clients, photos)]
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(
                    lambda cp: cp[0].post_payload("/v1/subjects/crowd/templates", cp[1], create=True),
                    zip(clients, payloads)))
            ids = [i for r in results for i in r["template_ids"]]
            assert len(ids) == len(set(ids)) == 8
            assert [s["templates"] for s in clients[0].subjects() if s["name"] == "crowd"] == [8]
        finally:
            for c in clients:
                c.close()


def test_sdk_pinned_record_must_match_the_server(tmp_path):
    gallery = f"sqlite:///{tmp_path / 'G.db'}"
    key = create_key(gallery, "recognize")
    with running_server(gallery, tmp_path) as server:
        with Client(server.url, key) as client:
            record = client.record.to_dict()
        (tmp_path / "record.json").write_text(json.dumps(record))
        with Client(server.url, key, record=tmp_path / "record.json") as pinned:
            assert pinned.record.model == record["model"]
        (tmp_path / "stale.json").write_text(json.dumps({**record, "model": "default@000000000000"}))
        with Client(server.url, key, record=tmp_path / "stale.json") as stale:
            with pytest.raises(PartialFaceError, match="but the server at .* runs default@"):
                stale.record
            assert np.isfinite(stale.model_info()["thresholds"]["1e-3"])


def test_calibrate_never_replaces_an_existing_out_without_overwrite(tmp_path):
    """Checked before any embedding: a file already at --out (here a user's notes) is refused, unchanged."""
    notes = tmp_path / "notes.json"
    notes.write_text("mine\n")
    faces = tmp_path / "faces"
    status, _, err = cli("calibrate", "default", "--images", str(faces), "--out", str(notes))
    assert status == 2 and "--out" in err and str(notes) in err and "--overwrite" in err
    assert notes.read_text() == "mine\n"
