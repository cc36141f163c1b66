"""A trained checkpoint flows through load_model, the eval CLI (JSON, ROC, per-rank) and export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from partialface import load_model
from partialface.cli import main
from partialface.training import Trainer, export_model, resolve_config

from ._training_fixtures import tiny_config, write_identities, write_pairs


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("faces")
    write_pairs(root / "pairs.txt", write_identities(root))
    out = root / "run"
    cfg = resolve_config(tiny_config(root, out, ENCODER="partialface", PLAN={"generate": 3, "m": 3, "n": 2}, NUM_EPOCH=1))
    Trainer(cfg, progress=False).fit()
    return root, out / "checkpoint.pt"


def test_load_model_embeds_rgb_and_protected_inputs(trained):
    root, ckpt = trained
    model = load_model(ckpt)
    faces = torch.rand(3, 3, 16, 16) * 2 - 1
    g = torch.Generator().manual_seed(0)
    templates = model.embed(faces, g)
    assert templates.shape == (3, 16)
    assert torch.allclose(templates.norm(dim=1), torch.ones(3), atol=1e-5)
    sent = model.protect(faces, torch.Generator().manual_seed(0))
    assert sent.shape == (3, 54, 16, 16)  # m=3 subsets of 18 frequencies, 3 colours
    assert torch.allclose(model.embed_protected(sent), templates, atol=1e-5)
    with pytest.raises(ValueError, match="expected"):
        model.embed_protected(torch.zeros(1, 27, 16, 16))


def test_eval_cli_writes_report_roc_and_rank_spread(trained, tmp_path, capsys):
    root, ckpt = trained
    report_path, roc = tmp_path / "report.json", tmp_path / "roc.png"
    code = main(["eval", "--model", str(ckpt), "--pairs", str(root / "pairs.txt"), "--images", str(root / "images"),
                 "--folds", "2", "--json", str(report_path), "--roc", str(roc), "--per-rank", "--quiet"])
    assert code == 0
    report = json.loads(report_path.read_text())
    for key in ("accuracy", "accuracy_std", "tar_at_far_1e-3", "auc", "pairs", "encoder"):
        assert key in report
    assert report["pairs"] == 20 and report["encoder"] == "partialface" and 0 <= report["accuracy"] <= 1
    spread = report["per_rank"]
    assert len(spread["ranks"]) == 6
    assert spread["rank_accuracy_min"] <= spread["rank_accuracy_mean"] <= spread["rank_accuracy_max"]
    assert -1 <= spread["template_consistency_mean"] <= 1
    assert roc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy" in capsys.readouterr().out
    # seeded: the same command gives the same numbers
    again = tmp_path / "again.json"
    main(["eval", "--model", str(ckpt), "--pairs", str(root / "pairs.txt"), "--images", str(root / "images"),
          "--folds", "2", "--json", str(again), "--quiet"])
    assert json.loads(again.read_text())["accuracy"] == report["accuracy"]


def test_exported_model_gives_the_same_templates(trained, tmp_path):
    _, ckpt = trained
    slim = export_model(ckpt, tmp_path / "slim.pt", card={"data": "tiny synthetic faces"})
    assert Path(slim).stat().st_size < Path(ckpt).stat().st_size
    assert load_model(slim).card == {"data": "tiny synthetic faces"}
    faces = torch.rand(2, 3, 16, 16) * 2 - 1
    a = load_model(ckpt).embed(faces, torch.Generator().manual_seed(1))
    b = load_model(slim).embed(faces, torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-6)


def test_eval_errors_name_the_problem(trained, tmp_path, capsys):
    root, ckpt = trained
    assert main(["eval", "--model", str(tmp_path / "nope.pt"), "--pairs", str(root / "pairs.txt")]) == 2
    assert "nope.pt" in capsys.readouterr().err
    assert main(["eval", "--model", str(ckpt), "--pairs", str(root / "pairs.txt")]) == 2
    assert "--images" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["eval", "--model", str(ckpt), "--pairs", str(root / "pairs.txt"), "--images", str(root / "images"),
                     "--device", "cuda"]) == 2
        assert "--device cuda: torch sees no CUDA device" in capsys.readouterr().err
    assert main(["eval", "--model", str(ckpt), "--pairs", str(root / "pairs.txt"), "--device", "gpu0"]) == 2
    assert "--device 'gpu0'" in capsys.readouterr().err
