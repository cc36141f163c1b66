"""Privacy report: ``privacy.json``, a markdown table laid out like the paper's Table 3, a PNG grid.

Numbers are means over the victims: SSIM (1 = identical) and PSNR (dB) of the reconstructions against
the true faces, the judge's verification accuracy (percent, 10-fold thresholds, 50 = chance) and
rank-1 identification (percent) of the recovered faces.  Lower means more private.  Every row states
the attacker budget it was measured under; rows are comparable only under the same budget.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write, save_figure
from ..errors import PartialFaceError
from .runner import AttackResult, PrivacyEvaluation
from .threats import ENHANCED_ORACLE

REPORT_FORMAT = "partialface.privacy/1"
JSON_NAME = "privacy.json"
MARKDOWN_NAME = "privacy.md"
GRID_NAME = "privacy_grid.png"
FACES_NAME = "privacy_faces.npz"

# Paper Table 3 (white-box recovery by a full U-Net trained on BUPT): SSIM / PSNR / accuracy (%).
PAPER_TABLE3_WHITE_BOX: dict[str, dict[str, float]] = {
    "PPFR-FD": {"ssim": 0.713, "psnr": 15.66, "accuracy": 83.73},
    "DCTDP": {"ssim": 0.687, "psnr": 15.42, "accuracy": 79.60},
    "DuetFace": {"ssim": 0.866, "psnr": 19.88, "accuracy": 96.52},
    "PartialFace": {"ssim": 0.591, "psnr": 13.70, "accuracy": 65.35},
}
_PAPER_ROW_OF = {("partialface", "white-box"): "PartialFace"}

UNITS = {
    "ssim": "mean SSIM of reconstruction vs true face over the victims (1 = identical; lower = more private)",
    "psnr": "mean PSNR in dB (capped at 100 for identical images; lower = more private)",
    "judge_accuracy": "percent; dlib ResNet verification of (recovered face, genuine photo) pairs, half of them "
                      "the same person, thresholds chosen on 9 of 10 folds; 50 = chance",
    "judge_rank1": "percent; recovered face's nearest gallery photo (one genuine photo per victim person) is its own "
                   "person; chance = 100 / gallery size",
    "judge_detection_rate": "percent of recovered faces in which dlib's detector found a face (else whole image)",
    "wall_seconds": "training time of the attacker on this machine (reconstruction and scoring excluded)",
}


def _result_entry(result: AttackResult, evaluation: PrivacyEvaluation) -> dict:
    entry: dict = {
        "ssim": float(np.mean(result.ssim)),
        "ssim_std": float(np.std(result.ssim)),
        "psnr": float(np.mean(result.psnr)),
        "psnr_std": float(np.std(result.psnr)),
    }
    if result.leakage is not None:
        entry.update(result.leakage.to_dict())
    else:
        entry.update({"judge_accuracy": None, "judge_rank1": None})
    entry["upper_bound"] = result.upper_bound
    if result.upper_bound:
        entry["note"] = "oracle: picks each query's best reconstruction by SSIM against the true face; an upper " \
                        "bound, not an attack"
    entry["attacker"] = evaluation.threat_descriptions.get(result.scenario.key, "")
    training = result.training
    entry["budget"] = {
        "images": evaluation.attacker_images,
        "people": evaluation.attacker_people,
        "steps": training.steps,
        "samples": training.samples,
        "epochs": training.samples / evaluation.attacker_images,
        "wall_seconds": training.wall_seconds,
    }
    entry.update(result.details)
    return entry


def build_report(evaluation: PrivacyEvaluation, lfw_root: str | None = None) -> dict:
    """The JSON-ready report of an evaluation."""
    settings, victims = evaluation.settings, evaluation.victims
    results: dict[str, dict[str, dict]] = {}
    for result in evaluation.results:
        results.setdefault(result.scenario.encoder, {})[result.label] = _result_entry(result, evaluation)
    judge: dict = {"model": "dlib_face_recognition_resnet_model_v1 (face-recognition-models), 5-point "
                            "get_face_chip 150x150, score = -euclidean distance",
                   "versions": evaluation.judge_versions}
    if evaluation.original_leakage is not None:
        judge["original_faces"] = evaluation.original_leakage.to_dict()
    return {
        "format": REPORT_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "units": UNITS,
        "protocol": {
            "data": lfw_root,
            "victims": len(victims),
            "gallery": int(victims.gallery_faces.shape[0]),
            "face_size": list(victims.faces.shape[-2:]),
            "attacker_images": evaluation.attacker_images,
            "attacker_people": evaluation.attacker_people,
            "deployment_plan": settings.plan.fingerprint,
            "attacker_plans": evaluation.attacker_plans,
            "seed": settings.seed,
            "rank_selection": settings.criterion,
            "device": settings.device,
            "torch_threads": torch.get_num_threads(),
        },
        "judge": judge,
        "budget": evaluation.budget.to_dict(),
        "results": results,
        "paper_table3_white_box": PAPER_TABLE3_WHITE_BOX,
    }


def write_json(report: dict, path: str | os.PathLike[str]) -> Path:
    """Write the report as indented JSON, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    return Path(path)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(report: dict) -> str:
    """The results as markdown: ours beside the paper's Table 3, then the budget."""
    budget = report["budget"]
    lines = [
        "# Privacy: face recovery attacks",
        "",
        "Recovery of the victims' faces from what the client sends, by a U-Net attacker trained on faces of other "
        "people; identity leakage judged by dlib's ResNet recognizer (not trained by us). Lower is more private. "
        "Paper numbers: Table 3 of Mi et al. (ICCV 2023), white-box, a full U-Net trained on BUPT.",
        "",
        "| Encoder | Threat model | SSIM | PSNR | Judge acc. % | Rank-1 % | Paper SSIM / PSNR / acc. % "
        "| Epochs | Train min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for encoder, threats in report["results"].items():
        for threat, entry in threats.items():
            paper = PAPER_TABLE3_WHITE_BOX.get(_PAPER_ROW_OF.get((encoder, threat), ""))
            paper_text = f"{paper['ssim']:.3f} / {paper['psnr']:.2f} / {paper['accuracy']:.2f}" if paper else "-"
            label = f"{threat} (upper bound)" if entry["upper_bound"] else threat
            lines.append(
                f"| {encoder} | {label} | {_number(entry['ssim'], 3)} | {_number(entry['psnr'], 2)} | "
                f"{_number(entry['judge_accuracy'], 2)} | {_number(entry['judge_rank1'], 1)} | {paper_text} | "
                f"{entry['budget']['epochs']:.2f} | {entry['budget']['wall_seconds'] / 60:.1f} |")
    original = report["judge"].get("original_faces")
    if original:
        lines.append(f"| original faces | (no attack: judge ceiling) | 1.000 | - | "
                     f"{original['judge_accuracy']:.2f} | {original['judge_rank1']:.1f} | - | - | - |")
    lines += ["", "Paper, Table 3 (white-box): ", "",
              "| Method | SSIM | PSNR | Acc. % |", "|---|---|---|---|"]
    for method, numbers in PAPER_TABLE3_WHITE_BOX.items():
        lines.append(f"| {method} | {numbers['ssim']:.3f} | {numbers['psnr']:.2f} | {numbers['accuracy']:.2f} |")
    protocol = report["protocol"]
    lines += [
        "",
        f"Budget (every single attacker): U-Net width {budget['width']}, depth {budget['depth']}, L1"
        + (f" + {budget['ssim_weight']} x (1 - SSIM)" if budget["ssim_weight"] else "")
        + f" loss, Adam {budget['learning_rate']:g}, {budget['steps']} steps x {budget['batch_size']} faces, on "
        f"{protocol['attacker_images']} photos of {protocol['attacker_people']} people outside the victim folds. "
        f"Enhanced white-box: the white-box attacker fine-tuned for {budget['rank_steps']} more steps per rank "
        f"(Adam {budget['rank_learning_rate']:g}), query's reconstruction chosen by "
        f"'{protocol['rank_selection']}' (blind); the oracle row picks by SSIM against the truth and is an upper "
        "bound only.",
        f"Victims: {protocol['victims']} people of the victim folds (one attacked photo each; another photo of each "
        f"forms the gallery). Deployment plan {protocol['deployment_plan']}.",
        f"Judge: {report['judge']['model']}; versions {report['judge']['versions'] or 'n/a'}.",
        "",
    ]
    return "\n".join(lines)


def write_markdown(report: dict, path: str | os.PathLike[str]) -> Path:
    with atomic_write(path, "w") as handle:
        handle.write(markdown_table(report))
    return Path(path)


def _to_image(face: torch.Tensor, unit_range: bool) -> np.ndarray:
    image = face.detach().cpu().float()
    if not unit_range:
        image = image * 0.5 + 0.5
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def write_grid(evaluation: PrivacyEvaluation, path: str | os.PathLike[str], faces: int = 6) -> Path:
    """PNG grid: per victim a row of protected previews and a row of reconstructions, one column per
    attack (the first column shows the original face)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    count = min(faces, len(evaluation.victims))
    if count < 1:
        raise PartialFaceError("the grid needs at least one victim face")
    columns = len(evaluation.results) + 1
    figure, axes = plt.subplots(2 * count, columns, figsize=(1.25 * columns, 2.5 * count + 0.6), squeeze=False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
        for spine in axis.spines.values():
            spine.set_visible(False)
    for row in range(count):
        axes[2 * row, 0].imshow(_to_image(evaluation.victims.faces[row], False))
        axes[2 * row, 0].set_ylabel("preview", fontsize=7)
        axes[2 * row + 1, 0].set_ylabel("recovered", fontsize=7)
        for column, result in enumerate(evaluation.results, start=1):
            axes[2 * row, column].imshow(_to_image(result.previews[row], True))
            axes[2 * row + 1, column].imshow(_to_image(result.reconstructions[row], False))
    axes[0, 0].set_title("original", fontsize=7)
    for column, result in enumerate(evaluation.results, start=1):
        label = "oracle (bound)" if result.label == ENHANCED_ORACLE else result.label
        axes[0, column].set_title(f"{result.scenario.encoder}\n{label}", fontsize=7)
    figure.tight_layout(pad=0.3)
    return save_figure(figure, path, dpi=100)


def write_faces(evaluation: PrivacyEvaluation, path: str | os.PathLike[str], faces: int = 6) -> Path:
    """The grid's faces as uint8 (F, H, W, 3) arrays in an ``.npz``: ``original``, ``victim_paths`` and one
    ``ENCODER/THREAT`` array of reconstructions per attack, so that reports of several runs (several
    plans) can be laid side by side without re-running them (``experiments/frontier.py``)."""
    count = min(faces, len(evaluation.victims))

    def pixels(batch: torch.Tensor) -> np.ndarray:
        return (np.stack([_to_image(face, False) for face in batch[:count]]) * 255).round().astype(np.uint8)

    arrays = {"original": pixels(evaluation.victims.faces),
              "victim_paths": np.array(evaluation.victims.paths[:count])}
    arrays.update({result.key: pixels(result.reconstructions) for result in evaluation.results})
    with atomic_write(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return Path(path)


def write_privacy_outputs(evaluation: PrivacyEvaluation, out_dir: str | os.PathLike[str],
                          lfw_root: str | None = None, grid_faces: int = 6) -> tuple[dict, dict[str, Path]]:
    """Write ``privacy.json``, ``privacy.md``, ``privacy_grid.png`` and ``privacy_faces.npz`` into ``out_dir``.

    Returns the report and the written paths (keys ``json``, ``markdown``, ``grid``, ``faces``).
    """
    folder = Path(out_dir)
    report = build_report(evaluation, lfw_root)
    return report, {
        "json": write_json(report, folder / JSON_NAME),
        "markdown": write_markdown(report, folder / MARKDOWN_NAME),
        "grid": write_grid(evaluation, folder / GRID_NAME, grid_faces),
        "faces": write_faces(evaluation, folder / FACES_NAME, grid_faces),
    }
