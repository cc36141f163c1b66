"""Smoke test of training on real faces: the LFW development protocol, a few steps of a small model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from partialface.data import read_lfw_pairs, select_folds
from partialface.training import Trainer, load_checkpoint, load_config

REPO = Path(__file__).resolve().parents[1]


def _image_number(relative_path: str) -> int:
    """``Name/Name_0003.jpg`` -> 3."""
    return int(relative_path.rsplit("_", 1)[1].split(".")[0])


@pytest.mark.lfw
def test_a_few_partialface_steps_on_lfw(lfw_root: Path, tmp_path: Path) -> None:
    """Two steps of a width-0.25 MobileFaceNet at 32x32 with the dev config, then dev verification."""
    # 10 same-person and 10 different-person pairs of fold 8 (outside training), as a one-fold pairs file.
    fold8 = select_folds(read_lfw_pairs(lfw_root / "pairs.txt"), [8])
    same = [p for p in fold8 if p.issame][:10]
    different = [p for p in fold8 if not p.issame][:10]
    lines = ["1\t10"]
    lines += [f"{p.name_a}\t{_image_number(p.path_a)}\t{_image_number(p.path_b)}" for p in same]
    lines += [f"{p.name_a}\t{_image_number(p.path_a)}\t{p.name_b}\t{_image_number(p.path_b)}" for p in different]
    dev_pairs = tmp_path / "dev_pairs.txt"
    dev_pairs.write_text("\n".join(lines) + "\n")

    threads = torch.get_num_threads()
    overrides = [
        f"DATA_ROOT={lfw_root}",
        f"EXCLUDE_PAIRS={lfw_root / 'pairs.txt'}",
        f"DEV_PAIRS={dev_pairs}",
        f"DEV_IMAGES={lfw_root / 'images'}",
        "DEV_FOLDS=[]",
        "INPUT_SIZE=32",
        "CROP.size=32",
        "MODEL_OPTIONS={width: 0.25}",
        "EMBEDDING_SIZE=64",
        "DATASETS.0.batch_size=16",
        "MAX_SAMPLES=32",
        "FREQUENCY_SCALE_SAMPLES=32",
        "WORKERS=0",
        "THREADS=1",
        f"OUT={tmp_path / 'run'}",
    ]
    try:
        cfg = load_config(REPO / "configs" / "partialface_lfw_dev.yaml", overrides)
        summary = Trainer(cfg, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt", require_training_state=True)
    assert summary["step"] == checkpoint["step"] == 2 and checkpoint["samples_seen"] == 32
    assert checkpoint["head"]["kwargs"]["num_classes"] == 978  # people outside folds 7-8 with >= 2 images
    report = checkpoint["metrics"][-1]
    assert report["pairs"] == 20 and report["same_pairs"] == 10 and 0.0 <= report["accuracy"] <= 1.0
    losses = [float(row.split(",")[4]) for row in (tmp_path / "run" / "train_log.csv").read_text().splitlines()[1:]]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
