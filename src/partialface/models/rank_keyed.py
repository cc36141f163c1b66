"""A backbone that recognises which rank of the plan it was sent and keys its input weights by frequency.

A PartialFace query is one rank of the plan: ``S`` frequency channels in one of ``m * n`` (subset,
permutation) arrangements. A plain backbone's first convolution sees channel slot ``j`` carry a different
frequency in every rank, so one set of weights must serve 18 inputs of each face (docs/results.md,
section 3, measures what that costs: the permutations 0.5-1.7 points, the subsets most of the rest).

The rank is not hidden by the data: each DCT frequency has its own amplitude profile and its own
horizontal/vertical texture, and a linear classifier on four statistics per channel names the rank of a
face it has never seen (held-out accuracy in the run log; 100 % on the published plan's 18 ranks). This
module does that first (:meth:`RankKeyedBackbone.identify`), then maps the sent channels through a 1x1
projection whose weights belong to *frequencies*, not slots (``key_weight``, one column per channel the
plan can send), and hands the result to an ordinary backbone. Each frequency's column is trained by
every sample that carries it, in whatever slot, and the permutation costs nothing.

Privacy is unchanged: what an attacker can recover depends on the channels a client sends, and an
attacker can name the rank as easily as this module can (:class:`RankIdentifier`; docs/frontier.md
measures the enhanced attack that does). The identifier is a fitted
part of the model (:meth:`fit_identifier`, before training, on training faces), stored with its weights,
so training and queries take the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from .backbone import Backbone
from .registry import get_model, register_model

__all__ = ["RankIdentifier", "RankKeyedBackbone", "rank_feature_table", "rank_features"]

_FEATURES_PER_CHANNEL = 4
_FEATURE_CHUNK = 16  # faces per pass: their channels stay in the CPU's cache between the four statistics


def rank_features(sent: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Four statistics per sent channel (B, 4*S): what tells one frequency from another.

    Log mean magnitude, log of mean square over squared mean magnitude (how peaked the coefficients
    are), and the log ratios of mean horizontal and vertical differences to the mean magnitude (the
    frequency's texture across neighbouring blocks). Computed a few faces at a time with norms rather
    than temporaries of the whole batch: the rank-keyed backbone runs this on every input, and on this
    2-core machine with a second job beside it the whole-batch form took 0.47 s of a 3.2 s training step,
    this one 0.12 s (same values up to float rounding; on an idle core the two cost about the same).
    """
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
        return _rank_features(sent, eps)  # one graph for any batch size (the loop would fix it)
    if sent.shape[0] == 0:
        return sent.new_zeros(0, _FEATURES_PER_CHANNEL * sent.shape[1], dtype=torch.float32)
    return torch.cat([_rank_features(sent[start:start + _FEATURE_CHUNK], eps)
                      for start in range(0, sent.shape[0], _FEATURE_CHUNK)])


def _rank_features(sent: torch.Tensor, eps: float) -> torch.Tensor:
    x = sent.float()
    height, width = x.shape[-2:]
    norm = torch.linalg.vector_norm
    magnitude = (norm(x, 1, dim=(2, 3)) / (height * width)).clamp_min(eps).log()
    peak = (norm(x, 2, dim=(2, 3)).square() / (height * width)).clamp_min(eps).log() - 2 * magnitude
    across = (norm(torch.diff(x, dim=3), 1, dim=(2, 3)) / (height * (width - 1))).clamp_min(eps).log() - magnitude
    down = (norm(torch.diff(x, dim=2), 1, dim=(2, 3)) / ((height - 1) * width)).clamp_min(eps).log() - magnitude
    return torch.cat([magnitude, peak, across, down], dim=1)


def rank_feature_table(faces: torch.Tensor, encode_rank: Callable[[torch.Tensor, int], torch.Tensor], num_ranks: int,
                       chunk: int = 32) -> torch.Tensor:
    """(R, N, 4*S) :func:`rank_features` of ``faces`` (N,3,H,W) sent under each rank ``0 .. R-1``
    (``encode_rank(faces, rank)``), ``chunk`` faces at a time: the training set of a :class:`RankIdentifier`."""
    with torch.no_grad():
        return torch.stack([torch.cat([rank_features(encode_rank(faces[start:start + chunk], rank))
                                       for start in range(0, faces.shape[0], chunk)]) for rank in range(num_ranks)])


