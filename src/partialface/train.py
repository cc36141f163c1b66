"""Command line of training: ``python -m partialface.train CONFIG [CONFIG ...] [--set KEY=VALUE ...]``.

Several configs combine in order: a key in a later file replaces the earlier value (see
:mod:`partialface.training.config`), then ``--set`` applies. ``--keys`` prints every config key
(the content of ``docs/config.md``).

Runs on one process, or on several under ``torchrun --nproc_per_node=N -m partialface.train CONFIG``
(DDP: gloo on CPU, NCCL on GPU). A run folder that already holds ``checkpoint.pt`` is resumed.
``partialface train`` calls :func:`main` with its arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import yaml

from .errors import PartialFaceError

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "partialface train") -> argparse.ArgumentParser:
    """The argument parser of :func:`main`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a face-recognition backbone on encoder inputs (PartialFace, RGB, ...) from a YAML "
        "config with TFace's train.yaml keys. Resumes automatically from OUT/checkpoint.pt.",
    )
    parser.add_argument(
        "configs", nargs="*", metavar="CONFIG",
        help="YAML config(s) (see configs/); a key in a later file replaces the earlier value, e.g. "
        "configs/partialface_lfw_dev.yaml configs/rows/fixed.yaml",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key; VALUE is parsed as YAML (LRS=[0.1,0.01], AMP=false, DATASETS.0.batch_size=32); "
        "repeatable",
    )
    parser.add_argument("--out", help="run folder (same as --set OUT=PATH)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--keys", action="store_true", help="print every config key (default, meaning) and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), train, and return the exit status (0 on success, 2 on bad input)."""
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)  # CONFIGs may come after options too
    if args.keys:
        from .training.config_keys import key_reference

        sys.stdout.write(key_reference())
        return 0
    if not args.configs:
        parser.error("give at least one CONFIG")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # Imported here so that ``--help`` stays fast.
    from .training import Trainer, load_config

    overrides = list(args.overrides) + ([f"OUT={args.out}"] if args.out else [])
    try:
        cfg = load_config(args.configs, overrides)
        if args.print_config:
            yaml.safe_dump(cfg, sys.stdout, sort_keys=False, default_flow_style=None)
            return 0
        summary = Trainer(cfg, progress=not args.no_progress).fit()
    except PartialFaceError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") != "0":
        return 0
    metrics = summary["metrics"]
    accuracy = f", dev accuracy {metrics['accuracy']:.4f}" if metrics else ""
    logging.getLogger("partialface.train").info(
        "done: epoch %d, step %d, %d samples%s; checkpoint %s",
        summary["epoch"], summary["step"], summary["samples_seen"], accuracy, summary["checkpoint"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
