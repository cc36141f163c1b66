"""The HTTP API of the recognition service (FastAPI): ``create_app(service)``.

Routes (all under ``/v1`` need an API key, see :mod:`partialface.server.auth`):

==============================================  =========  =====================================================
route                                           scope      what
==============================================  =========  =====================================================
``GET /healthz``, ``GET /readyz``               none       the process is up; the model and the gallery answer
``GET /v1/model``                               read       model id, fingerprints, thresholds, limits
``GET /v1/model/client-record``                 read       plan, scale and preparation a client protects with
``POST /v1/subjects``                           enroll     create a subject (JSON name + metadata)
``GET /v1/subjects``, ``GET /v1/subjects/{n}``  read       list subjects / one subject (never templates)
``DELETE /v1/subjects/{n}``                     enroll     delete a subject and all its templates
``POST /v1/subjects/{n}/templates``             enroll     add one template per face of a payload (all or none)
``DELETE /v1/subjects/{n}/templates/{id}``      enroll     delete one template
``POST /v1/subjects/{n}/verify``                recognize  one face against a subject: score + decision
``POST /v1/identify``                           recognize  one face against the gallery: top-k, open-set decision
``POST /v1/compare``                            recognize  two faces against each other: score + decision
==============================================  =========  =====================================================

Every answer is JSON; every error an RFC 9457 problem (:mod:`partialface.server.problems`). No route
returns a template: templates are computed, stored and compared inside the server only.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path as PathParam, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..jsonfile import write_json
from ..gallery.base import MAX_TOP_K, NAME_PATTERN
from ..wire import WireLimits
from .auth import require_scope
from .body import PAYLOAD_BODY, BodyLimit, payload_body
from .problems import Problem, install_problem_handlers, problem_responses

__all__ = ["create_app", "openapi_schema", "write_openapi"]

Name = Annotated[str, PathParam(pattern=f"^{NAME_PATTERN.pattern}$", description="subject name")]
Far = Annotated[str | None, Query(max_length=16, description="operating point, one of the model's calibrated FARs (default: the server's)")]
Payload = Annotated[bytes, Depends(payload_body)]

_AUTH = problem_responses(400, 401, 403)
_PAYLOAD = problem_responses(409, 413, 415, 422)
_SUBJECT_PAYLOAD = problem_responses(404, 409, 413, 415, 422)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(Strict):
    status: str


class Ready(Strict):
    status: str
    model: str
    subjects: int
    templates: int


class Limits(Strict):
    max_faces: int
    max_bytes: int


class ModelInfo(Strict):
    model: str = Field(description="model id: name@first 12 hex digits of the weights' sha256")
    name: str
    encoder: str
    embedding_dim: int
    plan_fingerprint: str
    scale_fingerprint: str
    input_shape: list[int]
    preparation: str
    protocol: int
    thresholds: dict[str, float] = Field(description="calibrated cosine thresholds by false-accept rate")
    default_far: str
    strategy: str
    limits: Limits
    calibration: dict[str, Any]


class ClientRecord(Strict):
    format: str
    model: str
    encoder: str
    plan: dict[str, Any] | None
    channels: list[int] | None
    frequency_scale: list[float] | None
    shape: list[int]
    preparation: dict[str, Any]


class SubjectCreate(Strict):
    name: str = Field(pattern=f"^{NAME_PATTERN.pattern}$")
    metadata: dict[str, Any] | None = None


class Subject(Strict):
    name: str
    templates: int
    created_at: datetime
    metadata: dict[str, Any]


class SubjectList(Strict):
    subjects: list[Subject]
    limit: int
    offset: int


class Deleted(Strict):
    subject: str
    templates_deleted: int


class TemplatesAdded(Strict):
    subject: str
    template_ids: list[int]


class Decision(Strict):
    match: bool
    score: float = Field(description="cosine similarity of the templates")
    threshold: float
    far: str


class VerifyResult(Decision):
    subject: str
    strategy: str
    templates: int


class Candidate(Strict):
    subject: str
    score: float
    match: bool


class IdentifyResult(Strict):
    candidates: list[Candidate] = Field(description="best first; with open_set only matches (empty: unknown face)")
    threshold: float
    far: str
    strategy: str
    open_set: bool
    top_k: int


def _subject(info) -> Subject:
    return Subject(name=info.name, templates=info.templates, created_at=info.created_at, metadata=info.metadata or {})


def create_app(service=None, limits: WireLimits | None = None) -> FastAPI:
    """The ASGI app serving ``service`` (a :class:`RecognitionService`; None only to build the schema)."""
    app = FastAPI(
        title="partialface recognition service",
        version=__version__,
        description="Privacy-preserving face recognition: clients send protected frequency channels "
        "(partialface.wire), never pixels; the server enrolls, verifies and identifies.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    limits = limits or (service.limits if service is not None else WireLimits())
    app.add_middleware(BodyLimit, max_bytes=limits.max_bytes)
    install_problem_handlers(app)
    read, enroll, recognize = (Depends(require_scope(s)) for s in ("read", "enroll", "recognize"))

    def svc(request: Request):
        return request.app.state.service

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Ready, tags=["health"], responses=problem_responses(503))
    def readyz(request: Request) -> Ready:
        try:
            return Ready(**svc(request).ready())
        except Exception as err:  # any failure of the store means "not ready", said without internals
            raise Problem(503, "not-ready", f"the gallery does not answer ({type(err).__name__})") from None

    @app.get("/v1/model", response_model=ModelInfo, tags=["model"], dependencies=[read], responses=_AUTH)
    def model_info(request: Request) -> ModelInfo:
        return ModelInfo(**svc(request).info())

    @app.get("/v1/model/client-record", response_model=ClientRecord, tags=["model"], dependencies=[read],
             responses=_AUTH)
    def client_record(request: Request) -> ClientRecord:
        return ClientRecord(**svc(request).deployed.client_record())

    @app.post("/v1/subjects", response_model=Subject, status_code=201, tags=["subjects"], dependencies=[enroll],
              responses={**_AUTH, **problem_responses(409, 413, 422)})
    def create_subject(request: Request, body: SubjectCreate) -> Subject:
        return _subject(svc(request).gallery.create_subject(body.name, body.metadata))

    @app.get("/v1/subjects", response_model=SubjectList, tags=["subjects"], dependencies=[read],
             responses={**_AUTH, **problem_responses(422)})
    def list_subjects(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                      offset: Annotated[int, Query(ge=0)] = 0) -> SubjectList:
        subjects = svc(request).gallery.list_subjects(limit=limit, offset=offset)
        return SubjectList(subjects=[_subject(s) for s in subjects], limit=limit, offset=offset)

    @app.get("/v1/subjects/{name}", response_model=Subject, tags=["subjects"], dependencies=[read],
             responses={**_AUTH, **problem_responses(404, 422)})
    def get_subject(request: Request, name: Name) -> Subject:
        return _subject(svc(request).gallery.get_subject(name))

    @app.delete("/v1/subjects/{name}", response_model=Deleted, tags=["subjects"], dependencies=[enroll],
                responses={**_AUTH, **problem_responses(404, 422)})
    def delete_subject(request: Request, name: Name) -> Deleted:
        return Deleted(subject=name, templates_deleted=svc(request).gallery.delete_subject(name))

    @app.post("/v1/subjects/{name}/templates", response_model=TemplatesAdded, status_code=201, tags=["templates"],
              dependencies=[enroll], responses={**_AUTH, **_SUBJECT_PAYLOAD}, openapi_extra=PAYLOAD_BODY)
    def add_templates(request: Request, name: Name, body: Payload,
                      create: Annotated[bool, Query(description="create the subject when new")] = False) -> TemplatesAdded:
        return TemplatesAdded(subject=name, template_ids=svc(request).enroll(name, body, create))

    @app.delete("/v1/subjects/{name}/templates/{template_id}", status_code=204, tags=["templates"],
                dependencies=[enroll], responses={**_AUTH, **problem_responses(404, 422)})
    def delete_template(request: Request, name: Name,
                        template_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)]) -> Response:
        svc(request).gallery.delete_template(name, template_id)
        return Response(status_code=204)

    @app.post("/v1/subjects/{name}/verify", response_model=VerifyResult, tags=["recognition"],
              dependencies=[recognize], responses={**_AUTH, **_SUBJECT_PAYLOAD}, openapi_extra=PAYLOAD_BODY)
    def verify(request: Request, name: Name, body: Payload, far: Far = None) -> VerifyResult:
        return VerifyResult(**svc(request).verify(name, body, far))

    @app.post("/v1/identify", response_model=IdentifyResult, tags=["recognition"], dependencies=[recognize],
              responses={**_AUTH, **_PAYLOAD}, openapi_extra=PAYLOAD_BODY)
    def identify(request: Request, body: Payload, far: Far = None,
                 top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
                 open_set: Annotated[bool, Query(description="only candidates at or above the threshold")] = True,
                 ) -> IdentifyResult:
        return IdentifyResult(**svc(request).identify(body, top_k, far, open_set))

    @app.post("/v1/compare", response_model=Decision, tags=["recognition"], dependencies=[recognize],
              responses={**_AUTH, **_PAYLOAD}, openapi_extra=PAYLOAD_BODY)
    def compare(request: Request, body: Payload, far: Far = None) -> Decision:
        return Decision(**svc(request).compare(body, far))

    return app


def openapi_schema() -> dict:
    """The OpenAPI document the code generates (committed as docs/openapi.json)."""
    return create_app().openapi()


def write_openapi(path: str | os.PathLike) -> Path:
    return write_json(path, openapi_schema())
