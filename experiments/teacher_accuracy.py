"""How well the distillation teacher itself verifies the development folds: dlib's ResNet on LFW folds 7-8.

    python experiments/teacher_accuracy.py runs/teacher/dlib_box.npz [--images ../shared/data/lfw/images]

The descriptors come from the teacher cache (``partialface teacher``: the photo's face box as dlib's face
rectangle, 5-point landmarks, 150x150 chip), so the cache must hold the images of folds 7-8 (build it
with a config that trains on every LFW person, e.g. ``--set EXCLUDE_PAIRS= --set EXCLUDE_FOLDS=[]``).
Two scores, both with the project's 10 stratified folds: dlib's own (negative Euclidean distance of the
descriptors, mirrored faces unused) and the students' (cosine of flip-fused templates of the descriptors
centred on the cache's mean, as the distillation targets are centred on the training set's).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from partialface.data import read_lfw_pairs, select_folds
from partialface.evaluation.metrics import stratified_folds, verification_report
from partialface.training.teacher import TeacherCache


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the teacher cache (.npz)")
    parser.add_argument("--images", type=Path, default=Path("../shared/data/lfw/images"))
    parser.add_argument("--pairs", type=Path, default=Path("../shared/data/lfw/pairs.txt"))
    parser.add_argument("--folds", default="7,8")
    parser.add_argument("--json", type=Path, help="write both reports here")
    args = parser.parse_args(argv)
    pairs = select_folds(read_lfw_pairs(args.pairs), [int(f) for f in args.folds.split(",")])
    cache = TeacherCache.load(args.cache)
    first = cache.lookup([args.images / pair.path_a for pair in pairs])
    second = cache.lookup([args.images / pair.path_b for pair in pairs])
    issame = [pair.issame for pair in pairs]
    folds = stratified_folds(issame)
    reports = {
        "dlib_euclidean": verification_report(-(first[:, 0] - second[:, 0]).norm(dim=1).numpy(), issame, folds=folds),
    }
    mean = torch.from_numpy(cache.descriptors).reshape(-1, first.shape[-1]).mean(0)  # centred as the targets are
    templates = [F.normalize(F.normalize(d - mean, dim=-1).sum(1), dim=1) for d in (first, second)]
    reports["flip_fused_centred_cosine"] = verification_report((templates[0] * templates[1]).sum(1).numpy(), issame,
                                                               folds=folds)
    for name, report in reports.items():
        print(f"{name}: accuracy {100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} %, "
              f"TAR@FAR=1e-3 {100 * report['tar_at_far_1e-3']:.2f} %, AUC {report['auc']:.4f} ({report['pairs']} pairs)")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
