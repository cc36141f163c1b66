"""Errors of the gallery stores: mistakes a caller can make, each a one-line :class:`PartialFaceError`.

The HTTP layer maps them to status codes (not found, conflict, bad request) by class, so each
distinct situation has its own class; every message names the subject, template or setting at fault.
"""

from __future__ import annotations

from ..errors import PartialFaceError

__all__ = [
    "GalleryError",
    "SubjectExists",
    "SubjectNotFound",
    "TemplateNotFound",
    "ModelMismatch",
    "NoSchema",
]


class GalleryError(PartialFaceError):
    """A gallery request that cannot be carried out as asked (bad name, shape, value...)."""


class SubjectExists(GalleryError):
    """``create_subject`` with a name that is already enrolled."""


class SubjectNotFound(GalleryError):
    """A subject name that is not enrolled."""


class TemplateNotFound(GalleryError):
    """A template id that does not belong to the named subject."""


class ModelMismatch(GalleryError):
    """Templates of another model or another dimension than the gallery was created for: mixing
    them would make every score meaningless, so the gallery refuses."""


class NoSchema(GalleryError):
    """The store has no gallery yet: ``ensure_schema(dim)`` (or ``bind_model``) must come first."""
