"""The attack harness end to end on small synthetic faces (tiny budget), checkpoints and reports."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from partialface.attacks import (
    BUDGET_PRESETS,
    AttackBudget,
    AttackSettings,
    run_attacks,
    train_attacker,
)
from partialface.attacks.budget import check_budget_fits
from partialface.attacks.losses import ReconstructionLoss
from partialface.attacks.report import GRID_NAME, JSON_NAME, MARKDOWN_NAME, write_privacy_outputs
from partialface.attacks.threats import DEFAULT_SCENARIOS, Scenario, ThreatModel
from partialface.attacks.training import config_hash, stable_seed
from partialface.attacks.unet import ReconstructionUNet
from partialface.errors import PartialFaceError
from partialface.plan import ChannelPlan

from ._attack_fixtures import (
    synthetic_attacker,
    synthetic_victims,
)

TINY = BUDGET_PRESETS["tiny"]
SMALL_PLAN = ChannelPlan.generate(3, m=3, n=2)  # 6 ranks of 18 frequencies: keeps the enhanced attack quick


def test_budget_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="steps"):
        AttackBudget(steps=0)
    with pytest.raises(ValueError, match="learning_rate"):
        AttackBudget(learning_rate=0.0)
    with pytest.raises(ValueError, match="criterion"):
        AttackSettings(criterion="ground-truth")
    with pytest.raises(PartialFaceError, match="attack budget depth must be an integer >= 0"):
        AttackBudget(depth=-1)


def test_budget_must_fit_the_faces_and_the_memory() -> None:
    settings = AttackSettings(scenarios=(Scenario("frequency", "white-box"), Scenario("rgb", "white-box")),
                              progress=False)
    needed = check_budget_fits(BUDGET_PRESETS["default"], settings, (112, 112), available=2**40)
    # the default budget on 192-channel inputs: 0.86 GiB (U-Net, Adam state, activations, 4,000 uint8 faces)
    assert 2**28 < needed < 2**31
    with pytest.raises(PartialFaceError, match=r"needs about .* GiB .* 192-channel 112x112 .* has 0\.5 GiB available"):
        check_budget_fits(BUDGET_PRESETS["default"], settings, (112, 112), available=2**29)
    with pytest.raises(PartialFaceError, match="30x30 faces allow depth <= 0"):
        check_budget_fits(dataclasses.replace(TINY, depth=1), settings, (30, 30), available=2**40)
    with pytest.raises(PartialFaceError, match="depth 5 .* 112x112 faces allow depth <= 3"):
        run_attacks(synthetic_attacker(size=112), synthetic_victims(3, size=112), settings,
                    dataclasses.replace(TINY, depth=5))


def test_seeds_and_checkpoint_names_keep_their_published_rule() -> None:
    # the seeds of docs/privacy.* and the names of existing attacker checkpoints depend on these values
    assert stable_seed(0, "partialface/white-box") == 2177303640
    assert stable_seed(0, "victims", "partialface") == 3675586654
    assert config_hash({"a": 1, "b": [2, 3]}) == "fd28b17488e0"


def test_every_threat_model_runs_and_reports(tmp_path) -> None:
    attacker, victims = synthetic_attacker(), synthetic_victims(4)
    settings = AttackSettings(scenarios=DEFAULT_SCENARIOS, plan=SMALL_PLAN, progress=False)
    evaluation = run_attacks(attacker, victims, settings, TINY)
    keys = [result.key for result in evaluation.results]
    assert keys == ["partialface/black-box", "partialface/white-box", "partialface/enhanced-white-box",
                    "partialface/enhanced-white-box-oracle", "pruned/white-box", "fixed/white-box",
                    "frequency/white-box", "rgb/white-box"]
    for result in evaluation.results:
        assert result.reconstructions.shape == victims.faces.shape
        assert result.previews.shape == victims.faces.shape
        assert np.all(result.ssim <= 1.0) and result.psnr.shape == (4,)
        assert result.leakage is None
    enhanced, oracle = evaluation.results[2], evaluation.results[3]
    assert not enhanced.upper_bound and oracle.upper_bound
    assert np.all(oracle.ssim >= enhanced.ssim - 1e-12)  # the oracle keeps each query's best SSIM
    assert 0.0 <= enhanced.details["true_rank_selected"] <= 100.0 and enhanced.details["ranks"] == 6
    white_box = evaluation.results[1]
    assert enhanced.training.steps == white_box.training.steps + 6 * TINY.rank_steps
    assert enhanced.training.samples == (TINY.steps + 6 * TINY.rank_steps) * TINY.batch_size

    report, paths = write_privacy_outputs(evaluation, tmp_path, grid_faces=2)
    assert set(paths) == {"json", "markdown", "grid", "faces"}
    stored = json.loads((tmp_path / JSON_NAME).read_text())
    assert stored == json.loads(json.dumps(report))
    entry = stored["results"]["partialface"]["white-box"]
    assert entry["budget"]["images"] == len(attacker) and entry["budget"]["steps"] == TINY.steps
    assert entry["budget"]["epochs"] == pytest.approx(TINY.steps * TINY.batch_size / len(attacker))
    assert entry["judge_accuracy"] is None
    assert stored["results"]["partialface"]["enhanced-white-box-oracle"]["upper_bound"] is True
    markdown = (tmp_path / MARKDOWN_NAME).read_text()
    assert "0.591 / 13.70 / 65.35" in markdown and "(upper bound)" in markdown
    assert (tmp_path / GRID_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoothness_selection_runs() -> None:
    settings = AttackSettings(scenarios=(Scenario("partialface", "enhanced-white-box"),), plan=SMALL_PLAN,
                              criterion="smoothness", progress=False)
    evaluation = run_attacks(synthetic_attacker(), synthetic_victims(3), settings, TINY)
    assert [result.label for result in evaluation.results] == ["enhanced-white-box", "enhanced-white-box-oracle"]
    assert evaluation.results[0].details["selection"] == "smoothness"


def test_identified_selection_keeps_the_rank_an_attacker_can_name() -> None:
    """The identifier is fitted on the attacker's own faces only; the chosen rank is the named one."""
    settings = AttackSettings(scenarios=(Scenario("partialface", "enhanced-white-box"),), plan=SMALL_PLAN,
                              criterion="identified", progress=False)
    evaluation = run_attacks(synthetic_attacker(), synthetic_victims(3), settings, TINY)
    enhanced = evaluation.results[0]
    assert enhanced.details["selection"] == "identified"
    assert enhanced.details["true_rank_selected"] == 100.0  # smooth faces: each frequency has its own profile


