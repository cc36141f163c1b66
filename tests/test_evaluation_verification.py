"""Tests for partialface.evaluation.verification: the pair and .bin pipelines with toy embed functions."""

from __future__ import annotations

import io
import itertools
import sys
import types
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from partialface.evaluation.verification import score_bin, score_pairs, verify_bin, verify_pairs

IDENTITIES = 6
IMAGES_PER_IDENTITY = 3
IMAGE_SIZE = 8


def _synthetic_faces(seed: int = 0) -> dict[str, torch.Tensor]:
    """Each identity is a random colour pattern; its images are that pattern plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(IDENTITIES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 1.6 - 0.8
    faces = {}
    for identity, image in itertools.product(range(IDENTITIES), range(IMAGES_PER_IDENTITY)):
        noise = 0.05 * torch.randn(3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        faces[f"person{identity}/{image}"] = (patterns[identity] + noise).clamp(-1, 1)
    return faces


def _synthetic_pairs() -> list[tuple[str, str, bool]]:
    """All 18 same-identity pairs, then 18 different-identity pairs."""
    same = [
        (f"person{identity}/{a}", f"person{identity}/{b}", True)
        for identity in range(IDENTITIES)
        for a, b in itertools.combinations(range(IMAGES_PER_IDENTITY), 2)
    ]
    different = [
        (f"person{identity}/{image}", f"person{(identity + 1) % IDENTITIES}/{image}", False)
        for identity in range(IDENTITIES)
        for image in range(IMAGES_PER_IDENTITY)
    ]
    return same + different


def _pooled_colour(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Toy embedding: mean colour of each 2x2 cell of a 4x4 grid, flattened (48-D)."""
    return F.adaptive_avg_pool2d(images, 4).flatten(1)


