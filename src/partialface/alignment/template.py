"""The ArcFace five-point template, the frame a face is cut into, and the similarity warp that does it.

Every ArcFace-style recognizer (InsightFace, TFace, PartialFace's backbones) is trained on faces whose
two eye centres, nose tip and two mouth corners were moved by a similarity transform (rotation, uniform
scale, translation; no shear, no reflection) as close as possible, in the least-squares sense, to five
fixed points of a 112x112 image, :data:`ARCFACE_TEMPLATE`. A query aligned the same way looks like the
training faces; misalignment is the usual cause of poor accuracy.

:class:`FaceFrame` says where that 112x112 square lies in the output: the chip itself (``FaceFrame(112)``)
or a larger context frame such as ``FaceFrame(250)``, the square at (69, 69)-(181, 181). The context frame
is how the project's CelebA faces are laid out (and roughly how LFW's deep-funneled photos are), so the
project's default crop box (69, 69, 181, 181) cuts exactly the aligned face out of it while training
augmentation can still crop around it. Pixels outside the photo repeat its edge, as in the CelebA copy.

Coordinates are in pixels with pixel *centres* at integers (dlib's, scikit-image's and OpenCV's
convention), x to the right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from skimage.transform import warp

from ..errors import PartialFaceError

__all__ = [
    "ARCFACE_TEMPLATE",
    "TEMPLATE_SIZE",
    "FaceFrame",
    "estimate_similarity",
    "apply_transform",
    "warp_face",
]

TEMPLATE_SIZE = 112

# left eye, right eye (as seen in the image: x grows to the right), nose tip, left and right mouth corner
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

# Shrink a photo before warping when the warp would shrink it more than this: a bilinear warp reads only
# 4 source pixels per output pixel, so a face 1,000 pixels wide warped straight to 112 would alias.
_MAX_WARP_SHRINK = 2.0


@dataclass(frozen=True)
class FaceFrame:
    """An output image ``size x size`` holding the ArcFace 112x112 square, scaled by ``scale``, at ``offset``.

    ``offset`` is the square's top-left corner: one number for both axes or an ``(x, y)`` pair, by default
    centring the square (``FaceFrame(250).offset == 69``). ``scale`` other than 1 (with a pair offset)
    places the template where a photo collection has its faces (``benchmarks/alignment.py --sections
    lfw-frame`` fits LFW's: a raw photo aligned into it is framed like LFW's deep-funneled photos).
    """

    size: int = TEMPLATE_SIZE
    offset: int | float | tuple[float, float] | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < TEMPLATE_SIZE:
            raise PartialFaceError(f"frame size must be an integer >= {TEMPLATE_SIZE}, got {self.size!r}")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not 0.25 <= self.scale <= 4:
            raise PartialFaceError(f"frame scale must be a number in 0.25..4, got {self.scale!r}")
        side = TEMPLATE_SIZE * self.scale
        offset = int((self.size - side) // 2) if self.offset is None else self.offset
        pair = offset if isinstance(offset, (tuple, list)) else (offset, offset)
        if (len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in pair)
                or not all(0 <= v <= self.size - side for v in pair)):
            raise PartialFaceError(f"frame offset must be a number or an (x, y) pair in 0..{self.size - side:g} for a "
                                   f"{self.size} frame with scale {self.scale:g}, got {offset!r}")
        object.__setattr__(self, "offset", tuple(pair) if isinstance(offset, (tuple, list)) else offset)

    @property
    def origin(self) -> tuple[float, float]:
        """The template square's top-left corner ``(x, y)`` in the frame."""
        x, y = self.offset if isinstance(self.offset, tuple) else (self.offset, self.offset)
        return float(x), float(y)

    @property
    def placement(self) -> np.ndarray:
        """The 3x3 similarity taking 112x112 template pixels to frame pixels."""
        x, y = self.origin
        return np.array([[self.scale, 0.0, x], [0.0, self.scale, y], [0.0, 0.0, 1.0]])

    @property
    def face_box(self) -> tuple[int, int, int, int]:
        """The aligned template square in this frame, ``(left, top, right, bottom)``, right/bottom exclusive."""
        x, y = self.origin
        side = TEMPLATE_SIZE * self.scale
        return (round(x), round(y), round(x + side), round(y + side))

    def to_dict(self) -> dict[str, Any]:
        offset = list(self.offset) if isinstance(self.offset, tuple) else self.offset
        return {"size": self.size, "offset": offset, **({"scale": self.scale} if self.scale != 1.0 else {})}


def estimate_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity transform taking ``source`` points onto ``target`` points, as 3x3.

    With points as complex numbers ``z`` (source) and ``w`` (target), a similarity is ``w = a z + b``; the
    least-squares ``a`` is ``sum((w - mean w) conj(z - mean z)) / sum(|z - mean z|^2)``, which is
    Umeyama's solution without reflection in two dimensions. Raises PartialFaceError when the points
    cannot define one (fewer than two, mismatched, not finite, or all at one place).
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.ndim != 2 or source.shape[1] != 2 or source.shape != target.shape or len(source) < 2:
        raise PartialFaceError(
            f"a similarity needs two (N, 2) point arrays of one shape with N >= 2, got {source.shape} and {target.shape}"
        )
    if not (np.isfinite(source).all() and np.isfinite(target).all()):
        raise PartialFaceError("landmark points must be finite")
    z = source[:, 0] + 1j * source[:, 1]
    w = target[:, 0] + 1j * target[:, 1]
    z_centred = z - z.mean()
    spread = float(np.sum(np.abs(z_centred) ** 2))
    if spread <= 1e-12 * max(1.0, float(np.max(np.abs(z))) ** 2):
        raise PartialFaceError("landmark points are all at one place: no face geometry to align")
    a = np.sum((w - w.mean()) * np.conj(z_centred)) / spread
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag], [0.0, 0.0, 1.0]])


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) mapped by the 3x3 affine ``matrix``."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def warp_face(image: Image.Image, to_template: np.ndarray, frame: FaceFrame = FaceFrame()) -> np.ndarray:
    """Warp an RGB photo into ``frame``; ``to_template`` maps photo pixels to 112x112 template pixels.

    Returns (size, size, 3) uint8. Bilinear interpolation, edges repeated outside the photo. A photo
    whose face is much larger than the template is first shrunk by an integer box filter (antialiasing).
    """
    matrix = frame.placement @ to_template
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))
    if 0 < scale < 1.0 / _MAX_WARP_SHRINK:
        factor = int(np.floor(1.0 / scale))  # the face shrinks by a whole factor, then by <= 2 in the warp
        # pixel i of the reduced photo averages source pixels k*i .. k*i+k-1: its centre is k*i + (k-1)/2
        image = image.reduce(factor)
        matrix = matrix @ np.array([[factor, 0.0, (factor - 1) / 2], [0.0, factor, (factor - 1) / 2], [0, 0, 1.0]])
    pixels = np.asarray(image.convert("RGB"))
    warped = warp(
        pixels,
        inverse_map=np.linalg.inv(matrix),
        output_shape=(frame.size, frame.size),
        order=1,
        mode="edge",
        preserve_range=True,
    )
    return np.clip(np.rint(warped), 0, 255).astype(np.uint8)
