"""Training configuration: load YAML files, combine them, validate and resolve.

A configuration is a YAML mapping of upper-case keys: every key of TFace's PartialFace ``train.yaml``
with its meaning there, plus partialface's keys for the input encoder, the channel plan, the data
layout, the development evaluation and the budget. The keys, their defaults and checks are one table,
:mod:`.config_keys`; their reference is ``docs/config.md`` (``partialface train --keys``).

Combining: ``load_config(["base.yaml", "row.yaml"], ["KEY=VALUE"])`` reads the files in order. A key
in a later file replaces the earlier value wholesale -- a mapping or a list too (``CROP``,
``DATASETS``, ``PLAN``), so a file never inherits half of a nested value it did not write. To change
one entry inside, a file (like ``--set``) writes a dotted key: ``DATASETS.0.batch_size: 256``. Within
a file, whole keys are set before dotted ones. Setting ``METHOD`` or ``ENCODER`` (``NUM_WORKERS`` or
``WORKERS``), TFace's and partialface's names of one setting, replaces both. Overrides come last.

:func:`resolve_config` checks every value and returns a plain dict holding *every* key (defaults
filled in, names mapped to the registries), which is what a checkpoint stores; a resolved config
resolves to itself. Errors are :class:`~partialface.errors.PartialFaceError` with one line naming the
file (or override) that set the key at fault, the key and the value.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .config_checks import ConfigError, backbone_registry_name, finish_crop, head_registry_name, unknown_key_error
from .config_keys import ALIASES, BY_NAME, DEFAULTS, REQUIRED, RUNTIME_KEYS
from .objective import check_objective_config
from .overrides import apply_overrides, parse_overrides, set_dotted

__all__ = [
    "DEFAULTS",
    "RUNTIME_KEYS",
    "apply_overrides",
    "backbone_registry_name",
    "combine_configs",
    "config_differences",
    "head_registry_name",
    "load_config",
    "parse_overrides",
    "read_config_file",
    "resolve_config",
]

ConfigPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


# --------------------------------------------------------------------------------------- reading
def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw mapping of one YAML config file (an empty file is ``{}``); errors name the file."""
    where = f"config {os.fspath(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {where}: {err.strerror or err}") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(err).split())}") from err
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping of KEY: value, got {type(raw).__name__}")
    return raw


class _Layers:
    """Configs combined in order, remembering which sources (files, overrides) set each key."""

    def __init__(self) -> None:
        self.merged: dict[str, Any] = {}
        self.origins: dict[str, list[str]] = {}
        self.files: list[str] = []

    def add(self, source: str, layer: Mapping[str, Any]) -> None:
        for dotted in layer:
            name = str(dotted).split(".")[0]
            if name not in DEFAULTS:
                err = unknown_key_error(dotted, DEFAULTS, "config")
                raise ConfigError(f"{source}: {err}", err.keys) from None
        whole = [k for k in layer if "." not in str(k)]
        for key in whole:
            partner = ALIASES.get(key)
            if partner is not None and partner not in layer:  # the other name of this setting is replaced too
                self.merged.pop(partner, None)
                self.origins.pop(partner, None)
            self.merged[key] = copy.deepcopy(layer[key])
            self.origins[key] = [source]
        for dotted in layer:
            if "." in str(dotted):
                set_dotted(self.merged, dotted, layer[dotted], f"{source}: {dotted}")
                self.origins.setdefault(dotted.split(".")[0], []).append(source)

    def sources_of(self, keys: Iterable[str]) -> str:
        """The sources that set ``keys`` (every file when none did, e.g. for a missing key)."""
        found = [source for key in keys for source in self.origins.get(key, [])]
        chosen = list(dict.fromkeys(found)) or self.files or ["config"]
        return " + ".join(chosen)


def _layers(paths: ConfigPaths, overrides: Iterable[str]) -> _Layers:
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not files:
        raise ConfigError("no config file given")
    layers = _Layers()
    for path in files:
        source = f"config {os.fspath(path)!r}"
        layers.files.append(source)
        layers.add(source, read_config_file(path))
    for item in overrides:
        layers.add(f"override {item}", parse_overrides([item]))
    return layers


