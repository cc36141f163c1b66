"""Input encoders: what the client sends to the server, injected into training and evaluation.

Every encoder turns RGB faces (B,3,H,W) in [-1,1] into the model's input. The training loop and the
evaluation never branch on the method; they ask the encoder:

* ``encode_train(x, labels, generator)``: the input for a training step (PartialFace draws a rank per
  sample with TFace's label-keyed rule);
* ``encode_query(x, generator)``: the input a client sends at inference (one uniform random rank per
  query for PartialFace);
* ``to_preview(encoded, channels)``: what an eavesdropper would see when viewing the sent tensor as an
  image (the inverse transform with every unsent channel zero).

Encoders (``get_encoder(name, plan=...)``; options beyond ``frequency_scale`` and ``train_repeats``):

============  ======  ===============================================================  ===================
name          chans   input                                                            options
============  ======  ===============================================================  ===================
rgb           3       the face itself (unprotected baseline)
partialface   3s      one random rank of the plan per sample (the method)
fixed         3s      always one rank of the plan (default subset 0 / permutation 0,   subset, permutation
                      the paper's vanilla)
pruned        162     every kept (high-frequency) channel
frequency     192     every frequency channel (no protection, frequency-domain baseline)
============  ======  ===============================================================  ===================

Frequency inputs are divided by a per-frequency scale (``frequency_scale``, 192 values, default 1):
DCT coefficients span four orders of magnitude, and a scale estimated from training faces
(:func:`estimate_frequency_scale`) keeps every channel near unit variance whatever rank it lands in.

Modules: :mod:`.base` (the interface and the :data:`ENCODERS` registry), :mod:`.rgb`,
:mod:`.frequency_inputs` (the frequency encoders), :mod:`.scale`. A new encoder is a subclass of
:class:`InputEncoder` decorated with :func:`register_encoder`; :func:`encoder_from_state` restores it
from a checkpoint through its ``from_state``.
"""

from .base import (
    ENCODERS,
    PIPELINE_OPTIONS,
    InputEncoder,
    encoder_from_state,
    get_encoder,
    list_encoders,
    register_encoder,
)
from .frequency_inputs import (
    AllFrequenciesEncoder,
    FixedEncoder,
    FrequencyEncoder,
    PartialFaceEncoder,
    PrunedEncoder,
)
from .rgb import RGBEncoder
from .scale import estimate_frequency_scale

__all__ = [
    "ENCODERS",
    "PIPELINE_OPTIONS",
    "InputEncoder",
    "RGBEncoder",
    "FrequencyEncoder",
    "FixedEncoder",
    "PrunedEncoder",
    "AllFrequenciesEncoder",
    "PartialFaceEncoder",
    "register_encoder",
    "get_encoder",
    "list_encoders",
    "encoder_from_state",
    "estimate_frequency_scale",
]
