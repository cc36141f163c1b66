"""The batch sampler of one training epoch: a seeded permutation split into global batches.

Epoch ``e`` shuffles all ``len(dataset)`` items (every image ``NUM_AUG`` times) with a permutation
seeded from ``(SEED, e)``, cuts it into global batches of ``batch_size * world_size`` (an incomplete
last batch is dropped) and gives process ``rank`` the ``rank``-th contiguous slice of ``batch_size``
items of each. The order depends only on the seed, the epoch, the global batch and the dataset size,
so a resumed run, or a run with a different number of processes on the same global batch, sees the
same samples at the same step.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from ..errors import PartialFaceError
from .seeding import Stream, seeded_generator

__all__ = ["EpochBatchSampler"]


class EpochBatchSampler(Sampler[list[int]]):
    """Yields this process's index lists for steps ``start_step .. stop_step - 1`` of ``epoch``.

    Args:
        dataset_size: items in the (repeated) dataset.
        batch_size: items per process per step.
        seed: the run's seed.
        epoch: 0-based epoch (selects the permutation).
        world_size, rank: the process group (1, 0 without distribution).
        start_step: first step of the epoch to yield (mid-epoch resume).
        stop_step: one past the last step to yield (a sample budget ending mid-epoch); None for all.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int,
        epoch: int,
        world_size: int = 1,
        rank: int = 0,
        start_step: int = 0,
        stop_step: int | None = None,
    ) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise PartialFaceError(f"bad batch layout: batch_size={batch_size}, world_size={world_size}, rank={rank}")
        self.dataset_size = int(dataset_size)
        self.batch_size = int(batch_size)
        self.world_size = int(world_size)
        self.rank = int(rank)
        self.seed = int(seed)
        self.epoch = int(epoch)
        steps = self.steps_per_epoch(self.dataset_size, self.batch_size, self.world_size)
        if steps == 0:
            raise PartialFaceError(
                f"the dataset has {self.dataset_size} items, fewer than one global batch of "
                f"{self.batch_size} x {self.world_size} processes"
            )
        self.stop_step = steps if stop_step is None else min(int(stop_step), steps)
        self.start_step = int(start_step)
        if not 0 <= self.start_step <= self.stop_step:
            raise PartialFaceError(f"start_step {start_step} outside 0..{self.stop_step}")

    @staticmethod
    def steps_per_epoch(dataset_size: int, batch_size: int, world_size: int = 1) -> int:
        """Complete global batches in one epoch."""
        return int(dataset_size) // (int(batch_size) * int(world_size))

    def global_batch(self, step: int) -> torch.Tensor:
        """Dataset indices of the whole global batch of ``step`` (every process's slice in rank order)."""
        global_size = self.batch_size * self.world_size
        return self._permutation()[step * global_size : (step + 1) * global_size]

    def _permutation(self) -> torch.Tensor:
        cached = getattr(self, "_cached_permutation", None)
        if cached is None:
            generator = seeded_generator(self.seed, Stream.PERMUTATION, self.epoch)
            cached = torch.randperm(self.dataset_size, generator=generator)
            self._cached_permutation = cached
        return cached

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.stop_step):
            batch = self.global_batch(step)
            yield batch[self.rank * self.batch_size : (self.rank + 1) * self.batch_size].tolist()

    def __len__(self) -> int:
        return self.stop_step - self.start_step
