"""Privacy attacks: can an attacker rebuild the face from what a PartialFace client sends?

A U-Net attacker (:mod:`.unet`) is trained on attacker-owned faces under a threat model
(:mod:`.threats`: black-box, white-box, enhanced white-box, and the baselines), reconstructs the
victims' faces (:mod:`.runner`), which are scored by SSIM/PSNR (:mod:`.quality`) and by an
independent recognizer, dlib's ResNet (:mod:`.judge`); :mod:`.report` writes ``privacy.json``, a
markdown table beside the paper's Table 3 and a PNG grid.  :mod:`.cli` is ``partialface attack``.
What an attacker may spend is :mod:`.budget`; its faces and the victims come from :mod:`.faces`; it is
trained (checkpointed) by :mod:`.training`.
"""

from .budget import BUDGET_PRESETS, AttackBudget, AttackSettings
from .cli import add_attack_arguments, run_attack_cli
from .faces import AttackerFaces, VictimSet, load_lfw_attack_data
from .judge import DlibJudge, JudgeProtocol, LeakageScores, identity_leakage, judge_unavailable_reason
from .losses import ReconstructionLoss, ssim_torch
from .quality import psnr_per_image, ssim_per_image
from .report import build_report, markdown_table, write_privacy_outputs
from .runner import AttackResult, PrivacyEvaluation, run_attacks
from .threats import DEFAULT_SCENARIOS, THREAT_MODELS, Scenario, ThreatModel, VictimInputs
from .training import TrainingRecord, reconstruct, train_attacker
from .unet import ReconstructionUNet

__all__ = [
    "BUDGET_PRESETS",
    "DEFAULT_SCENARIOS",
    "THREAT_MODELS",
    "AttackBudget",
    "AttackResult",
    "AttackSettings",
    "AttackerFaces",
    "DlibJudge",
    "JudgeProtocol",
    "LeakageScores",
    "PrivacyEvaluation",
    "ReconstructionLoss",
    "ReconstructionUNet",
    "Scenario",
    "ThreatModel",
    "TrainingRecord",
    "VictimInputs",
    "VictimSet",
    "add_attack_arguments",
    "build_report",
    "write_privacy_outputs",
    "identity_leakage",
    "judge_unavailable_reason",
    "load_lfw_attack_data",
    "markdown_table",
    "psnr_per_image",
    "reconstruct",
    "run_attack_cli",
    "run_attacks",
    "ssim_per_image",
    "ssim_torch",
    "train_attacker",
]
