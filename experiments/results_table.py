"""Print the markdown tables of docs/results.md.

    python experiments/results_table.py [runs]                       # CPU rows (experiments/dev_protocol.sh)
    python experiments/results_table.py --gpu experiments/results/gpu_h200_run*.json   # GPU rows

Each ``runs/dev_<row>/`` needs ``checkpoint.pt`` and ``eval.json`` (and, where the per-rank spread was
measured separately, ``eval_per_rank.json``); the speed column is the mean images/s over the rows of its
``train_log.csv`` (it depends on what else the machine was running). GPU rows come from the
``results.json`` of ``experiments/gpu_protocol.py``. The rows, their order and names are those of
``configs/rows/index.yaml``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import yaml

ROW_INDEX = Path(__file__).resolve().parents[1] / "configs" / "rows" / "index.yaml"
ROWS = yaml.safe_load(ROW_INDEX.read_text())["rows"]  # name -> label, gpu_label (table order)


def mean_speed(run: Path) -> float:
    with open(run / "train_log.csv") as fh:
        speeds = [float(row["images_per_second"]) for row in csv.DictReader(fh)]
    return sum(speeds) / len(speeds)


def main(root: Path) -> None:
    print("| encoder | accuracy (%) | TAR@FAR=1e-3 (%) | AUC | samples seen | mean train speed (img/s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row, names in ROWS.items():
        label = names["label"]
        run = root / f"dev_{row}"
        if not (run / "eval.json").is_file():
            continue
        report = json.loads((run / "eval.json").read_text())
        from partialface.training import load_checkpoint

        samples = load_checkpoint(run / "checkpoint.pt")["samples_seen"]
        print(f"| {label} | {100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} | "
              f"{100 * report['tar_at_far_1e-3']:.2f} | {report['auc']:.4f} | {samples:,} | {mean_speed(run):.1f} |")
        spread = report.get("per_rank")
        if spread is None and (run / "eval_per_rank.json").is_file():
            spread = json.loads((run / "eval_per_rank.json").read_text()).get("per_rank")
        if spread:
            print(f"|   each of its {len(spread['ranks'])} ranks fixed in turn | mean {100 * spread['rank_accuracy_mean']:.2f}, "
                  f"min {100 * spread['rank_accuracy_min']:.2f}, max {100 * spread['rank_accuracy_max']:.2f} | | | | |")
            print(f"|   same-image template cosine across ranks | {spread['template_consistency_mean']:.3f} "
                  f"(genuine pairs {spread['genuine_similarity_mean']:.3f}, impostors {spread['impostor_similarity_mean']:.3f}) | | | | |")


def gpu_tables(paths: list[Path]) -> None:
    print("| run | backbone | encoder | samples | accuracy (%) | TAR@FAR=1e-3 (%) | AUC | each rank fixed: mean (min-max) | "
          "same-image cosine across ranks | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in paths:
        results = json.loads(path.read_text())
        jobs = [(k, v) for k, v in results.items() if isinstance(v, dict) and "eval" in v]
        for name, job in sorted(jobs, key=lambda kv: (kv[1]["backbone"], list(ROWS).index(kv[1]["row"]))):
            report, spread = job["eval"], job.get("per_rank")
            ranks = (f"{100 * spread['rank_accuracy_mean']:.2f} ({100 * spread['rank_accuracy_min']:.2f}-"
                     f"{100 * spread['rank_accuracy_max']:.2f})" if spread else "")
            cosine = f"{spread['template_consistency_mean']:.3f}" if spread else ""
            print(f"| {path.stem} | {job['backbone']} | {ROWS[job['row']]['gpu_label']} | {job['budget']:,} | "
                  f"{100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} | "
                  f"{100 * report['tar_at_far_1e-3']:.2f} | {report['auc']:.4f} | {ranks} | {cosine} | {job['train_s']:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--gpu":
        gpu_tables([Path(p) for p in sys.argv[2:]])
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs"))
