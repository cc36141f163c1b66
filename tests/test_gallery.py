"""One test suite for every gallery store: SQLite always, PostgreSQL + pgvector when
PARTIALFACE_TEST_POSTGRES names a server (``.ci/run`` starts one with scripts/postgres_server.sh).

Each PostgreSQL test works in a schema of its own, dropped afterwards. When the variable is set but
the server cannot be reached the tests FAIL: a CI run must not pass by skipping the store.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

import partialface
from partialface.gallery import (
    GalleryError,
    ModelMismatch,
    NoSchema,
    SubjectExists,
    SubjectNotFound,
    TemplateNotFound,
    open_gallery,
)

DIM = 32
PG_ENV = "PARTIALFACE_TEST_POSTGRES"
SRC = str(Path(partialface.__file__).resolve().parents[1])


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, counts: list[int], spread: float = 0.6) -> dict[str, np.ndarray]:
    """Subjects like real ones: a few templates scattered around a centre per subject."""
    subjects = {}
    for i, n in enumerate(counts):
        centre = unit(rng, 1)[0]
        t = centre + spread * rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
        subjects[f"subject_{i:03d}"] = (t / np.linalg.norm(t, axis=1, keepdims=True)).astype(np.float32)
    return subjects


def brute_force(subjects: dict[str, np.ndarray], query: np.ndarray, top_k: int, strategy: str):
    """The reference: every subject scored in float64, sorted."""
    scores = {}
    for name, t in subjects.items():
        cos = t.astype(np.float64) @ query
        mean = t.astype(np.float64).mean(axis=0)
        scores[name] = {"max": cos.max(), "mean": cos.mean(), "fused": mean @ query / np.linalg.norm(mean)}[strategy]
    return sorted(scores.items(), key=lambda kv: -kv[1])[:top_k]


# ---- the stores ---------------------------------------------------------------------------------
def _postgres_url():
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against (scripts/postgres_server.sh starts one)")
    import psycopg

    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(f"{PG_ENV}={base} is set but the server cannot be reached: {exc}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    try:
        yield base + separator + "options=" + quote(f"-csearch_path={schema},public")
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def pg_url():
    yield from _postgres_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gallery.db'}"
    else:
        yield from _postgres_url()


@pytest.fixture
def gallery(store_url):
    g = open_gallery(store_url)
    g.ensure_schema(DIM)
    yield g
    g.close()


def child(code: str, *args: str, **popen) -> subprocess.Popen:
    """A Python child process running ``code`` with this tree's package on its path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **popen)


# ---- subjects, templates, schema ----------------------------------------------------------------
def test_subjects_crud(gallery):
    made = gallery.create_subject("alice", {"team": "blue", "n": 1})
    assert (made.name, made.templates, made.metadata) == ("alice", 0, {"team": "blue", "n": 1})
    gallery.create_subject("bob")
    with pytest.raises(SubjectExists, match="alice"):
        gallery.create_subject("alice")
    got = gallery.get_subject("alice")
    assert got.metadata == {"team": "blue", "n": 1} and got.created_at.tzinfo is not None
    assert [s.name for s in gallery.list_subjects()] == ["alice", "bob"]
    assert [s.name for s in gallery.list_subjects(limit=1, offset=1)] == ["bob"]
    with pytest.raises(SubjectNotFound, match="carol"):
        gallery.get_subject("carol")
    assert gallery.delete_subject("bob") == 0
    with pytest.raises(SubjectNotFound):
        gallery.delete_subject("bob")
    assert gallery.count() == (1, 0)


@pytest.mark.parametrize("name", ["", "-lead", "has space", "slash/x", "x" * 129, "émile", None, 7])
def test_bad_subject_names_are_refused(gallery, name):
    with pytest.raises(GalleryError, match="subject name"):
        gallery.create_subject(name)


def test_bad_metadata_is_refused(gallery):
    with pytest.raises(GalleryError, match="JSON object"):
        gallery.create_subject("a", ["not", "a", "dict"])
    with pytest.raises(GalleryError, match="bytes"):
        gallery.create_subject("a", {"blob": "x" * 5000})
    with pytest.raises(GalleryError, match="plain JSON"):
        gallery.create_subject("a", {"nan": float("nan")})
    assert gallery.count() == (0, 0)


