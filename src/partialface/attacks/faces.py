"""The faces of an attack: the attacker's own faces, the victims, and how both are drawn from LFW.

Data protocol (LFW, :func:`load_lfw_attack_data`): the attacker owns faces of people outside the
victim folds (default LFW folds 7-8); the victims are ``victims`` people of those folds with at least
two photos: one photo is attacked, another one is the genuine photo the judge compares the recovered
face with (and the person's entry in the identification gallery).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checks import check_int
from ..data.crop import DEFAULT_CROP, CropSpec, load_face
from ..data.folders import scan_identity_folders
from ..data.pairs import people_in_folds, read_lfw_pairs
from ..errors import PartialFaceError
from .budget import AttackBudget
from .judge import JudgeProtocol

__all__ = ["faces_from_uint8", "faces_to_uint8", "AttackerFaces", "VictimSet", "impostor_assignment",
           "select_victims", "load_attacker_faces", "load_lfw_attack_data"]


# NOTE: faces_from_uint8 duplicates the data layer's 8-bit -> [-1, 1] conversion (``bytes_to_unit`` in
# data/crop.py, which is being renamed): x / 127.5 - 1 and (x / 255 - 0.5) / 0.5 give the same float32 for
# all 256 levels, so both helpers here can become the data layer's pair once that rename has landed.
def faces_from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) images -> float faces in [-1, 1] (the inverse of :func:`faces_to_uint8`)."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def faces_to_uint8(faces: torch.Tensor) -> torch.Tensor:
    """Float faces in [-1, 1] -> uint8 images (exact for faces decoded from 8-bit files)."""
    return ((faces.clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8)


@dataclass
class AttackerFaces:
    """The attacker's own faces, stored as uint8 (B, 3, H, W) to keep thousands of them in memory."""

    images: torch.Tensor
    people: int

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise PartialFaceError(f"attacker faces must be a uint8 (N, 3, H, W) tensor, got {self.images.dtype} "
                                   f"{tuple(self.images.shape)}")
        if self.images.shape[0] == 0:
            raise PartialFaceError("the attacker has no faces")

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
        """A random batch of faces in [-1, 1], each mirrored with probability 1/2 when ``flip``."""
        index = torch.randint(len(self), (batch_size,), generator=generator)
        faces = faces_from_uint8(self.images[index])
        if flip:
            mirrored = torch.rand(batch_size, generator=generator) < 0.5
            faces = torch.where(mirrored[:, None, None, None], faces.flip(-1), faces)
        return faces

    def head(self, count: int) -> torch.Tensor:
        """The first ``count`` faces in [-1, 1] (for fitting input statistics)."""
        return faces_from_uint8(self.images[:count])

    def fingerprint(self) -> str:
        """CRC32 of the pixels: identifies the face set in checkpoint names."""
        return f"{len(self)}-{zlib.crc32(self.images.numpy().tobytes()):08x}"


@dataclass
class VictimSet:
    """The attacked faces and the genuine photos the judge compares recovered faces with.

    Attributes:
        faces: (V, 3, H, W) victim faces in [-1, 1] (what the attacker tries to recover).
        paths: source of each victim face.
        gallery_faces: (G, 3, H, W) genuine photos, one per victim person, other than the attacked one.
        gallery_paths: source of each gallery photo.
        protocol: which gallery photos every victim is paired with.
    """

    faces: torch.Tensor
    paths: list[str]
    gallery_faces: torch.Tensor
    gallery_paths: list[str]
    protocol: JudgeProtocol

    def __post_init__(self) -> None:
        if self.faces.dim() != 4 or self.faces.shape[1] != 3:
            raise PartialFaceError(f"victim faces must be (V, 3, H, W), got {tuple(self.faces.shape)}")
        if len(self.paths) != self.faces.shape[0] or self.protocol.gallery_of_victim.shape[0] != self.faces.shape[0]:
            raise PartialFaceError("victim faces, paths and judge protocol differ in length")
        if self.gallery_faces.shape[1:] != self.faces.shape[1:] or len(self.gallery_paths) != self.gallery_faces.shape[0]:
            raise PartialFaceError(f"gallery faces {tuple(self.gallery_faces.shape)} do not match victims "
                                   f"{tuple(self.faces.shape)} or their paths")

    def __len__(self) -> int:
        return self.faces.shape[0]


