"""Face-verification metrics: LFW-protocol k-fold accuracy, TAR at FAR, ROC AUC and ROC plots.

Everything here works on plain arrays: ``scores`` are pair similarities (higher means "more likely
the same person", e.g. cosine similarity of two templates) and ``issame`` the ground truth of each
pair. A pair is predicted to be the same person when ``score >= threshold``.

Conventions (stated once, used everywhere):

* **Threshold search** is exact. The accuracy of a threshold only changes where it crosses a score,
  so the candidates are the midpoints between consecutive distinct scores, plus the lowest score
  ("accept everything") and the next float above the highest score ("reject everything"). Among
  thresholds of equal accuracy the lowest one wins (first maximum, as ``numpy.argmax`` returns).
  Midpoints rather than the scores themselves keep the chosen boundary away from the training
  scores, which is what generalises to the held-out fold.
* **k-fold protocol** (LFW): for each fold the threshold that maximises accuracy on the other folds
  is applied to the held-out fold; the mean and the population standard deviation (``ddof=0``, as
  the LFW and InsightFace evaluation scripts report it) of the held-out accuracies are returned.
  Without explicit fold ids the pairs are split into ``n_folds`` runs of consecutive pairs
  (``sklearn.model_selection.KFold`` without shuffling).
* **TAR at FAR** is read off ``sklearn.metrics.roc_curve`` by linear interpolation between the two
  ROC vertices that bracket the requested FAR (the rates a randomised choice between those two
  thresholds achieves). When there are fewer impostor pairs than ``1 / far``, that FAR cannot be
  measured: the TAR is then reported at the smallest non-zero FAR the data resolve
  (``1 / impostor_pairs``, i.e. one false accept), which is an upper bound on the TAR at the
  requested FAR, and the result is flagged ``limited``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import KFold, PredefinedSplit, StratifiedKFold

from ..atomic import atomic_write
from ..checks import check_number
from ..errors import PartialFaceError

__all__ = [
    "TarAtFar",
    "accuracy_at_threshold",
    "best_threshold",
    "far_label",
    "kfold_accuracy",
    "plot_roc",
    "roc_auc",
    "stratified_folds",
    "tar_at_far",
    "verification_report",
]

_PNG_SUFFIX = ".png"


# --------------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------------
def _as_labels(issame: ArrayLike) -> np.ndarray:
    """Validate and convert same-person flags (bool or 0/1) to a 1-D boolean array."""
    label_array = np.asarray(issame)
    if label_array.ndim != 1:
        raise PartialFaceError(f"issame must be a 1-D array, got shape {label_array.shape}")
    if label_array.dtype != np.bool_:
        if label_array.dtype.kind not in "biuf" or not np.isin(label_array, (0, 1)).all():
            raise PartialFaceError(f"issame must hold booleans or 0/1 values, got dtype {label_array.dtype}")
        label_array = label_array.astype(bool)
    return label_array


def _as_scores_and_labels(scores: ArrayLike, issame: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to a float64 score vector and a boolean label vector of equal length."""
    score_array = np.asarray(scores, dtype=np.float64)
    if score_array.ndim != 1:
        raise PartialFaceError(f"scores must be a 1-D array, got shape {score_array.shape}")
    if np.shape(issame) != score_array.shape:
        raise PartialFaceError(
            f"issame must have the same shape as scores {score_array.shape}, got {np.shape(issame)}"
        )
    if score_array.size == 0:
        raise PartialFaceError("no pairs to evaluate: scores is empty")
    non_finite = np.flatnonzero(~np.isfinite(score_array))
    if non_finite.size:
        raise PartialFaceError(
            f"scores must be finite; pair {int(non_finite[0])} has score {score_array[non_finite[0]]}"
        )
    return score_array, _as_labels(issame)


def _require_both_classes(issame: np.ndarray, metric: str) -> None:
    """Raise unless ``issame`` holds at least one genuine and one impostor pair."""
    genuine = int(issame.sum())
    if genuine == 0 or genuine == issame.size:
        raise PartialFaceError(
            f"{metric} needs both same-person and different-person pairs; got {genuine} same and "
            f"{issame.size - genuine} different"
        )


