"""Tests for the face backbones: shapes, input sizes, parameter counts, gradients, argument checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from partialface.models import Backbone, get_model, list_models
from partialface.models.iresnet import IResNet, IRUnit, SqueezeExcitation
from partialface.models.mobilefacenet import BottleneckStage, MobileFaceNet

# IR-100 is only constructed (a forward pass would cost seconds for nothing new); the rank_keyed wrapper
# needs a plan's rank table and has its own tests (test_models_rank_keyed.py).
FORWARD_MODELS = [name for name in list_models() if name not in ("ir100", "rank_keyed")]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("in_channels", [3, 27])
@pytest.mark.parametrize("name", FORWARD_MODELS)
def test_backbone_embeds_batch(name: str, in_channels: int) -> None:
    model = get_model(name, in_channels=in_channels).eval()
    assert isinstance(model, Backbone)
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, 112, 112))
    assert out.shape == (2, 512)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["ir18", "ir_se50", "mobilefacenet", "mobilefacenet_fast"])
@pytest.mark.parametrize("input_size", [96, 64])
def test_backbone_follows_input_size(name: str, input_size: int) -> None:
    model = get_model(name, in_channels=27, input_size=input_size, embedding_size=128).eval()
    assert model.feature_size == input_size // 16
    with torch.no_grad():
        out = model(torch.randn(2, 27, input_size, input_size))
    assert out.shape == (2, 128)


def test_iresnet_flatten_size_follows_input_size() -> None:
    for input_size, side in ((112, 7), (96, 6), (64, 4), (100, 7)):
        model = get_model("ir18", input_size=input_size)
        linear = next(m for m in model.head if isinstance(m, nn.Linear))
        assert linear.in_features == 512 * side * side


def test_iresnet_parameter_counts_match_insightface() -> None:
    """insightface publishes 24.0M (r18), 43.6M (r50) and 65.2M (r100) parameters with RGB input.

    Ours are 24,020,352 / 43,585,600 / 65,150,912: 5,248 fewer than insightface's iresnet because
    the first unit's shortcut is a sub-sampling (TFace) and the output BN1d has no affine terms.
    """
    ir18, ir50 = get_model("ir18"), get_model("ir50")
    assert abs(count_parameters(ir18) - 24.0e6) < 0.05e6
    assert abs(count_parameters(ir50) - 43.6e6) < 0.05e6
    linear = next(m for m in ir50.head if isinstance(m, nn.Linear))
    assert count_parameters(linear) == 512 * 7 * 7 * 512 + 512
    ir100 = get_model("ir100", in_channels=27)
    assert abs(count_parameters(ir100) - 65.2e6) < 0.1e6
    assert sum(isinstance(m, IRUnit) for m in ir100.modules()) == 3 + 13 + 30 + 3


def test_stem_follows_in_channels() -> None:
    rgb, partial = get_model("ir50", in_channels=3), get_model("ir50", in_channels=27)
    assert count_parameters(partial) - count_parameters(rgb) == (27 - 3) * 64 * 3 * 3


def test_ir_se50_has_squeeze_excitation_in_every_unit() -> None:
    model = get_model("ir_se50")
    assert sum(isinstance(m, SqueezeExcitation) for m in model.modules()) == 3 + 4 + 14 + 3
    assert count_parameters(model) > count_parameters(get_model("ir50"))


@pytest.mark.parametrize("name", ["ir18", "mobilefacenet_fast"])
def test_training_step_reaches_every_parameter(name: str) -> None:
    model = get_model(name, in_channels=27, input_size=32, embedding_size=16).train()
    model(torch.randn(4, 27, 32, 32)).square().mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), parameter_name


def test_bad_input_shape_names_the_expected_shape() -> None:
    model = get_model("mobilefacenet", in_channels=27)
    with pytest.raises(ValueError, match=r"\(B, 27, 112, 112\), got \(2, 3, 112, 112\)"):
        model(torch.randn(2, 3, 112, 112))
    with pytest.raises(ValueError, match="got \\(27, 112, 112\\)"):
        model(torch.randn(27, 112, 112))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"in_channels": 0}, "in_channels"),
        ({"embedding_size": -1}, "embedding_size"),
        ({"input_size": 8}, "input_size"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_iresnet_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_model("ir18", **kwargs)


def test_iresnet_rejects_wrong_stage_count() -> None:
    with pytest.raises(ValueError, match="units_per_stage"):
        IResNet((2, 2, 2))


def test_mobilefacenet_width_and_stages_are_configurable() -> None:
    full = MobileFaceNet(in_channels=27)
    narrow = MobileFaceNet(in_channels=27, width=0.5)
    shallow = MobileFaceNet(in_channels=27, stages=[BottleneckStage(2, 64, 1, 2), BottleneckStage(4, 128, 2, 2)])
    assert count_parameters(narrow) < count_parameters(full)
    assert len(shallow.body) == 3
    assert shallow.feature_size == 112 // 8  # stem and two stages halve the input
    early = MobileFaceNet(in_channels=27, stem_depthwise_stride=2, input_size=64)
    assert early.feature_size == 64 // 32  # five stride-2 layers
    with torch.no_grad():
        for model, size in ((narrow, 112), (shallow, 112), (early, 64)):
            assert model.eval()(torch.randn(2, 27, size, size)).shape == (2, 512)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0.0}, "width"),
        ({"stages": []}, "stage"),
        ({"stem_stride": 3}, "stride"),
        ({"activation": "gelu"}, "activation"),
        ({"input_size": 8}, "input_size"),
    ],
)
def test_mobilefacenet_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MobileFaceNet(**kwargs)


def test_bottleneck_stage_rejects_bad_stride() -> None:
    with pytest.raises(ValueError, match="stride"):
        BottleneckStage(expansion=2, channels=64, repeats=1, stride=3)


def test_fast_variant_is_channels_last_and_relu() -> None:
    model = get_model("mobilefacenet_fast", in_channels=27)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not any(isinstance(m, nn.PReLU) for m in model.modules())
    plain = get_model("mobilefacenet_fast", in_channels=27, channels_last=False)
    assert plain.stem[0][0].weight.is_contiguous()
