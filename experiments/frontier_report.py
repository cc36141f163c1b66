"""The outputs of ``experiments/frontier.py report``: the recommendation, the JSON, the table, the plot
and the attack grid of the frontier (docs/frontier.md). Only the rows' numbers are read here; nothing
is trained or attacked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from partialface.atomic import atomic_write, save_figure

WHITE_BOX, ENHANCED = "white-box", "enhanced-white-box"
PUBLISHED = "tface"
GRID_VICTIMS = 4


def _white_box(row: dict) -> dict | None:
    """The row's white-box attack numbers, None when it was not attacked or not judged (``--no-judge``)."""
    entry = (row.get("attacks") or {}).get(WHITE_BOX)
    return entry if entry and entry.get("judge_accuracy") is not None else None


def _accuracy(row: dict) -> float | None:
    return row["accuracy"]["accuracy"] if row.get("accuracy") else None


def recommend(rows: list[dict], target: dict) -> dict | None:
    """The setting for deployments that must hide identity: among the plan settings whose white-box attack
    stays within ``target`` (judge verification and rank-1, percent), the most accurate; when none does,
    the one whose white-box judge verification is lowest ("closest"). Its cost is measured against the
    published plan's accuracy."""
    attacked = [row for row in rows if not row["anchor"] and _white_box(row)]
    if not attacked:
        return None
    meets = [row for row in attacked if _white_box(row)["judge_accuracy"] <= target["judge_accuracy"]
             and _white_box(row)["judge_rank1"] <= target["judge_rank1"]]
    if meets:
        pending = [row["setting"] for row in meets if _accuracy(row) is None]
        chosen = max(meets, key=lambda row: (_accuracy(row) or -1.0, row["plan"]["sent_channels"]))
    else:
        pending = []
        chosen = min(attacked, key=lambda row: (_white_box(row)["judge_accuracy"], _white_box(row)["judge_rank1"]))
    published = next((row for row in rows if row["setting"] == PUBLISHED), None)
    accuracy, reference = _accuracy(chosen), _accuracy(published) if published else None
    return {"setting": chosen["setting"], "fingerprint": chosen["plan"]["fingerprint"], "meets_target": bool(meets),
            "settings_meeting_target": [row["setting"] for row in meets], "accuracy_pending": pending,
            "white_box": _white_box(chosen), "enhanced_white_box": (chosen.get("attacks") or {}).get(ENHANCED),
            "accuracy": accuracy, "published_accuracy": reference,
            "accuracy_cost": None if accuracy is None or reference is None else reference - accuracy}


