"""API keys, kept in the gallery's database: only a salted hash is stored, checked in constant time.

A key reads ``pfk_<id>_<secret>``: ``id`` is 12 hex digits, public (listed, logged, used to revoke);
``secret`` is 32 random bytes (``secrets.token_urlsafe``). The plaintext is returned once, by
:meth:`KeyStore.create`, and never stored.

Why HMAC-SHA256 with a per-key random salt and not a slow KDF (scrypt, argon2): a slow KDF protects
*low-entropy* secrets that people choose, by making each guess expensive. These secrets are 256 random
bits, so a stolen database gives no feasible guess to make, with or without a slow hash; a slow hash
would only make every API request cost tens of milliseconds of CPU, a lever for denial of service.
The per-key salt keeps equal secrets from having equal hashes and rules out precomputed tables.
The stored digest is compared with :func:`hmac.compare_digest`, whose time does not depend on where
the bytes differ; an unknown id is hashed and compared against a dummy digest so that a miss costs the
same as a wrong secret.

Scopes (``enroll``, ``recognize``, ``admin``) are stored with the key; what each allows is the server's
decision (``docs/service.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from .base import utc_now
from .errors import GalleryError

__all__ = ["KeyInfo", "KeyStore", "SCOPES", "KEY_PREFIX"]

SCOPES = ("enroll", "recognize", "admin")
KEY_PREFIX = "pfk"
_KEY_PATTERN = re.compile(rf"{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})")
_DUMMY_SALT = bytes(16)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    scope: str
    label: str
    created_at: datetime
    revoked: bool = False


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("ascii"), hashlib.sha256).digest()


class KeyStore:
    """Create, list, revoke and verify API keys. ``rows`` is the store's table adapter, with
    ``insert(id, scope, label, created_at, salt, digest)``, ``get(id)`` -> row or None,
    ``all()`` -> rows, ``revoke(id)`` -> bool; a row is ``(id, scope, label, created_at, revoked,
    salt, digest)``."""

    def __init__(self, rows):
        self._rows = rows

    def create(self, scope: str, label: str = "") -> tuple[KeyInfo, str]:
        """A new key: ``(its info, the plaintext key)``. The plaintext is not kept anywhere."""
        if scope not in SCOPES:
            raise GalleryError(f"key scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if not isinstance(label, str) or len(label) > 200 or not label.isprintable():
            raise GalleryError(f"key label must be printable text of at most 200 characters, got {label!r}")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_bytes(16)
        created_at = utc_now()
        self._rows.insert(key_id, scope, label, created_at, salt, _digest(salt, secret))
        return KeyInfo(key_id, scope, label, created_at), f"{KEY_PREFIX}_{key_id}_{secret}"

    def list(self) -> list[KeyInfo]:
        return [self._info(row) for row in self._rows.all()]

    def revoke(self, key_id: str) -> None:
        """Revoke a key for good (the row stays, marked, so its id is never reused)."""
        if not isinstance(key_id, str) or not self._rows.revoke(key_id):
            raise GalleryError(f"no API key with id {key_id!r}")

    def verify(self, plaintext: str) -> KeyInfo | None:
        """The key's info if ``plaintext`` is a valid, unrevoked key; else ``None``."""
        match = _KEY_PATTERN.fullmatch(plaintext) if isinstance(plaintext, str) else None
        if match is None:
            return None
        key_id, secret = match.groups()
        row = self._rows.get(key_id)
        salt, stored = (row[5], row[6]) if row is not None else (_DUMMY_SALT, bytes(32))
        if not hmac.compare_digest(_digest(bytes(salt), secret), bytes(stored)) or row is None:
            return None
        info = self._info(row)
        return None if info.revoked else info

    @staticmethod
    def _info(row) -> KeyInfo:
        key_id, scope, label, created_at, revoked = row[:5]
        if isinstance(created_at, str):  # SQLite keeps ISO text, PostgreSQL a timestamptz
            created_at = datetime.fromisoformat(created_at)
        return KeyInfo(key_id, scope, label, created_at.astimezone(timezone.utc), bool(revoked))
