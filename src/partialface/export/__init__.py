"""ONNX export of a model's two halves and serving the network through onnxruntime.

* :func:`export_network`: protected channels -> templates (the server's half);
* :func:`export_client_transform`: faces and a rank -> the channels the client sends;
* :class:`OnnxEmbedder`: a :class:`~partialface.api.FaceModel` look-alike whose network runs in onnxruntime.

``onnx``, ``onnxscript`` and ``onnxruntime`` come with the ``onnx`` extra and are imported only when used.
"""

from .onnx_export import export_client_transform, export_network
from .runtime import OnnxEmbedder, onnx_session

__all__ = ["export_network", "export_client_transform", "OnnxEmbedder", "onnx_session"]
