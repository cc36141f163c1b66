"""Name -> builder registries: how a configuration file or a saved state picks a class by name.

A :class:`Registry` maps a short lower-case name (``"ir50"``, ``"arcface"``, ``"partialface"``) to the
callable that builds the object (a class or a function). It lives at the bottom layer, beside the
errors and checks, so that every layer can keep one: backbones and heads (:mod:`partialface.models`),
input encoders (:mod:`partialface.encoders`), and a client that must never import the models.

Registering is a programmer's act and a clash is a bug (``ValueError``); asking for an unknown name is a
user's mistake (a typo in a config, a checkpoint from a newer version) and raises
:class:`~partialface.errors.PartialFaceError` listing the known names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import PartialFaceError

BuilderT = TypeVar("BuilderT", bound=Callable[..., Any])

__all__ = ["Registry"]


class Registry(Generic[BuilderT]):
    """A named collection of builders.

    Args:
        kind: what the registry holds, used in error messages (``"model"``, ``"head"``, ``"encoder"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, BuilderT] = {}

    def register(self, name: str) -> Callable[[BuilderT], BuilderT]:
        """Decorator that records ``builder`` under ``name`` and returns it unchanged.

        Raises:
            ValueError: if ``name`` is empty, not lower case, or already taken.
        """
        if not isinstance(name, str) or not name or name != name.strip().lower():
            raise ValueError(f"{self.kind} name must be a non-empty lower-case string, got {name!r}")

        def decorator(builder: BuilderT) -> BuilderT:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return decorator

    def unregister(self, name: str) -> BuilderT:
        """Remove ``name`` and return its builder (for plug-ins and tests that register temporarily).

        Raises:
            PartialFaceError: for an unknown name, like :meth:`builder`.
        """
        builder = self.builder(name)
        del self._builders[name]
        return builder

    def builder(self, name: str) -> BuilderT:
        """Return the builder registered as ``name``.

        Raises:
            PartialFaceError: for an unknown name; the message lists the known ones.
        """
        try:
            return self._builders[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a damaged config
            known = ", ".join(self.names()) or "none"
            raise PartialFaceError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build the object registered as ``name`` with the given arguments."""
        return self.builder(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._builders
        except TypeError:
            return False
