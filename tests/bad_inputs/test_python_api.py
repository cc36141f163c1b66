"""Bad inputs through the Python API: NaN and infinity, arrays instead of tensors, plan indices, damaged
checkpoints, output paths, and the report of a folder with bad photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import partialface
from partialface.api import WEIGHTS_DIR, load_model
from partialface.checkpoint import load_checkpoint, save_checkpoint
from partialface.errors import PartialFaceError
from partialface.frequency import to_frequency
from partialface.outputs import OutputFiles, check_output_file
from partialface.plan import ChannelPlan
from partialface.protect import REPORT_NAME, protect_files
from partialface.protected import load_protected, save_protected

from .conftest import face_photo, fingerprint


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_faces_and_sent_channels_are_refused_at_every_public_entry(model, bad: float, tmp_path) -> None:
    faces = torch.zeros(2, 3, 112, 112)
    faces[1, 0, 5, 5] = bad
    for entry in (model.embed, model.protect):
        with pytest.raises(PartialFaceError, match=r"faces holds 1 NaN or infinite value"):
            entry(faces)
    sent = torch.zeros(1, 27, 112, 112)
    sent[0, 3, 1, 1] = bad
    with pytest.raises(PartialFaceError, match="protected inputs holds 1 NaN"):
        model.embed_protected(sent)
    with pytest.raises(PartialFaceError, match="protected face channels holds 1 NaN"):
        save_protected(tmp_path / "x.npz", sent[0], "plan")
    np.savez(tmp_path / "forged.npz", format=np.array("partialface.protected/1"), channels=sent[0].numpy(),
             plan=np.array("p"), scale=np.array("none"), crop=np.array("{}"))
    with pytest.raises(PartialFaceError, match="forged.npz: channels must be a finite"):
        load_protected(tmp_path / "forged.npz")


def test_the_low_level_transform_checks_too() -> None:
    """``to_frequency`` (and ``ChannelPlan.protect`` through it) finds NaN in the same one-pass min/max that checks
    the [-1, 1] range (a plain ValueError: the transform predates PartialFaceError; see docs/reliability.md)."""
    faces = torch.zeros(1, 3, 112, 112)
    faces[0, 0, 50, 50] = float("nan")
    for transform in (to_frequency, lambda x: ChannelPlan.tface().protect(x, 0, 0)):
        with pytest.raises(ValueError, match="NaN or inf"):
            transform(faces)


def test_arrays_integers_and_fractional_indices(model) -> None:
    with pytest.raises(PartialFaceError, match=r"got ndarray \(torch.from_numpy converts an array\)"):
        model.embed(np.zeros((1, 3, 112, 112), dtype=np.float32))
    with pytest.raises(PartialFaceError, match="pixels_to_faces converts uint8 pixels"):
        model.embed(torch.zeros(1, 3, 112, 112, dtype=torch.uint8))
    plan = ChannelPlan.tface()
    with pytest.raises(PartialFaceError, match="subset must be an integer in 0..5, got 31.5"):
        plan.channels(31.5, 0)
    with pytest.raises(PartialFaceError, match="must hold integers"):
        plan.protect(torch.zeros(1, 3, 112, 112), torch.tensor([1.5]), torch.tensor([0]))


@pytest.fixture(scope="module")
def shipped() -> dict:
    return load_checkpoint(WEIGHTS_DIR / "default.pt")


def damaged(shipped: dict, path: Path, model=None, **changes) -> Path:
    entry = {**shipped["model"], **(model or {})}
    save_checkpoint(path, {**shipped, "model": entry, **changes})
    return path


def test_damaged_checkpoints_are_one_line_naming_the_file(shipped: dict, tmp_path: Path) -> None:
    weights = shipped["model"]["state_dict"]
    first = next(name for name, tensor in weights.items() if tensor.dim() == 4)
    cases = [
        ({"state_dict": {k: v for k, v in weights.items() if k != first}}, {}, f"lacks the weights: {first}"),
        ({"state_dict": {**weights, first: weights[first][:1]}}, {}, f"has mis-shaped weights: {first} "),
        ({"state_dict": {**weights, "extra.weight": torch.zeros(2)}}, {}, "has weights this model does not have"),
        ({"state_dict": {**weights, first: weights[first] * float("inf")}}, {}, "has NaN or infinite weights"),
        ({"name": "no_such_net"}, {}, "no_such_net"),
        ({"kwargs": {**shipped["model"]["kwargs"], "colour": 3}}, {}, "colour"),
        ({"kwargs": {**shipped["model"]["kwargs"], "in_channels": 3}}, {},
         "its backbone takes 3 input channels but its encoder 'partialface' gives 27"),
        ({}, {"crop": {"box": [1, 2], "size": 112}}, "CropSpec box must be four ints"),
    ]
    for index, (model_changes, changes, message) in enumerate(cases):
        path = damaged(shipped, tmp_path / f"case{index}.pt", model_changes, **changes)
        with pytest.raises(PartialFaceError) as caught:
            load_model(path)
        text = str(caught.value)
        assert message in text and f"case{index}.pt" in text and "\n" not in text, text


def test_unreadable_checkpoint_files(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((WEIGHTS_DIR / "default.pt").read_bytes()[:1000])
    for path, message in ((truncated, "not a file torch.save wrote"), (tmp_path / "nowhere.pt", "no such model file")):
        with pytest.raises(PartialFaceError, match=message):
            load_model(path)
    with pytest.raises(PartialFaceError, match="device 'cuda:9'|device cuda:9"):
        load_model("default", device="cuda:9")


def test_output_files_never_replace_inputs_or_each_other(tmp_path: Path) -> None:
    photo = face_photo(tmp_path / "face.jpg")
    with pytest.raises(PartialFaceError, match="is an input of this run and is never replaced"):
        check_output_file(photo, "--out", overwrite=True, inputs=[photo])
    link = tmp_path / "link.npz"
    link.symlink_to(photo)
    with pytest.raises(PartialFaceError, match="is an input"):  # through a link too
        check_output_file(link, "--out", overwrite=True, inputs=[photo])
    outputs = OutputFiles("--out")
    outputs.add(tmp_path / "out" / "a.npz", source=tmp_path / "x" / "a.jpg")
    with pytest.raises(PartialFaceError, match=r"'.*x/a.jpg' and '.*y/a.jpg' would both be written to '.*a.npz'"):
        outputs.add(tmp_path / "out" / "a.npz", source=tmp_path / "y" / "a.jpg")


def test_a_folder_with_bad_photos_gives_the_good_ones_and_a_report(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        face_photo(photos / f"good{index}.jpg", seed=index)
    (photos / "empty.jpg").write_bytes(b"")
    face_photo(photos / "wide.png", (400, 250))
    before = fingerprint(photos)
    report = protect_files(photos, tmp_path / "out", progress=False)
    assert sorted(p.name for p in report.written) == ["good0.jpg.npz", "good1.jpg.npz", "good2.jpg.npz"]
    assert [p.name for p, _ in report.failed] == ["empty.jpg", "wide.png"]
    saved = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert saved["written"] == ["good0.jpg.npz", "good1.jpg.npz", "good2.jpg.npz"]
    assert [entry["photo"] for entry in saved["failed"]] == [str(photos / "empty.jpg"), str(photos / "wide.png")]
    assert "is not centred in a 400x250 image" in saved["failed"][1]["error"]
    assert fingerprint(photos) == before


def test_the_package_exports_the_error_type() -> None:
    assert issubclass(partialface.errors.PartialFaceError, ValueError)
