"""Face templates: embedding images in batches and fusing several views into one unit vector.

An *embed function* is any callable ``embed_fn(images, generator) -> embeddings`` taking a batch
``(B, 3, H, W)`` of images in ``[-1, 1]`` and a seeded ``torch.Generator`` and returning ``(B, D)``
embeddings. The generator lets a protected (PartialFace) query draw its random rank reproducibly;
an unprotected model simply ignores it.

Fusion: a template is the L2-normalised sum (equivalently, mean) of the raw embeddings of its views.
*Flip fusion* adds the embedding of the horizontally mirrored image; *multi-rank fusion* embeds the
same image ``k`` times, each time with a fresh random rank, and averages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..checks import check_int
from ..errors import PartialFaceError

__all__ = [
    "EmbedFn",
    "ImageSource",
    "check_image_values",
    "embed_in_batches",
    "fuse_flip",
    "fuse_templates",
    "l2_normalize",
    "make_template_fn",
    "paired_cosine_similarity",
]

EmbedFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""``embed_fn(images (B,3,H,W) in [-1,1], generator) -> (B, D) embeddings``."""

_RANGE_TOLERANCE = 1e-3  # slack on the [-1, 1] image range for rounding in decoders/resizers


class ImageSource(Protocol):
    """Anything indexable by position that yields ``(3, H, W)`` image tensors (e.g. a lazy loader)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> torch.Tensor: ...


def l2_normalize(x: torch.Tensor, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    """Scale vectors along ``dim`` to unit Euclidean length (zero vectors stay zero)."""
    return F.normalize(x, p=2.0, dim=dim, eps=eps)


def paired_cosine_similarity(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of row ``i`` of ``first`` with row ``i`` of ``second``: (N, D), (N, D) -> (N,)."""
    if first.ndim != 2 or first.shape != second.shape:
        raise PartialFaceError(
            f"paired templates must be two (N, D) tensors of equal shape, got {tuple(first.shape)} "
            f"and {tuple(second.shape)}"
        )
    return (l2_normalize(first) * l2_normalize(second)).sum(dim=-1)


