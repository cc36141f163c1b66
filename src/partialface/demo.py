"""``make demo``: protect real faces, verify the development folds from protected queries, write a report.

1. A handful of faces (one per person, seeded) are protected with the default model's plan; a preview
   sheet per face shows the original, what an eavesdropper could view, and the sent channels.
2. The shipped default PartialFace model verifies LFW folds 7-8 (the development protocol's
   evaluation folds) from protected queries: one random rank per image. The report says, from the
   model card, whether the model saw those people in training and what it scores on unseen ones.
   Beside it, the shipped ``rgb-baseline`` (``default``'s recipe on the face itself) verifies the same
   pairs: the difference is what protection costs (``--no-baseline`` skips it).
3. ``report.html`` gathers the sheets, the ROC curves and the numbers.

Every output path is checked before the first face is read (existing files are replaced only with
``--overwrite``; ``make demo`` passes it, its ``demo_out`` being the demo's own folder) and the output
folder is locked while the demo writes there. A photo that cannot be read is listed (on the page, on
stderr and in ``faces/protect_report.json``) and the others are shown; the command then exits with 1.

Faces come from the folder given as ``data`` (``--data``; ``make demo`` passes the LFW copy beside the
repository, ``DATA ?= ../shared/data/lfw/images`` in the Makefile); verification needs ``pairs.txt`` next
to that ``images`` folder. The library assumes no location of its own.
"""

from __future__ import annotations

import html
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write
from .checks import check_int, check_seed
from .data import DEFAULT_CROP, image_files
from .outputs import OutputFiles, check_output_folder
from .plan import ChannelPlan
from .protect import protect_files
from .runlock import RunFolderLock

__all__ = ["pick_faces", "run_demo", "DemoResult", "NO_FACES_HELP", "DEMO_FOLDS", "MAX_COUNT"]

DEMO_FOLDS = [7, 8]
MAX_COUNT = 1000  # preview sheets on one page: beyond this the page is unusable and `protect` is the tool

NO_FACES_HELP = """no face photos found.
Give a folder of face photos with DATA=/path/to/faces (make demo DATA=...) or --data.
Photos are prepared as the default model records: raw photos (any size; each face found and five-point
aligned) for a model trained on aligned faces, else 112x112 crops or 250x250 LFW-style photos with the
face centred (the crop keeps the central 112x112 box). LFW (deep-funneled) can be obtained from the
University of Massachusetts' "Labeled Faces in the Wild" page; unpack it so that it holds
Name/Name_0001.jpg folders (and its pairs.txt beside them for the verification step)."""


