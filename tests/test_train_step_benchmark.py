"""benchmarks/train_step.py: one row per backbone, encoder and setting, each with its speed against the first."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import REPO_ROOT, load_script


def test_every_setting_is_timed_and_compared_with_the_first(tmp_path: Path, capsys) -> None:
    bench = load_script(REPO_ROOT / "benchmarks" / "train_step.py", "train_step_benchmark")
    out = tmp_path / "steps.json"
    assert bench.main(["--models", "mobilefacenet", "--encoders", "partialface", "--size", "16", "--batch", "4",
                       "--precisions", "float32", "bfloat16", "--layouts", "contiguous", "channels_last",
                       "--steps", "1", "--warmup", "0", "--classes", "5", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    settings = [(row["precision"], row["layout"]) for row in rows]
    assert settings == [("float32", "contiguous"), ("float32", "channels_last"),
                        ("bfloat16", "contiguous"), ("bfloat16", "channels_last")]
    assert rows[0]["speed_vs_first"] == 1.0
    for row in rows:
        assert row["in_channels"] == 27 and row["images_per_second"] > 0
        assert abs(row["speed_vs_first"] - row["images_per_second"] / rows[0]["images_per_second"]) < 1e-9
    assert "bfloat16  channels_last" in capsys.readouterr().out


def test_rank_keyed_partialface_is_timed_behind_the_rank_keyed_input(tmp_path: Path) -> None:
    bench = load_script(REPO_ROOT / "benchmarks" / "train_step.py", "train_step_benchmark")
    out = tmp_path / "keyed.json"
    assert bench.main(["--models", "mobilefacenet", "--encoders", "rgb", "partialface", "--rank-keyed", "--size", "16",
                       "--batch", "4", "--steps", "1", "--warmup", "0", "--classes", "5", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["model"] for row in rows] == ["mobilefacenet", "mobilefacenet (rank-keyed)"]
