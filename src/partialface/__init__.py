"""partialface: privacy-preserving face recognition with random frequency components (PartialFace, ICCV 2023).

The client turns an aligned face into 192 block-DCT frequency channels (:mod:`partialface.frequency`),
drops the low frequencies people see, and sends one random subset of the rest in a random order
(:class:`partialface.plan.ChannelPlan`). Models train and verify on those inputs
(:mod:`partialface.encoders`, :mod:`partialface.training`, :mod:`partialface.evaluation`), and
:mod:`partialface.attacks` measures how much of the face an attacker can recover.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .frequency import to_frequency, to_image
from .plan import ChannelPlan

__all__ = ["ChannelPlan", "to_frequency", "to_image", "load_model", "__version__"]


def load_model(path_or_name, device="cpu"):
    """Load a trained model (a checkpoint path or a shipped name); see :func:`partialface.api.load_model`."""
    from .api import load_model as _load

    return _load(path_or_name, device=device)
