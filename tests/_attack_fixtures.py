"""Synthetic faces for the attack tests: smooth random colour images, small enough to train on in seconds."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from partialface.attacks.faces import AttackerFaces, VictimSet, faces_to_uint8, impostor_assignment
from partialface.attacks.judge import JudgeProtocol


def smooth_faces(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(count, 3, size, size) smooth images in [-1, 1] (8-bit exact: they survive uint8 storage)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 3, 4, 4, generator=generator)
    faces = torch.tanh(F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False))
    return faces_to_uint8(faces).float().div(127.5).sub(1.0)


def synthetic_attacker(count: int = 12, size: int = 32) -> AttackerFaces:
    return AttackerFaces(faces_to_uint8(smooth_faces(count, size, seed=1)), people=count)


def synthetic_victims(count: int = 4, size: int = 32) -> VictimSet:
    faces = smooth_faces(count, size, seed=2)
    gallery = (faces + 0.05 * smooth_faces(count, size, seed=3)).clamp(-1, 1)
    protocol = JudgeProtocol(np.arange(count), impostor_assignment(count, np.random.default_rng(0)))
    return VictimSet(faces, [f"victim{i}" for i in range(count)], gallery, [f"gallery{i}" for i in range(count)],
                     protocol)
