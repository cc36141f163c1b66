"""The verification protocol of a loaded model: accuracy from protected queries on LFW pairs or a ``.bin`` set.

This is the measurement behind ``partialface eval``, ``make demo`` and the results tables: every query
image draws one random rank of the model's plan from a generator seeded with ``seed`` (``ranks = K``
averages the templates of K random ranks per image; ``rank = (S, P)`` fixes one rank for every image),
the mirrored image's embedding is added (``flip``), and LFW ``pairs.txt`` pairs are split into 10
stratified folds (equal shares of same and different pairs); ``.bin`` sets into 10 consecutive folds.

``model`` is anything with the :class:`partialface.api.FaceModel` interface (``encoder``, ``device``,
``crop``, ``source``, ``embed_fn()``, ``embed_protected``, ``load_image``, ``prepare_photo``); this module does not import
the inference API, which sits above the evaluation layer (docs/architecture.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..data import read_lfw_pairs, select_folds
from ..errors import PartialFaceError
from .metrics import stratified_folds, verification_report
from .ranks import rank_analysis
from .verification import score_bin, score_pairs

__all__ = ["evaluate_model_on_pairs"]


def _embed_fn(model, rank: tuple[int, int] | None):
    if rank is None:
        return model.embed_fn()
    if not hasattr(model.encoder, "encode_rank"):
        raise PartialFaceError(f"a fixed rank (--rank) needs a PartialFace model; this one's encoder is {model.encoder.name!r}")
    return lambda images, generator: model.embed_protected(model.encoder.encode_rank(images.to(model.device), *rank))


def evaluate_model_on_pairs(
    model,
    pairs_path: str,
    images: str | None = None,
    folds: list[int] | None = None,
    seed: int = 0,
    ranks: int = 1,
    rank: tuple[int, int] | None = None,
    flip: bool = True,
    batch_size: int = 64,
    progress: bool = True,
    per_rank: bool = False,
    raw_photos: bool = False,
) -> tuple[dict[str, Any], Any, Any]:
    """``(report, scores, issame)`` of a loaded model on a ``pairs.txt`` (with ``images``) or a ``.bin`` file.

    ``folds`` selects ``pairs.txt`` folds (e.g. ``[7, 8]``, the development protocol's); ``per_rank``
    adds :func:`partialface.evaluation.ranks.rank_analysis` (each rank fixed in turn). The report is
    :func:`partialface.evaluation.metrics.verification_report` plus what reproduces it: encoder, plan
    fingerprint, model source, seed, ranks per image, fixed rank, flip, and the seconds it took.
    ``raw_photos`` prepares each photo as the model records (``model.prepare_photo``: its box, or five-point
    alignment), the service client's path, instead of cutting the crop box (``model.load_image``).
    """
    embed_fn = _embed_fn(model, rank)
    started = time.perf_counter()
    if str(pairs_path).endswith(".bin"):
        if raw_photos:
            raise PartialFaceError(f"{pairs_path}: a .bin set holds prepared faces, not raw photos (--raw-photos)")
        scores, issame = score_bin(embed_fn, pairs_path, batch_size, flip, ranks, seed,
                                   image_size=model.crop.size if model.crop else 112, progress=progress)
        report = verification_report(scores, issame)
    else:
        if not images:
            raise PartialFaceError("a pairs.txt file needs its image root (--images: Name/Name_0001.jpg)")
        root = Path(images)
        if not root.is_dir():
            raise PartialFaceError(f"{root}: image folder not found")
        pairs = read_lfw_pairs(pairs_path)
        if folds:
            pairs = select_folds(pairs, folds)
        load = (lambda key: model.prepare_photo(root / key)[0]) if raw_photos else (lambda key: model.load_image(root / key))
        scores, issame = score_pairs(embed_fn, pairs, load, batch_size, flip, ranks, seed, progress)
        report = verification_report(scores, issame, folds=stratified_folds(issame))
        report["folds"] = folds or sorted({p.fold for p in pairs})
        if per_rank:
            report["per_rank"] = rank_analysis(model, pairs, load, batch_size, flip, progress)
    report.update(
        encoder=model.encoder.name,
        plan=model.encoder.plan.fingerprint if model.encoder.plan else None,
        model=model.source,
        seed=seed,
        ranks_per_image=ranks,
        fixed_rank=list(rank) if rank else None,
        flip=flip,
        **({"queries": f"raw photos prepared as the model records ({model.preparation.kind})"} if raw_photos else {}),
        seconds=round(time.perf_counter() - started, 1),
    )
    return report, scores, issame