def _number(value, digits: int, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def markdown_table(report: dict) -> str:
    """One line per setting: what it sends, its accuracy, and both attacks' leakage."""
    lines = ["| setting | sent (pruned, m x s) | fingerprint | accuracy % | TAR@1e-3 % | each rank fixed: mean (min-max) "
             "| white-box SSIM / PSNR | judge % | rank-1 % | enhanced SSIM | judge % | rank-1 % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        plan = row.get("plan")
        sent = (f"{plan['sent_channels']} ({plan['pruned']}, {plan['m']} x {plan['s']})" if plan else
                "3 (RGB)" if row["setting"] == "rgb" else "162 (10, all)" if row["setting"] == "pruned" else "-")
        accuracy = row.get("accuracy") or {}
        spread = accuracy.get("per_rank")
        ranks = f"{spread['mean']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})" if spread else "-"
        attacks = row.get("attacks") or {}
        white, enhanced = attacks.get(WHITE_BOX) or {}, attacks.get(ENHANCED) or {}
        acc = (f"{accuracy['accuracy']:.2f} +- {accuracy['accuracy_std']:.2f}" if accuracy else "-")
        lines.append(
            f"| {row['setting']}{' (anchor)' if row['anchor'] else ''} | {sent} | "
            f"{plan['fingerprint'] if plan else '-'} | {acc} | {_number(accuracy.get('tar_at_far_1e-3'), 2)} | {ranks} | "
            f"{_number(white.get('ssim'), 3)} / {_number(white.get('psnr'), 2)} | {_number(white.get('judge_accuracy'), 2)} | "
            f"{_number(white.get('judge_rank1'), 1)} | {_number(enhanced.get('ssim'), 3)} | "
            f"{_number(enhanced.get('judge_accuracy'), 2)} | {_number(enhanced.get('judge_rank1'), 1)} |")
    return "\n".join(lines)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def write_plot(report: dict, path: Path) -> Path:
    """Accuracy against white-box judge verification, one point per setting; RGB and the published plan marked."""
    plt = _figure()
    figure, axis = plt.subplots(figsize=(7.0, 4.8))
    target = report["target"]["judge_accuracy"]
    axis.axvspan(45, target, color="tab:green", alpha=0.08, label=f"target: judge <= {target:g} %")
    axis.axvline(50, color="grey", linestyle=":", linewidth=1)
    axis.text(50.3, 0.02, "chance", transform=axis.get_xaxis_transform(), fontsize=7, color="grey")
    for row in report["rows"]:
        white, accuracy = _white_box(row), _accuracy(row)
        if white is None or accuracy is None:
            continue
        style = ({"marker": "*", "s": 160, "color": "black"} if row["setting"] == "rgb" else
                 {"marker": "s", "s": 70, "color": "tab:red"} if row["setting"] == PUBLISHED else
                 {"marker": "D", "s": 45, "color": "grey"} if row["anchor"] else
                 {"marker": "o", "s": 45, "color": "tab:blue"})
        axis.scatter(white["judge_accuracy"], accuracy, zorder=3, **style)
        name = {"rgb": "RGB", PUBLISHED: "published (tface)"}.get(row["setting"], row["setting"])
        axis.annotate(name, (white["judge_accuracy"], accuracy), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axis.set_xlabel("white-box attack: judge verification of recovered faces (%)  (lower = more private)")
    axis.set_ylabel("verification accuracy, LFW folds 7-8 (%)")
    axis.set_title(f"Privacy against accuracy ({report['backbone']}, {report['budget']:,} samples)", fontsize=10)
    axis.set_xlim(45, 100)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path, dpi=110)


def write_grid(report: dict, out_root: Path, path: Path, victims: int = GRID_VICTIMS) -> Path | None:
    """A few victims (rows): the original, then each setting's white-box reconstruction (columns)."""
    columns = []
    for row in report["rows"]:
        faces_file = out_root / row["setting"] / "attack" / "privacy_faces.npz"
        if faces_file.is_file():
            faces = np.load(faces_file)
            key = next((k for k in faces.files if k.endswith(f"/{WHITE_BOX}")), None)
            if key is not None:
                columns.append((row["setting"], faces["original"], faces[key]))
    if not columns:
        return None
    original = columns[0][1]
    count = min(victims, *(len(recovered) for _, _, recovered in columns))
    plt = _figure()
    figure, axes = plt.subplots(count, len(columns) + 1, figsize=(1.3 * (len(columns) + 1), 1.4 * count + 0.4),
                                squeeze=False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    for victim in range(count):
        axes[victim, 0].imshow(original[victim])
        for column, (_, _, recovered) in enumerate(columns, start=1):
            axes[victim, column].imshow(recovered[victim])
    axes[0, 0].set_title("original", fontsize=8)
    for column, (name, _, _) in enumerate(columns, start=1):
        axes[0, column].set_title(name, fontsize=8)
    figure.tight_layout(pad=0.3)
    return save_figure(figure, path, dpi=100)


def write_report(report: dict, out_root: Path, docs: Path) -> None:
    """``frontier.json``, ``frontier.png`` and ``frontier_grid.png`` into ``docs``; the table on stdout."""
    with atomic_write(docs / "frontier.json", "w") as handle:
        json.dump(report, handle, indent=1)
        handle.write("\n")
    write_plot(report, docs / "frontier.png")
    write_grid(report, out_root, docs / "frontier_grid.png")
    print(markdown_table(report))
    choice = report["recommendation"]
    if choice:
        print(f"\nrecommended: {choice['setting']} ({'meets' if choice['meets_target'] else 'closest to'} the target); "
              f"accuracy cost against the published plan: {_number(choice['accuracy_cost'], 2, ' points')}")