def pick_faces(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Up to ``count`` photos, at most one per sub-folder (person), chosen with ``seed``."""
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    rng = random.Random(seed)
    if not people:  # a flat folder of photos
        files = image_files(folder)
        return rng.sample(files, min(count, len(files)))
    chosen = []
    for person in rng.sample(people, len(people)):
        photos = image_files(person)
        if photos:
            chosen.append(photos[0])
        if len(chosen) == count:
            break
    return chosen


BASELINE = "rgb-baseline"  # the shipped model that sees the face itself, with `default`'s recipe (its card: budget)


def _load_shipped(name: str):
    from .api import load_model, shipped_models

    if name not in shipped_models():
        return None
    return load_model(name)


def _verify(models: dict, pairs_path: Path, images: Path, out: Path, seed: int) -> list[dict]:
    """Verify folds 7-8 from raw photos with each shipped model (name -> model); one ROC plot and
    ``verification.json`` (the first model's report, the others under ``compared_with`` by name)."""
    from .evaluation.protocol import evaluate_model_on_pairs
    from .evaluation.metrics import plot_roc

    reports, curves = [], {}
    for name, model in models.items():
        report, scores, issame = evaluate_model_on_pairs(model, str(pairs_path), str(images), DEMO_FOLDS, seed=seed,
                                                         raw_photos=True)
        reports.append({"name": name, **report})
        queries = "the face itself" if model.encoder.plan is None else "protected queries"
        curves[f"{name}: {queries}"] = (scores, issame)
    plot_roc(curves, out / "roc.png",
             title=f"LFW folds {DEMO_FOLDS[0]}-{DEMO_FOLDS[-1]}, one random rank per protected query")
    with atomic_write(out / "verification.json", "w") as fh:
        json.dump({**reports[0], "compared_with": {r["name"]: r for r in reports[1:]}}, fh, indent=1)
    return reports


def _seen_note(card: dict, name: str = "The shipped model") -> str:
    """Whether the verified people were in the model's training set, and its accuracy on unseen people."""
    dev = card.get("dev_protocol", {})
    unseen = (f" On people it never saw (the development protocol: {dev.get('measured_on', 'this model')}) it "
              f"scores {100 * dev['accuracy']:.2f} %." if "accuracy" in dev else "")
    if card.get("dev_folds_seen_in_training"):
        return (f"{name} was trained on every LFW person, these included, so this accuracy is optimistic."
                + unseen)
    return "These people were never seen in training." + unseen


def _report_rows(reports: list[dict]) -> list[tuple[str, list]]:
    """The verification table: one column per model (the default first)."""
    if not reports:
        return []
    def column(key: str, show) -> list[str]:
        return [show(r[key]) for r in reports]

    return [
        ("model", column("name", html.escape)),
        ("encoder / plan", [f"{r['encoder']} / {r['plan'] or 'none (the face itself)'}" for r in reports]),
        ("pairs (LFW folds 7-8)", column("pairs", str)),
        ("accuracy (10 stratified folds)",
         [f"{100 * r['accuracy']:.2f} % &plusmn; {100 * r['accuracy_std']:.2f}" for r in reports]),
        ("TAR at FAR=1e-3", column("tar_at_far_1e-3", lambda v: f"{100 * v:.2f} %")),
        ("ROC AUC", column("auc", lambda v: f"{v:.4f}")),
        ("seconds", column("seconds", str)),
    ]


def _write_html(out: Path, sheets: list[Path], reports: list[dict], model, note: str,
                failed: list[tuple[Path, str]]) -> Path:
    rows = _report_rows(reports)
    card = getattr(model, "card", {}) if model else {}
    parts = [
        "<!doctype html><meta charset='utf-8'><title>partialface demo</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1800px}td{padding:2px 12px}img{max-width:100%}</style>",
        "<h1>partialface demo</h1>",
        f"<p>{html.escape(note)}</p>",
    ]
    if rows:
        parts.append("<h2>Verification of LFW folds 7-8 from raw photos</h2><table>")
        parts += ["<tr><td>" + html.escape(k) + "</td>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>"
                  for k, values in rows]
        parts.append("</table><p><img src='roc.png' alt='ROC curve' style='max-width:640px'></p>")
    if card:
        parts.append("<h2>Model card</h2><pre>" + html.escape(json.dumps(card, indent=1)) + "</pre>")
    parts.append("<h2>Protected faces</h2><p>original | inverse transform of what was sent (what an "
                 "eavesdropper could view) | the same, contrast-stretched | the sent channels</p>")
    parts += [f"<p><img src='{html.escape(p.relative_to(out).as_posix())}'></p>" for p in sheets]
    if failed:
        parts.append("<h2>Photos that could not be used</h2><ul>")
        parts += [f"<li>{html.escape(reason)}</li>" for _, reason in failed]
        parts.append("</ul>")
    path = out / "report.html"
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(parts) + "\n")
    return path


@dataclass
class DemoResult:
    """The report page, the photos that could not be protected (``(photo, reason)``) and where they are listed."""

    page: Path
    failed: list[tuple[Path, str]]
    failures_report: Path | None


def run_demo(data: str | os.PathLike | None, out: str | os.PathLike, count: int = 6, seed: int = 0,
             verify: bool = True, overwrite: bool = False, baseline: bool = True) -> DemoResult:
    """Protect ``count`` faces of ``data`` into ``out``, verify folds 7-8 when possible.

    ``baseline``: verify the same pairs with the shipped ``rgb-baseline`` too, when it is shipped.

    Exits (SystemExit with how to get faces) when ``data`` is missing or holds no photo.
    """
    check_int("--count", count, 1, MAX_COUNT)
    check_seed("--seed", seed)
    folder = Path(data) if data else None
    if folder is None or not folder.is_dir():
        where = f" (looked for {folder})" if folder else ""
        raise SystemExit(f"partialface demo: {NO_FACES_HELP}{where}")
    faces = pick_faces(folder, count, seed)
    if not faces:
        raise SystemExit(f"partialface demo: {NO_FACES_HELP}")
    out = check_output_folder(out, "--out")
    model = _load_shipped("default")
    pairs = folder.parent / "pairs.txt"
    verifying = verify and model is not None and pairs.is_file()
    compared = _load_shipped(BASELINE) if verifying and baseline else None
    outputs = OutputFiles("--out", overwrite, inputs=faces)
    for name in ("report.html", *(("roc.png", "verification.json") if verifying else ())):
        outputs.add(out / name)
    with RunFolderLock(out, "demo"):
        return _demo(folder, faces, out, model, pairs, verifying, seed, overwrite, compared)


def _demo(folder: Path, faces: list[Path], out: Path, model, pairs: Path, verifying: bool, seed: int,
          overwrite: bool, compared=None) -> DemoResult:
    encoder = model.encoder if model else None
    # Photos are prepared as the model records (its crop box, or five-point alignment of raw photos).
    protected = protect_files(faces, out / "faces", ChannelPlan.tface(), seed=seed,
                              crop=model.crop if model else DEFAULT_CROP, encoder=encoder, progress=False,
                              overwrite=overwrite, preparation=model.preparation if model else None)
    sheets = protected.previews
    plan = (encoder.plan if encoder else ChannelPlan.tface()).fingerprint
    print(f"protected {len(sheets)} faces from {folder} with plan {plan}; preview sheets in {out / 'faces'}")

    reports, note = [], ""
    if model is None:
        note = "No shipped default model in this build: verification skipped."
    elif not pairs.is_file():
        note = f"No pairs.txt next to {folder}: verification skipped."
    elif verifying:
        with_baseline = f" and, for comparison, {BASELINE} (the face itself)" if compared else ""
        print(f"verifying LFW folds {DEMO_FOLDS} from protected queries with the default model{with_baseline} ...")
        reports = _verify({"default": model, **({BASELINE: compared} if compared else {})}, pairs, folder, out, seed)
        seen = _seen_note(model.card)
        note = (f"Default model ({model.source}) verifying LFW pairs folds {DEMO_FOLDS}; every query image was "
                f"protected with one random rank of its plan. {seen}")
        if compared:
            note += (f" Beside it, {BASELINE}, trained with the same recipe on the faces themselves, verifies the same "
                     f"pairs unprotected: the difference is what protection costs. "
                     f"{_seen_note(compared.card, BASELINE)}")
        for report in reports:
            print(f"{report['name']}: accuracy {100 * report['accuracy']:.2f} +- {100 * report['accuracy_std']:.2f} %, "
                  f"TAR@FAR=1e-3 {100 * report['tar_at_far_1e-3']:.2f} %, AUC {report['auc']:.4f} "
                  f"({report['pairs']} pairs, {report['seconds']} s)")
        print(seen)
    if note and not reports:
        print(note)
    page = _write_html(out, sheets, reports, model, note, protected.failed)
    print(f"report: {page}")
    return DemoResult(page, protected.failed, protected.report)
