"""Small argument checks shared by every layer: one wording for "must be an integer >= 1" everywhere.

Each check returns the value (converted to a plain ``int``/``float``) or raises
:class:`~partialface.errors.PartialFaceError` naming ``name``. Booleans are never accepted as numbers,
floats never as integers (a plan index of 31.5 is an error, not 31), and NaN or infinity never as a number.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from .errors import PartialFaceError

__all__ = ["check_int", "check_number", "check_choice", "check_finite", "check_seed", "check_cpu_count",
           "check_device", "MAX_SEED"]

MAX_SEED = 2**63 - 1
"""Seeds are integers in ``0..MAX_SEED`` (torch.Generator.manual_seed takes them all; negatives are refused
everywhere, as the training config's ``SEED`` always did)."""


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in {low}..{high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int within ``[low, high]``; integral floats (``3.0``) are not accepted either."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PartialFaceError(f"{name} must be an integer{_bounds(low, high)}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise PartialFaceError(f"{name} must be an integer{_bounds(low, high)}, got {value!r}")
    return int(value)


def check_number(
    name: str, value: Any, low: float | None = None, high: float | None = None, strict_low: bool = False
) -> float:
    """``value`` as a finite float within ``[low, high]`` (``(low, high]`` with ``strict_low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PartialFaceError(f"{name} must be a finite number{_bounds(low, high)}, got {value!r}")
    too_low = low is not None and (value <= low if strict_low else value < low)
    if too_low or (high is not None and value > high):
        bound = f" > {low}" if strict_low and high is None else _bounds(low, high)
        raise PartialFaceError(f"{name} must be a number{bound}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise PartialFaceError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_finite(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` if it holds no NaN or infinity (float tensors only are checked)."""
    if not isinstance(tensor, torch.Tensor):
        raise PartialFaceError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise PartialFaceError(f"{name} holds {bad} NaN or infinite value(s)")
    return tensor


def check_seed(name: str, value: Any) -> int:
    """``value`` as a seed: an integer in ``0..MAX_SEED``."""
    return check_int(name, value, 0, MAX_SEED)


def check_cpu_count(name: str, value: Any, low: int = 1) -> int:
    """Threads or worker processes: an integer from ``low`` to twice the machine's CPU count (more only
    compete for the cores, and a mistyped 1000 would start a thousand processes)."""
    return check_int(name, value, low, 2 * (os.cpu_count() or 1))


def check_device(name: str, value: Any) -> torch.device:
    """``value`` (``cpu``, ``cuda``, ``cuda:1``, a torch.device) as a device this machine has."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as err:
        raise PartialFaceError(f"{name} {value!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PartialFaceError(f"{name} {value}: torch sees no CUDA device")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise PartialFaceError(f"{name} {value}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
