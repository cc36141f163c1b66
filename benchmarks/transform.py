"""Client transform speed: TFace's way (x8 image, all 192 channels, then select) vs ``plan.protect``.

Both run in this one process on the same 64 real faces (112x112, float32), so the ratio is measured
under the same conditions. Prints images/s of each, the ratio, the relative error of ``protect``
against a float64 evaluation of the reference pipeline, and the peak extra resident memory of each
(Linux: VmHWM after resetting it through /proc/self/clear_refs).

    python benchmarks/transform.py [--batch 64] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

from partialface.plan import ChannelPlan
from partialface.reference import reference_to_frequency

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw" / "images"


def load_faces(count: int) -> tuple[torch.Tensor, str]:
    from partialface.data import DEFAULT_CROP, load_face

    if LFW.is_dir():
        files = sorted(LFW.glob("*/*.jpg"))[:: max(1, 10000 // count)][:count]
        return torch.stack([load_face(f, DEFAULT_CROP) for f in files]), f"{count} LFW faces"
    print(f"note: {LFW} is absent; timing random 112x112 inputs instead", file=sys.stderr)
    return torch.rand(count, 3, 112, 112) * 2 - 1, f"{count} random inputs"


def _rss_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1))


def peak_extra_mb(fn) -> float:
    """Peak resident memory above the current level while ``fn`` runs, in MB (Linux only)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        return float("nan")
    base = _rss_kb("VmRSS")
    fn()
    return (_rss_kb("VmHWM") - base) / 1024


def images_per_second(fn, batch: int, repeats: int) -> float:
    fn()  # warm-up (tables, allocator)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return batch / best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    faces, what = load_faces(args.batch)
    plan = ChannelPlan.tface()
    g = torch.Generator().manual_seed(0)
    subset, permutation = plan.sample_query_ranks(args.batch, g)
    channels = plan.channels(subset, permutation)
    out = torch.empty(args.batch, plan.out_channels, *faces.shape[2:])

    def reference():
        full = reference_to_frequency(faces)  # x8 image, every channel (TFace)
        return torch.stack([full[i, channels[i]] for i in range(args.batch)])

    def protect():
        return plan.protect(faces, subset, permutation)

    def protect_reused():
        return plan.protect(faces, subset, permutation, out=out)

    # memory first, on a fresh heap (freed buffers kept by the allocator would hide the peak)
    mem_fast = peak_extra_mb(protect)
    mem_ref = peak_extra_mb(reference)

    truth = reference_to_frequency(faces.double())
    truth = torch.stack([truth[i, channels[i]] for i in range(args.batch)])
    error = float((protect().double() - truth).norm() / truth.norm())
    ref_error = float((reference().double() - truth).norm() / truth.norm())
    ref_rate = images_per_second(reference, args.batch, max(1, args.repeats // 2))
    fast_rate = images_per_second(protect, args.batch, args.repeats)
    reused_rate = images_per_second(protect_reused, args.batch, args.repeats)

    print(f"client transform, {what}, batch {args.batch}, 112x112 -> 27 channels, one random rank per face, "
          f"{torch.get_num_threads()} threads")
    print(f"  reference (x8 upsample, unfold, 192 channels, select): {ref_rate:9.1f} images/s  "
          f"peak extra memory {mem_ref:7.1f} MB  rel. error {ref_error:.2e}")
    print(f"  plan.protect (direct 3x3 stencils)                   : {fast_rate:9.1f} images/s  "
          f"peak extra memory {mem_fast:7.1f} MB  rel. error {error:.2e}")
    print(f"  plan.protect into a reused output buffer             : {reused_rate:9.1f} images/s")
    print(f"  speed-up: {fast_rate / ref_rate:.0f}x (reused buffer {reused_rate / ref_rate:.0f}x); "
          f"targets >= 100x, error <= 1e-5, <= 200 MB extra")


if __name__ == "__main__":
    main()
