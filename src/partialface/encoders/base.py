"""The input-encoder interface and the registry that builds and restores encoders by name.

Every encoder is a class registered under its ``name`` in :data:`ENCODERS` (the same
:class:`~partialface.registry.Registry` the backbones use). The class says which keyword options it
accepts (:attr:`InputEncoder.options`), how to build itself from them (:meth:`InputEncoder.build`) and
how to restore itself from its saved state (:meth:`InputEncoder.from_state`), so a newly registered
encoder round-trips through a checkpoint without any change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch

from ..errors import PartialFaceError
from ..plan import ChannelPlan
from ..registry import Registry

__all__ = [
    "InputEncoder",
    "ENCODERS",
    "PIPELINE_OPTIONS",
    "register_encoder",
    "get_encoder",
    "list_encoders",
    "encoder_from_state",
    "plan_from_state",
    "scale_from_state",
    "state_entry",
]

# The training pipeline passes these to every encoder it builds (the per-frequency input scale once it
# is estimated, and NUM_AUG); an encoder without frequency inputs or random ranks simply ignores them.
PIPELINE_OPTIONS = frozenset({"frequency_scale", "train_repeats"})


class InputEncoder:
    """Base class: RGB faces (B,3,H,W) in [-1,1] -> what the client sends.

    Subclasses set ``name`` (their registry name), ``out_channels``, the extra keyword ``options``
    :func:`get_encoder` may pass to :meth:`build`, and implement ``channels_for_query``, ``encode``,
    ``to_preview``, :meth:`build` and :meth:`from_state`.
    """

    name: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()
    out_channels: int = 3
    plan: ChannelPlan | None = None
    train_repeats: int = 1

    @classmethod
    def build(cls, plan: ChannelPlan | None = None, **options: Any) -> InputEncoder:
        """A new encoder for ``plan`` (None: the encoder's default) with the checked keyword ``options``:
        the :data:`PIPELINE_OPTIONS` and the class's own :attr:`options`."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> InputEncoder:
        """Rebuild the encoder that wrote ``state`` (:meth:`state_dict`), including states saved by
        earlier versions of the class."""
        raise NotImplementedError

    def channels_for_training(self, labels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor | None:
        """Indices into the 192 frequency channels per sample (B,J) or shared (J,); None for RGB."""
        return self.channels_for_query(labels.shape[0], generator)

    def channels_for_query(self, batch: int, generator: torch.Generator | None) -> torch.Tensor | None:
        raise NotImplementedError

    def encode(self, x: torch.Tensor, channels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def encode_train(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.encode(x, self.channels_for_training(labels, generator))

    def encode_query(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.encode(x, self.channels_for_query(x.shape[0], generator))

    def to_preview(self, encoded: torch.Tensor, channels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Everything needed to rebuild the encoder (stored in checkpoints)."""
        return {"name": self.name, "plan": self.plan.to_dict() if self.plan else None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, out_channels={self.out_channels})"


EncoderT = TypeVar("EncoderT", bound=type[InputEncoder])

ENCODERS: Registry[type[InputEncoder]] = Registry("encoder")


def register_encoder(encoder_class: EncoderT) -> EncoderT:
    """Class decorator: register ``encoder_class`` under its ``name`` (for :func:`get_encoder` and
    :func:`encoder_from_state`)."""
    return ENCODERS.register(encoder_class.name)(encoder_class)


def list_encoders() -> list[str]:
    """Names of the registered encoders, sorted."""
    return ENCODERS.names()


def get_encoder(name: str, plan: ChannelPlan | None = None, **options: Any) -> InputEncoder:
    """Build an encoder by name (see :mod:`partialface.encoders`); ``plan`` defaults to the encoder's
    own default (``ChannelPlan.tface()`` for the plan-based ones).

    Raises:
        PartialFaceError: for an unknown name or an option the encoder does not accept.
    """
    encoder_class = ENCODERS.builder(name)
    accepted = PIPELINE_OPTIONS | encoder_class.options
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise PartialFaceError(
            f"unknown option(s) {', '.join(unknown)} for encoder {name!r}; it accepts: {', '.join(sorted(accepted))}"
        )
    return encoder_class.build(plan, **options)


def encoder_from_state(state: Mapping[str, Any]) -> InputEncoder:
    """Rebuild an encoder from :meth:`InputEncoder.state_dict`: the class registered under the saved
    ``name`` restores itself."""
    if not isinstance(state, Mapping):
        raise PartialFaceError(f"a saved encoder must be a dict with a name, got {type(state).__name__}")
    return ENCODERS.builder(state.get("name")).from_state(state)


def state_entry(state: Mapping[str, Any], key: str) -> Any:
    """``state[key]``, or a :class:`PartialFaceError` naming the encoder and the missing key."""
    if key not in state:
        raise PartialFaceError(f"saved encoder {state.get('name')!r} lacks {key!r}")
    return state[key]


def plan_from_state(state: Mapping[str, Any]) -> ChannelPlan | None:
    """The channel plan stored in an encoder state (None when it has none)."""
    data = state.get("plan")
    return ChannelPlan.from_dict(data, source="saved encoder") if data else None


def scale_from_state(state: Mapping[str, Any]) -> torch.Tensor | None:
    """The per-frequency input scale stored in an encoder state (None when it has none)."""
    scale = state.get("frequency_scale")
    return None if scale is None else torch.tensor(scale)
