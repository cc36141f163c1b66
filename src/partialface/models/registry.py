"""The backbone registry: :func:`register_model`, :func:`get_model`, :func:`list_models`.

Backbones are picked by a short lower-case name (``"ir50"``) in configuration files and on the command
line. The :class:`~partialface.registry.Registry` class itself lives at the bottom layer
(:mod:`partialface.registry`) so that encoders and clients use the same one without importing the
models; it is re-exported here because :mod:`partialface.models.heads` keeps its own registry of
margin heads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from ..registry import BuilderT, Registry

__all__ = ["Registry", "MODELS", "register_model", "get_model", "list_models"]


MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(name: str) -> Callable[[BuilderT], BuilderT]:
    """Decorator registering a backbone builder (a class or function returning an ``nn.Module``)."""
    return MODELS.register(name)


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name``.

    Keyword arguments go to the builder (``in_channels``, ``embedding_size``, ``input_size``, ...).

    Raises:
        PartialFaceError: for an unknown name (the message lists the known ones).
        ValueError: for bad arguments.
    """
    return MODELS.build(name, **kwargs)


def list_models() -> list[str]:
    """Names of all registered backbones, sorted."""
    return MODELS.names()
