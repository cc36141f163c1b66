"""Training checkpoints (``partialface.checkpoint/1``): atomic saving, validated loading, slim export.

A checkpoint is ``torch.save`` of a dict:

==============  ========================================================================================
key             value
==============  ========================================================================================
``format``      ``"partialface.checkpoint/1"``
``model``       ``{"name": registry name, "kwargs": get_model keyword arguments, "state_dict": ...}``
``head``        ``{"name", "kwargs" (get_head keyword arguments incl. embedding_size, num_classes),
                "state_dict"}``
``encoder``     ``encoder.state_dict()`` (name, channel plan, per-frequency scale, NUM_AUG)
``crop``        ``CropSpec.to_dict()`` of the training faces
``preparation`` optional: ``InputPreparation.to_dict()``, how a raw photo becomes a training face (the
                box of a photo, or five-point alignment then the box); absent in older files: the box
``optimizer``   SGD state dict
``scheduler``   LR scheduler state dict
``scaler``      AMP gradient-scaler state dict (None without AMP)
``epoch``       completed epochs
``step``        completed optimiser steps (of the whole run)
``samples_seen``  training samples consumed by all processes together
``steps_per_epoch``, ``world_size``  the run's layout (a resumed run must match it)
``config``      the resolved training config
``metrics``     per-epoch development reports (list of dicts)
``rng``         global RNG states at save time
==============  ========================================================================================

An exported inference file (:func:`export_model`) has the same format without ``optimizer``,
``scheduler``, ``scaler``, ``head`` and ``rng``. Everything in either file is plain tensors,
numbers, strings, lists and dicts, so it loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write
from .errors import PartialFaceError

__all__ = [
    "CHECKPOINT_FORMAT",
    "TRAINING_KEYS",
    "INFERENCE_KEYS",
    "save_checkpoint",
    "load_checkpoint",
    "export_model",
    "save_torch_state",
    "load_torch_state",
    "load_weights",
]

CHECKPOINT_FORMAT = "partialface.checkpoint/1"
INFERENCE_KEYS = ("format", "model", "encoder", "crop", "epoch", "step", "samples_seen", "config", "metrics")
TRAINING_KEYS = INFERENCE_KEYS + ("head", "optimizer", "scheduler", "rng")
OPTIONAL_INFERENCE_KEYS = ("preparation", "card")  # kept by export_model when present


def save_torch_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """``torch.save`` of ``state`` written atomically: an interrupted save never leaves a half-written file
    where a resumable one was. Used for training checkpoints and attacker checkpoints alike."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        torch.save(dict(state), handle)
    return path


def load_torch_state(
    path: str | os.PathLike[str], what: str = "checkpoint", map_location: str | torch.device = "cpu"
) -> Any:
    """``torch.load(..., weights_only=True)`` of ``path``; a damaged or foreign file raises
    :class:`PartialFaceError` naming ``what`` and the file instead of one of torch's many error types."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files, some with pages of advice
        first = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
        raise PartialFaceError(f"cannot read {what} {os.fspath(path)!r}: not a file torch.save wrote, or a damaged "
                               f"one ({type(err).__name__}: {first})") from err


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> Path:
    """Write ``checkpoint`` atomically (temporary sibling file, fsync, ``os.replace``)."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise PartialFaceError(f"checkpoint format must be {CHECKPOINT_FORMAT!r}, got {checkpoint.get('format')!r}")
    return save_torch_state(path, checkpoint)


