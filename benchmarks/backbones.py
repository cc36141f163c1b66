"""Training-step and inference throughput of face backbones on this machine's CPU.

For each model named on the command line (default: mobilefacenet, mobilefacenet_fast, ir18) it times
a full training step (forward, ArcFace head over ``--classes`` identities, cross-entropy, backward,
SGD with momentum and weight decay) on a batch of ``--batch`` random ``--channels``-channel inputs,
and an inference forward pass of the same batch. All models live in one process and are timed in
interleaved rounds, so that load from other processes affects them alike; the best and the median
of the rounds are reported, with the ratio to the first model.

Usage::

    python benchmarks/backbones.py                        # defaults, ~2-3 minutes on 2 cores
    python benchmarks/backbones.py ir50 mobilefacenet --rounds 2 --threads 1

OpenMP threads spin while waiting by default; on a machine whose cores are shared with other
processes that makes 2 threads 3-4x slower than 1. Unless ``OMP_WAIT_POLICY`` is already set,
this script sets it to ``PASSIVE`` before importing torch; training scripts should do the same.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the OpenMP runtime start-up

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from partialface.models import get_head, get_model, list_models  # noqa: E402

DEFAULT_MODELS = ("mobilefacenet", "mobilefacenet_fast", "ir18")


@dataclass
class ModelTimer:
    """One backbone with its head, optimiser, fixed batch and the measured step times."""

    name: str
    backbone: torch.nn.Module
    head: torch.nn.Module
    optimizer: torch.optim.Optimizer
    inputs: torch.Tensor
    labels: torch.Tensor
    train_seconds: list[float] = field(default_factory=list)
    infer_seconds: list[float] = field(default_factory=list)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.backbone.parameters())

    def train_step(self) -> None:
        self.backbone.train()
        self.head.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.head(self.backbone(self.inputs), self.labels), self.labels)
        loss.backward()
        self.optimizer.step()

    def time_round(self) -> None:
        start = time.perf_counter()
        self.train_step()
        self.train_seconds.append(time.perf_counter() - start)
        self.backbone.eval()
        with torch.inference_mode():
            start = time.perf_counter()
            self.backbone(self.inputs)
            self.infer_seconds.append(time.perf_counter() - start)


def build_timer(name: str, args: argparse.Namespace) -> ModelTimer:
    """Build backbone, ArcFace head, SGD and a random batch for model ``name``."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = get_model(name, in_channels=args.channels, input_size=args.input_size)
    memory_format = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    backbone = backbone.to(memory_format=memory_format)
    head = get_head("arcface", backbone.embedding_size, args.classes)
    optimizer = torch.optim.SGD([*backbone.parameters(), *head.parameters()], lr=0.1, momentum=0.9, weight_decay=5e-4)
    inputs = torch.randn(args.batch, args.channels, args.input_size, args.input_size, generator=generator)
    labels = torch.randint(0, args.classes, (args.batch,), generator=generator)
    return ModelTimer(name, backbone, head, optimizer, inputs.contiguous(memory_format=memory_format), labels)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS), help=f"any of {', '.join(list_models())}")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=27, help="input channels (3 RGB, 27 PartialFace)")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--classes", type=int, default=1000, help="identities in the ArcFace head")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (one step per model each)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--memory-format", choices=("channels_last", "contiguous"), default="channels_last")
    args = parser.parse_args(argv)
    for option in ("batch", "channels", "input_size", "classes", "rounds", "threads"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    unknown = [name for name in args.models if name not in list_models()]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(list_models())}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    timers = [build_timer(name, args) for name in args.models]
    for timer in timers:  # warm-up: first-call allocations and kernel selection
        timer.train_step()
    for _ in range(args.rounds):
        for timer in timers:
            timer.time_round()

    load = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "n/a"
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')}, {args.memory_format}, batch {args.batch}, "
        f"{args.channels}x{args.input_size}x{args.input_size}, ArcFace {args.classes} classes, "
        f"{args.rounds} rounds, load average {load}"
    )
    header = f"{'model':<22}{'params':>9}{'train best':>12}{'median':>9}{'ratio':>7}{'infer best':>12}{'median':>9}"
    print(header + "\n" + "-" * len(header))
    reference = args.batch / min(timers[0].train_seconds)
    for timer in timers:
        train_best = args.batch / min(timer.train_seconds)
        train_median = args.batch / statistics.median(timer.train_seconds)
        infer_best = args.batch / min(timer.infer_seconds)
        infer_median = args.batch / statistics.median(timer.infer_seconds)
        print(
            f"{timer.name:<22}{timer.parameters / 1e6:>8.2f}M{train_best:>12.1f}{train_median:>9.1f}"
            f"{train_best / reference:>7.2f}{infer_best:>12.1f}{infer_median:>9.1f}"
        )
    print("(images/s; ratio = best training rate / that of the first model)")


if __name__ == "__main__":
    main()
