"""Every error the server answers is an RFC 9457 problem document (``application/problem+json``).

``{"type": "about:blank", "title": "Conflict", "status": 409, "detail": "...", "code": "model-mismatch"}``:
``title`` is the HTTP reason phrase, ``detail`` the one-line explanation (the same text a
:class:`~partialface.errors.PartialFaceError` carries), ``code`` a stable slug a program can branch on.

Errors come from three places and are mapped here, once: :class:`Problem` raised by the service
itself, the lower layers' errors (wire format, gallery; mapped by class in :data:`_BY_CLASS`), and the
framework's own (unknown route, wrong method, a query parameter that fails validation). Anything else is
a bug: it is logged with its traceback on the server and answered as a 500 problem without one.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import PartialFaceError
from ..gallery.errors import GalleryError, ModelMismatch, NoSchema, SubjectExists, SubjectNotFound, TemplateNotFound
from ..wire import PayloadTooLarge, WireError

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "ProblemDocument", "problem_responses", "install_problem_handlers"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("partialface.server")


class Problem(PartialFaceError):
    """An error with its HTTP status and a stable ``code``; the message is the problem's ``detail``."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.headers = status, code, headers


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, with the ``code`` extension."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str


# Lower layers' errors by class, most specific first: (class, status, code).
_BY_CLASS: tuple[tuple[type[Exception], int, str], ...] = (
    (PayloadTooLarge, 413, "payload-too-large"),
    (WireError, 422, "payload-invalid"),
    (SubjectExists, 409, "subject-exists"),
    (SubjectNotFound, 404, "subject-not-found"),
    (TemplateNotFound, 404, "template-not-found"),
    (ModelMismatch, 409, "model-mismatch"),
    (NoSchema, 503, "gallery-not-ready"),
    (GalleryError, 422, "gallery-refused"),
)


def problem_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, "code": code}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def as_problem(err: PartialFaceError) -> Problem:
    """A lower layer's user error as the problem it answers (a plain PartialFaceError: 422)."""
    if isinstance(err, Problem):
        return err
    for cls, status, code in _BY_CLASS:
        if isinstance(err, cls):
            return Problem(status, code, str(err))
    return Problem(422, "invalid", str(err))


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem answers for ``statuses``."""
    return {
        status: {"model": ProblemDocument, "description": HTTPStatus(status).phrase,
                 "content": {PROBLEM_MEDIA_TYPE: {}}}
        for status in statuses
    }


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(PartialFaceError)
    async def _user_error(request: Request, err: PartialFaceError) -> JSONResponse:
        problem = as_problem(err)
        return problem_response(problem.status, problem.code, str(problem), problem.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(err.status_code, "http-error")
        detail = err.detail if isinstance(err.detail, str) else HTTPStatus(err.status_code).phrase
        if err.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}"
        return problem_response(err.status_code, code, detail, getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        parts = []
        for item in err.errors():
            where = ".".join(str(p) for p in item.get("loc", ()))
            parts.append(f"{where}: {item.get('msg', 'invalid')}")
        return problem_response(422, "validation", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal", "internal server error (logged on the server)")
