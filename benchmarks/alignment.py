"""Face alignment from raw photos: which detector and which landmarks, measured on real faces.

Two questions, two measurements, one thread:

1. Detection (LFW): on a seeded sample of LFW deep-funneled photos (250x250, the labelled face roughly
   centred), the share of photos where each detector finds a face, the share where a found box holds
   the photo's centre (the labelled person), how often the largest face is not the central one, and
   the time per photo of detection alone and of the whole alignment.
2. Alignment (CelebA): the project's CelebA copy was aligned by SCRFD, a five-point ArcFace detector,
   onto the ArcFace template at (69, 69) of a 250 frame. Re-aligning those photos, a method that agrees
   with SCRFD computes the identity (a shift by 69); the error is how far its transform moves the
   five template points from where SCRFD put them, in pixels of the 112x112 face (mean and the share
   over 5 px). SCRFD's points are the ones ArcFace-style training sets are aligned with, so this is
   "how close to standard ArcFace alignment" measured independently of dlib. The dlib5 template is
   calibrated (``--calibrate``) on the other half of the CelebA people, never on the measured half.
3. LFW's default crop: how far the project's fixed crop box (69, 69, 181, 181) of LFW photos is from
   the five-point aligned face (the same error measure), and the scale and rotation between them.
4. LFW's frame (``--sections lfw-frame``): where LFW's deep-funneled photos put the five points on
   average (fitted on photos of people outside pairs folds 7-8, a :class:`FaceFrame` with a scale); then
   the verification accuracy of the shipped models on folds
   7-8 with their box crop of the LFW photos against five-point alignment of the same photos as raw
   photos, into LFW's frame and into the plain ArcFace frame (``partialface eval --raw-photos``).

Times are the CPU time of this one-thread process (``time.process_time``) per photo, so they hold on a
shared machine where wall time would count the waiting.

    python benchmarks/alignment.py [--lfw 500] [--celeba 300] [--seed 0]
    python benchmarks/alignment.py --sections lfw-crop   # one section: detection, celeba, lfw-crop, lfw-frame
    python benchmarks/alignment.py --calibrate      # DLIB5_TEMPLATE for partialface/alignment/landmarks.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from partialface.alignment import ARCFACE_TEMPLATE, FaceAligner, FaceBox, make_detector, make_landmarks
from partialface.alignment.detectors import DlibCnnDetector, DlibHogDetector
from partialface.alignment.template import apply_transform, estimate_similarity

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FRAME_OFFSET = 69  # the ArcFace square in CelebA's 250x250 frames (its README) and LFW's default crop


def sample_photos(root: Path, count: int, seed: int, people_parity: int | None = None) -> list[Path]:
    """``count`` photos drawn with ``seed``; ``people_parity`` keeps only people at even (0) or odd (1) index."""
    people = sorted(p for p in root.iterdir() if p.is_dir())
    if people_parity is not None:
        people = people[people_parity::2]
    photos = sorted(f for person in people for f in person.glob("*.jpg"))
    return random.Random(seed).sample(photos, min(count, len(photos)))


def load(paths: list[Path]) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def holds_centre(box: FaceBox, pixels: np.ndarray) -> bool:
    y, x = pixels.shape[0] / 2.0, pixels.shape[1] / 2.0
    return box.left <= x < box.right and box.top <= y < box.bottom


def central_box(faces: list, pixels: np.ndarray):
    """The face (a FaceBox or DetectedFace) whose box centre is nearest the photo's centre."""
    if not faces:
        return None
    y, x = pixels.shape[0] / 2.0, pixels.shape[1] / 2.0
    return min(faces, key=lambda f: ((f.box[0] + f.box[2]) / 2 - x) ** 2 + ((f.box[1] + f.box[3]) / 2 - y) ** 2)


DETECTOR_ROWS = {
    "hog (upsample 0)": lambda: DlibHogDetector(upsample=0),
    "hog (upsample 1)": lambda: DlibHogDetector(upsample=1),
    "cnn (upsample 0)": lambda: DlibCnnDetector(upsample=0),
    "hog+cnn": lambda: make_detector("hog+cnn"),
}


def detection_table(images: list[np.ndarray]) -> list[str]:
    rows = []
    for name, factory in DETECTOR_ROWS.items():
        detector = factory()
        start = time.process_time()
        boxes = [detector.detect(pixels) for pixels in images]
        seconds = (time.process_time() - start) / len(images)
        any_face = np.mean([bool(b) for b in boxes])
        centred = np.mean([any(holds_centre(box, px) for box in b) for b, px in zip(boxes, images)])
        several = np.mean([len(b) > 1 for b in boxes])
        largest_off_centre = np.mean(
            [bool(b) and max(b, key=lambda x: x.area) is not central_box(b, px) for b, px in zip(boxes, images)]
        )
        rows.append(
            f"| {name} | {100 * any_face:.1f} | {100 * centred:.1f} | {100 * several:.1f} | "
            f"{100 * largest_off_centre:.1f} | {1000 * seconds:.1f} |"
        )
    return rows


