"""The two networks a deployment exports, written as plain PyTorch modules that ``torch.export`` traces.

* :class:`TemplateNetwork`, the server's half: protected channels (B, C, H, W) -> L2-normalised
  templates (B, D), exactly what :meth:`partialface.api.FaceModel.embed_protected` returns.
* :class:`ClientTransform`, the client's half: RGB faces (B, 3, H, W) in [-1, 1] and one rank per face
  (B,) int64 -> the channels that rank sends, divided by the model's per-frequency scale, exactly what
  ``encoder.encode_rank`` returns. The plan's channel table and the scale are constants of the graph, so
  a client in another language only draws a random integer in ``0 .. m*n - 1`` per face
  (rank = subset * n + permutation, as :meth:`ChannelPlan.sample_query_ranks` draws it).

The client transform is the 3x3-stencil form of :mod:`partialface.frequency` (gathers and elementwise
products, about 10 multiply-adds per sent value), not the dense-matrix form, which would cost 224 per
value: on a phone the stencil is what fits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..encoders import FrequencyEncoder
from ..frequency import BLOCK, CHANNELS_PER_COLOUR, colour_map, stencil_weights

__all__ = ["TemplateNetwork", "ClientTransform"]


class TemplateNetwork(torch.nn.Module):
    """A backbone followed by L2 normalisation: protected inputs -> unit templates."""

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, sent: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone(sent).float(), dim=1)


class ClientTransform(torch.nn.Module):
    """RGB faces and ranks -> the scaled channels of each face's rank (see the module docstring)."""

    def __init__(self, encoder: FrequencyEncoder, size: tuple[int, int]):
        super().__init__()
        plan = encoder.plan
        if plan is None:
            raise ValueError(f"encoder {encoder.name!r} has no channel plan: there is no rank to choose")
        h, w = size
        table = plan._channel_table().reshape(plan.m * plan.n, plan.out_channels)  # rank -> channels
        self.register_buffer("channel_table", table.clone())
        self.register_buffer("colour", torch.as_tensor(colour_map(), dtype=torch.float32))
        self.register_buffer("rows", torch.as_tensor(stencil_weights(h), dtype=torch.float32))  # (8, 3, H)
        self.register_buffer("cols", torch.as_tensor(stencil_weights(w), dtype=torch.float32))  # (8, 3, W)
        self.register_buffer("gain", (1.0 / encoder.frequency_scale.double()).float())  # (192,)

    def forward(self, faces: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
        b, _, h, w = faces.shape
        channels = self.channel_table[rank]  # (B, J)
        ycc = torch.einsum("ck,bkhw->bchw", self.colour[:, :3], faces) + self.colour[:, 3, None, None]
        ycc = F.pad(ycc, (1, 1, 1, 1)).reshape(b * 3, h + 2, w + 2)
        colour = channels // CHANNELS_PER_COLOUR
        u = (channels % CHANNELS_PER_COLOUR) // BLOCK
        v = channels % BLOCK
        image = torch.arange(b, device=faces.device)[:, None]
        planes = ycc[image * 3 + colour]  # (B, J, H+2, W+2)
        row_taps = self.rows[u] * self.gain[channels][..., None, None]  # (B, J, 3, H)
        col_taps = self.cols[v]  # (B, J, 3, W)
        rows = (planes[:, :, 0:h] * row_taps[:, :, 0, :, None]
                + planes[:, :, 1 : h + 1] * row_taps[:, :, 1, :, None]
                + planes[:, :, 2 : h + 2] * row_taps[:, :, 2, :, None])
        return (rows[..., 0:w] * col_taps[:, :, 0, None, :]
                + rows[..., 1 : w + 1] * col_taps[:, :, 1, None, :]
                + rows[..., 2 : w + 2] * col_taps[:, :, 2, None, :])