def test_templates_add_read_delete(gallery):
    rng = np.random.default_rng(1)
    gallery.create_subject("alice")
    first, second = unit(rng, 3), unit(rng, 2)
    ids = gallery.add_templates("alice", first)
    ids += gallery.add_templates("alice", second.astype(np.float64))  # converted to float32
    assert len(set(ids)) == 5 and gallery.template_ids("alice") == sorted(ids)
    np.testing.assert_array_equal(gallery.subject_templates("alice"), np.concatenate([first, second]))
    assert gallery.get_subject("alice").templates == 5
    gallery.delete_template("alice", ids[1])
    np.testing.assert_array_equal(gallery.subject_templates("alice"), np.concatenate([first[[0, 2]], second]))
    gallery.create_subject("bob")
    with pytest.raises(TemplateNotFound):
        gallery.delete_template("bob", ids[0])  # alice's template, asked through bob
    assert gallery.count() == (2, 4)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones((2, DIM + 1), np.float32) / np.sqrt(DIM + 1), "shape"),
        (np.ones((2, DIM), np.float32), "L2-normalised"),
        (np.full((1, DIM), np.nan, np.float32), "NaN"),
        (np.zeros((0, DIM), np.float32), "shape"),
        (np.ones(DIM, np.float32) / np.sqrt(DIM), "shape"),
        (np.array([["a"] * DIM]), "numbers"),
    ],
)
def test_bad_templates_are_refused(gallery, bad, match):
    gallery.create_subject("alice")
    with pytest.raises(GalleryError, match=match):
        gallery.add_templates("alice", bad)
    assert gallery.count() == (1, 0)


def test_adding_to_an_unknown_subject_creates_nothing(gallery):
    rng = np.random.default_rng(2)
    with pytest.raises(SubjectNotFound):
        gallery.add_templates("ghost", unit(rng, 2))
    gallery.create_subject("alice")
    with pytest.raises(SubjectNotFound):
        gallery.enroll_many({"alice": unit(rng, 2), "ghost": unit(rng, 2)}, create=False)
    assert gallery.count() == (1, 0)


def test_schema_and_model_binding(store_url):
    with open_gallery(store_url) as g:
        assert g.meta == {} and g.count() == (0, 0)
        with pytest.raises(NoSchema):
            g.create_subject("alice")
        g.bind_model("default@abc", DIM)
        g.ensure_schema(DIM)  # idempotent
        g.bind_model("default@abc", DIM)
        with pytest.raises(ModelMismatch, match="other@1"):
            g.bind_model("other@1", DIM)
        with pytest.raises(ModelMismatch, match=f"{DIM}-d"):
            g.ensure_schema(DIM * 2)
        assert g.meta["dim"] == DIM and g.meta["model"] == "default@abc" and g.meta["backend"] == g.backend


# ---- search -------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["max", "mean", "fused"])
def test_search_matches_brute_force(gallery, strategy):
    rng = np.random.default_rng(3)
    subjects = clustered(rng, [1, 2, 3, 4, 5] * 6 + [40])  # one subject with many templates
    gallery.enroll_many(subjects)
    centres = np.stack([t.mean(axis=0) for t in subjects.values()])
    queries = np.concatenate([centres[::3] + 0.05 * rng.standard_normal(centres[::3].shape), unit(rng, 5)])
    for query in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        want = brute_force(subjects, query, 5, strategy)
        got = gallery.search(query.astype(np.float32), top_k=5, strategy=strategy)
        assert [m.subject for m in got] == [name for name, _ in want]
        np.testing.assert_allclose([m.score for m in got], [s for _, s in want], atol=2e-5)
        if strategy == "max":
            for m in got:
                best = int(np.argmax(subjects[m.subject] @ query))
                assert m.template_id == gallery.template_ids(m.subject)[best]
        else:
            assert all(m.template_id is None for m in got)


def test_search_sees_every_change_from_every_connection(store_url):
    """The SQLite store caches the templates in memory: writes through another connection (here a
    second store object; in production another process) must show in the next search."""
    rng = np.random.default_rng(4)
    with open_gallery(store_url) as reader, open_gallery(store_url) as writer:
        writer.ensure_schema(DIM)
        subjects = clustered(rng, [2] * 5)
        writer.enroll_many(subjects)
        query = subjects["subject_002"][0]
        assert reader.search(query, 1)[0].subject == "subject_002"
        writer.delete_subject("subject_002")
        assert reader.search(query, 1)[0].subject != "subject_002"
        writer.enroll_many({"newcomer": query[None]})
        top = reader.search(query, 1, "max")[0]
        assert top.subject == "newcomer" and top.score == pytest.approx(1.0, abs=1e-6)
        reader.delete_template("newcomer", top.template_id)  # the reader's own write
        assert reader.search(query, 1)[0].subject != "newcomer"
        assert reader.count() == writer.count() == (5, 8)


