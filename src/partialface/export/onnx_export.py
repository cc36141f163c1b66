"""Export a model's two halves to ONNX, with metadata that says what each file expects.

``export_network`` writes the recognition network (protected channels (B, C, H, W) -> templates (B, D),
dynamic batch); ``export_client_transform`` writes the client's transform for the model's plan and
per-frequency scale (faces (B, 3, H, W) in [-1, 1], rank (B,) int64 -> channels (B, 3s, H, W)), so a
client in another language or on a phone can protect faces without PyTorch. Both use PyTorch's
``torch.export``-based exporter (the TorchScript one is deprecated) and write atomically.

Every file carries ``partialface.*`` metadata (kind, encoder, plan fingerprint, scale fingerprint, sizes,
the rank rule) that :class:`partialface.export.runtime.OnnxEmbedder` checks against the model it serves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import torch

from ..api import FaceModel
from ..atomic import atomic_write
from ..encoders import FrequencyEncoder
from ..errors import PartialFaceError
from ..protected import scale_fingerprint
from .graphs import ClientTransform, TemplateNetwork

__all__ = ["export_network", "export_client_transform", "export_transform", "network_metadata", "OPSET"]

OPSET = 18
NETWORK_KIND = "partialface.templates/1"
CLIENT_KIND = "partialface.client-transform/1"


def _input_size(model: FaceModel) -> tuple[int, int]:
    size = getattr(model.backbone, "input_size", None) or (model.crop.size if model.crop else 112)
    return (int(size), int(size))


def network_metadata(model: FaceModel) -> dict[str, str]:
    """What the exported network expects and returns; also what a runtime checks before serving."""
    encoder = model.encoder
    h, w = _input_size(model)
    return {
        "partialface.kind": NETWORK_KIND,
        "partialface.encoder": encoder.name,
        "partialface.in_channels": str(encoder.out_channels),
        "partialface.input_size": f"{h}x{w}",
        "partialface.embedding_size": str(getattr(model.backbone, "embedding_size", "")),
        "partialface.plan": encoder.plan.fingerprint if encoder.plan else "none",
        "partialface.scale": scale_fingerprint(getattr(encoder, "frequency_scale", None)),
        "partialface.source": Path(model.source).name if model.source else "",
    }


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs that optional torchvision operators are skipped and warns about its own internals."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _export(module: torch.nn.Module, args: tuple, names: dict, dynamic: dict, path, metadata: dict) -> Path:
    try:
        import onnx  # noqa: F401  (the exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise PartialFaceError(f"ONNX export needs the 'onnx' extra: pip install 'partialface[onnx]' ({err})") from err
    module = module.eval()
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            module, args, dynamo=True, opset_version=OPSET, dynamic_shapes=dynamic,
            input_names=names["inputs"], output_names=names["outputs"], verbose=False,
        )
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_write(path, "wb") as fh:
        fh.write(proto.SerializeToString())
    return Path(path)


def export_network(model: FaceModel, path: str | os.PathLike) -> Path:
    """Write the recognition network (protected channels -> L2-normalised templates) to ``path``."""
    h, w = _input_size(model)
    example = torch.zeros(2, model.encoder.out_channels, h, w, device=model.device)
    batch = torch.export.Dim("batch")
    return _export(
        TemplateNetwork(model.backbone), (example,), {"inputs": ["sent"], "outputs": ["templates"]},
        {"sent": {0: batch}}, path, network_metadata(model),
    )


def export_client_transform(model: FaceModel, path: str | os.PathLike) -> Path:
    """Write the client transform of ``model``'s plan and scale (faces, rank -> sent channels) to ``path``."""
    if model.encoder.plan is None:
        raise PartialFaceError(f"{model.source or 'model'}: encoder {model.encoder.name!r} has no channel plan, so "
                               f"there is no client transform to export (an 'rgb' model sends the face itself)")
    return export_transform(model.encoder, path, _input_size(model), network_metadata(model))


def export_transform(
    encoder: FrequencyEncoder, path: str | os.PathLike, size: tuple[int, int] = (112, 112), metadata: dict | None = None
) -> Path:
    """Write the client transform of an encoder's plan and per-frequency scale for ``size`` faces to ``path``."""
    if not isinstance(encoder, FrequencyEncoder) or encoder.plan is None:
        raise PartialFaceError(f"encoder {encoder.name!r} has no channel plan: there is no client transform to export")
    plan = encoder.plan
    faces = torch.zeros(2, 3, *size)
    rank = torch.zeros(2, dtype=torch.int64)
    batch = torch.export.Dim("batch")
    metadata = {
        "partialface.encoder": encoder.name,
        "partialface.in_channels": str(encoder.out_channels),
        "partialface.input_size": f"{size[0]}x{size[1]}",
        "partialface.plan": plan.fingerprint,
        "partialface.scale": scale_fingerprint(encoder.frequency_scale),
        **(metadata or {}),
        "partialface.kind": CLIENT_KIND,
        "partialface.ranks": str(plan.num_ranks),
        "partialface.rank_rule": f"rank = subset * {plan.n} + permutation, drawn uniformly in 0..{plan.num_ranks - 1}",
        "partialface.faces": "RGB (B,3,H,W) float32 in [-1,1], pixel/127.5 - 1, cropped like the model's faces",
    }
    return _export(
        ClientTransform(encoder, size), (faces, rank), {"inputs": ["faces", "rank"], "outputs": ["sent"]},
        {"faces": {0: batch}, "rank": {0: batch}}, path, metadata,
    )
