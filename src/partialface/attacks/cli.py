"""Command line of the privacy evaluation (hooked up as ``partialface attack``).

``add_attack_arguments(parser)`` adds the options to an argparse parser; ``run_attack_cli(args)`` runs
the attacks on LFW and writes ``privacy.json``, ``privacy.md`` and ``privacy_grid.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from ..plan import ChannelPlan
from .harness import BUDGET_PRESETS, AttackSettings, load_lfw_attack_data, run_attacks
from .judge import DlibJudge, judge_unavailable_reason
from .report import markdown_table, write_privacy_outputs
from .threats import DEFAULT_SCENARIOS, SELECTION_CRITERIA, Scenario

# Budget fields that command-line options may override: option name -> AttackBudget field.
_BUDGET_OVERRIDES = {
    "steps": "steps",
    "batch_size": "batch_size",
    "attacker_images": "attacker_images",
    "rank_steps": "rank_steps",
    "width": "width",
    "depth": "depth",
    "lr": "learning_rate",
    "rank_lr": "rank_learning_rate",
    "ssim_weight": "ssim_weight",
}


def add_attack_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``partialface attack`` to ``parser`` and return it."""
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"),
                        help="LFW folder with images/ and pairs.txt (default: ../shared/data/lfw)")
    parser.add_argument("--out-dir", type=Path, default=Path("docs"),
                        help="where privacy.json, privacy.md and privacy_grid.png go (default: docs)")
    parser.add_argument("--checkpoint-dir", type=Path, default=Path("runs/privacy"),
                        help="attacker checkpoints, resumed when present (default: runs/privacy)")
    parser.add_argument("--no-checkpoint", action="store_true", help="train without checkpoints")
    parser.add_argument("--budget", choices=sorted(BUDGET_PRESETS), default="default",
                        help="attacker budget preset (default fits ~45 min on a 2-core CPU; smoke: minutes; tiny: "
                             "seconds)")
    group = parser.add_argument_group("budget overrides")
    group.add_argument("--steps", type=int, help="optimiser steps per attacker")
    group.add_argument("--batch-size", type=int, help="faces per step")
    group.add_argument("--attacker-images", type=int, help="attacker-owned photos to train on")
    group.add_argument("--rank-steps", type=int, help="fine-tuning steps per rank (enhanced white-box)")
    group.add_argument("--width", type=int, help="U-Net width (channels of its first level)")
    group.add_argument("--depth", type=int, help="U-Net down-sampling levels below the first")
    group.add_argument("--lr", type=float, help="Adam learning rate")
    group.add_argument("--rank-lr", type=float, help="Adam learning rate of the per-rank fine-tuning")
    group.add_argument("--ssim-weight", type=float, help="weight of the (1 - SSIM) loss term")
    parser.add_argument("--scenarios", nargs="+", default=[s.key for s in DEFAULT_SCENARIOS],
                        help="attacks as encoder/threat (threat: black-box, white-box, enhanced-white-box); "
                             "default: all")
    parser.add_argument("--victims", type=int, default=200, help="victim people (default 200)")
    parser.add_argument("--victim-folds", type=int, nargs="+", default=[7, 8],
                        help="LFW folds whose people are the victims (default 7 8)")
    parser.add_argument("--plan", type=Path, help="deployment channel plan JSON (default: TFace's published plan)")
    parser.add_argument("--attacker-plan-seed", type=int, default=2024, help="seed of the black-box attacker's plan")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--criterion", choices=SELECTION_CRITERIA, default="consistency",
                        help="blind rank selection of the enhanced white-box attacker")
    parser.add_argument("--no-judge", action="store_true", help="skip the dlib judge (SSIM/PSNR only)")
    parser.add_argument("--grid-faces", type=int, default=6, help="victims shown in the PNG grid")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run_attack_cli(args: argparse.Namespace) -> int:
    """Run the privacy evaluation described by parsed ``args``; returns the exit status."""
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {field: getattr(args, option) for option, field in _BUDGET_OVERRIDES.items()
                 if getattr(args, option) is not None}
    budget = dataclasses.replace(BUDGET_PRESETS[args.budget], **overrides)
    settings = AttackSettings(
        scenarios=tuple(Scenario.parse(text) for text in args.scenarios),
        plan=ChannelPlan.load(args.plan) if args.plan else ChannelPlan.tface(),
        attacker_plan_seed=args.attacker_plan_seed,
        seed=args.seed,
        criterion=args.criterion,
        checkpoint_dir=None if args.no_checkpoint else args.checkpoint_dir,
        device=args.device,
        progress=not args.quiet,
    )
    judge = None
    if not args.no_judge:
        reason = judge_unavailable_reason()
        if reason:
            raise ValueError(f"{reason}; install it or pass --no-judge")
        judge = DlibJudge()
    started = time.perf_counter()
    attacker, victims = load_lfw_attack_data(args.lfw, budget, args.victims, args.victim_folds, args.seed,
                                             progress=settings.progress)
    evaluation = run_attacks(attacker, victims, settings, budget, judge)
    report, paths = write_privacy_outputs(evaluation, args.out_dir, str(args.lfw), args.grid_faces)
    print(markdown_table(report))
    print(f"wrote {', '.join(str(path) for path in paths.values())} in {(time.perf_counter() - started) / 60:.1f} min",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m partialface.attacks.cli ...``."""
    parser = add_attack_arguments(argparse.ArgumentParser(prog="partialface attack", description=__doc__))
    return run_attack_cli(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
