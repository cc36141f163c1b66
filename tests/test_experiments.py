"""The experiment scripts that made the published numbers and the shipped models: the GPU protocol's
job configs, the lossless LFW packing for the device, and shipping a GPU job with its model card."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from partialface.api import load_model
from partialface.training import Trainer, export_model, load_config, resolve_config

from ._training_fixtures import tiny_config, write_identities, write_pairs
from .conftest import load_script

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"


def _script(name: str):
    return load_script(REPO / "experiments" / f"{name}.py")


def test_gpu_protocol_jobs_are_the_dev_protocol_rows_at_one_budget(tmp_path: Path) -> None:
    protocol = _script("gpu_protocol")
    args = protocol.argparse.Namespace(data=str(tmp_path / "lfw"), batch=256, crop="5,5,117,117", device="cuda")
    for job in protocol.JOBS:
        cfg = resolve_config(yaml.safe_load(protocol.job_config(job, args, 190000, tmp_path / job.name).read_text()))
        assert cfg["BACKBONE_NAME"] == job.backbone.lower().replace("_", "")
        assert cfg["MAX_SAMPLES"] == 190000 and cfg["DATASETS"][0]["batch_size"] == 256 and cfg["SEED"] == 1337
        assert cfg["CROP"] == {"box": [5, 5, 117, 117], "size": 112}
        assert cfg["CACHE_IMAGES"] and cfg["CHANNELS_LAST"] and cfg["DEVICE"] == "cuda" and not cfg["DEV_PAIRS"]
        assert cfg["EXCLUDE_FOLDS"] == ([] if job.all_folds else [7, 8])
        assert cfg["ENCODER"] == job.row.removesuffix("_generated")
        assert cfg["NUM_AUG"] == (3 if job.row.startswith("partialface") else 1)
    with pytest.raises(SystemExit):
        protocol.main(["--out", str(tmp_path / "out"), "--jobs", "ir18_nothing"])


def test_packed_lfw_crops_decode_to_the_original_pixels(tmp_path: Path) -> None:
    jpegtran = shutil.which("jpegtran") or os.environ.get("JPEGTRAN")
    if not (LFW / "pairs.txt").is_file():
        pytest.skip(f"LFW is not at {LFW}")
    if not jpegtran:
        pytest.skip("jpegtran (libjpeg-turbo-progs) is not installed; set JPEGTRAN to its path")
    pack = _script("pack_lfw_for_device")
    source = sorted((LFW / "images" / "Aaron_Peirsol").glob("*.jpg"))[0]
    target = tmp_path / "packed.jpg"
    pack._pack_one(jpegtran, source, target)  # raises if a single pixel of the face box differs
    assert target.stat().st_size < source.stat().st_size and pack.PACKED_BOX == (5, 5, 117, 117)


def test_shipping_a_gpu_job_maps_the_crop_back_and_writes_its_card(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    write_pairs(root / "pairs.txt", write_identities(root))
    cfg = tiny_config(root, tmp_path / "run", ENCODER="partialface", NUM_EPOCH=1, DEV_PAIRS="",
                      INPUT_SIZE=112, CROP={"box": [5, 5, 117, 117], "size": 112})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "faces" / "images").mkdir(exist_ok=True)
    for image in (root / "images").rglob("*.jpg"):  # the tiny faces are 32x32: make them 128x128 like packed ones
        from PIL import Image

        Image.open(image).resize((128, 128)).save(image)
    Trainer(load_config(tmp_path / "run.yaml"), progress=False).fit()
    models = tmp_path / "models"
    export_model(tmp_path / "run" / "checkpoint.pt", models / "mfn_partialface_all.pt")
    results = {
        "setup": {"gpu": "NVIDIA H200"}, "budgets": {"MobileFaceNet": 40},
        "mfn_partialface_all": {"backbone": "MobileFaceNet", "row": "partialface", "all_folds": True, "train_s": 1.0},
        "mfn_partialface": {"backbone": "MobileFaceNet", "row": "partialface", "all_folds": False, "train_s": 1.0,
                            "eval": {"pairs": 1200, "accuracy": 0.8, "accuracy_std": 0.04, "tar_at_far_1e-3": 0.3,
                                     "auc": 0.9, "plan": "8a0257a1e65a4c01"}},
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    ship = _script("ship_models")
    ship.main(["--gpu", str(tmp_path / "results.json"), "--models", str(models), "--weights-dir", str(tmp_path),
               "mfn_partialface_all:default"])
    model = load_model(tmp_path / "default.pt")
    assert model.crop.box == (69, 69, 181, 181) and model.crop.size == 112
    card = model.card
    assert card["dev_protocol"]["accuracy"] == 0.8 and "mfn_partialface:" in card["dev_protocol"]["measured_on"]
    assert "every person" in card["data"] and card["budget"]["samples_seen"] > 0
    assert card["dev_folds_seen_in_training"] is True
    assert any("gpu_protocol.py" in line and "--budget MobileFaceNet=40" in line for line in card["reproduce"])
    assert model.embed(torch.zeros(1, 3, 112, 112)).shape == (1, 16)
    report = tmp_path / "twin_eval.json"
    report.write_text(json.dumps({**results["mfn_partialface"]["eval"], "accuracy": 0.75}))
    ship.main(["--gpu", str(tmp_path / "results.json"), "--models", str(models), "--weights-dir", str(tmp_path),
               "--twin-eval", str(report), "mfn_partialface_all:default"])
    assert load_model(tmp_path / "default.pt").card["dev_protocol"]["accuracy"] == 0.75
    del results["mfn_partialface"]["eval"]  # e.g. its evaluation failed on the device
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(SystemExit, match="no evaluated twin 'mfn_partialface'"):
        ship.main(["--gpu", str(tmp_path / "results.json"), "--models", str(models), "--weights-dir", str(tmp_path),
                   "mfn_partialface_all:x"])


def test_shipping_a_recipe_run_records_its_twin_recipe_teacher_and_preparation(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    write_pairs(root / "pairs.txt", write_identities(root))
    recipe = dict(NUM_EPOCH=1, DEV_PAIRS="", AUGMENT={"shift": 0.05}, VIEWS=2, CONSISTENCY_WEIGHT=0.5,
                  ENCODER_OPTIONS={"training_ranks": "uniform"})
    for name, extra in (("twin", {}), ("ship", {"EXCLUDE_PAIRS": "", "EXCLUDE_FOLDS": []})):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(tiny_config(root, tmp_path / name, **recipe, **extra)))
        Trainer(load_config(tmp_path / f"{name}.yaml"), progress=False).fit()
    (tmp_path / "twin" / "eval.json").write_text(json.dumps(
        {"pairs": 20, "accuracy": 0.9, "accuracy_std": 0.1, "tar_at_far_1e-3": 0.5, "auc": 0.95, "plan": "x"}))
    align_report = tmp_path / "align_report.json"
    align_report.write_text(json.dumps({"settings": {"detector": "hog+cnn", "landmarks": "dlib68", "frame": 250}}))
    ship = _script("ship_models")
    ship.main(["--weights-dir", str(tmp_path), "--twin", str(tmp_path / "twin"), "--five-point", str(align_report),
               f"{tmp_path / 'ship'}:default"])
    card = load_model(tmp_path / "default.pt").card
    assert card["dev_protocol"]["accuracy"] == 0.9 and str(tmp_path / "twin") in card["dev_protocol"]["measured_on"]
    assert card["dev_folds_seen_in_training"] is True and card["teacher"] is None
    assert card["recipe"]["losses"]["consistency"] == 0.5 and card["recipe"]["views"] == 2
    assert card["recipe"]["augment"] == {"shift": 0.05} and card["recipe"]["training_ranks"] == "uniform"
    assert card["recipe"]["precision"] == {"AMP": True, "CPU_BFLOAT16": False, "CHANNELS_LAST": False}
    preparation = card["input_preparation"]
    assert preparation["kind"] == "five-point" and preparation["detector"] == "hog+cnn"
    assert preparation["crop"] == {"box": None, "size": 16} and preparation["frame"] == {"size": 250, "offset": [69, 69]}
    assert any("--twin" in line and "--five-point" in line for line in card["reproduce"])
    # Without --five-point the card copies the checkpoint's own record (here: the box of a plain folder).
    (tmp_path / "recorded").mkdir()
    ship.main(["--weights-dir", str(tmp_path / "recorded"), "--twin", str(tmp_path / "twin"), f"{tmp_path / 'ship'}:default"])
    recorded = load_model(tmp_path / "recorded" / "default.pt")
    assert recorded.card["input_preparation"] == recorded.preparation.to_dict() and recorded.preparation.kind == "box"
    assert any("--budget" in line for line in recorded.card["reproduce"])
    assert [line.split()[3:5] for line in recorded.card["reproduce"] if "levers.py" in line] == [["twin", "ship"]]
    # A twin trained in another run folder (a lever row reused for shipping) is reproduced there.
    shutil.copytree(tmp_path / "twin", tmp_path / "levers" / "twin")
    (tmp_path / "elsewhere").mkdir()
    ship.main(["--weights-dir", str(tmp_path / "elsewhere"), "--twin", str(tmp_path / "levers" / "twin"),
               f"{tmp_path / 'ship'}:default"])
    runs = [line for line in load_model(tmp_path / "elsewhere" / "default.pt").card["reproduce"] if "levers.py" in line]
    assert [line.split("--out ")[1].split()[0] for line in runs] == [str(tmp_path / "levers"), str(tmp_path)]
    # --privacy: the card quotes the frontier row of the model's plan (the twin's eval names it "x").
    attacks = {"white-box": {"ssim": 0.5, "judge_accuracy": 62.0, "judge_rank1": 7.0}}
    row = {"setting": "s3", "label": "s3: ...", "anchor": False, "plan": {"fingerprint": "x"}, "attacks": attacks,
           "attack_source": "runs/frontier/s3/attack/privacy.json", "commands": {"attack": "partialface attack ..."}}
    frontier = {"rows": [{"setting": "rgb", "anchor": True}, row], "target": {"judge_accuracy": 65.0, "judge_rank1": 10.0},
                "attack": {"options": ["--victims", "200"]}, "recommendation": {"setting": "s3"}}
    (tmp_path / "frontier.json").write_text(json.dumps(frontier))
    ship.main(["--weights-dir", str(tmp_path / "recorded"), "--twin", str(tmp_path / "twin"),
               "--privacy", str(tmp_path / "frontier.json"), f"{tmp_path / 'ship'}:private"])
    privacy = load_model(tmp_path / "recorded" / "private.pt").card["privacy"]
    assert privacy["setting"] == "s3" and privacy["recommended"] and privacy["attacks"] == attacks
    assert privacy["target"]["judge_rank1"] == 10.0 and privacy["reproduce"][0] == "partialface attack ..."
    row["plan"]["fingerprint"] = "another plan"
    (tmp_path / "frontier.json").write_text(json.dumps(frontier))
    with pytest.raises(SystemExit, match="no attacked setting with the model's plan x"):
        ship.main(["--weights-dir", str(tmp_path / "recorded"), "--twin", str(tmp_path / "twin"),
                   "--privacy", str(tmp_path / "frontier.json"), f"{tmp_path / 'ship'}:private"])


# ------------------------------------------------------------------ the rows come from configs/rows
ROW_INDEX = yaml.safe_load((REPO / "configs" / "rows" / "index.yaml").read_text())


def test_dev_protocol_trains_each_row_from_its_config_file(tmp_path: Path) -> None:
    from partialface.train import build_parser

    log = tmp_path / "commands.txt"
    python = tmp_path / "python"  # runs Python, but only records `-m partialface ...` commands
    python.write_text(f'#!/bin/sh\nif [ "$1" = -m ]; then printf "%s\\n" "$@" "@@" >> "{log}"; exit 0; fi\n'
                      f'exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "PY": str(python), "OUT": str(tmp_path / "runs"), "BUDGET": "1000"}
    subprocess.run(["bash", str(REPO / "experiments" / "dev_protocol.sh")], env=env, check=True, capture_output=True)
    commands = [c.strip("\n").split("\n") for c in log.read_text().split("@@\n") if c.strip()]
    trains = [c[3:] for c in commands if c[:3] == ["-m", "partialface", "train"]]
    evals = [c[3:] for c in commands if c[:3] == ["-m", "partialface", "eval"]]
    assert len(trains) == len(evals) == len(ROW_INDEX["rows"])
    for (name, row), argv, evaluation in zip(ROW_INDEX["rows"].items(), trains, evals):
        args = build_parser().parse_intermixed_args(argv)
        assert args.configs == [ROW_INDEX["base"], f"configs/rows/{name}.yaml"]
        cfg = load_config([REPO / p for p in args.configs], args.overrides)
        assert cfg == load_config([REPO / ROW_INDEX["base"], REPO / "configs" / "rows" / f"{name}.yaml"], args.overrides)
        assert (cfg["MAX_SAMPLES"], cfg["BACKBONE_NAME"], cfg["OUT"]) == (1000, "mobilefacenet_fast", str(tmp_path / "runs" / f"dev_{name}"))
        assert ("--per-rank" in evaluation) == bool(row.get("per_rank"))
    unknown = subprocess.run(["bash", str(REPO / "experiments" / "dev_protocol.sh"), "jpeg"], env=env, capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown row jpeg (rgb, partialface, partialface_generated, fixed, pruned)" in unknown.stderr


def test_gpu_protocol_reads_its_rows_from_configs(tmp_path: Path) -> None:
    protocol = _script("gpu_protocol")
    assert not hasattr(protocol, "ROW_OVERRIDES")
    rows = tmp_path / "rows"
    shutil.copytree(REPO / "configs" / "rows", rows)
    (rows / "fixed.yaml").write_text("ENCODER: fixed\nNUM_AUG: 2\nENCODER_OPTIONS: {subset: 1}\n")
    protocol.ROWS = rows
    args = protocol.argparse.Namespace(data=str(tmp_path / "lfw"), batch=64, crop="5,5,117,117", device="cpu")
    job = next(j for j in protocol.JOBS if j.row == "fixed")
    cfg = resolve_config(yaml.safe_load(protocol.job_config(job, args, 5000, tmp_path / "run").read_text()))
    assert (cfg["ENCODER"], cfg["NUM_AUG"], cfg["ENCODER_OPTIONS"]) == ("fixed", 2, {"subset": 1})
    assert cfg["DATASETS"][0] == {"name": "images", "batch_size": 64, "weight": 1.0, "scale": 32.0, "margin": 0.35}


def test_results_tables_name_and_order_the_rows_of_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import partialface.training

    table = _script("results_table")
    report = {"accuracy": 0.8, "accuracy_std": 0.01, "tar_at_far_1e-3": 0.3, "auc": 0.9}
    for name in ("pruned", "rgb"):
        run = tmp_path / f"dev_{name}"
        run.mkdir()
        (run / "eval.json").write_text(json.dumps(report))
        (run / "train_log.csv").write_text("step,images_per_second\n10,4.0\n20,6.0\n")
    monkeypatch.setattr(partialface.training, "load_checkpoint", lambda path: {"samples_seen": 40000})
    table.main(tmp_path)
    lines = capsys.readouterr().out.splitlines()[2:]
    assert [line.split(" | ")[0] for line in lines] == [f"| {ROW_INDEX['rows'][r]['label']}" for r in ("rgb", "pruned")]
    assert lines[0].endswith("| 40,000 | 5.0 |")
    jobs = {f"job_{row}": {"backbone": "IR_18", "row": row, "budget": 1000, "train_s": 1.0, "eval": report}
            for row in ("fixed", "rgb", "partialface")}
    (tmp_path / "run.json").write_text(json.dumps(jobs))
    table.gpu_tables([tmp_path / "run.json"])
    lines = capsys.readouterr().out.splitlines()[2:]
    assert [line.split(" | ")[2] for line in lines] == [ROW_INDEX["rows"][r]["gpu_label"] for r in ("rgb", "partialface", "fixed")]


def test_every_lever_row_resolves_and_differs_from_its_baseline_only_by_its_files() -> None:
    levers = _script("levers")
    index = levers.load_index()
    assert index["base"] == "configs/partialface_lfw_dev.yaml" and index["budget"] > 0
    used = set()
    for name, row in index["rows"].items():
        files = [REPO / f for f in row.get("files", [])]
        used.update(files)
        cfg = load_config([REPO / index["base"], *files])
        # one seed for every row, except the repeats that name another one (configs/levers/seed_N.yaml)
        seeds = [int(Path(f).stem.removeprefix("seed_")) for f in row.get("files", []) if Path(f).stem.startswith("seed_")]
        assert cfg["SEED"] == (seeds[-1] if seeds else 1337) and cfg["DATASETS"][0]["batch_size"] == 64, name
        assert (cfg["ENCODER"] == "rgb") == name.startswith("rgb"), name
        assert bool(row.get("per_rank")) == (cfg["ENCODER"] == "partialface" and not row.get("twin")), name
        if row.get("twin"):  # a shipped model: its twin is the same recipe without every_person.yaml
            twin = index["rows"][row["twin"]]
            assert row["files"] == [*twin["files"], "configs/levers/every_person.yaml"] and not cfg["EXCLUDE_FOLDS"]
            assert row.get("budget") == twin.get("budget"), name
        assert levers.row_budget(index, name) == row.get("budget", index["budget"]) and levers.row_budget(index, name, 1000) == 1000
        command = levers.train_command(index, name, Path("runs/levers"), 1000)
        assert "MAX_SAMPLES=1000" in command and f"OUT={Path('runs/levers') / name}" in command
        settings = [command[i + 1] for i, arg in enumerate(command) if arg == "--set"]
        trained = load_config([REPO / index["base"], *files], settings)  # every setting is a valid key and value
        assert trained["SAVE_STEPS"] > 0, name  # a row killed with its session resumes where it stopped
        assert levers.eval_command(index, name, Path("runs/levers"))[-1 if not row.get("per_rank") else -2] == "--quiet"
        assert cfg["EXCLUDE_FOLDS"] == ([] if row.get("twin") else [7, 8]), name
    lever_files = {p for p in (REPO / "configs" / "levers").glob("*.yaml") if p.name != "index.yaml"}
    assert lever_files <= used | {REPO / "configs" / "levers" / "aligned_celeba.yaml"}


def test_a_lever_row_resumed_across_sessions_reports_its_whole_training_time(tmp_path: Path) -> None:
    levers = _script("levers")
    run = tmp_path / "row"
    run.mkdir()
    assert levers.train_minutes(run) == "" and levers._samples_logged(run) == 0
    # Three logged windows of 6,000 samples at 100 img/s: 3 minutes of training in all.
    rows = ["step,samples_seen,images_per_second"] + [f"{10 * i},{6000 * i},100" for i in (1, 2, 3)]
    (run / "train_log.csv").write_text("\n".join(rows) + "\n")
    assert levers._samples_logged(run) == 18000 and levers.mean_speed(run) == 100
    (run / "timing.json").write_text(json.dumps({"train_seconds": 300, "eval_seconds": 9}))
    assert levers.train_minutes(run) == "5"  # an uninterrupted run: its own clock
    # Resumed at 6,000 samples, the last call trained for 2 of the 3 minutes; the log counts all of them.
    (run / "timing.json").write_text(json.dumps({"train_seconds": 120, "resumed_at_samples": 6000}))
    assert levers.train_minutes(run) == "3 (resumed)"
