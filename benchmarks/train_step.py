"""Training throughput on this CPU: images/s of one optimisation step and the encoder's share of it.

For each backbone (default MobileFaceNet and IR-18) and each encoder (default: the RGB baseline and
PartialFace, 27 channels, TFace plan, label-keyed training ranks) this runs the trainer's own step (:func:`partialface.training.train_step`:
``encoder.encode_train`` -> backbone -> CosFace head -> cross-entropy -> SGD with momentum) on a batch
of real LFW faces (random inputs when the LFW copy is absent) and reports

* images/s of the whole step (batch / median step time; data loading is not included),
* the encoder's share of the step (time in ``encode_train`` / step time),
* its speed against the first setting of the same backbone and encoder (``x first``),

after warm-up steps, for each setting of the backbone: float32 or bfloat16 autocast (``CPU_BFLOAT16``),
contiguous or channels-last memory (``CHANNELS_LAST``). All models run in this one process under the
same conditions, the settings of one backbone in turn, so their ratios are measured side by side.

    python benchmarks/train_step.py [--models mobilefacenet ir18] [--encoders rgb partialface] [--batch 64]
                                    [--precisions float32 bfloat16] [--layouts contiguous channels_last]
                                    [--rank-keyed]
                                    [--steps 3] [--warmup 1] [--classes 1000] [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from partialface.encoders import FrequencyEncoder, estimate_frequency_scale, get_encoder
from partialface.models import get_head, get_model
from partialface.training import FaceClassifier, StepSchedule, build_optimizer, build_scheduler, train_step
from partialface.training.rank_keyed import rank_keyed_model_spec

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw" / "images"


def load_faces(count: int, size: int) -> tuple[torch.Tensor, str]:
    """``count`` real faces (LFW centre crop) or random inputs when LFW is absent."""
    from partialface.data import CropSpec, load_face

    if LFW.is_dir():
        files = sorted(LFW.glob("*/*.jpg"))[:: max(1, 10000 // count)][:count]
        crop = CropSpec(size=size)
        return torch.stack([load_face(f, crop) for f in files]), f"{len(files)} LFW faces"
    print(f"note: {LFW} is absent; timing random inputs instead", file=sys.stderr)
    return torch.rand(count, 3, size, size) * 2 - 1, f"{count} random inputs"


PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}
LAYOUTS = ("contiguous", "channels_last")


def measure(model_name: str, encoder_name: str, faces: torch.Tensor, classes: int, steps: int, warmup: int,
            precision: str = "float32", layout: str = "contiguous", rank_keyed: bool = False) -> dict:
    """Time ``steps`` training steps (after ``warmup``) of one backbone in one setting; returns a result row."""
    batch = faces.shape[0]
    encoder = get_encoder(encoder_name, train_repeats=3)
    if isinstance(encoder, FrequencyEncoder):
        encoder = get_encoder(encoder_name, frequency_scale=estimate_frequency_scale(faces), train_repeats=3)
    torch.manual_seed(0)
    keyed = rank_keyed and encoder_name == "partialface"  # RANK_KEYED: the backbone names each input's rank first
    name, kwargs = model_name, {"in_channels": encoder.out_channels, "input_size": faces.shape[-1]}
    if keyed:
        name, kwargs = rank_keyed_model_spec(encoder, name, kwargs)
    backbone = get_model(name, **kwargs)
    head = get_head("cosface", 512, classes, s=32.0, m=0.35)
    channels_last = layout == "channels_last"
    classifier = FaceClassifier(backbone, head, autocast=PRECISIONS[precision], channels_last=channels_last).train()
    if channels_last:
        classifier = classifier.to(memory_format=torch.channels_last)
    schedule = StepSchedule((0.1,), ())
    optimizer = build_optimizer([classifier], 0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = build_scheduler(optimizer, schedule)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    labels = torch.arange(batch) % classes
    generator = torch.Generator().manual_seed(0)
    results = []
    for index in range(warmup + steps):
        result = train_step(classifier, optimizer, scheduler, scaler, encoder, faces, labels, generator)
        if index >= warmup:
            results.append(result)
    step = statistics.median(r.step_seconds for r in results)
    encode = statistics.median(r.encode_seconds for r in results)
    return {
        "model": model_name + (" (rank-keyed)" if keyed else ""),
        "encoder": encoder_name,
        "in_channels": encoder.out_channels,
        "precision": precision,
        "layout": layout,
        "batch": batch,
        "step_seconds": step,
        "images_per_second": batch / step,
        "encode_seconds": encode,
        "encode_share": encode / step,
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["mobilefacenet", "ir18"])
    parser.add_argument("--encoders", nargs="+", default=["rgb", "partialface"],
                        help="input encoders, each timed with every model (default: rgb and partialface)")
    parser.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=["float32"],
                        help="backbone precisions to time (bfloat16: autocast, as CPU_BFLOAT16 trains)")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=["contiguous"],
                        help="memory layouts to time (channels_last: as CHANNELS_LAST trains)")
    parser.add_argument("--rank-keyed", action="store_true",
                        help="PartialFace models behind the rank-keyed input (RANK_KEYED), as the shipped default")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=112, help="input side")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--classes", type=int, default=1000, help="identities of the head")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    faces, source = load_faces(args.batch, args.size)
    print(f"# {source}, batch {args.batch}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'model':<32} {'encoder':<12} {'precision':<9} {'layout':<13} {'images/s':>9} {'x first':>8} "
          f"{'step s':>8} {'encode s':>9} {'encode share':>13}")
    rows = []
    for name in args.models:
        for encoder in args.encoders:
            first = None
            for precision in args.precisions:
                for layout in args.layouts:
                    row = measure(name, encoder, faces, args.classes, args.steps, args.warmup, precision, layout,
                                  args.rank_keyed)
                    first = first or row
                    row["speed_vs_first"] = row["images_per_second"] / first["images_per_second"]
                    rows.append(row)
                    print(f"{row['model']:<32} {encoder:<12} {precision:<9} {layout:<13} {row['images_per_second']:>9.1f} "
                          f"{row['speed_vs_first']:>8.2f} {row['step_seconds']:>8.2f} {row['encode_seconds']:>9.3f} "
                          f"{row['encode_share']:>12.1%}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"source": source, "threads": torch.get_num_threads(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