def template_error(points: np.ndarray, template: np.ndarray) -> float:
    """Mean distance (112x112 pixels) by which the fitted transform moves the five template points off
    where a 250 frame with the ArcFace square at (69, 69) has them (CelebA: SCRFD's placement; LFW: the
    default crop box)."""
    transform = estimate_similarity(points, template)
    placed = ARCFACE_TEMPLATE + FRAME_OFFSET
    return float(np.linalg.norm(apply_transform(transform, placed) - ARCFACE_TEMPLATE, axis=1).mean())


def alignment_table(images: list[np.ndarray]) -> list[str]:
    rows = []
    for detector_name in ("hog", "cnn"):
        detector = make_detector(detector_name)
        boxes = [central_box(detector.detect(pixels), pixels) for pixels in images]
        kept = [(box, px) for box, px in zip(boxes, images) if box is not None]
        for landmarks_name in ("dlib68", "dlib5"):
            model = make_landmarks(landmarks_name)
            start = time.process_time()
            errors = np.array([template_error(model.locate(px, box), model.template) for box, px in kept])
            seconds = (time.process_time() - start) / max(1, len(kept))
            rows.append(
                f"| {detector_name} | {landmarks_name} | {len(kept)}/{len(images)} | {errors.mean():.2f} | "
                f"{np.median(errors):.2f} | {100 * np.mean(errors > 5):.1f} | {1000 * seconds:.1f} |"
            )
    return rows


def calibrate(count: int, seed: int) -> None:
    """Mean position of dlib's five points in the ArcFace 112 frame, over CelebA people at even index."""
    paths = sample_photos(DATA / "celeba" / "images", count, seed, people_parity=0)
    detector, model = make_detector("hog"), make_landmarks("dlib5")
    points = []
    for pixels in load(paths):
        box = central_box(detector.detect(pixels), pixels)
        if box is not None:
            points.append(model.locate(pixels, box) - FRAME_OFFSET)
    mean = np.mean(points, axis=0)
    print(f"# dlib5 points over {len(points)} CelebA photos (of {len(paths)}), 112x112 ArcFace frame:")
    print("DLIB5_TEMPLATE = " + ", ".join(f"[{x:.1f}, {y:.1f}]" for x, y in mean))


