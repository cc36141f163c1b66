"""The client side of the recognition service: prepare and protect faces here, send only channels.

    from partialface.client import Client
    client = Client("http://127.0.0.1:8000", api_key)
    client.enroll("alice", ["alice_1.jpg", "alice_2.jpg"])
    client.identify("query.jpg", top_k=5)

The package imports the bottom layer (frequency transform, channel plan, wire format), the data layer's
crops and httpx; never the backbones (``partialface.models``), the encoders or the training code: a
client holds no model, only the model's *client record* (:mod:`partialface.client.record`).
"""

from __future__ import annotations

from .prepare import Preparer, open_photo, preparer_for
from .record import RECORD_FORMAT, ClientRecord
from .sdk import Client, ServiceError

__all__ = [
    "Client",
    "ServiceError",
    "ClientRecord",
    "RECORD_FORMAT",
    "Preparer",
    "open_photo",
    "preparer_for",
]
