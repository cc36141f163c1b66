"""The gallery at scale: PostgreSQL with pgvector, HNSW indexes on inner product of unit templates.

URL: ``postgresql://user@host:port/db``, plus the store's own query parameters (taken out before
connecting): ``ef_search`` (HNSW candidate list per query, default 100, at most 1000), ``exact_below``
(a table with fewer rows than this, by the planner's estimate, is searched exactly by a sequential
scan; default 10000; 0: always the index) and ``pool_size`` (connections, default 8).

- **Search.** Templates are unit vectors, so the inner product (``vector_ip_ops``, ``<#>`` = minus the
  inner product) is the cosine. ``max`` searches the template index and keeps each subject's first
  (best) hit; ``mean`` and ``fused`` search per-subject vectors kept in ``pf_subjects`` -- the mean
  template (``q . mean`` is the mean cosine) and the normalised mean template -- each with its own
  HNSW index, recomputed in the transaction that changes the subject's templates.
- **Transactions.** A batch is one transaction; templates go in by binary ``COPY``. Writers to one
  subject serialise on its row lock (``SELECT ... FOR UPDATE``), so its mean stays that of its
  templates. A client killed mid-batch leaves nothing: the server rolls the transaction back.
- **Deletion.** Deleted rows vanish from searches at commit; the store then VACUUMs the two tables,
  which removes the entries from the HNSW indexes (pgvector overwrites the deleted elements' vectors
  in the index). The heap keeps the bytes of dead rows in free space until it is reused;
  :meth:`PostgresGallery.purge` with ``full=True`` (``VACUUM FULL``, rewrites the tables and rebuilds
  the indexes under an exclusive lock) removes them from the files too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from .base import SCHEMA_VERSION, Gallery, Match, SubjectInfo, check_int, utc_now
from .errors import GalleryError, SubjectExists, SubjectNotFound, TemplateNotFound
from .keys import KeyStore

__all__ = ["PostgresGallery"]

_ESTIMATE_TTL_S = 5.0
MAX_INDEXED_DIM = 2000  # pgvector's HNSW limit for the vector type
_OPTIONS = {"ef_search": (100, 1, 1000), "exact_below": (10_000, 0, None), "pool_size": (8, 1, 100)}
# (index name, table, column): the HNSW index behind each search strategy
_INDEXES = {
    "max": ("pf_templates_hnsw", "pf_templates", "embedding"),
    "mean": ("pf_subjects_mean_hnsw", "pf_subjects", "mean_template"),
    "fused": ("pf_subjects_fused_hnsw", "pf_subjects", "fused_template"),
}

# concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL: schema changes take this lock
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('partialface.gallery.schema'))"
_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS pf_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS pf_api_keys (
    id text PRIMARY KEY, scope text NOT NULL, label text NOT NULL, created_at timestamptz NOT NULL,
    revoked boolean NOT NULL DEFAULT false, salt bytea NOT NULL, digest bytea NOT NULL);
"""
_GALLERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS pf_subjects (
    id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, created_at timestamptz NOT NULL,
    metadata jsonb NOT NULL, mean_template vector({dim}), fused_template vector({dim}));
CREATE TABLE IF NOT EXISTS pf_templates (
    id bigserial PRIMARY KEY, subject_id bigint NOT NULL REFERENCES pf_subjects(id) ON DELETE CASCADE,
    embedding vector({dim}) NOT NULL, created_at timestamptz NOT NULL);
ALTER TABLE pf_templates ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE INDEX IF NOT EXISTS pf_templates_subject ON pf_templates(subject_id);
"""


def split_url(url: str, **options) -> tuple[str, dict[str, int]]:
    """The connection URL without the store's own parameters, and those parameters (URL < kwargs)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {k: v for k, v in query if k in _OPTIONS} | options
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise GalleryError(f"unknown PostgreSQL gallery option(s) {', '.join(sorted(unknown))}; known: {', '.join(_OPTIONS)}")
    settings = {}
    for key, (default, low, high) in _OPTIONS.items():
        value = given.get(key, default)
        if isinstance(value, str):
            if not value.isdigit():
                raise GalleryError(f"PostgreSQL gallery option {key} must be an integer, got {value!r}")
            value = int(value)
        settings[key] = check_int(key, value, low, high)
    rest = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
    return urlunsplit(parts._replace(query=rest)), settings


def redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


