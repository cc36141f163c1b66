"""Name -> builder registries for backbones and classification heads.

A registry maps a short lower-case name (``"ir50"``, ``"arcface"``) to the callable that builds the
object, so configuration files and the command line can pick a model by name. The module-level
functions :func:`register_model`, :func:`get_model` and :func:`list_models` use the backbone
registry; :mod:`partialface.models.heads` keeps its own :class:`Registry` of margin heads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import torch.nn as nn

BuilderT = TypeVar("BuilderT", bound=Callable[..., Any])

__all__ = ["Registry", "MODELS", "register_model", "get_model", "list_models"]


class Registry(Generic[BuilderT]):
    """A named collection of builders.

    Args:
        kind: what the registry holds, used in error messages (``"model"``, ``"head"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[BuilderT], BuilderT]:
        """Decorator that records ``builder`` under ``name`` and returns it unchanged.

        Raises:
            ValueError: if ``name`` is empty, not lower case, or already taken.
        """
        if not name or name != name.strip().lower():
            raise ValueError(f"{self.kind} name must be a non-empty lower-case string, got {name!r}")

        def decorator(builder: BuilderT) -> BuilderT:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return decorator

    def builder(self, name: str) -> Callable[..., Any]:
        """Return the builder registered as ``name``.

        Raises:
            ValueError: for an unknown name; the message lists the known ones.
        """
        try:
            return self._builders[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ValueError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build the object registered as ``name`` with the given arguments."""
        return self.builder(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders


MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(name: str) -> Callable[[BuilderT], BuilderT]:
    """Decorator registering a backbone builder (a class or function returning an ``nn.Module``)."""
    return MODELS.register(name)


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name``.

    Keyword arguments go to the builder (``in_channels``, ``embedding_size``, ``input_size``, ...).

    Raises:
        ValueError: for an unknown name (the message lists the known ones) or bad arguments.
    """
    return MODELS.build(name, **kwargs)


def list_models() -> list[str]:
    """Names of all registered backbones, sorted."""
    return MODELS.names()