def combine_configs(paths: ConfigPaths, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The raw (unresolved) mapping of config files combined in order, then ``KEY=VALUE`` overrides.

    See the module docstring for the rule; :func:`load_config` resolves the result.
    """
    return _layers(paths, overrides).merged


def load_config(paths: ConfigPaths, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read one config file or several (later ones win key by key), apply overrides, and resolve.

    Raises PartialFaceError naming the file for an unreadable or malformed file, and naming the file
    or override that set the key for any invalid value (see :func:`resolve_config`).
    """
    layers = _layers(paths, overrides)
    try:
        return resolve_config(layers.merged)
    except ConfigError as err:
        raise ConfigError(f"{layers.sources_of(err.keys)}: {err}", err.keys) from None


# -------------------------------------------------------------------------------------- resolving
def _require(condition: bool, message: str, *keys: str) -> None:
    if not condition:
        raise ConfigError(message, keys)


def resolve_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``raw`` and return every key with defaults filled in and names mapped.

    Raises ConfigError (a PartialFaceError) naming the offending key: an unknown key (with close
    matches), a missing required key, a value of the wrong type or range, or keys that contradict
    each other.
    """
    _require(isinstance(raw, Mapping), f"a config must be a mapping of KEY: value, got {type(raw).__name__}")
    for key in raw:
        if key not in DEFAULTS:
            raise unknown_key_error(key, DEFAULTS, "config")
    missing = [k for k, v in DEFAULTS.items() if v is REQUIRED and raw.get(k) in (None, "", [])]
    _require(not missing, f"missing required config key(s): {', '.join(missing)}", *missing)
    cfg: dict[str, Any] = {}
    for key, spec in BY_NAME.items():
        value = copy.deepcopy(raw[key] if key in raw else spec.default)
        try:
            cfg[key] = spec.check(key, value)
        except ConfigError:
            raise
        except ValueError as err:  # partialface.checks' errors: add the key, for load_config to name its file
            raise ConfigError(str(err), (key,)) from None

    cfg["CROP"] = finish_crop(cfg["CROP"], cfg["INPUT_SIZE"])
    _require(
        len(cfg["STAGES"]) == len(cfg["LRS"]) - 1,
        "STAGES needs one entry fewer than LRS (a boundary between consecutive learning rates): "
        f"LRS has {len(cfg['LRS'])}, STAGES {len(cfg['STAGES'])}", "STAGES", "LRS",
    )
    _require(
        cfg["STAGES_UNIT"] != "fraction" or all(s <= 1 for s in cfg["STAGES"]),
        f"with STAGES_UNIT: fraction, STAGES must lie in [0, 1], got {cfg['STAGES']}", "STAGES", "STAGES_UNIT",
    )
    _resolve_aliases(cfg, raw)
    if not cfg["OUT"]:
        _require(bool(cfg["MODEL_ROOT"]), "OUT (the run folder) is required (MODEL_ROOT is used when OUT is empty)",
                 "OUT", "MODEL_ROOT")
        cfg["OUT"] = cfg["MODEL_ROOT"]
    _require(cfg["DATA_FORMAT"] != "index" or bool(cfg["INDEX_ROOT"]),
             "DATA_FORMAT: index needs INDEX_ROOT (the folder holding DATASETS name + '.txt')", "DATA_FORMAT", "INDEX_ROOT")
    _require(cfg["DATA_FORMAT"] != "recordio" or not (cfg["EXCLUDE_FOLDS"] or cfg["MIN_IMAGES"] > 1),
             "EXCLUDE_FOLDS and MIN_IMAGES need person names or a label scan: use folders or index data",
             "DATA_FORMAT", "EXCLUDE_FOLDS", "MIN_IMAGES")
    _require(bool(cfg["EXCLUDE_PAIRS"]) == bool(cfg["EXCLUDE_FOLDS"]),
             "EXCLUDE_PAIRS and EXCLUDE_FOLDS go together (the pairs file and the folds to leave out)",
             "EXCLUDE_PAIRS", "EXCLUDE_FOLDS")
    _require(not cfg["DEV_PAIRS"] or cfg["DEV_PAIRS"].endswith(".bin") or bool(cfg["DEV_IMAGES"]),
             "DEV_PAIRS as an LFW pairs file needs DEV_IMAGES (the folder of <Name>/<Name>_NNNN.jpg)",
             "DEV_PAIRS", "DEV_IMAGES")
    _require(not cfg["SAVE_EPOCHS"] or max(cfg["SAVE_EPOCHS"]) <= cfg["NUM_EPOCH"],
             f"SAVE_EPOCHS {cfg['SAVE_EPOCHS']} names epochs beyond NUM_EPOCH {cfg['NUM_EPOCH']}",
             "SAVE_EPOCHS", "NUM_EPOCH")
    _require(cfg["ENCODER"] != "rgb" or not cfg["ENCODER_OPTIONS"],
             f"ENCODER rgb takes no ENCODER_OPTIONS, got {cfg['ENCODER_OPTIONS']}", "ENCODER", "ENCODER_OPTIONS")
    check_objective_config(cfg)
    return cfg


def _resolve_aliases(cfg: dict[str, Any], raw: Mapping[str, Any]) -> None:
    """METHOD -> ENCODER (default partialface), NUM_WORKERS -> WORKERS; both names end up equal."""
    method, encoder = cfg["METHOD"], cfg["ENCODER"]
    _require(not (method and encoder and method != encoder),
             f"METHOD ({method}) and ENCODER ({encoder}) disagree; give one of them", "METHOD", "ENCODER")
    cfg["ENCODER"] = cfg["METHOD"] = encoder or method or "partialface"
    _require(not ("NUM_WORKERS" in raw and "WORKERS" in raw and cfg["NUM_WORKERS"] != cfg["WORKERS"]),
             f"NUM_WORKERS ({cfg['NUM_WORKERS']}) and WORKERS ({cfg['WORKERS']}) disagree; give one",
             "NUM_WORKERS", "WORKERS")
    if cfg["NUM_WORKERS"] is not None and "WORKERS" not in raw:
        cfg["WORKERS"] = cfg["NUM_WORKERS"]
    cfg["NUM_WORKERS"] = cfg["WORKERS"]


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = RUNTIME_KEYS) -> list[str]:
    """Keys (outside ``ignore``) whose values differ between two resolved configs, sorted.

    A key the saved config lacks, because it was written before the key existed, counts as unchanged
    while the current config holds the key's default: every key is introduced with the default that
    reproduces the older behaviour, so such a run still resumes (and a non-default value still does not).
    """
    ignored = set(ignore)
    keys = (set(saved) | set(current)) - ignored

    def differs(key: str) -> bool:
        if key not in saved and key in DEFAULTS and current.get(key) == DEFAULTS[key]:
            return False
        return saved.get(key) != current.get(key)

    return sorted(k for k in keys if differs(k))
