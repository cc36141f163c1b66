"""The client SDK: photos in, decisions out, and only protected channels on the wire.

    from partialface.client import Client

    with Client("http://127.0.0.1:8000", api_key) as client:
        client.enroll("alice", ["alice_1.jpg", "alice_2.jpg"])     # each photo with its own random rank
        client.verify("alice", "query.jpg")                         # {"match": True, "score": 0.61, ...}
        client.identify("query.jpg", top_k=5)                       # {"candidates": [...], ...}

Everything that touches a face runs in this process: the photo is prepared as the model's record says
(:mod:`partialface.client.prepare`), protected with a fresh random rank (:class:`ClientRecord`) and
serialised (:mod:`partialface.wire`); the server receives the sent channels and fingerprints only. The
rank generator is seeded from the operating system's entropy unless a ``seed`` is given (tests,
benchmarks): the server must not be able to predict which rank a face was sent in.

The record comes from the server (``GET /v1/model/client-record``, any valid key) unless one is
given (``record=`` a :class:`ClientRecord` or a path): a pinned record is checked against the server's
public model info before the first request, so a client never sends faces protected for another model.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import torch

from ..data.pixels import pixels_to_faces
from ..checks import check_choice
from ..errors import PartialFaceError
from ..wire import DTYPES, MEDIA_TYPE, encode_payload
from .prepare import Photo, Preparer, prepare_photo, preparer_for
from .record import ClientRecord

__all__ = ["Client", "ServiceError"]


class ServiceError(PartialFaceError):
    """The server refused a request (its problem document is kept) or could not be reached."""

    def __init__(self, message: str, status: int | None = None, problem: dict | None = None):
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class Client:
    """A connection to a partialface recognition server (``partialface serve``)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        record: ClientRecord | str | os.PathLike | None = None,
        prepare: Preparer | None = None,
        dtype: str = "float16",
        seed: int | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not api_key:
            raise PartialFaceError("an API key is needed (--key or PARTIALFACE_API_KEY)")
        self.url = url.rstrip("/")
        self.dtype = check_choice("dtype", dtype, tuple(DTYPES))
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._record = ClientRecord.load(record) if isinstance(record, (str, os.PathLike)) else record
        self._record_checked = False
        self._prepare = prepare
        self._info: dict | None = None
        self._generator = torch.Generator().manual_seed(secrets.randbits(63) if seed is None else int(seed))

    # ------------------------------------------------------------------ context
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ model
    def model_info(self) -> dict:
        """The server's public model info: id, fingerprints, thresholds, limits (cached)."""
        if self._info is None:
            self._info = self._request("GET", "/v1/model")
        return self._info

    @property
    def record(self) -> ClientRecord:
        """The client record in use: fetched from the server, or the pinned one once checked."""
        if self._record is None:
            self._record = ClientRecord.from_dict(self._request("GET", "/v1/model/client-record"), f"{self.url} record")
        if not self._record_checked:
            info = self.model_info()
            mine = (self._record.model, self._record.plan_fingerprint, self._record.scale_fingerprint)
            theirs = (info["model"], info["plan_fingerprint"], info["scale_fingerprint"])
            if mine != theirs:
                raise PartialFaceError(
                    f"the client record is for model {mine[0]} (plan {mine[1]}, scale {mine[2]}) but the server "
                    f"at {self.url} runs {theirs[0]} (plan {theirs[1]}, scale {theirs[2]})"
                )
            self._record_checked = True
        return self._record

    # ------------------------------------------------------------------ the client step
    def prepare(self, photo: Photo) -> list[np.ndarray]:
        """The faces of one photo as the model's input, (3,S,S) uint8 each, largest first."""
        if self._prepare is None:
            self._prepare = preparer_for(self.record.preparation)
        return prepare_photo(self._prepare, photo)

    def protect(self, photos: Sequence[Photo]) -> np.ndarray:
        """The largest face of each photo, protected: (N,C,H,W) in the wire dtype, one random rank per face."""
        faces = np.stack([self.prepare(photo)[0] for photo in photos])
        return self.record.protect(pixels_to_faces(torch.from_numpy(faces)), self._generator, self.dtype)

    def encode(self, photos: Sequence[Photo]) -> bytes:
        """The wire payload of :meth:`protect` (what is sent, nothing else)."""
        record = self.record
        return encode_payload(
            self.protect(photos), model=record.model, plan=record.plan_fingerprint,
            scale=record.scale_fingerprint, dtype=self.dtype,
        )

    # ------------------------------------------------------------------ service calls
    def enroll(self, subject: str, photos: Sequence[Photo] | Photo, metadata: dict | None = None) -> dict:
        """Add one template per photo to ``subject``, creating it when new (batched to the server's limit).

        Each batch is one transaction on the server (all of its templates or none), and creating the
        subject happens in the same transaction, so concurrent enrolments of one new subject all land.
        ``metadata`` is stored when the subject is new (an existing subject keeps its own).
        """
        photos = _as_list(photos)
        if not photos:
            raise PartialFaceError(f"enroll {subject}: no photos given")
        batch = int(self.model_info()["limits"]["max_faces"])
        payloads = [self.encode(photos[i : i + batch]) for i in range(0, len(photos), batch)]
        if metadata:
            try:
                self._request("POST", "/v1/subjects", json={"name": subject, "metadata": metadata})
            except ServiceError as err:
                if err.problem.get("code") != "subject-exists":
                    raise
        ids: list[int] = []
        for payload in payloads:
            ids += self.post_payload(f"/v1/subjects/{_path(subject)}/templates", payload, create=True)["template_ids"]
        return {"subject": subject, "template_ids": ids}

    def verify(self, subject: str, photo: Photo, far: str | None = None) -> dict:
        """Is the face in ``photo`` ``subject``? ``{"match", "score", "threshold", "far", ...}``."""
        return self.post_payload(f"/v1/subjects/{_path(subject)}/verify", self.encode([photo]), far=far)

    def identify(self, photo: Photo, top_k: int = 5, far: str | None = None, open_set: bool = True) -> dict:
        """Who is in ``photo``? Candidates above the decision threshold, best first (empty: unknown)."""
        return self.post_payload("/v1/identify", self.encode([photo]), top_k=top_k, far=far, open_set=open_set)

    def compare(self, photo_a: Photo, photo_b: Photo, far: str | None = None) -> dict:
        """Are two photos the same person? Neither is stored."""
        return self.post_payload("/v1/compare", self.encode([photo_a, photo_b]), far=far)

    def delete(self, subject: str) -> dict:
        """Delete ``subject`` and every template of it."""
        return self._request("DELETE", f"/v1/subjects/{_path(subject)}")

    def delete_template(self, subject: str, template_id: int) -> None:
        self._request("DELETE", f"/v1/subjects/{_path(subject)}/templates/{int(template_id)}")

    def subjects(self, limit: int = 1000, offset: int = 0) -> list[dict]:
        """Enrolled subjects (name, template count, creation time, metadata)."""
        return self._request("GET", "/v1/subjects", params={"limit": limit, "offset": offset})["subjects"]

    # ------------------------------------------------------------------ transport
    def post_payload(self, path: str, payload: bytes, **params: Any) -> dict:
        """POST a wire payload to ``path`` (query ``params`` that are None are left out)."""
        query = {k: _query_value(v) for k, v in params.items() if v is not None}
        return self._request("POST", path, content=payload, params=query, headers={"Content-Type": MEDIA_TYPE})

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise ServiceError(f"cannot reach the server at {self.url}: {type(err).__name__}: {err}") from None
        if response.is_success:
            return response.json() if response.content else None
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        detail = problem.get("detail") or problem.get("title") or response.reason_phrase
        raise ServiceError(f"{method} {path}: HTTP {response.status_code}: {detail}", response.status_code, problem)


def _as_list(photos: Sequence[Photo] | Photo) -> list[Photo]:
    if isinstance(photos, (str, os.PathLike, bytes)) or not isinstance(photos, Iterable):
        return [photos]
    return list(photos)


def _path(name: str) -> str:
    return quote(name, safe="")


def _query_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
