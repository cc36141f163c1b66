"""The API-key store, against every gallery store (fixtures from test_gallery.py)."""

from __future__ import annotations

import sqlite3

import pytest

from partialface.gallery import GalleryError, open_gallery
from partialface.gallery import keys as keys_module

from .test_gallery import store_url  # noqa: F401  (the fixture)


def _stored_rows(url: str) -> list[tuple]:
    """Every row of the key table, read around the store."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///"):]) as db:
            return db.execute("SELECT * FROM pf_api_keys").fetchall()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM pf_api_keys").fetchall()


def test_only_a_salted_hash_is_stored(store_url):  # noqa: F811
    with open_gallery(store_url) as g:
        first, key1 = g.keys.create("enroll", "kiosk 1")
        second, key2 = g.keys.create("enroll", "kiosk 2")
    assert key1.startswith(f"pfk_{first.id}_") and len(key1.split("_", 2)[2]) == 43
    rows = _stored_rows(store_url)
    assert len(rows) == 2
    dump = repr(rows).encode() + b"".join(bytes(v) for row in rows for v in row if isinstance(v, (bytes, memoryview)))
    for key in (key1, key2):
        secret = key.split("_", 2)[2]
        assert secret.encode() not in dump and key.encode() not in dump
    salts = {bytes(row[5]) for row in rows}
    assert len(salts) == 2  # one salt per key


def test_verify_revoke_and_list(store_url):  # noqa: F811
    with open_gallery(store_url) as g:
        admin, admin_key = g.keys.create("admin")
        reader, reader_key = g.keys.create("recognize", "front desk")
        assert g.keys.verify(admin_key) == admin and g.keys.verify(reader_key).scope == "recognize"
        secret = reader_key.split("_", 2)[2]
        wrong = reader_key[: -len(secret)] + ("B" if secret[0] == "A" else "A") + secret[1:]
        swapped = f"pfk_{admin.id}_{secret}"  # a real secret under another key's id
        for bad in (wrong, swapped, "", "pfk_", reader_key + "x", reader_key.upper(), None, 42):
            assert g.keys.verify(bad) is None, bad
        g.keys.revoke(reader.id)
        assert g.keys.verify(reader_key) is None and g.keys.verify(admin_key) == admin
        assert [(k.id, k.revoked) for k in g.keys.list()] == [(admin.id, False), (reader.id, True)]
        with pytest.raises(GalleryError, match="no API key"):
            g.keys.revoke("000000000000")
        with pytest.raises(GalleryError, match="scope"):
            g.keys.create("superuser")
        with pytest.raises(GalleryError, match="label"):
            g.keys.create("admin", "bad\nlabel")


def test_verify_compares_in_constant_time(store_url, monkeypatch):  # noqa: F811
    """Every verification of a well-formed key, known id or not, goes through hmac.compare_digest."""
    calls = []
    real = keys_module.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    with open_gallery(store_url) as g:
        info, key = g.keys.create("enroll")
        assert g.keys.verify(key) == info
        assert g.keys.verify("pfk_000000000000_" + key.split("_", 2)[2]) is None
    assert calls == [(32, 32), (32, 32)]
