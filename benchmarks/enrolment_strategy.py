"""Which per-subject score should identification use when a subject is enrolled from several photos?

    OMP_NUM_THREADS=1 python benchmarks/enrolment_strategy.py --model default \
        --lfw ../shared/data/lfw --json docs/enrolment_strategy.json

Protocol (LFW, folds 1-6, every face protected with its own random rank, as a client would send it):
the people of folds 1-6 with at least 3 photos are enrolled from their first 2 photos; their other
photos (at most ``--probes-per-person``) are the *mated* searches; one photo of each person of folds
1-6 with fewer than 3 photos (never enrolled) is a *non-mated* search. Each strategy of the gallery
(``max``, ``mean``, ``fused``) answers every search through the real SQLite store. Reported: rank-1
identification rate of the mated searches, and FNIR at FPIR 1 % (the threshold that 1 % of non-mated
top-1 scores exceed; a mated search fails when its mate is not the top-1 above it).

Note: the shipped ``default`` model was trained on every LFW person with 2 or more photos, these
people included; the numbers compare the strategies with each other, they do not measure the model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import partialface
from partialface.atomic import atomic_write
from partialface.data.pairs import people_in_folds, read_lfw_pairs
from partialface.gallery import STRATEGIES, open_gallery


def embed_files(model, files: list[Path], generator: torch.Generator, batch: int = 64) -> np.ndarray:
    """Templates of photos, each protected with its own random rank (drawn from ``generator``)."""
    out = []
    for start in range(0, len(files), batch):
        faces = torch.stack([model.load_image(f) for f in files[start:start + batch]])
        out.append(model.embed(faces, generator).numpy().astype(np.float32))
    return np.concatenate(out)


def lfw_protocol(lfw: Path, folds: range, probes_per_person: int) -> tuple[dict, dict, list]:
    """``enrolled {person: 2 photos}``, ``mated {person: other photos}``, ``non_mated [photos]``."""
    people = sorted(people_in_folds(read_lfw_pairs(lfw / "pairs.txt"), folds))
    photos = {p: sorted((lfw / "images" / p).glob("*.jpg")) for p in people}
    enrolled = {p: f[:2] for p, f in photos.items() if len(f) >= 3}
    mated = {p: photos[p][2:2 + probes_per_person] for p in enrolled}
    non_mated = [f[0] for p, f in photos.items() if len(f) < 3]
    return enrolled, mated, non_mated


def fnir_at_fpir(mated_top: list[tuple[bool, float]], non_mated_scores: np.ndarray, fpir: float) -> float:
    threshold = float(np.quantile(non_mated_scores, 1.0 - fpir))
    return 1.0 - float(np.mean([hit and score > threshold for hit, score in mated_top]))


def measure(model_name: str, lfw: Path, folds: range = range(1, 7), probes_per_person: int = 5, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = partialface.load_model(model_name)
    generator = torch.Generator().manual_seed(seed)
    enrolled, mated, non_mated = lfw_protocol(lfw, folds, probes_per_person)
    people = sorted(enrolled)
    t0 = time.perf_counter()
    gallery_t = embed_files(model, [f for p in people for f in enrolled[p]], generator).reshape(len(people), 2, -1)
    mated_people = [p for p in people for _ in mated[p]]
    mated_t = embed_files(model, [f for p in people for f in mated[p]], generator)
    non_mated_t = embed_files(model, non_mated, generator)
    embed_s = time.perf_counter() - t0
    dim = gallery_t.shape[-1]
    results = {}
    with open_gallery("sqlite:///:memory:") as gallery:
        gallery.bind_model(f"{model_name}@enrolment-benchmark", dim)
        # LFW names may hold characters a subject name may not (apostrophes): number the people
        gallery.enroll_many({f"p{i:04d}": gallery_t[i] for i in range(len(people))})
        for strategy in STRATEGIES:
            top = [gallery.search(q, 1, strategy)[0] for q in mated_t]
            mated_top = [(m.subject == f"p{people.index(p):04d}", m.score) for m, p in zip(top, mated_people)]
            non_mated_scores = np.array([gallery.search(q, 1, strategy)[0].score for q in non_mated_t])
            results[strategy] = {
                "rank1": round(float(np.mean([hit for hit, _ in mated_top])), 4),
                "fnir_at_fpir_1pct": round(fnir_at_fpir(mated_top, non_mated_scores, 0.01), 4),
                "fnir_at_fpir_10pct": round(fnir_at_fpir(mated_top, non_mated_scores, 0.10), 4),
            }
    return {
        "model": model_name, "folds": f"{folds.start}-{folds.stop - 1}", "seed": seed,
        "enrolled_people": len(people), "enrolment_photos_each": 2,
        "mated_searches": len(mated_t), "non_mated_searches": len(non_mated_t),
        "embed_seconds": round(embed_s, 1), "strategies": results,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--lfw", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"))
    ap.add_argument("--probes-per-person", type=int, default=5)
    ap.add_argument("--seeds", default="0", help="random-rank seeds, comma-separated (one row each)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = [measure(args.model, Path(args.lfw), probes_per_person=args.probes_per_person, seed=int(s))
            for s in args.seeds.split(",")]
    print("| seed | strategy | rank-1 | FNIR @ FPIR 1 % | FNIR @ FPIR 10 % |\n|---|---|---|---|---|")
    for run in runs:
        for strategy, r in run["strategies"].items():
            print(f"| {run['seed']} | {strategy} | {r['rank1']:.4f} | {r['fnir_at_fpir_1pct']:.4f} | {r['fnir_at_fpir_10pct']:.4f} |")
    print(json.dumps({k: v for k, v in runs[0].items() if k != "strategies"}))
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