def fuse_templates(views: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Fuse ``V`` views of ``B`` faces into ``B`` unit templates: mean over views, then L2-normalise.

    Args:
        views: a ``(V, B, D)`` tensor or a sequence of ``V`` tensors of shape ``(B, D)``.
    """
    if isinstance(views, torch.Tensor):
        stacked = views
    else:
        if len(views) == 0:
            raise PartialFaceError("fuse_templates needs at least one view")
        shapes = {tuple(view.shape) for view in views}
        if len(shapes) != 1:
            raise PartialFaceError(f"all views must have the same (B, D) shape, got {sorted(shapes)}")
        stacked = torch.stack(list(views))
    if stacked.ndim != 3 or stacked.shape[0] == 0:
        raise PartialFaceError(f"views must have shape (V, B, D) with V >= 1, got {tuple(stacked.shape)}")
    return l2_normalize(stacked.mean(dim=0))


def fuse_flip(embedding: torch.Tensor, mirrored_embedding: torch.Tensor) -> torch.Tensor:
    """Flip fusion: L2-normalised sum of an image's embedding and its mirror image's embedding."""
    return fuse_templates([embedding, mirrored_embedding])


def make_template_fn(embed_fn: EmbedFn, flip: bool = True, ranks_per_image: int = 1) -> EmbedFn:
    """Wrap ``embed_fn`` into an embed function that returns fused, L2-normalised templates.

    Per batch ``embed_fn`` is called ``ranks_per_image * (2 if flip else 1)`` times. Each of the
    ``ranks_per_image`` calls on the original images draws fresh randomness from the generator (a
    new random rank); the mirrored images reuse exactly the draws of the original call just before
    them (the generator state is replayed), so flipping is a pure test-time augmentation of the same
    query and the generator advances as if only the original images had been embedded.
    """
    check_int("ranks_per_image", ranks_per_image, low=1)

    def embed_templates(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        views = []
        for _ in range(ranks_per_image):
            if not flip:
                views.append(embed_fn(images, generator))
                continue
            before = generator.get_state()
            views.append(embed_fn(images, generator))
            after = generator.get_state()
            generator.set_state(before)
            views.append(embed_fn(torch.flip(images, dims=(-1,)), generator))
            generator.set_state(after)
        return fuse_templates(views)

    return embed_templates


def check_image_values(images: torch.Tensor, where: str) -> None:
    """Raise PartialFaceError (naming ``where``) unless ``images`` is floating point, finite and in [-1, 1]."""
    if not images.is_floating_point():
        raise PartialFaceError(f"{where}: expected floating-point images in [-1, 1], got {images.dtype}")
    low, high = torch.aminmax(images)
    if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
        raise PartialFaceError(f"{where}: images contain NaN or infinite values")
    if low < -1 - _RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise PartialFaceError(
            f"{where}: images must lie in [-1, 1], found values in [{float(low):.4g}, {float(high):.4g}]"
        )


def _check_batch(batch: torch.Tensor, first_index: int) -> None:
    """Raise PartialFaceError unless ``batch`` is a (B, 3, H, W) batch of valid images."""
    where = f"images {first_index}..{first_index + len(batch) - 1}" if batch.ndim else "images"
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise PartialFaceError(f"{where}: expected a (B, 3, H, W) batch, got shape {tuple(batch.shape)}")
    check_image_values(batch, where)


def _load_batch(images: torch.Tensor | ImageSource, start: int, stop: int) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[start:stop]
    items = [images[index] for index in range(start, stop)]
    shapes = {tuple(item.shape) for item in items}
    if len(shapes) != 1:
        raise PartialFaceError(f"images {start}..{stop - 1} differ in shape: {sorted(shapes)}")
    return torch.stack(items)


def embed_in_batches(
    embed_fn: EmbedFn,
    images: torch.Tensor | ImageSource,
    batch_size: int = 64,
    progress: bool = True,
    generator: torch.Generator | None = None,
    description: str = "embedding",
) -> torch.Tensor:
    """Embed ``N`` images batch by batch, without gradients, with an optional tqdm progress bar.

    Args:
        embed_fn: ``embed_fn(images, generator) -> (B, D)`` (e.g. from :func:`make_template_fn`).
        images: an ``(N, 3, H, W)`` tensor in ``[-1, 1]``, or an :class:`ImageSource` whose items are
            loaded only when their batch is embedded.
        batch_size: images per call of ``embed_fn``.
        progress: show a progress bar (on stderr).
        generator: randomness passed to ``embed_fn``; None means a CPU generator seeded with 0.
        description: label of the progress bar.

    Returns:
        ``(N, D)`` float32 embeddings on the CPU, in the order of ``images``.
    """
    check_int("batch_size", batch_size, low=1)
    total = len(images)
    if total == 0:
        raise PartialFaceError("no images to embed")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    outputs: list[torch.Tensor] = []
    with torch.no_grad(), tqdm(total=total, desc=description, unit="img", disable=not progress) as bar:
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            batch = _load_batch(images, start, stop)
            _check_batch(batch, start)
            embeddings = embed_fn(batch, generator)
            # A broken embed_fn is a bug in code, not a user's mistake: plain ValueError, so the command
            # line shows its traceback.
            if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
                shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else None
                raise ValueError(
                    f"embed_fn must return a (B, D) tensor; for images {start}..{stop - 1} it "
                    f"returned {type(embeddings).__name__} of shape {shape}"
                )
            if embeddings.shape[0] != stop - start:
                raise ValueError(
                    f"embed_fn returned {embeddings.shape[0]} embeddings for {stop - start} images "
                    f"({start}..{stop - 1})"
                )
            if outputs and embeddings.shape[1] != outputs[0].shape[1]:
                raise ValueError(
                    f"embed_fn changed its embedding size from {outputs[0].shape[1]} to "
                    f"{embeddings.shape[1]} at images {start}..{stop - 1}"
                )
            outputs.append(embeddings.detach().to(device="cpu", dtype=torch.float32))
            bar.update(stop - start)
    return torch.cat(outputs)
