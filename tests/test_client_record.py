"""The client's side of the service: the client record protects exactly as the model's encoder does,
face preparation follows the record, and the client package never loads a backbone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from partialface.alignment import BoxPreparation, FaceFrame, FivePointPreparation
from partialface.client import ClientRecord, open_photo, preparer_for
from partialface.client.prepare import prepare_photo
from partialface.data import CropSpec
from partialface.encoders import get_encoder
from partialface.errors import PartialFaceError
from partialface.plan import ChannelPlan
from partialface.server.deployment import DeployedModel

from .conftest import require_lfw


def _record_of(encoder, model="m@0", side=16) -> dict:
    """A client record for an encoder built here (what DeployedModel.client_record writes)."""
    state = encoder.state_dict()
    return {
        "format": "partialface.client-record/1", "model": model, "encoder": state["name"], "plan": state.get("plan"),
        "channels": state.get("channels"), "frequency_scale": state.get("frequency_scale"),
        "shape": [encoder.out_channels, side, side], "preparation": {"kind": "box", "box": None, "size": side},
    }


@pytest.fixture(scope="module")
def shipped():
    return DeployedModel.load("default")


def test_shipped_record_protects_like_the_model_encoder(shipped):
    record = ClientRecord.from_dict(shipped.client_record())
    faces = torch.rand(5, 3, 112, 112) * 2 - 1
    sent = record.protect(faces, torch.Generator().manual_seed(3))
    expected = shipped.model.encoder.encode_query(faces, torch.Generator().manual_seed(3))
    assert sent.dtype == np.float32 and sent.shape == (5, 27, 112, 112)
    np.testing.assert_allclose(sent, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert (record.model, record.plan_fingerprint, record.scale_fingerprint) == (
        shipped.id, shipped.plan_fingerprint, shipped.scale_fingerprint)


@pytest.mark.parametrize("name", ["fixed", "pruned", "frequency", "rgb", "partialface"])
def test_every_encoder_rule_matches_its_encoder(name):
    plan = ChannelPlan.generate(5)
    scale = torch.rand(192) + 0.5
    encoder = get_encoder(name, plan=plan, frequency_scale=None if name == "rgb" else scale)
    record = ClientRecord.from_dict(_record_of(encoder))
    faces = torch.rand(3, 3, 16, 16) * 2 - 1
    sent = record.protect(faces, torch.Generator().manual_seed(1))
    expected = encoder.encode_query(faces, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(sent, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_each_face_gets_its_own_rank(shipped):
    record = ClientRecord.from_dict(shipped.client_record())
    face = torch.rand(1, 3, 112, 112) * 2 - 1
    sent = record.protect(face.expand(8, -1, -1, -1).contiguous(), torch.Generator().manual_seed(0))
    distinct = {sent[i].tobytes() for i in range(8)}
    assert len(distinct) > 1  # 8 copies of one face, sent in more than one rank


def test_record_round_trips_through_json(shipped):
    data = json.loads(json.dumps(ClientRecord.from_dict(shipped.client_record()).to_dict()))
    again = ClientRecord.from_dict(data)
    assert again.scale_fingerprint == shipped.scale_fingerprint and again.plan == shipped.model.encoder.plan


def test_record_file_load(tmp_path, shipped):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(shipped.client_record()))
    assert ClientRecord.load(path).model == shipped.id
    with pytest.raises(PartialFaceError, match="missing.json: no such client record file"):
        ClientRecord.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PartialFaceError, match="bad.json: not a valid JSON client record"):
        ClientRecord.load(tmp_path / "bad.json")
    ClientRecord.load(path).save(tmp_path / "again.json")
    assert ClientRecord.load(tmp_path / "again.json").to_dict() == ClientRecord.load(path).to_dict()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"format": "x/1"}, "expected 'partialface.client-record/1'"),
        ({"encoder": "resnet"}, "is not one a client can run"),
        ({"plan": None}, "'partialface' needs a plan"),
        ({"plan": {"pruned": [0], "subsets": [[0]], "permutations": [[0]]}}, "invalid channel plan"),
        ({"frequency_scale": [1.0] * 10}, "list of 192 numbers"),
        ({"frequency_scale": [0.0] * 192}, "finite positive"),
        ({"shape": [27, 112]}, "shape must be [C, H, W]"),
        ({"preparation": "crop"}, "preparation must be an object"),
        ({"model": ""}, "model must be a non-empty string"),
    ],
)
def test_bad_records_are_refused_naming_the_field(change, message):
    data = {**_record_of(get_encoder("partialface")), **change}
    with pytest.raises(PartialFaceError) as info:
        ClientRecord.from_dict(data, source="server X")
    assert message in str(info.value) and "server X" in str(info.value)


def test_fixed_encoders_need_their_channels():
    data = {**_record_of(get_encoder("fixed")), "channels": None}
    with pytest.raises(PartialFaceError, match="needs its channels"):
        ClientRecord.from_dict(data)
    with pytest.raises(PartialFaceError, match="channel indices"):
        ClientRecord.from_dict({**data, "channels": [500]})


def test_protect_refuses_faces_of_another_size_and_unknown_dtypes(shipped):
    record = ClientRecord.from_dict(shipped.client_record())
    with pytest.raises(PartialFaceError, match=r"takes faces \(B,3,112,112\)"):
        record.protect(torch.zeros(1, 3, 64, 64), torch.Generator())
    with pytest.raises(PartialFaceError, match="dtype must be one of float32, float16"):
        record.protect(torch.zeros(1, 3, 112, 112), torch.Generator(), "bfloat16")
    sent = record.protect(torch.zeros(2, 3, 112, 112), torch.Generator(), "float16")
    assert sent.dtype == np.float16 and sent.shape == (2, 27, 112, 112)


# ----------------------------------------------------------------------------- preparation
def test_box_crop_cuts_the_recorded_box_of_an_lfw_photo():
    root = require_lfw()
    photo = sorted((root / "images").glob("*/*.jpg"))[0]
    prepare = preparer_for(BoxPreparation(CropSpec()).to_dict())
    faces = prepare_photo(prepare, photo)
    with Image.open(photo) as image:
        expected = np.asarray(image.convert("RGB").crop((69, 69, 181, 181))).transpose(2, 0, 1)
    assert len(faces) == 1 and faces[0].dtype == np.uint8 and faces[0].shape == (3, 112, 112)
    np.testing.assert_array_equal(faces[0], expected)


def test_an_aligned_crop_passes_through_and_a_small_photo_is_named(tmp_path):
    prepare = preparer_for(BoxPreparation(CropSpec()).to_dict())
    aligned = Image.fromarray(np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8))
    np.testing.assert_array_equal(prepare(aligned)[0], np.asarray(aligned).transpose(2, 0, 1))
    small = tmp_path / "small.png"
    Image.new("RGB", (100, 90)).save(small)
    with pytest.raises(PartialFaceError, match="small.png: crop box .* does not fit"):
        prepare_photo(prepare, small)


def test_unreadable_photos_and_faceless_photos_are_named(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(PartialFaceError, match="cannot read photo .*notes.txt"):
        open_photo(bad)
    with pytest.raises(PartialFaceError, match="cannot read photo .*missing.jpg"):
        open_photo(tmp_path / "missing.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "empty.png")
    with pytest.raises(PartialFaceError, match="empty.png: no face found"):
        prepare_photo(lambda image: [], tmp_path / "empty.png")


def test_five_point_preparation_finds_every_face_largest_first(tmp_path):
    """A raw group photo: two LFW faces side by side, one at 70 %: both come back aligned, the larger first,
    each the recorded box of the aligned frame; a photo without a face is named."""
    root = require_lfw()
    photos = sorted((root / "images").glob("*/*.jpg"))[:2]
    with Image.open(photos[0]) as big, Image.open(photos[1]) as small:
        group = Image.new("RGB", (520, 260), (90, 90, 90))
        group.paste(big.convert("RGB"), (0, 5))
        group.paste(small.convert("RGB").resize((175, 175)), (320, 40))
    group.save(tmp_path / "group.png")
    preparation = FivePointPreparation(frame=FaceFrame(250), crop=CropSpec())
    prepare = preparer_for(preparation.to_dict())
    faces = prepare_photo(prepare, tmp_path / "group.png")
    assert len(faces) == 2 and all(face.shape == (3, 112, 112) and face.dtype == np.uint8 for face in faces)
    alone = prepare(Image.open(photos[0]).convert("RGB"))
    assert len(alone) == 1 and np.abs(alone[0].astype(int) - faces[0].astype(int)).mean() < 8  # the larger face first
    Image.new("RGB", (200, 200), (120, 120, 120)).save(tmp_path / "wall.png")
    with pytest.raises(PartialFaceError, match="wall.png: no face found"):
        prepare_photo(prepare, tmp_path / "wall.png")


def test_a_record_this_client_cannot_follow_is_one_error():
    with pytest.raises(PartialFaceError, match="client record: input preparation kind must be one of"):
        preparer_for({"kind": "magic"})
    with pytest.raises(PartialFaceError, match="client record: .*not the ArcFace 112x112"):
        preparer_for({"kind": "five-point", "template": [[0, 0]] * 5})


def test_the_client_package_never_imports_backbones_encoders_or_training():
    code = (
        "import sys, partialface.client, partialface.client.cli, partialface.wire; "
        "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['partialface', 'models'], ['partialface', 'training'], ['partialface', 'encoders'], "
        "['partialface', 'api'], ['partialface', 'server'], ['partialface', 'gallery']) or m == 'fastapi'); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_client_reads_photos_as_every_loader_does(tmp_path):
    """A 16-bit grey PNG is the grey it shows (not white) and an EXIF-rotated photo comes upright."""
    grey = np.full((120, 100), 20000, dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    pixels = np.asarray(open_photo(tmp_path / "grey16.png"))
    assert pixels.shape == (120, 100, 3) and abs(int(pixels[0, 0, 0]) - round(20000 / 257)) <= 1
    photo = Image.new("RGB", (60, 40), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    photo.save(tmp_path / "rotated.jpg", exif=exif)
    assert open_photo(tmp_path / "rotated.jpg").size == (40, 60)
    assert open_photo((tmp_path / "rotated.jpg").read_bytes()).size == (40, 60)
