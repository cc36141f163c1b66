"""Verification on development pairs after each epoch, through the encoder's query path.

The model sees exactly what a deployed client would send: ``encoder.encode_query(images, generator)``
with a generator seeded from the run's seed (PartialFace: one uniform random rank per query), flip
templates, 10-fold thresholds. LFW ``pairs.txt`` folds are split with :func:`stratified_folds`
(unless ten or more LFW folds are evaluated, in which case the LFW folds themselves are used);
InsightFace ``.bin`` sets use their 10 consecutive folds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..data import CropSpec, load_face, read_lfw_pairs, select_folds
from ..encoders import InputEncoder
from .config_checks import ConfigError, key_errors

__all__ = ["DevEvaluator"]

_N_FOLDS = 10


class DevEvaluator:
    """Scores a model on ``DEV_PAIRS`` (an LFW pairs file restricted to ``DEV_FOLDS``, or a ``.bin``).

    Args:
        pairs_path: LFW ``pairs.txt`` or InsightFace ``.bin``.
        images_root: folder of ``<Name>/<Name>_NNNN.jpg`` (LFW pairs only).
        folds: LFW folds to evaluate (empty: all).
        crop: crop of the evaluation photos (the training crop).
        batch_size: images per forward pass.
        seed: seed of the query-rank generator.
    """

    def __init__(
        self,
        pairs_path: str | os.PathLike[str],
        images_root: str | os.PathLike[str] | None,
        folds: list[int],
        crop: CropSpec,
        batch_size: int,
        seed: int,
    ) -> None:
        self.pairs_path = Path(pairs_path)
        if not self.pairs_path.is_file():
            raise ConfigError(f"DEV_PAIRS {os.fspath(pairs_path)!r} does not exist", ("DEV_PAIRS",))
        self.crop = crop
        self.batch_size = batch_size
        self.seed = seed
        self.is_bin = self.pairs_path.suffix == ".bin"
        self.pairs: list = []
        self.folds: np.ndarray | None = None
        if self.is_bin:
            return
        if images_root is None or not Path(images_root).is_dir():
            raise ConfigError(f"DEV_IMAGES {os.fspath(images_root or '')!r} is not a folder", ("DEV_IMAGES",))
        self.images_root = Path(images_root)
        with key_errors("DEV_PAIRS"):
            pairs = read_lfw_pairs(self.pairs_path)
            self.pairs = select_folds(pairs, folds) if folds else pairs
        from ..evaluation import stratified_folds  # scikit-learn: imported only when evaluating

        lfw_folds = sorted({pair.fold for pair in self.pairs})
        if len(lfw_folds) >= _N_FOLDS:
            self.folds = np.array([lfw_folds.index(pair.fold) for pair in self.pairs], dtype=np.int64)
        else:
            self.folds = stratified_folds([pair.issame for pair in self.pairs], n_folds=_N_FOLDS)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "DevEvaluator | None":
        """The evaluator of a resolved config, or None when ``DEV_PAIRS`` is empty."""
        if not cfg["DEV_PAIRS"]:
            return None
        batch = cfg["DEV_BATCH_SIZE"] or cfg["DATASETS"][0]["batch_size"]
        return cls(cfg["DEV_PAIRS"], cfg["DEV_IMAGES"] or None, cfg["DEV_FOLDS"], CropSpec.from_dict(cfg["CROP"]),
                   batch, cfg["SEED"])

    def _load(self, relative: str) -> torch.Tensor:
        with key_errors("DEV_IMAGES"):
            return load_face(self.images_root / relative, self.crop)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, encoder: InputEncoder, device: torch.device, progress: bool = False) -> dict[str, Any]:
        """Verification report (see :func:`partialface.evaluation.verification_report`) of ``model``.

        The model is put in evaluation mode and restored to its previous mode afterwards.
        """
        from ..evaluation import verify_bin, verify_pairs

        was_training = model.training
        model.eval()

        def embed(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return model(encoder.encode_query(images.to(device, non_blocking=True), generator))

        try:
            if self.is_bin:
                report = verify_bin(embed, self.pairs_path, batch_size=self.batch_size, flip=True, seed=self.seed,
                                    image_size=self.crop.size, progress=progress)
            else:
                report = verify_pairs(embed, self.pairs, self._load, batch_size=self.batch_size, flip=True,
                                      seed=self.seed, folds=self.folds, progress=progress)
        finally:
            model.train(was_training)
        report["dev_pairs"] = os.fspath(self.pairs_path)
        return report
