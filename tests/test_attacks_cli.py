"""``partialface attack`` options and a tiny run on real LFW faces."""

from __future__ import annotations

import argparse
import json

import pytest

from partialface.attacks.cli import add_attack_arguments, run_attack_cli
from partialface.attacks.harness import BUDGET_PRESETS, load_lfw_attack_data
from partialface.data.pairs import people_in_folds, read_lfw_pairs



def _parse(*argv: str) -> argparse.Namespace:
    return add_attack_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_defaults_cover_every_scenario() -> None:
    args = _parse()
    assert args.budget == "default" and args.victims == 200 and args.victim_folds == [7, 8]
    assert "partialface/enhanced-white-box" in args.scenarios and "rgb/white-box" in args.scenarios


@pytest.mark.lfw
def test_lfw_split_keeps_attacker_and_victims_apart(lfw_root) -> None:
    attacker, victims = load_lfw_attack_data(lfw_root, BUDGET_PRESETS["tiny"], victims=5, seed=3)
    fold_people = people_in_folds(read_lfw_pairs(lfw_root / "pairs.txt"), {7, 8})
    assert len(attacker) == BUDGET_PRESETS["tiny"].attacker_images and attacker.images.shape[1:] == (3, 112, 112)
    people = [path.split("/")[0] for path in victims.paths]
    assert len(set(people)) == 5 and set(people) <= fold_people
    assert [path.split("/")[0] for path in victims.gallery_paths] == people
    assert not set(victims.paths) & set(victims.gallery_paths)


@pytest.mark.lfw
@pytest.mark.slow
def test_tiny_cli_run_writes_the_report(lfw_root, tmp_path) -> None:
    args = _parse("--lfw", str(lfw_root), "--out-dir", str(tmp_path), "--no-checkpoint", "--budget", "tiny",
                  "--victims", "3", "--no-judge", "--quiet", "--grid-faces", "2",
                  "--scenarios", "partialface/black-box", "partialface/white-box", "pruned", "rgb")
    assert run_attack_cli(args) == 0
    report = json.loads((tmp_path / "privacy.json").read_text())
    assert set(report["results"]) == {"partialface", "pruned", "rgb"}
    assert set(report["results"]["partialface"]) == {"black-box", "white-box"}
    assert report["protocol"]["victims"] == 3 and report["budget"]["steps"] == BUDGET_PRESETS["tiny"].steps
    assert (tmp_path / "privacy.md").is_file() and (tmp_path / "privacy_grid.png").is_file()
