"""Client transform speed: TFace's way (x8 image, all 192 channels, then select) vs ``plan.protect``.

Everything runs in this one process on the same real faces (112x112, float32). The reference and the
transform are timed in alternating rounds and the ratio is taken per round, then the median over
rounds, so a load change on a shared machine hits both sides of a ratio alike. Printed: images/s of
each, the ratio, the relative error against a float64 evaluation of the reference pipeline, the peak
extra resident memory (Linux: VmHWM after resetting it through /proc/self/clear_refs), and the time
of one face. Rows: the 27 channels of one random rank per face (what a client sends) and all 192.

``--alternatives`` also times the other ways to compute the same channels (the reasons for the
choice in ``partialface/frequency_kernel.py``): the PyTorch path (six elementwise passes), a GEMM
formulation (dense banded matrices through BLAS), ``torch.compile`` of the stencil graph (with its
compile time) and, when the onnx extra is installed, the exported client transform in onnxruntime.

    python benchmarks/transform.py [--batch 64] [--rounds 5] [--threads 2] [--alternatives]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from partialface import frequency_kernel
from partialface.frequency import NUM_CHANNELS, colour_map, stencil_weights, to_frequency
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


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (tables, allocator)
    return statistics.median(seconds(fn) for _ in range(repeats))


def rel_error(got: torch.Tensor, truth: torch.Tensor) -> float:
    return float((got.double() - truth).norm() / truth.norm())


def paired_rounds(reference, candidates: dict, rounds: int) -> tuple[float, dict]:
    """Median reference time and, per candidate, (median time, median per-round speed-up)."""
    reference()
    for fn in candidates.values():
        fn()
    ref_times, times = [], {name: [] for name in candidates}
    for _ in range(rounds):
        ref_times.append(seconds(reference))
        for name, fn in candidates.items():
            times[name].append(statistics.median(seconds(fn) for _ in range(3)))
    result = {name: (statistics.median(t), statistics.median(r / c for r, c in zip(ref_times, t)))
              for name, t in times.items()}
    return statistics.median(ref_times), result


# ----------------------------------------------------------------------------------------- alternatives
def gemm_formulation(x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """``F = M_u Y M_v^T`` with the dense (n x n) banded matrices, through BLAS (see frequency.py)."""
    b, _, h, w = x.shape
    def dense(n):  # M[u] (8, n, n) from the 3-tap stencil
        taps = torch.as_tensor(stencil_weights(n), dtype=x.dtype)  # (8, 3, n)
        m = torch.zeros(8, n, n + 2, dtype=x.dtype)
        for k in range(3):
            m[:, torch.arange(n), torch.arange(n) + k] = taps[:, k]
        return m[:, :, 1:-1].contiguous()
    mh, mw = dense(h), dense(w)
    k = torch.as_tensor(colour_map(), dtype=x.dtype)
    ycc = torch.einsum("ck,bkhw->bchw", k[:, :3], x) + k[:, 3, None, None]
    cols = torch.matmul(ycc, mw.permute(2, 0, 1).reshape(w, 8 * w))  # (B,3,H,8W): Y M_v^T for every v
    cols = cols.view(b, 3, h, 8, w)
    colour, u, v = channels // 64, (channels % 64) // 8, channels % 8
    image = torch.arange(b)[:, None]
    planes = cols.permute(0, 1, 3, 2, 4)[image, colour, v]  # (B,J,H,W)
    return torch.matmul(mh[u], planes)


def stencil_graph(x: torch.Tensor, channels: torch.Tensor, rows, cols, k) -> torch.Tensor:
    """The 3x3-stencil form as one expression (what torch.compile and the ONNX graph see)."""
    b, _, h, w = x.shape
    ycc = torch.nn.functional.pad(torch.einsum("ck,bkhw->bchw", k[:, :3], x) + k[:, 3, None, None], (1, 1, 1, 1))
    colour, u, v = channels // 64, (channels % 64) // 8, channels % 8
    planes = ycc.reshape(b * 3, h + 2, w + 2)[torch.arange(b, device=x.device)[:, None] * 3 + colour]
    rw, cw = rows[u], cols[v]
    r = planes[:, :, 0:h] * rw[:, :, 0, :, None] + planes[:, :, 1:h + 1] * rw[:, :, 1, :, None] \
        + planes[:, :, 2:h + 2] * rw[:, :, 2, :, None]
    return r[..., 0:w] * cw[:, :, 0, None, :] + r[..., 1:w + 1] * cw[:, :, 1, None, :] \
        + r[..., 2:w + 2] * cw[:, :, 2, None, :]


def alternatives(faces, subset, permutation, plan, rounds) -> dict:
    """name -> (callable, note) for every other way of computing the same 27 channels."""
    channels = plan.channels(subset, permutation)
    options = {}

    def torch_path():
        os.environ["PARTIALFACE_TRANSFORM"] = "torch"
        try:
            return plan.protect(faces, subset, permutation)
        finally:
            del os.environ["PARTIALFACE_TRANSFORM"]

    options["PyTorch path (6 elementwise passes)"] = (torch_path, "")
    options["GEMM formulation (dense banded, BLAS)"] = (lambda: gemm_formulation(faces, channels), "")
    rows = torch.as_tensor(stencil_weights(faces.shape[2]), dtype=faces.dtype)
    cols = torch.as_tensor(stencil_weights(faces.shape[3]), dtype=faces.dtype)
    k = torch.as_tensor(colour_map(), dtype=faces.dtype)
    try:
        compiled = torch.compile(stencil_graph)
        took = seconds(lambda: compiled(faces, channels, rows, cols, k))
        options["torch.compile (stencil graph)"] = (lambda: compiled(faces, channels, rows, cols, k),
                                                    f"first call (compilation) {took:.1f} s")
    except Exception as err:  # no compiler, unsupported platform: report, do not fail
        print(f"  torch.compile unavailable: {type(err).__name__}: {err}", file=sys.stderr)
    try:
        import onnxruntime  # noqa: F401

        from partialface.encoders import get_encoder
        from partialface.export import onnx_session
        from partialface.export.onnx_export import export_transform

        path = Path(tempfile.mkdtemp(prefix="partialface-bench-")) / "client.onnx"
        took = seconds(lambda: export_transform(get_encoder("partialface", plan=plan), path, tuple(faces.shape[2:])))
        session = onnx_session(path)
        rank = (subset * plan.n + permutation).numpy()
        inputs = {"faces": faces.numpy(), "rank": rank}
        options["onnxruntime (exported client transform)"] = (
            lambda: torch.from_numpy(session.run(None, inputs)[0]), f"export {took:.1f} s")
    except ImportError:
        print("  onnxruntime not installed: skipping the ONNX row", file=sys.stderr)
    return options


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="alternating reference/transform rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0 = torch's default)")
    parser.add_argument("--alternatives", action="store_true", help="also time the other formulations")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    faces, what = load_faces(args.batch)
    plan = ChannelPlan.tface()
    subset, permutation = plan.sample_query_ranks(args.batch, torch.Generator().manual_seed(0))
    channels = plan.channels(subset, permutation)
    kernel = "compiled kernel" if frequency_kernel.available() else "PyTorch path: the kernel is not built"
    print(f"client transform, {what}, batch {args.batch}, 112x112, {torch.get_num_threads()} threads, "
          f"plan.protect via the {kernel}")

    def reference():
        full = reference_to_frequency(faces)  # x8 image, every channel (TFace)
        return torch.stack([full[i, channels[i]] for i in range(args.batch)])

    def protect():
        return plan.protect(faces, subset, permutation)

    def all_channels():
        return to_frequency(faces)

    # memory first, on a fresh heap (freed buffers kept by the allocator would hide the peak)
    memory = {"protect": peak_extra_mb(protect), "reference": peak_extra_mb(reference)}
    truth_all = reference_to_frequency(faces.double())
    truth = torch.stack([truth_all[i, channels[i]] for i in range(args.batch)])
    ref_error = rel_error(reference(), truth)
    rows = {"plan.protect, 27 channels (one random rank per face)": (protect, rel_error(protect(), truth)),
            f"to_frequency, all {NUM_CHANNELS} channels": (all_channels, rel_error(all_channels(), truth_all))}
    ref_time, result = paired_rounds(reference, {name: fn for name, (fn, _) in rows.items()}, args.rounds)

    print(f"  {'':56s} {'images/s':>10s} {'speed-up':>9s} {'rel. error':>11s}")
    print(f"  {'reference (x8 upsample, 192 channels, select)':56s} {args.batch / ref_time:10.1f} {'1x':>9s} "
          f"{ref_error:11.2e}   peak extra memory {memory['reference']:.0f} MB")
    for name, (fn, error) in rows.items():
        t, ratio = result[name]
        extra = f"   peak extra memory {memory['protect']:.0f} MB" if name.startswith("plan") else ""
        print(f"  {name:56s} {args.batch / t:10.1f} {ratio:8.0f}x {error:11.2e}{extra}")
    one = median_seconds(lambda: plan.protect(faces[:1], subset[:1], permutation[:1]), 200)
    print(f"  one face, 27 channels: {1e3 * one:.3f} ms")
    print("  targets: >= 100x (27 channels), >= 20x (192), error <= 1e-5, one face <= 1 ms "
          f"(median of {args.rounds} paired rounds; the error is against float64)")

    if args.alternatives:
        print("\nother formulations of the same 27 channels (same faces and ranks):")
        options = alternatives(faces, subset, permutation, plan, args.rounds)
        ref_time, result = paired_rounds(reference, {n: fn for n, (fn, _) in options.items()}, max(1, args.rounds // 2))
        for name, (fn, note) in options.items():
            t, ratio = result[name]
            print(f"  {name:56s} {args.batch / t:10.1f} {ratio:8.0f}x {rel_error(fn(), truth):11.2e}   {note}")


if __name__ == "__main__":
    main()
