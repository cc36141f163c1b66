"""Threat models of the reconstruction attacks: what the attacker trains on and what it attacks.

A :class:`Scenario` names an encoder (``partialface``, ``pruned``, ``fixed``, ``frequency``,
``rgb``) and a threat model:

``black-box``
    The attacker does not know the deployment's channel plan.  It draws a plan of its own
    (:meth:`ChannelPlan.generate` with another seed, same ``m`` and ``n``), trains on random query
    ranks of that plan, and attacks inputs made with the real plan.  Needs an encoder with a plan.
``white-box``
    The attacker knows the candidate subsets and permutations but not which rank a query used: it
    trains on uniformly random ranks of the real plan.  For the baselines, which send a fixed
    transform, this is simply "the attacker knows the transform".
``enhanced-white-box``
    PartialFace only: one attacker per rank.  Every query is reconstructed by all of them and the
    attacker keeps one reconstruction per query by a criterion it can compute without the ground
    truth (:func:`rank_consistency_error`: how well the reconstruction, re-encoded under that
    attacker's rank, reproduces the observed input; :func:`total_variation`: natural-image
    smoothness; or ``identified``: the rank named by a classifier the attacker fits on its own faces
    under every rank, :class:`partialface.models.rank_keyed.RankIdentifier`).  The best reconstruction by SSIM against the true face is reported as an upper
    bound (``enhanced-white-box-oracle``), never as the attack's result.

Victim inputs are always made with the deployment's encoder at query time (one uniformly random
rank per query for PartialFace), from a seeded generator, so every threat model of an encoder
attacks the same queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..encoders import InputEncoder, PartialFaceEncoder, get_encoder, list_encoders
from ..errors import PartialFaceError
from ..plan import ChannelPlan

BLACK_BOX = "black-box"
WHITE_BOX = "white-box"
ENHANCED_WHITE_BOX = "enhanced-white-box"
ENHANCED_ORACLE = "enhanced-white-box-oracle"
THREAT_MODELS = (BLACK_BOX, WHITE_BOX, ENHANCED_WHITE_BOX)
SELECTION_CRITERIA = ("consistency", "smoothness", "identified")


@dataclass(frozen=True)
class Scenario:
    """One attack: an encoder under a threat model, written ``encoder/threat``."""

    encoder: str
    threat: str

    def __post_init__(self) -> None:
        if self.encoder not in list_encoders():
            raise PartialFaceError(f"unknown encoder {self.encoder!r} in attack scenario; known: {', '.join(list_encoders())}")
        if self.threat not in THREAT_MODELS:
            raise PartialFaceError(f"unknown threat model {self.threat!r}; known: {', '.join(THREAT_MODELS)}")
        if self.threat == ENHANCED_WHITE_BOX and self.encoder != "partialface":
            raise PartialFaceError(f"{self.threat} needs per-query ranks; only 'partialface' has them, not {self.encoder!r}")
        if self.threat == BLACK_BOX and self.encoder not in ("partialface", "fixed"):
            raise PartialFaceError(f"{self.threat} needs a secret channel plan; {self.encoder!r} has none to hide "
                             "(use white-box)")

    @property
    def key(self) -> str:
        """``encoder/threat``, the scenario's name in reports and on the command line."""
        return f"{self.encoder}/{self.threat}"

    @classmethod
    def parse(cls, text: str) -> "Scenario":
        """Read ``encoder/threat`` (``encoder`` alone means white-box)."""
        encoder, _, threat = text.strip().partition("/")
        return cls(encoder, threat or WHITE_BOX)


DEFAULT_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("partialface", BLACK_BOX),
    Scenario("partialface", WHITE_BOX),
    Scenario("partialface", ENHANCED_WHITE_BOX),
    Scenario("pruned", WHITE_BOX),
    Scenario("fixed", WHITE_BOX),
    Scenario("frequency", WHITE_BOX),
    Scenario("rgb", WHITE_BOX),
)


@dataclass
class VictimInputs:
    """What the deployment sends for the victims' faces.

    Attributes:
        encoded: (V, C, H, W) encoder output.
        channels: frequency channels of each input ((V, J) or shared (J,)), None for RGB; needed for
            previews.
        ranks: (V,) rank index ``subset * n + permutation`` of each query (PartialFace), else None.
            Never given to an attacker: used only to report how often a selection picked the true rank.
    """

    encoded: torch.Tensor
    channels: torch.Tensor | None
    ranks: torch.Tensor | None


