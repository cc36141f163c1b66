"""Tests for partialface.evaluation.templates: normalisation, fusion, batched embedding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from partialface.evaluation.templates import (
    embed_in_batches,
    fuse_flip,
    fuse_templates,
    l2_normalize,
    make_template_fn,
    paired_cosine_similarity,
)


def _mean_colour(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Toy embed function: per-channel mean colour, (B, 3)."""
    return images.mean(dim=(2, 3))


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows() -> None:
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    torch.testing.assert_close(l2_normalize(x), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))


def test_paired_cosine_similarity_matches_torch() -> None:
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(2, 7, 5, generator=generator)
    torch.testing.assert_close(
        paired_cosine_similarity(first, second), F.cosine_similarity(first, second, dim=1)
    )
    with pytest.raises(ValueError, match="equal shape"):
        paired_cosine_similarity(first, second[:3])


def test_fusion_is_the_normalised_sum_of_views() -> None:
    generator = torch.Generator().manual_seed(1)
    views = torch.randn(3, 4, 6, generator=generator)
    expected = views.sum(0) / views.sum(0).norm(dim=1, keepdim=True)
    torch.testing.assert_close(fuse_templates(views), expected)
    torch.testing.assert_close(fuse_templates(list(views)), expected)
    flipped = views[0] + views[1]
    torch.testing.assert_close(fuse_flip(views[0], views[1]), flipped / flipped.norm(dim=1, keepdim=True))
    with pytest.raises(ValueError, match="same"):
        fuse_templates([views[0], views[1][:, :2]])
    with pytest.raises(ValueError, match="at least one view"):
        fuse_templates([])


class _RecordingEmbedder:
    """Embeds a random draw (the 'rank') into the output and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        rank = torch.randint(0, 1000, (images.shape[0],), generator=generator)
        self.calls.append((images.clone(), rank))
        return torch.cat([images.mean(dim=(2, 3)), rank[:, None].float()], dim=1)


@pytest.mark.parametrize(("flip", "ranks", "calls"), [(False, 1, 1), (True, 1, 2), (False, 3, 3), (True, 3, 6)])
def test_template_fn_calls_embed_fn_once_per_view(flip: bool, ranks: int, calls: int) -> None:
    embedder = _RecordingEmbedder()
    images = torch.rand(2, 3, 4, 4) * 2 - 1
    templates = make_template_fn(embedder, flip=flip, ranks_per_image=ranks)(
        images, torch.Generator().manual_seed(0)
    )
    assert len(embedder.calls) == calls
    assert templates.shape == (2, 4)
    torch.testing.assert_close(templates.norm(dim=1), torch.ones(2))


def test_mirror_view_reuses_the_draws_of_its_original_and_ranks_are_fresh() -> None:
    embedder = _RecordingEmbedder()
    images = torch.rand(3, 3, 4, 5) * 2 - 1
    generator = torch.Generator().manual_seed(5)
    make_template_fn(embedder, flip=True, ranks_per_image=2)(images, generator)
    (original_1, rank_1), (mirror_1, mirror_rank_1), (original_2, rank_2), (_, mirror_rank_2) = embedder.calls
    torch.testing.assert_close(mirror_1, torch.flip(images, dims=(-1,)))
    torch.testing.assert_close(original_1, images)
    assert torch.equal(rank_1, mirror_rank_1) and torch.equal(rank_2, mirror_rank_2)
    assert not torch.equal(rank_1, rank_2)
    # The generator advanced exactly as for two un-mirrored calls.
    replay = torch.Generator().manual_seed(5)
    torch.randint(0, 1000, (3,), generator=replay)
    torch.randint(0, 1000, (3,), generator=replay)
    assert torch.equal(generator.get_state(), replay.get_state())


def test_template_fn_rejects_bad_rank_count() -> None:
    with pytest.raises(ValueError, match="ranks_per_image"):
        make_template_fn(_mean_colour, ranks_per_image=0)


def test_embed_in_batches_keeps_order_and_batches() -> None:
    images = torch.rand(10, 3, 4, 4) * 2 - 1
    batch_sizes: list[int] = []

    def embed(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch_sizes.append(batch.shape[0])
        return _mean_colour(batch, generator)

    embeddings = embed_in_batches(embed, images, batch_size=4, progress=False)
    assert batch_sizes == [4, 4, 2]
    torch.testing.assert_close(embeddings, images.mean(dim=(2, 3)))
    assert embeddings.dtype == torch.float32


def test_embed_in_batches_accepts_a_lazy_image_source() -> None:
    images = torch.rand(5, 3, 4, 4) * 2 - 1
    loaded: list[int] = []

    class Source:
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, index: int) -> torch.Tensor:
            loaded.append(index)
            return images[index]

    embeddings = embed_in_batches(_mean_colour, Source(), batch_size=2, progress=False)
    assert loaded == [0, 1, 2, 3, 4]
    torch.testing.assert_close(embeddings, images.mean(dim=(2, 3)))


def test_embed_in_batches_rejects_bad_images_and_bad_outputs() -> None:
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        embed_in_batches(_mean_colour, torch.full((2, 3, 4, 4), 255.0), progress=False)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        embed_in_batches(_mean_colour, torch.zeros(2, 1, 4, 4), progress=False)
    with pytest.raises(ValueError, match="returned 1 embeddings for 2 images"):
        embed_in_batches(lambda x, g: x.mean(dim=(2, 3))[:1], torch.zeros(2, 3, 4, 4), progress=False)
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        embed_in_batches(lambda x, g: x.mean(dim=(1, 2, 3)), torch.zeros(2, 3, 4, 4), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        embed_in_batches(_mean_colour, torch.zeros(2, 3, 4, 4), batch_size=0, progress=False)
    with pytest.raises(ValueError, match="no images"):
        embed_in_batches(_mean_colour, torch.zeros(0, 3, 4, 4), progress=False)
