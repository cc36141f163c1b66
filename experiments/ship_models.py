"""Export trained models as the package's shipped models, each with a model card.

From CPU development-protocol runs (experiments/dev_protocol.sh):

    python experiments/ship_models.py runs/dev_partialface:default runs/dev_rgb:rgb-baseline

Each RUN folder must hold ``checkpoint.pt`` and ``eval.json``. A run trained on every LFW person is
described by its twin (``--twin TWIN_RUN`` once per item: the same recipe without the people of folds
7-8, e.g. a row of experiments/levers.py), whose ``eval.json`` gives the development-protocol numbers:

    python experiments/ship_models.py runs/ship/partialface:default runs/ship/rgb:rgb-baseline \
        --twin runs/levers/partialface_all --twin runs/levers/rgb_all [--five-point ALIGN_REPORT]

The card records the recipe (losses and weights, data sets, augmentation, views, ranks), the teacher
(dlib's model and versions, how it saw the faces) and how the input faces were prepared
(``input_preparation``: the checkpoint's own record, the crop box or the five-point alignment of a
folder made by ``partialface align``; ``--five-point ALIGN_REPORT`` describes runs older than the record).

``--privacy docs/frontier.json`` adds what a trained attacker recovers from the model's plan (the
frontier row of that plan: white-box and enhanced white-box SSIM, judge verification, rank-1):

    python experiments/ship_models.py runs/ship/partialface_private_ship:private \
        --twin runs/ship/partialface_private --privacy docs/frontier.json

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


def _backbone(model: dict) -> str:
    """The backbone's name; a rank-keyed wrapper names the network inside it too."""
    inner = model["kwargs"].get("backbone") if model["name"] == "rank_keyed" else None
    return f"rank_keyed ({inner} behind per-frequency input weights keyed by the identified rank)" if inner else model["name"]


def _recipe(cfg: dict, encoder: dict) -> dict:
    """The training recipe of a resolved config: what beyond TFace's margin loss shaped the model."""
    return {
        "losses": {"margin": cfg.get("MARGIN_WEIGHT", 1.0), "distill": cfg.get("DISTILL_WEIGHT", 0.0),
                   "relation": cfg.get("RELATION_WEIGHT", 0.0), "consistency": cfg.get("CONSISTENCY_WEIGHT", 0.0)},
        "head": {"name": cfg["HEAD_NAME"], "scale": cfg["DATASETS"][0]["scale"], "margin": cfg["DATASETS"][0]["margin"]},
        "views": cfg.get("VIEWS", 1), "augment": cfg.get("AUGMENT", {}), "flip": cfg["FLIP"],
        "rank_copies": cfg["NUM_AUG"] if encoder.get("plan") else None,
        "training_ranks": encoder.get("training_ranks", "label-keyed") if encoder["name"] == "partialface" else None,
        "rank_keyed": bool(cfg.get("RANK_KEYED", False)),
        # The number types the backbone trained in change accuracy here (docs/results.md, section 3):
        # AMP (float16) applies on CUDA, CPU_BFLOAT16 on the CPU, whichever device trained it.
        "precision": {key: bool(cfg.get(key, False)) for key in ("AMP", "CPU_BFLOAT16", "CHANNELS_LAST")},
        "optimizer": {"lrs": cfg["LRS"], "stages": cfg["STAGES"], "stages_unit": cfg["STAGES_UNIT"],
                      "weight_decay": cfg["WEIGHT_DECAY"], "momentum": cfg["MOMENTUM"]},
    }


def _teacher(cfg: dict) -> dict | None:
    if not (cfg.get("DISTILL_WEIGHT") or cfg.get("RELATION_WEIGHT")):
        return None
    from partialface.dlib_recognizer import RECOGNITION_MODEL_FILE, recognizer_versions

    return {"model": f"dlib {RECOGNITION_MODEL_FILE} (PyPI face-recognition-models), 128-d",
            "versions": recognizer_versions(), "cache": cfg["TEACHER_CACHE"],
            "faces": "each training photo and its mirror image: the crop box as dlib's face rectangle, 5-point "
                     "landmarks, 150x150 chip; descriptors centred on the training set's mean"}


def _roots(cfg: dict) -> list[str]:
    """The folder of each training set of a resolved config."""
    return [entry.get("root") or f"{cfg['DATA_ROOT']}/{entry['name']}" for entry in cfg["DATASETS"]]


def _data(cfg: dict) -> str:
    people = (f"every person outside pairs.txt folds {cfg['EXCLUDE_FOLDS']}" if cfg["EXCLUDE_FOLDS"]
              else "every person")
    margin = cfg.get("MARGIN_MIN_IMAGES", 1)
    return (f"{' + '.join(_roots(cfg))}: {people} with >= {cfg['MIN_IMAGES']} images"
            + (f" (a head class, the margin loss, from {margin})" if margin > cfg["MIN_IMAGES"] else "")
            + f"; crop {cfg['CROP']}")


def _align_command(settings: dict, source: str = "IMAGES", out: str = "OUT") -> str:
    """The ``partialface align`` command of an align job's report settings."""
    return f"partialface align {source} {out} --frame {settings.get('frame', 250)} --pick {settings.get('pick', 'central')}"


