"""``partialface align SRC OUT``: align an identity-folder dataset (see :mod:`.dataset`)."""

from __future__ import annotations

import argparse
from typing import Any

from .aligner import DEFAULT_DETECTOR, DEFAULT_LANDMARKS
from .dataset import PICKS, REPORT_NAME, AlignSettings, align_dataset
from .detectors import DETECTORS
from .landmarks import LANDMARKS

__all__ = ["add_align_arguments", "run_align"]


def add_align_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC", help="dataset of photos, one folder per person: SRC/<person>/<photo>")
    parser.add_argument("out", metavar="OUT", help="output folder (same layout); must be outside SRC")
    parser.add_argument("--detector", choices=list(DETECTORS), default=DEFAULT_DETECTOR,
                        help=f"face detector (default {DEFAULT_DETECTOR}: HOG, the CNN where HOG finds nothing)")
    parser.add_argument("--landmarks", choices=list(LANDMARKS), default=DEFAULT_LANDMARKS,
                        help=f"landmark model (default {DEFAULT_LANDMARKS})")
    parser.add_argument("--frame", type=int, default=250,
                        help="output side: 112 = the aligned face alone, 250 (default) = the face at (69,69)-(181,181) "
                             "with context, like the CelebA copy, so the default crop box cuts the aligned face")
    parser.add_argument("--pick", choices=list(PICKS), default="largest",
                        help="the face kept from a photo with several (default largest; central suits LFW)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the written images (default 95)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="on a resumed run, try again the photos where no face was found or that were unreadable")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_align(args: Any) -> int:
    settings = AlignSettings(args.detector, args.landmarks, args.frame, args.pick, args.quality)
    report = align_dataset(args.source, args.out, settings, workers=args.workers,
                           retry_failed=args.retry_failed, progress=not args.no_progress)
    run = report["this_run"]
    print(f"aligned {report['aligned']} of {report['photos']} photos into {args.out} "
          f"({run['processed']} processed in this run, {run['seconds']} s)")
    print(f"no face found: {len(report['no_face'])}; several faces (the {settings.pick} kept): "
          f"{len(report['several_faces'])}; unreadable: {len(report['unreadable'])}")
    for photo in report["no_face"][:10]:
        print(f"  no face: {photo}")
    if len(report["no_face"]) > 10:
        print(f"  ... {len(report['no_face']) - 10} more")
    for entry in report["unreadable"][:10]:
        print(f"  unreadable: {entry['error']}")
    print(f"report: {args.out}/{REPORT_NAME}")
    return 0
