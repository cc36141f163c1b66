"""The privacy-accuracy frontier of plan settings (docs/frontier.md): one row per setting.

    python experiments/frontier.py run [SETTING ...]      # attack, train + evaluate, per-rank spread (resumes)
    python experiments/frontier.py train [SETTING ...]    # the accuracy side only (train + evaluate)
    python experiments/frontier.py per-rank [SETTING ...] # plan settings: accuracy with each rank fixed in turn
    python experiments/frontier.py attack [SETTING ...]   # the privacy side only (independent of the recognizer)
    python experiments/frontier.py report [--docs docs]   # frontier.json, frontier.png, frontier_grid.png + table
    python experiments/frontier.py list                   # the settings and the commands of each

The settings are ``configs/frontier/index.yaml``. Every setting trains the same recipe (the index's
``recipe`` files; ``--recipe A.yaml B.yaml`` replaces them: switching the recipe is that one argument)
at one sample budget and backbone into ``OUT/SETTING/train-TAG`` (``TAG`` hashes the recipe's files,
budget and backbone, so runs of two recipes never mix and each resumes from its checkpoint), then
``partialface eval`` verifies LFW folds 7-8 from protected queries; for plan settings a second
evaluation fixes each rank in turn (the per-rank spread, ``eval_per_rank.json``: ``m * n`` times the
cost, so ``run`` does it after every setting has its accuracy). The attack side runs ``partialface attack`` on the setting's plan into
``OUT/SETTING/attack`` (white-box and enhanced white-box, the attacker budget of docs/privacy.md); its
attacker checkpoints (``OUT/attack_checkpoints``) resume. A step whose output exists is skipped.
Anchor settings marked ``reuse`` take their attack numbers from docs/privacy.json when its budget,
victims and seed are exactly the index's, and the row says so. Every command is printed and recorded
in its row; run the script under ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
INDEX = REPO / "configs" / "frontier" / "index.yaml"
FORMAT = "partialface.frontier/1"
TRAIN_SETTINGS = ("THREADS=1", "WORKERS=0", "CACHE_IMAGES=true", "DEV_PAIRS=")
PLAN_SCENARIOS = ("partialface/white-box", "partialface/enhanced-white-box")
WHITE_BOX = "white-box"


class Frontier:
    """The index, where its runs go, and the commands of each setting."""

    def __init__(self, index_path: Path, out: Path, recipe: list[str] | None = None):
        self.index_path = Path(index_path)
        self.index = yaml.safe_load(self.index_path.read_text())
        self.settings: dict[str, dict] = self.index["settings"]
        self.recipe = list(recipe or self.index["recipe"])
        self.out = Path(out)  # relative paths are the repository's (commands run there)

    # ------------------------------------------------------------------ what a setting is
    def plan(self, name: str):
        from partialface.plan import ChannelPlan

        preset = self.settings[name].get("plan")
        return ChannelPlan.preset(preset) if preset else None

    def label(self, name: str) -> str:
        setting = self.settings[name]
        if "label" in setting:
            return setting["label"]
        plan = self.plan(name)
        return f"{name}: {len(plan.pruned)} pruned, m={plan.m} x s={plan.s}, n={plan.n} ({plan.out_channels} sent)"

    @property
    def recipe_tag(self) -> str:
        """Hash of the recipe's file contents, budget and backbone: the training runs' folder suffix."""
        digest = hashlib.sha256()
        for path in self.recipe:
            digest.update(path.encode() + b"\0" + (REPO / path).read_bytes() + b"\0")
        digest.update(f"{self.index['budget']}|{self.index['backbone']}".encode())
        return digest.hexdigest()[:8]

    def train_dir(self, name: str) -> Path:
        return self.out / name / f"train-{self.recipe_tag}"

    def attack_dir(self, name: str) -> Path:
        return self.out / name / "attack"

    # ------------------------------------------------------------------ commands
    def _overrides(self, name: str) -> list[str]:
        plan = self.plan(name)
        preset = [f"PLAN={self.settings[name]['plan']}", f"NUM_CHS={plan.s}"] if plan else []
        return [f"BACKBONE_NAME={self.index['backbone']}", f"MAX_SAMPLES={self.index['budget']}", *TRAIN_SETTINGS,
                *preset, f"OUT={self.train_dir(name)}"]

    def train_command(self, name: str) -> list[str]:
        files = [*self.recipe, *self.settings[name].get("files", [])]
        return ["partialface", "train", *files, "--no-progress",
                *(arg for setting in self._overrides(name) for arg in ("--set", setting))]

    def eval_command(self, name: str, per_rank: bool = False) -> list[str]:
        from partialface.training import load_config

        files = [REPO / path for path in (*self.recipe, *self.settings[name].get("files", []))]
        cfg = load_config(files, [s for s in self._overrides(name) if not s.startswith("DEV_PAIRS=")])
        run, options = self.train_dir(name), self.index["eval"]
        return ["partialface", "eval", "--model", str(run / "checkpoint.pt"),
                "--pairs", cfg["DEV_PAIRS"], "--images", cfg["DEV_IMAGES"], "--folds", str(options["folds"]),
                "--seed", str(options["seed"]), "--threads", "1", "--quiet",
                *(["--json", str(run / "eval_per_rank.json"), "--per-rank"] if per_rank else
                  ["--json", str(run / "eval.json"), "--roc", str(run / "roc.png")])]

    def attack_command(self, name: str) -> list[str]:
        setting, attack = self.settings[name], self.index["attack"]
        plan = ["--plan", setting["plan"]] if setting.get("plan") else []
        return ["partialface", "attack", "--lfw", attack["lfw"], "--out-dir",
                str(self.attack_dir(name)), "--overwrite", "--checkpoint-dir", str(self.out / "attack_checkpoints"),
                *map(str, attack["options"]), "--scenarios", *setting.get("scenarios", PLAN_SCENARIOS), *plan,
                "--threads", "1", "--quiet"]

    # ------------------------------------------------------------------ running
    @staticmethod
    def _run(command: list[str]) -> None:
        """Run a ``partialface ...`` command with this interpreter, in the repository."""
        print("+ " + shlex.join(command), flush=True)
        subprocess.run([sys.executable, "-m", *command], cwd=REPO, check=True)

    def train(self, name: str) -> None:
        run = REPO / self.train_dir(name)
        done = run / "eval.json"
        if done.is_file() and done.stat().st_mtime > (run / "checkpoint.pt").stat().st_mtime:
            print(f"{name}: trained and evaluated already ({done})", flush=True)
            return
        started = time.time()
        self._run(self.train_command(name))
        trained = time.time()
        self._run(self.eval_command(name))
        timing = {"train_seconds": round(trained - started), "eval_seconds": round(time.time() - trained)}
        (run / "timing.json").write_text(json.dumps(timing) + "\n")

    def per_rank(self, name: str) -> None:
        run = REPO / self.train_dir(name)
        if self.plan(name) is None or (run / "eval_per_rank.json").is_file():
            return
        if not (run / "eval.json").is_file():
            print(f"{name}: not trained yet; no per-rank evaluation", flush=True)
            return
        self._run(self.eval_command(name, per_rank=True))

    def reused_attack(self, name: str) -> dict | None:
        """The setting's numbers from the reuse report, when it was measured exactly as this index asks."""
        if not self.settings[name].get("reuse") or not self.index["attack"].get("reuse"):
            return None
        path = REPO / self.index["attack"]["reuse"]
        if not path.is_file():
            return None
        report = json.loads(path.read_text())
        from partialface.attacks.cli import add_attack_arguments, attack_budget

        args = add_attack_arguments(argparse.ArgumentParser()).parse_args(list(map(str, self.index["attack"]["options"])))
        protocol = report["protocol"]
        from partialface.plan import ChannelPlan

        plan = self.plan(name) or ChannelPlan.tface()  # the attack's --plan (its default for anchors)
        same = (report["budget"] == attack_budget(args).to_dict() and protocol["victims"] == args.victims
                and protocol["seed"] == args.seed and protocol["rank_selection"] == args.criterion
                and protocol.get("deployment_plan") == plan.fingerprint)
        encoder, threat = self.settings[name]["scenarios"][0].split("/")
        if not same or threat not in report["results"].get(encoder, {}):
            return None
        return {"source": self.index["attack"]["reuse"], "report": report, "results": report["results"][encoder]}

    def attack(self, name: str) -> None:
        if (REPO / self.attack_dir(name) / "privacy.json").is_file():
            print(f"{name}: attacked already ({self.attack_dir(name)})", flush=True)
        elif self.reused_attack(name):
            print(f"{name}: attack numbers reused from {self.index['attack']['reuse']} (same budget)", flush=True)
        else:
            self._run(self.attack_command(name))

    # ------------------------------------------------------------------ the rows
    def row(self, name: str) -> dict:
        plan = self.plan(name)
        row: dict = {"setting": name, "label": self.label(name), "anchor": plan is None}
        if plan is not None:
            row["plan"] = {"preset": self.settings[name]["plan"], "fingerprint": plan.fingerprint,
                           "pruned": len(plan.pruned), "kept": len(plan.kept), "m": plan.m, "s": plan.s, "n": plan.n,
                           "ranks": plan.num_ranks, "sent_channels": plan.out_channels}
        row["accuracy"] = self._accuracy(name)
        row["commands"] = {"train": shlex.join(self.train_command(name)), "eval": shlex.join(self.eval_command(name))}
        if plan is not None:
            row["commands"]["per_rank"] = shlex.join(self.eval_command(name, per_rank=True))
        attack_report = REPO / self.attack_dir(name) / "privacy.json"
        if attack_report.is_file():
            report = json.loads(attack_report.read_text())
            encoder = "partialface" if plan is not None else self.settings[name]["scenarios"][0].split("/")[0]
            results, source = report["results"][encoder], str(self.attack_dir(name) / "privacy.json")
            row["commands"]["attack"] = shlex.join(self.attack_command(name))
        elif (reused := self.reused_attack(name)) is not None:
            results, source = reused["results"], f"{reused['source']} (reused: the same attacker budget, victims and seed)"
            row["commands"]["attack"] = "partialface attack --lfw ../shared/data/lfw --out-dir docs --overwrite"
        else:
            results, source = None, None
        keep = ("ssim", "psnr", "judge_accuracy", "judge_accuracy_std", "judge_rank1", "judge_detection_rate")
        row["attacks"] = None if results is None else {
            threat: {**{key: entry.get(key) for key in keep}, "attacker_train_seconds": entry["budget"]["wall_seconds"],
                     **({"true_rank_selected": entry["true_rank_selected"]} if "true_rank_selected" in entry else {})}
            for threat, entry in results.items()}
        row["attack_source"] = source
        return row

    def _accuracy(self, name: str) -> dict | None:
        run = REPO / self.train_dir(name)
        if not (run / "eval.json").is_file():
            return None
        report = json.loads((run / "eval.json").read_text())
        timing = json.loads((run / "timing.json").read_text()) if (run / "timing.json").is_file() else {}
        from partialface.training import load_checkpoint

        spread = None
        if (run / "eval_per_rank.json").is_file():
            spread = json.loads((run / "eval_per_rank.json").read_text())["per_rank"]
        return {"accuracy": 100 * report["accuracy"], "accuracy_std": 100 * report["accuracy_std"],
                "tar_at_far_1e-3": 100 * report["tar_at_far_1e-3"], "auc": report["auc"],
                "per_rank": None if not spread else {
                    "mean": 100 * spread["rank_accuracy_mean"], "min": 100 * spread["rank_accuracy_min"],
                    "max": 100 * spread["rank_accuracy_max"], "ranks": len(spread["ranks"]),
                    "template_consistency": spread["template_consistency_mean"]},
                "samples": load_checkpoint(run / "checkpoint.pt")["samples_seen"], "run": str(self.train_dir(name)),
                **timing}

    def report(self, names: list[str]) -> dict:
        from frontier_report import recommend  # the script's folder is on sys.path

        attack = self.index["attack"]
        rows = [self.row(name) for name in names]
        return {"format": FORMAT, "index": str(self.index_path.relative_to(REPO) if self.index_path.is_relative_to(REPO)
                                               else self.index_path),
                "recipe": self.recipe, "recipe_tag": self.recipe_tag, "budget": self.index["budget"],
                "backbone": self.index["backbone"], "eval": self.index["eval"],
                "attack": {"lfw": attack["lfw"], "options": list(map(str, attack["options"])),
                           "scenarios": list(PLAN_SCENARIOS)},
                "units": {"accuracy": "percent, LFW folds 7-8 verified from protected queries (10 folds)",
                          "judge_accuracy": "percent, dlib verification of (recovered, genuine) pairs; 50 = chance",
                          "judge_rank1": "percent, recovered face's nearest of 200 gallery photos is its own person"},
                "target": self.index["target"], "recommendation": recommend(rows, self.index["target"]), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "train", "per-rank", "attack", "report", "list"))
    parser.add_argument("settings", nargs="*", help="settings to work on (default: all, in the index's order)")
    parser.add_argument("--index", type=Path, default=INDEX, help="the settings (default configs/frontier/index.yaml)")
    parser.add_argument("--out", type=Path, default=Path("runs/frontier"), help="run folders (default runs/frontier)")
    parser.add_argument("--recipe", nargs="+", metavar="CONFIG", help="training recipe files, replacing the index's")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="where report writes frontier.json/.png")
    args = parser.parse_args(argv)
    frontier = Frontier(args.index, args.out, args.recipe)
    unknown = [name for name in args.settings if name not in frontier.settings]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(frontier.settings)}")
    names = args.settings or list(frontier.settings)
    if args.action == "list":
        for name in names:
            print(f"{name}: {frontier.label(name)}\n  train:  {shlex.join(frontier.train_command(name))}\n"
                  f"  attack: {shlex.join(frontier.attack_command(name))}")
    elif args.action == "report":
        from frontier_report import write_report

        write_report(frontier.report(names), REPO / frontier.out, REPO / args.docs)
    else:
        steps = {"run": (frontier.attack, frontier.train, frontier.per_rank), "attack": (frontier.attack,),
                 "train": (frontier.train,), "per-rank": (frontier.per_rank,)}[args.action]
        for step in steps:  # every setting's step before the next step: the cheap numbers first
            for name in names:
                step(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