def _input_preparation(ckpt: dict, five_point: Path | None) -> dict:
    """How query faces must be prepared: the checkpoint's own record (``InputPreparation``, written by
    training since it exists), with the align job that made a five-point training folder; for older runs
    the fixed box, or the five-point alignment of ``five_point`` (that job's report)."""
    if five_point is None and ckpt.get("preparation"):
        record = dict(ckpt["preparation"])
        reports = [Path(root) / "align_report.json" for root in _roots(ckpt["config"])]
        for report in (r for r in reports if record["kind"] == "five-point" and r.is_file()):
            made = json.loads(report.read_text())
            record["made_by"] = _align_command(made.get("settings", {}), made.get("source", "IMAGES"), str(report.parent))
        return record
    crop = ckpt["crop"]
    if five_point is None:
        return {"kind": "box", **crop}
    settings = json.loads(five_point.read_text()).get("settings", {})
    frame = settings.get("frame", 250)
    return {"kind": "five-point", "template": "ArcFace 112x112 five-point template",
            "frame": {"size": frame, "offset": [(frame - 112) // 2] * 2}, "crop": crop,
            **{key: settings[key] for key in ("detector", "landmarks", "pick") if key in settings},
            "made_by": _align_command(settings)}


def _privacy(frontier: Path, fingerprint: str | None) -> dict:
    """The frontier row (docs/frontier.json) of the model's plan: what a trained attacker recovers from
    what its clients send, with the target and the commands that measured it."""
    report = json.loads(frontier.read_text())
    row = next((row for row in report["rows"] if not row["anchor"] and row["plan"]["fingerprint"] == fingerprint), None)
    if row is None or not row.get("attacks"):
        raise SystemExit(f"{frontier}: no attacked setting with the model's plan {fingerprint}")
    choice = report.get("recommendation") or {}
    return {"setting": row["setting"], "label": row["label"], "attacks": row["attacks"],
            "target": report["target"], "recommended": choice.get("setting") == row["setting"],
            "attacker": {"options": report["attack"]["options"], "source": row["attack_source"]},
            "reproduce": [row["commands"]["attack"], "python experiments/frontier.py report --docs docs"],
            "measured_in": str(frontier)}


def card_for_run(run: Path, twin: Path | None = None, five_point: Path | None = None,
                 privacy: Path | None = None) -> dict:
    ckpt = load_checkpoint(run / "checkpoint.pt")
    measured = twin or run
    cfg, report = ckpt["config"], json.loads((measured / "eval.json").read_text())
    row = run.name.removeprefix("dev_")
    dev_protocol = _dev_protocol(report, ckpt["encoder"])
    if twin is not None:
        dev_protocol["measured_on"] = f"{twin}: the same recipe and budget without the people of folds 7-8"
    card = {
        "encoder": ckpt["encoder"]["name"],
        "plan": report.get("plan"),
        "backbone": _backbone(ckpt["model"]),
        "data": _data(cfg),
        "budget": _budget(ckpt),
        "recipe": _recipe(cfg, ckpt["encoder"]),
        "teacher": _teacher(cfg),
        "input_preparation": _input_preparation(ckpt, five_point),
        "dev_folds_seen_in_training": not {7, 8} <= set(cfg["EXCLUDE_FOLDS"]),
        "dev_protocol": dev_protocol,
        "reproduce": [f"experiments/dev_protocol.sh {row}", f"python experiments/ship_models.py {run}:NAME"],
    }
    if twin is not None:
        budget = f"--budget {cfg['MAX_SAMPLES']}"
        # The twin may have been trained in another run folder (a lever row reused for shipping).
        runs = ([f"python experiments/levers.py run {twin.name} {run.name} --out {run.parent} {budget}"]
                if twin.parent == run.parent else
                [f"python experiments/levers.py run {twin.name} --out {twin.parent} {budget}",
                 f"python experiments/levers.py run {run.name} --out {run.parent} {budget}"])
        card["reproduce"] = runs + [f"python experiments/ship_models.py {run}:NAME --twin {twin}"
                             + (f" --five-point {five_point}" if five_point else "")
                             + (f" --privacy {privacy}" if privacy else "")]
    if privacy is not None:
        card["privacy"] = _privacy(privacy, card["plan"])
    return card


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
        "backbone": _backbone(ckpt["model"]),
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
    parser.add_argument("--twin", type=Path, action="append", default=[],
                        help="the twin run of each RUN (same recipe without folds 7-8), one per item")
    parser.add_argument("--five-point", type=Path,
                        help="report.json of the `partialface align` job that made the training faces")
    parser.add_argument("--privacy", type=Path,
                        help="docs/frontier.json: the card quotes the attacks measured on the model's plan")
    parser.add_argument("items", nargs="+", metavar="RUN:NAME or JOB:NAME")
    args = parser.parse_args(argv)
    if args.twin_eval and len(args.twin_eval) != len(args.items):
        parser.error("give --twin-eval once per item, or not at all")
    if args.twin and len(args.twin) != len(args.items):
        parser.error("give --twin once per item, or not at all")
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
            card = card_for_run(Path(source), args.twin[index] if args.twin else None, args.five_point, args.privacy)
            out = export_model(Path(source) / "checkpoint.pt", args.weights_dir / f"{name}.pt", card=card)
        print(f"{name}: {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
