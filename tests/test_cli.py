"""The command line, driven through its runner (``partialface.cli.main``) and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from partialface.cli import main
from partialface.frequency import to_frequency
from partialface.plan import ChannelPlan
from partialface.protected import FORMAT, load_protected, save_protected

from .conftest import require_lfw


@pytest.fixture
def photos(tmp_path):
    """Two 250x250 photos in person folders and one 112x112 crop."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for name in ("Ann_Example", "Bob_Example"):
        (root / name).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(root / name / f"{name}_0001.jpg")
    return root


def test_protect_folder_writes_npz_and_previews(photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["protect", str(photos), "--out", str(out), "--seed", "3"]) == 0
    files = sorted(out.rglob("*.npz"))
    assert [f.relative_to(out).as_posix() for f in files] == [
        "Ann_Example/Ann_Example_0001.jpg.npz",  # the photo's whole name is kept: face.jpg and face.png differ
        "Bob_Example/Bob_Example_0001.jpg.npz",
    ]
    assert all(f.with_name(f.name.replace(".npz", ".preview.png")).stat().st_size > 1000 for f in files)
    face = load_protected(files[0])
    plan = ChannelPlan.tface()
    assert face.channels.shape == (27, 112, 112) and face.plan == plan.fingerprint and face.scale == "none"
    assert face.crop == {"box": [69, 69, 181, 181], "size": 112}
    # the sent channels are exactly one rank of the plan (which one is not stored)
    from partialface.data import DEFAULT_CROP, load_face

    full = to_frequency(load_face(photos / "Ann_Example" / "Ann_Example_0001.jpg", DEFAULT_CROP)[None])[0]
    matches = [
        (s, p)
        for s in range(plan.m)
        for p in range(plan.n)
        if torch.allclose(full[plan.channels(s, p)], face.channels, atol=1e-4)
    ]
    assert len(matches) == 1
    assert "wrote 2 protected faces" in capsys.readouterr().out


def test_protect_is_seeded_and_honours_plan_file(photos, tmp_path):
    plan_path = tmp_path / "plan.json"
    assert main(["plan", "generate", "--seed", "11", "--out", str(plan_path)]) == 0
    for run in ("a", "b"):
        assert main(["protect", str(photos / "Ann_Example"), "--out", str(tmp_path / run), "--plan", str(plan_path),
                     "--seed", "5", "--no-preview"]) == 0
    a = load_protected(tmp_path / "a" / "Ann_Example_0001.jpg.npz")
    b = load_protected(tmp_path / "b" / "Ann_Example_0001.jpg.npz")
    assert torch.equal(a.channels, b.channels)
    assert a.plan == ChannelPlan.load(plan_path).fingerprint
    assert not list((tmp_path / "a").glob("*.png"))


