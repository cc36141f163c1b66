"""Running the attacks: :func:`run_attacks` trains each scenario's attacker, reconstructs the victims'
faces and scores them; the results (:class:`AttackResult`, :class:`PrivacyEvaluation`) go to
:mod:`.report`.

Attackers are shared between scenarios of one run (the enhanced white-box attacker fine-tunes the
white-box one) and, with a checkpoint folder, between runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import PartialFaceError
from ..models.rank_keyed import RankIdentifier, rank_feature_table
from .budget import AttackBudget, AttackSettings, check_budget_fits
from .faces import AttackerFaces, VictimSet
from .judge import DlibJudge, LeakageScores, identity_leakage, judge_versions
from .losses import ReconstructionLoss
from .quality import psnr_per_image, ssim_per_image
from .threats import (
    ENHANCED_ORACLE,
    ENHANCED_WHITE_BOX,
    WHITE_BOX,
    Scenario,
    ThreatModel,
    VictimInputs,
    rank_consistency_error,
    total_variation,
)
from .training import TrainingRecord, config_hash, reconstruct, stable_seed, train_attacker
from .unet import ReconstructionUNet

__all__ = ["RANK_IDENTIFIER_SAMPLES", "RANK_SCALE_SAMPLES", "AttackResult", "PrivacyEvaluation", "run_attacks"]

RANK_SCALE_SAMPLES = 64  # attacker faces used to estimate a rank's channel spread (selection criterion)
RANK_IDENTIFIER_SAMPLES = 128  # attacker faces under every rank that fit the rank identifier (``identified``)


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
        return Path(self.settings.checkpoint_dir) / f"{slug}-{config_hash(config)}.pt"

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
                torch.manual_seed(stable_seed(self.settings.seed, key, "init"))
                model = ReconstructionUNet(threat.in_channels, 3, self.budget.width, self.budget.depth)
            record = train_attacker(
                model, threat.attacker_inputs, self.attacker, self.budget.steps, self.budget.batch_size,
                self.budget.learning_rate, self.loss_fn, stable_seed(self.settings.seed, key),
                self._checkpoint(key, self._base_config(threat)), self.settings.checkpoint_every,
                device=self.settings.device, progress=self.settings.progress, description=key)
            self.trained[key] = (model, record)
        return self.trained[key]

    def victim_inputs(self, threat: ThreatModel) -> VictimInputs:
        generator = torch.Generator().manual_seed(stable_seed(self.settings.seed, "victims", threat.scenario.encoder))
        return threat.victim_inputs(self.victims.faces, generator)

    def run_single(self, threat: ThreatModel) -> AttackResult:
        model, record = self.single_attacker(threat)
        inputs = self.victim_inputs(threat)
        recovered = reconstruct(model, inputs.encoded, self.settings.device)
        ssim, psnr, leakage = _score(recovered, self.victims, self.judge, self.gallery)
        return AttackResult(threat.scenario, threat.scenario.threat, False, recovered, threat.preview(inputs), ssim,
                            psnr, leakage, record)

    def _identify_ranks(self, threat: ThreatModel, encoded: torch.Tensor) -> torch.Tensor:
        """(V,) each query's rank as named by a classifier the attacker fits on its own faces under every
        rank of the plan it knows (:class:`RankIdentifier`): no victim face or true rank is used."""
        own = self.attacker.head(min(len(self.attacker), RANK_IDENTIFIER_SAMPLES))
        features = rank_feature_table(own, threat.rank_inputs, threat.num_ranks)
        ranks = torch.arange(threat.num_ranks).repeat_interleave(own.shape[0])
        return RankIdentifier.fit(features.flatten(0, 1), ranks, threat.num_ranks).identify(encoded.cpu())

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
        identified = self._identify_ranks(threat, inputs.encoded) if self.settings.criterion == "identified" else None
        for rank in range(threat.num_ranks):
            model = copy.deepcopy(base_model)
            seed = stable_seed(self.settings.seed, threat.scenario.key, rank)
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
            elif identified is not None:
                criterion = (identified != rank).float()  # 0 for the identified rank: the first such wins
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
    """Run every scenario of ``settings`` on in-memory faces; without a judge, leakage stays None.

    Raises:
        PartialFaceError: when attacker and victim faces differ in size, or the budget cannot fit
            (:func:`~.budget.check_budget_fits`), before anything is trained.
    """
    if attacker.images.shape[-2:] != victims.faces.shape[-2:]:
        raise PartialFaceError(f"attacker faces are {tuple(attacker.images.shape[-2:])} but victims "
                               f"{tuple(victims.faces.shape[-2:])}")
    check_budget_fits(budget, settings, tuple(victims.faces.shape[-2:]))
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
