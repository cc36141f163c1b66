"""Every mistake a user can make in training -- the data folders, the plan, the options, the run folder,
resuming with another config -- is a one-line PartialFaceError naming the key, file or value."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from partialface.errors import PartialFaceError
from partialface.train import main
from partialface.training import Trainer, load_checkpoint, resolve_config
from partialface.training.distributed import init_distributed

from ._training_fixtures import tiny_config, write_identities, write_pairs


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    write_pairs(root / "pairs.txt", write_identities(root))
    return root


def fails(cfg: dict, pattern: str) -> str:
    """Build (and train) ``cfg`` expecting a one-line PartialFaceError matching ``pattern``."""
    with pytest.raises(PartialFaceError, match=pattern) as caught:
        Trainer(resolve_config(cfg), progress=False).fit()
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"DATA_ROOT": "/nowhere"}, r"^DATA_ROOT: identity folder root '/nowhere/images' is not a directory"),
        ({"MIN_IMAGES": 50}, r"^DATA_ROOT: no identity folder under .* has >= 50 images"),
        ({"EXCLUDE_FOLDS": [9]}, r"^EXCLUDE_PAIRS: .*folds \[9\]"),
        ({"PLAN": "/nowhere/plan.json"}, r"^PLAN: plan '/nowhere/plan.json' is neither a preset"),
        ({"PLAN": {"generate": 1, "m": 5}}, r"^PLAN: cannot split"),
        ({"NUM_CHS": 4}, r"^NUM_CHS 4 does not match the plan's subset size s = 9"),
        ({"ENCODER": "fixed", "ENCODER_OPTIONS": {"colour": 1}}, r"^ENCODER_OPTIONS: unknown option\(s\) colour"),
        ({"ENCODER": "fixed", "ENCODER_OPTIONS": {"subset": 9}}, r"^ENCODER_OPTIONS: "),
        ({"MODEL_OPTIONS": {"depth": 3}}, r"^BACKBONE_NAME mobilefacenet rejects MODEL_OPTIONS \{'depth': 3\}"),
        ({"DEV_PAIRS": "/nowhere/pairs.txt"}, r"^DEV_PAIRS '/nowhere/pairs.txt' does not exist"),
        ({"DEV_FOLDS": [5]}, r"^DEV_PAIRS: folds \[5\] are not in the pairs"),
        ({"DATASETS": [{"name": "images", "batch_size": 64}]}, "less than one global batch"),
        ({"BACKBONE_RESUME": "/nowhere/model.pt"}, r"checkpoint '/nowhere/model.pt' does not exist"),
    ],
)
def test_bad_data_plan_and_options_are_one_line_errors(faces: Path, tmp_path: Path, change: dict, pattern: str) -> None:
    fails(tiny_config(faces, tmp_path / "run", **change), pattern)


def test_a_run_folder_that_cannot_be_one_is_named(faces: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    fails(tiny_config(faces, tmp_path / "file"), r"^OUT '.*file' is a file, not a run folder$")
    fails(tiny_config(faces, tmp_path / "file" / "run"), r"^OUT '.*run' cannot be created: '.*file' is a file$")
    assert (tmp_path / "file").read_text() == "mine"


def test_an_unreadable_face_stops_the_run_naming_the_file(faces: Path, tmp_path: Path) -> None:
    broken = tmp_path / "faces"
    write_identities(broken)
    (broken / "images" / "Person_00" / "Person_00_0002.jpg").write_bytes(b"not a jpeg")
    fails(tiny_config(broken, tmp_path / "run", ENCODER="rgb", NUM_AUG=1, EXCLUDE_PAIRS="", EXCLUDE_FOLDS=[],
                      DEV_PAIRS="", NUM_EPOCH=1), r"^DATA_ROOT: .*Person_00_0002\.jpg")


def test_cuda_without_a_gpu_and_a_bad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(PartialFaceError, match="DEVICE: cuda was requested"):
            init_distributed("cuda")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(PartialFaceError, match="WORLD_SIZE='two' is not an integer"):
        init_distributed("cpu")


def test_resuming_with_another_config_or_weights_that_do_not_fit(faces: Path, tmp_path: Path) -> None:
    cfg = tiny_config(faces, tmp_path / "run", NUM_EPOCH=1, DEV_PAIRS="")
    Trainer(resolve_config(cfg), progress=False).fit()
    fails({**cfg, "LRS": [0.05, 0.001], "NUM_EPOCH": 2}, r"cannot resume .*checkpoint.pt: the config changed in keys "
          r"that alter training \(LRS: \[0.01, 0.001\] -> \[0.05, 0.001\]\)")
    fails({**cfg, "OUT": str(tmp_path / "other"), "BACKBONE_RESUME": str(tmp_path / "run" / "checkpoint.pt"),
           "EMBEDDING_SIZE": 8}, r"^BACKBONE_RESUME '.*checkpoint.pt' does not fit this model: ")
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1


def test_the_command_line_prints_one_line_and_exits_2(faces: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(faces, tmp_path / "run", DATA_ROOT=str(tmp_path / "nowhere"))))
    assert main([str(config), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("partialface train: error: DATA_ROOT: identity folder root") and "nowhere" in error
