"""Deterministic randomness for training: every random draw is seeded from (SEED, epoch, step, ...).

Nothing random carries over from one step to the next: the sampler permutation of an epoch, the flips
and the encoder ranks of a step, dropout and the DataLoader worker seeds are all derived from the
config's ``SEED`` and the position in the run. A run resumed from a checkpoint therefore needs no
hidden random state to continue exactly as an uninterrupted run would.
"""

from __future__ import annotations

import random
from enum import IntEnum
from typing import Any

import numpy as np
import torch

from ..errors import PartialFaceError

__all__ = ["Stream", "derive_seed", "seeded_generator", "seed_global", "capture_rng_state", "restore_rng_state"]


class Stream(IntEnum):
    """Independent random streams derived from one seed."""

    INIT = 0  # model and head initialisation
    PERMUTATION = 1  # sampler order of an epoch
    BATCH = 2  # flips and encoder ranks of one global batch
    GLOBAL = 3  # torch's global RNG during a step (dropout), per process
    WORKERS = 4  # DataLoader worker seeds of an epoch
    FREQUENCY_SCALE = 5  # the faces used to estimate the per-frequency scale


def derive_seed(seed: int, stream: Stream, *position: int) -> int:
    """A 63-bit seed for ``stream`` at ``position`` (e.g. epoch, step), independent across all of them."""
    if int(seed) < 0 or any(int(p) < 0 for p in position):
        raise PartialFaceError(f"seed and position must be non-negative, got seed={seed}, position={position}")
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(stream), *map(int, position)))
    low, high = sequence.generate_state(2, dtype=np.uint32)
    return (int(high) << 31 ^ int(low)) & ((1 << 63) - 1)


def seeded_generator(seed: int, stream: Stream, *position: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed`."""
    return torch.Generator().manual_seed(derive_seed(seed, stream, *position))


def seed_global(seed: int, stream: Stream, *position: int) -> None:
    """Seed torch's global RNG (all devices), Python's and NumPy's from (seed, stream, position)."""
    value = derive_seed(seed, stream, *position)
    torch.manual_seed(value)
    random.seed(value)
    np.random.seed(value % (1 << 32))


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states (torch CPU and CUDA, NumPy, Python), for a checkpoint."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state_to_plain(np.random.get_state()),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (missing parts are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        np.random.set_state(_numpy_state_from_plain(state["numpy"]))
    if "python" in state:
        random.setstate(_as_python_state(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state_to_plain(state: tuple) -> tuple:
    """NumPy's legacy RNG state with its key array as a tensor (loadable with ``weights_only=True``)."""
    name, keys, position, has_gauss, cached = state
    return (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(position), int(has_gauss), float(cached))


def _numpy_state_from_plain(state: tuple) -> tuple:
    name, keys, position, has_gauss, cached = state
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    return (name, keys.astype(np.uint32), int(position), int(has_gauss), float(cached))


def _as_python_state(value: Any) -> tuple:
    """``random.setstate`` wants nested tuples; a round trip through some serialisers gives lists."""
    if isinstance(value, list):
        return tuple(_as_python_state(v) if isinstance(v, list) else v for v in value)
    return value
