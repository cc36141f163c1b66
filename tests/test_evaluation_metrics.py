"""Tests for partialface.evaluation.metrics: threshold search, k-fold accuracy, TAR@FAR, AUC, ROC plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from partialface.evaluation.metrics import (
    TarAtFar,
    accuracy_at_threshold,
    best_threshold,
    far_label,
    kfold_accuracy,
    plot_roc,
    roc_auc,
    stratified_folds,
    tar_at_far,
    verification_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------------
# hand-computed cases
# --------------------------------------------------------------------------------------------------
def test_best_threshold_is_the_midpoint_of_the_separating_gap() -> None:
    threshold, accuracy = best_threshold([0.9, 0.8, 0.3, 0.1], [True, True, False, False])
    assert threshold == pytest.approx(0.55)
    assert accuracy == 1.0


def test_accuracy_at_threshold_accepts_scores_equal_to_the_threshold() -> None:
    scores, issame = [0.5, 0.5, 0.2], [1, 0, 0]
    # 0.5 >= 0.5: both 0.5-pairs are called "same"; the different-person one is then wrong.
    assert accuracy_at_threshold(scores, issame, 0.5) == pytest.approx(2 / 3)
    assert accuracy_at_threshold(scores, issame, 0.6) == pytest.approx(2 / 3)
    assert accuracy_at_threshold(scores, issame, 0.1) == pytest.approx(1 / 3)


def test_kfold_accuracy_two_folds_by_hand() -> None:
    # Fold A: 0.9 S, 0.6 S, 0.4 D, 0.2 D.  Fold B: 0.7 S, 0.35 S, 0.5 D, 0.1 D.
    # Train on B: thresholds 0.225 and 0.6 both reach 3/4; the lower (0.225) wins. On A: 3/4.
    # Train on A: threshold 0.5 separates it. On B: 0.7 right, 0.35 wrong, 0.5 wrong, 0.1 right: 2/4.
    scores = [0.9, 0.6, 0.4, 0.2, 0.7, 0.35, 0.5, 0.1]
    issame = [1, 1, 0, 0, 1, 1, 0, 0]
    mean, std, thresholds = kfold_accuracy(scores, issame, n_folds=2)
    assert mean == pytest.approx(0.625)
    assert std == pytest.approx(0.125)
    np.testing.assert_allclose(thresholds, [0.225, 0.5])


def test_given_fold_ids_match_the_equivalent_consecutive_split() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=60)
    issame = rng.random(60) < 0.5
    default = kfold_accuracy(scores, issame, n_folds=6)
    explicit = kfold_accuracy(scores, issame, folds=np.repeat(np.arange(6), 10))
    assert default[:2] == pytest.approx(explicit[:2])
    np.testing.assert_array_equal(default[2], explicit[2])


# --------------------------------------------------------------------------------------------------
# brute force on random data
# --------------------------------------------------------------------------------------------------
def _brute_force_best_threshold(scores: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    """Try every midpoint between distinct scores plus both ends, pair by pair; first maximum wins."""
    distinct = sorted(set(scores.tolist()))
    candidates = [distinct[0]]
    candidates += [(low + high) / 2 for low, high in zip(distinct[:-1], distinct[1:])]
    candidates.append(np.nextafter(distinct[-1], np.inf))
    best = (None, -1.0)
    for threshold in candidates:
        correct = sum(
            (score >= threshold) == same for score, same in zip(scores.tolist(), issame.tolist())
        )
        accuracy = correct / len(scores)
        if accuracy > best[1]:
            best = (threshold, accuracy)
    return best


def _brute_force_kfold(
    scores: np.ndarray, issame: np.ndarray, fold_of_pair: np.ndarray
) -> tuple[float, float, list[float]]:
    accuracies, thresholds = [], []
    for fold in sorted(set(fold_of_pair.tolist())):
        held_out = fold_of_pair == fold
        threshold, _ = _brute_force_best_threshold(scores[~held_out], issame[~held_out])
        predictions = scores[held_out] >= threshold
        accuracies.append(float(np.mean(predictions == issame[held_out])))
        thresholds.append(threshold)
    return float(np.mean(accuracies)), float(np.std(accuracies)), thresholds


def _random_pairs(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    issame = rng.random(size) < 0.5
    scores = rng.normal(size=size) + 1.2 * issame
    if seed % 2:  # odd seeds: coarse scores, so that many pairs tie
        scores = np.round(scores, 1)
    return scores, issame


@pytest.mark.parametrize("seed", range(6))
def test_kfold_accuracy_matches_brute_force_with_consecutive_folds(seed: int) -> None:
    scores, issame = _random_pairs(seed, size=103)  # 103 pairs: unequal fold sizes
    consecutive = np.concatenate(
        [np.full(len(part), fold) for fold, part in enumerate(np.array_split(np.arange(103), 10))]
    )
    mean, std, thresholds = kfold_accuracy(scores, issame, n_folds=10)
    expected_mean, expected_std, expected_thresholds = _brute_force_kfold(scores, issame, consecutive)
    assert mean == pytest.approx(expected_mean)
    assert std == pytest.approx(expected_std)
    np.testing.assert_allclose(thresholds, expected_thresholds)


@pytest.mark.parametrize("seed", range(4))
def test_kfold_accuracy_matches_brute_force_with_given_fold_ids(seed: int) -> None:
    scores, issame = _random_pairs(seed + 100, size=90)
    fold_ids = np.random.default_rng(seed).integers(0, 5, size=90)
    mean, std, thresholds = kfold_accuracy(scores, issame, folds=fold_ids)
    expected_mean, expected_std, expected_thresholds = _brute_force_kfold(scores, issame, fold_ids)
    assert mean == pytest.approx(expected_mean)
    assert std == pytest.approx(expected_std)
    np.testing.assert_allclose(thresholds, expected_thresholds)


@pytest.mark.parametrize("seed", range(4))
def test_best_threshold_reaches_the_best_accuracy_of_any_threshold(seed: int) -> None:
    scores, issame = _random_pairs(seed + 200, size=150)
    _, accuracy = best_threshold(scores, issame)
    # Any threshold partitions the pairs like one of: "score >= s" for a score s, or reject all.
    every_partition = [np.mean((scores >= s) == issame) for s in scores] + [np.mean(~issame)]
    assert accuracy == pytest.approx(max(every_partition))


def test_perfect_separation_gives_accuracy_one() -> None:
    rng = np.random.default_rng(0)
    issame = np.arange(400) % 2 == 0
    scores = np.where(issame, rng.uniform(0.6, 1.0, 400), rng.uniform(-1.0, 0.4, 400))
    mean, std, thresholds = kfold_accuracy(scores, issame)
    assert mean == 1.0 and std == 0.0
    assert np.all((thresholds > 0.4) & (thresholds < 0.6))
    assert roc_auc(scores, issame) == 1.0


def test_random_scores_give_chance_accuracy() -> None:
    rng = np.random.default_rng(1)
    issame = rng.random(4000) < 0.5
    scores = rng.normal(size=4000)
    mean, _, _ = kfold_accuracy(scores, issame)
    assert abs(mean - 0.5) < 0.04
    assert abs(roc_auc(scores, issame) - 0.5) < 0.04


def test_stratified_folds_share_classes_evenly_and_keep_order() -> None:
    # Two LFW folds: 300 same, 300 different, 300 same, 300 different.
    issame = np.tile(np.repeat([True, False], 300), 2)
    fold_ids = stratified_folds(issame, n_folds=10)
    for fold in range(10):
        members = fold_ids == fold
        assert issame[members].sum() == 60 and (~issame[members]).sum() == 60
    assert np.all(np.diff(fold_ids[issame]) >= 0)  # consecutive runs of each class
    with pytest.raises(ValueError, match="at least n_folds"):
        stratified_folds([True] * 20 + [False] * 5, n_folds=10)


# --------------------------------------------------------------------------------------------------
# TAR at FAR and AUC
# --------------------------------------------------------------------------------------------------
def _known_roc_case() -> tuple[np.ndarray, np.ndarray]:
    """1,000 impostors at 0.000..0.999; genuines at 2.0, 1.5, 0.9985, 0.998 (tied with an impostor), 0.5.

    ROC vertices: (0, .4) -> threshold 0.999: (.001, .4) -> 0.9985: (.001, .6) -> 0.998: (.002, .8).
    """
    impostors = np.arange(1000) / 1000
    genuines = np.array([2.0, 1.5, 0.9985, 0.998, 0.5])
    scores = np.concatenate([impostors, genuines])
    issame = np.concatenate([np.zeros(1000, bool), np.ones(5, bool)])
    return scores, issame


def test_tar_at_far_exact_vertex() -> None:
    result = tar_at_far(*_known_roc_case(), far=1e-3)
    assert result == TarAtFar(
        tar=pytest.approx(0.6), far=1e-3, requested_far=1e-3, threshold=0.9985, limited=False,
        impostor_pairs=1000,
    )


def test_tar_at_far_interpolates_along_a_tied_segment() -> None:
    scores, issame = _known_roc_case()
    assert tar_at_far(scores, issame, far=1.5e-3).tar == pytest.approx(0.7)
    assert tar_at_far(scores, issame, far=1.25e-3).tar == pytest.approx(0.65)
    two = tar_at_far(scores, issame, far=2e-3)
    assert two.tar == pytest.approx(0.8) and two.threshold == 0.998


def test_tar_at_far_with_too_few_impostors_is_reported_at_one_false_accept() -> None:
    impostors = np.arange(100) / 100
    scores = np.concatenate([impostors, [2.0, 0.995, 0.5, 0.2]])
    issame = np.concatenate([np.zeros(100, bool), np.ones(4, bool)])
    result = tar_at_far(scores, issame, far=1e-3)
    assert result.limited
    assert result.far == pytest.approx(0.01) and result.requested_far == 1e-3
    assert result.tar == pytest.approx(0.5)  # threshold 0.99 accepts 2.0 and 0.995
    assert result.threshold == pytest.approx(0.99)
    assert not tar_at_far(scores, issame, far=0.01).limited


def test_roc_auc_known_values() -> None:
    assert roc_auc([0.9, 0.1], [1, 0]) == 1.0
    assert roc_auc([0.1, 0.9], [1, 0]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == 0.5
    # one inverted pair among 2 x 2: AUC = 3/4
    assert roc_auc([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0]) == pytest.approx(0.75)


# --------------------------------------------------------------------------------------------------
# report, labels, input validation
# --------------------------------------------------------------------------------------------------
def test_verification_report_keys_and_consistency() -> None:
    scores, issame = _random_pairs(7, size=200)
    report = verification_report(scores, issame, fars=(1e-3, 1e-2))
    mean, std, thresholds = kfold_accuracy(scores, issame)
    assert report["accuracy"] == pytest.approx(mean)
    assert report["accuracy_std"] == pytest.approx(std)
    assert report["threshold"] == pytest.approx(thresholds.mean())
    assert report["pairs"] == 200
    assert report["same_pairs"] + report["different_pairs"] == 200
    assert report["best_threshold_accuracy"] >= report["accuracy"]
    assert report["auc"] == pytest.approx(roc_auc(scores, issame))
    assert report["tar_at_far_1e-3"] == pytest.approx(tar_at_far(scores, issame, 1e-3).tar)
    assert report["tar_at_far_1e-3_limited"] is True  # ~100 impostor pairs cannot resolve 1e-3
    assert report["tar_at_far_1e-2_limited"] is False
    json.dumps(report, allow_nan=False)


def test_far_label() -> None:
    assert [far_label(far) for far in (1e-3, 1e-4, 5e-4, 1.5e-3, 0.1)] == [
        "1e-3", "1e-4", "5e-4", "1.5e-3", "1e-1",
    ]


@pytest.mark.parametrize(
    ("scores", "issame", "message"),
    [
        ([0.1, 0.2], [1], "same shape"),
        ([[0.1, 0.2]], [[1, 0]], "1-D"),
        ([], [], "empty"),
        ([0.1, float("nan")], [1, 0], "pair 1"),
        ([0.1, 0.2], [1, 2], "0/1"),
    ],
)
def test_bad_inputs_raise_value_error(scores: list, issame: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kfold_accuracy(scores, issame, n_folds=2)


def test_bad_folds_and_metric_preconditions_raise_value_error() -> None:
    scores, issame = [0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]
    with pytest.raises(ValueError, match="larger than the number of pairs"):
        kfold_accuracy(scores, issame, n_folds=10)
    with pytest.raises(ValueError, match="one id per pair"):
        kfold_accuracy(scores, issame, folds=[0, 1])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        kfold_accuracy(scores, issame, folds=[0, 0, 0, 0])
    with pytest.raises(ValueError, match="both same-person and different-person"):
        tar_at_far(scores, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="far must be"):
        tar_at_far(scores, issame, far=0.0)


# --------------------------------------------------------------------------------------------------
# ROC plot
# --------------------------------------------------------------------------------------------------
def test_plot_roc_writes_a_png_atomically(tmp_path) -> None:
    good, good_labels = _random_pairs(11, size=300)
    rng = np.random.default_rng(12)
    curves = {
        "model": (good, good_labels),
        "chance": (rng.normal(size=300), rng.random(300) < 0.5),
    }
    target = tmp_path / "plots" / "roc.png"
    written = plot_roc(curves, target, title="test ROC")
    assert written == target
    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > len(PNG_SIGNATURE)
    with Image.open(target) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0
    assert [path.name for path in target.parent.iterdir()] == ["roc.png"]  # no temporary left


def test_plot_roc_rejects_bad_requests(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        plot_roc({"a": ([0.9, 0.1], [1, 0])}, tmp_path / "roc.jpg")
    with pytest.raises(ValueError, match="at least one curve"):
        plot_roc({}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match="'only same'"):
        plot_roc({"only same": ([0.9, 0.1], [1, 1])}, tmp_path / "roc.png")
    assert not any(tmp_path.iterdir())
