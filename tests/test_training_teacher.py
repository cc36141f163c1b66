"""The teacher cache: the face box dlib is given, a resumable build, refusals, and dlib on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partialface.cli import main
from partialface.data import DEFAULT_CROP, CropSpec
from partialface.dlib_recognizer import recognizer_unavailable_reason
from partialface.training.teacher import TeacherCache, build_teacher_cache, cache_key, describe_file, teacher_box

from ._training_fixtures import tiny_config, write_identities

DLIB_MISSING = recognizer_unavailable_reason()


class CountingRecognizer:
    """Stands in for dlib: the descriptor is the box's left half minus its right half (mean brightness),
    so it tells a face from its mirror image; calls are counted."""

    def __init__(self) -> None:
        self.calls = 0

    def describe(self, image: np.ndarray, box):
        self.calls += 1
        left, top, right, bottom = box
        face = image[top:bottom, left:right].astype(float)
        half = face.shape[1] // 2
        return np.full(128, face[:, :half].mean() - face[:, half:].mean()), True


def test_teacher_box_is_the_students_crop() -> None:
    assert teacher_box(250, 250, DEFAULT_CROP) == (69, 69, 181, 181)
    assert teacher_box(112, 112, DEFAULT_CROP) == (0, 0, 112, 112)  # already the crop: the whole image
    assert teacher_box(300, 200, CropSpec(None, 112)) == (0, 0, 300, 200)
    with pytest.raises(ValueError, match="does not fit"):
        teacher_box(100, 100, DEFAULT_CROP)


def test_mirrored_descriptor_uses_the_mirrored_box(tmp_path: Path) -> None:
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[:, 20:25] = 200  # a bright band on the left of the face box (20..40), outside the mirrored box
    Image.fromarray(pixels).save(tmp_path / "face.png")
    descriptors = describe_file(CountingRecognizer(), tmp_path / "face.png", CropSpec((20, 0, 40, 40), 8))
    # mirrored, the face lies at 0..20 with the band on its right: the same face, mirrored
    assert descriptors.shape == (2, 128) and descriptors[0, 0] == 100 and descriptors[1, 0] == -100


def test_build_resumes_and_refuses_foreign_files(tmp_path: Path) -> None:
    write_identities(tmp_path, people=2, per_person=3)
    paths = sorted((tmp_path / "images").rglob("*.jpg"))
    crop = CropSpec(None, 16)
    recognizer = CountingRecognizer()
    out = tmp_path / "cache" / "teacher.npz"
    first = build_teacher_cache(paths[:4], crop, out, recognizer=recognizer, progress=False)
    assert len(first) == 4 and recognizer.calls == 8  # each image as it is and mirrored
    cache = build_teacher_cache(paths, crop, out, recognizer=recognizer, progress=False)
    assert len(cache) == 6 and recognizer.calls == 12  # only the two new images
    loaded = TeacherCache.load(out)
    assert loaded.keys == [cache_key(p) for p in paths] and loaded.info["versions"] is not None
    assert loaded.lookup(paths[::-1]).shape == (6, 2, 128)
    assert np.allclose(loaded.lookup([paths[5]])[0].numpy(), describe_file(CountingRecognizer(), paths[5], crop))
    with pytest.raises(ValueError, match="built for crop"):
        build_teacher_cache(paths, DEFAULT_CROP, out, recognizer=recognizer, progress=False)
    (tmp_path / "notes.npz").write_text("my notes")
    with pytest.raises(ValueError, match="not a readable teacher cache"):
        build_teacher_cache(paths, crop, tmp_path / "notes.npz", recognizer=recognizer, progress=False)
    assert (tmp_path / "notes.npz").read_text() == "my notes"


def test_teacher_command_needs_a_cache_path(tmp_path: Path, capsys) -> None:
    import yaml

    write_identities(tmp_path, people=2, per_person=2)
    config = tmp_path / "run.yaml"
    cfg = tiny_config(tmp_path, tmp_path / "run", EXCLUDE_PAIRS="", EXCLUDE_FOLDS=[], DEV_PAIRS="")
    config.write_text(yaml.safe_dump(cfg))
    assert main(["teacher", str(config)]) == 2
    assert "TEACHER_CACHE" in capsys.readouterr().err


@pytest.mark.skipif(DLIB_MISSING is not None, reason=f"dlib unavailable: {DLIB_MISSING}")
@pytest.mark.lfw
def test_dlib_teacher_on_real_faces(lfw_root: Path) -> None:
    from partialface.dlib_recognizer import DlibRecognizer

    recognizer = DlibRecognizer()
    images = lfw_root / "images"
    same = [describe_file(recognizer, images / "Aaron_Peirsol" / f"Aaron_Peirsol_000{k}.jpg", DEFAULT_CROP)
            for k in (1, 2)]
    other = describe_file(recognizer, images / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg", DEFAULT_CROP)
    assert np.linalg.norm(same[0][0] - same[0][1]) < 0.4  # the mirrored face is still the same face
    assert np.linalg.norm(same[0][0] - same[1][0]) < 0.6 < np.linalg.norm(same[0][0] - other[0])
