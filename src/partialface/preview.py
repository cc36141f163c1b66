"""Pictures of protected faces: the original, what was sent, and what an eavesdropper could view.

A preview sheet per face has four panels:

1. the original 112x112 crop;
2. the inverse transform of what was sent (unsent and pruned channels are zero), as the reference's
   ``idct_transform`` would show it;
3. the same, contrast-stretched (an eavesdropper would do this);
4. the sent channels as a tile grid (one tile per channel, each mapped to grey around zero).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .atomic import atomic_write

__all__ = ["tensor_to_pil", "channel_grid", "stretch_contrast", "preview_sheet", "save_png"]


def tensor_to_pil(img: torch.Tensor, scale: int = 1) -> Image.Image:
    """(3,H,W) or (H,W) in [0,1] -> PIL image, enlarged ``scale`` times (nearest)."""
    arr = (img.detach().float().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    pil = Image.fromarray(arr.transpose(1, 2, 0) if arr.ndim == 3 else arr)
    if scale != 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    return pil


def stretch_contrast(img: torch.Tensor, low: float = 0.01, high: float = 0.99) -> torch.Tensor:
    """Map the [low, high] quantiles of an image (3,H,W) to [0,1]."""
    lo, hi = torch.quantile(img.float().flatten(), torch.tensor([low, high]))
    return ((img - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)


def channel_grid(channels: torch.Tensor, columns: int | None = None, pad: int = 2) -> torch.Tensor:
    """(C,H,W) signed channels -> one grey (H', W') tile image; each channel scaled by its own max |value|."""
    c, h, w = channels.shape
    columns = columns or min(c, 9)
    rows = math.ceil(c / columns)
    peak = channels.abs().flatten(1).amax(1).clamp_min(1e-12)
    tiles = 0.5 + 0.5 * channels / peak[:, None, None]
    grid = torch.ones(rows * (h + pad) - pad, columns * (w + pad) - pad)
    for k in range(c):
        r, q = divmod(k, columns)
        grid[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = tiles[k]
    return grid


def preview_sheet(original: torch.Tensor, sent: torch.Tensor, eavesdropper_view: torch.Tensor, title: str = "") -> Image.Image:
    """Compose the four-panel sheet (see the module docstring).

    Args:
        original: (3,H,W) face in [-1,1].
        sent: (C,H,W) what the client sends (C = 27 for PartialFace).
        eavesdropper_view: (3,H,W) in [0,1], the inverse transform of ``sent``.
    """
    h = original.shape[-2]
    scale = 2
    panels = [
        ("original", tensor_to_pil(original * 0.5 + 0.5, scale)),
        ("inverse of what was sent", tensor_to_pil(eavesdropper_view, scale)),
        ("same, contrast-stretched", tensor_to_pil(stretch_contrast(eavesdropper_view), scale)),
    ]
    grid = tensor_to_pil(channel_grid(sent))
    grid_scale = max(1, (h * scale) // grid.height)
    grid = grid.resize((grid.width * grid_scale, grid.height * grid_scale), Image.NEAREST)
    panels.append((f"the {sent.shape[0]} sent channels", grid))
    band, gap = 18, 8
    width = sum(p.width for _, p in panels) + gap * (len(panels) + 1)
    height = max(p.height for _, p in panels) + 2 * band + gap
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((gap, 3), title, fill="black")
    x = gap
    for label, panel in panels:
        draw.text((x, band + 2), label, fill="black")
        sheet.paste(panel, (x, 2 * band))
        x += panel.width + gap
    return sheet


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write a PNG atomically."""
    with atomic_write(path) as fh:
        image.save(fh, format="PNG")
    return Path(path)
