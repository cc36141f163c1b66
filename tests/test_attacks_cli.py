"""``partialface attack`` options and a tiny run on real LFW faces."""

from __future__ import annotations

import argparse
import json

import pytest

from partialface.attacks import BUDGET_PRESETS, load_lfw_attack_data
from partialface.attacks.cli import LFW_ENVIRONMENT, add_attack_arguments, run_attack_cli
from partialface.cli import main as partialface_main
from partialface.data.pairs import people_in_folds, read_lfw_pairs
from partialface.errors import PartialFaceError


def _parse(*argv: str) -> argparse.Namespace:
    return add_attack_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_defaults_cover_every_scenario() -> None:
    args = _parse()
    assert args.budget == "default" and args.victims == 200 and args.victim_folds == [7, 8]
    assert "partialface/enhanced-white-box" in args.scenarios and "rgb/white-box" in args.scenarios
    # library defaults assume no folder layout and never write into the repository's docs/
    assert args.lfw is None and "docs" not in args.out_dir.parts and not args.overwrite


def test_lfw_comes_from_the_option_or_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(LFW_ENVIRONMENT, raising=False)
    with pytest.raises(PartialFaceError, match=f"pass --lfw PATH .* or set {LFW_ENVIRONMENT}"):
        run_attack_cli(_parse("--out-dir", str(tmp_path), "--no-judge"))
    monkeypatch.setenv(LFW_ENVIRONMENT, str(tmp_path / "nowhere"))
    with pytest.raises(PartialFaceError, match="nowhere is not an LFW folder"):
        run_attack_cli(_parse("--out-dir", str(tmp_path), "--no-judge", "--budget", "tiny"))


def test_an_existing_report_is_not_replaced_without_overwrite(tmp_path) -> None:
    report = tmp_path / "privacy.json"
    report.write_text("{}")
    with pytest.raises(PartialFaceError, match="privacy.json already exists; pass --overwrite"):
        run_attack_cli(_parse("--lfw", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path), "--no-judge"))
    assert report.read_text() == "{}"
    # with --overwrite the run goes on (here to the missing LFW folder)
    with pytest.raises(PartialFaceError, match="not an LFW folder"):
        run_attack_cli(_parse("--lfw", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path), "--no-judge",
                              "--overwrite", "--budget", "tiny"))


@pytest.mark.parametrize("option, value, message", [
    ("--depth", "99", "depth 99 needs faces whose size is a multiple of 2\\*\\*100; 112x112 faces allow depth <= 3"),
    ("--width", "100000", "attack budget needs about .* GiB .* lower --width, --depth, --batch-size"),
    ("--batch-size", "10000000", "attack budget needs about .* batch 10000000"),
    ("--victims", "1", "--victims must be an integer >= 2"),
])
def test_budgets_that_cannot_run_are_refused_before_loading_faces(tmp_path, option, value, message) -> None:
    # the LFW folder does not exist: the error comes before any face is read or tensor allocated
    args = _parse("--lfw", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path), "--no-judge", option, value)
    with pytest.raises(PartialFaceError, match=message):
        run_attack_cli(args)


def test_the_command_line_reports_a_refused_budget_in_one_line(tmp_path, capsys) -> None:
    status = partialface_main(["attack", "--lfw", str(tmp_path), "--out-dir", str(tmp_path), "--depth", "99"])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and "depth 99" in error


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
