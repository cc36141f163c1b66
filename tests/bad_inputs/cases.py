"""The bad inputs of issue 11 tried on the command line, as data: one table drives the test and the docs.

:func:`make_scratch` builds a folder a new user might have (photos, broken photos, a plan, their own
files, a tiny training set, damaged checkpoints); every :class:`Case` is a ``partialface`` command run in
that folder with what it must give: the exit status and a fragment of its last line. Every case also
checks that no file that was there before the command was changed or removed (md5).

``tests/bad_inputs/test_cases.py`` runs each case in-process; ``python -m tests.bad_inputs.tour`` runs
each as a real process and prints the table of ``docs/reliability.md`` (against any version of the
package: the set-up uses only what every version has).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from .._training_fixtures import tiny_config, write_identities, write_pairs


@dataclass(frozen=True)
class Case:
    what: str  # the bad input, in words
    argv: str  # the command after ``partialface`` (run in the scratch folder; split on spaces)
    status: int  # the exit status it must give
    says: str  # a fragment of the last line of its output (stderr, or stdout on success)


def _photo(path: Path, width: int = 250, height: int = 250, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _checkpoints(root: Path) -> None:
    """Copies of the shipped default model with one weight missing, mis-shaped or NaN."""
    from partialface.api import WEIGHTS_DIR

    original = torch.load(WEIGHTS_DIR / "default.pt", map_location="cpu", weights_only=True)
    weights = original["model"]["state_dict"]
    first = next(name for name, tensor in weights.items() if tensor.dim() == 4)
    damaged = {
        "missing": {k: v for k, v in weights.items() if k != first},
        "misshaped": {**weights, first: weights[first][:, :1]},
        "nan": {**weights, first: torch.full_like(weights[first], float("nan"))},
    }
    for name, state in damaged.items():
        torch.save({**original, "model": {**original["model"], "state_dict": state}}, root / f"{name}.pt")


def make_scratch(root: Path) -> Path:
    """The folder every case runs in (see the module docstring); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    _photo(root / "photos" / "Ann" / "face.jpg", seed=1)
    _photo(root / "photos" / "Ann" / "face.png", seed=2)
    _photo(root / "photos" / "Bob" / "b.jpg", seed=3)
    bad = root / "bad"
    _photo(bad / "good.jpg", seed=4)
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.png").write_text("not a picture")
    (bad / "truncated.jpg").write_bytes((root / "photos" / "Ann" / "face.jpg").read_bytes()[:400])
    _photo(bad / "big.jpg", 1000, 1000, seed=5)
    _photo(bad / "small.jpg", 300, 200, seed=6)
    grey = np.random.default_rng(7).integers(0, 256, (250, 250)).astype(np.uint16) * 257
    Image.fromarray(grey).save(bad / "grey16.png")
    (root / "notes.txt").write_text("my notes\n")
    (root / "plan.json").write_text(json.dumps({"my": "secret plan"}))
    (root / "report.json").write_text("{}\n")
    (root / "prior" / "Ann").mkdir(parents=True)
    (root / "prior" / "Ann" / "face.jpg.npz").write_text("an earlier result I keep\n")
    (root / "site").mkdir()
    (root / "site" / "report.html").write_text("<p>my own page</p>\n")
    (root / "reports").mkdir()
    (root / "reports" / "privacy.json").write_text("{}\n")
    (root / "mine").mkdir()
    (root / "mine" / "config.yaml").write_text("my own config\n")
    (root / "odd_plan.json").write_text(json.dumps({"pruned": [0], "subsets": [[31.5]], "permutations": [[0]]}))
    faces = root / "faces"
    write_pairs(faces / "pairs.txt", write_identities(faces))
    people = [f"Person_{index:02d}" for index in range(10)]  # 250x250 photos: what eval and the model expect
    for index, name in enumerate(people):
        for number in (1, 2, 3):
            _photo(root / "lfw" / "images" / name / f"{name}_{number:04d}.jpg", seed=100 + 3 * index + number)
    write_pairs(root / "lfw" / "pairs.txt", people)
    broken = root / "broken"
    write_identities(broken)
    (broken / "images" / "Person_03" / "Person_03_0002.jpg").write_bytes(b"not a jpeg")
    # paths relative to the scratch folder, where the commands run
    base = tiny_config(Path("faces"), Path("run"), ENCODER="rgb", NUM_AUG=1, EXCLUDE_PAIRS="", EXCLUDE_FOLDS=[],
                       DEV_PAIRS="", NUM_EPOCH=1)
    configs = {"train.yaml": base,
               "broken.yaml": {**base, "DATA_ROOT": "broken", "OUT": "broken_run"},
               "broken_workers.yaml": {**base, "DATA_ROOT": "broken", "OUT": "broken_run2", "WORKERS": 2},
               "broken_skip.yaml": {**base, "DATA_ROOT": "broken", "OUT": "skip_run", "SKIP_UNREADABLE": True}}
    for name, cfg in configs.items():
        (root / name).write_text(yaml.safe_dump(cfg))
    _checkpoints(root)
    return root


