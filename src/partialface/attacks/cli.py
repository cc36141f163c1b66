"""Command line of the privacy evaluation (hooked up as ``partialface attack``).

``add_attack_arguments(parser)`` adds the options to an argparse parser; ``run_attack_cli(args)`` runs
the attacks on LFW and writes ``privacy.json``, ``privacy.md``, ``privacy_grid.png`` and the grid's faces
(``privacy_faces.npz``).

Everything that can be checked is checked before the first face is loaded: where LFW is (``--lfw`` or
the environment variable ``PARTIALFACE_LFW``; the library assumes no folder layout), that the outputs
would not replace a report this run did not write (``--overwrite`` allows it), and that the budget
fits the faces and the memory (:func:`~.budget.check_budget_fits`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from ..checks import check_int
from ..data.crop import DEFAULT_CROP
from ..errors import PartialFaceError
from ..outputs import OutputFiles, check_output_folder
from ..plan import ChannelPlan
from .budget import BUDGET_PRESETS, AttackBudget, AttackSettings, check_budget_fits
from .faces import load_lfw_attack_data
from .judge import DlibJudge, judge_unavailable_reason
from .report import FACES_NAME, GRID_NAME, JSON_NAME, MARKDOWN_NAME, markdown_table, write_privacy_outputs
from .runner import run_attacks
from .threats import DEFAULT_SCENARIOS, SELECTION_CRITERIA, Scenario

LFW_ENVIRONMENT = "PARTIALFACE_LFW"
DEFAULT_OUT_DIR = Path("runs/privacy_report")

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
    parser.add_argument("--lfw", type=Path,
                        help=f"LFW folder with images/ and pairs.txt (default: ${LFW_ENVIRONMENT})")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"where privacy.json, privacy.md and privacy_grid.png go (default: {DEFAULT_OUT_DIR})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace privacy.json/.md/_grid.png/_faces.npz already in --out-dir (refused otherwise)")
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
    parser.add_argument("--plan", help="deployment channel plan: a preset name (s3, ...: partialface plan list) or a "
                                       "plan JSON (default: TFace's published plan)")
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


def _lfw_folder(args: argparse.Namespace) -> Path:
    if args.lfw is not None:
        return args.lfw
    from_environment = os.environ.get(LFW_ENVIRONMENT)
    if not from_environment:
        raise PartialFaceError(f"no LFW folder: pass --lfw PATH (images/ and pairs.txt) or set {LFW_ENVIRONMENT}")
    return Path(from_environment)


def _refuse_to_replace(out_dir: Path, overwrite: bool) -> None:
    """Reports are expensive and sometimes published: never replace one this run did not write, and know
    before the attacks run that the reports can be written (:mod:`partialface.outputs`)."""
    outputs = OutputFiles("--out-dir", overwrite)
    for name in (JSON_NAME, MARKDOWN_NAME, GRID_NAME, FACES_NAME):
        outputs.add(out_dir / name)


def attack_budget(args: argparse.Namespace) -> AttackBudget:
    """The budget parsed ``args`` ask for: the ``--budget`` preset with the override options applied."""
    overrides = {field: getattr(args, option) for option, field in _BUDGET_OVERRIDES.items()
                 if getattr(args, option) is not None}
    return dataclasses.replace(BUDGET_PRESETS[args.budget], **overrides)


def run_attack_cli(args: argparse.Namespace) -> int:
    """Run the privacy evaluation described by parsed ``args``; returns the exit status."""
    lfw = _lfw_folder(args)
    _refuse_to_replace(args.out_dir, args.overwrite)
    if not args.no_checkpoint:
        check_output_folder(args.checkpoint_dir, "--checkpoint-dir")
    check_int("--victims", args.victims, low=2)
    check_int("--grid-faces", args.grid_faces, low=1)
    if args.threads is not None:
        torch.set_num_threads(check_int("--threads", args.threads, low=1))
    budget = attack_budget(args)
    settings = AttackSettings(
        scenarios=tuple(Scenario.parse(text) for text in args.scenarios),
        plan=ChannelPlan.from_name_or_path(args.plan) if args.plan else ChannelPlan.tface(),
        attacker_plan_seed=args.attacker_plan_seed,
        seed=args.seed,
        criterion=args.criterion,
        checkpoint_dir=None if args.no_checkpoint else args.checkpoint_dir,
        device=args.device,
        progress=not args.quiet,
    )
    check_budget_fits(budget, settings, (DEFAULT_CROP.size, DEFAULT_CROP.size))
    judge = None
    if not args.no_judge:
        reason = judge_unavailable_reason()
        if reason:
            raise PartialFaceError(f"{reason}; install it or pass --no-judge")
        judge = DlibJudge()
    started = time.perf_counter()
    attacker, victims = load_lfw_attack_data(lfw, budget, args.victims, args.victim_folds, args.seed,
                                             progress=settings.progress)
    evaluation = run_attacks(attacker, victims, settings, budget, judge)
    report, paths = write_privacy_outputs(evaluation, args.out_dir, str(lfw), args.grid_faces)
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
