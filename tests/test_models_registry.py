"""Tests for the model and head registries."""

from __future__ import annotations

import pytest
import torch.nn as nn

from partialface.models import get_head, get_model, list_heads, list_models
from partialface.models.registry import Registry

EXPECTED_MODELS = {"ir18", "ir34", "ir50", "ir100", "ir_se50", "mobilefacenet", "mobilefacenet_fast"}
EXPECTED_HEADS = {"arcface", "cosface", "curricularface", "softmax"}


def test_all_backbones_and_heads_are_registered() -> None:
    assert EXPECTED_MODELS <= set(list_models())
    assert EXPECTED_HEADS <= set(list_heads())
    assert list_models() == sorted(list_models())


def test_unknown_model_error_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet9000'") as error:
        get_model("resnet9000")
    for name in EXPECTED_MODELS:
        assert name in str(error.value)


def test_unknown_head_error_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown head 'sphereface'") as error:
        get_head("sphereface", 512, 10)
    for name in EXPECTED_HEADS:
        assert name in str(error.value)


def test_get_model_forwards_keyword_arguments() -> None:
    model = get_model("mobilefacenet", in_channels=27, embedding_size=128, input_size=64)
    assert (model.in_channels, model.embedding_size, model.input_size) == (27, 128, 64)


def test_registry_rejects_duplicates_and_bad_names() -> None:
    registry: Registry = Registry("widget")

    @registry.register("linear")
    def linear() -> nn.Module:
        return nn.Linear(2, 2)

    assert registry.names() == ["linear"]
    assert "linear" in registry
    assert isinstance(registry.build("linear"), nn.Linear)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("linear")(linear)
    for bad in ("", "Linear", " linear"):
        with pytest.raises(ValueError, match="lower-case"):
            registry.register(bad)
    with pytest.raises(ValueError, match="known widgets: linear"):
        registry.build("conv")
