"""Training configs: TFace's train.yaml keys, partialface keys, overrides, validation errors, shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from partialface.training import (
    apply_overrides,
    backbone_registry_name,
    head_registry_name,
    load_config,
    parse_overrides,
    resolve_config,
)

REPO = Path(__file__).resolve().parents[1]

# TFace's recognition/tasks/partialface/train.yaml, with its blanks filled in.
TFACE_TRAIN_YAML = """
SEED: 1337
DATA_ROOT: '/data'
INDEX_ROOT: '/data/index'
DATASETS:
  - name: bupt
    batch_size: 64
    weight: 1.0
    scale: 64
    margin: 0.5
BACKBONE_RESUME: ""
HEAD_RESUME: ""
META_RESUME: ""
INPUT_SIZE: [ 112, 112 ]
BACKBONE_NAME: 'IR_18'
EMBEDDING_SIZE: 512
MODEL_ROOT: './ckpt/'
LOG_ROOT: './tensorboard'
DIST_FC: true
HEAD_NAME: "ArcFace"
LOSS_NAME: 'DistCrossEntropy'
RGB_MEAN: [ 0.5, 0.5, 0.5 ]
RGB_STD: [ 0.5, 0.5, 0.5 ]
LRS: [ 0.1, 0.01, 0.001, 0.0001 ]
WARMUP_STEP: -1
STAGES: [ 10, 18, 22 ]
START_EPOCH: 0
NUM_EPOCH: 24
SAVE_EPOCHS: [ 1, 10, 16, 20, 24 ]
WEIGHT_DECAY: 0.0005
MOMENTUM: 0.9
WORLD_SIZE: 1
RANK: 0
LOCAL_RANK: 0
DIST_BACKEND: 'nccl'
DIST_URL: 'env://'
NUM_WORKERS: 8
AMP: false
METHOD: PartialFace
NUM_AUG: 3
NUM_CHS: 9
"""


def minimal(**extra) -> dict:
    return {"DATA_ROOT": "/data", "DATASETS": [{"name": "faces"}], "OUT": "runs/x", **extra}


def test_tface_train_yaml_is_accepted_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(TFACE_TRAIN_YAML)
    cfg = load_config(path)
    assert cfg["BACKBONE_NAME"] == "ir18" and cfg["HEAD_NAME"] == "arcface"
    assert cfg["ENCODER"] == "partialface" == cfg["METHOD"]
    assert cfg["WORKERS"] == 8 == cfg["NUM_WORKERS"]
    assert cfg["OUT"] == "./ckpt/"  # MODEL_ROOT is the run folder when OUT is not given
    assert cfg["INPUT_SIZE"] == 112 and cfg["CROP"] == {"box": None, "size": 112}
    assert cfg["DATASETS"] == [{"name": "bupt", "batch_size": 64, "weight": 1.0, "scale": 64.0, "margin": 0.5}]
    assert cfg["STAGES"] == [10, 18, 22] and cfg["LRS"] == [0.1, 0.01, 0.001, 0.0001]
    assert cfg["DIST_BACKEND"] == "nccl" and cfg["AMP"] is False and cfg["NUM_CHS"] == 9
    assert resolve_config(cfg) == cfg  # a resolved config (as stored in checkpoints) resolves to itself


def test_defaults_and_partialface_keys() -> None:
    cfg = resolve_config(minimal(PLAN={"generate": 3, "m": 3}, ENCODER="Fixed", ENCODER_OPTIONS={"subset": 1}))
    assert cfg["PLAN"] == {"generate": 3, "m": 3, "n": 6}
    assert cfg["ENCODER"] == "fixed" and cfg["SEED"] == 1337 and cfg["NUM_AUG"] == 3
    assert cfg["DATASETS"][0]["batch_size"] == 64 and cfg["MAX_SAMPLES"] == 0 and cfg["STAGES_UNIT"] == "epoch"
    assert resolve_config(minimal())["ENCODER"] == "partialface"
    assert cfg["CACHE_IMAGES"] is False and cfg["CHANNELS_LAST"] is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [("IR_18", "ir18"), ("IR_50", "ir50"), ("IR_101", "ir100"), ("IR_SE_50", "ir_se50"),
     ("MobileFaceNet", "mobilefacenet"), ("ir34", "ir34"), ("mobilefacenet_fast", "mobilefacenet_fast")],
)
def test_backbone_names_map_to_the_registry(given: str, expected: str) -> None:
    assert backbone_registry_name(given) == expected


def test_head_names_map_to_the_registry() -> None:
    assert [head_registry_name(n) for n in ("ArcFace", "CosFace", "CurricularFace", "Softmax")] == [
        "arcface", "cosface", "curricularface", "softmax"]
    with pytest.raises(ValueError, match="HEAD_NAME 'ArcFase'.*did you mean arcface"):
        head_registry_name("ArcFase")
    with pytest.raises(ValueError, match="BACKBONE_NAME 'IR_19'"):
        backbone_registry_name("IR_19")


def test_overrides_are_yaml_and_reach_nested_keys(tmp_path: Path) -> None:
    overrides = parse_overrides(["LRS=[0.2, 0.02]", "AMP=false", "DATASETS.0.batch_size=32", "OUT=runs/y", "PLAN="])
    assert overrides == {"LRS": [0.2, 0.02], "AMP": False, "DATASETS.0.batch_size": 32, "OUT": "runs/y", "PLAN": ""}
    raw = apply_overrides(minimal(), overrides)
    assert raw["DATASETS"][0] == {"name": "faces", "batch_size": 32} and raw["OUT"] == "runs/y"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal()))
    cfg = load_config(path, ["LRS=[0.2, 0.02]", "STAGES=[3]", "CROP.box=[10, 10, 40, 40]", "INPUT_SIZE=16", "CROP.size=16"])
    assert cfg["LRS"] == [0.2, 0.02] and cfg["CROP"] == {"box": [10, 10, 40, 40], "size": 16}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["LRS"])
    with pytest.raises(ValueError, match="DATASETS.3"):
        apply_overrides(minimal(), {"DATASETS.3.name": "x"})


def test_unknown_keys_name_the_key_and_close_matches(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown config key 'LRSS'; close matches: LRS"):
        resolve_config(minimal(LRSS=[0.1]))
    with pytest.raises(ValueError, match="'max_samples'.*MAX_SAMPLES"):
        resolve_config(minimal(max_samples=5))
    with pytest.raises(ValueError, match="unknown DATASETS entry key 'batchsize'.*batch_size"):
        resolve_config(minimal(DATASETS=[{"name": "x", "batchsize": 3}]))
    with pytest.raises(ValueError, match="unknown CROP key 'boxes'"):
        resolve_config(minimal(CROP={"boxes": [0, 0, 1, 1]}))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal(NUM_EPOCHS=3)))
    with pytest.raises(ValueError, match=r"c\.yaml.*NUM_EPOCHS.*NUM_EPOCH"):
        load_config(path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"LRS": [0.1, 0.01], "STAGES": [1, 2]}, "STAGES needs one entry fewer than LRS"),
        ({"STAGES": [18, 10, 22]}, "ascending"),
        ({"STAGES_UNIT": "fraction"}, r"STAGES must lie in \[0, 1\]"),
        ({"RGB_MEAN": [0.485, 0.456, 0.406]}, "RGB_MEAN and RGB_STD must be"),
        ({"START_EPOCH": 3}, "START_EPOCH must be 0"),
        ({"NUM_EPOCH": 0}, "NUM_EPOCH must be an integer >= 1"),
        ({"AMP": "yes"}, "AMP must be true or false"),
        ({"DEVICE": "tpu"}, "DEVICE must be one of auto, cpu, cuda"),
        ({"DATA_FORMAT": "tfrecord"}, "DATA_FORMAT must be one of folders, index, recordio"),
        ({"CROP": {"box": [0, 0, 100, 100], "size": 96}}, "CROP size 96 must equal INPUT_SIZE 112"),
        ({"INPUT_SIZE": [112, 96]}, "square"),
        ({"DATASETS": [{"name": "a"}, "b"]}, "list of dataset mappings"),
        ({"DATASETS": [{"name": "a"}, {"name": "b", "batch_size": 32}]}, "entry 2: 'batch_size' is not allowed"),
        ({"VIEWS": 3}, "VIEWS 3 must divide the batch size"),
        ({"CONSISTENCY_WEIGHT": 1.0}, "CONSISTENCY_WEIGHT needs VIEWS >= 2"),
        ({"DISTILL_WEIGHT": 1.0}, "need TEACHER_CACHE"),
        ({"AUGMENT": {"shift": 0.9}}, "augmentation shift"),
        ({"AUGMENT": {"blur": 1}}, "unknown augmentation option"),
        ({"MARGIN_WEIGHT": 0.0}, "every loss weight is 0"),
        ({"LOSS_NAME": "Focal"}, "LOSS_NAME"),
        ({"METHOD": "PartialFace", "ENCODER": "rgb"}, "METHOD .* and ENCODER .* disagree"),
        ({"EXCLUDE_FOLDS": [7]}, "EXCLUDE_PAIRS and EXCLUDE_FOLDS go together"),
        ({"DEV_PAIRS": "pairs.txt"}, "DEV_IMAGES"),
        ({"DATA_FORMAT": "index"}, "INDEX_ROOT"),
        ({"PLAN": {"m": 3}}, "generate"),
        ({"MODEL_OPTIONS": {"in_channels": 3}}, "MODEL_OPTIONS must not set"),
        ({"ENCODER": "rgb", "ENCODER_OPTIONS": {"subset": 1}}, "rgb takes no ENCODER_OPTIONS"),
        ({"ENCODER": "jpeg"}, "ENCODER 'jpeg'"),
        ({"SAVE_EPOCHS": [30]}, "beyond NUM_EPOCH"),
        ({"CACHE_IMAGES": "maybe"}, "CACHE_IMAGES must be true or false"),
        ({"CHANNELS_LAST": 1.5}, "CHANNELS_LAST must be true or false"),
    ],
)
def test_invalid_values_are_rejected_by_key(extra: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_config(minimal(**extra))


def test_required_keys_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing required config key.*DATA_ROOT"):
        resolve_config({"DATASETS": [{"name": "x"}], "OUT": "o"})
    with pytest.raises(ValueError, match="OUT"):
        resolve_config({"DATA_ROOT": "/d", "DATASETS": [{"name": "x"}]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("LRS: [0.1\n")
    with pytest.raises(ValueError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_config(bad)
    with pytest.raises(ValueError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_shipped_configs() -> None:
    configs = {p.name: load_config(p) for p in sorted((REPO / "configs").glob("*.yaml"))}
    assert {"partialface_lfw_dev.yaml", "rgb_lfw_dev.yaml", "tface_ir18.yaml"} <= set(configs)
    for name in ("partialface_lfw_dev.yaml", "rgb_lfw_dev.yaml"):
        cfg = configs[name]
        assert cfg["EXCLUDE_FOLDS"] == [7, 8] == cfg["DEV_FOLDS"] and cfg["MIN_IMAGES"] == 2
        assert cfg["CROP"] == {"box": [69, 69, 181, 181], "size": 112}
        assert cfg["DATA_FORMAT"] == "folders" and cfg["DEV_PAIRS"].endswith("pairs.txt")
    assert configs["partialface_lfw_dev.yaml"]["ENCODER"] == "partialface"
    assert configs["rgb_lfw_dev.yaml"]["ENCODER"] == "rgb"
    tface = configs["tface_ir18.yaml"]
    assert (tface["BACKBONE_NAME"], tface["HEAD_NAME"]) == ("ir18", "arcface")
    assert (tface["DATASETS"][0]["scale"], tface["DATASETS"][0]["margin"], tface["DATASETS"][0]["batch_size"]) == (64, 0.5, 64)
    assert tface["LRS"][0] == 0.1 and tface["STAGES"] == [10, 18, 22] and tface["NUM_EPOCH"] == 24
    assert tface["NUM_AUG"] == 3 and tface["ENCODER"] == "partialface" and tface["WEIGHT_DECAY"] == 0.0005


def test_resume_tolerates_keys_added_after_a_checkpoint_at_their_default() -> None:
    """A run saved before a key existed still resumes while the key keeps its default; a new value does not."""
    from partialface.training.config import DEFAULTS, config_differences

    saved = {"SEED": 1337, "EMBEDDING_SIZE": 512}
    current = {**saved, "SKIP_UNREADABLE": DEFAULTS["SKIP_UNREADABLE"]}
    assert config_differences(saved, current) == []
    assert config_differences(saved, {**current, "SKIP_UNREADABLE": True}) == ["SKIP_UNREADABLE"]
    assert config_differences(saved, {**current, "SEED": 7}) == ["SEED"]
    # a key the current config lacks but the checkpoint holds is a difference (e.g. a removed option)
    assert config_differences({**saved, "SKIP_UNREADABLE": True}, saved) == ["SKIP_UNREADABLE"]
