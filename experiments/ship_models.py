"""Export trained models as the package's shipped models, each with a model card.

From CPU development-protocol runs (experiments/dev_protocol.sh):

    python experiments/ship_models.py runs/dev_partialface:default runs/dev_rgb:rgb-baseline

Each RUN folder must hold ``checkpoint.pt`` and ``eval.json``.

From a GPU protocol run (experiments/gpu_protocol.py; how the shipped models were made):

    python experiments/ship_models.py --gpu experiments/results/gpu_h200_run2.json --models DIR \\
        mfn_partialface_all:default mfn_rgb_all:rgb-baseline

``DIR`` holds the job's exported ``<job>.pt``; ``--twin-eval REPORT`` (one per item) takes the twin's
numbers from a later ``partialface eval --json`` report instead of results.json. A job trained on every LFW person (``*_all``) is
described with the development-protocol accuracy of its twin (the same job without ``_all``: same
backbone, encoder, budget and seed, trained without the people of folds 7-8), since its own folds 7-8
numbers would be on people it has seen. The packed images' crop box is mapped back to the box on the
original 250x250 LFW photos (the pixels inside are identical; see experiments/pack_lfw_for_device.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from partialface.api import WEIGHTS_DIR
from partialface.training import export_model, load_checkpoint, save_checkpoint

PACKED_TO_ORIGINAL = {(5, 5, 117, 117): [69, 69, 181, 181]}  # pack_lfw_for_device.py: PACKED_BOX -> ORIGINAL_BOX


def _dev_protocol(report: dict, encoder: dict) -> dict:
    return {
        "pairs": f"LFW pairs.txt folds 7-8 ({report['pairs']} pairs), people never seen in training",
        "queries": ("one random rank per image (seed 0)" if encoder.get("plan") else "plain RGB images")
                   + ", flip-fused templates, 10 stratified folds",
        "accuracy": report["accuracy"], "accuracy_std": report["accuracy_std"],
        "tar_at_far_1e-3": report["tar_at_far_1e-3"], "auc": report["auc"],
    }


def _budget(ckpt: dict) -> dict:
    cfg = ckpt["config"]
    return {"samples_seen": ckpt["samples_seen"], "steps": ckpt["step"],
            "batch_size": cfg["DATASETS"][0]["batch_size"], "seed": cfg["SEED"]}


def card_for_run(run: Path) -> dict:
    ckpt = load_checkpoint(run / "checkpoint.pt")
    cfg, report = ckpt["config"], json.loads((run / "eval.json").read_text())
    row = run.name.removeprefix("dev_")
    return {
        "encoder": ckpt["encoder"]["name"],
        "plan": report.get("plan"),
        "backbone": ckpt["model"]["name"],
        "data": (f"LFW deep-funneled ({cfg['DATA_ROOT']}): every person outside pairs.txt folds "
                 f"{cfg['EXCLUDE_FOLDS']} with >= {cfg['MIN_IMAGES']} images; crop {cfg['CROP']}"),
        "budget": _budget(ckpt),
        "dev_folds_seen_in_training": not {7, 8} <= set(cfg["EXCLUDE_FOLDS"]),
        "dev_protocol": _dev_protocol(report, ckpt["encoder"]),
        "reproduce": [f"experiments/dev_protocol.sh {row}", f"python experiments/ship_models.py {run}:NAME"],
    }


def ship_gpu_job(results_path: Path, models: Path, job: str, name: str, weights_dir: Path = WEIGHTS_DIR,
                 twin_eval: Path | None = None) -> Path:
    results = json.loads(results_path.read_text())
    entry = results[job]
    twin_name = job.removesuffix("_all")
    twin = dict(results.get(twin_name, {}))
    if twin_eval is not None:  # the twin re-evaluated with `partialface eval --json` (e.g. with today's code)
        twin["eval"] = json.loads(Path(twin_eval).read_text())
    if "eval" not in twin:
        raise SystemExit(f"{results_path}: no evaluated twin {twin_name!r} of {job!r} to describe it with")
    ckpt = load_checkpoint(models / f"{job}.pt")
    cfg = ckpt["config"]
    box = tuple(ckpt["crop"]["box"])
    if box in PACKED_TO_ORIGINAL:
        ckpt["crop"] = {"box": PACKED_TO_ORIGINAL[box], "size": ckpt["crop"]["size"]}
    people = ("every person" if entry["all_folds"] else "every person outside pairs.txt folds 7-8")
    budgets = " ".join(f"--budget {k}={v}" for k, v in results["budgets"].items())
    jobs = ",".join(k for k, v in results.items() if isinstance(v, dict) and "backbone" in v)
    ckpt["card"] = {
        "encoder": ckpt["encoder"]["name"],
        "plan": twin["eval"].get("plan"),
        "backbone": ckpt["model"]["name"],
        "data": (f"LFW deep-funneled (../shared/data/lfw): {people} with >= {cfg['MIN_IMAGES']} images "
                 f"({'all folds' if entry['all_folds'] else 'development split'}); crop {ckpt['crop']}"),
        "budget": {**_budget(ckpt), "trained_on": f"{results['setup']['gpu']}, {entry['train_s']} s "
                                                  f"({len(jobs.split(','))} jobs sharing it)"},
        "dev_folds_seen_in_training": bool(entry["all_folds"]),
        "dev_protocol": {**_dev_protocol(twin["eval"], ckpt["encoder"]),
                         "measured_on": f"{twin_name}: identical training without the people of folds 7-8"},
        "reproduce": [
            "python experiments/pack_lfw_for_device.py --out .device_data/lfw",
            f"python experiments/gpu_protocol.py --out OUT {budgets} --jobs {jobs}",
            f"python experiments/ship_models.py --gpu {results_path} --models OUT {job}:{name}",
        ] + ([f"partialface eval --model OUT/{twin_name}.pt --pairs .device_data/lfw/pairs.txt "
              f"--images .device_data/lfw/images --folds 7,8 --seed 0 --json {twin_eval}"] if twin_eval is not None else []),
    }
    out = Path(weights_dir) / f"{name}.pt"
    save_checkpoint(out, ckpt)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", type=Path, help="results.json of experiments/gpu_protocol.py")
    parser.add_argument("--models", type=Path, help="folder of the GPU jobs' exported <job>.pt files")
    parser.add_argument("--twin-eval", type=Path, action="append", default=[],
                        help="a `partialface eval --json` report of the twin, one per item (overrides results.json)")
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR, help="where NAME.pt goes (the package's)")
    parser.add_argument("items", nargs="+", metavar="RUN:NAME or JOB:NAME")
    args = parser.parse_args(argv)
    if args.twin_eval and len(args.twin_eval) != len(args.items):
        parser.error("give --twin-eval once per item, or not at all")
    for index, item in enumerate(args.items):
        source, _, name = item.partition(":")
        if not name:
            parser.error(f"expected SOURCE:NAME, got {item!r}")
        if args.gpu:
            if args.models is None:
                parser.error("--gpu needs --models")
            out = ship_gpu_job(args.gpu, args.models, source, name, args.weights_dir,
                               args.twin_eval[index] if args.twin_eval else None)
        else:
            out = export_model(Path(source) / "checkpoint.pt", args.weights_dir / f"{name}.pt",
                               card=card_for_run(Path(source)))
        print(f"{name}: {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
