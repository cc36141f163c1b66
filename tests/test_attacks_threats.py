"""Threat models: what each attacker trains on and what the victims send."""

from __future__ import annotations

import pytest
import torch

from partialface.attacks.threats import (
    DEFAULT_SCENARIOS,
    Scenario,
    ThreatModel,
    rank_consistency_error,
    total_variation,
)
from partialface.encoders import get_encoder
from partialface.frequency import to_frequency
from partialface.plan import ChannelPlan

from ._attack_fixtures import smooth_faces

PLAN = ChannelPlan.tface()


def _generator(seed: int = 5) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_scenarios_parse_and_validate() -> None:
    assert Scenario.parse("pruned") == Scenario("pruned", "white-box")
    assert Scenario.parse("partialface/black-box").key == "partialface/black-box"
    with pytest.raises(ValueError, match="unknown encoder"):
        Scenario.parse("duetface/white-box")
    with pytest.raises(ValueError, match="unknown threat model"):
        Scenario.parse("partialface/grey-box")
    with pytest.raises(ValueError, match="only 'partialface'"):
        Scenario("pruned", "enhanced-white-box")
    with pytest.raises(ValueError, match="needs a secret channel plan"):
        Scenario("rgb", "black-box")
    assert {s.encoder for s in DEFAULT_SCENARIOS} == {"partialface", "pruned", "fixed", "frequency", "rgb"}


def test_black_box_trains_on_its_own_plan_and_attacks_the_real_one() -> None:
    threat = ThreatModel(Scenario("partialface", "black-box"), PLAN, attacker_plan_seed=7)
    own = threat.attacker_plan
    assert own.fingerprint != PLAN.fingerprint and (own.m, own.n) == (PLAN.m, PLAN.n)
    faces = smooth_faces(4, 16)
    subset, permutation = own.sample_query_ranks(4, _generator())
    expected = to_frequency(faces, own.channels(subset, permutation))
    assert torch.allclose(threat.attacker_inputs(faces, _generator()), expected)
    victims = threat.victim_inputs(faces, _generator())
    real_table = PLAN.channels(*PLAN.sample_query_ranks(4, _generator()))
    assert torch.equal(victims.channels, real_table)
    assert torch.allclose(victims.encoded, to_frequency(faces, real_table))
    with pytest.raises(ValueError, match="must not know"):
        ThreatModel(Scenario("partialface", "black-box"), ChannelPlan.generate(7), attacker_plan_seed=7)


def test_white_box_trains_on_random_ranks_of_the_real_plan() -> None:
    threat = ThreatModel(Scenario("partialface", "white-box"), PLAN)
    faces = smooth_faces(6, 16)
    channels = PLAN.channels(*PLAN.sample_query_ranks(6, _generator()))
    assert torch.allclose(threat.attacker_inputs(faces, _generator()), to_frequency(faces, channels))
    victims = threat.victim_inputs(faces, _generator(9))
    subset, permutation = PLAN.sample_query_ranks(6, _generator(9))
    assert torch.equal(victims.ranks, subset * PLAN.n + permutation)
    preview = threat.preview(victims)
    assert preview.shape == faces.shape and float(preview.min()) >= 0 and float(preview.max()) <= 1


def test_enhanced_white_box_has_one_input_per_rank() -> None:
    threat = ThreatModel(Scenario("partialface", "enhanced-white-box"), PLAN)
    faces = smooth_faces(2, 16)
    assert threat.num_ranks == PLAN.m * PLAN.n
    for rank in (0, threat.num_ranks - 1):
        subset, permutation = divmod(rank, PLAN.n)
        assert torch.allclose(threat.rank_inputs(faces, rank), PLAN.protect(faces, subset, permutation))
    with pytest.raises(ValueError, match="outside"):
        threat.rank_inputs(faces, threat.num_ranks)


@pytest.mark.parametrize("encoder,channels", [("pruned", 162), ("fixed", 27), ("frequency", 192), ("rgb", 3)])
def test_baselines_attack_their_fixed_transform(encoder: str, channels: int) -> None:
    threat = ThreatModel(Scenario(encoder, "white-box"), PLAN)
    faces = smooth_faces(2, 16)
    assert threat.in_channels == channels
    trained_on = threat.attacker_inputs(faces, _generator())
    victims = threat.victim_inputs(faces, _generator(3))
    assert victims.ranks is None
    assert torch.allclose(trained_on, victims.encoded)
    assert torch.allclose(victims.encoded, get_encoder(encoder, plan=PLAN).encode_query(faces))
    with pytest.raises(ValueError, match="partialface encoder"):
        threat.rank_inputs(faces, 0)


def test_rank_consistency_prefers_the_rank_that_made_the_input() -> None:
    threat = ThreatModel(Scenario("partialface", "enhanced-white-box"), PLAN)
    faces = smooth_faces(3, 16)
    observed = threat.rank_inputs(faces, 4)
    scale = torch.ones(observed.shape[1])
    errors = torch.stack([rank_consistency_error(threat, faces, observed, rank, scale)
                          for rank in range(threat.num_ranks)])
    assert torch.all(errors[4] < 1e-6)
    assert torch.equal(errors.argmin(dim=0), torch.full((3,), 4))


def test_total_variation_ranks_smooth_images_first() -> None:
    smooth = smooth_faces(2, 16)
    noisy = (smooth + 0.3 * torch.randn(smooth.shape, generator=_generator())).clamp(-1, 1)
    assert torch.all(total_variation(smooth) < total_variation(noisy))