@pytest.mark.parametrize("strategy", ["max", "mean", "fused"])
def test_exact_index_after_removals_equals_a_fresh_one(strategy):
    """Rows dropped in place (the SQLite store's deletions) leave the index as if never added."""
    from partialface.gallery.exact import ExactIndex

    rng = np.random.default_rng(18)
    subjects = clustered(rng, [3, 1, 4, 2, 5] * 4)
    vectors = np.concatenate(list(subjects.values()))
    owners = np.repeat(np.arange(len(subjects)), [len(t) for t in subjects.values()])
    names = dict(enumerate(subjects))
    ids = np.arange(1, len(vectors) + 1)
    grown = ExactIndex(DIM)
    grown.append(ids[:30], owners[:30], names, vectors[:30])
    gone = np.concatenate([ids[owners == 1], rng.choice(ids[:30], 6, replace=False)])
    assert grown.remove(gone) == len(set(gone.tolist()) & set(ids[:30].tolist()))
    grown.append(ids[30:], owners[30:], names, vectors[30:])
    grown.remove(ids[owners == 7])
    kept = ~np.isin(ids, np.concatenate([gone, ids[owners == 7]]))
    fresh = ExactIndex(DIM)
    fresh.append(ids[kept], owners[kept], names, vectors[kept])
    for query in unit(rng, 10):
        got, want = grown.search(query, 6, strategy), fresh.search(query, 6, strategy)
        assert [(m.subject, m.template_id) for m in got] == [(m.subject, m.template_id) for m in want]
        np.testing.assert_allclose([m.score for m in got], [m.score for m in want], atol=1e-5)
        assert names[1] not in {m.subject for m in got} and names[7] not in {m.subject for m in got}


def test_search_arguments_are_checked(gallery):
    gallery.create_subject("alice")
    assert gallery.search(unit(np.random.default_rng(5), 1)[0], 3) == []  # no template yet
    with pytest.raises(GalleryError, match="strategy"):
        gallery.search(unit(np.random.default_rng(5), 1)[0], 1, strategy="median")
    with pytest.raises(GalleryError, match="top_k"):
        gallery.search(unit(np.random.default_rng(5), 1)[0], 0)
    with pytest.raises(GalleryError, match="shape"):
        gallery.search(np.ones(DIM + 1, np.float32) / np.sqrt(DIM + 1), 1)


# ---- transactions -------------------------------------------------------------------------------
def test_a_failure_mid_batch_writes_nothing(gallery, monkeypatch):
    rng = np.random.default_rng(6)
    gallery.enroll_many({"kept": unit(rng, 2)})
    original = type(gallery)._encode_rows

    def failing(self, *args):
        for i, row in enumerate(original(self, *args)):
            if i == 3:
                raise RuntimeError("injected failure")
            yield row

    monkeypatch.setattr(type(gallery), "_encode_rows", failing)
    with pytest.raises(RuntimeError, match="injected"):
        gallery.enroll_many({"new_one": unit(rng, 2), "kept": unit(rng, 6)})
    monkeypatch.undo()
    assert gallery.count() == (1, 2)
    assert [s.name for s in gallery.list_subjects()] == ["kept"]
    assert gallery.search(unit(rng, 1)[0], 5)[0].subject == "kept"


KILL_CHILD = """
import sys, time
import numpy as np
from partialface.gallery import open_gallery
url, data = sys.argv[1], np.load(sys.argv[2])
g = open_gallery(url)
g.ensure_schema(data["a"].shape[1])
g.enroll_many({"first": data["a"]})
original, written = type(g)._encode_rows, [0]
def pausing(self, *args):
    for row in original(self, *args):
        if written[0] == len(data["b"]) + len(data["c"]) // 2:
            print("mid-batch", flush=True)
            time.sleep(600)
        written[0] += 1
        yield row
type(g)._encode_rows = pausing
g.enroll_many({"second": data["b"], "third": data["c"]})
"""


def test_kill_minus_9_mid_batch_leaves_each_template_in_or_out(store_url, tmp_path):
    rng = np.random.default_rng(7)
    data = {"a": unit(rng, 50), "b": unit(rng, 300), "c": unit(rng, 300)}
    np.savez(tmp_path / "batch.npz", **data)
    proc = child(KILL_CHILD, store_url, str(tmp_path / "batch.npz"), stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "mid-batch", "the child died before the middle of its batch"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    with open_gallery(store_url) as g:
        assert g.count() == (1, 50)
        np.testing.assert_array_equal(g.subject_templates("first"), data["a"])
        assert g.search(data["c"][0], 1)[0].subject == "first"
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url[len("sqlite:///"):]) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            lengths = {n for (n,) in db.execute("SELECT length(embedding) FROM pf_templates")}
            assert lengths == {DIM * 4}


