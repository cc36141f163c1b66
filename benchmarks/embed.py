"""The embedding path end to end, stage by stage, with the network in PyTorch and in onnxruntime.

Part 1 runs what ``make demo`` and ``partialface eval`` run per image on real LFW photos, timing every
stage: read and decode the photo, crop, scale to [-1, 1], check the values, protect, protect the mirror
image (with the same rank, as ``make_template_fn`` replays the generator), the network on both, fuse.
It runs once with the model's PyTorch network and once with the same network exported to ONNX and
served by :class:`partialface.export.OnnxEmbedder`, batch by batch in turn (so a change of load on
a shared machine hits both), and checks that both give the same templates.

Part 2 times the network alone (protected faces -> templates) in PyTorch and in onnxruntime, one
face at a time and in batches, with the same thread count.

    python benchmarks/embed.py [--model default] [--images 256] [--batch 64] [--threads 2] [--onnx PATH]

PyTorch's CPU allocator takes transparent huge pages for large tensors when ``THP_MEM_ALLOC_ENABLE=1``
is set before it starts (on a VM, where first touches of fresh pages are costly, this matters for
the network's activations): run the command with and without it to compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from PIL import Image

import partialface
from partialface.data.crop import image_to_pixels
from partialface.data.pixels import pixels_to_faces
from partialface.evaluation.templates import check_image_values, fuse_templates

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw" / "images"


class Stopwatch:
    """Accumulates wall time per named stage."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def time(self, stage, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        self.seconds[stage] += time.perf_counter() - start
        return result


def decode(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def load_batch(files, crop, clock: Stopwatch) -> torch.Tensor:
    faces = []
    for path in files:
        image = clock.time("read + decode JPEG", decode, path)
        faces.append(clock.time("crop", lambda: image_to_pixels(crop.apply(image) if crop else image)))
    faces = clock.time("to [-1,1] + stack", lambda: pixels_to_faces(torch.stack(faces)))
    clock.time("value check", check_image_values, faces, "batch")
    return faces


@torch.no_grad()
def flip_fused(embedder, faces, generator, clock: Stopwatch) -> torch.Tensor:
    """make_template_fn's order: protect, embed, protect the mirror with the same ranks, embed, fuse."""
    before = generator.get_state()
    sent = clock.time("client transform", embedder.protect, faces, generator)
    first = clock.time("network", embedder.embed_protected, sent)
    generator.set_state(before)
    mirrored = clock.time("mirror: flip + transform", lambda: embedder.protect(torch.flip(faces, dims=(-1,)), generator))
    second = clock.time("network", embedder.embed_protected, mirrored)
    return clock.time("flip fusion", fuse_templates, [first, second])


def print_table(title: str, clock: Stopwatch, count: int) -> float:
    total = sum(clock.seconds.values())
    print(f"\n{title}: {count / total:.1f} images/s")
    print(f"  {'stage':28s} {'ms/image':>9s} {'share':>7s}")
    for stage, seconds in clock.seconds.items():
        print(f"  {stage:28s} {1e3 * seconds / count:9.3f} {100 * seconds / total:6.1f}%")
    return count / total


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def network_only(model, runtime, faces, threads: int, repeats: int) -> None:
    sent = model.protect(faces, torch.Generator().manual_seed(0))
    difference = float((runtime.embed_protected(sent) - model.embed_protected(sent)).abs().max())
    print(f"\nnetwork only (protected {tuple(sent.shape[1:])} -> templates), {threads} threads; "
          f"largest template difference {difference:.1e}")
    print(f"  {'':22s} {'PyTorch eager':>16s} {'onnxruntime':>16s} {'ratio':>7s}")
    for label, batch, reps in (("single face", sent[:1], repeats * 10), (f"batch {len(sent)}", sent, repeats)):
        eager = median_seconds(lambda: model.embed_protected(batch), reps)
        ort = median_seconds(lambda: runtime.embed_protected(batch), reps)
        n = len(batch)
        print(f"  {label:22s} {n / eager:9.1f} img/s {n / ort:9.1f} img/s {eager / ort:6.2f}x"
              f"   ({1e3 * eager / n:.2f} vs {1e3 * ort / n:.2f} ms/image)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--onnx", help="an exported network (default: export one to a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not LFW.is_dir():
        sys.exit(f"{LFW} is absent: this benchmark times real photos")
    from partialface.export import OnnxEmbedder, export_network

    model = partialface.load_model(args.model)
    onnx_path = args.onnx
    if onnx_path is None:
        onnx_path = Path(tempfile.mkdtemp(prefix="partialface-embed-")) / "network.onnx"
        start = time.perf_counter()
        export_network(model, onnx_path)
        print(f"exported the network in {time.perf_counter() - start:.1f} s to {onnx_path}")
    runtime = OnnxEmbedder(model, onnx_path, threads=args.threads)
    files = sorted(LFW.glob("*/*.jpg"))[:: max(1, 10000 // args.images)][: args.images]
    batches = [files[i : i + args.batch] for i in range(0, len(files), args.batch)]
    print(f"embedding path: model {args.model!r} ({model.encoder.name}, {type(model.backbone).__name__}), "
          f"{len(files)} LFW photos in batches of {args.batch}, {torch.get_num_threads()} threads, flip fusion, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}")

    for embedder in (model, runtime):  # warm-up: allocators, tables, sessions
        flip_fused(embedder, load_batch(batches[0], model.crop, Stopwatch()), torch.Generator(), Stopwatch())
    clocks = {"PyTorch": Stopwatch(), "onnxruntime": Stopwatch()}
    difference = 0.0
    for index, batch_files in enumerate(batches):
        templates = []
        for name, embedder in (("PyTorch", model), ("onnxruntime", runtime)):
            faces = load_batch(batch_files, model.crop, clocks[name])
            templates.append(flip_fused(embedder, faces, torch.Generator().manual_seed(index), clocks[name]))
        difference = max(difference, float((templates[0] - templates[1]).abs().max()))
    eager = print_table("as make demo / partialface eval run it, network in PyTorch", clocks["PyTorch"], len(files))
    ort = print_table("the same, network in onnxruntime (OnnxEmbedder)", clocks["onnxruntime"], len(files))
    print(f"  onnxruntime end to end: {ort / eager:.2f}x the images/s; largest template difference {difference:.1e}")
    network_only(model, runtime, load_batch(batches[0], model.crop, Stopwatch()), args.threads, args.repeats)


if __name__ == "__main__":
    main()
