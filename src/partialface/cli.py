"""The ``partialface`` command line.

    partialface protect IMAGE_OR_DIR --out DIR [--plan NAME_OR_JSON] [--model M] [--seed N] [--overwrite]
    partialface plan generate --seed N --out plan.json [--m 6 --n 6 | --like PRESET] [--overwrite]
    partialface plan show NAME_OR_JSON
    partialface plan list
    partialface demo [--data DIR] [--out DIR] [--count N] [--no-verify] [--no-baseline] [--overwrite]
    partialface train CONFIG [--set KEY=VALUE ...]
    partialface eval --model CKPT --pairs PAIRS --images DIR [--json OUT] [--seed N]
    partialface attack ...
    partialface align SRC OUT [--detector hog+cnn] [--frame 250] [--workers N]
    partialface serve --model default --gallery sqlite:///G.db [--host 127.0.0.1 --port 8000]
    partialface keys create|list|revoke --gallery sqlite:///G.db ...
    partialface client --server URL --key KEY enroll|verify|identify|compare|delete|subjects ...
    partialface calibrate MODEL --images DIR --out MODEL.thresholds.json
    partialface export MODEL --onnx OUT.onnx [--client-onnx CLIENT.onnx]

Errors in the input (a missing file, an invalid plan, a bad image: :class:`~partialface.errors.PartialFaceError`)
print one line naming the problem and exit with status 2, as argparse does for bad arguments. Any other
exception is a bug and keeps its traceback. A folder run (``protect``, ``demo``) where some photos could
not be used finishes the others, lists the failures and exits with status 1. What each bad input gives:
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .checks import check_int, check_seed
from .errors import PartialFaceError
from .outputs import check_output_file

__all__ = ["main", "build_parser"]

MAX_PERMUTATIONS = 1000  # a plan's channel table holds m x n ranks; TFace's has 6 x 6


def _crop_arg(text: str):
    from .data import CropSpec

    if text.lower() == "none":
        return False  # no crop: photos are already aligned crops
    try:
        left, top, right, bottom, *size = (int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--crop must be 'left,top,right,bottom[,size]' or 'none', got {text!r}") from err
    try:
        return CropSpec((left, top, right, bottom), size[0] if size else 112)
    except PartialFaceError as err:  # argparse would print only "invalid _crop_arg value"
        raise argparse.ArgumentTypeError(str(err)) from None


def _cmd_protect(args) -> int:
    from .data import DEFAULT_CROP, CropSpec
    from .plan import ChannelPlan
    from .protect import protect_files

    encoder, model = None, None
    if args.model:
        from .api import load_model

        model = load_model(args.model)
        encoder = model.encoder
    crop = args.crop if args.crop else (model.crop if model else DEFAULT_CROP)
    if args.crop is False:  # --crop none: the whole (square, aligned) photo resized to the model's size
        crop = CropSpec(None, model.crop.size if model and model.crop else DEFAULT_CROP.size)
    plan = ChannelPlan.from_name_or_path(args.plan) if args.plan else None
    if plan is not None and encoder is not None and plan != encoder.plan:
        raise PartialFaceError(f"--plan {args.plan} differs from the plan of --model {args.model}")
    # a model's own record of how raw photos become its faces (five-point alignment, or its box) unless --crop says
    preparation = model.preparation if model is not None and args.crop is None else None
    report = protect_files(args.source, args.out, plan=plan, seed=args.seed, crop=crop, encoder=encoder,
                           previews=not args.no_preview, overwrite=args.overwrite, preparation=preparation)
    print(f"wrote {len(report.written)} protected faces (.npz{' + .preview.png' if not args.no_preview else ''}) "
          f"to {args.out}")
    return _report_failures(report.failed, report.report)


def _report_failures(failed, report_path, shown: int = 20) -> int:
    """List the photos a folder run could not use (one line each); the exit status: 1 if any, else 0."""
    if not failed:
        return 0
    print(f"{len(failed)} photo(s) failed (all listed in {report_path}):", file=sys.stderr)
    for _, reason in failed[:shown]:
        print(f"  {reason}", file=sys.stderr)
    if len(failed) > shown:
        print(f"  ... and {len(failed) - shown} more", file=sys.stderr)
    return 1


def _cmd_plan(args) -> int:
    from .plan import ChannelPlan
    from .plan_presets import describe_presets, get_preset, is_preset_name

    if args.plan_command == "generate":
        shape = _plan_shape(args)  # ChannelPlan checks that m divides the kept frequencies and that s! >= n
        check_seed("--seed", args.seed)
        out = check_output_file(args.out, "--out", args.overwrite)
        plan = ChannelPlan.generate(args.seed, **shape)
        plan.save(out)
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
        return {"m": check_int("--m", 6 if args.m is None else args.m, 1),
                "n": check_int("--n", 6 if args.n is None else args.n, 1, MAX_PERMUTATIONS)}
    from .plan_presets import get_preset

    if args.m is not None or args.n is not None:
        raise PartialFaceError("give --like PRESET or --m/--n, not both")
    preset = get_preset(args.like)
    return {"m": preset.m, "n": preset.n, "pruned": preset.pruned}


def _cmd_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(args.data, args.out, count=args.count, seed=args.seed, verify=not args.no_verify,
                      overwrite=args.overwrite, baseline=not args.no_baseline)
    return _report_failures(result.failed, result.failures_report)


def _cmd_eval(args) -> int:
    from .api import load_model
    from .evaluation.cli import run_eval

    return run_eval(args, load_model) or 0


def _cmd_attack(args) -> int:
    from .attacks.cli import run_attack_cli

    return run_attack_cli(args) or 0


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
    p.add_argument("--crop", type=_crop_arg, default=None,
                   help="left,top,right,bottom[,size], or 'none' for aligned square face photos resized whole "
                        "(default: how the --model prepares raw photos: its box, or five-point alignment; else 69,69,181,181 -> 112)")
    p.add_argument("--no-preview", action="store_true", help="skip the PNG preview sheets")
    p.add_argument("--overwrite", action="store_true", help="replace outputs already in --out (never a photo)")
    p.set_defaults(func=_cmd_protect)

    p = sub.add_parser("plan", help="generate, show or list channel plans")
    plan_sub = p.add_subparsers(dest="plan_command", required=True)
    g = plan_sub.add_parser("generate", help="draw a fresh random plan (a deployment's secret)")
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--m", type=int, help="subsets, a divisor of the 54 kept frequencies (default 6)")
    g.add_argument("--n", type=int, help=f"permutations, 1..{MAX_PERMUTATIONS} (default 6)")
    g.add_argument("--like", metavar="PRESET", help="the m, n and pruned band of a preset (e.g. private), fresh tables")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing plan file (a deployment's secret: its enrolled templates stop matching)")
    s = plan_sub.add_parser("show", help="print a plan: a preset name ('tface': the published one) or a JSON file")
    s.add_argument("path", metavar="NAME_OR_JSON")
    plan_sub.add_parser("list", help="the plan presets: name, sizes, fingerprint")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("demo", help="protect a handful of real faces and write preview sheets")
    p.add_argument("--data", help="folder of face photos, e.g. LFW's images/ with pairs.txt beside it (make demo passes one)")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--count", type=int, default=6, help="faces to protect, 1..1000 (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-verify", action="store_true", help="only the preview sheets, no verification")
    p.add_argument("--no-baseline", action="store_true",
                   help="verify with the default model only, not also with the shipped rgb-baseline")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier demo in --out")
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

    from .alignment.cli import add_align_arguments, run_align
    from .client.cli import add_client_arguments
    from .export.cli import add_export_arguments, run_export
    from .server.cli import add_calibrate_arguments, add_keys_arguments, add_serve_arguments
    from .training.teacher import add_teacher_arguments, run_teacher_cli

    # commands whose own module declares their arguments and runs them
    for name, help_text, add_arguments, run in (
        ("align", "detect and align every face photo of an identity-folder dataset", add_align_arguments, run_align),
        ("export", "export a model's network and client transform to ONNX, checked in onnxruntime",
         add_export_arguments, run_export),
        ("teacher", "cache dlib's descriptors of a config's training faces (for distillation)",
         add_teacher_arguments, run_teacher_cli),
    ):
        p = sub.add_parser(name, help=help_text)
        add_arguments(p)
        p.set_defaults(func=run)
    # the service's commands set their own run function
    add_serve_arguments(sub.add_parser("serve", help="run the recognition server (needs the server extra)"))
    add_keys_arguments(sub.add_parser("keys", help="create, list or revoke the server's API keys"))
    add_client_arguments(sub.add_parser("client", help="enroll, verify, identify with a recognition server"))
    add_calibrate_arguments(sub.add_parser("calibrate", help="decision thresholds of a model from unseen people"))
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
