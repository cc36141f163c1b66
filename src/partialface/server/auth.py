"""API-key authentication and scopes.

A key travels in a header only: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A request
that carries a key-like query parameter (``?api_key=...``) is refused outright (400), whatever else it
holds: URLs end up in proxy logs, browser histories and referrers, so a key sent there must be treated
as leaked (revoke it), and the server will not teach clients that it works.

Keys live hashed in the gallery's database (:class:`partialface.gallery.KeyStore`, constant-time
check). Scopes:

============  ==========================================================================================
scope         may
============  ==========================================================================================
``recognize`` verify, identify, compare; read the model info and the client record; list subjects
``enroll``    create and delete subjects, add and delete templates; read the model info, the client
              record and the subject list (an enrolling client must protect faces too)
``admin``     everything above; keys themselves are managed offline with ``partialface keys``
============  ==========================================================================================

Missing or unknown/revoked keys answer 401 (with ``WWW-Authenticate: Bearer``), a valid key without
the scope a route needs 403.
"""

from __future__ import annotations

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .problems import Problem

__all__ = ["require_scope", "KEY_QUERY_PARAMETERS", "ALLOWED"]

# Query parameters that smell of a credential (compared case-insensitively).
KEY_QUERY_PARAMETERS = frozenset(
    {"api_key", "apikey", "api-key", "key", "x-api-key", "token", "access_token", "auth", "authorization", "bearer"}
)
# What a route needs -> the key scopes that grant it.
ALLOWED = {
    "recognize": ("recognize", "admin"),
    "enroll": ("enroll", "admin"),
    "read": ("recognize", "enroll", "admin"),
}
_MAX_KEY_CHARS = 256

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <API key>")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="partialface"'}


def _presented_key(request: Request, bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str:
    leaked = sorted(name for name in request.query_params if name.lower() in KEY_QUERY_PARAMETERS)
    if leaked:
        raise Problem(400, "key-in-url", f"API keys are refused in the URL (query parameter {leaked[0]!r}); "
                      "send it in the Authorization: Bearer or X-API-Key header, and revoke the exposed key")
    authorization = request.headers.get("authorization")
    if authorization is not None and bearer is None:
        raise Problem(401, "unauthenticated", "the Authorization header must be 'Bearer <API key>'", _CHALLENGE)
    keys = {k.strip() for k in (bearer.credentials if bearer else None, header) if k is not None}
    if not keys:
        raise Problem(401, "unauthenticated", "an API key is required (Authorization: Bearer or X-API-Key)", _CHALLENGE)
    if len(keys) > 1:
        raise Problem(400, "two-keys", "Authorization and X-API-Key carry different keys; send one")
    key = keys.pop()
    if len(key) > _MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise Problem(401, "unauthenticated", "the API key is not valid", _CHALLENGE)
    return key


def require_scope(need: str):
    """A FastAPI dependency: the caller's key info when its scope grants ``need`` (see :data:`ALLOWED`)."""
    granted = ALLOWED[need]

    def check(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
        header: str | None = Security(_header),
    ):
        key = _presented_key(request, bearer, header)
        info = request.app.state.service.gallery.keys.verify(key)
        if info is None:
            raise Problem(401, "unauthenticated", "the API key is not valid (unknown or revoked)", _CHALLENGE)
        if info.scope not in granted:
            raise Problem(403, "forbidden", f"key {info.id} has scope {info.scope!r}; this route needs one of "
                          f"{', '.join(granted)}")
        request.state.key_id = info.id
        return info

    return check
