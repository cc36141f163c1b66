"""The rank-keyed backbone: per-frequency input weights make the permutation free, its identifier names
the rank of real faces it never saw, and a RANK_KEYED training run saves a model that loads and exports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import partialface
from partialface.data import CropSpec
from partialface.encoders import get_encoder
from partialface.encoders.scale import estimate_frequency_scale
from partialface.models import get_model
from partialface.models.rank_keyed import RankKeyedBackbone, rank_features
from partialface.plan import ChannelPlan
from partialface.training import Trainer, load_checkpoint, load_config
from partialface.training.rank_keyed import fit_rank_identifier, rank_channel_table

from ._training_fixtures import tiny_config, write_identities, write_pairs
from .conftest import load_lfw_faces


def _model(encoder, **options) -> RankKeyedBackbone:
    return get_model("rank_keyed", rank_channels=rank_channel_table(encoder), backbone="mobilefacenet",
                     in_channels=encoder.out_channels, embedding_size=16, input_size=16, width=0.25, **options)


def test_the_permutation_of_a_subset_is_undone_for_any_key_weights() -> None:
    encoder = get_encoder("partialface", plan=ChannelPlan.tface())
    model = _model(encoder)
    torch.nn.init.normal_(model.key_weight)
    faces = torch.rand(3, 3, 16, 16) * 2 - 1
    plan = encoder.plan
    for subset in (0, 4):
        keyed = [model.keyed_input(encoder.encode_rank(faces, subset, p), torch.full((3,), subset * plan.n + p))
                 for p in range(plan.n)]
        for other in keyed[1:]:
            torch.testing.assert_close(other, keyed[0])
    # Another subset carries other frequencies: its keyed input differs.
    other_subset = model.keyed_input(encoder.encode_rank(faces, 1, 0), torch.full((3,), plan.n))
    assert not torch.allclose(other_subset, keyed[0])


def test_initial_key_weights_send_the_first_permutation_through_unchanged() -> None:
    encoder = get_encoder("partialface", plan=ChannelPlan.tface())
    model = _model(encoder)
    sent = encoder.encode_rank(torch.rand(2, 3, 16, 16) * 2 - 1, 2, 0)
    torch.testing.assert_close(model.keyed_input(sent, torch.full((2,), 2 * encoder.plan.n)), sent)


def test_wider_keys_start_each_subset_on_its_own_block_of_slots() -> None:
    """keyed_channels = 2 S: subsets alternate between two blocks of S slots, each its first permutation unchanged."""
    encoder = get_encoder("partialface", plan=ChannelPlan.tface())
    S, n = encoder.out_channels, encoder.plan.n
    model = _model(encoder, keyed_channels=2 * S)
    faces = torch.rand(2, 3, 16, 16) * 2 - 1
    for subset in range(encoder.plan.m):
        keyed = model.keyed_input(encoder.encode_rank(faces, subset, 0), torch.full((2,), subset * n))
        mine, other = (slice(0, S), slice(S, 2 * S)) if subset % 2 == 0 else (slice(S, 2 * S), slice(0, S))
        torch.testing.assert_close(keyed[:, mine], encoder.encode_rank(faces, subset, 0))
        assert not bool(keyed[:, other].any())


def test_bad_rank_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="must list 3 channels"):
        RankKeyedBackbone([[0, 1, 2], [3, 4]], in_channels=3)
    with pytest.raises(ValueError, match="one channel twice"):
        RankKeyedBackbone([[0, 1, 1]], in_channels=3)
    with pytest.raises(ValueError, match="keyed_channels"):
        RankKeyedBackbone([[0, 1, 2]], in_channels=3, keyed_channels=0)


def test_rank_features_are_finite_on_silent_channels() -> None:
    features = rank_features(torch.zeros(2, 5, 8, 8))
    assert features.shape == (2, 20) and bool(torch.isfinite(features).all())


def test_rank_features_are_the_four_statistics_of_each_channel() -> None:
    """The chunked computation gives the definition's values for a batch of several chunks, and none."""
    sent = torch.randn(37, 3, 9, 7, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 5.0, 0.2])[:, None, None]
    magnitude = sent.abs().mean(dim=(2, 3)).log()
    peak = sent.pow(2).mean(dim=(2, 3)).log() - 2 * magnitude
    across = (sent[..., 1:] - sent[..., :-1]).abs().mean(dim=(2, 3)).log() - magnitude
    down = (sent[..., 1:, :] - sent[..., :-1, :]).abs().mean(dim=(2, 3)).log() - magnitude
    expected = torch.cat([magnitude, peak, across, down], dim=1)
    assert torch.allclose(rank_features(sent), expected, atol=1e-5)
    assert rank_features(sent[:0]).shape == (0, 12)