PAIRS = "--pairs lfw/pairs.txt --images lfw/images"

CASES = [
    # ---- outputs never land on the user's files
    Case("output folder = photo folder", "protect photos --out photos", 2, "is inside the photo folder"),
    Case("output folder inside the photo folder", "protect photos --out photos/Ann/protected", 2,
         "is inside the photo folder"),
    Case("face.jpg and face.png in one folder", "protect photos/Ann --out out", 0, "wrote 2 protected faces"),
    Case("one photo protected into its own folder", "protect photos/Ann/face.png --out photos/Ann", 0,
         "wrote 1 protected faces"),
    Case("an earlier result where an output goes", "protect photos --out prior", 2,
         "already exists and this run did not write it; pass --overwrite"),
    Case("--out is a file", "protect photos --out notes.txt", 2, "'notes.txt' is a file, not a folder"),
    Case("--out below a file", "protect photos --out notes.txt/sub", 2, "cannot be created: 'notes.txt' is a file"),
    Case("plan generate over an existing plan", "plan generate --seed 1 --out plan.json", 2,
         "'plan.json' already exists"),
    Case("plan generate --out a folder", "plan generate --seed 1 --out photos", 2, "'photos' is a folder"),
    Case("eval --json below a file (before the evaluation)", f"eval --model default {PAIRS} --json notes.txt/r.json",
         2, "--json 'notes.txt/r.json' cannot be created: 'notes.txt' is a file"),
    Case("eval --json over an existing file", f"eval --model default {PAIRS} --json report.json", 2,
         "--json 'report.json' already exists"),
    Case("eval --json and --roc the same file", f"eval --model default {PAIRS} --json r.json --roc r.json", 2,
         "--json and --roc would both be written to 'r.json'"),
    Case("eval --json = its pairs.txt, --overwrite", f"eval --model default {PAIRS} --json lfw/pairs.txt --overwrite",
         2, "is an input of this run and is never replaced"),
    Case("demo over the user's report.html", "demo --data photos --out site --no-verify", 2,
         "'site/report.html' already exists"),
    Case("train OUT holding the user's config.yaml", "train train.yaml --out mine --no-progress", 2,
         "OUT 'mine' holds config.yaml, which no partialface train run wrote"),
    Case("train OUT is a file", "train train.yaml --out notes.txt --no-progress", 2, "is a file, not a run folder"),
    Case("attack over an existing privacy report", "attack --lfw faces --out-dir reports --no-judge", 2,
         "privacy.json' already exists and this run did not write it"),
    # ---- bad photos
    Case("a folder of 7 photos, 5 unreadable or not framed for the box", "protect bad --out out", 1, "cannot load face image 'bad/"),
    Case("an empty .jpg", "protect bad/empty.jpg --out out", 2, "cannot identify image file"),
    Case("a text file named .png", "protect bad/text.png --out out", 2, "cannot identify image file"),
    Case("a truncated JPEG", "protect bad/truncated.jpg --out out", 2, "truncated"),
    Case("a 1000x1000 photo (the LFW box is not its face)", "protect bad/big.jpg --out out", 2,
         "crop box (69, 69, 181, 181) is not centred in a 1000x1000 image"),
    Case("a 300x200 photo", "protect bad/small.jpg --out out", 2, "is not centred in a 300x200 image"),
    Case("--crop none on a 300x200 photo", "protect bad/small.jpg --out out --crop none", 2,
         "a 300x200 photo is not square"),
    Case("a 16-bit greyscale PNG (was read as white)", "protect bad/grey16.png --out out", 0,
         "wrote 1 protected faces"),
    Case("demo on a folder with bad photos", "demo --data bad --out shown --count 8 --no-verify", 1,
         "cannot read image 'bad/empty.jpg'"),
    Case("a photo as pairs.txt", "eval --model default --pairs photos/Ann/face.jpg --images lfw/images", 2,
         "is not a text pairs file"),
    Case("a missing .bin", "eval --model default --pairs nowhere.bin", 2, "cannot read verification .bin 'nowhere.bin'"),
    Case("a photo as the model", f"eval --model photos/Ann/face.jpg {PAIRS}", 2,
         "cannot read checkpoint 'photos/Ann/face.jpg': not a file torch.save wrote"),
    Case("a photo as a plan", "plan show photos/Ann/face.jpg", 2, "photos/Ann/face.jpg: not valid JSON"),
    Case("an unreadable training image", "train broken.yaml --no-progress", 2,
         "DATA_ROOT: cannot load face image '"),
    Case("the same, read by DataLoader workers", "train broken_workers.yaml --no-progress", 2,
         "DATA_ROOT: cannot load face image '"),
    Case("the same with SKIP_UNREADABLE: true", "train broken_skip.yaml --no-progress", 0, "done: epoch 1"),
    # ---- numbers
    Case("demo --count 0 (protected everything)", "demo --data photos --out shown --count 0", 2,
         "--count must be an integer in 1..1000, got 0"),
    Case("demo --count 100000", "demo --data photos --out shown --count 100000", 2, "--count must be an integer in 1.."),
    Case("a negative seed", "protect photos --out out --seed -1", 2, "--seed must be an integer in 0.."),
    Case("plan generate --n 1000000000", "plan generate --seed 1 --out p.json --n 1000000000", 2,
         "--n must be an integer in 1..1000"),
    Case("plan generate --m 7", "plan generate --seed 1 --out p.json --m 7", 2, "cannot split 54 kept channels into m=7"),
    Case("a plan index of 31.5", "plan show odd_plan.json", 2, "odd_plan.json: invalid channel plan"),
    Case("eval --batch-size 0", f"eval --model default {PAIRS} --batch-size 0", 2, "--batch-size must be an integer in 1..1024"),
    Case("eval --batch-size 1000000", f"eval --model default {PAIRS} --batch-size 1000000", 2,
         "--batch-size must be an integer in 1..1024"),
    Case("eval --threads 10000", f"eval --model default {PAIRS} --threads 10000", 2, "--threads must be an integer in 1.."),
    Case("eval --ranks 0", f"eval --model default {PAIRS} --ranks 0", 2, "--ranks must be an integer in 1..100"),
    Case("eval --folds 11", f"eval --model default {PAIRS} --folds 11", 2, "--folds must be an integer in 1..10"),
    Case("eval --device banana", f"eval --model default {PAIRS} --device banana", 2, "--device 'banana'"),
    Case("protect --crop ...,20000", "protect photos --out out --crop 69,69,181,181,20000", 2,
         "CropSpec size must be an integer in 1..1024"),
    Case("align --workers 10000", "align photos aligned --workers 10000", 2, "workers must be an integer in 1.."),
    Case("train WORKERS 100000", "train train.yaml --set WORKERS=100000 --no-progress", 2,
         "WORKERS must be an integer in 0..256"),
    Case("train batch_size 1000000", "train train.yaml --set DATASETS.0.batch_size=1000000 --no-progress", 2,
         "batch_size must be an integer in 1..4096"),
    Case("attack --depth 99 (grew to 20 GB)", "attack --lfw faces --out-dir runs/attack --no-judge --depth 99", 2,
         "depth 99 needs faces whose size is a multiple of 2**100"),
    # ---- checkpoints
    Case("a checkpoint missing a weight", f"eval --model missing.pt {PAIRS}", 2, "lacks the weights"),
    Case("a checkpoint with a mis-shaped weight", f"eval --model misshaped.pt {PAIRS}", 2, "has mis-shaped weights"),
    Case("a checkpoint with NaN weights", f"eval --model nan.pt {PAIRS}", 2, "has NaN or infinite weights"),
]