def detection_section(args: argparse.Namespace) -> None:
    lfw_paths = sample_photos(DATA / "lfw" / "images", args.lfw, args.seed)
    lfw = load(lfw_paths)
    print(f"## Detection: {len(lfw)} LFW photos (seed {args.seed}), one thread\n")
    print("| detector | face found % | box holds the centre % | several faces % | largest is not central % | CPU ms/photo |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(detection_table(lfw)))
    aligner = FaceAligner(frame=250)
    start = time.process_time()
    for path in lfw_paths:
        aligner.align(Image.open(path))
    seconds = (time.process_time() - start) / len(lfw_paths)
    print(f"\nWhole default alignment (hog+cnn, dlib68, 250 frame, from the JPEG file): {1000 * seconds:.1f} CPU ms/photo")


def celeba_section(args: argparse.Namespace) -> None:
    celeba = load(sample_photos(DATA / "celeba" / "images", args.celeba, args.seed, people_parity=1))
    print(f"## Alignment error: {len(celeba)} CelebA photos aligned by SCRFD (people at odd index, seed {args.seed})\n")
    print("| detector | landmarks | faces | mean error px | median px | > 5 px % | landmarks CPU ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(alignment_table(celeba)))


def lfw_crop_section(args: argparse.Namespace) -> None:
    """How far LFW's default crop box (69, 69, 181, 181) is from the five-point aligned face."""
    images = load(sample_photos(DATA / "lfw" / "images", args.lfw, args.seed))
    aligner = FaceAligner(frame=250)
    errors, scales, angles = [], [], []
    for pixels in images:
        face = central_box(aligner.detect(Image.fromarray(pixels)), pixels)
        if face is None:
            continue
        errors.append(template_error(face.landmarks, ARCFACE_TEMPLATE))
        scales.append(float(np.sqrt(np.linalg.det(face.transform[:2, :2]))))
        angles.append(abs(np.degrees(np.arctan2(face.transform[1, 0], face.transform[0, 0]))))
    errors = np.array(errors)
    print(f"## LFW default crop vs five-point alignment: {len(errors)} of {len(images)} LFW photos (seed {args.seed})\n")
    print("| mean offset px | median px | > 5 px % | scale (median, 5-95 %) | rotation deg (median, 95 %) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {errors.mean():.2f} | {np.median(errors):.2f} | {100 * np.mean(errors > 5):.1f} | "
          f"{np.median(scales):.3f} ({np.percentile(scales, 5):.3f}-{np.percentile(scales, 95):.3f}) | "
          f"{np.median(angles):.1f} ({np.percentile(angles, 95):.1f}) |")


def lfw_frame_section(args: argparse.Namespace) -> None:
    """LFW's mean five-point placement, and what aligning raw photos into it does for the shipped models."""
    from dataclasses import replace

    import torch

    from partialface.alignment import FaceFrame, FivePointPreparation
    from partialface.api import load_model
    from partialface.data import DEFAULT_CROP, people_in_folds, read_lfw_pairs
    from partialface.evaluation import evaluate_model_on_pairs

    torch.set_num_threads(args.threads)
    pairs_path = DATA / "lfw" / "pairs.txt"
    dev_people = people_in_folds(read_lfw_pairs(pairs_path), [7, 8])
    photos = [p for p in sample_photos(DATA / "lfw" / "images", 4 * args.lfw, args.seed)
              if p.parent.name not in dev_people][: args.lfw]
    aligner, points = FaceAligner(frame=250), []
    for pixels in load(photos):
        face = central_box(aligner.detect(Image.fromarray(pixels)), pixels)
        if face is not None:
            points.append(face.landmarks)
    mean = np.mean(points, axis=0)
    fitted = estimate_similarity(ARCFACE_TEMPLATE, mean)
    scale = float(np.sqrt(np.linalg.det(fitted[:2, :2])))
    angle = float(np.degrees(np.arctan2(fitted[1, 0], fitted[0, 0])))
    print(f"## LFW's frame: the mean five points of {len(points)} LFW photos of people outside folds 7-8 "
          f"(seed {args.seed})\n")
    print(f"ArcFace template -> LFW photo: scale {scale:.4f}, rotation {angle:.2f} deg, template origin "
          f"({fitted[0, 2]:.2f}, {fitted[1, 2]:.2f}); residual of the mean points "
          f"{np.linalg.norm(mean - apply_transform(fitted, ARCFACE_TEMPLATE), axis=1).mean():.2f} px")
    lfw_frame = FaceFrame(250, offset=(round(float(fitted[0, 2]), 2), round(float(fitted[1, 2]), 2)), scale=round(scale, 4))
    print(f"LFW's frame: {lfw_frame}\n")
    if args.fit_only:
        return
    print("| model | queries | accuracy folds 7-8 (%) | TAR@FAR=1e-3 (%) | AUC |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        model = load_model(name)
        ways = [("box crop of the LFW photo (as trained)", model, False),
                ("five-point into LFW's frame, then the box", replace(model, preparation=FivePointPreparation(
                    frame=lfw_frame, crop=DEFAULT_CROP)), True),
                ("five-point into the ArcFace frame, then the box", replace(model, preparation=FivePointPreparation(
                    frame=FaceFrame(250), crop=DEFAULT_CROP)), True)]
        for label, variant, raw in ways:
            report, _, _ = evaluate_model_on_pairs(variant, str(pairs_path), str(DATA / "lfw" / "images"), [7, 8],
                                                   seed=0, progress=False, raw_photos=raw)
            print(f"| {name} | {label} | {100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} | "
                  f"{100 * report['tar_at_far_1e-3']:.2f} | {report['auc']:.4f} |", flush=True)


SECTIONS = {"detection": detection_section, "celeba": celeba_section, "lfw-crop": lfw_crop_section,
            "lfw-frame": lfw_frame_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=int, default=500, help="LFW photos for detection (default 500)")
    parser.add_argument("--celeba", type=int, default=300, help="CelebA photos for alignment error (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="default,rgb-baseline", help="lfw-frame: shipped models to evaluate")
    parser.add_argument("--threads", type=int, default=2, help="lfw-frame: torch threads of the evaluations")
    parser.add_argument("--fit-only", action="store_true", help="lfw-frame: only fit the frame")
    parser.add_argument("--calibrate", action="store_true",
                        help="print DLIB5_TEMPLATE (1,500 CelebA photos)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    for name in ("lfw", "celeba"):
        if not (DATA / name / "images").is_dir():
            print(f"{DATA / name / 'images'} is absent: nothing to measure", file=sys.stderr)
            return 1
    if args.calibrate:
        calibrate(1500, args.seed)
        return 0
    for section in args.sections.split(","):
        SECTIONS[section](args)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