def _fresh_model(threat: ThreatModel) -> ReconstructionUNet:
    torch.manual_seed(0)
    return ReconstructionUNet(threat.in_channels, 3, width=4, depth=1)


def test_checkpoint_resumes_to_the_same_weights(tmp_path) -> None:
    threat = ThreatModel(Scenario("partialface", "white-box"), SMALL_PLAN)
    faces = synthetic_attacker()
    arguments = dict(batch_size=3, learning_rate=1e-3, loss_fn=ReconstructionLoss(), seed=11)

    straight = _fresh_model(threat)
    train_attacker(straight, threat.attacker_inputs, faces, steps=4, **arguments)

    checkpoint = tmp_path / "attacker.pt"
    interrupted = _fresh_model(threat)
    first = train_attacker(interrupted, threat.attacker_inputs, faces, steps=2, checkpoint=checkpoint, **arguments)
    resumed = _fresh_model(threat)
    second = train_attacker(resumed, threat.attacker_inputs, faces, steps=4, checkpoint=checkpoint, **arguments)
    assert (first.steps, second.steps, second.samples) == (2, 4, 12)
    assert second.wall_seconds >= first.wall_seconds
    for name, value in straight.state_dict().items():
        assert torch.allclose(value.float(), resumed.state_dict()[name].float(), atol=1e-6), name

    finished = _fresh_model(threat)
    again = train_attacker(finished, threat.attacker_inputs, faces, steps=4, checkpoint=checkpoint, **arguments)
    assert again.wall_seconds == second.wall_seconds  # a finished checkpoint is only loaded
    with pytest.raises(ValueError, match="more than the 3 requested"):
        train_attacker(_fresh_model(threat), threat.attacker_inputs, faces, steps=3, checkpoint=checkpoint,
                       **arguments)


def test_run_reuses_checkpointed_attackers(tmp_path) -> None:
    settings = AttackSettings(scenarios=(Scenario("fixed", "white-box"),), plan=SMALL_PLAN, progress=False,
                              checkpoint_dir=tmp_path)
    budget = dataclasses.replace(TINY, steps=3)
    first = run_attacks(synthetic_attacker(), synthetic_victims(3), settings, budget)
    assert len(list(tmp_path.glob("fixed-white-box-*.pt"))) == 1
    second = run_attacks(synthetic_attacker(), synthetic_victims(3), settings, budget)
    assert torch.equal(first.results[0].reconstructions, second.results[0].reconstructions)
    assert second.results[0].training.wall_seconds == first.results[0].training.wall_seconds


def test_mismatched_face_sizes_are_rejected() -> None:
    settings = AttackSettings(scenarios=(Scenario("rgb", "white-box"),), progress=False)
    with pytest.raises(ValueError, match="attacker faces are"):
        run_attacks(synthetic_attacker(size=32), synthetic_victims(3, size=16), settings, TINY)
