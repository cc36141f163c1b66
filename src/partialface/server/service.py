"""The recognition service without HTTP: payloads in, templates stored or compared, decisions out.

:class:`RecognitionService` joins a :class:`DeployedModel`, a gallery and the model's
:class:`Thresholds`. Every payload is checked against the deployment before the backbone sees it: the
model id, plan and scale fingerprints must be this deployment's (else 409: faces protected for another
model give meaningless templates), and every face must have the model's input shape (else 422). The
templates it computes go to the gallery or are compared at once; none ever leaves the service.

Scores are cosines of L2-normalised templates. A subject with several templates is scored by the
gallery's aggregation strategy, the same one for verification (here) and identification (the gallery's
search): ``max`` (best template), ``mean`` (mean cosine) or ``fused`` (cosine to the normalised mean).
"""

from __future__ import annotations

import numpy as np

from ..checks import check_choice
from ..gallery.base import DEFAULT_STRATEGY, STRATEGIES
from ..wire import PROTOCOL, WireLimits, decode_payload
from .deployment import DeployedModel
from .problems import Problem
from .thresholds import Thresholds

__all__ = ["RecognitionService", "aggregate_scores", "cosine"]


def cosine(value) -> float:
    """A cosine of unit vectors as a float in [-1, 1] (float32 rounding can step just outside)."""
    return min(1.0, max(-1.0, float(value)))


def aggregate_scores(templates: np.ndarray, query: np.ndarray, strategy: str) -> float:
    """One subject's score for a unit ``query`` from its unit ``templates`` (N, D)."""
    if strategy == "fused":
        mean = templates.astype(np.float64).mean(axis=0)
        return cosine(mean @ query / max(np.linalg.norm(mean), 1e-12))
    cosines = templates.astype(np.float64) @ query
    return cosine(cosines.max() if strategy == "max" else cosines.mean())


class RecognitionService:
    def __init__(
        self,
        deployed: DeployedModel,
        gallery,
        thresholds: Thresholds,
        strategy: str = DEFAULT_STRATEGY,
        limits: WireLimits = WireLimits(),
    ):
        check_choice("strategy", strategy, STRATEGIES)
        self.deployed, self.gallery, self.thresholds = deployed, gallery, thresholds
        self.strategy, self.limits = strategy, limits
        gallery.bind_model(deployed.id, deployed.dim)  # refuses a gallery enrolled with another model

    # ------------------------------------------------------------------ public description
    def info(self) -> dict:
        d = self.deployed
        return {
            "model": d.id,
            "name": d.name,
            "encoder": d.model.encoder.name,
            "embedding_dim": d.dim,
            "plan_fingerprint": d.plan_fingerprint,
            "scale_fingerprint": d.scale_fingerprint,
            "input_shape": list(d.input_shape),
            "preparation": d.preparation["kind"],
            "protocol": PROTOCOL,
            "thresholds": dict(self.thresholds.thresholds),
            "default_far": self.thresholds.default_far,
            "strategy": self.strategy,
            "limits": {"max_faces": self.limits.max_faces, "max_bytes": self.limits.max_bytes},
            "calibration": self.thresholds.calibration,
        }

    # ------------------------------------------------------------------ payloads -> templates
    def templates(self, body: bytes, faces: int | None = None) -> np.ndarray:
        """Decode and check a payload, embed its faces: unit templates float32 (N, dim)."""
        payload = decode_payload(body, self.limits)
        d = self.deployed
        for what, sent, mine in (
            ("model", payload.model, d.id),
            ("plan", payload.plan, d.plan_fingerprint),
            ("scale", payload.scale, d.scale_fingerprint),
        ):
            if sent != mine:
                raise Problem(409, f"{what}-mismatch", f"payload was protected for {what} {sent!r:.80}, this server runs {mine!r}")
        shape = tuple(payload.channels.shape[1:])
        if shape != d.input_shape:
            raise Problem(422, "shape-mismatch", f"payload faces are {shape} (C,H,W), model {d.id} takes {d.input_shape}")
        if faces is not None and payload.faces != faces:
            raise Problem(422, "face-count", f"this route takes exactly {faces} face(s) per payload, got {payload.faces}")
        return d.embed(payload.channels).numpy().astype(np.float32)

    # ------------------------------------------------------------------ operations
    def enroll(self, subject: str, body: bytes, create: bool) -> list[int]:
        """Add one template per face (all or none), creating the subject when ``create``."""
        return self.gallery.enroll_many({subject: self.templates(body)}, create=create)[subject]

    def verify(self, subject: str, body: bytes, far: str | None) -> dict:
        query = self.templates(body, faces=1)[0]
        stored = self.gallery.subject_templates(subject)
        if len(stored) == 0:
            raise Problem(409, "subject-empty", f"subject {subject!r} has no template to verify against")
        far, threshold = self.thresholds.at(far)
        score = aggregate_scores(stored, query.astype(np.float64), self.strategy)
        return {"subject": subject, "match": score >= threshold, "score": score, "threshold": threshold,
                "far": far, "strategy": self.strategy, "templates": int(len(stored))}

    def identify(self, body: bytes, top_k: int, far: str | None, open_set: bool = True) -> dict:
        """The ``top_k`` best subjects; with ``open_set`` only those at or above the threshold."""
        query = self.templates(body, faces=1)[0]
        far, threshold = self.thresholds.at(far)
        matches = self.gallery.search(query, top_k, self.strategy)
        candidates = [{"subject": m.subject, "score": cosine(m.score), "match": cosine(m.score) >= threshold}
                      for m in matches]
        if open_set:
            candidates = [c for c in candidates if c["match"]]
        return {"candidates": candidates, "threshold": threshold, "far": far, "strategy": self.strategy,
                "open_set": open_set, "top_k": top_k}

    def compare(self, body: bytes, far: str | None) -> dict:
        first, second = self.templates(body, faces=2)
        far, threshold = self.thresholds.at(far)
        score = cosine(first.astype(np.float64) @ second.astype(np.float64))
        return {"match": score >= threshold, "score": score, "threshold": threshold, "far": far}

    def ready(self) -> dict:
        subjects, templates = self.gallery.count()
        return {"status": "ready", "model": self.deployed.id, "subjects": subjects, "templates": templates}

