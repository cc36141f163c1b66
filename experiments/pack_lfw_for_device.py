"""Pack the LFW faces the GPU protocol needs into a small folder that can travel to a lent GPU machine.

The device tool sends the working tree (64 MiB at most), not ``../shared``. Each image is cut down to
the 128x128 region around the face crop with ``jpegtran -crop`` (a lossless JPEG operation on whole
8x8/16x16 blocks: no re-encoding, the decoded pixels inside the region are the original ones), so the
training crop ``[69, 69, 181, 181]`` of the 250x250 photo becomes ``[5, 5, 117, 117]`` of the packed
one. The script checks that on every packed image, against the original decoded with Pillow.

Packed: every image of every person with >= 2 images (the training sets) and every image named in
``pairs.txt`` (the evaluation folds), plus ``pairs.txt``. About 7,400 images, 25 MB.

    python experiments/pack_lfw_for_device.py --out .device_data/lfw [--jpegtran /path/to/jpegtran]

``jpegtran`` comes with libjpeg-turbo (Debian: libjpeg-turbo-progs). The output folder must be ignored
by git (this repository ignores ``.device_data/``); never commit the images.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ORIGINAL_BOX = (69, 69, 181, 181)  # the CROP box of configs/*_lfw_dev.yaml on the 250x250 photos
REGION = (64, 64, 128, 128)  # x, y, width, height: block aligned (16 px) and around ORIGINAL_BOX
PACKED_BOX = tuple(v - REGION[i % 2] for i, v in enumerate(ORIGINAL_BOX))


def _wanted(lfw: Path) -> list[Path]:
    from partialface.data import read_lfw_pairs

    images = lfw / "images"
    wanted: set[Path] = set()
    for person in sorted(p for p in images.iterdir() if p.is_dir()):
        files = sorted(person.glob("*.jpg"))
        if len(files) >= 2:
            wanted.update(files)
    for pair in read_lfw_pairs(lfw / "pairs.txt"):
        wanted.update((images / pair.path_a, images / pair.path_b))
    return sorted(wanted)


def _pack_one(jpegtran: str, source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    x, y, w, h = REGION
    tmp = target.with_suffix(".tmp")
    subprocess.run([jpegtran, "-copy", "none", "-crop", f"{w}x{h}+{x}+{y}", "-outfile", str(tmp), str(source)],
                   check=True, capture_output=True)
    with Image.open(source) as a, Image.open(tmp) as b:
        original = np.asarray(a.convert("RGB").crop(ORIGINAL_BOX))
        packed = np.asarray(b.convert("RGB").crop(PACKED_BOX))
    if not np.array_equal(original, packed):
        tmp.unlink()
        raise ValueError(f"{source}: the losslessly cropped JPEG decodes differently inside the face box")
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", default="../shared/data/lfw", help="the LFW folder (images/, pairs.txt)")
    parser.add_argument("--out", default=".device_data/lfw")
    parser.add_argument("--jpegtran", default=shutil.which("jpegtran") or "jpegtran")
    args = parser.parse_args(argv)
    lfw, out = Path(args.lfw), Path(args.out)
    if not (lfw / "pairs.txt").is_file():
        parser.error(f"{lfw}: no pairs.txt (point --lfw at the LFW folder)")
    if not Path(args.jpegtran).is_file() and shutil.which(args.jpegtran) is None:
        parser.error(f"jpegtran not found ({args.jpegtran}); install libjpeg-turbo-progs or pass --jpegtran")
    files = _wanted(lfw)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda f: _pack_one(args.jpegtran, f, out / "images" / f.parent.name / f.name), files))
    shutil.copyfile(lfw / "pairs.txt", out / "pairs.txt")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"packed {len(files)} images into {out} ({size / 2**20:.1f} MiB); crop box there: {list(PACKED_BOX)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