def _check_module_entry(entry: Any, key: str, source: str) -> None:
    if not isinstance(entry, Mapping):
        raise PartialFaceError(f"{source}: '{key}' must be a dict with name, kwargs and state_dict, got {type(entry).__name__}")
    missing = [k for k in ("name", "kwargs", "state_dict") if k not in entry]
    if missing:
        raise PartialFaceError(f"{source}: '{key}' lacks {', '.join(missing)}")
    if not isinstance(entry["name"], str) or not isinstance(entry["kwargs"], Mapping):
        raise PartialFaceError(f"{source}: '{key}' name must be a string and kwargs a dict")
    if not isinstance(entry["state_dict"], Mapping) or not all(
        isinstance(v, torch.Tensor) for v in entry["state_dict"].values()
    ):
        raise PartialFaceError(f"{source}: '{key}' state_dict must map names to tensors")


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", require_training_state: bool = False
) -> dict[str, Any]:
    """Load and validate a training checkpoint or an exported inference file.

    Args:
        path: the ``.pt`` file.
        map_location: where tensors go (default CPU).
        require_training_state: also require what resuming needs (head, optimizer, scheduler, rng).

    Raises:
        PartialFaceError: naming the file when it is missing, unreadable, not a partialface checkpoint, of
        another format version, or lacking required entries.
    """
    source = os.fspath(path)
    if not Path(path).is_file():
        raise PartialFaceError(f"checkpoint {source!r} does not exist")
    data = load_torch_state(path, "checkpoint", map_location)
    if not isinstance(data, dict) or "format" not in data:
        raise PartialFaceError(f"{source!r} is not a partialface checkpoint (no 'format' entry)")
    if data["format"] != CHECKPOINT_FORMAT:
        raise PartialFaceError(f"{source!r} has format {data['format']!r}; this version reads {CHECKPOINT_FORMAT!r}")
    required = TRAINING_KEYS if require_training_state else INFERENCE_KEYS
    missing = [k for k in required if k not in data]
    if missing:
        what = "a resumable training checkpoint" if require_training_state else "a checkpoint"
        raise PartialFaceError(f"{source!r} lacks {', '.join(missing)} needed for {what}")
    _check_module_entry(data["model"], "model", source)
    if "head" in data and data["head"] is not None:
        _check_module_entry(data["head"], "head", source)
    if not isinstance(data["encoder"], Mapping) or "name" not in data["encoder"]:
        raise PartialFaceError(f"{source!r}: 'encoder' must be an encoder state dict with a name")
    for key in ("epoch", "step", "samples_seen"):
        if not isinstance(data[key], int) or data[key] < 0:
            raise PartialFaceError(f"{source!r}: '{key}' must be a non-negative int, got {data[key]!r}")
    return data


def _listed(names: list[str], shown: int = 3) -> str:
    more = f" (+{len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def load_weights(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``module`` (floating weights cast to the module's float32).

    A missing, unexpected, mis-shaped or non-finite weight raises one :class:`PartialFaceError` line naming
    ``source`` (e.g. ``checkpoint 'run/checkpoint.pt'``) and the first offending weights, instead of
    ``load_state_dict``'s many-line RuntimeError or, for NaN weights, templates that match nothing.
    """
    own = module.state_dict()
    missing = [name for name in own if name not in state_dict]
    unexpected = [name for name in state_dict if name not in own]
    shapes = [f"{name} {tuple(state_dict[name].shape)} where the model has {tuple(tensor.shape)}"
              for name, tensor in own.items() if name in state_dict and state_dict[name].shape != tensor.shape]
    non_finite = [name for name, tensor in state_dict.items()
                  if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    for problems, what in ((missing, "lacks the weights"), (shapes, "has mis-shaped weights"),
                           (unexpected, "has weights this model does not have"),
                           (non_finite, "has NaN or infinite weights (a diverged training?)")):
        if problems:
            raise PartialFaceError(f"{source} {what}: {_listed(problems)}")
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()})


def export_model(
    checkpoint_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    half: bool = False,
    card: Mapping[str, Any] | None = None,
) -> Path:
    """Write a slim inference file: the checkpoint without optimizer, scheduler, scaler, head and RNG.

    ``half=True`` stores floating-point weights as float16 (loaders should cast back to float32).
    ``card`` (a JSON-like dict: data, budget, accuracy, the reproducing command) is stored as ``card``.
    """
    data = load_checkpoint(checkpoint_path)
    state = {
        name: (tensor.half() if half and tensor.is_floating_point() else tensor)
        for name, tensor in data["model"]["state_dict"].items()
    }
    slim = {key: data[key] for key in INFERENCE_KEYS + OPTIONAL_INFERENCE_KEYS if key in data}
    slim["model"] = {**data["model"], "state_dict": state}
    slim["weights_dtype"] = "float16" if half else "float32"
    if card is not None:
        slim["card"] = dict(card)
    return save_checkpoint(out_path, slim)
