"""Request bodies: a size limit enforced before and while reading, and the payload media type.

:class:`BodyLimit` is ASGI middleware: a ``Content-Length`` over the limit is answered 413 before one
body byte is read, and a body sent without a length (chunked) is counted as it arrives and cut off at
the limit, so no request can make the server buffer more than the limit.

:func:`payload_body` is the dependency of the routes that take protected faces: the body must be
:data:`partialface.wire.MEDIA_TYPE`. An image (``image/*``) is refused with 415 and says why: the
server never receives pixels, the client protects the face first.
"""

from __future__ import annotations

from fastapi import Request

from ..wire import MEDIA_TYPE
from .problems import Problem, problem_response

__all__ = ["BodyLimit", "payload_body", "PAYLOAD_BODY"]

# OpenAPI description of a payload body (the routes read the raw bytes, so FastAPI cannot infer it).
PAYLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "protected faces in the partialface wire format (see partialface.wire)",
        "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        lengths = [v for k, v in scope["headers"] if k == b"content-length"]
        if lengths:
            try:
                declared = int(lengths[0])
            except ValueError:
                declared = -1
            if len(lengths) > 1 or declared < 0:
                return await problem_response(400, "bad-length", "invalid Content-Length header")(scope, receive, send)
            if declared > self.max_bytes:
                detail = f"request body of {declared} bytes is over the limit of {self.max_bytes}"
                return await problem_response(413, "payload-too-large", detail)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise Problem(413, "payload-too-large", f"request body is over the limit of {self.max_bytes} bytes")
            return message

        return await self.app(scope, counted, send)


async def payload_body(request: Request) -> bytes:
    """The raw payload of a protected-faces route, after the media-type check."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media.startswith("image/"):
        raise Problem(415, "image-refused", f"images are refused: this server never receives pixels; protect the "
                      f"face on the client (partialface.client) and send {MEDIA_TYPE}")
    if media != MEDIA_TYPE:
        raise Problem(415, "unsupported-media-type", f"the body must be {MEDIA_TYPE}, got {media or 'no Content-Type'!r}")
    return await request.body()