@dataclass(frozen=True)
class RankIdentifier:
    """Multinomial logistic regression from :func:`rank_features` to the rank of the plan that was sent.

    Also what an attacker who knows the plan can fit on its own faces (``partialface attack --criterion
    identified``): the rank of a query is not a secret of the data.
    """

    mean: torch.Tensor  # (F,) feature standardisation
    std: torch.Tensor
    weight: torch.Tensor  # (R, F)
    bias: torch.Tensor  # (R,)

    @classmethod
    @torch.enable_grad()
    def fit(cls, features: torch.Tensor, ranks: torch.Tensor, num_ranks: int, steps: int = 200,
            l2: float = 1e-3) -> "RankIdentifier":
        """Fit by full-batch L-BFGS on ``features`` (N, F) of inputs with known ``ranks`` (N,) in
        ``0 .. num_ranks - 1``: deterministic for fixed inputs."""
        features = features.detach().double()
        ranks = torch.as_tensor(ranks, dtype=torch.long, device=features.device)
        mean, std = features.mean(dim=0), features.std(dim=0).clamp_min(1e-6)
        z = (features - mean) / std
        weight = torch.zeros(num_ranks, z.shape[1], dtype=torch.float64, device=z.device, requires_grad=True)
        bias = torch.zeros(num_ranks, dtype=torch.float64, device=z.device, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(z @ weight.t() + bias, ranks) + l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(mean.float(), std.float(), weight.detach().float(), bias.detach().float())

    def identify_features(self, features: torch.Tensor) -> torch.Tensor:
        """(B,) the most likely rank of each row of ``features`` (B, F)."""
        z = (features - self.mean) / self.std
        return (z @ self.weight.t() + self.bias).argmax(dim=1)

    def identify(self, sent: torch.Tensor) -> torch.Tensor:
        """(B,) the most likely rank of each sent tensor (B, S, H, W)."""
        return self.identify_features(rank_features(sent))


class RankKeyedBackbone(Backbone):
    """Identify the rank, project the sent channels with per-frequency weights, embed with ``backbone``.

    Args:
        rank_channels: for each rank, the channel ids (any integers naming frequencies, e.g. indices into
            the 192 DCT channels) in the order the client sends them; all ranks send ``S`` channels.
        backbone: name of the inner backbone (``mobilefacenet_fast``, ``ir18``, ...).
        in_channels: ``S``, the channels of one sent rank.
        embedding_size, input_size: as every backbone.
        keyed_channels: outputs of the per-frequency projection (the inner backbone's input channels;
            default ``S``).
        **options: further keyword options of the inner backbone.
    """

    def __init__(self, rank_channels: Sequence[Sequence[int]], backbone: str = "mobilefacenet_fast",
                 in_channels: int = 27, embedding_size: int = 512, input_size: int = 112,
                 keyed_channels: int | None = None, **options: Any) -> None:
        super().__init__(in_channels, embedding_size, input_size)
        table = [[int(c) for c in row] for row in rank_channels]
        if not table or any(len(row) != in_channels for row in table):
            raise ValueError(f"RankKeyedBackbone: rank_channels must list {in_channels} channels for each rank, "
                             f"got lengths {sorted({len(row) for row in table})}")
        if any(len(set(row)) != len(row) for row in table):
            raise ValueError("RankKeyedBackbone: a rank of rank_channels sends one channel twice")
        keys = sorted({c for row in table for c in row})
        position = {c: i for i, c in enumerate(keys)}
        self.num_ranks = len(table)
        self.keyed_channels = in_channels if keyed_channels is None else keyed_channels
        if not isinstance(self.keyed_channels, int) or self.keyed_channels < 1:
            raise ValueError(f"RankKeyedBackbone: keyed_channels must be an integer >= 1, got {keyed_channels!r}")
        self.register_buffer("positions", torch.tensor([[position[c] for c in row] for row in table]))
        # Identity on the first rank of each group of channels: at initialisation every rank is mapped
        # onto the slots of the rank sending the same channels in the first order seen (the permutation
        # undone), so training starts where a plain backbone on unpermuted subsets would. With more
        # keyed channels than sent ones, the groups (the plan's subsets) take turns over blocks of S
        # slots, so that subsets start on stem filters of their own (keyed_channels = m * S: none shared).
        weight = torch.zeros(self.keyed_channels, len(keys))
        groups: dict[frozenset[int], int] = {}  # channel set -> order of first appearance
        blocks = max(1, self.keyed_channels // in_channels)
        for row in table:
            group = groups.setdefault(frozenset(row), len(groups))
            offset = in_channels * (group % blocks)
            for slot, c in enumerate(row):
                if offset + slot < self.keyed_channels and not bool(weight[:, position[c]].any()):
                    weight[offset + slot, position[c]] = 1.0
        self.key_weight = nn.Parameter(weight)
        features = _FEATURES_PER_CHANNEL * in_channels
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.register_buffer("identifier_weight", torch.zeros(self.num_ranks, features))
        self.register_buffer("identifier_bias", torch.zeros(self.num_ranks))
        self.backbone = get_model(backbone, in_channels=self.keyed_channels, embedding_size=embedding_size,
                                  input_size=input_size, **options)

    # ----------------------------------------------------------------- the rank identifier
    def identify_features(self, features: torch.Tensor) -> torch.Tensor:
        """(B,) the most likely rank of each row of :func:`rank_features` (B, 4*S)."""
        return self.identifier().identify_features(features)

    def identify(self, sent: torch.Tensor) -> torch.Tensor:
        """(B,) the rank each sent tensor (B, S, H, W) most likely is (an index into ``rank_channels``)."""
        return self.identifier().identify(sent)

    def identifier(self) -> "RankIdentifier":
        """The fitted identifier, as a :class:`RankIdentifier` sharing this model's tensors."""
        return RankIdentifier(self.feature_mean, self.feature_std, self.identifier_weight, self.identifier_bias)

    def fit_identifier(self, features: torch.Tensor, ranks: torch.Tensor) -> None:
        """Fit the identifier on :func:`rank_features` of training faces encoded with known ``ranks``."""
        fitted = RankIdentifier.fit(features, ranks, self.num_ranks)
        with torch.no_grad():
            for mine, value in zip((self.feature_mean, self.feature_std, self.identifier_weight, self.identifier_bias),
                                   (fitted.mean, fitted.std, fitted.weight, fitted.bias)):
                mine.copy_(value)

    # ----------------------------------------------------------------- the network
    def keyed_input(self, sent: torch.Tensor, ranks: torch.Tensor | None = None) -> torch.Tensor:
        """The per-frequency projection of the sent channels (B, keyed_channels, H, W); ``ranks`` default
        to :meth:`identify`'s."""
        if ranks is None:
            ranks = self.identify(sent)
        weights = self.key_weight[:, self.positions[ranks]]  # (K_out, B, S)
        return torch.einsum("obs,bshw->bohw", weights.to(sent.dtype), sent)

    def forward(self, sent: torch.Tensor) -> torch.Tensor:
        self.check_input(sent)
        return self.backbone(self.keyed_input(sent))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ranks={self.num_ranks}, keys={self.key_weight.shape[1]}"


@register_model("rank_keyed")
def rank_keyed(rank_channels: Sequence[Sequence[int]], backbone: str = "mobilefacenet_fast", in_channels: int = 27,
               embedding_size: int = 512, input_size: int = 112, **options: Any) -> RankKeyedBackbone:
    """:class:`RankKeyedBackbone` around the backbone named ``backbone``."""
    return RankKeyedBackbone(rank_channels, backbone, in_channels, embedding_size, input_size, **options)
