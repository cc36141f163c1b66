"""Face-embedding backbones and classification heads, built by name.

>>> from partialface.models import get_model, get_head
>>> backbone = get_model("ir18", in_channels=27)
>>> head = get_head("arcface", embedding_size=512, num_classes=1000)

Importing this package registers every backbone (:mod:`.iresnet`, :mod:`.mobilefacenet`, the wrapper
:mod:`.rank_keyed`) and head
(:mod:`.heads`).
"""

from . import iresnet, mobilefacenet, rank_keyed  # noqa: F401  (importing registers the backbones)
from .backbone import Backbone
from .heads import ClassHead, MarginHead, get_head, list_heads, register_head
from .registry import get_model, list_models, register_model

__all__ = [
    "Backbone",
    "ClassHead",
    "MarginHead",
    "get_head",
    "get_model",
    "list_heads",
    "list_models",
    "register_head",
    "register_model",
]
