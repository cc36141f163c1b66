"""Face-verification pipeline, written against an embed *callable* rather than a trainer or model.

``embed_fn(images, generator) -> (B, D)`` receives a batch ``(B, 3, H, W)`` in ``[-1, 1]`` and a
``torch.Generator`` seeded from ``seed`` (a CPU generator: a protected query draws its random rank
from it, reproducibly). Templates are fused per image (see :func:`make_template_fn`): ``flip`` adds
the mirrored image's embedding, ``ranks_per_image = k > 1`` embeds each image ``k`` times with fresh
randomness and averages (multi-rank fusion). Pairs are scored by the cosine similarity of their
templates and summarised by :func:`verification_report`.

Folds: unless explicit ``folds`` are passed, the pairs are split into ``n_folds`` (10) folds of
consecutive pairs, as InsightFace does for its ``.bin`` sets. For the full LFW View 2 (6,000 pairs
in ``pairs.txt`` order) these are exactly the official folds. The development protocol evaluates on
only two LFW folds (7-8, 1,200 pairs): passing their LFW fold ids would give a 2-fold protocol, so
do not; the default splits them into 10 folds of 120 consecutive pairs. Because those pairs come
in class blocks of 300, a fold may then hold only same-person or only different-person pairs and
each threshold is trained on a class-imbalanced set, which costs accuracy when the classes overlap
(about 3 points at 80% on simulated scores); ``folds=stratified_folds(issame)`` gives 10 folds of
consecutive same and consecutive different pairs in equal shares instead.
Randomness: the generator is advanced batch by batch, so results depend on ``seed``,
``batch_size`` and the order of the pairs, and are reproducible given all three.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from partialface.errors import PartialFaceError
from partialface.evaluation.metrics import verification_report
from partialface.evaluation.templates import (
    EmbedFn,
    check_image_values,
    embed_in_batches,
    make_template_fn,
    paired_cosine_similarity,
)

__all__ = ["PairLike", "score_bin", "score_pairs", "verify_bin", "verify_pairs"]

PairLike = Any
"""``(key_a, key_b, issame)``, or an object with ``path_a``, ``path_b`` and ``issame`` attributes
(such as :class:`partialface.data.pairs.Pair`)."""


def _pair_fields(pair: PairLike, index: int) -> tuple[Hashable, Hashable, bool]:
    """``(key_a, key_b, issame)`` of one pair; PartialFaceError naming the pair when malformed."""
    if all(hasattr(pair, name) for name in ("path_a", "path_b", "issame")):
        key_a, key_b, flag = pair.path_a, pair.path_b, pair.issame
    else:
        try:
            key_a, key_b, flag = pair
        except (TypeError, ValueError):
            raise PartialFaceError(
                f"pair {index} must be (key_a, key_b, issame), got {pair!r}"
            ) from None
    if not isinstance(flag, (bool, np.bool_)) and flag not in (0, 1):
        raise PartialFaceError(f"pair {index}: issame must be a boolean or 0/1, got {flag!r}")
    for key in (key_a, key_b):
        if not isinstance(key, Hashable):
            raise PartialFaceError(f"pair {index}: image key {key!r} is not hashable")
    return key_a, key_b, bool(flag)


def _parse_pairs(pairs: Iterable[PairLike]) -> tuple[list[Hashable], np.ndarray, np.ndarray, np.ndarray]:
    """Unique image keys (first-appearance order), index of each pair's images, and issame."""
    fields = [_pair_fields(pair, index) for index, pair in enumerate(pairs)]
    if not fields:
        raise PartialFaceError("no pairs to verify")
    position: dict[Hashable, int] = {}
    for key_a, key_b, _ in fields:
        position.setdefault(key_a, len(position))
        position.setdefault(key_b, len(position))
    first = np.array([position[key_a] for key_a, _, _ in fields], dtype=np.int64)
    second = np.array([position[key_b] for _, key_b, _ in fields], dtype=np.int64)
    issame = np.array([flag for _, _, flag in fields], dtype=bool)
    return list(position), first, second, issame


class _LazyImages:
    """Loads image ``i`` (key ``keys[i]``) only when asked, checking what the loader returned."""

    def __init__(self, keys: Sequence[Hashable], load_image: Callable[[Any], torch.Tensor]) -> None:
        self._keys = keys
        self._load_image = load_image

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index: int) -> torch.Tensor:
        key = self._keys[index]
        image = self._load_image(key)
        # A loader that returns something else is a bug in code: plain ValueError keeps its traceback.
        if not isinstance(image, torch.Tensor):
            raise ValueError(f"image {key!r}: load_image returned {type(image).__name__}, not a tensor")
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image {key!r}: expected a (3, H, W) tensor, got shape {tuple(image.shape)}")
        check_image_values(image, f"image {key!r}")
        return image


