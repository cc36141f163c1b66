"""The PartialFace client transform, computed exactly and without the 8x upsampled image.

The reference pipeline (TFace ``dct_transform``) maps an aligned face ``x`` (B,3,H,W) in [-1, 1] to
192 frequency channels:

1. ``p = x * 0.5 + 0.5`` (to [0, 1]);
2. bilinear upsampling by 8 with ``align_corners=True`` (H -> 8H, W -> 8W);
3. ``* 255``, JPEG full-range YCbCr (Y = .299R+.587G+.114B, Cb = -.168736R-.331264G+.5B+128,
   Cr = .5R-.418688G-.081312B+128), then ``- 128``;
4. an orthonormal 8x8 DCT-II in every 8x8 block: block (p, q), frequency (u, v) becomes pixel (p, q)
   of channel ``colour * 64 + 8u + v``.

Derivation of the direct computation
------------------------------------
Every step is linear (steps 1 and 3 are affine) and steps 2 and 4 are separable, so the result is
``F_c,uv = M_u(H) Y_c M_v(W)^T`` where ``Y_c`` is the colour plane ``c`` of the *112x112* input after
the affine colour map, and ``M_u(n) = D_u A(n)`` is an ``n x n`` matrix:

* ``A(n)`` (8n x n) is bilinear interpolation with ``align_corners=True``: output row ``i`` samples the
  input at ``s_i = i (n-1) / (8n-1)``, i.e. weight ``1 - frac(s_i)`` on ``floor(s_i)`` and
  ``frac(s_i)`` on ``floor(s_i) + 1``.
* ``D_u`` (n x 8n) is the DCT-II basis row ``u`` applied inside each block:
  ``D_u[p, 8p + a] = C[u, a]`` with ``C[u, a] = alpha_u cos(pi (2a + 1) u / 16)``, ``alpha_0 = 1/sqrt(8)``,
  otherwise ``1/2``.

The colour map commutes with the upsampling because bilinear weights sum to one, so it is applied to
the small image. The samples of block ``p`` lie in ``[8p (n-1)/(8n-1), (8p+7)(n-1)/(8n-1)]``, an
interval shorter than one pixel that starts at ``p - 7p/(8n-1) > p - 1``. So row ``p`` of ``M_u`` is
zero outside columns ``p-1, p, p+1``: every coefficient is a 3x3, separable stencil of the input
centred on pixel (p, q). Because of ``align_corners=True`` the sampling phase drifts across the image,
so the stencil weights depend on the position: this is *not* a convolution (a single conv kernel gives
a relative error of about 1). We tabulate the weights ``W_u[p, k] = M_u[p, p + k - 1]`` (k = 0, 1, 2;
zero outside the image) in float64 once per size, and evaluate

    F_c,uv[p, q] = sum_k sum_l W_u(H)[p, k] W_v(W)[q, l] Y_c[p + k - 1, q + l - 1]

6 multiply-adds per output value, only for the requested channels. On the CPU a compiled kernel
(``_stencil.c``, see :mod:`partialface.frequency_kernel`) produces each output row from three input
rows held in L1 and writes it once, at the speed the machine writes memory; elsewhere (no compiler at
install time, other devices or dtypes) six elementwise PyTorch passes over shifted views of the
zero-padded input do the same, on the CPU in chunks of the batch small enough to stay in cache.
Two other formulations were measured and rejected (``benchmarks/transform.py --alternatives``): the
dense matrices ``M_u`` through BLAS (a GEMM spends ~37x the arithmetic on the band's zeros) and
``torch.compile`` of the stencil graph (seconds of compilation per shape, no faster than eager).

The inverse (``to_image``, the reference ``idct_transform``: block IDCT, +128, YCbCr -> RGB, /255,
bilinear x1/8 with ``align_corners=True``, clamp) is also separable: output pixel ``i`` of the
downsampling reads position ``i (8n-1)/(n-1) = 8i + 7i/(n-1)``, which lies inside block ``i``, so pixel
(i, j) only needs the 64 coefficients of block (i, j): ``Y_c[i, j] = sum_uv R_u[i] R_v[j] F_c,uv[i, j]``.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch

from . import frequency_kernel

__all__ = [
    "BLOCK",
    "CHANNELS_PER_COLOUR",
    "NUM_CHANNELS",
    "to_frequency",
    "to_image",
    "scatter_channels",
    "channel_index",
    "validate_faces",
    "dct_matrix",
    "stencil_weights",
    "colour_map",
]

BLOCK = 8
CHANNELS_PER_COLOUR = BLOCK * BLOCK
NUM_CHANNELS = 3 * CHANNELS_PER_COLOUR

# JPEG (JFIF) full-range RGB -> YCbCr, without the +128 chroma offsets.
_RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
# Offsets of the centred planes for x in [-1, 1]: Y gets 127.5 * (.299 + .587 + .114) - 128; the
# chroma rows sum to 0, so their +128 cancels the -128.
_YCBCR_OFFSET = np.array([127.5 - 128.0, 0.0, 0.0])

# Values within this distance outside [-1, 1] are accepted (JPEG decoding and float rounding).
_RANGE_TOLERANCE = 1e-4


def channel_index(colour: int, u: int, v: int) -> int:
    """Channel number of colour ``colour`` (0=Y, 1=Cb, 2=Cr), vertical frequency ``u``, horizontal ``v``."""
    return colour * CHANNELS_PER_COLOUR + BLOCK * u + v


def dct_matrix(size: int = BLOCK) -> np.ndarray:
    """Orthonormal DCT-II matrix ``C[u, a]`` (float64): ``coeffs = C @ block @ C.T``."""
    a = np.arange(size)
    c = np.cos(np.pi * (2 * a[None, :] + 1) * a[:, None] / (2 * size)) * np.sqrt(2.0 / size)
    c[0] /= np.sqrt(2.0)
    return c


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Bilinear interpolation ``n_in -> n_out`` with ``align_corners=True`` as a (n_out, n_in) matrix."""
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    pos = np.arange(n_out) * scale
    lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    m[rows, lo] += 1.0 - frac
    hi = np.minimum(lo + 1, n_in - 1)
    m[rows, hi] += frac  # when lo is the last pixel frac is 0 (align_corners hits it exactly)
    return m


