"""Face-verification evaluation: metrics (LFW k-fold accuracy, TAR@FAR, AUC, ROC plots), templates
(batched embedding, flip and multi-rank fusion), the pair/``.bin`` verification pipeline, and the
protocol that runs a loaded model through it (:func:`evaluate_model_on_pairs`)."""

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
from partialface.evaluation.protocol import evaluate_model_on_pairs
from partialface.evaluation.templates import (
    EmbedFn,
    ImageSource,
    check_image_values,
    embed_in_batches,
    fuse_flip,
    fuse_templates,
    l2_normalize,
    make_template_fn,
    paired_cosine_similarity,
)
from partialface.evaluation.verification import (
    PairLike,
    score_bin,
    score_pairs,
    verify_bin,
    verify_pairs,
)

__all__ = [
    "EmbedFn",
    "ImageSource",
    "PairLike",
    "TarAtFar",
    "accuracy_at_threshold",
    "best_threshold",
    "check_image_values",
    "embed_in_batches",
    "evaluate_model_on_pairs",
    "far_label",
    "fuse_flip",
    "fuse_templates",
    "kfold_accuracy",
    "l2_normalize",
    "make_template_fn",
    "paired_cosine_similarity",
    "plot_roc",
    "roc_auc",
    "score_bin",
    "score_pairs",
    "stratified_folds",
    "tar_at_far",
    "verification_report",
    "verify_bin",
    "verify_pairs",
]
