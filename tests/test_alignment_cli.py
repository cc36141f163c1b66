"""``partialface align SRC OUT`` on tiny folders: report, resume, refusals, no foreign file replaced."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from partialface.alignment.dataset import JOURNAL_NAME, REPORT_NAME, AlignSettings, align_dataset
from partialface.cli import main
from partialface.errors import PartialFaceError

from .conftest import require_lfw


def faceless_dataset(root):
    """Two people: a photo with no face, and a file that is no image."""
    (root / "Ann").mkdir(parents=True)
    (root / "Bob").mkdir()
    Image.new("RGB", (120, 100), (30, 140, 200)).save(root / "Ann" / "Ann_0001.jpg")
    (root / "Bob" / "Bob_0001.png").write_bytes(b"not a png")
    return root


@pytest.fixture
def dataset(tmp_path):
    """Faceless photos, plus (when LFW is here) two real faces and a two-face group photo."""
    root = faceless_dataset(tmp_path / "src")
    if (require_lfw_or_none := _lfw_photos()) is not None:
        first, second = require_lfw_or_none
        shutil.copy(first, root / "Ann" / "Ann_0002.jpg")
        group = Image.new("RGB", (700, 260), (90, 90, 90))  # the smaller face is the more central
        group.paste(Image.open(second).resize((180, 180)), (300, 40))
        group.paste(Image.open(first), (0, 5))
        group.save(root / "Bob" / "Bob_0002.jpg")
    return root


def _lfw_photos():
    try:
        images = require_lfw() / "images"
    except pytest.skip.Exception:
        return None
    return sorted(images.glob("*/*.jpg"))[:2]


def run(src, out, *extra):
    return main(["align", str(src), str(out), "--detector", "hog", "--no-progress", *extra])


def test_report_lists_no_face_and_unreadable_photos(tmp_path, capsys):
    src = faceless_dataset(tmp_path / "src")
    out = tmp_path / "out"
    assert run(src, out) == 0
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["photos"] == 2 and report["aligned"] == 0
    assert report["no_face"] == ["Ann/Ann_0001.jpg"]
    assert [e["photo"] for e in report["unreadable"]] == ["Bob/Bob_0001.png"]
    assert "Bob_0001.png" in report["unreadable"][0]["error"]
    printed = capsys.readouterr().out
    assert "no face found: 1" in printed and "no face: Ann/Ann_0001.jpg" in printed and "unreadable: 1" in printed


def test_aligns_real_faces_and_resumes(dataset, tmp_path, capsys):
    require_lfw()
    out = tmp_path / "out"
    assert run(dataset, out, "--frame", "250") == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert written == ["Ann/Ann_0002.jpg", "Bob/Bob_0002.jpg"]
    assert Image.open(out / "Ann" / "Ann_0002.jpg").size == (250, 250)
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["aligned"] == 2 and report["this_run"]["processed"] == 4
    several = report["several_faces"]
    assert [(e["photo"], e["faces"], e["used"]) for e in several] == [("Bob/Bob_0002.jpg", 2, "largest")]
    assert several[0]["used_box"][2] <= 260  # the larger face, on the left
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}

    capsys.readouterr()
    assert run(dataset, out, "--frame", "250") == 0  # the re-run does nothing
    assert "0 processed in this run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")} == before

    # a run killed after journaling a photo but before its image was renamed into place: redone
    (out / "Ann" / "Ann_0002.jpg").unlink()
    assert run(dataset, out, "--frame", "250") == 0
    assert (out / "Ann" / "Ann_0002.jpg").is_file()
    assert json.loads((out / REPORT_NAME).read_text())["this_run"]["processed"] == 1


def test_central_pick_and_chip_frame(dataset, tmp_path):
    require_lfw()
    out = tmp_path / "out"
    assert run(dataset, out, "--frame", "112", "--pick", "central") == 0
    assert Image.open(out / "Bob" / "Bob_0002.jpg").size == (112, 112)
    several = json.loads((out / REPORT_NAME).read_text())["several_faces"]
    assert several[0]["used"] == "central" and several[0]["used_box"][0] >= 300  # the face nearer the middle


def test_refuses_out_inside_or_equal_to_src(tmp_path, capsys):
    src = faceless_dataset(tmp_path / "src")
    for out in (src, src / "aligned", tmp_path):
        assert run(src, out) == 2
        assert "must be outside SRC" in capsys.readouterr().err
    assert not (src / "aligned").exists() and not (src / JOURNAL_NAME).exists()


def test_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    src = faceless_dataset(tmp_path / "src")
    out = tmp_path / "out"
    (out / "Ann").mkdir(parents=True)
    (out / "Ann" / "Ann_0001.jpg").write_bytes(b"precious")
    assert run(src, out) == 2
    assert "Ann_0001.jpg' exists and was not written by partialface align" in capsys.readouterr().err
    assert (out / "Ann" / "Ann_0001.jpg").read_bytes() == b"precious"
    assert not (out / JOURNAL_NAME).exists()

    other = tmp_path / "other"
    other.mkdir()
    (other / REPORT_NAME).write_text("{}")
    assert run(src, other) == 2
    assert (other / REPORT_NAME).read_text() == "{}"


def test_resume_refuses_other_settings_and_retries_failures_on_request(tmp_path, capsys):
    src = faceless_dataset(tmp_path / "src")
    out = tmp_path / "out"
    assert run(src, out) == 0
    assert run(src, out, "--frame", "112") == 2
    assert "use the same settings to resume" in capsys.readouterr().err
    capsys.readouterr()
    assert run(src, out, "--retry-failed") == 0
    assert "2 processed in this run" in capsys.readouterr().out


def test_torn_journal_line_is_ignored(tmp_path):
    src = faceless_dataset(tmp_path / "src")
    out = tmp_path / "out"
    settings = AlignSettings(detector="hog", frame=112)
    align_dataset(src, out, settings, progress=False)
    with open(out / JOURNAL_NAME, "a", encoding="utf-8") as handle:
        handle.write('{"photo": "Ann/Ann_00')  # a kill in the middle of a line
    report = align_dataset(src, out, settings, progress=False)
    assert report["this_run"]["processed"] == 0 and report["no_face"] == ["Ann/Ann_0001.jpg"]


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    src = faceless_dataset(tmp_path / "src")
    assert run(tmp_path / "missing", tmp_path / "out") == 2
    assert "is not a folder" in capsys.readouterr().err
    assert run(src, tmp_path / "out", "--workers", "0") == 2
    assert "workers must be an integer >= 1" in capsys.readouterr().err
    assert run(src, tmp_path / "out", "--frame", "64") == 2
    assert "frame size must be an integer >= 112" in capsys.readouterr().err
    with pytest.raises(PartialFaceError, match="pick"):
        AlignSettings(pick="random")


@pytest.mark.slow
def test_workers_give_the_same_images(dataset, tmp_path):
    require_lfw()
    one, two = tmp_path / "one", tmp_path / "two"
    settings = AlignSettings(detector="hog", frame=112)
    align_dataset(dataset, one, settings, workers=1, progress=False)
    align_dataset(dataset, two, settings, workers=2, progress=False)
    for path in one.rglob("*.jpg"):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(two / path.relative_to(one))))
