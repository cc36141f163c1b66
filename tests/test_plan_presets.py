"""Plan presets: every preset is a valid plan with a stable, listed fingerprint; names resolve in the
command line, the attack options and a training config's PLAN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from partialface.cli import main as partialface_main
from partialface.errors import PartialFaceError
from partialface.plan import ChannelPlan
from partialface.plan_presets import ALIASES, PRESETS, get_preset, low_frequency_channels, preset_names, preset_pruned
from partialface.training import load_config
from partialface.training.trainer import build_plan

REPO = Path(__file__).resolve().parents[1]

# The published fingerprints (docs/frontier.md): a changed generator or preset would silently change
# what a name means, and every model trained and every report measured with it.
FINGERPRINTS = {
    "tface": "8a0257a1e65a4c01",
    "s18": "bfe76d1742ca7178",
    "s9": "4930dec4bcf35de8",
    "s6": "5c7330612f520406",
    "s3": "17703c4c5bdd6368",
    "band4-s8": "7d6bd039a6ea8fe0",
    "band5-s7": "a02c92a62f67c4bd",
    "band5-s3": "69580db8eb6eb1f8",
}


def test_every_preset_is_listed_with_its_fingerprint() -> None:
    assert {name: ChannelPlan.preset(name).fingerprint for name in PRESETS} == FINGERPRINTS
    doc = (REPO / "docs" / "frontier.md").read_text()
    for name, fingerprint in FINGERPRINTS.items():
        assert f"`{name}`" in doc and fingerprint in doc, name


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_plan_of_its_sizes(name: str) -> None:
    preset, plan = get_preset(name), ChannelPlan.preset(name)
    assert ChannelPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan  # validates the tables
    assert plan.m * plan.s == len(plan.kept) == preset.kept
    assert (plan.m, plan.s, plan.n) == (preset.m, preset.s, preset.n) and plan.out_channels == 3 * preset.s
    assert set(low_frequency_channels(preset.band)) <= set(plan.pruned)
    # the extra pruned channels (to make the kept count divide) are the lowest remaining ones
    extra = set(plan.pruned) - set(low_frequency_channels(preset.band))
    lowest_kept = min(c // 8 + c % 8 for c in plan.kept)
    assert len(extra) < preset.s and all(c // 8 + c % 8 <= lowest_kept for c in extra)


def test_the_published_preset_is_tfaces_tables() -> None:
    assert ChannelPlan.preset("tface") == ChannelPlan.tface()
    assert ChannelPlan.preset("s9") != ChannelPlan.tface()  # same sizes, generated tables


def test_pruning_rule_for_bands_whose_kept_count_does_not_divide() -> None:
    assert len(low_frequency_channels(4)) == 15 and len(low_frequency_channels(5)) == 21
    assert preset_pruned(4, 8) == (*low_frequency_channels(4), 5)  # 49 -> 48: (u, v) = (0, 5) goes
    assert preset_pruned(5, 7) == (*low_frequency_channels(5), 6)  # 43 -> 42: (0, 6) goes
    assert preset_pruned(3, 9) == low_frequency_channels(3)


def test_aliases_name_presets() -> None:
    for alias, target in ALIASES.items():
        assert ChannelPlan.preset(alias) == ChannelPlan.preset(target)
    assert preset_names()[: len(PRESETS)] == list(PRESETS)


def test_the_private_alias_is_the_measured_recommendation(tmp_path) -> None:
    """``private`` names the preset docs/frontier.json recommends, and works wherever a preset name does."""
    report = json.loads((REPO / "docs" / "frontier.json").read_text())
    choice = report["recommendation"]
    assert choice["meets_target"] and ALIASES["private"] == choice["setting"]
    assert ChannelPlan.preset("private").fingerprint == choice["fingerprint"]
    config = tmp_path / "row.yaml"
    config.write_text(yaml.safe_dump({"PLAN": "private", "NUM_CHS": get_preset("private").s}))
    cfg = load_config([REPO / "configs" / "partialface_lfw_dev.yaml", config])
    assert build_plan(cfg["PLAN"], cfg["NUM_CHS"]) == ChannelPlan.preset(choice["setting"])


def test_unknown_names_list_the_presets(tmp_path) -> None:
    with pytest.raises(PartialFaceError, match="unknown plan preset 's4'.*known: tface.*did you mean s"):
        ChannelPlan.preset("s4")
    with pytest.raises(PartialFaceError, match="'s4' is neither a preset .*tface.* nor an existing plan file"):
        ChannelPlan.from_name_or_path("s4")
    path = tmp_path / "mine.json"
    ChannelPlan.generate(3, m=9, n=2).save(path)
    assert ChannelPlan.from_name_or_path(path) == ChannelPlan.generate(3, m=9, n=2)


def test_plan_show_and_list(capsys) -> None:
    assert partialface_main(["plan", "show", "s3"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["fingerprint"] == FINGERPRINTS["s3"] and (shown["m"], shown["s"]) == (18, 3)
    assert shown["preset"]["name"] == "s3" and shown["preset"]["band"] == 3
    assert partialface_main(["plan", "list"]) == 0
    listing = capsys.readouterr().out
    for name, fingerprint in FINGERPRINTS.items():
        assert any(line.startswith(name + " ") and fingerprint in line for line in listing.splitlines()), name
    assert partialface_main(["plan", "show", "s4"]) == 2
    assert "neither a preset" in capsys.readouterr().err


def test_plan_generate_like_a_preset(tmp_path, capsys) -> None:
    out = tmp_path / "secret.json"
    assert partialface_main(["plan", "generate", "--seed", "99", "--like", "band5-s3", "--out", str(out)]) == 0
    plan, preset = ChannelPlan.load(out), get_preset("band5-s3")
    assert (plan.m, plan.s, plan.n, plan.pruned) == (preset.m, preset.s, preset.n, preset.pruned)
    assert plan != ChannelPlan.preset("band5-s3")
    assert partialface_main(["plan", "generate", "--seed", "1", "--like", "s3", "--m", "3", "--out", str(out)]) == 2
    assert "--like PRESET or --m/--n" in capsys.readouterr().err


def test_a_config_plan_names_a_preset(tmp_path) -> None:
    config = tmp_path / "row.yaml"
    config.write_text(yaml.safe_dump({"PLAN": "s3", "NUM_CHS": 3}))
    cfg = load_config([REPO / "configs" / "partialface_lfw_dev.yaml", config])
    assert cfg["PLAN"] == "s3" and build_plan(cfg["PLAN"], cfg["NUM_CHS"]) == ChannelPlan.preset("s3")
    with pytest.raises(PartialFaceError, match="NUM_CHS 9 does not match the plan's subset size s = 3"):
        build_plan("s3", 9)
    with pytest.raises(PartialFaceError, match="PLAN.*'s4' is neither a preset"):
        build_plan("s4")


def test_attack_plan_option_accepts_a_preset(tmp_path, capsys) -> None:
    status = partialface_main(["attack", "--lfw", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path),
                               "--no-judge", "--budget", "tiny", "--plan", "s4"])
    assert status == 2 and "'s4' is neither a preset" in capsys.readouterr().err


def test_protect_plan_option_accepts_a_preset(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from partialface.protected import load_protected

    Image.fromarray(np.full((112, 112, 3), 128, np.uint8)).save(tmp_path / "face.png")
    assert partialface_main(["protect", str(tmp_path / "face.png"), "--out", str(tmp_path / "out"), "--plan", "s3",
                             "--crop", "none", "--no-preview"]) == 0
    sent = load_protected(tmp_path / "out" / "face.png.npz")
    assert sent.channels.shape[0] == 9 and sent.plan == FINGERPRINTS["s3"]
    assert partialface_main(["protect", str(tmp_path / "face.png"), "--out", str(tmp_path / "private"),
                             "--plan", "private", "--crop", "none", "--no-preview"]) == 0
    assert load_protected(tmp_path / "private" / "face.png.npz").plan == ChannelPlan.preset("private").fingerprint