CONCURRENT_CHILD = """
import sys
import numpy as np
from partialface.gallery import SubjectExists, open_gallery
url, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
with open_gallery(url) as g:
    g.ensure_schema(int(sys.argv[3]))
    try:
        g.create_subject("carol")
        print("created", flush=True)
    except SubjectExists:
        print("exists", flush=True)
    for _ in range(10):
        t = rng.standard_normal((2, g.dim)).astype(np.float32)
        g.enroll_many({"bob": t / np.linalg.norm(t, axis=1, keepdims=True)})
"""


def _child_templates(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(10):
        t = rng.standard_normal((2, DIM)).astype(np.float32)
        rows.append(t / np.linalg.norm(t, axis=1, keepdims=True))
    return np.concatenate(rows)


def test_concurrent_enrolments_of_one_subject_from_processes(store_url):
    procs = [child(CONCURRENT_CHILD, store_url, str(seed), str(DIM), stdout=subprocess.PIPE) for seed in (11, 12)]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[0] for o in outputs) == ["created", "exists"]
    expected = np.concatenate([_child_templates(11), _child_templates(12)])
    with open_gallery(store_url) as g:
        assert g.count() == (2, 40)
        stored = g.subject_templates("bob")
        assert {r.tobytes() for r in stored} == {r.tobytes() for r in expected}
        query = expected[0]
        mean = g.search(query, 2, "mean")
        assert mean[0].subject == "bob" or mean[1].subject == "bob"
        score = next(m.score for m in mean if m.subject == "bob")
        assert score == pytest.approx(float((expected.astype(np.float64) @ query).mean()), abs=1e-5)


def test_concurrent_enrolments_of_one_subject_from_threads(gallery):
    rng = np.random.default_rng(13)
    batches = [unit(rng, 3) for _ in range(16)]
    errors = []

    def enrol(batch):
        try:
            gallery.enroll_many({"bob": batch})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enrol, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gallery.count() == (1, 48)
    expected = np.concatenate(batches)
    assert {r.tobytes() for r in gallery.subject_templates("bob")} == {r.tobytes() for r in expected}
    fused = gallery.search(expected[0], 1, "fused")[0]
    mean = expected.astype(np.float64).mean(axis=0)
    assert fused.score == pytest.approx(float(mean @ expected[0] / np.linalg.norm(mean)), abs=1e-5)


def test_reopening_keeps_everything(store_url):
    rng = np.random.default_rng(14)
    subjects = clustered(rng, [1, 3, 2])
    with open_gallery(store_url) as g:
        g.bind_model("default@abc", DIM)
        g.create_subject("empty", {"note": "no photo yet"})
        g.enroll_many(subjects)
        info, key = g.keys.create("enroll", "kiosk")
        before = (g.meta, g.count(), g.list_subjects())
    with open_gallery(store_url) as g:
        assert (g.meta, g.count(), g.list_subjects()) == before
        for name, templates in subjects.items():
            np.testing.assert_array_equal(g.subject_templates(name), templates)
        assert g.keys.verify(key) == info
        assert g.search(subjects["subject_001"][1], 1)[0].subject == "subject_001"


# ---- deletion scrubs the bytes ------------------------------------------------------------------
def _sqlite_files(path: str) -> bytes:
    return b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if Path(p).exists())


def test_sqlite_delete_leaves_no_row_and_no_byte(tmp_path):
    rng = np.random.default_rng(15)
    path = str(tmp_path / "gallery.db")
    doomed, kept = unit(rng, 3), unit(rng, 3)
    with open_gallery(f"sqlite:///{path}") as g:
        g.ensure_schema(DIM)
        g.create_subject("doomed_subject", {"secret": "doomed-metadata"})
        g.enroll_many({"doomed_subject": doomed, "kept_subject": kept})
        raw = _sqlite_files(path)
        assert all(t.tobytes() in raw for t in doomed)  # the check below can see them
        assert g.delete_subject("doomed_subject") == 3
        raw = _sqlite_files(path)  # while the store is still open
        assert not any(t.tobytes() in raw for t in doomed)
        assert b"doomed_subject" not in raw and b"doomed-metadata" not in raw
        assert all(t.tobytes() in raw for t in kept)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM pf_subjects WHERE name='doomed_subject'").fetchone() == (0,)
        blobs = {b for (b,) in db.execute("SELECT embedding FROM pf_templates")}
        assert blobs == {t.tobytes() for t in kept}
    assert not any(t.tobytes() in _sqlite_files(path) for t in doomed)


