"""The inference API on the shipped default model: what it loads, and the inputs it refuses."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import partialface
from partialface.errors import PartialFaceError


@pytest.fixture(scope="module")
def model():
    return partialface.load_model("default")


def test_load_model_imports_no_training_code():
    """A deployment loads models without the trainer (and its YAML, DDP and data-loading code)."""
    code = ("import json, sys, partialface; partialface.load_model('default'); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('partialface'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       timeout=300).stdout)
    assert "partialface.api" in loaded and "partialface.models" in loaded
    assert [m for m in loaded if m == "partialface.training" or m.startswith("partialface.training.")] == []


@pytest.mark.parametrize("faces, message", [
    (np.zeros((1, 3, 112, 112), np.float32), "got ndarray (torch.from_numpy converts an array)"),
    (torch.zeros(3, 112, 112), "got shape (3, 112, 112)"),
    (torch.zeros(1, 1, 112, 112), "got shape (1, 1, 112, 112)"),
    (torch.zeros(1, 3, 64, 64), "got shape (1, 3, 64, 64)"),
    (torch.zeros(1, 3, 112, 112, dtype=torch.uint8), "pixels_to_faces converts uint8 pixels"),
    (torch.full((2, 3, 112, 112), float("nan")), "faces holds 75264 NaN or infinite"),
])
def test_embed_refuses_what_is_not_a_batch_of_faces(model, faces, message):
    with pytest.raises(PartialFaceError) as caught:
        model.embed(faces)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_embed_protected_refuses_non_finite_and_non_tensor_inputs(model):
    sent = model.protect(torch.zeros(2, 3, 112, 112), torch.Generator().manual_seed(0))
    assert torch.isfinite(model.embed_protected(sent)).all()
    sent[1, 4, 10, 10] = float("inf")
    with pytest.raises(PartialFaceError, match="protected inputs holds 1 NaN or infinite"):
        model.embed_protected(sent)
    sent[1, 4, 10, 10] = float("nan")
    with pytest.raises(PartialFaceError, match="NaN"):
        model.embed_protected(sent)
    with pytest.raises(PartialFaceError, match=r"\(B,27,H,W\) protected inputs .* got ndarray"):
        model.embed_protected(np.zeros((1, 27, 112, 112), np.float32))


def test_an_unknown_model_names_the_shipped_ones():
    with pytest.raises(PartialFaceError, match="nope.pt: no such model file.*default"):
        partialface.load_model("nope.pt")
