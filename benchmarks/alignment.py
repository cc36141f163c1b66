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

    python benchmarks/alignment.py [--lfw 500] [--celeba 300] [--seed 0]
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
CELEBA_OFFSET = 69  # the ArcFace square of the CelebA copy's 250x250 frames (its README)


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


def central_box(boxes: list[FaceBox], pixels: np.ndarray) -> FaceBox | None:
    """The box whose centre is nearest the photo's centre."""
    if not boxes:
        return None
    y, x = pixels.shape[0] / 2.0, pixels.shape[1] / 2.0
    return min(boxes, key=lambda b: (b.centre[0] - x) ** 2 + (b.centre[1] - y) ** 2)


DETECTOR_ROWS = {
    "hog (upsample 0)": lambda: DlibHogDetector(upsample=0),
    "hog (upsample 1)": lambda: DlibHogDetector(upsample=1),
    "cnn (upsample 0)": lambda: DlibCnnDetector(upsample=0),
    "hog+cnn": lambda: make_detector("hog+cnn"),
}


def detection_table(images: list[np.ndarray]) -> tuple[list[str], dict[str, list[list[FaceBox]]]]:
    rows, found = [], {}
    for name, factory in DETECTOR_ROWS.items():
        detector = factory()
        start = time.perf_counter()
        boxes = [detector.detect(pixels) for pixels in images]
        seconds = (time.perf_counter() - start) / len(images)
        found[name] = boxes
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
    return rows, found


def template_error(points: np.ndarray, template: np.ndarray) -> float:
    """Mean distance (112x112 pixels) by which the fitted transform moves the five template points off
    SCRFD's placement, for points found in a CelebA frame."""
    transform = estimate_similarity(points, template)
    placed = ARCFACE_TEMPLATE + CELEBA_OFFSET  # where SCRFD's alignment put the template's points
    return float(np.linalg.norm(apply_transform(transform, placed) - ARCFACE_TEMPLATE, axis=1).mean())


def alignment_table(images: list[np.ndarray]) -> list[str]:
    rows = []
    for detector_name in ("hog", "cnn"):
        detector = make_detector(detector_name)
        boxes = [central_box(detector.detect(pixels), pixels) for pixels in images]
        kept = [(box, px) for box, px in zip(boxes, images) if box is not None]
        for landmarks_name in ("dlib68", "dlib5"):
            model = make_landmarks(landmarks_name)
            start = time.perf_counter()
            errors = np.array([template_error(model.locate(px, box), model.template) for box, px in kept])
            seconds = (time.perf_counter() - start) / max(1, len(kept))
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
            points.append(model.locate(pixels, box) - CELEBA_OFFSET)
    mean = np.mean(points, axis=0)
    print(f"# dlib5 points over {len(points)} CelebA photos (of {len(paths)}), 112x112 ArcFace frame:")
    print("DLIB5_TEMPLATE = " + ", ".join(f"[{x:.1f}, {y:.1f}]" for x, y in mean))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=int, default=500, help="LFW photos for detection (default 500)")
    parser.add_argument("--celeba", type=int, default=300, help="CelebA photos for alignment error (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrate", action="store_true", help="print DLIB5_TEMPLATE (1,500 CelebA photos)")
    args = parser.parse_args(argv)
    for name in ("lfw", "celeba"):
        if not (DATA / name / "images").is_dir():
            print(f"{DATA / name / 'images'} is absent: nothing to measure", file=sys.stderr)
            return 1
    if args.calibrate:
        calibrate(1500, args.seed)
        return 0

    lfw_paths = sample_photos(DATA / "lfw" / "images", args.lfw, args.seed)
    lfw = load(lfw_paths)
    print(f"## Detection: {len(lfw)} LFW photos (seed {args.seed}), one thread\n")
    print("| detector | face found % | box holds the centre % | several faces % | largest is not central % | ms/photo |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows, _ = detection_table(lfw)
    print("\n".join(rows))

    aligner = FaceAligner(frame=250)
    start = time.perf_counter()
    for path in lfw_paths:
        aligner.align(Image.open(path))
    seconds = (time.perf_counter() - start) / len(lfw_paths)
    print(f"\nWhole default alignment (hog+cnn, dlib68, 250 frame, from the JPEG file): {1000 * seconds:.1f} ms/photo")

    celeba = load(sample_photos(DATA / "celeba" / "images", args.celeba, args.seed, people_parity=1))
    print(f"\n## Alignment error: {len(celeba)} CelebA photos aligned by SCRFD (people at odd index, seed {args.seed})\n")
    print("| detector | landmarks | faces | mean error px | median px | > 5 px % | landmarks ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(alignment_table(celeba)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
