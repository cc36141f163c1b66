"""Shared test helpers: where the real faces live, and loading a few of them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
LFW_ROOT = REPO_ROOT.parent / "shared" / "data" / "lfw"


def require_lfw() -> Path:
    """The LFW folder, or skip the test with the reason."""
    if not (LFW_ROOT / "images").is_dir():
        pytest.skip(f"real faces not found at {LFW_ROOT} (the shared LFW copy is absent on this machine)")
    return LFW_ROOT


def load_script(path: Path, name: str | None = None) -> ModuleType:
    """Import a script of the repository (experiments/, benchmarks/) that is not part of the package."""
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_lfw_faces(count: int) -> torch.Tensor:
    """The first ``count`` LFW photos (sorted), centre-cropped to 112x112, as (count,3,112,112) in [-1,1]."""
    from partialface.data import DEFAULT_CROP, load_face

    root = require_lfw()
    files = sorted((root / "images").glob("*/*.jpg"))[:count]
    return torch.stack([load_face(f, DEFAULT_CROP) for f in files])


@pytest.fixture
def lfw_root() -> Path:
    return require_lfw()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny test tensors run fastest on one thread (and two spinning OpenMP threads on a busy 2-core
    machine can slow them 100x); processes the tests start choose their own."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
