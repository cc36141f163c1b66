"""The embedded gallery: one SQLite file (WAL mode), templates as float32 blobs, exact search in memory.

URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``.

- **Transactions.** Every write is one ``BEGIN IMMEDIATE`` transaction, so a batch of templates is
  all in or all out, also when the process is killed in the middle (SQLite's WAL is atomic), and
  writers from several processes queue on the database lock (``busy_timeout``) instead of failing.
  ``synchronous=FULL``: an acknowledged enrolment survives a power cut too.
- **Search.** An :class:`~partialface.gallery.exact.ExactIndex` holds every template in memory. Before
  a search the store compares ``PRAGMA data_version`` (it changes when *another* connection, in this
  or another process, commits) and its own writes with what the index has seen; new rows are
  appended (template ids only grow: ``AUTOINCREMENT``) and deleted ones dropped (``pf_deleted`` logs
  the ids of deleted templates, nothing else), so no change costs a reload of the whole gallery.
- **Deletion scrubs.** ``secure_delete=ON`` overwrites deleted rows with zeros in the database file,
  and a ``wal_checkpoint(TRUNCATE)`` after each deletion empties the write-ahead log, which would
  otherwise keep the old pages; ``tests/test_gallery.py`` reads the raw files to check.
- **Threads.** One connection per store object, used under a lock: SQLite serialises writers anyway,
  and a search's work is the numpy product, not the database.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np

from .base import SCHEMA_VERSION, Gallery, Match, SubjectInfo, utc_now
from .errors import GalleryError, SubjectExists, SubjectNotFound, TemplateNotFound
from .exact import ExactIndex
from .keys import KeyStore

__all__ = ["SQLiteGallery"]

_LOAD_CHUNK = 65536

_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS pf_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pf_api_keys (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, label TEXT NOT NULL, created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0, salt BLOB NOT NULL, digest BLOB NOT NULL);
"""
_GALLERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS pf_subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pf_templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id INTEGER NOT NULL REFERENCES pf_subjects(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pf_templates_subject ON pf_templates(subject_id);
CREATE TABLE IF NOT EXISTS pf_deleted (seq INTEGER PRIMARY KEY AUTOINCREMENT, template_id INTEGER NOT NULL);
"""


def path_from_url(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (SQLAlchemy's convention: a fourth slash = absolute)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise GalleryError(f"SQLite gallery URL must look like sqlite:///path.db or sqlite:///:memory:, got {url!r}")
    return url[len(prefix):]


class _KeyRows:
    """The API-key table for :class:`~partialface.gallery.keys.KeyStore`."""

    def __init__(self, store: SQLiteGallery):
        self._store = store

    def insert(self, key_id, scope, label, created_at, salt, digest) -> None:
        with self._store._write() as db:
            db.execute(
                "INSERT INTO pf_api_keys (id, scope, label, created_at, salt, digest) VALUES (?,?,?,?,?,?)",
                (key_id, scope, label, created_at.isoformat(), salt, digest),
            )

    def get(self, key_id):
        return self._store._one("SELECT id, scope, label, created_at, revoked, salt, digest FROM pf_api_keys WHERE id=?", (key_id,))

    def all(self):
        return self._store._all("SELECT id, scope, label, created_at, revoked FROM pf_api_keys ORDER BY created_at, id")

    def revoke(self, key_id) -> bool:
        with self._store._write() as db:
            return db.execute("UPDATE pf_api_keys SET revoked=1 WHERE id=?", (key_id,)).rowcount == 1


class SQLiteGallery(Gallery):
    backend = "sqlite"

    def __init__(self, url: str):
        super().__init__(url)
        path = path_from_url(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "secure_delete=ON"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_BASE_SCHEMA)
        self._index: ExactIndex | None = None
        self._seen_version: int | None = None   # PRAGMA data_version: commits of other connections
        self._seen_changes: int | None = None   # total_changes: this connection's own writes
        self._seen_deletion = 0                  # the last pf_deleted entry applied to the index
        self._keys = KeyStore(_KeyRows(self))

    @classmethod
    def from_url(cls, url: str, **options) -> SQLiteGallery:
        if options:
            raise GalleryError(f"SQLite gallery takes no options, got {', '.join(sorted(options))}")
        return cls(url)

    @property
    def keys(self) -> KeyStore:
        return self._keys

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._index = None

    # ---- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before anything is read (so no upgrade deadlock)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several statements."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def _one(self, sql: str, params=()):
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def _all(self, sql: str, params=()):
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _subject_id(self, db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT id FROM pf_subjects WHERE name=?", (name,)).fetchone()
        if row is None:
            raise SubjectNotFound(f"no subject named {name!r} in {self.url}")
        return row[0]

    def _encode_rows(self, subject_id: int, templates: np.ndarray, created_at: str) -> Iterator[tuple]:
        """The rows to insert for one subject (a seam the failure-injection tests patch)."""
        for template in templates:
            yield subject_id, template.tobytes(), created_at

    # ---- schema ---------------------------------------------------------------------------------
    def _read_meta(self) -> dict[str, str]:
        return dict(self._all("SELECT key, value FROM pf_meta"))

    def _create_schema(self, dim: int) -> None:
        with self._write() as db:
            for statement in filter(str.strip, _GALLERY_SCHEMA.split(";")):
                db.execute(statement)
            for key, value in (("dim", dim), ("schema_version", SCHEMA_VERSION), ("created_at", utc_now().isoformat())):
                db.execute("INSERT OR IGNORE INTO pf_meta (key, value) VALUES (?, ?)", (key, str(value)))

    def _set_meta_if_absent(self, key: str, value: str) -> str:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO pf_meta (key, value) VALUES (?, ?)", (key, value))
            return db.execute("SELECT value FROM pf_meta WHERE key=?", (key,)).fetchone()[0]

    # ---- subjects -------------------------------------------------------------------------------
    _SUBJECT_SQL = (
        "SELECT s.name, (SELECT count(*) FROM pf_templates t WHERE t.subject_id = s.id), s.created_at, s.metadata "
        "FROM pf_subjects s "
    )

    @staticmethod
    def _info(row) -> SubjectInfo:
        return SubjectInfo(row[0], row[1], datetime.fromisoformat(row[2]), json.loads(row[3]))

    def _create_subject(self, name: str, metadata: dict, created_at: datetime) -> SubjectInfo:
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO pf_subjects (name, created_at, metadata) VALUES (?, ?, ?)",
                    (name, created_at.isoformat(), json.dumps(metadata)),
                )
        except sqlite3.IntegrityError:
            raise SubjectExists(f"subject {name!r} is already enrolled in {self.url}") from None
        return SubjectInfo(name, 0, created_at, metadata)

    def _get_subject(self, name: str) -> SubjectInfo:
        row = self._one(self._SUBJECT_SQL + "WHERE s.name=?", (name,))
        if row is None:
            raise SubjectNotFound(f"no subject named {name!r} in {self.url}")
        return self._info(row)

    def _list_subjects(self, limit: int, offset: int) -> list[SubjectInfo]:
        rows = self._all(self._SUBJECT_SQL + "ORDER BY s.name LIMIT ? OFFSET ?", (limit, offset))
        return [self._info(row) for row in rows]

    def _delete_subject(self, name: str) -> int:
        with self._write() as db:
            subject_id = self._subject_id(db, name)
            db.execute("INSERT INTO pf_deleted (template_id) SELECT id FROM pf_templates WHERE subject_id=?", (subject_id,))
            removed = db.execute("DELETE FROM pf_templates WHERE subject_id=?", (subject_id,)).rowcount
            db.execute("DELETE FROM pf_subjects WHERE id=?", (subject_id,))
        self._scrub_wal()
        return removed

    def _scrub_wal(self) -> None:
        """Copy the (zeroed) pages into the database file and empty the write-ahead log, which still
        holds the deleted rows' old pages. Readers in other processes can delay the truncation; the
        next checkpoint then finishes it."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # ---- templates ------------------------------------------------------------------------------
    def _insert(self, batch: dict[str, np.ndarray], create: bool, now: datetime) -> dict[str, list[int]]:
        stamp = now.isoformat()
        added: dict[str, list[int]] = {}
        with self._write() as db:
            for name, templates in batch.items():
                row = db.execute("SELECT id FROM pf_subjects WHERE name=?", (name,)).fetchone()
                if row is None and not create:
                    raise SubjectNotFound(f"no subject named {name!r} in {self.url}")
                if row is None:
                    subject_id = db.execute(
                        "INSERT INTO pf_subjects (name, created_at, metadata) VALUES (?, ?, '{}')", (name, stamp)
                    ).lastrowid
                else:
                    subject_id = row[0]
                insert = "INSERT INTO pf_templates (subject_id, embedding, created_at) VALUES (?, ?, ?)"
                added[name] = [db.execute(insert, r).lastrowid for r in self._encode_rows(subject_id, templates, stamp)]
        return added

    def _delete_template(self, name: str, template_id: int) -> None:
        with self._write() as db:
            subject_id = self._subject_id(db, name)
            deleted = db.execute("DELETE FROM pf_templates WHERE id=? AND subject_id=?", (template_id, subject_id))
            if deleted.rowcount != 1:
                raise TemplateNotFound(f"subject {name!r} has no template {template_id}")
            db.execute("INSERT INTO pf_deleted (template_id) VALUES (?)", (template_id,))
        self._scrub_wal()

    def _template_rows(self, name: str) -> list[tuple[int, bytes]]:
        with self._read() as db:
            subject_id = self._subject_id(db, name)
            return db.execute("SELECT id, embedding FROM pf_templates WHERE subject_id=? ORDER BY id", (subject_id,)).fetchall()

    def _subject_templates(self, name: str) -> np.ndarray:
        rows = self._template_rows(name)
        return np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self.dim).copy()

    def _template_ids(self, name: str) -> list[int]:
        return [r[0] for r in self._template_rows(name)]

    def _count(self) -> tuple[int, int]:
        if "dim" not in self._read_meta():
            return 0, 0
        return tuple(self._one("SELECT (SELECT count(*) FROM pf_subjects), (SELECT count(*) FROM pf_templates)"))

    # ---- search ---------------------------------------------------------------------------------
    def _search(self, query: np.ndarray, top_k: int, strategy: str) -> list[Match]:
        with self._lock:
            return self._current_index().search(query, top_k, strategy)

    def _current_index(self) -> ExactIndex:
        """The in-memory index, brought up to date with the database (caller holds the lock): the
        templates deleted since (``pf_deleted``, a log of ids) are dropped, the new ones appended; a
        count that still differs (a database changed by other means) rebuilds it."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if self._index is not None and (version, self._db.total_changes) == (self._seen_version, self._seen_changes):
            return self._index
        with self._read() as db:
            last_deletion, = db.execute("SELECT coalesce(max(seq), 0) FROM pf_deleted").fetchone()
            if self._index is not None:
                deleted = db.execute("SELECT template_id FROM pf_deleted WHERE seq > ?", (self._seen_deletion,)).fetchall()
                self._index.remove(np.array([d for (d,) in deleted], np.int64))
                self._load_rows(db, self._index)
            total, = db.execute("SELECT count(*) FROM pf_templates").fetchone()
            if self._index is None or total != self._index.size:
                self._index = ExactIndex(self.dim)
                self._load_rows(db, self._index)
        self._seen_version, self._seen_changes, self._seen_deletion = version, self._db.total_changes, last_deletion
        return self._index

    def _load_rows(self, db: sqlite3.Connection, index: ExactIndex) -> None:
        cursor = db.execute(
            "SELECT t.id, t.subject_id, s.name, t.embedding FROM pf_templates t "
            "JOIN pf_subjects s ON s.id = t.subject_id WHERE t.id > ? ORDER BY t.id",
            (index.max_id,),
        )
        while rows := cursor.fetchmany(_LOAD_CHUNK):
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            subjects = np.fromiter((r[1] for r in rows), np.int64, len(rows))
            vectors = np.frombuffer(b"".join(r[3] for r in rows), np.float32).reshape(len(rows), index.dim)
            index.append(ids, subjects, {r[1]: r[2] for r in rows}, vectors)
