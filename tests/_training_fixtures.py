"""Tiny synthetic identities and configs shared by the training and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PEOPLE = 10
IMAGES_PER_PERSON = 4


def write_identities(root: Path, people: int = PEOPLE, per_person: int = IMAGES_PER_PERSON) -> list[str]:
    """LFW-layout folders of 32x32 JPEGs: one base colour per person plus noise."""
    rng = np.random.default_rng(0)
    names = [f"Person_{index:02d}" for index in range(people)]
    for name in names:
        colour = rng.integers(30, 226, 3)
        folder = root / "images" / name
        folder.mkdir(parents=True)
        for number in range(1, per_person + 1):
            pixels = np.clip(colour + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{number:04d}.jpg")
    return names


def write_pairs(path: Path, names: list[str]) -> None:
    """An LFW pairs.txt with 2 folds of 10 same + 10 different pairs; fold 2 holds the last half of the people."""
    half = len(names) // 2
    lines = ["2\t10"]
    for fold in range(2):
        people = names[fold * half : (fold + 1) * half]
        lines += [f"{people[k % half]}\t1\t{2 + k // half}" for k in range(10)]
        lines += [f"{people[k % half]}\t1\t{people[(k + 1) % half]}\t{1 + k // half}" for k in range(10)]
    path.write_text("\n".join(lines) + "\n")


def tiny_config(root: Path, out: Path, **overrides) -> dict:
    """A config of the tiny synthetic protocol: train outside fold 2, evaluate on fold 2."""
    cfg = {
        "SEED": 5,
        "DATA_ROOT": str(root),
        "DATASETS": [{"name": "images", "batch_size": 8, "scale": 16, "margin": 0.2}],
        "BACKBONE_NAME": "MobileFaceNet",
        "MODEL_OPTIONS": {"width": 0.25},
        "EMBEDDING_SIZE": 16,
        "HEAD_NAME": "CosFace",
        "INPUT_SIZE": 16,
        "CROP": {"box": None, "size": 16},
        "LRS": [0.01, 0.001],
        "STAGES": [1],
        "NUM_EPOCH": 2,
        "NUM_AUG": 2,
        "WORKERS": 0,
        "THREADS": 1,
        "EXCLUDE_PAIRS": str(root / "pairs.txt"),
        "EXCLUDE_FOLDS": [2],
        "DEV_PAIRS": str(root / "pairs.txt"),
        "DEV_FOLDS": [2],
        "DEV_IMAGES": str(root / "images"),
        "FREQUENCY_SCALE_SAMPLES": 16,
        "OUT": str(out),
    }
    cfg.update(overrides)
    return cfg