def _postgres_file(conn, relation: str) -> bytes:
    conn.execute("CHECKPOINT")
    data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    path = Path(data_dir) / conn.execute("SELECT pg_relation_filepath(%s)", (relation,)).fetchone()[0]
    try:
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")) if "_" not in p.name)
    except PermissionError:
        pytest.skip(f"the PostgreSQL data directory {data_dir} is not readable by this user")


def test_postgres_delete_leaves_no_row_no_index_entry_and_no_byte_after_purge(pg_url):
    import psycopg

    url = pg_url
    rng = np.random.default_rng(16)
    doomed, kept = unit(rng, 3), unit(rng, 3)
    with open_gallery(url) as g, psycopg.connect(url, autocommit=True) as conn:
        if not Path(conn.execute("SHOW data_directory").fetchone()[0]).exists():
            pytest.skip("the PostgreSQL server runs on another machine: its files cannot be read")
        g.ensure_schema(DIM)
        g.enroll_many({"doomed_subject": doomed, "kept_subject": kept})
        index = _postgres_file(conn, "pf_templates_hnsw")
        assert all(t.tobytes() in index for t in doomed)
        assert g.delete_subject("doomed_subject") == 3
        assert conn.execute("SELECT count(*) FROM pf_templates").fetchone() == (3,)
        index = _postgres_file(conn, "pf_templates_hnsw")
        assert not any(t.tobytes() in index for t in doomed)
        assert all(t.tobytes() in index for t in kept)
        g.purge(full=True)
        heap = _postgres_file(conn, "pf_templates") + _postgres_file(conn, "pf_subjects")
        assert not any(t.tobytes() in heap for t in doomed)
        assert all(t.tobytes() in heap for t in kept)
        assert g.search(doomed[0], 1)[0].subject == "kept_subject"


# ---- PostgreSQL's approximate search ------------------------------------------------------------
def test_postgres_hnsw_is_used_and_finds_the_exact_answers(pg_url):
    import psycopg

    url = pg_url
    rng = np.random.default_rng(17)
    subjects = clustered(rng, [4] * 400)
    with open_gallery(url + "&exact_below=0&ef_search=60") as g, psycopg.connect(url, autocommit=True) as conn:
        assert (g.ef_search, g.exact_below) == (60, 0) and "exact_below" not in g.url
        g.ensure_schema(DIM)
        g.enroll_many(subjects)
        queries = [t[0] for t in list(subjects.values())[::10]]
        for strategy in ("max", "mean", "fused"):
            hits = [g.search(q, 1, strategy)[0].subject == brute_force(subjects, q, 1, strategy)[0][0] for q in queries]
            assert np.mean(hits) >= 0.9, strategy
        deadline = time.time() + 10
        while time.time() < deadline:  # index statistics reach the shared view within a second or so
            conn.execute("SELECT pg_stat_clear_snapshot()")
            used = dict(conn.execute(
                "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE indexrelname LIKE '%%hnsw'"
                " AND schemaname = current_schema()").fetchall())
            if len(used) == 3 and all(used.values()):
                break
            time.sleep(0.2)
        assert len(used) == 3 and all(used.values()), used


def test_open_gallery_refuses_bad_urls_and_options(tmp_path):
    with pytest.raises(GalleryError, match="sqlite://"):
        open_gallery("mysql://localhost/db")
    with pytest.raises(GalleryError, match="sqlite:///path"):
        open_gallery("sqlite://")
    with pytest.raises(GalleryError, match="no options"):
        open_gallery(f"sqlite:///{tmp_path / 'g.db'}", ef_search=10)
    with open_gallery("sqlite:///:memory:") as g:
        g.ensure_schema(4)
        g.enroll_many({"a": np.eye(4, dtype=np.float32)[:2]})
        assert g.search(np.eye(4, dtype=np.float32)[1], 1)[0].subject == "a"
    from partialface.gallery.postgres import redacted, split_url

    assert redacted("postgresql://u:hunter2@h:5432/db?x=1") == "postgresql://u:***@h:5432/db?x=1"
    assert redacted("postgresql://u@h/db") == "postgresql://u@h/db"

    assert split_url("postgresql://u@h/db?ef_search=40&sslmode=disable", pool_size=2) == (
        "postgresql://u@h/db?sslmode=disable", {"ef_search": 40, "exact_below": 10_000, "pool_size": 2})
    with pytest.raises(GalleryError, match="integer"):
        split_url("postgresql://u@h/db?ef_search=many")
    with pytest.raises(GalleryError, match="unknown"):
        split_url("postgresql://u@h/db", m=3)