@functools.lru_cache(maxsize=32)
def _forward_stencil(n: int) -> np.ndarray:
    """Stencil weights ``W[u, p, k]`` (8, n, 3), float64: coefficient row p reads input rows p-1, p, p+1."""
    up = _interp_matrix(n, BLOCK * n)  # (8n, n)
    c = dct_matrix()
    # M[u, p, :] = sum_a C[u, a] * up[8p + a, :]
    m = np.einsum("ua,pai->upi", c, up.reshape(n, BLOCK, n))
    w = np.zeros((BLOCK, n, 3))
    for k in range(3):
        cols = np.arange(n) + k - 1
        ok = (cols >= 0) & (cols < n)
        w[:, ok, k] = m[:, np.arange(n)[ok], cols[ok]]
    # The 3 taps must hold the whole operator (see the module docstring).
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1
    assert np.abs(m[:, ~band]).max(initial=0.0) < 1e-12
    return w


@functools.lru_cache(maxsize=32)
def _inverse_weights(n: int) -> np.ndarray:
    """``R[u, i]`` (8, n), float64: pixel i of the x1/8 downsampled IDCT reads ``sum_u R[u, i] F_u[i]``."""
    down = _interp_matrix(BLOCK * n, n)  # (n, 8n); row i only touches block i
    c = dct_matrix()
    blocks = down.reshape(n, n, BLOCK)[np.arange(n), np.arange(n)]  # (n, 8): weights inside block i
    assert np.allclose(down.reshape(n, n, BLOCK).sum(axis=2), np.eye(n))
    return c @ blocks.T  # (8, n): sum_a C[u, a] * blocks[i, a]


def stencil_weights(n: int) -> np.ndarray:
    """``W[u, k, p]`` (8, 3, n) float64: coefficient row ``p`` of vertical frequency ``u`` reads input row ``p + k - 1``.

    The same table serves columns (with ``v`` for ``u``). For compiled kernels and exported graphs.
    """
    return np.ascontiguousarray(_forward_stencil(n).transpose(0, 2, 1))