class ThreatModel:
    """How one scenario's attacker builds its training inputs and how the victims' inputs are made.

    Args:
        scenario: encoder and threat model.
        deployment_plan: the deployment's secret channel plan.
        attacker_plan_seed: seed of the black-box attacker's own plan; must give a plan other than
            the deployment's.
    """

    def __init__(self, scenario: Scenario, deployment_plan: ChannelPlan, attacker_plan_seed: int = 2024) -> None:
        self.scenario = scenario
        self.deployment_plan = deployment_plan
        self.deployment: InputEncoder = get_encoder(scenario.encoder, plan=deployment_plan)
        self.attacker_plan: ChannelPlan | None = self.deployment.plan
        if scenario.threat == BLACK_BOX:
            own_plan = ChannelPlan.generate(attacker_plan_seed, m=deployment_plan.m, n=deployment_plan.n,
                                            pruned=deployment_plan.pruned)
            if own_plan.fingerprint == deployment_plan.fingerprint:
                raise PartialFaceError(f"attacker plan seed {attacker_plan_seed} reproduces the deployment plan "
                                 f"{deployment_plan.fingerprint}; a black-box attacker must not know it")
            self.attacker_plan = own_plan
        self.attacker_encoder: InputEncoder = get_encoder(scenario.encoder, plan=self.attacker_plan)

    @property
    def in_channels(self) -> int:
        """Channels of the inputs the attacker sees."""
        return self.deployment.out_channels

    @property
    def num_ranks(self) -> int:
        """Ranks of the deployment plan (one attacker each under the enhanced white-box threat)."""
        return self.deployment_plan.num_ranks

    def attacker_inputs(self, faces: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Training inputs of the scenario's (single) attacker for its own faces in [-1, 1]."""
        return self.attacker_encoder.encode_query(faces, generator)

    def rank_inputs(self, faces: torch.Tensor, rank: int) -> torch.Tensor:
        """Inputs of one deployment rank (enhanced white-box attacker ``rank``)."""
        encoder = self._partialface()
        subset, permutation = divmod(int(rank), self.deployment_plan.n)
        if not 0 <= subset < self.deployment_plan.m:
            raise ValueError(f"rank {rank} is outside 0..{self.num_ranks - 1}")
        return encoder.encode_rank(faces, subset, permutation)

    def victim_inputs(self, faces: torch.Tensor, generator: torch.Generator) -> VictimInputs:
        """The deployment's query inputs for the victims' faces (random ranks drawn from ``generator``)."""
        if isinstance(self.deployment, PartialFaceEncoder):
            subset, permutation = self.deployment_plan.sample_query_ranks(faces.shape[0], generator)
            channels = self.deployment_plan.channels(subset, permutation)
            return VictimInputs(self.deployment.encode(faces, channels), channels,
                                subset * self.deployment_plan.n + permutation)
        channels = self.deployment.channels_for_query(faces.shape[0], generator)
        return VictimInputs(self.deployment.encode(faces, channels), channels, None)

    def preview(self, victims: VictimInputs) -> torch.Tensor:
        """What an eavesdropper sees when viewing the victims' inputs as images, (V, 3, H, W) in [0, 1]."""
        return self.deployment.to_preview(victims.encoded, victims.channels)

    def describe(self) -> str:
        """One sentence on what this attacker knows, for reports."""
        plan = self.deployment_plan.fingerprint
        if self.scenario.threat == BLACK_BOX:
            return (f"trains on random ranks of its own plan {self.attacker_plan.fingerprint}; "
                    f"victims use the deployment plan {plan}")
        if self.scenario.threat == ENHANCED_WHITE_BOX:
            return f"one attacker per rank of plan {plan} ({self.num_ranks}), best per query by a blind criterion"
        if self.scenario.encoder == "partialface":
            return f"trains on uniformly random ranks of the deployment plan {plan}"
        return "knows the (fixed) transform"

    def _partialface(self) -> PartialFaceEncoder:
        if not isinstance(self.deployment, PartialFaceEncoder):
            raise ValueError(f"per-rank inputs need the partialface encoder, not {self.scenario.encoder!r}")
        return self.deployment


def rank_consistency_error(threat: ThreatModel, reconstruction: torch.Tensor, observed: torch.Tensor, rank: int,
                           channel_scale: torch.Tensor) -> torch.Tensor:
    """Blind selection criterion: (B,) mean squared, per-channel scaled difference between the observed
    input and the reconstruction re-encoded under ``rank`` (lower = more plausible that the query used it).

    ``channel_scale`` (C,) is the attacker's own estimate of each input channel's spread under that rank.
    """
    reencoded = threat.rank_inputs(reconstruction.clamp(-1.0, 1.0), rank)
    scale = channel_scale.to(observed.device, observed.dtype).view(1, -1, 1, 1)
    return ((reencoded - observed) / scale).pow(2).mean(dim=(1, 2, 3))


def total_variation(reconstruction: torch.Tensor) -> torch.Tensor:
    """Blind selection criterion: (B,) mean absolute difference of neighbouring pixels (lower = smoother)."""
    dx = (reconstruction[..., :, 1:] - reconstruction[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (reconstruction[..., 1:, :] - reconstruction[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy
