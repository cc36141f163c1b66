"""ONNX exports of the shipped model, run in onnxruntime against PyTorch on real protected faces."""

from __future__ import annotations

import pytest
import torch

import partialface
from partialface.cli import main
from partialface.errors import PartialFaceError
from partialface.export.graphs import ClientTransform

from .conftest import load_lfw_faces

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed")

from partialface.export import OnnxEmbedder, export_client_transform, export_network, onnx_session  # noqa: E402
from partialface.export.runtime import read_metadata  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return partialface.load_model("default")


@pytest.fixture(scope="module")
def faces():
    return load_lfw_faces(7)


@pytest.fixture(scope="module")
def network_file(model, tmp_path_factory):
    return export_network(model, tmp_path_factory.mktemp("onnx") / "network.onnx")


@pytest.fixture(scope="module")
def client_file(model, tmp_path_factory):
    return export_client_transform(model, tmp_path_factory.mktemp("onnx") / "client.onnx")


def _ranks(plan, count, seed=0):
    return torch.randint(plan.num_ranks, (count,), generator=torch.Generator().manual_seed(seed))


def test_client_transform_module_is_the_encoder(model):
    x = torch.rand(4, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 2 - 1
    plan = model.encoder.plan
    rank = _ranks(plan, 4)
    expected = model.encoder.encode_rank(x, rank // plan.n, rank % plan.n)
    got = ClientTransform(model.encoder, (112, 112))(x, rank)
    assert float((got - expected).norm() / expected.norm()) < 1e-6


@pytest.mark.lfw
@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_network_matches_pytorch_on_real_protected_faces(model, faces, network_file, batch):
    sent = model.protect(faces[:batch], torch.Generator().manual_seed(batch))
    expected = model.embed_protected(sent)
    got = OnnxEmbedder(model, network_file).embed_protected(sent)
    assert got.shape == expected.shape == (batch, 512)
    assert float((got - expected).abs().max()) <= 1e-4


@pytest.mark.lfw
@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_client_transform_matches_plan_protect(model, faces, client_file, batch):
    plan, scale = model.encoder.plan, model.encoder.frequency_scale
    rank = _ranks(plan, batch, seed=batch)
    channels = plan.channels(rank // plan.n, rank % plan.n)
    expected = plan.protect(faces[:batch], rank // plan.n, rank % plan.n).double() / scale[channels][..., None, None]
    session = onnx_session(client_file, threads=1)
    got = session.run(None, {"faces": faces[:batch].numpy(), "rank": rank.numpy()})[0]
    assert got.shape == (batch, plan.out_channels, 112, 112)
    assert float((torch.from_numpy(got).double() - expected).norm() / expected.norm()) <= 1e-5
    meta = read_metadata(session)
    assert meta["partialface.plan"] == plan.fingerprint and meta["partialface.ranks"] == str(plan.num_ranks)


@pytest.mark.lfw
@pytest.mark.slow
def test_onnx_embedder_serves_like_the_model(model, faces, network_file):
    runtime = OnnxEmbedder(model, network_file)
    expected = model.embed(faces, torch.Generator().manual_seed(3))
    assert float((runtime.embed(faces, torch.Generator().manual_seed(3)) - expected).abs().max()) <= 1e-4
    assert runtime.embed_fn()(faces[:2], torch.Generator()).shape == (2, 512)


@pytest.mark.slow
def test_onnx_embedder_refuses_another_models_network(network_file):
    with pytest.raises(PartialFaceError, match="partialface.encoder"):
        OnnxEmbedder(partialface.load_model("rgb-baseline"), network_file)


def test_export_cli_names_the_problem(capsys, tmp_path):
    assert main(["export", "default"]) == 2
    assert "--onnx" in capsys.readouterr().err
    assert main(["export", "rgb-baseline", "--client-onnx", str(tmp_path / "c.onnx")]) == 2
    assert "no channel plan" in capsys.readouterr().err
    assert not (tmp_path / "c.onnx").exists()


@pytest.mark.slow
def test_onnx_embedder_refuses_bad_inputs(model, network_file):
    runtime = OnnxEmbedder(model, network_file)
    with pytest.raises(PartialFaceError, match="NaN"):
        runtime.embed_protected(torch.full((1, 27, 112, 112), float("nan")))
    with pytest.raises(PartialFaceError, match="27"):
        runtime.embed_protected(torch.zeros(1, 3, 112, 112))
