"""``partialface eval``: verification accuracy of a trained model from protected queries.

    partialface eval --model CKPT_OR_NAME --pairs pairs.txt --images DIR [--folds 7,8]
                     [--json OUT.json] [--roc OUT.png] [--seed N] [--ranks K] [--rank S,P] [--no-flip]
    partialface eval --model CKPT_OR_NAME --pairs lfw.bin

The arguments, the report file, the ROC plot and the printed summary live here; the measurement itself
is :func:`partialface.evaluation.protocol.evaluate_model_on_pairs` (one random rank per query image seeded
with ``--seed``, ``--ranks K`` multi-rank fusion, ``--rank S,P`` a fixed rank, 10 stratified folds).

Every option is checked before the model is loaded: the numbers against their bounds, and ``--json`` /
``--roc`` as outputs (:mod:`partialface.outputs`: writable, not an input, not an existing file without
``--overwrite``), so that a finished evaluation is never lost to a path it cannot write.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..checks import check_cpu_count, check_device, check_int, check_seed
from ..errors import PartialFaceError
from ..outputs import OutputFiles
from .metrics import plot_roc
from .protocol import evaluate_model_on_pairs

__all__ = ["add_eval_arguments", "run_eval", "MAX_BATCH", "MAX_RANKS"]

MAX_BATCH = 1024  # faces per forward pass: an IR-50 batch of 1024 already needs several GB of activations
MAX_RANKS = 100  # random ranks fused per image: each one is a full forward pass


def _rank_arg(text: str) -> tuple[int, int]:
    try:
        subset, permutation = (int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--rank must be 'subset,permutation', got {text!r}") from err
    return subset, permutation


def _folds_arg(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--folds must be a comma-separated list of fold numbers, got {text!r}") from err


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint path or shipped model name ('default', 'rgb-baseline')")
    parser.add_argument("--pairs", required=True, help="LFW pairs.txt, or an InsightFace verification .bin")
    parser.add_argument("--images", help="image root for pairs.txt (Name/Name_0001.jpg)")
    parser.add_argument("--folds", type=_folds_arg, help="pairs.txt folds to use, e.g. 7,8 (default: all in the file)")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--roc", help="write the ROC curve PNG here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the query ranks (default 0)")
    parser.add_argument("--ranks", type=int, default=1, help="average the templates of K random ranks per image")
    parser.add_argument("--rank", type=_rank_arg, help="fix one rank 'subset,permutation' for every query")
    parser.add_argument("--per-rank", action="store_true",
                        help="also fix each rank in turn: accuracy mean/min/max and template consistency (pairs.txt)")
    parser.add_argument("--no-flip", action="store_true", help="do not add the mirrored image's embedding")
    parser.add_argument("--raw-photos", action="store_true",
                        help="prepare each photo as the model records (its box, or five-point alignment), as the "
                             "service client does, instead of cutting the model's crop box")
    parser.add_argument("--overwrite", action="store_true", help="replace --json / --roc files that already exist")
    parser.add_argument("--batch-size", type=int, default=64,
                        help=f"faces per forward pass, 1..{MAX_BATCH} (default 64)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads, up to the CPU count (0 = default)")
    parser.add_argument("--device", default="cpu", help="where the model runs: cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_options(args: argparse.Namespace) -> None:
    """Everything about the options that can be known before the model is loaded."""
    check_seed("--seed", args.seed)
    check_int("--ranks", args.ranks, 1, MAX_RANKS)
    check_int("--batch-size", args.batch_size, 1, MAX_BATCH)
    if args.threads:
        check_cpu_count("--threads", args.threads)
    for fold in args.folds or ():
        check_int("--folds", fold, 1, 10)
    inputs = [path for path in (args.pairs, args.model) if Path(path).is_file()]
    outputs = OutputFiles("eval", args.overwrite, inputs)
    for option in ("json", "roc"):
        if getattr(args, option):
            outputs.add(getattr(args, option), what=f"--{option}")


def run_eval(args: argparse.Namespace, load_model: Callable[..., object]) -> int:
    """Run ``partialface eval`` with parsed ``args``; ``load_model`` is :func:`partialface.api.load_model`.

    The loader is passed in by the top-level command line: the inference API sits above the evaluation
    layer, so this module may not import it (docs/architecture.md).
    """
    _check_options(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=check_device("--device", args.device))
    report, scores, issame = evaluate_model_on_pairs(
        model, args.pairs, args.images, args.folds, args.seed, args.ranks, args.rank,
        not args.no_flip, args.batch_size, not args.quiet, args.per_rank, args.raw_photos,
    )
    if args.roc:
        plot_roc({f"{model.encoder.name} ({Path(args.pairs).name})": (scores, issame)}, args.roc)
        report["roc_png"] = args.roc
    text = json.dumps(report, indent=1)
    if args.json:
        with atomic_write(args.json, "w") as fh:
            fh.write(text + "\n")
    print(
        f"{model.encoder.name}: accuracy {100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} %  "
        f"TAR@FAR=1e-3 {100 * report['tar_at_far_1e-3']:.2f} %  AUC {report['auc']:.4f}  "
        f"({report['pairs']} pairs, {report['seconds']} s)"
    )
    if "per_rank" in report:
        spread = report["per_rank"]
        print(
            f"  each rank fixed: accuracy mean {100 * spread['rank_accuracy_mean']:.2f} %, min "
            f"{100 * spread['rank_accuracy_min']:.2f} %, max {100 * spread['rank_accuracy_max']:.2f} %; "
            f"same-image template cosine across ranks {spread['template_consistency_mean']:.3f} "
            f"(genuine pairs {spread['genuine_similarity_mean']:.3f}, impostors {spread['impostor_similarity_mean']:.3f})"
        )
    return 0