class _KeyRows:
    """The API-key table for :class:`~partialface.gallery.keys.KeyStore`."""

    def __init__(self, store: PostgresGallery):
        self._pool = store._pool

    def insert(self, key_id, scope, label, created_at, salt, digest) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO pf_api_keys (id, scope, label, created_at, salt, digest) VALUES (%s,%s,%s,%s,%s,%s)",
                (key_id, scope, label, created_at, salt, digest),
            )

    def get(self, key_id):
        with self._pool.connection() as conn:
            return conn.execute(
                "SELECT id, scope, label, created_at, revoked, salt, digest FROM pf_api_keys WHERE id=%s", (key_id,)
            ).fetchone()

    def all(self):
        with self._pool.connection() as conn:
            return conn.execute("SELECT id, scope, label, created_at, revoked FROM pf_api_keys ORDER BY created_at, id").fetchall()

    def revoke(self, key_id) -> bool:
        with self._pool.connection() as conn:
            return conn.execute("UPDATE pf_api_keys SET revoked=true WHERE id=%s", (key_id,)).rowcount == 1


def _subject(row) -> SubjectInfo:
    name, templates, created_at, metadata = row
    return SubjectInfo(name, templates, created_at.astimezone(timezone.utc), metadata)


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


class PostgresGallery(Gallery):
    backend = "postgresql"

    def __init__(self, url: str, **options):
        conninfo, settings = split_url(url, **options)
        super().__init__(redacted(conninfo))  # self.url appears in messages: never with the password
        self.ef_search, self.exact_below = settings["ef_search"], settings["exact_below"]
        self._conninfo = conninfo
        self._estimates: dict[str, tuple[float, float]] = {}
        try:
            with psycopg.connect(conninfo) as conn:  # one transaction, serialised with other processes'
                conn.execute(_SCHEMA_LOCK)
                if conn.execute("SELECT 1 FROM pg_extension WHERE extname='vector'").fetchone() is None:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(_BASE_SCHEMA)
        except psycopg.OperationalError as exc:
            raise GalleryError(f"cannot connect to the gallery database {self.url}: {str(exc).strip()}") from None
        # autocommit: a search is one round trip; writes open a transaction explicitly (_transaction)
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=settings["pool_size"], kwargs={"autocommit": True}, configure=_configure, open=True
        )
        self._keys = KeyStore(_KeyRows(self))

    @classmethod
    def from_url(cls, url: str, **options) -> PostgresGallery:
        return cls(url, **options)

    @property
    def keys(self) -> KeyStore:
        return self._keys

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _encode_rows(self, ids: list[int], subject_id: int, templates: np.ndarray, created_at: datetime) -> Iterator[tuple]:
        """The rows to COPY for one subject (a seam the failure-injection tests patch)."""
        for template_id, template in zip(ids, templates):
            yield template_id, subject_id, template, created_at

    # ---- schema ---------------------------------------------------------------------------------
    def _read_meta(self) -> dict[str, str]:
        with self._pool.connection() as conn:
            return dict(conn.execute("SELECT key, value FROM pf_meta").fetchall())

    def _create_schema(self, dim: int) -> None:
        if dim > MAX_INDEXED_DIM:
            raise GalleryError(f"pgvector indexes at most {MAX_INDEXED_DIM} dimensions, got {dim}")
        with self._transaction() as conn:
            conn.execute(_SCHEMA_LOCK)
            if conn.execute("SELECT 1 FROM pf_meta WHERE key='dim'").fetchone() is not None:
                return  # another process created it while this one waited for the lock
            conn.execute(_GALLERY_SCHEMA.format(dim=dim))
            self._create_indexes(conn)
            for key, value in (("dim", dim), ("schema_version", SCHEMA_VERSION), ("created_at", utc_now().isoformat())):
                conn.execute("INSERT INTO pf_meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, str(value)))

    def _set_meta_if_absent(self, key: str, value: str) -> str:
        with self._pool.connection() as conn:
            conn.execute("INSERT INTO pf_meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, value))
            return conn.execute("SELECT value FROM pf_meta WHERE key=%s", (key,)).fetchone()[0]

    @staticmethod
    def _create_indexes(conn: psycopg.Connection, m: int = 16, ef_construction: int = 64) -> None:
        for name, table, column in _INDEXES.values():
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING hnsw ({column} vector_ip_ops) "
                f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
            )

    def drop_indexes(self) -> None:
        """Drop the HNSW indexes (before a bulk import: building them afterwards is much faster)."""
        with self._pool.connection() as conn:
            for name, _, _ in _INDEXES.values():
                conn.execute(f"DROP INDEX IF EXISTS {name}")

    def build_indexes(self, m: int = 16, ef_construction: int = 64, workers: int = 1, memory: str = "1GB") -> None:
        """(Re)create the HNSW indexes with ``workers`` parallel workers and ``memory`` of
        maintenance_work_mem (a graph that does not fit is built far more slowly)."""
        check_int("workers", workers, 0, 64)
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (memory,))
            conn.execute(f"SET max_parallel_maintenance_workers = {int(workers)}")
            self._create_indexes(conn, check_int("m", m, 2, 100), check_int("ef_construction", ef_construction, 4, 1000))
            conn.execute("ANALYZE pf_templates")
            conn.execute("ANALYZE pf_subjects")

    # ---- subjects -------------------------------------------------------------------------------
    _SUBJECT_SQL = (
        "SELECT s.name, (SELECT count(*) FROM pf_templates t WHERE t.subject_id = s.id), s.created_at, s.metadata "
        "FROM pf_subjects s "
    )

    def _create_subject(self, name: str, metadata: dict, created_at: datetime) -> SubjectInfo:
        try:
            with self._pool.connection() as conn:
                conn.execute(
                    "INSERT INTO pf_subjects (name, created_at, metadata) VALUES (%s, %s, %s)",
                    (name, created_at, json.dumps(metadata)),
                )
        except psycopg.errors.UniqueViolation:
            raise SubjectExists(f"subject {name!r} is already enrolled in {self.url}") from None
        return SubjectInfo(name, 0, created_at, metadata)

    def _get_subject(self, name: str) -> SubjectInfo:
        with self._pool.connection() as conn:
            row = conn.execute(self._SUBJECT_SQL + "WHERE s.name=%s", (name,)).fetchone()
        if row is None:
            raise SubjectNotFound(f"no subject named {name!r} in {self.url}")
        return _subject(row)

    def _list_subjects(self, limit: int, offset: int) -> list[SubjectInfo]:
        with self._pool.connection() as conn:
            rows = conn.execute(self._SUBJECT_SQL + "ORDER BY s.name LIMIT %s OFFSET %s", (limit, offset)).fetchall()
        return [_subject(row) for row in rows]

    def _locked_subject(self, conn: psycopg.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM pf_subjects WHERE name=%s FOR UPDATE", (name,)).fetchone()
        if row is None:
            raise SubjectNotFound(f"no subject named {name!r} in {self.url}")
        return row[0]

    def _delete_subject(self, name: str) -> int:
        with self._transaction() as conn:
            subject_id = self._locked_subject(conn, name)
            removed = conn.execute("DELETE FROM pf_templates WHERE subject_id=%s", (subject_id,)).rowcount
            conn.execute("DELETE FROM pf_subjects WHERE id=%s", (subject_id,))
        self.purge()
        return removed

    def purge(self, full: bool = False) -> None:
        """VACUUM the gallery tables: deleted templates leave the HNSW indexes; with ``full``, the
        tables are rewritten so their files no longer hold the deleted bytes either."""
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(f"VACUUM {'FULL ' if full else ''}pf_templates, pf_subjects")

    # ---- templates ------------------------------------------------------------------------------
    def _update_subject_vectors(self, conn: psycopg.Connection, subject_id: int) -> None:
        """Recompute the subject's mean and normalised mean template from its templates."""
        mean = conn.execute("SELECT avg(embedding) FROM pf_templates WHERE subject_id=%s", (subject_id,)).fetchone()[0]
        fused = None
        if mean is not None:
            mean = mean.to_numpy()
            norm = float(np.linalg.norm(mean))
            fused = mean / norm if norm > 0 else mean
        conn.execute(
            "UPDATE pf_subjects SET mean_template=%s, fused_template=%s WHERE id=%s", (mean, fused, subject_id)
        )

    def _insert(self, batch: dict[str, np.ndarray], create: bool, now: datetime) -> dict[str, list[int]]:
        added: dict[str, list[int]] = {}
        with self._transaction() as conn:
            for name, templates in batch.items():
                if create:
                    conn.execute(
                        "INSERT INTO pf_subjects (name, created_at, metadata) VALUES (%s, %s, '{}') ON CONFLICT DO NOTHING",
                        (name, now),
                    )
                subject_id = self._locked_subject(conn, name)
                ids = [r[0] for r in conn.execute(
                    "SELECT nextval(pg_get_serial_sequence('pf_templates', 'id')) FROM generate_series(1, %s)",
                    (len(templates),),
                )]
                with conn.cursor() as cur, cur.copy(
                    "COPY pf_templates (id, subject_id, embedding, created_at) FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "int8", "vector", "timestamptz"])
                    for row in self._encode_rows(ids, subject_id, templates, now):
                        copy.write_row(row)
                self._update_subject_vectors(conn, subject_id)
                added[name] = ids
        return added

    def _delete_template(self, name: str, template_id: int) -> None:
        with self._transaction() as conn:
            subject_id = self._locked_subject(conn, name)
            deleted = conn.execute("DELETE FROM pf_templates WHERE id=%s AND subject_id=%s", (template_id, subject_id))
            if deleted.rowcount != 1:
                raise TemplateNotFound(f"subject {name!r} has no template {template_id}")
            self._update_subject_vectors(conn, subject_id)
        self.purge()

    def _template_rows(self, name: str) -> list[tuple]:
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM pf_subjects WHERE name=%s", (name,)).fetchone()
            if row is None:
                raise SubjectNotFound(f"no subject named {name!r} in {self.url}")
            return conn.execute("SELECT id, embedding FROM pf_templates WHERE subject_id=%s ORDER BY id", (row[0],)).fetchall()

    def _subject_templates(self, name: str) -> np.ndarray:
        rows = self._template_rows(name)
        return np.stack([r[1].to_numpy() for r in rows]) if rows else np.zeros((0, self.dim), np.float32)

    def _template_ids(self, name: str) -> list[int]:
        return [r[0] for r in self._template_rows(name)]

    def _count(self) -> tuple[int, int]:
        if "dim" not in self._read_meta():
            return 0, 0
        with self._pool.connection() as conn:
            return tuple(conn.execute("SELECT (SELECT count(*) FROM pf_subjects), (SELECT count(*) FROM pf_templates)").fetchone())

    # ---- search ---------------------------------------------------------------------------------
    def _small(self, conn: psycopg.Connection, table: str) -> bool:
        """Whether ``table`` has fewer rows than ``exact_below`` by the planner's estimate (-1: never
        analysed, i.e. new and small), re-read every few seconds."""
        if self.exact_below == 0:
            return False
        estimate, when = self._estimates.get(table, (0.0, -np.inf))
        if time.monotonic() - when > _ESTIMATE_TTL_S:
            estimate = conn.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (table,)).fetchone()[0]
            self._estimates[table] = (estimate, time.monotonic())
        return estimate < self.exact_below

    def _search(self, query: np.ndarray, top_k: int, strategy: str) -> list[Match]:
        _, table, column = _INDEXES[strategy]
        # 'max' reads several templates per subject: ask the index for more candidates than subjects
        limit = min(1000, 8 * top_k) if strategy == "max" else top_k
        with self._pool.connection() as conn:
            exact = self._small(conn, table)
            ef_search = max(self.ef_search, limit)
            if not exact and getattr(conn, "_pf_ef_search", None) != ef_search:  # a session setting, set once
                conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
                conn._pf_ef_search = ef_search
            # ordering by the score (not by the indexed `<#>` expression) makes PostgreSQL scan exactly
            order = "score DESC" if exact else f"{column} <#> %(q)s"
            if strategy != "max":
                sql = (f"SELECT name, -({column} <#> %(q)s) AS score, NULL FROM pf_subjects "
                       f"WHERE {column} IS NOT NULL ORDER BY {order} LIMIT %(k)s")
            elif exact:  # every subject's best template, then the best subjects
                sql = ("SELECT s.name, b.score, b.id FROM (SELECT DISTINCT ON (subject_id) subject_id, id, "
                       "-(embedding <#> %(q)s) AS score FROM pf_templates ORDER BY subject_id, embedding <#> %(q)s) b "
                       "JOIN pf_subjects s ON s.id = b.subject_id ORDER BY b.score DESC, s.name LIMIT %(k)s")
            else:  # the index's nearest templates; a subject's first hit is its best
                sql = ("SELECT s.name, -(t.embedding <#> %(q)s) AS score, t.id FROM pf_templates t "
                       "JOIN pf_subjects s ON s.id = t.subject_id ORDER BY t.embedding <#> %(q)s LIMIT %(k)s")
            rows = conn.execute(sql, {"q": query, "k": limit}).fetchall()
        matches: dict[str, Match] = {}
        for name, score, template_id in rows:
            matches.setdefault(name, Match(name, float(score), template_id))
        return list(matches.values())[:top_k]
