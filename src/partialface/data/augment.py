"""Training-time augmentation applied to single face tensors inside dataset workers."""

from __future__ import annotations

import torch

from ..checks import check_number


def random_horizontal_flip(image: torch.Tensor, probability: float = 0.5) -> torch.Tensor:
    """Mirror ``image`` (..., H, W) left-right with the given probability.

    The draw uses torch's global RNG, so results are reproducible after ``torch.manual_seed`` in the
    main process, and in DataLoader workers, which torch seeds from the loader's base seed plus the
    worker id.
    """
    check_number("flip probability", probability, 0.0, 1.0)
    if torch.rand(()) < probability:
        return image.flip(-1)
    return image