def test_the_identifier_names_the_rank_of_unseen_real_faces() -> None:
    """48 LFW faces: 36 fit, 12 held out, under each of the published plan's 18 ranks."""
    faces = load_lfw_faces(48)
    encoder = get_encoder("partialface", plan=ChannelPlan.tface(), frequency_scale=estimate_frequency_scale(faces[:16]))
    model = get_model("rank_keyed", rank_channels=rank_channel_table(encoder), in_channels=27)
    accuracy = fit_rank_identifier(model, encoder, faces)
    assert accuracy >= 0.99
    held = faces[36:]
    for subset, permutation in ((0, 0), (3, 2), (5, 1)):
        ranks = model.identify(encoder.encode_rank(held, subset, permutation))
        assert ranks.tolist() == [subset * encoder.plan.n + permutation] * len(held)


def test_rank_keyed_needs_the_partialface_encoder() -> None:
    from partialface.training.config_checks import ConfigError

    with pytest.raises(ConfigError, match="RANK_KEYED needs the partialface encoder"):
        rank_channel_table(get_encoder("fixed", plan=ChannelPlan.tface()))


def test_a_rank_keyed_run_saves_a_model_that_loads_and_embeds(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    write_pairs(root / "pairs.txt", write_identities(root))
    out = tmp_path / "run"
    cfg = tiny_config(root, out, ENCODER="partialface", RANK_KEYED=True, NUM_EPOCH=1, DEV_PAIRS="")
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    Trainer(load_config(path), progress=False).fit()
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["model"]["name"] == "rank_keyed" and checkpoint["model"]["kwargs"]["backbone"] == "mobilefacenet"
    assert checkpoint["model"]["state_dict"]["identifier_weight"].abs().sum() > 0  # fitted before training
    model = partialface.load_model(out / "checkpoint.pt")
    templates = model.embed(torch.rand(4, 3, 16, 16) * 2 - 1, torch.Generator().manual_seed(0))
    assert templates.shape == (4, 16) and bool(torch.isfinite(templates).all())


def test_a_rank_keyed_network_exports_to_onnx_and_serves_the_same(tmp_path: Path) -> None:
    """The identifier's argmax and the per-frequency gather survive export: random identifier and key
    weights, so faces land on different ranks and every column of key_weight matters."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("onnxscript", reason="the onnx extra is not installed")
    from partialface.export import OnnxEmbedder, export_network

    encoder = get_encoder("partialface", plan=ChannelPlan.tface())
    backbone = _model(encoder)
    torch.manual_seed(0)
    for tensor in (backbone.key_weight, backbone.identifier_weight, backbone.identifier_bias):
        torch.nn.init.normal_(tensor)
    model = partialface.api.FaceModel(backbone.eval(), encoder, CropSpec(box=None, size=16))
    sent = model.protect(torch.rand(6, 3, 16, 16) * 2 - 1, torch.Generator().manual_seed(0))
    assert len(set(backbone.identify(sent).tolist())) > 1
    expected = model.embed_protected(sent)
    got = OnnxEmbedder(model, export_network(model, tmp_path / "network.onnx")).embed_protected(sent)
    assert float((got - expected).abs().max()) <= 1e-4
