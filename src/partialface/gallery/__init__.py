"""Gallery stores: enrolled subjects, their templates and the API keys, behind one interface.

    gallery = open_gallery("sqlite:///gallery.db")                       # embedded default
    gallery = open_gallery("postgresql://user@127.0.0.1:5432/db")        # at scale: pgvector HNSW
    gallery.bind_model("default@1a2b3c", dim=512)
    gallery.create_subject("alice")
    gallery.add_templates("alice", templates)                             # (N, 512) unit float32
    gallery.search(query, top_k=5, strategy="max")                       # [Match(subject, score, template_id)]

The interface is :class:`~partialface.gallery.base.Gallery`; the stores are
:class:`~partialface.gallery.sqlite.SQLiteGallery` (standard library only) and
:class:`~partialface.gallery.postgres.PostgresGallery` (the ``server`` extra: psycopg, psycopg-pool,
pgvector). The gallery is server-side code: it imports the bottom layer and numpy, never the models.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from . import errors
from .base import DEFAULT_STRATEGY, STRATEGIES, Gallery, Match, SubjectInfo, check_subject_name
from .errors import GalleryError, ModelMismatch, NoSchema, SubjectExists, SubjectNotFound, TemplateNotFound
from .keys import SCOPES, KeyInfo, KeyStore

__all__ = ["open_gallery", "Gallery", "SubjectInfo", "Match", "STRATEGIES", "DEFAULT_STRATEGY", "check_subject_name",
           "KeyInfo", "KeyStore", "SCOPES", *errors.__all__]

# URL scheme -> the store class, imported only when used (PostgreSQL's driver is an optional extra)
_STORES = {
    "sqlite": "partialface.gallery.sqlite:SQLiteGallery",
    "postgresql": "partialface.gallery.postgres:PostgresGallery",
    "postgres": "partialface.gallery.postgres:PostgresGallery",
}


def open_gallery(url: str, **options) -> Gallery:
    """The store for ``url``: ``sqlite:///path.db``, ``sqlite:///:memory:`` or ``postgresql://...``.

    ``options`` are the store's settings (PostgreSQL: ``ef_search``, ``exact_below``, ``pool_size``;
    they may also be given as URL query parameters).
    """
    if not isinstance(url, str):
        raise GalleryError(f"gallery URL must be a string, got {type(url).__name__}")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _STORES:
        raise GalleryError(f"gallery URL must start with {', '.join(s + '://' for s in _STORES)}, got {url!r}")
    module_name, class_name = _STORES[scheme].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GalleryError(
            f"the {scheme} gallery needs the server extra (pip install 'partialface[server]'): {exc}"
        ) from None
    return getattr(module, class_name).from_url(url, **options)
