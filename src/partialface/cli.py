"""The ``partialface`` command line.

    partialface protect IMAGE_OR_DIR --out DIR [--plan plan.json] [--model M] [--seed N]
    partialface plan generate --seed N --out plan.json [--m 6 --n 6]
    partialface plan show plan.json
    partialface demo [--data DIR] [--out DIR]
    partialface train CONFIG [--set KEY=VALUE ...]
    partialface eval --model CKPT --pairs PAIRS --images DIR [--json OUT] [--seed N]
    partialface attack ...

Errors in the input (a missing file, an invalid plan, a bad image: :class:`~partialface.errors.PartialFaceError`)
print one line naming the problem and exit with status 2, as argparse does for bad arguments. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .errors import PartialFaceError

__all__ = ["main", "build_parser"]


def _crop_arg(text: str):
    from .data import CropSpec

    if text.lower() == "none":
        return False  # no crop: photos are already aligned crops
    try:
        left, top, right, bottom, *size = (int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--crop must be 'left,top,right,bottom[,size]' or 'none', got {text!r}") from err
    return CropSpec((left, top, right, bottom), size[0] if size else 112)


def _cmd_protect(args) -> int:
    from .data import DEFAULT_CROP
    from .plan import ChannelPlan
    from .protect import protect_files

    encoder = None
    crop = DEFAULT_CROP if args.crop is None else (args.crop or None)
    if args.model:
        from .api import load_model

        model = load_model(args.model)
        encoder = model.encoder
        if args.crop is None:
            crop = model.crop
    plan = ChannelPlan.load(args.plan) if args.plan else None
    if plan is not None and encoder is not None and plan != encoder.plan:
        raise PartialFaceError(f"--plan {args.plan} differs from the plan of --model {args.model}")
    written = protect_files(args.source, args.out, plan=plan, seed=args.seed, crop=crop, encoder=encoder,
                            previews=not args.no_preview)
    print(f"wrote {len(written)} protected faces (.npz{' + .png previews' if not args.no_preview else ''}) to {args.out}")
    return 0


def _cmd_plan(args) -> int:
    from .plan import ChannelPlan

    if args.plan_command == "generate":
        plan = ChannelPlan.generate(args.seed, m=args.m, n=args.n)
        plan.save(args.out)
        print(f"wrote plan {plan.fingerprint} (m={plan.m}, s={plan.s}, n={plan.n}) to {args.out}")
    else:
        plan = ChannelPlan.tface() if args.path == "tface" else ChannelPlan.load(args.path)
        print(json.dumps({**plan.to_dict(), "kept": list(plan.kept), "m": plan.m, "s": plan.s, "n": plan.n}, indent=1))
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.data, args.out, count=args.count, seed=args.seed, verify=not args.no_verify)
    return 0


def _cmd_eval(args) -> int:
    from .api import load_model
    from .evaluation.cli import run_eval

    return run_eval(args, load_model) or 0


def _cmd_attack(args) -> int:
    from .attacks.cli import run_attack_cli

    return run_attack_cli(args) or 0


def _cmd_teacher(args) -> int:
    from .training.teacher import run_teacher_cli

    return run_teacher_cli(args) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partialface", description="Privacy-preserving face recognition with random frequency components (PartialFace).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("protect", help="protect face photos: write the sent channels (.npz) and a preview (.png)")
    p.add_argument("source", help="an image or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--plan", help="channel plan JSON (default: the published TFace plan)")
    p.add_argument("--model", help="a model (checkpoint path or shipped name): use its plan, input scale and crop")
    p.add_argument("--seed", type=int, default=0, help="seed of the random ranks (default 0)")
    p.add_argument("--crop", type=_crop_arg, default=None, help="left,top,right,bottom[,size] or 'none' (default: 69,69,181,181 -> 112)")
    p.add_argument("--no-preview", action="store_true", help="skip the PNG preview sheets")
    p.set_defaults(func=_cmd_protect)

    p = sub.add_parser("plan", help="generate or show a channel plan")
    plan_sub = p.add_subparsers(dest="plan_command", required=True)
    g = plan_sub.add_parser("generate", help="draw a fresh random plan (a deployment's secret)")
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--m", type=int, default=6, help="subsets (default 6)")
    g.add_argument("--n", type=int, default=6, help="permutations (default 6)")
    s = plan_sub.add_parser("show", help="print a plan ('tface' for the published one)")
    s.add_argument("path")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("demo", help="protect a handful of real faces and write preview sheets")
    p.add_argument("--data", help="folder of face photos, e.g. LFW's images/ with pairs.txt beside it (make demo passes one)")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-verify", action="store_true", help="only the preview sheets, no verification")
    p.set_defaults(func=_cmd_demo)

    # `partialface train ...` is handed to partialface.train.main before parsing (see main()).
    sub.add_parser("train", help="train a model: partialface train CONFIG [--set KEY=VALUE ...] (see --help)")

    from .attacks.cli import add_attack_arguments
    from .evaluation.cli import add_eval_arguments

    p = sub.add_parser("eval", help="verification accuracy of a model on LFW pairs.txt or a .bin set")
    add_eval_arguments(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("attack", help="privacy evaluation: train reconstruction attacks and judge them")
    add_attack_arguments(p)
    p.set_defaults(func=_cmd_attack)

    from .training.teacher import add_teacher_arguments

    p = sub.add_parser("teacher", help="cache dlib's descriptors of a config's training faces (for distillation)")
    add_teacher_arguments(p)
    p.set_defaults(func=_cmd_teacher)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the trainer owns its arguments (CONFIG, --set, --help, ...)
        from .train import main as train_main

        return int(train_main(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PartialFaceError as err:
        print(f"partialface {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
