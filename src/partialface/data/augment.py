"""Training-time augmentation applied to single face tensors inside dataset workers."""

from __future__ import annotations

import torch


def random_horizontal_flip(image: torch.Tensor, probability: float = 0.5) -> torch.Tensor:
    """Mirror ``image`` (..., H, W) left-right with the given probability.

    The draw uses torch's global RNG, so results are reproducible after ``torch.manual_seed`` in the
    main process, and in DataLoader workers, which torch seeds from the loader's base seed plus the
    worker id.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"flip probability must be in [0, 1], got {probability}")
    if torch.rand(()) < probability:
        return image.flip(-1)
    return image
