"""``partialface export MODEL --onnx OUT.onnx [--client-onnx CLIENT.onnx]``: write ONNX files and check them.

After writing, each file is run in onnxruntime (when installed) beside PyTorch on the same faces,
real photos from ``--faces DIR`` or, without it, random faces, and the largest difference is printed;
a difference above the tolerance is an error (exit status 2), so a broken export never goes unnoticed.
"""

from __future__ import annotations

import argparse

import torch

from ..errors import PartialFaceError

__all__ = ["add_export_arguments", "run_export", "compare_with_torch", "TOLERANCE"]

TOLERANCE = 1e-4  # largest |ONNX - PyTorch| on unit templates; relative error on the client's channels
_CHECK_FACES = 8


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model: checkpoint path or shipped name (default, rgb-baseline)")
    parser.add_argument("--onnx", help="write the recognition network (protected channels -> templates) here")
    parser.add_argument("--client-onnx", help="write the client transform (faces, rank -> sent channels) here")
    parser.add_argument("--faces", help="folder or image of face photos to check the exports on (default: random faces)")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch check")


def _check_faces(model, source: str | None) -> torch.Tensor:
    if source:
        from ..protect import find_images

        _, files = find_images(source)
        return torch.stack([model.load_image(f) for f in files[:_CHECK_FACES]])
    size = model.crop.size if model.crop else 112
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(_CHECK_FACES, 3, size // 8, size // 8, generator=g) * 2 - 1  # smooth, face-like spectra
    return torch.nn.functional.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def compare_with_torch(model, network_path=None, client_path=None, faces: torch.Tensor | None = None) -> dict:
    """Largest template difference of the network file and relative error of the client file against PyTorch."""
    from .runtime import OnnxEmbedder, onnx_session

    faces = _check_faces(model, None) if faces is None else faces
    result = {}
    if network_path:
        sent = model.protect(faces, torch.Generator().manual_seed(0))
        expected = model.embed_protected(sent)
        got = OnnxEmbedder(model, network_path).embed_protected(sent)
        result["network_max_abs"] = float((got - expected).abs().max())
    if client_path:
        plan = model.encoder.plan
        rank = torch.randint(plan.num_ranks, (faces.shape[0],), generator=torch.Generator().manual_seed(0))
        expected = model.encoder.encode_rank(faces, rank // plan.n, rank % plan.n).double()
        session = onnx_session(client_path)
        got = torch.from_numpy(session.run(None, {"faces": faces.float().numpy(), "rank": rank.numpy()})[0]).double()
        result["client_relative"] = float((got - expected).norm() / expected.norm())
    return result


def run_export(args) -> int:
    from ..api import load_model
    from .onnx_export import export_client_transform, export_network

    if not args.onnx and not args.client_onnx:
        raise PartialFaceError("nothing to export: give --onnx OUT.onnx and/or --client-onnx OUT.onnx")
    model = load_model(args.model)
    if args.onnx:
        print(f"wrote {export_network(model, args.onnx)} (protected channels -> templates)")
    if args.client_onnx:
        print(f"wrote {export_client_transform(model, args.client_onnx)} (faces, rank -> sent channels)")
    if args.no_check:
        return 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime is not installed: exports not checked (pip install 'partialface[onnx]')")
        return 0
    faces = _check_faces(model, args.faces)
    report = compare_with_torch(model, args.onnx, args.client_onnx, faces)
    what = f"{faces.shape[0]} {'faces from ' + args.faces if args.faces else 'random faces'}"
    for key, value in report.items():
        print(f"onnxruntime vs PyTorch on {what}: {key} = {value:.2e} (tolerance {TOLERANCE:g})")
        if not value <= TOLERANCE:
            raise PartialFaceError(f"the exported {key.split('_')[0]} differs from PyTorch by {value:.2e} > {TOLERANCE:g}")
    return 0
