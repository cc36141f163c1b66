"""The experiment scripts that made the published numbers and the shipped models: the GPU protocol's
job configs, the lossless LFW packing for the device, and shipping a GPU job with its model card."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from partialface.api import load_model
from partialface.training import Trainer, export_model, load_config, resolve_config

from ._training_fixtures import tiny_config, write_identities, write_pairs

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