def _score_images(
    embed_fn: EmbedFn,
    images: torch.Tensor | _LazyImages,
    first: np.ndarray,
    second: np.ndarray,
    batch_size: int,
    flip: bool,
    ranks_per_image: int,
    seed: int,
    progress: bool,
) -> np.ndarray:
    """Embed every image once into a fused template and score the pairs ``(first[i], second[i])``."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise PartialFaceError(f"seed must be an integer, got {seed!r}")
    generator = torch.Generator().manual_seed(int(seed))
    templates = embed_in_batches(
        make_template_fn(embed_fn, flip=flip, ranks_per_image=ranks_per_image),
        images,
        batch_size=batch_size,
        progress=progress,
        generator=generator,
        description="verification templates",
    )
    similarity = paired_cosine_similarity(
        templates[torch.from_numpy(first)], templates[torch.from_numpy(second)]
    )
    return similarity.double().numpy()


def score_pairs(
    embed_fn: EmbedFn,
    pairs: Iterable[PairLike],
    load_image: Callable[[Any], torch.Tensor],
    batch_size: int = 64,
    flip: bool = True,
    ranks_per_image: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of every pair's templates.

    Each distinct image key is loaded once with ``load_image(key) -> (3, H, W)`` tensor in
    ``[-1, 1]`` (lazily, one batch at a time) and embedded once.

    Returns:
        ``(scores (N,) float64, issame (N,) bool)`` in the order of ``pairs``.
    """
    keys, first, second, issame = _parse_pairs(pairs)
    scores = _score_images(
        embed_fn, _LazyImages(keys, load_image), first, second,
        batch_size, flip, ranks_per_image, seed, progress,
    )
    return scores, issame


def verify_pairs(
    embed_fn: EmbedFn,
    pairs: Iterable[PairLike],
    load_image: Callable[[Any], torch.Tensor],
    batch_size: int = 64,
    flip: bool = True,
    ranks_per_image: int = 1,
    seed: int = 0,
    n_folds: int = 10,
    folds: ArrayLike | None = None,
    fars: Iterable[float] = (1e-3,),
    progress: bool = True,
) -> dict[str, Any]:
    """Verification report of ``pairs`` (see :func:`score_pairs` and :func:`verification_report`).

    ``folds`` (one non-negative id per pair) overrides the default ``n_folds`` consecutive folds;
    see the module docstring for why the development protocol must not pass LFW fold ids. The
    report also records ``images`` (distinct images embedded), ``flip``, ``ranks_per_image`` and
    ``seed``.
    """
    keys, first, second, issame = _parse_pairs(pairs)
    scores = _score_images(
        embed_fn, _LazyImages(keys, load_image), first, second,
        batch_size, flip, ranks_per_image, seed, progress,
    )
    report = verification_report(scores, issame, n_folds=n_folds, folds=folds, fars=fars)
    report.update(images=len(keys), flip=flip, ranks_per_image=ranks_per_image, seed=seed)
    return report


def score_bin(
    embed_fn: EmbedFn,
    bin_path: str | os.PathLike[str],
    batch_size: int = 64,
    flip: bool = True,
    ranks_per_image: int = 1,
    seed: int = 0,
    image_size: int = 112,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of an InsightFace verification ``.bin`` (pair ``i`` = images ``2i`` and ``2i + 1``).

    Images are decoded and resized to ``image_size`` by the data layer. Returns
    ``(scores (N,) float64, issame (N,) bool)``.
    """
    from partialface.data.verification_bin import decode_bin_images, read_bin

    bins, issame_list = read_bin(bin_path)
    if len(bins) != 2 * len(issame_list) or not issame_list:
        raise PartialFaceError(
            f"{os.fspath(bin_path)}: {len(bins)} images for {len(issame_list)} pairs "
            f"(expected 2 images per pair and at least one pair)"
        )
    images = decode_bin_images(bins, size=image_size)
    pair_count = len(issame_list)
    first = np.arange(0, 2 * pair_count, 2, dtype=np.int64)
    scores = _score_images(
        embed_fn, images, first, first + 1, batch_size, flip, ranks_per_image, seed, progress
    )
    return scores, np.asarray(issame_list, dtype=bool)


def verify_bin(
    embed_fn: EmbedFn,
    bin_path: str | os.PathLike[str],
    batch_size: int = 64,
    flip: bool = True,
    ranks_per_image: int = 1,
    seed: int = 0,
    n_folds: int = 10,
    image_size: int = 112,
    fars: Iterable[float] = (1e-3,),
    progress: bool = True,
) -> dict[str, Any]:
    """Verification report of an InsightFace ``.bin`` set with ``n_folds`` consecutive folds.

    The report also records ``bin_path``, ``images``, ``flip``, ``ranks_per_image`` and ``seed``.
    """
    scores, issame = score_bin(
        embed_fn, bin_path, batch_size, flip, ranks_per_image, seed, image_size, progress
    )
    report = verification_report(scores, issame, n_folds=n_folds, fars=fars)
    report.update(
        bin_path=os.fspath(bin_path),
        images=2 * int(issame.size),
        flip=flip,
        ranks_per_image=ranks_per_image,
        seed=seed,
    )
    return report