def colour_map() -> np.ndarray:
    """(3, 4) float64: rows Y, Cb, Cr of the centred planes as ``weights @ rgb + offset`` for rgb in [-1, 1]."""
    return np.concatenate([_RGB_TO_YCBCR * 127.5, _YCBCR_OFFSET[:, None]], axis=1)


def _table(fn, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(fn(n), dtype=dtype, device=device)


def validate_faces(x: torch.Tensor, name: str = "x") -> None:
    """Check a batch of faces: (B,3,H,W) floating tensor, finite, values in [-1, 1]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B,3,H,W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B,3,H,W) (RGB faces), got {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating tensor with values in [-1,1], got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    lo, hi = (float(v) for v in torch.aminmax(x))  # one pass; NaN and inf show up in the extremes
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf values")
    if lo < -1 - _RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        raise ValueError(
            f"{name} values must lie in [-1,1] (RGB scaled as (pixel/255-0.5)/0.5), got min {lo:.4g}, max {hi:.4g}"
        )


def _ycbcr_planes(x: torch.Tensor) -> torch.Tensor:
    """``255 * (x/2 + 1/2)`` -> YCbCr -> -128, on the small image (commutes with the upsampling)."""
    k = torch.as_tensor(_RGB_TO_YCBCR, dtype=x.dtype, device=x.device) * 127.5
    ycc = torch.einsum("ck,bkhw->bchw", k, x)
    ycc += torch.as_tensor(_YCBCR_OFFSET, dtype=x.dtype, device=x.device)[:, None, None]
    return ycc


def _parse_channels(channels, batch: int, device: torch.device) -> torch.Tensor:
    if channels is None:
        return torch.arange(NUM_CHANNELS, device=device)
    if isinstance(channels, torch.Tensor):
        if channels.dtype.is_floating_point or channels.dtype == torch.bool:
            raise ValueError(f"channels must hold integer indices, got dtype {channels.dtype}")
        idx = channels.to(device=device, dtype=torch.long)
    else:
        try:
            idx = torch.as_tensor(list(channels), dtype=torch.long, device=device)
        except (TypeError, ValueError) as err:
            raise ValueError(f"channels must be a sequence of integers, got {channels!r}") from err
    if idx.dim() not in (1, 2) or idx.shape[-1] == 0:
        raise ValueError(f"channels must have shape (J,) or (B,J) with J >= 1, got {tuple(idx.shape)}")
    if idx.dim() == 2 and idx.shape[0] != batch:
        raise ValueError(f"per-sample channels have {idx.shape[0]} rows for a batch of {batch}")
    if int(idx.min()) < 0 or int(idx.max()) >= NUM_CHANNELS:
        raise ValueError(
            f"channel indices must lie in 0..{NUM_CHANNELS - 1}, got {int(idx.min())}..{int(idx.max())}"
        )
    return idx


def _chunk_size(planes_per_image: int, h: int, w: int, itemsize: int) -> int:
    """Images per chunk so that one intermediate stays around 1 MB (cache resident)."""
    per_image = max(1, planes_per_image * (h + 2) * (w + 2) * itemsize)
    return max(1, (1 << 20) // per_image)


def _same_frequencies_per_colour(idx: torch.Tensor) -> bool:
    """True when the channels are Y, Cb, Cr blocks of the same frequencies (PartialFace's layout)."""
    j = idx.shape[-1]
    if j % 3:
        return False
    per_colour = idx.reshape(*idx.shape[:-1], 3, j // 3)
    offsets = torch.arange(3, device=idx.device)[:, None] * CHANNELS_PER_COLOUR
    return bool((per_colour - offsets == per_colour[..., :1, :]).all())


def to_frequency(
    x: torch.Tensor,
    channels: Sequence[int] | torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    *,
    frequency_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Block-DCT frequency channels of faces, exactly as the reference pipeline, without upsampling.

    Args:
        x: (B,3,H,W) RGB faces in [-1, 1], float32 or float64 (any H, W; 112x112 by default).
        channels: indices into 0..191 (``colour*64 + 8u + v``) to compute, in that order: a list or a
            (J,) LongTensor shared by the batch, or a (B,J) LongTensor with one row per sample.
            ``None`` computes all 192.
        out: optional preallocated (B,J,H,W) output of x's dtype and device (reusing it avoids
            page faults on fresh memory in tight loops).
        frequency_scale: optional (192,) positive values; output channel ``k`` is divided by
            ``frequency_scale[channels[k]]`` (a model's per-frequency input scale, applied in the
            same pass instead of a second one over the output).

    Returns:
        (B,J,H,W) tensor of x's dtype and device (J = 192 when ``channels`` is None).

    On the CPU the fused compiled kernel (:mod:`partialface.frequency_kernel`) computes float32 and
    float64 when it is installed; other dtypes and devices take the PyTorch path, which gives the same
    values to float rounding. Neither records gradients (inputs that require them reach the PyTorch
    path, which says so, rather than a kernel that would silently drop them).
    """
    validate_faces(x)
    b, _, h, w = x.shape
    idx = _parse_channels(channels, b, x.device)
    j = idx.shape[-1]
    if out is None:
        out = frequency_kernel.empty((b, j, h, w), x.dtype, x.device)
    elif out.shape != (b, j, h, w) or out.dtype != x.dtype or out.device != x.device:
        raise ValueError(
            f"out must be a {x.dtype} tensor of shape {(b, j, h, w)} on {x.device}, "
            f"got {out.dtype} {tuple(out.shape)} on {out.device}"
        )
    if frequency_scale is not None:
        frequency_scale = torch.as_tensor(frequency_scale)
        if frequency_scale.shape != (NUM_CHANNELS,) or not bool((frequency_scale > 0).all()):
            raise ValueError(f"frequency_scale must hold {NUM_CHANNELS} positive values, got shape "
                             f"{tuple(frequency_scale.shape)}")
    gradients = torch.is_grad_enabled() and x.requires_grad
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not gradients and frequency_kernel.available():
        return frequency_kernel.run(x, idx, out, stencil_weights, colour_map(), frequency_scale)
    _stencil_passes(x, idx, out)
    if frequency_scale is not None:
        out.div_(frequency_scale.to(device=out.device, dtype=out.dtype)[idx][..., None, None])
    return out


def _stencil_passes(x: torch.Tensor, idx: torch.Tensor, out: torch.Tensor) -> None:
    """The PyTorch path of :func:`to_frequency`: six elementwise passes per output plane.

    On the CPU the batch goes in chunks whose intermediate stays in cache; on an accelerator in one
    chunk, since there each pass is a kernel launch and launches, not memory, are the cost.
    """
    b, _, h, w = x.shape
    per_sample = idx.dim() == 2
    j = idx.shape[-1]
    colour = idx // CHANNELS_PER_COLOUR
    u = (idx % CHANNELS_PER_COLOUR) // BLOCK
    v = idx % BLOCK
    stencil_h = _table(_forward_stencil, h, x.dtype, x.device).permute(2, 0, 1)  # (3 taps, 8, H)
    stencil_w = _table(_forward_stencil, w, x.dtype, x.device).permute(2, 0, 1)  # (3 taps, 8, W)
    if not per_sample:
        u, v, colour = u[None], v[None], colour[None]
    ycc = torch.nn.functional.pad(_ycbcr_planes(x), (1, 1, 1, 1))  # (B,3,H+2,W+2)

    if _same_frequencies_per_colour(idx):
        # The PartialFace layout: 3 colours x the same s frequencies. Broadcast each colour plane over
        # its s frequencies instead of copying it s times.
        s = j // 3
        u, v = u[:, :s], v[:, :s]
        row_w = stencil_h[:, u][:, :, None, :, :, None]  # (3, 1|B, 1, s, H, 1)
        col_w = stencil_w[:, v][:, :, None, :, None, :]  # (3, 1|B, 1, s, 1, W)
        source = ycc[:, :, None]  # (B, 3, 1, H+2, W+2)
        target = out.view(b, 3, s, h, w)
    else:
        row_w = stencil_h[:, u][..., None]  # (3, 1|B, J, H, 1)
        col_w = stencil_w[:, v][..., None, :]  # (3, 1|B, J, 1, W)
        source = None
        target = out

    step = _chunk_size(j, h, w, x.element_size()) if x.device.type == "cpu" else b
    rows_buffer = None  # one cache-resident intermediate, reused by every chunk
    for start in range(0, b, step):
        stop = min(b, start + step)
        batch = slice(start, stop) if per_sample else slice(0, 1)
        if source is not None:
            planes = source[start:stop]
        elif per_sample:
            planes = torch.gather(ycc[start:stop], 1, colour[batch, :, None, None].expand(-1, -1, h + 2, w + 2))
        else:
            planes = ycc[start:stop].index_select(1, colour[0])
        rw, cw = row_w[:, batch], col_w[:, batch]
        shape = torch.broadcast_shapes(planes[..., 0:h, :].shape, rw[0].shape)
        if rows_buffer is None or rows_buffer.shape != shape:
            rows_buffer = torch.empty(shape, dtype=x.dtype, device=x.device)
        rows = torch.mul(planes[..., 0:h, :], rw[0], out=rows_buffer)
        rows.addcmul_(planes[..., 1 : h + 1, :], rw[1])
        rows.addcmul_(planes[..., 2 : h + 2, :], rw[2])
        dst = target[start:stop]
        torch.mul(rows[..., 0:w], cw[0], out=dst)
        dst.addcmul_(rows[..., 1 : w + 1], cw[1])
        dst.addcmul_(rows[..., 2 : w + 2], cw[2])


def scatter_channels(
    values: torch.Tensor, channels: Sequence[int] | torch.Tensor, total: int = NUM_CHANNELS
) -> torch.Tensor:
    """Place (B,J,H,W) ``values`` at ``channels`` (shared (J,) or per-sample (B,J)) of ``total`` zero channels."""
    if values.dim() != 4:
        raise ValueError(f"values must have shape (B,J,H,W), got {tuple(values.shape)}")
    b, j, h, w = values.shape
    idx = _parse_channels(channels, b, values.device)
    if idx.shape[-1] != j:
        raise ValueError(f"{idx.shape[-1]} channel indices given for {j} channels")
    full = values.new_zeros((b, total, h, w))
    if idx.dim() == 1:
        full[:, idx] = values
    else:
        full.scatter_(1, idx[:, :, None, None].expand(-1, -1, h, w), values)
    return full


def to_image(freq: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_frequency`` (the reference's ``idct_transform``): (B,192,H,W) -> (B,3,H,W) in [0,1].

    Channels that were pruned or not sent are zeros (use :func:`scatter_channels`). The result is
    what an eavesdropper would see when viewing the frequency channels as an image.
    """
    if not isinstance(freq, torch.Tensor) or freq.dim() != 4 or freq.shape[1] != NUM_CHANNELS:
        shape = tuple(freq.shape) if isinstance(freq, torch.Tensor) else type(freq).__name__
        raise ValueError(f"freq must have shape (B,{NUM_CHANNELS},H,W), got {shape}")
    if not freq.dtype.is_floating_point:
        raise ValueError(f"freq must be a floating tensor, got dtype {freq.dtype}")
    if not bool(torch.isfinite(freq).all()):
        raise ValueError("freq contains NaN or inf values")
    b, _, h, w = freq.shape
    ru = _table(_inverse_weights, h, freq.dtype, freq.device)  # (8,H)
    rv = _table(_inverse_weights, w, freq.dtype, freq.device)  # (8,W)
    coeffs = freq.view(b, 3, BLOCK, BLOCK, h, w)
    ycc = torch.einsum("bcuvhw,uh,vw->bchw", coeffs, ru, rv)
    ycc[:, 0] += 128.0  # undo the -128 on Y; chroma planes are already centred
    rgb = torch.einsum("ck,bkhw->bchw", torch.as_tensor(_YCBCR_TO_RGB, dtype=freq.dtype, device=freq.device), ycc)
    return (rgb / 255.0).clamp_(0.0, 1.0)
