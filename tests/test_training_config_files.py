"""The key table (defaults, checks, runtime keys and docs/config.md from one declaration), configs
combined from several files, and the development-protocol rows of configs/rows/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from partialface.errors import PartialFaceError
from partialface.train import main
from partialface.training import combine_configs, load_config, resolve_config
from partialface.training import config as config_module
from partialface.training.config_keys import ALIASES, DEFAULTS, KEYS, REQUIRED, RUNTIME_KEYS, key_reference

REPO = Path(__file__).resolve().parents[1]
ROWS = REPO / "configs" / "rows"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BASE = """
DATA_ROOT: /data
DATASETS: [{name: faces, batch_size: 64, scale: 32, margin: 0.35}]
CROP: {box: [69, 69, 181, 181], size: 112}
ENCODER: partialface
NUM_AUG: 3
OUT: runs/base
"""


# ------------------------------------------------------------------------------------ the table
def test_defaults_runtime_keys_and_aliases_come_from_the_table() -> None:
    names = [key.name for key in KEYS]
    assert len(names) == len(set(names)) == len(DEFAULTS)
    assert list(DEFAULTS) == names and all(DEFAULTS[k.name] is k.default for k in KEYS)
    assert RUNTIME_KEYS == {k.name for k in KEYS if k.runtime}
    assert ALIASES == {"METHOD": "ENCODER", "ENCODER": "METHOD", "NUM_WORKERS": "WORKERS", "WORKERS": "NUM_WORKERS"}
    assert {k.name for k in KEYS if k.default is REQUIRED} == {"DATA_ROOT", "DATASETS"}
    assert all(k.doc and callable(k.check) for k in KEYS)
    # the resolved config holds every key of the table, in its order, and nothing else
    cfg = resolve_config({"DATA_ROOT": "/d", "DATASETS": [{"name": "x"}], "OUT": "o"})
    assert list(cfg) == names
    # the config module keeps no parallel list: its DEFAULTS and RUNTIME_KEYS are the table's
    assert config_module.DEFAULTS is DEFAULTS and config_module.RUNTIME_KEYS is RUNTIME_KEYS


def test_each_key_is_checked_by_its_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def spy(check):
        return lambda key, value: (seen.append(key), check(key, value))[1]

    spied = {name: dataclasses.replace(key, check=spy(key.check)) for name, key in config_module.BY_NAME.items()}
    monkeypatch.setattr(config_module, "BY_NAME", spied)
    resolve_config({"DATA_ROOT": "/d", "DATASETS": [{"name": "x"}], "OUT": "o"})
    assert seen == [k.name for k in KEYS]


def test_docs_config_md_is_generated_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    reference = key_reference()
    assert (REPO / "docs" / "config.md").read_text() == reference, "regenerate: partialface train --keys > docs/config.md"
    for key in KEYS:
        row = next(line for line in reference.splitlines() if line.startswith(f"| `{key.name}` |"))
        assert key.doc.replace("|", "\\|") in row and (("| yes |" in row) == key.runtime)
    tface_part = reference.split("## partialface keys")[0]
    assert all((f"| `{k.name}` |" in tface_part) == k.tface for k in KEYS)
    assert main(["--keys"]) == 0
    assert capsys.readouterr().out == reference


# ---------------------------------------------------------------------------------- combining
def test_later_files_replace_keys_wholesale_and_dotted_keys_reach_inside(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    row = write(tmp_path / "row.yaml", "ENCODER: fixed\nNUM_AUG: 1\nCROP: {box: null}\nDATASETS.0.batch_size: 16\n")
    site = write(tmp_path / "site.yaml", "DATA_ROOT: /mnt/faces\nNUM_AUG: 2\nPLAN: {generate: 7}\n")
    cfg = load_config([base, row, site], ["DATASETS.0.margin=0.5"])
    assert cfg["ENCODER"] == "fixed" == cfg["METHOD"]
    assert cfg["NUM_AUG"] == 2 and cfg["DATA_ROOT"] == "/mnt/faces"  # the last file wins
    assert cfg["CROP"] == {"box": None, "size": 112}  # a mapping is replaced, not merged with the base's box
    assert cfg["DATASETS"] == [{"name": "faces", "batch_size": 16, "weight": 1.0, "scale": 32.0, "margin": 0.5}]
    assert cfg["PLAN"] == {"generate": 7, "m": 6, "n": 6}
    assert load_config([base, row, site]) == load_config(base, [
        "ENCODER=fixed", "CROP={box: null}", "DATASETS.0.batch_size=16", "DATA_ROOT=/mnt/faces", "NUM_AUG=2",
        "PLAN={generate: 7}", "OUT=runs/base"])
    assert combine_configs([base, row])["DATASETS"] == [{"name": "faces", "batch_size": 16, "scale": 32, "margin": 0.35}]
    # overrides come last whatever the order; an empty file changes nothing
    empty = write(tmp_path / "empty.yaml", "# nothing\n")
    assert load_config([base, empty], ["NUM_AUG=5"])["NUM_AUG"] == 5
    assert load_config([base, empty]) == load_config(base)


def test_the_two_names_of_a_setting_replace_each_other(tmp_path: Path) -> None:
    tface = write(tmp_path / "tface.yaml", BASE.replace("ENCODER: partialface", "METHOD: PartialFace\nNUM_WORKERS: 8"))
    row = write(tmp_path / "row.yaml", "ENCODER: rgb\nNUM_AUG: 1\nWORKERS: 0\n")
    cfg = load_config([tface, row])
    assert (cfg["ENCODER"], cfg["METHOD"], cfg["WORKERS"], cfg["NUM_WORKERS"]) == ("rgb", "rgb", 0, 0)
    # a resolved config (as a checkpoint stores it) combines with a row the same way
    resolved = write(tmp_path / "resolved.yaml", yaml.safe_dump(load_config(tface)))
    assert load_config([resolved, row])["ENCODER"] == "rgb"
    with pytest.raises(PartialFaceError, match="METHOD .* and ENCODER .* disagree"):  # within one file
        load_config(write(tmp_path / "both.yaml", BASE + "METHOD: rgb\n"))


def test_errors_name_the_file_or_override_that_set_the_key(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    bad = write(tmp_path / "bad.yaml", "NUM_EPOCH: 0\n")
    with pytest.raises(PartialFaceError, match=r"^config '[^']*bad\.yaml': NUM_EPOCH must be an integer >= 1, got 0$"):
        load_config([base, bad])
    with pytest.raises(PartialFaceError, match=r"^override NUM_EPOCH=0: NUM_EPOCH must be"):
        load_config(base, ["NUM_EPOCH=0"])
    with pytest.raises(PartialFaceError, match=r"row\.yaml': unknown config key 'NUM_EPOCHS'; close matches: NUM_EPOCH"):
        load_config([base, write(tmp_path / "row.yaml", "NUM_EPOCHS: 3\n")])
    with pytest.raises(PartialFaceError, match=r"lrs\.yaml': STAGES needs one entry fewer than LRS"):
        load_config([base, write(tmp_path / "lrs.yaml", "LRS: [0.1, 0.01]\n")])  # STAGES is the default
    with pytest.raises(PartialFaceError, match=r"dotted\.yaml': DATASETS\.2\.name: DATASETS\.2 is not an index"):
        load_config([base, write(tmp_path / "dotted.yaml", "DATASETS.2.name: x\n")])
    with pytest.raises(PartialFaceError, match=r"^override DATA_ROOT=: missing required config key\(s\): DATA_ROOT$"):
        load_config(base, ["DATA_ROOT="])
    out = write(tmp_path / "out.yaml", "OUT: o\n")
    data = write(tmp_path / "data.yaml", "DATASETS: [{name: x}]\n")
    with pytest.raises(PartialFaceError, match=r"^config '[^']*out\.yaml' \+ config '[^']*data\.yaml': missing required"):
        load_config([out, data])  # no file sets DATA_ROOT: every file is named
    with pytest.raises(PartialFaceError, match=r"cannot read config '[^']*absent\.yaml'"):
        load_config([base, tmp_path / "absent.yaml"])
    with pytest.raises(PartialFaceError, match="no config file given"):
        load_config([])


def test_train_command_line_combines_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    row = write(tmp_path / "row.yaml", "ENCODER: fixed\n")
    assert main([str(base), "--print-config", str(row), "--set", "NUM_AUG=1"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == load_config([base, row], ["NUM_AUG=1"]) and printed["ENCODER"] == "fixed"
    assert main([str(base), str(write(tmp_path / "bad.yaml", "AMP: maybe\n")), "--print-config"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "bad.yaml': AMP must be true or false, got 'maybe'" in error
    with pytest.raises(SystemExit):
        main(["--print-config"])


# ------------------------------------------------------------------------------ configs/rows
def _index() -> dict:
    return yaml.safe_load((ROWS / "index.yaml").read_text())


def test_every_row_is_one_file_and_resolves() -> None:
    index = _index()
    assert list(index["rows"]) == ["rgb", "partialface", "partialface_generated", "fixed", "pruned"]
    assert {p.stem for p in ROWS.glob("*.yaml")} - {"index"} == set(index["rows"])
    base = load_config(REPO / index["base"])
    expected = {
        "rgb": {"ENCODER": "rgb", "METHOD": "rgb", "NUM_AUG": 1, "NUM_CHS": None},
        "partialface": {},
        "partialface_generated": {"PLAN": {"generate": 2026, "m": 6, "n": 6}},
        "fixed": {"ENCODER": "fixed", "METHOD": "fixed", "NUM_AUG": 1},
        "pruned": {"ENCODER": "pruned", "METHOD": "pruned", "NUM_AUG": 1},
    }
    for name, row in index["rows"].items():
        assert row["label"] and row["gpu_label"]
        cfg = load_config([REPO / index["base"], ROWS / f"{name}.yaml"])
        assert {k: v for k, v in cfg.items() if base[k] != v} == expected[name], name
        assert bool(row.get("per_rank")) == (cfg["ENCODER"] == "partialface")
    # the shipped single-file RGB config is the base with the rgb row (its run folder aside)
    rgb = load_config([REPO / index["base"], ROWS / "rgb.yaml"], ["OUT=runs/rgb_lfw_dev"])
    assert rgb == load_config(REPO / "configs" / "rgb_lfw_dev.yaml")