def _noisy_pooled_colour(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Toy protected embedding: its randomness comes from the generator, as a random rank would."""
    clean = _pooled_colour(images, generator)
    return clean + 0.3 * torch.randn(clean.shape, generator=generator)


def test_verify_pairs_separates_synthetic_identities_perfectly() -> None:
    faces = _synthetic_faces()
    loads: Counter[str] = Counter()

    def load_image(key: str) -> torch.Tensor:
        loads[key] += 1
        return faces[key]

    report = verify_pairs(_pooled_colour, _synthetic_pairs(), load_image, batch_size=5, progress=False)
    assert report["accuracy"] == 1.0 and report["accuracy_std"] == 0.0
    assert report["auc"] == 1.0 and report["best_threshold_accuracy"] == 1.0
    assert report["pairs"] == 36 and report["same_pairs"] == 18
    assert report["images"] == len(faces)
    assert report["flip"] is True and report["ranks_per_image"] == 1 and report["seed"] == 0
    assert set(loads) == set(faces) and set(loads.values()) == {1}  # every image loaded once


@pytest.mark.parametrize(("flip", "ranks", "calls_per_batch"), [(False, 1, 1), (True, 1, 2), (False, 3, 3), (True, 2, 4)])
def test_embed_fn_call_count_follows_flip_and_rank_fusion(flip: bool, ranks: int, calls_per_batch: int) -> None:
    faces = _synthetic_faces()
    calls = 0

    def counting_embed(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return _pooled_colour(images, generator)

    report = verify_pairs(
        counting_embed, _synthetic_pairs(), faces.__getitem__, batch_size=5, flip=flip,
        ranks_per_image=ranks, progress=False,
    )
    batches = -(-len(faces) // 5)
    assert calls == batches * calls_per_batch
    assert report["accuracy"] == 1.0


def test_scores_are_reproducible_given_the_seed() -> None:
    faces = _synthetic_faces()
    pairs = _synthetic_pairs()

    def run(seed: int) -> np.ndarray:
        scores, _ = score_pairs(_noisy_pooled_colour, pairs, faces.__getitem__, batch_size=4, seed=seed, progress=False)
        return scores

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))
    first = verify_pairs(_noisy_pooled_colour, pairs, faces.__getitem__, seed=3, progress=False)
    second = verify_pairs(_noisy_pooled_colour, pairs, faces.__getitem__, seed=3, progress=False)
    assert first == second


def test_multi_rank_fusion_averages_out_per_rank_noise() -> None:
    faces = _synthetic_faces()
    pairs = _synthetic_pairs()
    clean, issame = score_pairs(_pooled_colour, pairs, faces.__getitem__, progress=False)

    def noise_error(ranks: int) -> float:
        noisy, _ = score_pairs(
            _noisy_pooled_colour, pairs, faces.__getitem__, ranks_per_image=ranks, progress=False
        )
        return float(np.abs(noisy - clean).mean())

    assert issame.dtype == bool and issame.sum() == 18
    assert noise_error(8) < noise_error(1)


@dataclass(frozen=True)
class _PairRecord:
    path_a: str
    path_b: str
    issame: bool
    fold: int


def test_pair_objects_and_explicit_folds_are_accepted() -> None:
    faces = _synthetic_faces()
    tuples = _synthetic_pairs()
    records = [_PairRecord(a, b, same, fold=1) for a, b, same in tuples]
    from_tuples = verify_pairs(_pooled_colour, tuples, faces.__getitem__, progress=False)
    from_records = verify_pairs(_pooled_colour, records, faces.__getitem__, progress=False)
    assert from_tuples == from_records
    two_folds = verify_pairs(
        _pooled_colour, tuples, faces.__getitem__, folds=np.arange(36) % 2, progress=False
    )
    assert len(two_folds["fold_accuracies"]) == 2


def test_bad_pairs_and_bad_images_raise_value_error() -> None:
    faces = _synthetic_faces()
    pairs = _synthetic_pairs()
    with pytest.raises(ValueError, match="no pairs"):
        verify_pairs(_pooled_colour, [], faces.__getitem__, progress=False)
    with pytest.raises(ValueError, match="pair 0"):
        verify_pairs(_pooled_colour, [("a", "b")], faces.__getitem__, progress=False)
    with pytest.raises(ValueError, match="person0/0.*shape"):
        verify_pairs(_pooled_colour, pairs, lambda key: faces[key][:1], progress=False)
    with pytest.raises(ValueError, match=r"person0/0.*\[-1, 1\]"):
        verify_pairs(_pooled_colour, pairs, lambda key: (faces[key] + 1) * 127.5, progress=False)
    with pytest.raises(ValueError, match="seed"):
        verify_pairs(_pooled_colour, pairs, faces.__getitem__, seed=0.5, progress=False)


def _pair_images_in_bin_order() -> tuple[torch.Tensor, list[bool]]:
    faces = _synthetic_faces()
    pairs = _synthetic_pairs()
    images = torch.stack([faces[key] for a, b, _ in pairs for key in (a, b)])
    return images, [same for _, _, same in pairs]


def test_verify_bin_with_a_stub_data_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    images, issame = _pair_images_in_bin_order()
    requested_sizes: list[int] = []

    def read_bin(path: str) -> tuple[list[bytes], list[bool]]:
        assert path == "sets/toy.bin"
        return [b"encoded"] * len(images), issame

    def decode_bin_images(bins: list[bytes], size: int = 112) -> torch.Tensor:
        requested_sizes.append(size)
        assert len(bins) == len(images)
        return images

    stub = types.ModuleType("partialface.data.verification_bin")
    stub.read_bin = read_bin
    stub.decode_bin_images = decode_bin_images
    monkeypatch.setitem(sys.modules, "partialface.data.verification_bin", stub)

    report = verify_bin(_pooled_colour, "sets/toy.bin", image_size=IMAGE_SIZE, progress=False)
    assert requested_sizes == [IMAGE_SIZE]
    assert report["accuracy"] == 1.0 and report["pairs"] == 36 and report["images"] == 72
    assert report["bin_path"] == "sets/toy.bin"
    # Same images, same deterministic embedding: same scores as the pair pipeline.
    faces = _synthetic_faces()
    bin_scores, bin_issame = score_bin(_pooled_colour, "sets/toy.bin", image_size=IMAGE_SIZE, progress=False)
    pair_scores, pair_issame = score_pairs(_pooled_colour, _synthetic_pairs(), faces.__getitem__, progress=False)
    np.testing.assert_allclose(bin_scores, pair_scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(bin_issame, pair_issame)


def test_verify_bin_reads_a_real_bin_file(tmp_path) -> None:
    verification_bin = pytest.importorskip("partialface.data.verification_bin")
    images, issame = _pair_images_in_bin_order()
    encoded = []
    for image in images:
        pixels = ((image * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(pixels.numpy()).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    path = tmp_path / "toy.bin"
    verification_bin.write_bin(path, encoded, issame)
    report = verify_bin(_pooled_colour, path, image_size=IMAGE_SIZE, batch_size=16, progress=False)
    assert report["accuracy"] == 1.0 and report["pairs"] == len(issame)
