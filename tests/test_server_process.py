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

from ._service_fixtures import create_key, lfw_people, run_cli, running_server, subprocess_env

pytestmark = pytest.mark.slow


def test_command_line_contract_end_to_end(tmp_path):
    """The README's walk-through: a key, a server on SQLite, enroll from photos, verify, identify, delete."""
    alice, bob = lfw_people(min_photos=4, count=2)
    gallery = f"sqlite:///{tmp_path / 'G.db'}"
    made = run_cli("keys", "create", "--gallery", gallery, "--scope", "admin", "--label", "readme")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("pfk_")
    listed = run_cli("keys", "list", "--gallery", gallery)
    assert key.split("_")[1] in listed.stdout and "admin" in listed.stdout and key not in listed.stdout
    with running_server(gallery, tmp_path) as server:
        client = ["client", "--server", server.url, "--key", key]
        enrolled = run_cli(*client, "enroll", "alice", str(alice[0]), str(alice[1]))
        assert enrolled.returncode == 0 and "2 template(s)" in enrolled.stdout, enrolled.stderr
        verify = run_cli(*client, "verify", "alice", str(alice[2]), "--json")
        assert verify.returncode == 0, verify.stderr
        answer = json.loads(verify.stdout)
        assert answer["match"] is True and isinstance(answer["score"], float)
        # the key from the environment instead of --key
        env = subprocess_env(PARTIALFACE_API_KEY=key)
        found = run_cli("client", "--server", server.url, "identify", str(alice[3]), "--json", env=env)
        assert found.returncode == 0, found.stderr
        assert [c["subject"] for c in json.loads(found.stdout)["candidates"]] == ["alice"]
        unknown = json.loads(run_cli(*client, "identify", str(bob[0]), "--json").stdout)
        assert unknown["candidates"] == []
        assert "no match: unknown face" in run_cli(*client, "identify", str(bob[0])).stdout
        compare = json.loads(run_cli(*client, "compare", str(alice[0]), str(bob[0]), "--json").stdout)
        assert compare["match"] is False
        subjects = run_cli(*client, "subjects", "--json")
        assert [s["name"] for s in json.loads(subjects.stdout)] == ["alice"]
        deleted = run_cli(*client, "delete", "alice")
        assert deleted.returncode == 0 and "deleted alice (2 template(s))" in deleted.stdout
        missing = run_cli(*client, "verify", "alice", str(alice[2]))
        assert missing.returncode == 2 and "HTTP 404" in missing.stderr and "Traceback" not in missing.stderr
        wrong_key = run_cli("client", "--server", server.url, "--key", "pfk_bad", "subjects")
        assert wrong_key.returncode == 2 and "HTTP 401" in wrong_key.stderr
        no_key = run_cli("client", "--server", server.url, "subjects", env=subprocess_env(PARTIALFACE_API_KEY=""))
        assert no_key.returncode == 2 and "PARTIALFACE_API_KEY" in no_key.stderr
    revoke = run_cli("keys", "revoke", "--gallery", gallery, key.split("_")[1])
    assert revoke.returncode == 0 and "revoked" in run_cli("keys", "list", "--gallery", gallery).stdout


def test_serve_refuses_a_gallery_of_another_model_and_missing_thresholds(tmp_path):
    from partialface.gallery import open_gallery

    gallery = f"sqlite:///{tmp_path / 'other.db'}"
    with open_gallery(gallery) as store:
        store.bind_model("someone-else@000000000000", 512)
    refused = run_cli("serve", "--gallery", gallery, "--port", "0")
    assert refused.returncode == 2 and "someone-else@000000000000" in refused.stderr
    missing = run_cli("serve", "--gallery", f"sqlite:///{tmp_path / 'new.db'}", "--thresholds", str(tmp_path / "no.json"))
    assert missing.returncode == 2 and "partialface calibrate" in missing.stderr


def test_restart_keeps_every_enrolled_subject(tmp_path):
    people = lfw_people(min_photos=2, count=4, skip=10)
    gallery = f"sqlite:///{tmp_path / 'G.db'}"
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


def _templates_by_subject(db_path) -> dict[str, int]:
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT s.name, COUNT(t.id) FROM pf_subjects s LEFT JOIN pf_templates t "
                          "ON t.subject_id = s.id GROUP BY s.name").fetchall()
    return dict(rows)


def test_sigkill_during_a_batch_enrolment_leaves_each_batch_all_in_or_all_out(tmp_path):
    db = tmp_path / "G.db"
    gallery = f"sqlite:///{db}"
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
        counts = _templates_by_subject(db)
        assert counts["anchor"] == 3
        assert counts.get(f"batch-{attempt}", 0) in (0, 32), counts  # never a partial batch
        outcomes.append(counts.get(f"batch-{attempt}", 0))
    with running_server(gallery, tmp_path) as server:  # and the store still serves after the kills
        with Client(server.url, key) as client:
            names = {s["name"]: s["templates"] for s in client.subjects()}
            assert names["anchor"] == 3 and all(names.get(f"batch-{i}", 0) == n for i, n in enumerate(outcomes))
            client.enroll("after", photos[:1])


def test_concurrent_enrolments_of_one_subject_all_land(tmp_path):
    gallery = f"sqlite:///{tmp_path / 'G.db'}"
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
