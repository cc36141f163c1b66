"""The dlib judge: chips and descriptors of real LFW faces, leakage metrics, and the judged harness path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from partialface.attacks import BUDGET_PRESETS, AttackSettings, run_attacks
from partialface.attacks.judge import (
    CHIP_SIZE,
    DESCRIPTOR_SIZE,
    Embeddings,
    JudgeProtocol,
    faces_to_uint8_images,
    identity_leakage,
    judge_unavailable_reason,
)
from partialface.attacks.threats import Scenario
from partialface.data.crop import DEFAULT_CROP, load_face

from ._attack_fixtures import synthetic_attacker, synthetic_victims  # noqa: F401

JUDGE_MISSING = judge_unavailable_reason()
needs_judge = pytest.mark.skipif(JUDGE_MISSING is not None, reason=f"dlib judge unavailable: {JUDGE_MISSING}")


@pytest.fixture(scope="module")
def judge():
    from partialface.attacks.judge import DlibJudge

    return DlibJudge()


def test_leakage_of_perfect_and_swapped_recoveries() -> None:
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(20, DESCRIPTOR_SIZE))
    protocol = JudgeProtocol(np.arange(20), (np.arange(20) + 1) % 20)
    perfect = identity_leakage(Embeddings(gallery + 0.01 * rng.normal(size=gallery.shape), np.ones(20, bool)),
                               gallery, protocol)
    assert (perfect.verification_accuracy, perfect.rank1, perfect.detection_rate) == (100.0, 100.0, 100.0)
    # Each recovered face looks exactly like its impostor: no identity leaks, rank-1 is 0.
    swapped = identity_leakage(Embeddings(gallery[protocol.impostor_of_victim], np.zeros(20, bool)), gallery,
                               protocol)
    assert swapped.rank1 == 0.0 and swapped.verification_accuracy <= 50.0 and swapped.detection_rate == 0.0
    with pytest.raises(ValueError, match="own person"):
        JudgeProtocol(np.arange(3), np.array([1, 1, 0]))


def test_faces_to_uint8_images_maps_the_range() -> None:
    faces = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    images = faces_to_uint8_images(faces)
    assert images.shape == (1, 1, 3, 3) and images.dtype == np.uint8
    assert images[0, 0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match="RGB faces"):
        faces_to_uint8_images(torch.zeros(1, 27, 8, 8))


@needs_judge
@pytest.mark.lfw
def test_same_person_is_closer_than_different_people(judge, lfw_root) -> None:
    images = lfw_root / "images"
    faces = torch.stack([load_face(images / name, DEFAULT_CROP) for name in (
        "Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
        "Abdullah_Gul/Abdullah_Gul_0001.jpg")])
    chip, detected = judge.chip(faces_to_uint8_images(faces[:1])[0])
    assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3) and detected
    embeddings = judge.embed(faces)
    same = np.linalg.norm(embeddings.descriptors[0] - embeddings.descriptors[1])
    different = [np.linalg.norm(embeddings.descriptors[i] - embeddings.descriptors[2]) for i in (0, 1)]
    assert same < min(different)
    assert same < 0.6 < min(different)  # dlib's documented decision threshold


@needs_judge
@pytest.mark.slow
def test_harness_reports_judge_scores(judge) -> None:
    # Undetectable synthetic faces exercise the whole-image fallback of the chip.
    settings = AttackSettings(scenarios=(Scenario("rgb", "white-box"),), progress=False)
    evaluation = run_attacks(synthetic_attacker(), synthetic_victims(10), settings, BUDGET_PRESETS["tiny"], judge)
    leakage = evaluation.results[0].leakage
    assert leakage is not None and 0.0 <= leakage.verification_accuracy <= 100.0
    assert evaluation.original_leakage is not None
    assert "dlib-bin" in evaluation.judge_versions or "dlib" in evaluation.judge_versions
