"""Decision thresholds: the calibration arithmetic on synthetic scores, the file format, and the shipped
thresholds belonging to the shipped weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from partialface.api import shipped_models
from partialface.errors import PartialFaceError
from partialface.server.calibration import pair_scores, thresholds_at
from partialface.server.deployment import weights_id
from partialface.server.thresholds import Thresholds, thresholds_path


def test_pair_scores_cover_every_pair_once_split_by_identity():
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((1100, 8)).astype(np.float32)  # more rows than one block
    labels = rng.integers(0, 40, 1100)
    genuine, impostor = pair_scores(templates, labels)
    assert len(genuine) + len(impostor) == 1100 * 1099 // 2
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones((1100, 1100), bool), k=1)
    full = templates @ templates.T
    np.testing.assert_allclose(np.sort(genuine), np.sort(full[upper & same]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.sort(impostor), np.sort(full[upper & ~same]), rtol=1e-5, atol=1e-5)


def test_thresholds_accept_at_most_the_requested_share_of_impostors():
    rng = np.random.default_rng(1)
    impostor = rng.normal(0.0, 0.1, 200_000).astype(np.float32)
    genuine = rng.normal(0.5, 0.1, 5_000).astype(np.float32)
    values, measured = thresholds_at(genuine, impostor, [1e-3, 1e-4])
    assert list(values) == ["1e-3", "1e-4"] and values["1e-4"] > values["1e-3"]
    descending = np.sort(impostor)[::-1]
    for far, label in ((1e-3, "1e-3"), (1e-4, "1e-4")):
        allowed = int(far * len(impostor))
        accepted = int((impostor >= values[label]).sum())
        assert accepted == allowed  # the lowest threshold that accepts no more than the FAR allows
        assert descending[allowed] < values[label] <= descending[allowed - 1]
        assert measured[label]["false_accepts"] == accepted
        assert measured[label]["tar"] == pytest.approx(float((genuine >= values[label]).mean()))


def test_a_far_the_data_cannot_resolve_is_refused():
    with pytest.raises(PartialFaceError, match="needs at least 10000 impostor pairs"):
        thresholds_at(np.ones(3), np.zeros(500), [1e-4])


def test_thresholds_file_round_trip_and_checks(tmp_path):
    t = Thresholds("m@1", {"1e-3": 0.3, "1e-4": 0.4}, "1e-3", {"1e-3": {"far": 0.001}}, {"people": 3})
    path = t.save(tmp_path / "m.thresholds.json")
    again = Thresholds.load(path, model="m@1")
    assert again == t and again.at() == ("1e-3", 0.3) and again.at("1e-4") == ("1e-4", 0.4)
    assert again.with_default("1e-4").at() == ("1e-4", 0.4)
    with pytest.raises(PartialFaceError, match="calibrated for model m@1, not m@2"):
        Thresholds.load(path, model="m@2")
    with pytest.raises(PartialFaceError, match="far must be one of the calibrated points 1e-3, 1e-4"):
        again.at("0.5")
    with pytest.raises(PartialFaceError, match="partialface calibrate"):
        Thresholds.load(tmp_path / "none.json")
    for bad, message in (({"1e-3": 2.0}, "bad entry"), ({"x": 0.1}, "bad entry"), ({}, "no operating point")):
        with pytest.raises(PartialFaceError, match=message):
            Thresholds("m@1", bad, "1e-3")
    (tmp_path / "other.json").write_text(json.dumps({"format": "nope"}))
    with pytest.raises(PartialFaceError, match="not a partialface.thresholds/1 file"):
        Thresholds.load(tmp_path / "other.json")


@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_each_shipped_model_ships_thresholds_for_its_own_weights(name):
    weights = shipped_models()[name]
    thresholds = Thresholds.load(thresholds_path(weights), model=weights_id(weights, name))
    assert {"1e-3", "1e-4"} <= set(thresholds.thresholds)
    assert thresholds.thresholds["1e-4"] > thresholds.thresholds["1e-3"] > 0
    calibration = thresholds.calibration
    assert calibration["impostor_pairs"] >= 1_000_000  # enough to resolve FAR 1e-4
    assert calibration["command"].startswith(f"partialface calibrate {name} ")
    for far, rates in thresholds.measured.items():
        assert rates["far"] <= float(far)