def impostor_assignment(count: int, rng: np.random.Generator) -> np.ndarray:
    """For each of ``count`` people, another person's index (uniform among the others)."""
    if count < 2:
        raise PartialFaceError(f"impostor pairs need at least 2 victim people, got {count}")
    return (np.arange(count) + rng.integers(1, count, size=count)) % count


def _load_faces(paths: Sequence[Path], crop: CropSpec, progress: bool, description: str) -> torch.Tensor:
    faces = [load_face(path, crop) for path in tqdm(paths, desc=description, disable=not progress, leave=False)]
    return torch.stack(faces)


def select_victims(images_root: Path, victim_people: set[str], count: int, seed: int, crop: CropSpec = DEFAULT_CROP,
                   progress: bool = False) -> VictimSet:
    """``count`` victims: one attacked photo and one gallery photo of distinct people with >= 2 photos."""
    check_int("victims", count, low=2)
    folders = scan_identity_folders(images_root, min_images=2)
    photos: dict[str, list[Path]] = {}
    for path, label in folders.samples:
        name = folders.class_names[label]
        if name in victim_people:
            photos.setdefault(name, []).append(path)
    if len(photos) < count:
        raise PartialFaceError(f"{images_root}: only {len(photos)} people of the victim folds have >= 2 photos; "
                               f"{count} victims requested")
    rng = np.random.default_rng(seed)
    people = sorted(photos)
    chosen = [people[i] for i in sorted(rng.choice(len(people), size=count, replace=False))]
    attacked, genuine = [], []
    for name in chosen:
        first, second = rng.choice(len(photos[name]), size=2, replace=False)
        attacked.append(photos[name][first])
        genuine.append(photos[name][second])
    protocol = JudgeProtocol(np.arange(count), impostor_assignment(count, rng))
    return VictimSet(_load_faces(attacked, crop, progress, "victim faces"),
                     [str(path.relative_to(images_root)) for path in attacked],
                     _load_faces(genuine, crop, progress, "gallery faces"),
                     [str(path.relative_to(images_root)) for path in genuine], protocol)


def load_attacker_faces(images_root: Path, exclude: set[str], count: int, seed: int, crop: CropSpec = DEFAULT_CROP,
                        progress: bool = False) -> AttackerFaces:
    """Up to ``count`` random photos of people not in ``exclude``, stored as uint8."""
    folders = scan_identity_folders(images_root, min_images=1, exclude=exclude)
    rng = np.random.default_rng(seed + 1)
    picked = sorted(rng.choice(len(folders.samples), size=min(count, len(folders.samples)), replace=False))
    samples = [folders.samples[i] for i in picked]
    images = torch.stack([faces_to_uint8(load_face(path, crop))
                          for path, _ in tqdm(samples, desc="attacker faces", disable=not progress, leave=False)])
    return AttackerFaces(images, len({label for _, label in samples}))


def load_lfw_attack_data(lfw_root: str | os.PathLike[str], budget: AttackBudget, victims: int = 200,
                         victim_folds: Sequence[int] = (7, 8), seed: int = 0, crop: CropSpec = DEFAULT_CROP,
                         progress: bool = False) -> tuple[AttackerFaces, VictimSet]:
    """Attacker faces (people outside ``victim_folds``) and victims (people inside) from an LFW folder
    holding ``images/`` and ``pairs.txt``."""
    root = Path(lfw_root)
    images_root, pairs_path = root / "images", root / "pairs.txt"
    if not images_root.is_dir() or not pairs_path.is_file():
        raise PartialFaceError(f"{root} is not an LFW folder with images/ and pairs.txt")
    victim_people = people_in_folds(read_lfw_pairs(pairs_path), set(victim_folds))
    victim_set = select_victims(images_root, victim_people, victims, seed, crop, progress)
    attacker = load_attacker_faces(images_root, victim_people, budget.attacker_images, seed, crop, progress)
    return attacker, victim_set
