"""Per-rank analysis of a PartialFace model: accuracy with each rank fixed, and template consistency.

The paper's Table 2 reports how much verification varies when every query uses one given rank; a
deployment also needs templates of the same face under different ranks to agree (the server never
knows the rank). :func:`rank_analysis` embeds every image of a pair list once per rank and reports:

* per rank: accuracy (10 stratified folds), TAR at FAR=1e-3; their mean, min and max;
* template consistency: the mean cosine similarity between templates of the *same image* under two
  different ranks (1 = rank-invariant), beside the mean similarity of genuine and impostor pairs
  (same rank) for scale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ..errors import PartialFaceError
from .metrics import stratified_folds, verification_report
from .templates import embed_in_batches, make_template_fn, paired_cosine_similarity
from .verification import PairLike, _LazyImages, _parse_pairs

__all__ = ["rank_analysis"]


def rank_analysis(
    model,
    pairs: Iterable[PairLike],
    load_image: Callable[[Any], torch.Tensor],
    batch_size: int = 64,
    flip: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Fix each rank of ``model.encoder.plan`` in turn (see the module docstring)."""
    encoder = model.encoder
    if not hasattr(encoder, "encode_rank"):
        raise PartialFaceError(f"per-rank analysis needs a PartialFace model; this one's encoder is {encoder.name!r}")
    plan = encoder.plan
    keys, first, second, issame = _parse_pairs(pairs)
    lazy = _LazyImages(keys, load_image)
    images = torch.stack([lazy[i] for i in range(len(lazy))])  # decode once, reuse for every rank
    folds = stratified_folds(issame)
    per_rank, stacks = [], []
    for subset in range(plan.m):
        for permutation in range(plan.n):
            def embed(x, generator, s=subset, p=permutation):
                return model.embed_protected(encoder.encode_rank(x.to(model.device), s, p))

            templates = embed_in_batches(make_template_fn(embed, flip=flip), images, batch_size, progress,
                                         description=f"rank ({subset},{permutation})")
            scores = paired_cosine_similarity(templates[torch.from_numpy(first)], templates[torch.from_numpy(second)])
            report = verification_report(scores.double().numpy(), issame, folds=folds)
            per_rank.append({"subset": subset, "permutation": permutation, "accuracy": report["accuracy"],
                             "tar_at_far_1e-3": report["tar_at_far_1e-3"],
                             "genuine": float(scores[torch.from_numpy(issame)].mean()),
                             "impostor": float(scores[torch.from_numpy(~issame)].mean())})
            stacks.append(templates)
    stacked = torch.stack(stacks)  # (R, N, D), L2-normalised
    r = stacked.shape[0]
    total = stacked.sum(0).pow(2).sum(-1)  # ||sum_r t_r||^2 = R + sum_{r != r'} <t_r, t_r'>
    consistency = (total - r) / (r * (r - 1))
    accuracies = np.array([row["accuracy"] for row in per_rank])
    return {
        "ranks": per_rank,
        "rank_accuracy_mean": float(accuracies.mean()),
        "rank_accuracy_min": float(accuracies.min()),
        "rank_accuracy_max": float(accuracies.max()),
        "template_consistency_mean": float(consistency.mean()),
        "template_consistency_min": float(consistency.min()),
        "genuine_similarity_mean": float(np.mean([row["genuine"] for row in per_rank])),
        "impostor_similarity_mean": float(np.mean([row["impostor"] for row in per_rank])),
        "flip": flip,
    }