def test_protect_errors_are_one_line(tmp_path, capsys):
    assert main(["protect", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"pruned": [0], "subsets": [[0]], "permutations": [[0]]}')
    (tmp_path / "one").mkdir()
    Image.new("RGB", (112, 112)).save(tmp_path / "one" / "x.png")
    assert main(["protect", str(tmp_path / "one"), "--out", str(tmp_path / "o"), "--plan", str(bad)]) == 2
    assert "must cover all 63 kept channels" in capsys.readouterr().err


def test_plan_show(capsys):
    assert main(["plan", "show", "tface"]) == 0
    shown = capsys.readouterr().out
    assert '"fingerprint": "8a0257a1e65a4c01"' in shown and '"s": 9' in shown


def test_protected_file_rejects_other_files(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, channels=np.zeros((2, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="format"):
        load_protected(path)
    (tmp_path / "y.npz").write_bytes(b"nonsense")
    with pytest.raises(ValueError, match="y.npz"):
        load_protected(tmp_path / "y.npz")
    save_protected(tmp_path / "z.npz", torch.ones(3, 4, 4), "abc")
    assert str(np.load(tmp_path / "z.npz")["format"]) == FORMAT


def test_demo_says_whether_the_verified_people_were_seen_in_training():
    from partialface.demo import _seen_note

    seen = _seen_note({"dev_folds_seen_in_training": True,
                       "dev_protocol": {"accuracy": 0.7825, "measured_on": "mfn_partialface"}})
    assert "trained on every LFW person" in seen and "78.25 %" in seen and "mfn_partialface" in seen
    assert _seen_note({"dev_protocol": {"accuracy": 0.7}}).startswith("These people were never seen")
    assert _seen_note({}) == "These people were never seen in training."


def test_demo_without_faces_says_how_to_get_them(tmp_path):
    with pytest.raises(SystemExit, match="DATA="):
        main(["demo", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])


@pytest.mark.lfw
def test_demo_on_real_faces_as_a_process(tmp_path):
    lfw = require_lfw()
    result = subprocess.run(
        [sys.executable, "-m", "partialface", "demo", "--data", str(lfw / "images"), "--out", str(tmp_path), "--count", "2",
         "--no-verify"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    sheets = sorted((tmp_path / "faces").rglob("*.png"))
    assert len(sheets) == 2
    page = (tmp_path / "report.html").read_text()
    assert all(sheet.name in page for sheet in sheets)
    with Image.open(sheets[0]) as sheet:
        assert sheet.width > 4 * 112 and sheet.height > 224


@pytest.mark.lfw
def test_demo_verifies_with_the_default_model_beside_the_rgb_baseline(tmp_path):
    """The demo's verification on a few real pairs of folds 7-8: both shipped models, one plot, one table."""
    lfw = require_lfw()
    lines = (lfw / "pairs.txt").read_text().splitlines()
    folds, per_half = (int(v) for v in lines[0].split())
    keep = 10  # pairs per half-fold: 40 in folds 7-8
    data = tmp_path / "lfw"
    data.mkdir()
    (data / "images").symlink_to(lfw / "images")
    body = [line for f in range(folds) for half in (0, 1)
            for line in lines[1 + (2 * f + half) * per_half:][:keep]]
    (data / "pairs.txt").write_text(f"{folds}\t{keep}\n" + "\n".join(body) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "partialface", "demo", "--data", str(data / "images"), "--out", str(tmp_path / "out"),
         "--count", "1"], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "verification.json").read_text())
    baseline = report["compared_with"]["rgb-baseline"]
    assert report["name"] == "default" and report["pairs"] == baseline["pairs"] == 40
    assert report["plan"] is not None and baseline["plan"] is None and baseline["encoder"] == "rgb"
    assert "default: accuracy" in result.stdout and "rgb-baseline: accuracy" in result.stdout
    page = (tmp_path / "out" / "report.html").read_text()
    assert "what protection costs" in page and page.count("TAR at FAR=1e-3") == 1
    assert (tmp_path / "out" / "roc.png").stat().st_size > 0


@pytest.mark.parametrize("error", [RuntimeError("internal state lost"), ValueError("a bug, not a user mistake")])
def test_a_bug_keeps_its_traceback(photos, tmp_path, monkeypatch, error):
    """Only PartialFaceError is a user's mistake (exit 2, one line); anything else propagates out of main."""
    import partialface.protect

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(partialface.protect, "protect_files", broken)
    with pytest.raises(type(error), match=str(error)):
        main(["protect", str(photos), "--out", str(tmp_path / "o")])


def test_train_reports_user_errors_in_one_line_and_lets_bugs_through(monkeypatch, capsys):
    import partialface.training
    from partialface.errors import PartialFaceError

    def bad_config(paths, overrides):  # train passes the list of config files
        raise PartialFaceError(f"config {paths[0]!r}: unknown config key 'LRSS'; close matches: LRS")

    monkeypatch.setattr(partialface.training, "load_config", bad_config)
    assert main(["train", "run.yaml"]) == 2
    assert capsys.readouterr().err == "partialface train: error: config 'run.yaml': unknown config key 'LRSS'; close matches: LRS\n"

    def broken(paths, overrides):
        raise KeyError("LR")

    monkeypatch.setattr(partialface.training, "load_config", broken)
    with pytest.raises(KeyError):
        main(["train", "run.yaml"])

