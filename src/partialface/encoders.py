"""Input encoders: what the client sends to the server, injected into training and evaluation.

Every encoder turns RGB faces (B,3,H,W) in [-1,1] into the model's input. The training loop and the
evaluation never branch on the method; they ask the encoder:

* ``encode_train(x, labels, generator)``: the input for a training step (PartialFace draws a rank per
  sample with TFace's label-keyed rule);
* ``encode_query(x, generator)``: the input a client sends at inference (one uniform random rank per
  query for PartialFace);
* ``to_preview(encoded, channels)``: what an eavesdropper would see when viewing the sent tensor as an
  image (the inverse transform with every unsent channel zero).

Encoders (``get_encoder(name, plan=...)``):

============  ======  ===============================================================
name          chans   input
============  ======  ===============================================================
rgb           3       the face itself (unprotected baseline)
partialface   3s      one random rank of the plan per sample (the method)
fixed         3s      always subset 0 / permutation 0 of the plan (the paper's vanilla)
pruned        162     every kept (high-frequency) channel
frequency     192     every frequency channel (no protection, frequency-domain baseline)
============  ======  ===============================================================

Frequency inputs are divided by a per-frequency scale (``frequency_scale``, 192 values, default 1):
DCT coefficients span four orders of magnitude, and a scale estimated from training faces
(:func:`estimate_frequency_scale`) keeps every channel near unit variance whatever rank it lands in.
"""

from __future__ import annotations

from typing import Callable

import torch

from .frequency import NUM_CHANNELS, scatter_channels, to_frequency, to_image
from .plan import ChannelPlan

__all__ = [
    "InputEncoder",
    "RGBEncoder",
    "FrequencyEncoder",
    "PartialFaceEncoder",
    "get_encoder",
    "list_encoders",
    "estimate_frequency_scale",
]


class InputEncoder:
    """Base class. Subclasses set ``name``, ``out_channels`` and implement ``channels_for_*``."""

    name: str = ""
    out_channels: int = 3
    plan: ChannelPlan | None = None
    train_repeats: int = 1

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


class RGBEncoder(InputEncoder):
    """The unprotected baseline: the face itself."""

    name = "rgb"
    out_channels = 3

    def channels_for_query(self, batch, generator):
        return None

    def encode(self, x, channels=None):
        return x

    def to_preview(self, encoded, channels=None):
        return (encoded * 0.5 + 0.5).clamp(0, 1)


class FrequencyEncoder(InputEncoder):
    """A fixed set of frequency channels (shared by every sample), scaled per frequency."""

    def __init__(
        self,
        name: str,
        channels: torch.Tensor,
        plan: ChannelPlan | None = None,
        frequency_scale: torch.Tensor | None = None,
    ):
        self.name = name
        self.plan = plan
        self.fixed_channels = torch.as_tensor(channels, dtype=torch.long)
        self.out_channels = int(self.fixed_channels.shape[-1])
        scale = torch.ones(NUM_CHANNELS) if frequency_scale is None else torch.as_tensor(frequency_scale).float()
        if scale.shape != (NUM_CHANNELS,) or not bool((scale > 0).all()):
            raise ValueError(f"frequency_scale must hold {NUM_CHANNELS} positive values, got shape {tuple(scale.shape)}")
        self.frequency_scale = scale

    def channels_for_query(self, batch, generator):
        return self.fixed_channels

    def encode(self, x, channels):
        return to_frequency(x, channels, frequency_scale=self.frequency_scale)

    def to_preview(self, encoded, channels):
        channels = channels.to(encoded.device)
        scale = self.frequency_scale.to(device=encoded.device, dtype=encoded.dtype)[channels]
        full = scatter_channels(encoded * scale[..., None, None], channels)
        return to_image(full)

    def state_dict(self):
        return {
            **super().state_dict(),
            "channels": self.fixed_channels.tolist(),
            "frequency_scale": self.frequency_scale.tolist(),
        }


