"""Photos as 8-bit upright RGB: the conversion lives in the data layer (:mod:`partialface.data.images`).

Re-exported here because detection and alignment were its first users (``partialface.alignment.to_rgb8``).
"""

from ..data.images import BACKGROUND, open_rgb8, to_rgb8

__all__ = ["to_rgb8", "open_rgb8", "BACKGROUND"]
