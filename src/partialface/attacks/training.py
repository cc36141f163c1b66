"""Training an attacker: :func:`train_attacker` (checkpointed and resumable), :func:`reconstruct`.

Training is checkpointed: an interrupted attack resumes where it stopped, and a finished attacker is
reused. Checkpoints are written atomically with the same helper as training checkpoints
(:func:`partialface.checkpoint.save_torch_state`); their names hold a hash of everything that shapes
the attacker (:func:`config_hash`), so a changed budget or face set never resumes a stale one.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import load_torch_state, save_torch_state
from ..errors import PartialFaceError
from .budget import INFERENCE_BATCH
from .faces import AttackerFaces
from .losses import ReconstructionLoss
from .unet import ReconstructionUNet

__all__ = ["STATISTICS_SAMPLES", "TrainingRecord", "stable_seed", "config_hash", "train_attacker", "reconstruct"]

STATISTICS_SAMPLES = 256  # attacker faces used to fit the input standardisation
_CHECKPOINT_KEYS = ("model", "optimizer", "generator", "step", "wall_seconds", "loss")


@dataclass
class TrainingRecord:
    """What an attacker spent: steps, faces seen, wall-clock seconds (training only), last loss."""

    steps: int
    samples: int
    wall_seconds: float
    final_loss: float

    def __add__(self, other: TrainingRecord) -> TrainingRecord:
        return TrainingRecord(self.steps + other.steps, self.samples + other.samples,
                              self.wall_seconds + other.wall_seconds, other.final_loss)


def stable_seed(*parts: object) -> int:
    """A seed named by its parts (run seed, scenario key, rank, ...): CRC32 of them joined by ``/``.

    Training derives its seeds from integer positions (:func:`partialface.training.seeding.derive_seed`);
    an attack's draws are named by scenario strings, and the published privacy numbers and the
    checkpoint names of existing runs were made with this rule, so it stays.
    """
    return zlib.crc32("/".join(str(part) for part in parts).encode())


def config_hash(config: dict) -> str:
    """12 hex digits of SHA-256 over ``config`` as sorted JSON: names an attacker checkpoint."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def _load_checkpoint(path: Path, steps: int) -> dict:
    state = load_torch_state(path, "attack checkpoint")
    if not isinstance(state, dict) or any(key not in state for key in _CHECKPOINT_KEYS):
        raise PartialFaceError(f"{path} is not an attack checkpoint (needs {', '.join(_CHECKPOINT_KEYS)})")
    if state["step"] > steps:
        raise PartialFaceError(f"checkpoint {path} has {state['step']} steps, more than the {steps} requested; "
                               "remove it or raise the budget")
    return state


def train_attacker(
    model: ReconstructionUNet,
    make_inputs: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    faces: AttackerFaces,
    steps: int,
    batch_size: int,
    learning_rate: float,
    loss_fn: ReconstructionLoss,
    seed: int,
    checkpoint: Path | None = None,
    checkpoint_every: int = 200,
    fit_statistics: bool = True,
    device: str = "cpu",
    progress: bool = False,
    description: str = "attacker",
) -> TrainingRecord:
    """Train ``model`` to map ``make_inputs(faces)`` back to the faces (Adam, constant learning rate).

    With ``checkpoint`` the model, optimiser, sampler state and spent time are saved every
    ``checkpoint_every`` steps and at the end; an existing checkpoint is resumed (or, when finished,
    only loaded).  ``fit_statistics`` first sets the model's input standardisation from the
    attacker's own faces (False when fine-tuning a trained model).
    """
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    start_step, spent, last_loss = 0, 0.0, float("nan")
    if checkpoint is not None and checkpoint.is_file():
        state = _load_checkpoint(checkpoint, steps)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start_step, spent, last_loss = state["step"], state["wall_seconds"], state["loss"]
    elif fit_statistics:
        statistics_faces = faces.head(min(len(faces), STATISTICS_SAMPLES))
        model.fit_input_statistics(make_inputs(statistics_faces, torch.Generator().manual_seed(seed + 1)))

    def save(step: int) -> None:
        if checkpoint is not None:
            save_torch_state(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                          "generator": generator.get_state(), "step": step,
                                          "wall_seconds": spent, "loss": last_loss})

    model.train()
    bar = tqdm(range(start_step, steps), desc=description, disable=not progress, initial=start_step, total=steps,
               leave=False)
    started = time.perf_counter()
    for step in bar:
        batch = faces.sample(batch_size, generator)
        inputs = make_inputs(batch, generator).to(device)
        loss = loss_fn(model(inputs), batch.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last_loss = float(loss.detach())
        bar.set_postfix(loss=f"{last_loss:.4f}", refresh=False)
        if (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            spent += time.perf_counter() - started
            started = time.perf_counter()
            save(step + 1)
    if start_step < steps:
        spent += time.perf_counter() - started
        save(steps)
    model.eval()
    return TrainingRecord(steps, steps * batch_size, spent, last_loss)


@torch.no_grad()
def reconstruct(model: ReconstructionUNet, encoded: torch.Tensor, device: str = "cpu",
                batch_size: int = INFERENCE_BATCH) -> torch.Tensor:
    """Reconstructions (V, 3, H, W) in [-1, 1] of encoded inputs, on the CPU."""
    model.eval().to(device)
    parts = [model(encoded[start:start + batch_size].to(device)).cpu()
             for start in range(0, encoded.shape[0], batch_size)]
    return torch.cat(parts)
