"""Export trained development-protocol runs as the package's shipped models, each with a model card.

    python experiments/ship_models.py runs/dev_partialface:default runs/dev_rgb:rgb-baseline

Each RUN folder must hold ``checkpoint.pt`` (from ``partialface train``) and ``eval.json`` (from
``partialface eval``, as ``experiments/dev_protocol.sh`` writes them). The card records the data, the
budget, the development-protocol accuracy and the commands that reproduce them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from partialface.api import WEIGHTS_DIR
from partialface.training import export_model, load_checkpoint


def card_for(run: Path) -> dict:
    ckpt = load_checkpoint(run / "checkpoint.pt")
    cfg, report = ckpt["config"], json.loads((run / "eval.json").read_text())
    row = run.name.removeprefix("dev_")
    return {
        "encoder": ckpt["encoder"]["name"],
        "plan": report.get("plan"),
        "backbone": ckpt["model"]["name"],
        "data": (f"LFW deep-funneled ({cfg['DATA_ROOT']}): every person outside pairs.txt folds "
                 f"{cfg['EXCLUDE_FOLDS']} with >= {cfg['MIN_IMAGES']} images; crop {cfg['CROP']}"),
        "budget": {"samples_seen": ckpt["samples_seen"], "steps": ckpt["step"],
                   "batch_size": cfg["DATASETS"][0]["batch_size"], "seed": cfg["SEED"]},
        "dev_protocol": {
            "pairs": f"LFW pairs.txt folds 7-8 ({report['pairs']} pairs), people never seen in training",
            "queries": ("one random rank per image (seed 0)" if ckpt["encoder"].get("plan") else "plain RGB images")
                       + ", flip-fused templates, 10 stratified folds",
            "accuracy": report["accuracy"], "accuracy_std": report["accuracy_std"],
            "tar_at_far_1e-3": report["tar_at_far_1e-3"], "auc": report["auc"],
        },
        "reproduce": [f"experiments/dev_protocol.sh {row}",
                      f"python experiments/ship_models.py {run}:NAME"],
    }


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    for item in argv:
        run, _, name = item.partition(":")
        if not name:
            raise SystemExit(f"expected RUN:NAME, got {item!r}")
        out = export_model(Path(run) / "checkpoint.pt", WEIGHTS_DIR / f"{name}.pt", card=card_for(Path(run)))
        print(f"{name}: {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(sys.argv[1:])
