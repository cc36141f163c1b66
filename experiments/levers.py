"""The lever table of docs/results.md: what each training lever does at one budget, backbone and seed.

    python experiments/levers.py run ROW [ROW ...]   # train (resuming) and evaluate rows of configs/levers/index.yaml
    python experiments/levers.py table               # print the markdown table of the evaluated rows
    python experiments/levers.py list                # the rows and their configs

Row NAME trains ``base`` + its ``files`` with its own ``budget`` or the index's (``--budget`` overrides both) and
``backbone`` into ``OUT/NAME`` (default ``runs/levers``), one torch thread, faces cached in memory,
no per-epoch evaluation, a checkpoint every 50 steps (running a killed row again resumes it exactly);
then ``partialface eval`` verifies LFW folds 7-8 (the row's ``DEV_IMAGES``: aligned rows are queried
with aligned faces) from protected queries, seed 0, into ``OUT/NAME/eval.json``
(``per_rank`` rows also fix each rank of the plan in turn). A row whose ``eval.json`` is newer than its
checkpoint is skipped. Rows with a ``twin`` train on every LFW person (the shipped models) and are
not evaluated: folds 7-8 are people they have seen; their twin (the same files without
``every_person.yaml``) is. Run it under ``nice`` on a shared machine; the commands it runs are printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
INDEX = REPO / "configs" / "levers" / "index.yaml"
# SAVE_STEPS: a checkpoint every 50 steps (about 3 minutes on this CPU), so a row killed with its session
# resumes bit for bit where it stopped instead of at its epoch's start (PartialFace epochs are 233 steps).
TRAIN_SETTINGS = ("THREADS=1", "WORKERS=0", "CACHE_IMAGES=true", "DEV_PAIRS=", "SAVE_STEPS=50")


def load_index(path: Path = INDEX) -> dict:
    return yaml.safe_load(path.read_text())


def row_budget(index: dict, name: str, override: int | None = None) -> int:
    """Training samples of row ``name``: ``override`` (``--budget``), else the row's ``budget``, else the index's."""
    return int(override or index["rows"][name].get("budget", index["budget"]))


def train_command(index: dict, name: str, out: Path, budget: int) -> list[str]:
    row = index["rows"][name]
    settings = (f"BACKBONE_NAME={index['backbone']}", f"MAX_SAMPLES={budget}", *TRAIN_SETTINGS, f"OUT={out / name}")
    return [sys.executable, "-m", "partialface", "train", index["base"], *row.get("files", []), "--no-progress",
            *(arg for setting in settings for arg in ("--set", setting))]


def eval_command(index: dict, name: str, out: Path) -> list[str]:
    from partialface.training import load_config

    row = index["rows"][name]
    cfg = load_config([REPO / index["base"], *(REPO / f for f in row.get("files", []))], ["DEV_PAIRS=../shared/data/lfw/pairs.txt"])
    run = out / name
    return [sys.executable, "-m", "partialface", "eval", "--model", str(run / "checkpoint.pt"),
            "--pairs", cfg["DEV_PAIRS"], "--images", cfg["DEV_IMAGES"], "--folds", "7,8", "--seed", "0",
            "--json", str(run / "eval.json"), "--roc", str(run / "roc.png"), "--threads", "1", "--quiet",
            *(["--per-rank"] if row.get("per_rank") else [])]


def _run(command: list[str]) -> None:
    print("+ " + shlex.join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def run_rows(index: dict, names: list[str], out: Path, budget: int | None) -> None:
    for name in names:
        run = out / name
        done = run / ("timing.json" if index["rows"][name].get("twin") else "eval.json")
        if done.is_file() and done.stat().st_mtime > (run / "checkpoint.pt").stat().st_mtime:
            print(f"{name}: done already ({done})")
            continue
        resumed_at = _samples_logged(run)  # > 0: this call resumes a run another one began
        started = time.time()
        _run(train_command(index, name, out, row_budget(index, name, budget)))
        trained = time.time()
        timing = {"train_seconds": round(trained - started), "resumed_at_samples": resumed_at}
        if index["rows"][name].get("twin"):  # trained on every person: its twin's eval describes it
            (run / "timing.json").write_text(json.dumps(timing))
            continue
        _run(eval_command(index, name, out))
        timing["eval_seconds"] = round(time.time() - trained)
        (run / "timing.json").write_text(json.dumps(timing))
        print(f"{name}: trained in {timing['train_seconds']} s, evaluated in {timing['eval_seconds']} s", flush=True)


def _log_rows(run: Path) -> list[dict]:
    if not (run / "train_log.csv").is_file():
        return []
    with open(run / "train_log.csv") as handle:
        return list(csv.DictReader(handle))


def _samples_logged(run: Path) -> int:
    rows = _log_rows(run)
    return int(rows[-1]["samples_seen"]) if rows else 0


def mean_speed(run: Path) -> float:
    speeds = [float(row["images_per_second"]) for row in _log_rows(run)]
    return sum(speeds) / len(speeds)


def train_minutes(run: Path) -> str:
    """Training wall time of a row: timed by `run`, or summed from its log where the run was resumed.

    A resumed row (killed at a session's end, continued in the next) was timed by its last call only;
    its log (rows past the resumed checkpoint dropped) gives each logged window's samples and speed.
    """
    timing = json.loads((run / "timing.json").read_text()) if (run / "timing.json").is_file() else {}
    if not timing:
        return ""
    if not timing.get("resumed_at_samples"):
        return f"{timing['train_seconds'] / 60:.0f}"
    seconds, previous = 0.0, 0
    for row in _log_rows(run):
        samples = int(row["samples_seen"])
        seconds += (samples - previous) / float(row["images_per_second"])
        previous = samples
    return f"{seconds / 60:.0f} (resumed)"


def table(index: dict, out: Path) -> None:
    from partialface.training import load_checkpoint

    print("| row | accuracy (%) | TAR@FAR=1e-3 (%) | AUC | each rank fixed: mean (min-max) | same-image cosine across "
          "ranks | samples | img/s | train min |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, row in index["rows"].items():
        run = out / name
        if not (run / "eval.json").is_file():
            continue
        report = json.loads((run / "eval.json").read_text())
        samples = load_checkpoint(run / "checkpoint.pt")["samples_seen"]
        spread = report.get("per_rank")
        ranks = (f"{100 * spread['rank_accuracy_mean']:.2f} ({100 * spread['rank_accuracy_min']:.2f}-"
                 f"{100 * spread['rank_accuracy_max']:.2f})" if spread else "")
        cosine = f"{spread['template_consistency_mean']:.3f}" if spread else ""
        minutes = train_minutes(run)
        print(f"| {row['label']} | {100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} | "
              f"{100 * report['tar_at_far_1e-3']:.2f} | {report['auc']:.4f} | {ranks} | {cosine} | {samples:,} | "
              f"{mean_speed(run):.1f} | {minutes} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "table", "list"))
    parser.add_argument("rows", nargs="*", help="rows to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/levers"), help="run folders (default runs/levers)")
    parser.add_argument("--budget", type=int, help="training samples per row (default: the row's, else the index's)")
    parser.add_argument("--index", type=Path, default=INDEX, help="the row index (default configs/levers/index.yaml)")
    args = parser.parse_args(argv)
    index = load_index(args.index)
    unknown = [name for name in args.rows if name not in index["rows"]]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(index['rows'])}")
    names = args.rows or list(index["rows"])
    if args.action == "run":
        run_rows(index, names, args.out, args.budget)
    elif args.action == "table":
        table(index, args.out)
    else:
        for name in names:
            print(f"{name}: {' '.join([index['base'], *index['rows'][name].get('files', [])])}")


if __name__ == "__main__":
    main()