class PartialFaceEncoder(FrequencyEncoder):
    """PartialFace: one random (subset, permutation) rank of the plan per sample.

    Training ranks follow TFace's rule (``plan.sample_training_ranks``: label-keyed allowed subsets,
    uniform permutation), and every image is seen ``train_repeats`` (NUM_AUG) times per epoch with
    independent ranks. Queries draw a uniform rank over all ``m * n``.
    """

    name = "partialface"

    def __init__(self, plan: ChannelPlan, frequency_scale: torch.Tensor | None = None, train_repeats: int = 3):
        super().__init__("partialface", plan.channels(0, 0), plan, frequency_scale)
        if train_repeats < 1:
            raise ValueError(f"train_repeats (NUM_AUG) must be >= 1, got {train_repeats}")
        self.train_repeats = int(train_repeats)

    def channels_for_training(self, labels, generator):
        return self.plan.channels(*self.plan.sample_training_ranks(labels, generator))

    def channels_for_query(self, batch, generator):
        return self.plan.channels(*self.plan.sample_query_ranks(batch, generator))

    def encode_rank(self, x: torch.Tensor, subset, permutation) -> torch.Tensor:
        """The input of one given rank (ints, or per-sample LongTensors)."""
        channels = self.plan.channels(subset, permutation)
        if channels.dim() == 2 and channels.shape[0] == 1:
            channels = channels[0]
        return self.encode(x, channels)

    def state_dict(self):
        state = {**super().state_dict(), "train_repeats": self.train_repeats}
        del state["channels"]  # drawn per sample from the plan
        return state


_BUILDERS: dict[str, Callable[..., InputEncoder]] = {}


def _register(name: str):
    def wrap(fn):
        _BUILDERS[name] = fn
        return fn

    return wrap


@_register("rgb")
def _rgb(plan=None, frequency_scale=None, **kw):
    return RGBEncoder()


@_register("partialface")
def _partialface(plan=None, frequency_scale=None, train_repeats: int = 3, **kw):
    return PartialFaceEncoder(plan or ChannelPlan.tface(), frequency_scale, train_repeats)


@_register("fixed")
def _fixed(plan=None, frequency_scale=None, subset: int = 0, permutation: int = 0, **kw):
    plan = plan or ChannelPlan.tface()
    return FrequencyEncoder("fixed", plan.channels(subset, permutation), plan, frequency_scale)


@_register("pruned")
def _pruned(plan=None, frequency_scale=None, **kw):
    plan = plan or ChannelPlan.tface()
    return FrequencyEncoder("pruned", plan.all_channels(), plan, frequency_scale)


@_register("frequency")
def _frequency(plan=None, frequency_scale=None, **kw):
    return FrequencyEncoder("frequency", torch.arange(NUM_CHANNELS), None, frequency_scale)


# Options every builder accepts; train_repeats only matters to encoders that draw random ranks,
# subset/permutation only to "fixed".
_OPTIONS = frozenset({"frequency_scale", "train_repeats", "subset", "permutation"})


def list_encoders() -> list[str]:
    return sorted(_BUILDERS)


def get_encoder(name: str, plan: ChannelPlan | None = None, **kwargs) -> InputEncoder:
    """Build an encoder by name (see the module docstring); ``plan`` defaults to ``ChannelPlan.tface()``."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(list_encoders())}")
    unknown = sorted(set(kwargs) - _OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for encoder {name!r}; known: {', '.join(sorted(_OPTIONS))}")
    return _BUILDERS[name](plan=plan, **kwargs)


def encoder_from_state(state: dict) -> InputEncoder:
    """Rebuild an encoder from :meth:`InputEncoder.state_dict`."""
    name = state.get("name")
    if name not in _BUILDERS:
        raise ValueError(f"unknown encoder {name!r} in saved state; known: {', '.join(list_encoders())}")
    plan = ChannelPlan.from_dict(state["plan"], source="saved encoder") if state.get("plan") else None
    scale = torch.tensor(state["frequency_scale"]) if "frequency_scale" in state else None
    if name == "rgb":
        return RGBEncoder()
    if name == "partialface":
        return PartialFaceEncoder(plan, scale, state.get("train_repeats", 1))
    return FrequencyEncoder(name, torch.tensor(state["channels"]), plan, scale)


@torch.no_grad()
def estimate_frequency_scale(faces: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """Root-mean-square of each of the 192 frequency channels over ``faces`` (B,3,H,W) in [-1,1].

    Used as ``frequency_scale`` so that every channel enters the model near unit scale.
    """
    total = torch.zeros(NUM_CHANNELS, dtype=torch.float64)
    for start in range(0, faces.shape[0], 16):  # 16 faces of 192 channels at a time: bounded memory
        freq = to_frequency(faces[start : start + 16])
        total += freq.double().pow(2).sum(dim=(0, 2, 3)).cpu()
    rms = (total / (faces.shape[0] * faces.shape[2] * faces.shape[3])).sqrt()
    return rms.clamp_min(floor).float()
