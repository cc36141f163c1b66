"""experiments/frontier.py end to end on tiny synthetic faces (train, evaluate, attack, report, resume),
its reuse of an anchor's published attack numbers, and the recommendation rule."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from partialface.attacks import BUDGET_PRESETS
from partialface.plan import ChannelPlan

from ._training_fixtures import tiny_config, write_identities, write_pairs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def frontier(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "experiments"))  # the script's own folder, as when run
    spec = importlib.util.spec_from_file_location("frontier", REPO / "experiments" / "frontier.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "frontier", module)
    spec.loader.exec_module(module)
    return module


def _reusable_report(path: Path, budget: dict) -> None:
    """A privacy.json as ``partialface attack`` writes it, with an rgb/white-box result."""
    entry = {"ssim": 0.9, "psnr": 30.0, "judge_accuracy": 98.0, "judge_accuracy_std": 1.0, "judge_rank1": 95.0,
             "judge_detection_rate": 90.0, "upper_bound": False, "budget": {"wall_seconds": 1.0}}
    protocol = {"victims": 3, "seed": 0, "rank_selection": "consistency",
                "deployment_plan": ChannelPlan.tface().fingerprint}
    path.write_text(json.dumps({"budget": budget, "protocol": protocol,
                                "results": {"rgb": {"white-box": entry}}}))


def _tiny_index(tmp_path: Path) -> Path:
    lfw = tmp_path / "lfw"
    write_pairs(lfw / "pairs.txt", write_identities(lfw))
    for image in (lfw / "images").rglob("*.jpg"):  # LFW-sized photos: the attack crops the LFW face box
        Image.open(image).resize((250, 250)).save(image)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_config(lfw, tmp_path / "unused", NUM_EPOCH=10, DEV_PAIRS=str(lfw / "pairs.txt"),
                                                 CROP={"box": [69, 69, 181, 181], "size": 16})))
    _reusable_report(tmp_path / "privacy.json", BUDGET_PRESETS["tiny"].to_dict())
    index = {
        "recipe": [str(recipe)], "budget": 48, "backbone": "MobileFaceNet", "eval": {"folds": "2", "seed": 0},
        "attack": {"lfw": str(lfw), "reuse": str(tmp_path / "privacy.json"),
                   "options": ["--budget", "tiny", "--victims", "3", "--victim-folds", "2", "--no-judge",
                               "--grid-faces", "2"]},
        "target": {"judge_accuracy": 65.0, "judge_rank1": 10.0},
        "settings": {"rgb": {"files": ["configs/rows/rgb.yaml"], "scenarios": ["rgb/white-box"], "reuse": True,
                             "label": "RGB"},
                     "s3": {"plan": "s3"}},
    }
    path = tmp_path / "index.yaml"
    path.write_text(yaml.safe_dump(index))
    return path


@pytest.mark.slow
def test_frontier_end_to_end_on_a_tiny_budget(frontier, tmp_path, capsys) -> None:
    index, out, docs = _tiny_index(tmp_path), tmp_path / "runs", tmp_path / "docs"
    args = ["--index", str(index), "--out", str(out)]
    assert frontier.main(["run", *args]) == 0
    capsys.readouterr()
    assert frontier.main(["report", *args, "--docs", str(docs)]) == 0
    table = capsys.readouterr().out
    report = json.loads((docs / "frontier.json").read_text())
    rows = {row["setting"]: row for row in report["rows"]}
    assert list(rows) == ["rgb", "s3"] and report["budget"] == 48
    s3 = rows["s3"]
    assert s3["plan"]["fingerprint"] == ChannelPlan.preset("s3").fingerprint and s3["plan"]["sent_channels"] == 9
    assert 0 <= s3["accuracy"]["accuracy"] <= 100 and s3["accuracy"]["per_rank"]["ranks"] == 54
    assert s3["accuracy"]["samples"] >= 48
    assert set(s3["attacks"]) == {"white-box", "enhanced-white-box", "enhanced-white-box-oracle"}
    assert 0 < s3["attacks"]["white-box"]["ssim"] <= 1 and s3["attacks"]["white-box"]["judge_accuracy"] is None
    assert "--plan s3" in s3["commands"]["attack"] and "PLAN=s3" in s3["commands"]["train"]
    assert "NUM_CHS=3" in s3["commands"]["train"] and s3["commands"]["train"].startswith("partialface train ")
    rgb = rows["rgb"]  # its attack numbers come from the reuse report: same budget, victims and seed
    assert rgb["anchor"] and "reused" in rgb["attack_source"] and rgb["attacks"]["white-box"]["judge_rank1"] == 95.0
    assert not (out / "rgb" / "attack").exists() and rgb["accuracy"]["per_rank"] is None
    assert report["recommendation"] is None  # no plan row was judged (--no-judge)
    assert "| s3 | 9 (10, 18 x 3) | 17703c4c5bdd6368 |" in table
    assert (docs / "frontier.png").stat().st_size > 0 and (docs / "frontier_grid.png").stat().st_size > 0
    # a second run finds every step done; another recipe trains into its own folders
    assert frontier.main(["run", *args]) == 0
    printed = capsys.readouterr().out
    assert "s3: attacked already" in printed and "s3: trained and evaluated already" in printed
    tag = frontier.Frontier(index, out).recipe_tag
    other = tmp_path / "other.yaml"
    other.write_text("SEED: 6\n")
    assert frontier.Frontier(index, out, [*yaml.safe_load(index.read_text())["recipe"], str(other)]).recipe_tag != tag


def test_anchor_numbers_are_reused_only_at_the_same_budget(frontier, tmp_path) -> None:
    index = tmp_path / "index.yaml"
    _reusable_report(tmp_path / "privacy.json", BUDGET_PRESETS["tiny"].to_dict())
    settings = {"rgb": {"files": [], "scenarios": ["rgb/white-box"], "reuse": True}, "pruned": {
        "files": [], "scenarios": ["pruned/white-box"], "reuse": True}}
    base = {"recipe": [], "budget": 1, "backbone": "x", "eval": {}, "target": {}, "settings": settings}
    for options, reused in ((["--budget", "tiny"], True), (["--budget", "smoke"], False),
                            (["--budget", "tiny", "--steps", "3"], False), (["--budget", "tiny", "--seed", "1"], False)):
        attack = {"lfw": "x", "options": [*options, "--victims", "3"], "reuse": str(tmp_path / "privacy.json")}
        index.write_text(yaml.safe_dump({**base, "attack": attack}))
        runner = frontier.Frontier(index, tmp_path / "runs")
        assert (runner.reused_attack("rgb") is not None) is reused, options
        assert runner.reused_attack("pruned") is None  # the report has no pruned result


def test_the_recommendation_is_the_most_accurate_setting_within_the_target(frontier) -> None:
    from frontier_report import recommend

    def row(name, accuracy, judge, rank1, anchor=False):
        return {"setting": name, "anchor": anchor, "plan": None if anchor else {"fingerprint": name, "sent_channels": 9},
                "accuracy": {"accuracy": accuracy}, "attacks": {"white-box": {"judge_accuracy": judge, "judge_rank1": rank1}}}

    target = {"judge_accuracy": 65.0, "judge_rank1": 10.0}
    rows = [row("rgb", 84.0, 98.0, 94.0, anchor=True), row("tface", 72.0, 79.0, 28.0), row("a", 66.0, 64.0, 9.0),
            row("b", 68.0, 63.0, 8.0), row("c", 70.0, 64.0, 12.0)]
    choice = recommend(rows, target)
    assert choice["setting"] == "b" and choice["meets_target"] and choice["settings_meeting_target"] == ["a", "b"]
    assert choice["accuracy_cost"] == pytest.approx(4.0)
    closest = recommend([rows[1], rows[4]], target)  # none meets it: the lowest judge verification
    assert closest["setting"] == "c" and not closest["meets_target"]


def test_the_committed_frontier_is_complete_and_of_one_recipe(frontier) -> None:
    """docs/frontier.json, what docs/frontier.md quotes: at least six plan settings and both anchors, each
    evaluated and attacked, all trained by the index's recipe at its budget (the rows compare)."""
    report = json.loads((REPO / "docs" / "frontier.json").read_text())
    index = frontier.Frontier(REPO / "configs" / "frontier" / "index.yaml", Path("runs/frontier"))
    assert (report["recipe"], report["recipe_tag"], report["budget"]) == (index.recipe, index.recipe_tag,
                                                                       index.index["budget"])
    complete = [row for row in report["rows"] if row["accuracy"] and row["attacks"]]
    assert {"rgb", "pruned"} <= {row["setting"] for row in complete if row["anchor"]}
    assert len([row for row in complete if not row["anchor"]]) >= 6
    for row in complete:
        assert row["accuracy"]["samples"] == report["budget"], row["setting"]
        assert row["accuracy"]["run"] == str(index.train_dir(row["setting"])), row["setting"]
