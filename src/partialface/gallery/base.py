"""The gallery interface every store implements, and the checks every store applies the same way.

A gallery holds enrolled *subjects* (a unique name, optional JSON metadata) and their *templates*
(L2-normalised float32 vectors of ONE dimension, from ONE model). :class:`Gallery` validates every
argument here, once, and hands clean values to the store's ``_`` methods, so SQLite and PostgreSQL
accept and refuse exactly the same calls (the shared test suite in ``tests/test_gallery.py`` runs
against both).

Search aggregates per subject with one of three strategies, because a subject enrolled from several
photos has several templates (each photo protected with its own random rank):

- ``max``:   the best cosine over the subject's templates;
- ``mean``:  the mean of the cosines (= the query against the subject's mean template);
- ``fused``: the cosine to the subject's normalised mean template.

Subject names: 1-128 characters of ASCII letters, digits and ``_ - . @``, starting with a letter or a
digit. They travel in URL paths and log lines, so nothing that needs escaping is allowed.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .. import checks
from ..errors import PartialFaceError
from .errors import GalleryError, ModelMismatch, NoSchema

__all__ = [
    "Gallery",
    "SubjectInfo",
    "Match",
    "STRATEGIES",
    "DEFAULT_STRATEGY",
    "check_subject_name",
    "NAME_PATTERN",
    "MAX_METADATA_BYTES",
    "MAX_TOP_K",
    "NORM_TOLERANCE",
]

STRATEGIES = ("max", "mean", "fused")
# measured on LFW by benchmarks/enrolment_strategy.py (docs/gallery.md)
DEFAULT_STRATEGY = "fused"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
MAX_METADATA_BYTES = 4096
MAX_TOP_K = 1000
MAX_DIM = 4096
# templates come from normalize(); float32 rounding leaves |t| within ~1e-6 of 1
NORM_TOLERANCE = 1e-3
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SubjectInfo:
    name: str
    templates: int
    created_at: datetime
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """One search result: the subject, its aggregated cosine score and, for ``max``, the template
    that scored it (``None`` for ``mean``/``fused``, which score the subject as a whole)."""

    subject: str
    score: float
    template_id: int | None = None


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """:func:`partialface.checks.check_int`, raising :class:`GalleryError` (one error family here)."""
    try:
        return checks.check_int(name, value, low, high)
    except PartialFaceError as exc:
        raise GalleryError(str(exc)) from None


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    try:
        return checks.check_choice(name, value, choices)
    except PartialFaceError as exc:
        raise GalleryError(str(exc)) from None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def check_subject_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise GalleryError(
            f"subject name must be 1-128 ASCII letters, digits or _ - . @ starting with a letter or "
            f"digit, got {name!r}"
        )
    return name


def check_metadata(metadata: Any) -> dict:
    """A JSON object of at most :data:`MAX_METADATA_BYTES` bytes (a deep copy through JSON)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise GalleryError(f"subject metadata must be a JSON object, got {type(metadata).__name__}")
    try:
        text = json.dumps(metadata, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise GalleryError(f"subject metadata is not plain JSON: {exc}") from None
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise GalleryError(f"subject metadata is {len(text.encode())} bytes, more than {MAX_METADATA_BYTES}")
    return json.loads(text)


def check_vectors(name: str, values: Any, dim: int) -> np.ndarray:
    """``values`` as a C-contiguous float32 ``(N, dim)`` array of finite unit vectors (N >= 1)."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise GalleryError(f"{name} must be numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != dim or array.shape[0] == 0:
        raise GalleryError(f"{name} must have shape (N>=1, {dim}), got {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise GalleryError(f"{name} hold NaN or infinite values")
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    worst = int(np.argmax(np.abs(norms - 1.0)))
    if abs(norms[worst] - 1.0) > NORM_TOLERANCE:
        raise GalleryError(f"{name} must be L2-normalised: row {worst} has norm {norms[worst]:.6g}")
    return array


class Gallery(ABC):
    """Enrolled subjects and their templates; see the module docstring. Thread-safe."""

    backend = ""

    def __init__(self, url: str):
        self.url = url
        self._dim: int | None = None  # fixed once the schema exists: read once

    # ---- schema and model binding ---------------------------------------------------------------
    def ensure_schema(self, dim: int) -> None:
        """Create the tables for ``dim``-dimensional templates, or check the existing ones have it."""
        dim = check_int("template dim", dim, 1, MAX_DIM)
        stored = self._read_meta().get("dim")
        if stored is None:
            self._create_schema(dim)
            stored = self._read_meta()["dim"]
        if int(stored) != dim:
            raise ModelMismatch(f"gallery {self.url} holds {stored}-d templates, not {dim}-d")

    @property
    def meta(self) -> dict:
        """``{"dim", "model", "schema_version", "backend", "created_at"}`` (``{}`` before a schema)."""
        raw = self._read_meta()
        if "dim" not in raw:
            return {}
        return {
            "dim": int(raw["dim"]),
            "model": raw.get("model"),
            "schema_version": int(raw.get("schema_version", SCHEMA_VERSION)),
            "backend": self.backend,
            "created_at": raw.get("created_at"),
        }

    def bind_model(self, model_id: str, dim: int) -> None:
        """Record the model the gallery's templates come from (first call), or check it is that one."""
        if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > 256:
            raise GalleryError(f"model id must be a non-empty string of at most 256 characters, got {model_id!r}")
        self.ensure_schema(dim)
        stored = self._set_meta_if_absent("model", model_id)
        if stored != model_id:
            raise ModelMismatch(f"gallery {self.url} was enrolled with model {stored!r}, not {model_id!r}")

    @property
    def dim(self) -> int:
        if self._dim is None:
            stored = self._read_meta().get("dim")
            if stored is None:
                raise NoSchema(f"gallery {self.url} has no schema yet: call ensure_schema(dim) first")
            self._dim = int(stored)
        return self._dim

    # ---- subjects -------------------------------------------------------------------------------
    def create_subject(self, name: str, metadata: dict | None = None) -> SubjectInfo:
        """A new subject with no template; :class:`SubjectExists` if the name is taken."""
        self.dim  # noqa: B018  (raises NoSchema before anything is written)
        return self._create_subject(check_subject_name(name), check_metadata(metadata), utc_now())

    def get_subject(self, name: str) -> SubjectInfo:
        return self._get_subject(check_subject_name(name))

    def list_subjects(self, limit: int = 1000, offset: int = 0) -> list[SubjectInfo]:
        """Subjects in name order, a page at a time."""
        return self._list_subjects(check_int("limit", limit, 1, 10_000), check_int("offset", offset, 0))

    def delete_subject(self, name: str) -> int:
        """Delete the subject and its templates from the store and its search index; the number of
        templates removed. The stores also scrub the deleted bytes (see each store's docstring)."""
        return self._delete_subject(check_subject_name(name))

    # ---- templates ------------------------------------------------------------------------------
    def add_templates(self, name: str, templates: np.ndarray) -> list[int]:
        """Add ``(N, dim)`` unit templates to an existing subject, all or none; their new ids."""
        return self.enroll_many({name: templates}, create=False)[name]

    def enroll_many(self, batch: Mapping[str, np.ndarray], create: bool = True) -> dict[str, list[int]]:
        """Add templates to several subjects in ONE transaction (all or nothing), creating the
        subjects that do not exist when ``create``; ``{name: new template ids}``."""
        if not isinstance(batch, Mapping) or not batch:
            raise GalleryError("enroll_many needs a non-empty {subject name: templates} mapping")
        dim = self.dim
        clean = {check_subject_name(n): check_vectors(f"templates of {n!r}", t, dim) for n, t in batch.items()}
        return self._insert(clean, create, utc_now())

    def delete_template(self, name: str, template_id: int) -> None:
        self._delete_template(check_subject_name(name), check_int("template id", template_id, 1))

    def subject_templates(self, name: str) -> np.ndarray:
        """The subject's templates ``(N, dim)`` float32 in id order (server-internal: verification)."""
        return self._subject_templates(check_subject_name(name))

    def template_ids(self, name: str) -> list[int]:
        """The ids of the subject's templates in the order of :meth:`subject_templates`."""
        return self._template_ids(check_subject_name(name))

    # ---- search ---------------------------------------------------------------------------------
    def search(self, query: np.ndarray, top_k: int = 1, strategy: str = DEFAULT_STRATEGY) -> list[Match]:
        """The ``top_k`` best subjects for a unit ``query`` vector, best first, scored by ``strategy``."""
        q = check_vectors("query", np.asarray(query).reshape(1, -1), self.dim)[0]
        top_k = check_int("top_k", top_k, 1, MAX_TOP_K)
        return self._search(q, top_k, check_choice("strategy", strategy, STRATEGIES))

    def count(self) -> tuple[int, int]:
        """``(subjects, templates)``."""
        return self._count()

    # ---- API keys and lifetime ------------------------------------------------------------------
    @property
    @abstractmethod
    def keys(self):
        """The :class:`~partialface.gallery.keys.KeyStore` kept in the same database."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # ---- what a store implements (arguments already checked) ------------------------------------
    @abstractmethod
    def _read_meta(self) -> dict[str, str]: ...

    @abstractmethod
    def _create_schema(self, dim: int) -> None: ...

    @abstractmethod
    def _set_meta_if_absent(self, key: str, value: str) -> str: ...

    @abstractmethod
    def _create_subject(self, name: str, metadata: dict, created_at: datetime) -> SubjectInfo: ...

    @abstractmethod
    def _get_subject(self, name: str) -> SubjectInfo: ...

    @abstractmethod
    def _list_subjects(self, limit: int, offset: int) -> list[SubjectInfo]: ...

    @abstractmethod
    def _delete_subject(self, name: str) -> int: ...

    @abstractmethod
    def _insert(self, batch: dict[str, np.ndarray], create: bool, now: datetime) -> dict[str, list[int]]: ...

    @abstractmethod
    def _delete_template(self, name: str, template_id: int) -> None: ...

    @abstractmethod
    def _subject_templates(self, name: str) -> np.ndarray: ...

    @abstractmethod
    def _template_ids(self, name: str) -> list[int]: ...

    @abstractmethod
    def _search(self, query: np.ndarray, top_k: int, strategy: str) -> list[Match]: ...

    @abstractmethod
    def _count(self) -> tuple[int, int]: ...