# --------------------------------------------------------------------------------------------------
# threshold search and k-fold accuracy
# --------------------------------------------------------------------------------------------------
def _candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Every threshold that yields a distinct partition of ``scores`` (ascending, see module doc)."""
    distinct = np.unique(scores)
    lower, upper = distinct[:-1], distinct[1:]
    midpoints = (lower + upper) / 2.0
    # For adjacent floats the midpoint rounds onto one of them; ``upper`` gives the same partition.
    midpoints = np.where((midpoints > lower) & (midpoints <= upper), midpoints, upper)
    reject_all = np.nextafter(distinct[-1], np.inf)
    return np.concatenate([distinct[:1], midpoints, [reject_all]])


def _accuracies(scores: np.ndarray, issame: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy of the rule ``score >= t`` for every ``t`` in ``thresholds`` (O(N log N))."""
    genuine = np.sort(scores[issame])
    impostor = np.sort(scores[~issame])
    true_accepts = genuine.size - np.searchsorted(genuine, thresholds, side="left")
    true_rejects = np.searchsorted(impostor, thresholds, side="left")
    return (true_accepts + true_rejects) / scores.size


def accuracy_at_threshold(scores: ArrayLike, issame: ArrayLike, threshold: float) -> float:
    """Fraction of pairs classified correctly by the rule ``score >= threshold`` means same person."""
    score_array, label_array = _as_scores_and_labels(scores, issame)
    return float(_accuracies(score_array, label_array, np.asarray([float(threshold)]))[0])


