"""The training loop on tiny synthetic identities: every encoder, checkpoints, exact resume (also after
SIGKILL), and 2-process DDP equal to one process on the same global batch."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from partialface.data import scan_identity_folders, write_index_file, write_recordio
from partialface.encoders import encoder_from_state, list_encoders
from partialface.models import get_model
from partialface.train import main
from partialface.training import (
    CHECKPOINT_FORMAT,
    Trainer,
    build_training_data,
    export_model,
    load_checkpoint,
    load_config,
    resolve_config,
)

from ._training_fixtures import IMAGES_PER_PERSON, PEOPLE, tiny_config, write_identities, write_pairs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    names = write_identities(root)
    write_pairs(root / "pairs.txt", names)
    return root


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def train(cfg: dict, *overrides: str) -> dict:
    path = write_config(Path(cfg["OUT"]).with_suffix(".yaml"), cfg)
    return Trainer(load_config(path, overrides), progress=False).fit()


def assert_same_training_state(first: Path, second: Path) -> None:
    a = load_checkpoint(first, require_training_state=True)
    b = load_checkpoint(second, require_training_state=True)
    assert (a["epoch"], a["step"], a["samples_seen"]) == (b["epoch"], b["step"], b["samples_seen"])
    for part in ("model", "head"):
        for name, tensor in a[part]["state_dict"].items():
            assert torch.equal(tensor, b[part]["state_dict"][name]), f"{part} {name} differs"
    for key, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]


def test_one_epoch_per_encoder(dataset_root: Path, tmp_path: Path) -> None:
    for name in list_encoders():
        out = tmp_path / name
        summary = train(tiny_config(dataset_root, out, ENCODER=name, NUM_EPOCH=1))
        checkpoint = load_checkpoint(out / "checkpoint.pt", require_training_state=True)
        encoder = encoder_from_state(checkpoint["encoder"])
        repeats = 2 if name == "partialface" else 1
        assert encoder.name == name and encoder.train_repeats == repeats
        steps = (PEOPLE // 2) * IMAGES_PER_PERSON * repeats // 8
        assert summary["step"] == checkpoint["step"] == steps and checkpoint["epoch"] == 1
        assert checkpoint["samples_seen"] == 8 * steps
        assert checkpoint["model"]["kwargs"]["in_channels"] == encoder.out_channels
        if name != "rgb":
            scale = torch.tensor(checkpoint["encoder"]["frequency_scale"])
            assert scale.shape == (192,) and not torch.allclose(scale, torch.ones(192))
        report = checkpoint["metrics"][-1]
        assert report["pairs"] == 20 and 0.0 <= report["accuracy"] <= 1.0 and report["epoch"] == 1
        log = (out / "train_log.csv").read_text().splitlines()
        assert log[0].startswith("step,epoch,samples_seen,lr,loss") and len(log) >= 2
        assert len((out / "dev_log.csv").read_text().splitlines()) == 2


def test_cached_images_train_identically_and_channels_last_agrees(dataset_root: Path, tmp_path: Path) -> None:
    base = dict(ENCODER="partialface", NUM_EPOCH=1, DEV_PAIRS="")
    train(tiny_config(dataset_root, tmp_path / "plain", **base))
    train(tiny_config(dataset_root, tmp_path / "cached", CACHE_IMAGES=True, **base))
    assert_same_training_state(tmp_path / "plain" / "checkpoint.pt", tmp_path / "cached" / "checkpoint.pt")
    nhwc = train(tiny_config(dataset_root, tmp_path / "nhwc", CHANNELS_LAST=True, **base))
    assert nhwc["step"] == load_checkpoint(tmp_path / "plain" / "checkpoint.pt")["step"]


def test_channels_last_classifier_computes_the_same_logits() -> None:
    from partialface.models import get_head
    from partialface.training import FaceClassifier

    torch.manual_seed(0)
    backbone = get_model("mobilefacenet", width=0.25, in_channels=27, embedding_size=16, input_size=16)
    head = get_head("cosface", embedding_size=16, num_classes=5, s=16, m=0.2)
    plain = FaceClassifier(backbone, head).eval()
    nhwc = FaceClassifier(copy.deepcopy(backbone), copy.deepcopy(head), channels_last=True).eval()
    nhwc = nhwc.to(memory_format=torch.channels_last)
    inputs, labels = torch.randn(4, 27, 16, 16), torch.tensor([0, 1, 2, 3])
    assert torch.allclose(plain(inputs, labels), nhwc(inputs, labels), rtol=1e-4, atol=1e-4)


def test_bfloat16_classifier_runs_its_backbone_in_bfloat16_and_stays_close() -> None:
    """``CPU_BFLOAT16``'s path: the backbone's convolutions run in bfloat16 (so the logits differ from
    float32's), the head in float32, and the logits stay within bfloat16's precision of float32's."""
    from partialface.models import get_head
    from partialface.training import FaceClassifier

    torch.manual_seed(0)
    backbone = get_model("mobilefacenet", width=0.25, in_channels=27, embedding_size=16, input_size=16)
    head = get_head("cosface", embedding_size=16, num_classes=5, s=16, m=0.2)
    plain = FaceClassifier(backbone, head).eval()
    half = FaceClassifier(copy.deepcopy(backbone), copy.deepcopy(head), autocast=torch.bfloat16).eval()
    seen: list[torch.dtype] = []
    half.backbone.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    inputs, labels = torch.randn(4, 27, 16, 16), torch.tensor([0, 1, 2, 3])
    expected, logits = plain(inputs, labels), half(inputs, labels)
    assert seen == [torch.bfloat16] and logits.dtype == torch.float32
    assert not torch.equal(logits, expected) and torch.allclose(logits, expected, atol=0.5)


def test_cpu_bfloat16_training_runs_and_records_its_setting(dataset_root: Path, tmp_path: Path) -> None:
    report = train(tiny_config(dataset_root, tmp_path / "bf16", ENCODER="partialface", NUM_EPOCH=1, DEV_PAIRS="",
                               CPU_BFLOAT16=True))
    checkpoint = load_checkpoint(tmp_path / "bf16" / "checkpoint.pt")
    assert report["epoch"] == 1 and checkpoint["config"]["CPU_BFLOAT16"] is True
    weights = checkpoint["model"]["state_dict"].values()
    assert all(torch.isfinite(value).all() for value in weights if value.is_floating_point())


def test_training_data_from_folders_index_and_recordio(dataset_root: Path, tmp_path: Path) -> None:
    folders = build_training_data(resolve_config(tiny_config(dataset_root, tmp_path)), repeats=3)
    assert (folders.num_images, folders.num_classes, len(folders.dataset)) == (20, 5, 60)
    image, label = folders.dataset[59]
    assert image.shape == (3, 16, 16) and 0 <= label < 5

    samples = scan_identity_folders(dataset_root / "images").samples
    write_index_file(tmp_path / "index" / "faces.txt", samples[3:], dataset_root)  # Person_00 keeps 1 image
    cfg = tiny_config(dataset_root, tmp_path, DATA_FORMAT="index", INDEX_ROOT=str(tmp_path / "index"),
                      DATASETS=[{"name": "faces", "batch_size": 8}], MIN_IMAGES=2)
    indexed = build_training_data(resolve_config(cfg), repeats=1)
    assert (indexed.num_images, indexed.num_classes) == (16, 4)  # fold-2 people excluded, then MIN_IMAGES

    write_recordio(tmp_path / "rec" / "faces" / "train.rec", tmp_path / "rec" / "faces" / "train.idx", samples)
    cfg = tiny_config(dataset_root, tmp_path, DATA_FORMAT="recordio", DATA_ROOT=str(tmp_path / "rec"),
                      DATASETS=[{"name": "faces", "batch_size": 8}], EXCLUDE_PAIRS="", EXCLUDE_FOLDS=[])
    packed = build_training_data(resolve_config(cfg), repeats=2)
    assert (packed.num_images, packed.num_classes, len(packed.dataset)) == (40, 10, 80)
    assert packed.dataset[0][0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="train.rec"):
        build_training_data(resolve_config({**cfg, "DATA_ROOT": str(tmp_path / "nowhere")}), repeats=1)


def test_checkpoint_round_trip_and_export(dataset_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_config(dataset_root, out, NUM_EPOCH=1, SAVE_EPOCHS=[1]))
    checkpoint = load_checkpoint(out / "checkpoint.pt", require_training_state=True)
    assert checkpoint["format"] == CHECKPOINT_FORMAT and (out / "epoch_001.pt").is_file()
    assert checkpoint["crop"] == {"box": None, "size": 16}
    assert checkpoint["config"]["BACKBONE_NAME"] == "mobilefacenet" and checkpoint["head"]["name"] == "cosface"
    assert checkpoint["head"]["kwargs"]["num_classes"] == PEOPLE // 2

    slim = export_model(out / "checkpoint.pt", tmp_path / "model.pt", half=True)
    exported = load_checkpoint(slim)
    assert not {"optimizer", "scheduler", "head", "rng"} & set(exported)
    weights = exported["model"]["state_dict"]
    assert all(t.dtype == torch.float16 for t in weights.values() if t.is_floating_point())
    model = get_model(exported["model"]["name"], **exported["model"]["kwargs"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
    encoder = encoder_from_state(exported["encoder"])
    faces = torch.rand(2, 3, 16, 16) * 2 - 1
    assert model.eval()(encoder.encode_query(faces, torch.Generator().manual_seed(0))).shape == (2, 16)
    with pytest.raises(ValueError, match="lacks head, optimizer"):
        load_checkpoint(slim, require_training_state=True)


def test_load_checkpoint_rejects_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a partialface checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"format": "partialface.checkpoint/0"}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="checkpoint/0"):
        load_checkpoint(tmp_path / "old.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")


def test_resume_equals_uninterrupted_run(dataset_root: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(tiny_config(dataset_root, straight, NUM_EPOCH=2))
    resumed = tmp_path / "resumed"
    train(tiny_config(dataset_root, resumed, NUM_EPOCH=1))
    summary = train(tiny_config(dataset_root, resumed, NUM_EPOCH=2))  # a fresh Trainer picks up checkpoint.pt
    assert summary["epoch"] == 2
    assert_same_training_state(straight / "checkpoint.pt", resumed / "checkpoint.pt")
    assert (straight / "train_log.csv").read_text() != ""
    assert [r["accuracy"] for r in load_checkpoint(straight / "checkpoint.pt")["metrics"]] == [
        r["accuracy"] for r in load_checkpoint(resumed / "checkpoint.pt")["metrics"]
    ]


def test_sample_budget_stops_mid_epoch_and_extends(dataset_root: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(tiny_config(dataset_root, straight, NUM_EPOCH=2, MAX_SAMPLES=24, DEV_PAIRS=""))
    checkpoint = load_checkpoint(straight / "checkpoint.pt")
    assert (checkpoint["epoch"], checkpoint["step"], checkpoint["samples_seen"]) == (0, 3, 24)
    train(tiny_config(dataset_root, straight, NUM_EPOCH=2, DEV_PAIRS=""))  # budget lifted: resume mid-epoch
    reference = tmp_path / "reference"
    train(tiny_config(dataset_root, reference, NUM_EPOCH=2, DEV_PAIRS=""))
    assert_same_training_state(straight / "checkpoint.pt", reference / "checkpoint.pt")


def test_resume_refuses_a_changed_config(dataset_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_config(dataset_root, out, NUM_EPOCH=1, DEV_PAIRS=""))
    with pytest.raises(ValueError, match="LRS"):
        train(tiny_config(dataset_root, out, NUM_EPOCH=2, DEV_PAIRS="", LRS=[0.05, 0.001]))


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(dataset_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(dataset_root, tmp_path / "killed", NUM_EPOCH=4, SAVE_STEPS=1, DEV_PAIRS="")
    config = write_config(tmp_path / "killed.yaml", cfg)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "partialface.train", str(config), "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    latest = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    try:
        while not latest.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, f"training ended before it could be killed: {process.stderr.read().decode()}"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    interrupted = load_checkpoint(latest, require_training_state=True)
    total_steps = 4 * (PEOPLE // 2) * IMAGES_PER_PERSON * 2 // 8
    assert 0 < interrupted["step"] < total_steps

    Trainer(load_config(config), progress=False).fit()
    straight = tiny_config(dataset_root, tmp_path / "straight", NUM_EPOCH=4, DEV_PAIRS="")
    train(straight)
    assert_same_training_state(latest, tmp_path / "straight" / "checkpoint.pt")


@pytest.mark.slow
def test_two_process_ddp_equals_one_process_on_the_global_batch(dataset_root: Path, tmp_path: Path) -> None:
    # Fixed-subset frequency input (its per-frequency scale is estimated in each process), random flips,
    # BatchNorm throughout MobileFaceNet: equality needs global-batch BN statistics.
    # Small learning rates: at 1e-3 the second step is a loss spike after which float rounding (a 1e-6
    # relative change of the inputs) grows past the tolerance even without DDP.
    common = {"ENCODER": "fixed", "MAX_SAMPLES": 24, "DEV_PAIRS": "", "LOG_EVERY": 1, "LRS": [0.0001, 0.00001]}
    ddp_cfg = tiny_config(dataset_root, tmp_path / "ddp", **common)
    ddp_cfg["DATASETS"] = [{**ddp_cfg["DATASETS"][0], "batch_size": 4}]
    config = write_config(tmp_path / "ddp.yaml", ddp_cfg)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "partialface.train", str(config), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    train(tiny_config(dataset_root, tmp_path / "single", **common))  # batch 8 = 2 x 4

    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt", require_training_state=True)
    single = load_checkpoint(tmp_path / "single" / "checkpoint.pt", require_training_state=True)
    assert ddp["world_size"] == 2 and (ddp["step"], ddp["samples_seen"]) == (single["step"], single["samples_seen"]) == (3, 24)
    for part in ("model", "head"):
        for name, tensor in single[part]["state_dict"].items():
            torch.testing.assert_close(ddp[part]["state_dict"][name], tensor, rtol=1e-3, atol=1e-4, msg=f"{part} {name}")
    ddp_losses = [float(line.split(",")[4]) for line in (tmp_path / "ddp" / "train_log.csv").read_text().splitlines()[1:]]
    single_losses = [float(line.split(",")[4]) for line in (tmp_path / "single" / "train_log.csv").read_text().splitlines()[1:]]
    assert ddp_losses == pytest.approx(single_losses, rel=1e-4)


def test_main_prints_config_and_reports_bad_input(dataset_root: Path, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "run.yaml", tiny_config(dataset_root, tmp_path / "run"))
    assert main([str(config), "--print-config", "--set", "AMP=false", "--out", str(tmp_path / "elsewhere")]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["AMP"] is False and printed["OUT"] == str(tmp_path / "elsewhere")
    assert printed["BACKBONE_NAME"] == "mobilefacenet" and printed["ENCODER"] == "partialface"
    assert main([str(config), "--set", "LRSS=[0.1]"]) == 2
    assert "LRSS" in capsys.readouterr().err
    assert main([str(config), "--set", "DATA_ROOT=" + str(tmp_path / "nowhere"), "--no-progress"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_the_checkpoint_records_how_raw_photos_become_training_faces(dataset_root: Path, tmp_path: Path) -> None:
    """Plain photos: the crop box; a folder made by ``partialface align`` (its report): five-point alignment
    then the box. The record survives export and reaches ``load_model``; a file without one is the box."""
    import json
    import shutil

    from partialface.alignment import BoxPreparation, FivePointPreparation
    from partialface.api import load_model

    base = dict(ENCODER="partialface", NUM_EPOCH=1, DEV_PAIRS="")
    train(tiny_config(dataset_root, tmp_path / "plain", **base))
    plain = load_checkpoint(tmp_path / "plain" / "checkpoint.pt")
    assert plain["preparation"] == {"kind": "box", "box": None, "size": 16}

    aligned_root = tmp_path / "aligned"
    shutil.copytree(dataset_root / "images", aligned_root / "images")
    settings = {"detector": "hog", "landmarks": "dlib5", "frame": 250, "pick": "central", "quality": 95}
    (aligned_root / "images" / "align_report.json").write_text(json.dumps({"settings": settings}))
    train(tiny_config(dataset_root, tmp_path / "aligned_run", **base,
                      DATASETS=[{"name": "images", "root": str(aligned_root / "images"), "batch_size": 8,
                                 "scale": 16, "margin": 0.2}]))
    export_model(tmp_path / "aligned_run" / "checkpoint.pt", tmp_path / "aligned.pt")
    model = load_model(tmp_path / "aligned.pt")
    assert isinstance(model.preparation, FivePointPreparation)
    assert (model.preparation.detector, model.preparation.landmarks, model.preparation.frame.size) == ("hog", "dlib5", 250)
    assert model.preparation.crop == model.crop

    old = {key: value for key, value in plain.items() if key != "preparation"}
    torch.save(old, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").preparation == BoxPreparation(model.crop)
