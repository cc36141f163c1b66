"""Attack harness: train reconstruction attackers, reconstruct the victims' faces, score them.

Data protocol (LFW, :func:`load_lfw_attack_data`): the attacker owns faces of people outside the
victim folds (default LFW folds 7-8); the victims are ``victims`` people of those folds with at least
two photos: one photo is attacked, another one is the genuine photo the judge compares the recovered
face with (and the person's entry in the identification gallery).

Budget (:class:`AttackBudget`): every single-attacker scenario trains the same network for the same
number of steps on the same attacker faces, so encoders are compared under one budget.  The enhanced
white-box attacker starts from the white-box attacker and fine-tunes one copy per rank for
``rank_steps`` more steps each; its reported budget includes the white-box training it builds on.

Training is checkpointed (``checkpoint_dir``): an interrupted attack resumes where it stopped, and a
finished attacker is reused (the checkpoint name holds a hash of everything that shapes it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_write
from ..data.crop import DEFAULT_CROP, CropSpec, load_face
from ..data.folders import scan_identity_folders
from ..data.pairs import people_in_folds, read_lfw_pairs
from ..plan import ChannelPlan
from .judge import DlibJudge, JudgeProtocol, LeakageScores, identity_leakage, judge_versions
from .losses import ReconstructionLoss
from .quality import psnr_per_image, ssim_per_image
from .threats import (
    DEFAULT_SCENARIOS,
    ENHANCED_ORACLE,
    ENHANCED_WHITE_BOX,
    SELECTION_CRITERIA,
    WHITE_BOX,
    Scenario,
    ThreatModel,
    VictimInputs,
    rank_consistency_error,
    total_variation,
)
from .unet import ReconstructionUNet

STATISTICS_SAMPLES = 256  # attacker faces used to fit the input standardisation
RANK_SCALE_SAMPLES = 64  # attacker faces used to estimate a rank's channel spread (selection criterion)
INFERENCE_BATCH = 50


# ------------------------------------------------------------------------------------------------ budget
@dataclass(frozen=True)
class AttackBudget:
    """What one attacker may spend.

    Attributes:
        attacker_images: attacker-owned faces (distinct images) it trains on.
        steps: optimiser steps of every single attacker (black-box, white-box, baselines).
        batch_size: faces per step.
        rank_steps: fine-tuning steps of each per-rank attacker (enhanced white-box).
        width, depth: U-Net size (:class:`ReconstructionUNet`).
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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"attack budget: {name} must be a positive integer, got {value!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            raise ValueError(f"attack budget: depth must be an integer >= 0, got {self.depth!r}")
        for name in ("learning_rate", "rank_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"attack budget: {name} must be > 0, got {getattr(self, name)!r}")
        if self.ssim_weight < 0:
            raise ValueError(f"attack budget: ssim_weight must be >= 0, got {self.ssim_weight!r}")

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
        criterion: blind rank selection of the enhanced white-box attacker (``consistency`` or
            ``smoothness``).
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
            raise ValueError("attack settings: no scenario to run")
        keys = [scenario.key for scenario in self.scenarios]
        if len(set(keys)) != len(keys):
            raise ValueError(f"attack settings: scenarios repeat: {keys}")
        if self.criterion not in SELECTION_CRITERIA:
            raise ValueError(f"unknown rank selection criterion {self.criterion!r}; known: {', '.join(SELECTION_CRITERIA)}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")


# ------------------------------------------------------------------------------------------------ data
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
            raise ValueError(f"attacker faces must be a uint8 (N, 3, H, W) tensor, got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.images.shape[0] == 0:
            raise ValueError("the attacker has no faces")

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
            raise ValueError(f"victim faces must be (V, 3, H, W), got {tuple(self.faces.shape)}")
        if len(self.paths) != self.faces.shape[0] or self.protocol.gallery_of_victim.shape[0] != self.faces.shape[0]:
            raise ValueError("victim faces, paths and judge protocol differ in length")
        if self.gallery_faces.shape[1:] != self.faces.shape[1:] or len(self.gallery_paths) != self.gallery_faces.shape[0]:
            raise ValueError(f"gallery faces {tuple(self.gallery_faces.shape)} do not match victims "
                             f"{tuple(self.faces.shape)} or their paths")

    def __len__(self) -> int:
        return self.faces.shape[0]


def impostor_assignment(count: int, rng: np.random.Generator) -> np.ndarray:
    """For each of ``count`` people, another person's index (uniform among the others)."""
    if count < 2:
        raise ValueError(f"impostor pairs need at least 2 victim people, got {count}")
    return (np.arange(count) + rng.integers(1, count, size=count)) % count


def _load_faces(paths: Sequence[Path], crop: CropSpec, progress: bool, description: str) -> torch.Tensor:
    faces = [load_face(path, crop) for path in tqdm(paths, desc=description, disable=not progress, leave=False)]
    return torch.stack(faces)


def select_victims(images_root: Path, victim_people: set[str], count: int, seed: int, crop: CropSpec = DEFAULT_CROP,
                   progress: bool = False) -> VictimSet:
    """``count`` victims: one attacked photo and one gallery photo of distinct people with >= 2 photos."""
    folders = scan_identity_folders(images_root, min_images=2)
    photos: dict[str, list[Path]] = {}
    for path, label in folders.samples:
        name = folders.class_names[label]
        if name in victim_people:
            photos.setdefault(name, []).append(path)
    if len(photos) < count:
        raise ValueError(f"{images_root}: only {len(photos)} people of the victim folds have >= 2 photos; "
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
        raise ValueError(f"{root} is not an LFW folder with images/ and pairs.txt")
    victim_people = people_in_folds(read_lfw_pairs(pairs_path), set(victim_folds))
    victim_set = select_victims(images_root, victim_people, victims, seed, crop, progress)
    attacker = load_attacker_faces(images_root, victim_people, budget.attacker_images, seed, crop, progress)
    return attacker, victim_set


# ------------------------------------------------------------------------------------------------ training
@dataclass
class TrainingRecord:
    """What an attacker spent: steps, faces seen, wall-clock seconds (training only), last loss."""

    steps: int
    samples: int
    wall_seconds: float
    final_loss: float

    def __add__(self, other: "TrainingRecord") -> "TrainingRecord":
        return TrainingRecord(self.steps + other.steps, self.samples + other.samples,
                              self.wall_seconds + other.wall_seconds, other.final_loss)


def _stable_seed(*parts: object) -> int:
    return zlib.crc32("/".join(str(part) for part in parts).encode())


def _config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def _load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds of errors for damaged files
        raise ValueError(f"cannot read attack checkpoint {path}: {error}") from error


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
        state = _load_checkpoint(checkpoint)
        if state["step"] > steps:
            raise ValueError(f"checkpoint {checkpoint} has {state['step']} steps, more than the {steps} requested; "
                             "remove it or raise the budget")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start_step, spent, last_loss = state["step"], state["wall_seconds"], state["loss"]
    elif fit_statistics:
        statistics_faces = faces.head(min(len(faces), STATISTICS_SAMPLES))
        model.fit_input_statistics(make_inputs(statistics_faces, torch.Generator().manual_seed(seed + 1)))

    def save(step: int) -> None:
        if checkpoint is not None:
            _save_checkpoint(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
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


# ------------------------------------------------------------------------------------------------ results
@dataclass
class AttackResult:
    """One attack's reconstructions and scores.

    Attributes:
        scenario: encoder and threat model.
        label: threat label in reports (``enhanced-white-box-oracle`` for the upper bound).
        upper_bound: True when the result used the ground truth (oracle selection): not an attack.
        reconstructions: (V, 3, H, W) in [-1, 1].
        previews: (V, 3, H, W) in [0, 1], what an eavesdropper sees of the inputs.
        ssim, psnr: per victim.
        leakage: judge scores (None without a judge).
        training: the attacker's spent budget.
        details: extra facts (e.g. how often the enhanced attacker picked the true rank).
    """

    scenario: Scenario
    label: str
    upper_bound: bool
    reconstructions: torch.Tensor
    previews: torch.Tensor
    ssim: np.ndarray
    psnr: np.ndarray
    leakage: LeakageScores | None
    training: TrainingRecord
    details: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.scenario.encoder}/{self.label}"


@dataclass
class PrivacyEvaluation:
    """All attack results of one run plus what they were measured against."""

    results: list[AttackResult]
    victims: VictimSet
    attacker_images: int
    attacker_people: int
    budget: AttackBudget
    settings: AttackSettings
    original_leakage: LeakageScores | None
    judge_versions: dict[str, str]
    threat_descriptions: dict[str, str]
    attacker_plans: dict[str, str]


def _score(reconstructions: torch.Tensor, victims: VictimSet, judge: DlibJudge | None,
           gallery: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, LeakageScores | None]:
    ssim = ssim_per_image(reconstructions, victims.faces)
    psnr = psnr_per_image(reconstructions, victims.faces)
    leakage = None
    if judge is not None and gallery is not None:
        leakage = identity_leakage(judge.embed(reconstructions), gallery, victims.protocol)
    return ssim, psnr, leakage


class _AttackRunner:
    """Runs the scenarios of one evaluation, sharing trained attackers between them."""

    def __init__(self, attacker: AttackerFaces, victims: VictimSet, settings: AttackSettings, budget: AttackBudget,
                 judge: DlibJudge | None) -> None:
        self.attacker, self.victims, self.settings, self.budget, self.judge = attacker, victims, settings, budget, judge
        self.loss_fn = ReconstructionLoss(budget.ssim_weight)
        self.gallery = judge.embed(victims.gallery_faces).descriptors if judge is not None else None
        self.trained: dict[str, tuple[ReconstructionUNet, TrainingRecord]] = {}
        self.faces_fingerprint = attacker.fingerprint()

    def _checkpoint(self, name: str, config: dict) -> Path | None:
        if self.settings.checkpoint_dir is None:
            return None
        slug = name.replace("/", "-")
        return Path(self.settings.checkpoint_dir) / f"{slug}-{_config_hash(config)}.pt"

    def _base_config(self, threat: ThreatModel) -> dict:
        budget = self.budget
        return {"scenario": threat.scenario.key, "plan": self.settings.plan.fingerprint,
                "attacker_plan": threat.attacker_plan.fingerprint if threat.attacker_plan else None,
                "faces": self.faces_fingerprint, "seed": self.settings.seed, "width": budget.width,
                "depth": budget.depth, "batch_size": budget.batch_size, "learning_rate": budget.learning_rate,
                "ssim_weight": budget.ssim_weight}

    def single_attacker(self, threat: ThreatModel) -> tuple[ReconstructionUNet, TrainingRecord]:
        """The trained attacker of a black-box, white-box or baseline scenario (trained once per run)."""
        key = threat.scenario.key
        if key not in self.trained:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_stable_seed(self.settings.seed, key, "init"))
                model = ReconstructionUNet(threat.in_channels, 3, self.budget.width, self.budget.depth)
            record = train_attacker(
                model, threat.attacker_inputs, self.attacker, self.budget.steps, self.budget.batch_size,
                self.budget.learning_rate, self.loss_fn, _stable_seed(self.settings.seed, key),
                self._checkpoint(key, self._base_config(threat)), self.settings.checkpoint_every,
                device=self.settings.device, progress=self.settings.progress, description=key)
            self.trained[key] = (model, record)
        return self.trained[key]

    def victim_inputs(self, threat: ThreatModel) -> VictimInputs:
        generator = torch.Generator().manual_seed(_stable_seed(self.settings.seed, "victims", threat.scenario.encoder))
        return threat.victim_inputs(self.victims.faces, generator)

    def run_single(self, threat: ThreatModel) -> AttackResult:
        model, record = self.single_attacker(threat)
        inputs = self.victim_inputs(threat)
        recovered = reconstruct(model, inputs.encoded, self.settings.device)
        ssim, psnr, leakage = _score(recovered, self.victims, self.judge, self.gallery)
        return AttackResult(threat.scenario, threat.scenario.threat, False, recovered, threat.preview(inputs), ssim,
                            psnr, leakage, record)

    def run_enhanced(self, threat: ThreatModel) -> list[AttackResult]:
        """Per-rank attackers fine-tuned from the white-box attacker; blind and oracle selection."""
        white_box = ThreatModel(Scenario(threat.scenario.encoder, WHITE_BOX), self.settings.plan,
                                self.settings.attacker_plan_seed)
        base_model, base_record = self.single_attacker(white_box)
        inputs = self.victim_inputs(threat)
        count = len(self.victims)
        best_criterion = torch.full((count,), float("inf"))
        best_ssim = np.full(count, -np.inf)
        selected = torch.zeros_like(self.victims.faces)
        oracle = torch.zeros_like(self.victims.faces)
        selected_rank = torch.full((count,), -1, dtype=torch.long)
        oracle_rank = torch.full((count,), -1, dtype=torch.long)
        spent = TrainingRecord(0, 0, 0.0, float("nan"))
        base_config = {**self._base_config(white_box), "steps": self.budget.steps,
                       "rank_steps": self.budget.rank_steps, "rank_learning_rate": self.budget.rank_learning_rate}
        for rank in range(threat.num_ranks):
            model = copy.deepcopy(base_model)
            seed = _stable_seed(self.settings.seed, threat.scenario.key, rank)
            make_inputs = lambda faces, generator, rank=rank: threat.rank_inputs(faces, rank)  # noqa: E731
            spent = spent + train_attacker(
                model, make_inputs, self.attacker, self.budget.rank_steps, self.budget.batch_size,
                self.budget.rank_learning_rate, self.loss_fn, seed,
                self._checkpoint(f"{threat.scenario.key}-rank{rank}", {**base_config, "rank": rank}),
                self.budget.rank_steps, fit_statistics=False, device=self.settings.device,
                progress=self.settings.progress, description=f"{threat.scenario.key} rank {rank}")
            candidates = reconstruct(model, inputs.encoded, self.settings.device)
            if self.settings.criterion == "consistency":
                own_inputs = threat.rank_inputs(self.attacker.head(min(len(self.attacker), RANK_SCALE_SAMPLES)), rank)
                channel_scale = own_inputs.transpose(0, 1).reshape(own_inputs.shape[1], -1).std(dim=1).clamp_min(1e-6)
                criterion = rank_consistency_error(threat, candidates, inputs.encoded, rank, channel_scale)
            else:
                criterion = total_variation(candidates)
            better = criterion < best_criterion
            best_criterion = torch.where(better, criterion, best_criterion)
            selected[better] = candidates[better]
            selected_rank[better] = rank
            candidate_ssim = ssim_per_image(candidates, self.victims.faces)
            improved = candidate_ssim > best_ssim
            best_ssim = np.where(improved, candidate_ssim, best_ssim)
            improved_mask = torch.from_numpy(improved)
            oracle[improved_mask] = candidates[improved_mask]
            oracle_rank[improved_mask] = rank
        record = base_record + spent
        preview = threat.preview(inputs)
        truth = inputs.ranks
        results = []
        for label, recovered, chosen, bound in ((ENHANCED_WHITE_BOX, selected, selected_rank, False),
                                                (ENHANCED_ORACLE, oracle, oracle_rank, True)):
            ssim, psnr, leakage = _score(recovered, self.victims, self.judge, self.gallery)
            details = {"ranks": threat.num_ranks,
                       "selection": self.settings.criterion if not bound else "best SSIM against the true face",
                       "true_rank_selected": 100.0 * float((chosen == truth).double().mean())}
            results.append(AttackResult(threat.scenario, label, bound, recovered, preview, ssim, psnr, leakage,
                                        record, details))
        return results


def run_attacks(attacker: AttackerFaces, victims: VictimSet, settings: AttackSettings, budget: AttackBudget,
                judge: DlibJudge | None = None) -> PrivacyEvaluation:
    """Run every scenario of ``settings`` on in-memory faces; without a judge, leakage stays None."""
    if attacker.images.shape[-2:] != victims.faces.shape[-2:]:
        raise ValueError(f"attacker faces are {tuple(attacker.images.shape[-2:])} but victims "
                         f"{tuple(victims.faces.shape[-2:])}")
    runner = _AttackRunner(attacker, victims, settings, budget, judge)
    results: list[AttackResult] = []
    descriptions: dict[str, str] = {}
    attacker_plans: dict[str, str] = {}
    for scenario in settings.scenarios:
        threat = ThreatModel(scenario, settings.plan, settings.attacker_plan_seed)
        descriptions[scenario.key] = threat.describe()
        if threat.attacker_plan is not None:
            attacker_plans[scenario.key] = threat.attacker_plan.fingerprint
        if scenario.threat == ENHANCED_WHITE_BOX:
            results.extend(runner.run_enhanced(threat))
        else:
            results.append(runner.run_single(threat))
    original = None
    if judge is not None and runner.gallery is not None:
        original = identity_leakage(judge.embed(victims.faces), runner.gallery, victims.protocol)
    versions = judge_versions() if judge is not None else {}
    return PrivacyEvaluation(results, victims, len(attacker), attacker.people, budget, settings, original, versions,
                             descriptions, attacker_plans)