def _best_threshold(scores: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    candidates = _candidate_thresholds(scores)
    accuracies = _accuracies(scores, issame, candidates)
    best = int(np.argmax(accuracies))
    return float(candidates[best]), float(accuracies[best])


def best_threshold(scores: ArrayLike, issame: ArrayLike) -> tuple[float, float]:
    """Exact search for the threshold that maximises accuracy on these very pairs.

    Returns ``(threshold, accuracy)``. This accuracy is optimistic (the threshold is fitted on the
    pairs it is measured on); use :func:`kfold_accuracy` for the protocol number.
    """
    score_array, label_array = _as_scores_and_labels(scores, issame)
    return _best_threshold(score_array, label_array)


def _fold_splits(
    size: int, n_folds: int, folds: ArrayLike | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, test indices) per fold: consecutive runs, or the given fold ids."""
    if folds is None:
        if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
            raise PartialFaceError(f"n_folds must be an integer >= 2, got {n_folds!r}")
        if n_folds > size:
            raise PartialFaceError(f"n_folds={n_folds} is larger than the number of pairs ({size})")
        return list(KFold(n_splits=int(n_folds), shuffle=False).split(np.zeros((size, 1))))
    fold_ids = np.asarray(folds)
    if fold_ids.shape != (size,):
        raise PartialFaceError(f"folds must have one id per pair, shape ({size},), got {fold_ids.shape}")
    if fold_ids.dtype.kind not in "iu":
        raise PartialFaceError(f"folds must hold integer fold ids, got dtype {fold_ids.dtype}")
    if (fold_ids < 0).any():
        raise PartialFaceError(f"fold ids must be >= 0, got {int(fold_ids.min())}")
    if np.unique(fold_ids).size < 2:
        raise PartialFaceError("folds must name at least 2 distinct folds")
    return list(PredefinedSplit(test_fold=fold_ids).split())


def stratified_folds(issame: ArrayLike, n_folds: int = 10) -> np.ndarray:
    """Fold id per pair such that every fold holds the same share of same-person pairs.

    ``sklearn.model_selection.StratifiedKFold`` without shuffling: fold ``k`` takes the ``k``-th run
    of consecutive same-person pairs and the ``k``-th run of consecutive different-person pairs.
    Pass the result as ``folds`` when the pairs are ordered by class in blocks that do not line up
    with ``n_folds`` consecutive folds (e.g. two LFW folds split ten ways): consecutive folds then
    train each threshold on a class-imbalanced set, which biases it and lowers the accuracy.
    """
    label_array = _as_labels(issame)
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise PartialFaceError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    smallest_class = min(int(label_array.sum()), int((~label_array).sum()))
    if smallest_class < n_folds:
        raise PartialFaceError(
            f"stratified folds need at least n_folds={n_folds} pairs of each class, the smaller "
            f"class has {smallest_class}"
        )
    fold_ids = np.empty(label_array.size, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=int(n_folds), shuffle=False)
    for fold, (_, test) in enumerate(splitter.split(np.zeros((label_array.size, 1)), label_array)):
        fold_ids[test] = fold
    return fold_ids


def _kfold(
    scores: np.ndarray, issame: np.ndarray, n_folds: int, folds: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out accuracy and trained threshold of every fold."""
    splits = _fold_splits(scores.size, n_folds, folds)
    accuracies = np.empty(len(splits))
    thresholds = np.empty(len(splits))
    for fold, (train, test) in enumerate(splits):
        threshold, _ = _best_threshold(scores[train], issame[train])
        thresholds[fold] = threshold
        accuracies[fold] = _accuracies(scores[test], issame[test], np.asarray([threshold]))[0]
    return accuracies, thresholds


def kfold_accuracy(
    scores: ArrayLike,
    issame: ArrayLike,
    n_folds: int = 10,
    folds: ArrayLike | None = None,
) -> tuple[float, float, np.ndarray]:
    """LFW-protocol verification accuracy.

    For each fold, the threshold that maximises accuracy on the other folds (exact search) is
    applied to the held-out fold.

    Args:
        scores: (N,) similarities, higher = same person.
        issame: (N,) ground truth (bool or 0/1).
        n_folds: number of folds of consecutive pairs, used when ``folds`` is None.
        folds: optional (N,) non-negative integer fold id per pair; when given, its distinct ids
            define the folds and ``n_folds`` is not used.

    Returns:
        ``(mean accuracy, std of the fold accuracies (ddof=0), fold thresholds (n_folds,))``.
    """
    score_array, label_array = _as_scores_and_labels(scores, issame)
    accuracies, thresholds = _kfold(score_array, label_array, n_folds, folds)
    return float(accuracies.mean()), float(accuracies.std()), thresholds


# --------------------------------------------------------------------------------------------------
# ROC-based metrics
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TarAtFar:
    """True accept rate at a false accept rate.

    Attributes:
        tar: true accept rate (fraction of same-person pairs accepted).
        far: the FAR at which ``tar`` is reported: ``requested_far``, or ``1 / impostor_pairs``
            when ``limited``.
        requested_far: the FAR that was asked for.
        threshold: score threshold (accept when ``score >= threshold``) of the ROC vertex at or just
            below ``far``; ``inf`` when only rejecting everything stays below it.
        limited: True when there are fewer impostor pairs than ``1 / requested_far``, so the
            requested FAR is below the data's resolution and ``tar`` is an upper bound.
        impostor_pairs: number of different-person pairs the rates are measured on.
    """

    tar: float
    far: float
    requested_far: float
    threshold: float
    limited: bool
    impostor_pairs: int


def tar_at_far(scores: ArrayLike, issame: ArrayLike, far: float = 1e-3) -> TarAtFar:
    """TAR at a given FAR from the ROC curve (see the module docstring for interpolation and limits)."""
    far = check_number("far", far)
    if not 0.0 < far <= 1.0:
        raise PartialFaceError(f"far must be in (0, 1], got {far!r}")
    score_array, label_array = _as_scores_and_labels(scores, issame)
    _require_both_classes(label_array, "TAR at FAR")
    impostor_pairs = int((~label_array).sum())
    limited = impostor_pairs * float(far) < 1.0 - 1e-9
    target = 1.0 / impostor_pairs if limited else float(far)

    false_accept, true_accept, thresholds = roc_curve(
        label_array, score_array, drop_intermediate=False
    )
    # Last vertex with FAR <= target: the top of its vertical run, i.e. the best TAR at that FAR.
    below = int(np.searchsorted(false_accept, target, side="right")) - 1
    if false_accept[below] >= target:
        tar = float(true_accept[below])
    else:
        above = below + 1  # first vertex past the target: the bottom of its vertical run
        weight = (target - false_accept[below]) / (false_accept[above] - false_accept[below])
        tar = float(true_accept[below] + weight * (true_accept[above] - true_accept[below]))
    return TarAtFar(
        tar=tar,
        far=target,
        requested_far=float(far),
        threshold=float(thresholds[below]),
        limited=limited,
        impostor_pairs=impostor_pairs,
    )


def roc_auc(scores: ArrayLike, issame: ArrayLike) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``)."""
    score_array, label_array = _as_scores_and_labels(scores, issame)
    _require_both_classes(label_array, "ROC AUC")
    return float(roc_auc_score(label_array, score_array))


def far_label(far: float) -> str:
    """Shortest scientific spelling of a FAR for report keys: ``1e-3``, ``5e-4``, ``1.5e-3``."""
    return np.format_float_scientific(float(far), trim="-", exp_digits=1)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def verification_report(
    scores: ArrayLike,
    issame: ArrayLike,
    n_folds: int = 10,
    folds: ArrayLike | None = None,
    fars: Iterable[float] = (1e-3,),
) -> dict[str, Any]:
    """All verification numbers of one set of scored pairs, as a JSON-ready dict.

    Keys:
        ``pairs``, ``same_pairs``, ``different_pairs``: counts.
        ``accuracy``, ``accuracy_std``: k-fold protocol mean and std (:func:`kfold_accuracy`).
        ``fold_accuracies``, ``fold_thresholds``: per fold.
        ``threshold``: mean of the fold thresholds (a deployable operating point).
        ``best_threshold``, ``best_threshold_accuracy``: single threshold fitted on all pairs and
        its (optimistic) accuracy.
        ``auc``: ROC AUC.
        per FAR in ``fars``, with ``L = far_label(far)``: ``tar_at_far_L`` (TAR),
        ``tar_at_far_L_far`` (FAR it is reported at), ``tar_at_far_L_limited`` (see
        :class:`TarAtFar`) and ``tar_at_far_L_threshold`` (None when infinite).
    """
    score_array, label_array = _as_scores_and_labels(scores, issame)
    _require_both_classes(label_array, "a verification report")
    fold_accuracies, fold_thresholds = _kfold(score_array, label_array, n_folds, folds)
    overall_threshold, overall_accuracy = _best_threshold(score_array, label_array)
    same_pairs = int(label_array.sum())
    report: dict[str, Any] = {
        "pairs": int(label_array.size),
        "same_pairs": same_pairs,
        "different_pairs": int(label_array.size) - same_pairs,
        "accuracy": float(fold_accuracies.mean()),
        "accuracy_std": float(fold_accuracies.std()),
        "fold_accuracies": [float(value) for value in fold_accuracies],
        "fold_thresholds": [float(value) for value in fold_thresholds],
        "threshold": float(fold_thresholds.mean()),
        "best_threshold": overall_threshold,
        "best_threshold_accuracy": overall_accuracy,
        "auc": float(roc_auc_score(label_array, score_array)),
    }
    for far in fars:
        result = tar_at_far(score_array, label_array, far)
        key = f"tar_at_far_{far_label(far)}"
        report[key] = result.tar
        report[f"{key}_far"] = result.far
        report[f"{key}_limited"] = result.limited
        report[f"{key}_threshold"] = _finite_or_none(result.threshold)
    return report


# --------------------------------------------------------------------------------------------------
# ROC plot
# --------------------------------------------------------------------------------------------------
def plot_roc(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Draw ROC curves (TAR against FAR on a log axis) into a PNG file, written atomically.

    Args:
        curves: label -> ``(scores, issame)``; each label is shown with its AUC.
        path: destination ``.png`` file (parent folders are created).
        title: optional figure title.

    Returns:
        The path written. Vertices at FAR = 0 cannot be drawn on a log axis and are left out; the
        axis starts at the smallest non-zero FAR among the curves.
    """
    # The Agg canvas is used directly (no pyplot): no global backend switch, safe in threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    destination = Path(path)
    if destination.suffix.lower() != _PNG_SUFFIX:
        raise PartialFaceError(f"ROC plot path must end in {_PNG_SUFFIX}: {destination}")
    if not curves:
        raise PartialFaceError("plot_roc needs at least one curve")

    figure = Figure(figsize=(5.5, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    smallest_far = 1.0
    for label, (scores, issame) in curves.items():
        score_array, label_array = _as_scores_and_labels(scores, issame)
        _require_both_classes(label_array, f"the ROC curve {label!r}")
        false_accept, true_accept, _ = roc_curve(label_array, score_array)
        visible = false_accept > 0
        smallest_far = min(smallest_far, float(false_accept[visible].min()))
        auc = roc_auc_score(label_array, score_array)
        axes.plot(false_accept[visible], true_accept[visible], label=f"{label} (AUC {auc:.4f})")
    axes.set_xscale("log")
    axes.set_xlim(smallest_far, 1.0)
    axes.set_ylim(0.0, 1.005)
    axes.set_xlabel("false accept rate (FAR)")
    axes.set_ylabel("true accept rate (TAR)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    with atomic_write(destination) as handle:
        figure.savefig(handle, format="png")
    return destination

