"""The ``partialface`` command line.

    partialface protect IMAGE_OR_DIR --out DIR [--plan plan.json] [--model M] [--seed N]
    partialface plan generate --seed N --out plan.json [--m 6 --n 6 | --like PRESET]
    partialface plan show NAME_OR_JSON
    partialface plan list
    partialface demo [--data DIR] [--out DIR]
    partialface train CONFIG [--set KEY=VALUE ...]
    partialface eval --model CKPT --pairs PAIRS --images DIR [--json OUT] [--seed N]
    partialface attack ...
    partialface align SRC OUT [--detector hog+cnn] [--frame 250] [--workers N]

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
    plan = ChannelPlan.from_name_or_path(args.plan) if args.plan else None
    if plan is not None and encoder is not None and plan != encoder.plan:
        raise PartialFaceError(f"--plan {args.plan} differs from the plan of --model {args.model}")
    written = protect_files(args.source, args.out, plan=plan, seed=args.seed, crop=crop, encoder=encoder,
                            previews=not args.no_preview)
    print(f"wrote {len(written)} protected faces (.npz{' + .png previews' if not args.no_preview else ''}) to {args.out}")
    return 0


def _cmd_plan(args) -> int:
    from .plan import ChannelPlan
    from .plan_presets import describe_presets, get_preset, is_preset_name

    if args.plan_command == "generate":
        plan = ChannelPlan.generate(args.seed, **_plan_shape(args))
        plan.save(args.out)
        print(f"wrote plan {plan.fingerprint} (m={plan.m}, s={plan.s}, n={plan.n}) to {args.out}")
    elif args.plan_command == "list":
        print(describe_presets(lambda name: ChannelPlan.preset(name).fingerprint))
    else:
        plan = ChannelPlan.from_name_or_path(args.path)
        shown = {**plan.to_dict(), "kept": list(plan.kept), "m": plan.m, "s": plan.s, "n": plan.n}
        if is_preset_name(args.path):
            preset = get_preset(args.path)
            shown["preset"] = {"name": preset.name, "band": preset.band, "seed": preset.seed, "summary": preset.summary}
        print(json.dumps(shown, indent=1))
    return 0


def _plan_shape(args) -> dict:
    """``plan generate``'s m, n and pruned channels: the options, or those of the preset ``--like`` names."""
    if args.like is None:
        return {"m": 6 if args.m is None else args.m, "n": 6 if args.n is None else args.n}
    from .plan_presets import get_preset

    if args.m is not None or args.n is not None:
        raise PartialFaceError("give --like PRESET or --m/--n, not both")
    preset = get_preset(args.like)
    return {"m": preset.m, "n": preset.n, "pruned": preset.pruned}


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


def _cmd_align(args) -> int:
    from .alignment.cli import run_align

    return run_align(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partialface", description="Privacy-preserving face recognition with random frequency components (PartialFace).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("protect", help="protect face photos: write the sent channels (.npz) and a preview (.png)")
    p.add_argument("source", help="an image or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--plan", help="a plan preset (tface, s3, ...: partialface plan list) or a plan JSON "
                                  "(default: the published TFace plan)")
    p.add_argument("--model", help="a model (checkpoint path or shipped name): use its plan, input scale and crop")
    p.add_argument("--seed", type=int, default=0, help="seed of the random ranks (default 0)")
    p.add_argument("--crop", type=_crop_arg, default=None, help="left,top,right,bottom[,size] or 'none' (default: 69,69,181,181 -> 112)")
    p.add_argument("--no-preview", action="store_true", help="skip the PNG preview sheets")
    p.set_defaults(func=_cmd_protect)

    p = sub.add_parser("plan", help="generate, show or list channel plans")
    plan_sub = p.add_subparsers(dest="plan_command", required=True)
    g = plan_sub.add_parser("generate", help="draw a fresh random plan (a deployment's secret)")
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--m", type=int, help="subsets (default 6)")
    g.add_argument("--n", type=int, help="permutations (default 6)")
    g.add_argument("--like", metavar="PRESET", help="the m, n and pruned band of a preset (e.g. private), fresh tables")
    s = plan_sub.add_parser("show", help="print a plan: a preset name ('tface': the published one) or a JSON file")
    s.add_argument("path", metavar="NAME_OR_JSON")
    plan_sub.add_parser("list", help="the plan presets: name, sizes, fingerprint")
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

    from .alignment.cli import add_align_arguments

    p = sub.add_parser("align", help="detect and align every face photo of an identity-folder dataset")
    add_align_arguments(p)
    p.set_defaults(func=_cmd_align)
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
