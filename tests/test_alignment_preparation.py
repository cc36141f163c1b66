"""InputPreparation: the record of how a model's inputs were made, and following it on a raw photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from partialface.alignment import FaceFrame
from partialface.alignment.preparation import BoxPreparation, FivePointPreparation, InputPreparation
from partialface.data import DEFAULT_CROP, CropSpec
from partialface.errors import PartialFaceError

from .conftest import require_lfw


@pytest.mark.parametrize(
    "preparation",
    [
        BoxPreparation(),
        BoxPreparation(CropSpec(None, 96)),
        FivePointPreparation(),
        FivePointPreparation("hog", "dlib5", FaceFrame(250), DEFAULT_CROP),
        FivePointPreparation(frame=FaceFrame(200, offset=20), crop=CropSpec((10, 10, 150, 150), 128)),
    ],
)
def test_round_trip_through_json(preparation):
    record = json.loads(json.dumps(preparation.to_dict()))
    assert record["kind"] == preparation.kind
    again = InputPreparation.from_dict(record)
    assert again == preparation and type(again) is type(preparation)
    assert again.size == preparation.size


def test_records_are_explicit():
    assert BoxPreparation().to_dict() == {"kind": "box", "box": [69, 69, 181, 181], "size": 112}
    record = FivePointPreparation(frame=FaceFrame(250), crop=DEFAULT_CROP).to_dict()
    assert record["template"][0] == [38.2946, 51.6963] and record["template_size"] == 112
    assert record["frame"] == {"size": 250, "offset": 69} and record["crop"] == {"box": [69, 69, 181, 181], "size": 112}
    assert (record["detector"], record["landmarks"]) == ("hog+cnn", "dlib68")


@pytest.mark.parametrize(
    "record,message",
    [
        ({"kind": "mesh"}, "kind must be one of box, five-point"),
        ({}, "kind must be one of"),
        ({"kind": "box", "box": [0, 0, 10, 10], "size": 8, "colour": 1}, "unknown keys"),
        ({"kind": "box", "box": [10, 10, 5, 5]}, "box"),
        ({"kind": "five-point", "template": [[0, 0]] * 5}, "ArcFace"),
        ({"kind": "five-point", "template": "tface"}, "ArcFace"),
        ({"kind": "five-point", "template_size": 128}, "ArcFace"),
        ({"kind": "five-point", "detector": "retina"}, "detector must be one of"),
        ({"kind": "five-point", "landmarks": "dlib194"}, "landmarks must be one of"),
        ({"kind": "five-point", "frame": {"size": 90}}, "frame size"),
        ({"kind": "five-point", "frame": {"size": 112}, "crop": {"box": [0, 0, 200, 200], "size": 112}}, "does not fit"),
        ({"kind": "five-point", "crop": [1, 2]}, "crop must be a mapping"),
    ],
)
def test_bad_records_are_one_clear_error(record, message):
    with pytest.raises(PartialFaceError, match=message):
        InputPreparation.from_dict(record)


def test_box_preparation_crops_any_mode(tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (250, 250), dtype=np.uint8)
    path = tmp_path / "grey16.png"
    Image.fromarray(photo.astype(np.uint16) * 257).save(path)
    face = BoxPreparation().prepare_file(path)
    assert face.mode == "RGB" and face.size == (112, 112)
    np.testing.assert_array_equal(np.asarray(face)[..., 0], photo[69:181, 69:181])
    with pytest.raises(PartialFaceError, match="small.png"):
        Image.new("RGB", (50, 60)).save(tmp_path / "small.png")
        BoxPreparation().prepare_file(tmp_path / "small.png")


def test_five_point_no_face_names_the_file(tmp_path):
    path = tmp_path / "wall.png"
    Image.new("RGB", (120, 120), (200, 180, 160)).save(path)
    with pytest.raises(PartialFaceError, match=r"no face found in .*wall\.png"):
        FivePointPreparation(detector="hog").prepare_file(path)


def test_context_frame_with_the_default_crop_is_the_aligned_chip():
    path = sorted((require_lfw() / "images").glob("*/*.jpg"))[0]
    chip = FivePointPreparation(detector="hog").prepare_file(path)
    framed = FivePointPreparation(detector="hog", frame=FaceFrame(250), crop=DEFAULT_CROP).prepare_file(path)
    assert chip.size == framed.size == (112, 112)
    difference = np.abs(np.asarray(chip).astype(int) - np.asarray(framed).astype(int))
    assert difference.max() <= 1  # one transform, computed through a different matrix product


def test_a_scaled_frame_places_the_template_and_round_trips(tmp_path):
    """A frame with a scale and an (x, y) offset (a collection's own framing, e.g. LFW's) puts the five
    points where it says, and its record survives JSON."""
    frame = FaceFrame(250, offset=(59.75, 54.0), scale=1.15)
    assert frame.face_box == (60, 54, 189, 183)
    np.testing.assert_allclose(frame.placement @ [56.0, 71.0, 1.0], [59.75 + 1.15 * 56, 54 + 1.15 * 71, 1.0])
    record = FivePointPreparation(frame=frame, crop=DEFAULT_CROP).to_dict()
    assert InputPreparation.from_dict(json.loads(json.dumps(record))).frame == frame
    for bad in (dict(offset=(200.0, 0.0), scale=1.15), dict(scale=0.1), dict(offset=(1, 2, 3))):
        with pytest.raises(PartialFaceError, match="frame"):
            FaceFrame(250, **bad)


def test_protect_follows_a_five_point_preparation(tmp_path):
    """``protect_files`` with a model's five-point record aligns the raw photo and records how."""
    from partialface.protect import protect_files
    from partialface.protected import load_protected

    photo = sorted((require_lfw() / "images").glob("*/*.jpg"))[0]
    raw = tmp_path / "raw.png"
    with Image.open(photo) as image:  # the face off-centre in a larger photo: no box could cut it
        canvas = Image.new("RGB", (400, 320), (40, 40, 40))
        canvas.paste(image, (140, 50))
        canvas.save(raw)
    preparation = FivePointPreparation(detector="hog", frame=FaceFrame(250), crop=DEFAULT_CROP)
    report = protect_files(raw, tmp_path / "out", seed=1, previews=False, progress=False, preparation=preparation)
    saved = load_protected(report.written[0])
    assert saved.channels.shape == (27, 112, 112) and saved.crop["kind"] == "five-point"
