"""Serving an exported network through onnxruntime: :class:`OnnxEmbedder`.

The server's half of a model (protected channels -> templates) runs in onnxruntime when it is
installed (``pip install 'partialface[onnx]'``). :class:`OnnxEmbedder` has the embedding methods of
:class:`partialface.api.FaceModel` (``protect``, ``embed_protected``, ``embed``, ``embed_fn``), so a
server can hold either; it refuses a network whose metadata (encoder, channels, plan, scale) does not
match the model whose encoder protects the faces. ``benchmarks/embed.py`` compares the two.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..api import FaceModel
from ..checks import check_finite
from ..errors import PartialFaceError
from .onnx_export import NETWORK_KIND, network_metadata

__all__ = ["OnnxEmbedder", "onnx_session", "read_metadata"]

# Keys whose values must agree between a model and the network file serving it.
_MUST_MATCH = ("partialface.encoder", "partialface.in_channels", "partialface.input_size",
               "partialface.plan", "partialface.scale")


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session of ``path`` with ``threads`` intra-op threads (default: torch's count).

    Worker threads sleep between runs instead of spinning (``allow_spinning = 0``): on a machine shared
    with other work, spinning threads take the cores the next batch needs (the reason the Makefile
    sets OMP_WAIT_POLICY=PASSIVE for PyTorch).
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise PartialFaceError(f"{path}: serving ONNX needs onnxruntime: pip install 'partialface[onnx]'") from err
    if not Path(path).is_file():
        raise PartialFaceError(f"{path}: no such ONNX file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for unreadable models
        raise PartialFaceError(f"{path}: onnxruntime cannot load this file: {err}") from err


def read_metadata(session) -> dict[str, str]:
    """The ``partialface.*`` metadata of a loaded session."""
    return dict(session.get_modelmeta().custom_metadata_map)


class OnnxEmbedder:
    """Templates through onnxruntime, faces protected by the model's own encoder.

    Args:
        model: the :class:`FaceModel` the network was exported from (its encoder protects raw faces,
            its metadata is checked against the file).
        path: the file written by :func:`partialface.export.export_network`.
        threads: onnxruntime intra-op threads (default: ``torch.get_num_threads()``).
    """

    def __init__(self, model: FaceModel, path: str | os.PathLike, threads: int | None = None):
        self.model = model
        self.path = Path(path)
        self.session = onnx_session(path, threads)
        stored = read_metadata(self.session)
        if stored.get("partialface.kind") != NETWORK_KIND:
            raise PartialFaceError(f"{path}: not a partialface template network (kind "
                                   f"{stored.get('partialface.kind')!r}, expected {NETWORK_KIND!r})")
        expected = network_metadata(model)
        for key in _MUST_MATCH:
            if stored.get(key) != expected[key]:
                raise PartialFaceError(f"{path}: {key} is {stored.get(key)!r} but the model "
                                       f"{model.source or ''} has {expected[key]!r}")
        self.input_name = self.session.get_inputs()[0].name
        self.in_channels = int(stored["partialface.in_channels"])

    @property
    def encoder(self):
        return self.model.encoder

    @property
    def device(self) -> torch.device:
        """Where the faces are protected (the model's device); the network itself runs on the CPU."""
        return self.model.device

    def protect(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The client step, exactly as :meth:`FaceModel.protect`."""
        return self.model.protect(images, generator)

    def embed_protected(self, sent: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The server step: sent tensors (B, C, H, W) -> L2-normalised templates (B, D), on the CPU.

        NaN or infinite inputs are refused, as :meth:`FaceModel.embed_protected` refuses them.
        """
        sent = torch.as_tensor(sent).detach().cpu()
        if sent.dim() != 4 or sent.shape[1] != self.in_channels:
            raise PartialFaceError(f"expected (B,{self.in_channels},H,W) protected inputs for {self.path.name}, "
                                   f"got {tuple(sent.shape)}")
        array = check_finite("protected inputs", sent).to(torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])

    @torch.no_grad()
    def embed(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """RGB faces (B, 3, H, W) in [-1, 1] -> templates, protected on the way in."""
        return self.embed_protected(self.protect(images, generator))

    def embed_fn(self):
        """``(images, generator) -> templates``: the callable the verification pipeline takes."""
        return lambda images, generator: self.embed(images, generator)

