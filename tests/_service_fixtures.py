"""Helpers of the service tests: an in-process app (:class:`Setup`), real servers as subprocesses,
LFW photos by person, problem-response checks.

Every server binds 127.0.0.1 on a free port, is started as ``python -m partialface serve ...``, is
waited for through ``/readyz`` and is always killed (SIGKILL) when the test ends, pass or fail
(:func:`partialface.server.launch.serve_in_child`).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import torch

from partialface.client import ClientRecord
from partialface.client.prepare import prepare_photo, preparer_for
from partialface.data.pixels import pixels_to_faces
from partialface.gallery import open_gallery
from partialface.server.app import create_app
from partialface.server.deployment import DeployedModel
from partialface.server.launch import serve_in_child
from partialface.server.service import RecognitionService
from partialface.server.thresholds import Thresholds, thresholds_path
from partialface.wire import MEDIA_TYPE, WireLimits, encode_payload

from .conftest import REPO_ROOT, require_lfw

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx in its test client
    from fastapi.testclient import TestClient


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this tree's sources first, one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return env


def cli(*args: str) -> tuple[int, str, str]:
    """``partialface ARGS`` in this process (no interpreter start-up): (exit status, stdout, stderr)."""
    from partialface.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exit_:  # argparse usage errors
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m partialface ARGS`` in a child process (captured text output)."""
    return subprocess.run([sys.executable, "-m", "partialface", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or subprocess_env(), cwd=REPO_ROOT)


def create_key(gallery_url: str, scope: str = "admin") -> str:
    with open_gallery(gallery_url) as gallery:
        return gallery.keys.create(scope, "test")[1]


@contextmanager
def running_server(gallery_url: str, log_dir: Path, *extra: str, model: str = "default"):
    """A ``partialface serve`` child on a free port of 127.0.0.1, ready when yielded, always killed."""
    args = ["--model", model, "--gallery", gallery_url, "--threads", "1", "--log-level", "warning", *extra]
    log = log_dir / f"server-{time.monotonic_ns()}.log"
    with serve_in_child(args, log, env=subprocess_env(), cwd=REPO_ROOT) as server:
        yield server


def lfw_people(min_photos: int, count: int, skip: int = 0) -> list[list[Path]]:
    """``count`` LFW people (sorted by name, after ``skip``) with >= ``min_photos`` photos each."""
    root = require_lfw() / "images"
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= min_photos:
            people.append(photos)
    return people[skip : skip + count]


def lfw_person(name: str, count: int) -> list[Path]:
    """The first ``count`` photos of one LFW person (the README's walk-through names its people)."""
    photos = sorted((require_lfw() / "images" / name).glob("*.jpg"))[:count]
    assert len(photos) == count, f"{name}: fewer than {count} photos"
    return photos


# The README's walk-through: a subject enrolled from four photos (a fused template, docs/gallery.md) and new
# photos of them; Tony_Blair, the README's stranger, and one more are never enrolled. The shipped PartialFace model is weak on one photo
# against one (docs/results.md: TAR@FAR=1e-3 under 20 % on unseen people), so decisions on real faces
# are checked where a deployment would make them: against a subject enrolled from several photos.
README_SUBJECT, README_STRANGERS = "Colin_Powell", ("Tony_Blair", "Gerhard_Schroeder")


def problem(response, status: int, code: str | None = None) -> dict:
    """Check ``response`` is an RFC 9457 problem with ``status`` (and ``code``); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank" and "\n" not in body["detail"]
    if code:
        assert body["code"] == code, body
    return body


class Setup:
    """One service over a SQLite file, an app, keys of every scope, and a way to make payloads.

    ``thresholds=None`` uses the shipped, calibrated ones (decisions on real faces need them).
    """

    def __init__(self, tmp, limits=WireLimits(), thresholds: Thresholds | None = None, model: str = "default"):
        self.deployed = DeployedModel.load(model)
        self.thresholds = thresholds or Thresholds.load(thresholds_path(self.deployed.path), model=self.deployed.id)
        self.db = tmp / "gallery.db"
        self.gallery = open_gallery(f"sqlite:///{self.db}")
        self.service = RecognitionService(self.deployed, self.gallery, self.thresholds, limits=limits)
        self.http = TestClient(create_app(self.service), raise_server_exceptions=False)
        self.keys = {scope: self.gallery.keys.create(scope, "test")[1] for scope in ("admin", "enroll", "recognize")}
        self.record = ClientRecord.from_dict(self.deployed.client_record())
        self.generator = torch.Generator().manual_seed(0)

    def auth(self, scope="admin") -> dict:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def protect(self, photos) -> np.ndarray:
        prepare = preparer_for(self.record.preparation)
        faces = np.stack([prepare_photo(prepare, p)[0] for p in photos])
        return self.record.protect(pixels_to_faces(torch.from_numpy(faces)), self.generator)

    def payload(self, sent, **change) -> bytes:
        ids = {"model": self.record.model, "plan": self.record.plan_fingerprint,
               "scale": self.record.scale_fingerprint, **change}
        return encode_payload(sent, **ids)

    def post(self, path, body, scope="admin", content_type=MEDIA_TYPE, **params):
        headers = {**self.auth(scope), "Content-Type": content_type}
        return self.http.post(path, content=body, headers=headers, params=params)
