"""Print the markdown table of docs/results.md from the run folders of experiments/dev_protocol.sh.

    python experiments/results_table.py [runs]

Each ``runs/dev_<row>/`` needs ``checkpoint.pt`` and ``eval.json``; the speed column is the mean
images/s over the rows of its ``train_log.csv`` (it depends on what else the machine was running).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROWS = [
    ("rgb", "RGB baseline (unprotected)"),
    ("partialface", "PartialFace, published plan (TFace tables)"),
    ("partialface_generated", "PartialFace, generated plan (seed 2026, m=6, n=6)"),
    ("fixed", "vanilla: one fixed subset and permutation"),
    ("pruned", "all 162 high-frequency channels"),
]


def mean_speed(run: Path) -> float:
    with open(run / "train_log.csv") as fh:
        speeds = [float(row["images_per_second"]) for row in csv.DictReader(fh)]
    return sum(speeds) / len(speeds)


def main(root: Path) -> None:
    print("| encoder | accuracy (%) | TAR@FAR=1e-3 (%) | AUC | samples seen | mean train speed (img/s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row, label in ROWS:
        run = root / f"dev_{row}"
        if not (run / "eval.json").is_file():
            continue
        report = json.loads((run / "eval.json").read_text())
        from partialface.training import load_checkpoint

        samples = load_checkpoint(run / "checkpoint.pt")["samples_seen"]
        print(f"| {label} | {100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} | "
              f"{100 * report['tar_at_far_1e-3']:.2f} | {report['auc']:.4f} | {samples:,} | {mean_speed(run):.1f} |")
        spread = report.get("per_rank")
        if spread:
            print(f"|   each of its {len(spread['ranks'])} ranks fixed in turn | mean {100 * spread['rank_accuracy_mean']:.2f}, "
                  f"min {100 * spread['rank_accuracy_min']:.2f}, max {100 * spread['rank_accuracy_max']:.2f} | | | | |")
            print(f"|   same-image template cosine across ranks | {spread['template_consistency_mean']:.3f} "
                  f"(genuine pairs {spread['genuine_similarity_mean']:.3f}, impostors {spread['impostor_similarity_mean']:.3f}) | | | | |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs"))
