"""What an attack may spend (:class:`AttackBudget`, its presets) and how it is run (:class:`AttackSettings`).

Every single-attacker scenario trains the same network for the same number of steps on the same attacker
faces, so encoders are compared under one budget. The enhanced white-box attacker starts from the
white-box attacker and fine-tunes one copy per rank for ``rank_steps`` more steps each; its reported
budget includes the white-box training it builds on.

A budget is checked against the machine before anything is allocated (:func:`check_budget_fits`): a
U-Net too deep for the face size, or too wide or too large a batch for the memory there is, is refused
with one line instead of ending in an out-of-memory kill an hour into a run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..checks import check_choice, check_int, check_number
from ..encoders import get_encoder
from ..errors import PartialFaceError
from ..plan import ChannelPlan
from .threats import DEFAULT_SCENARIOS, SELECTION_CRITERIA, Scenario
from .unet import estimate_memory_bytes

__all__ = ["AttackBudget", "BUDGET_PRESETS", "AttackSettings", "INFERENCE_BATCH", "check_budget_fits",
           "available_memory_bytes"]

INFERENCE_BATCH = 50  # victims reconstructed at once


@dataclass(frozen=True)
class AttackBudget:
    """What one attacker may spend.

    Attributes:
        attacker_images: attacker-owned faces (distinct images) it trains on.
        steps: optimiser steps of every single attacker (black-box, white-box, baselines).
        batch_size: faces per step.
        rank_steps: fine-tuning steps of each per-rank attacker (enhanced white-box).
        width, depth: U-Net size (:class:`~partialface.attacks.unet.ReconstructionUNet`).
        learning_rate: Adam learning rate of the single attackers.
        rank_learning_rate: Adam learning rate of the per-rank fine-tuning.
        ssim_weight: weight of the ``1 - SSIM`` term added to the L1 loss.
    """

    attacker_images: int = 4000
    steps: int = 500
    batch_size: int = 16
    rank_steps: int = 20
    width: int = 16
    depth: int = 3
    learning_rate: float = 1e-3
    rank_learning_rate: float = 5e-4
    ssim_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("attacker_images", "steps", "batch_size", "rank_steps", "width"):
            check_int(f"attack budget {name}", getattr(self, name), low=1)
        check_int("attack budget depth", self.depth, low=0)
        for name in ("learning_rate", "rank_learning_rate"):
            check_number(f"attack budget {name}", getattr(self, name), low=0, strict_low=True)
        check_number("attack budget ssim_weight", self.ssim_weight, low=0)

    def to_dict(self) -> dict:
        return asdict(self)


# Presets.  "default" is sized for the seven default scenarios and 200 victims to finish within 45
# minutes on a 2-core CPU shared with other work.  Measured there on one torch thread: training at
# ~55 faces/s (27-channel and RGB inputs) and ~18 faces/s (162 and 192 channels, whose frequency
# transform costs as much as the network), so 500 steps x 16 faces per attacker plus 18 ranks x 20
# steps take ~26 min; the judge's ~2,000 dlib descriptors (0.15-0.3 s each), the 18 per-rank
# reconstructions and loading take ~10 min more.  "smoke" is a few-minute end-to-end check (use it
# with ~40 victims); "tiny" runs in the tests.
BUDGET_PRESETS: dict[str, AttackBudget] = {
    "default": AttackBudget(),
    "smoke": AttackBudget(attacker_images=400, steps=40, batch_size=16, rank_steps=2),
    "tiny": AttackBudget(attacker_images=16, steps=2, batch_size=4, rank_steps=1, width=4, depth=1),
}


@dataclass
class AttackSettings:
    """Everything about an attack run except the budget.

    Attributes:
        scenarios: attacks to run (``encoder/threat``).
        plan: the deployment's channel plan (default: TFace's published tables).
        attacker_plan_seed: seed of the black-box attacker's own plan.
        seed: seed of victim query ranks, attacker sampling and weight initialisation.
        criterion: blind rank selection of the enhanced white-box attacker (``consistency``,
            ``smoothness`` or ``identified``).
        checkpoint_dir: where attackers are checkpointed (None: no checkpoints).
        checkpoint_every: steps between checkpoints.
        device: torch device of training and inference.
        progress: show tqdm progress bars.
    """

    scenarios: tuple[Scenario, ...] = DEFAULT_SCENARIOS
    plan: ChannelPlan = field(default_factory=ChannelPlan.tface)
    attacker_plan_seed: int = 2024
    seed: int = 0
    criterion: str = "consistency"
    checkpoint_dir: Path | None = None
    checkpoint_every: int = 200
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.scenarios:
            raise PartialFaceError("attack settings: no scenario to run")
        keys = [scenario.key for scenario in self.scenarios]
        if len(set(keys)) != len(keys):
            raise PartialFaceError(f"attack settings: scenarios repeat: {keys}")
        check_choice("rank selection criterion", self.criterion, SELECTION_CRITERIA)
        check_int("attack seed", self.seed, low=0)
        check_int("attack plan seed", self.attacker_plan_seed, low=0)
        check_int("checkpoint_every", self.checkpoint_every, low=1)


def available_memory_bytes(device: str | torch.device) -> int | None:
    """Memory a run on ``device`` may still take: free memory of a CUDA device, or the memory the
    operating system reports available (Linux ``MemAvailable``); None when it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0]) if torch.cuda.is_available() else None
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(size: int) -> str:
    return f"{size / 2**30:.3g} GiB"


def check_budget_fits(budget: AttackBudget, settings: AttackSettings, face_size: tuple[int, int],
                      available: int | None = None) -> int:
    """Refuse a budget the faces or the machine cannot hold; return the estimated bytes.

    The U-Net halves the face ``depth + 1`` times, so its depth is bounded by the face size; its memory
    (:func:`~partialface.attacks.unet.estimate_memory_bytes`, for the widest input among the scenarios)
    plus the attacker's uint8 faces must fit in ``available`` bytes (default: what
    :func:`available_memory_bytes` reports for ``settings.device``; unknown: not checked).

    Raises:
        PartialFaceError: naming the option to lower.
    """
    height, width = face_size
    multiple = 2 ** (budget.depth + 1)
    if height % multiple or width % multiple:
        deepest = -1
        while height % 2 ** (deepest + 2) == 0 and width % 2 ** (deepest + 2) == 0:
            deepest += 1
        allowed = f"depth <= {deepest}" if deepest >= 0 else "no depth (their size is odd)"
        raise PartialFaceError(f"attack budget depth {budget.depth} needs faces whose size is a multiple of "
                               f"2**{budget.depth + 1}; {height}x{width} faces allow {allowed}")
    in_channels = max(get_encoder(scenario.encoder, plan=settings.plan).out_channels for scenario in settings.scenarios)
    needed = estimate_memory_bytes(in_channels, 3, budget.width, budget.depth, height, width, budget.batch_size,
                                   INFERENCE_BATCH)
    needed += budget.attacker_images * 3 * height * width
    if available is None:
        available = available_memory_bytes(settings.device)
    if available is not None and needed > available:
        raise PartialFaceError(
            f"attack budget needs about {_gib(needed)} (U-Net width {budget.width}, depth {budget.depth}, batch "
            f"{budget.batch_size} on {in_channels}-channel {height}x{width} inputs, {budget.attacker_images} attacker "
            f"faces) but {settings.device} has {_gib(available)} available; lower --width, --depth, --batch-size "
            "or --attacker-images")
    return needed
